"""Durability: a write the API has answered (transitions, a declaration)
survives a crash of the database server. Writes commit without waiting for
their WAL flush (the audit chain's lock is released sooner) and the daemon
answers only after a second, small transaction has flushed the WAL past them (fcgi-app/db/db.c); without that
flush the last writes before a crash would be gone after recovery."""

import os
import subprocess

import requests

import itpm_http as h
import lifecycle_api as L
from lifecycle_api import describe

DEFERS = 40


def crash_database(env):
    """Stop the stack's PostgreSQL the way a crash does: no checkpoint, no
    flush of what is still in its WAL buffers."""
    cmd = [os.path.join(env['ITPM_PG_BIN'], 'pg_ctl'), '-D', env['ITPM_PGDATA'],
           '-m', 'immediate', '-w', '-t', '30', 'stop']
    if os.geteuid() == 0:
        cmd = ['runuser', '-u', 'postgres', '--'] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f'{cmd}: {r.stdout} {r.stderr}'


def test_answered_transitions_survive_a_database_crash(private_stack):
    env = private_stack()
    users = L.Users(env)
    try:
        flow = L.flow_to(users, 'listing', budget='100000.00')
        rev, code = flow.rev, flow.p.code
        version = flow.p.version
        answered = 0
        for _ in range(DEFERS):
            r = L.transition(rev, code, 'defer', version)
            assert r.status_code == 200, describe(r)
            version = L.Project(r).version
            answered += 1
        # And a declaration, the last write before the crash.
        declared = L.create(flow.sub, title='崩溃前最后一份申报')
        # At once: whatever the server has not flushed by now is lost.
        crash_database(env)
        h.stack_cmd(env, 'pg-start')

        def readable():
            try:
                return rev.get(L.path(code)).status_code == 200
            except requests.RequestException:
                return False
        h.wait_until(readable, 15, f'GET {code} answers after the restart', 0.2)

        p = L.read(rev, code)
        assert p.version == version, \
            f'{answered} defers answered up to version {version}; after the crash {p.version}'
        after = L.read(flow.sub, declared.code)
        assert after.version == declared.version and after.stage == 'draft', after
        defers = [e for e in L.events(rev, code) if e['action'] == 'defer']
        assert len(defers) == answered, (len(defers), answered)
        with h.Client(env, user='auditor1') as aud:
            ok, records, broken, reason = h.audit_verify(aud)
            assert ok, (records, broken, reason)
        trail = [a for a in L.audit(users['auditor1'], code) if a['action'] == 'transition:defer']
        assert len(trail) == answered, (len(trail), answered)
    finally:
        users.close()


FLUSH_FN = ('pg_logical_emit_message(boolean, text, text), '
            'pg_logical_emit_message(boolean, text, bytea)')


def test_a_write_whose_flush_fails_is_not_answered_as_done(private_stack):
    """When the flush after a committed write fails (here: the privilege it
    needs taken away), the write is there but not known to be on disk: the
    answer is 500, not 201, and not 503 with Retry-After either, which would
    invite a second declaration. The audit trail, which flushes before it
    answers, says so the same way."""
    env = private_stack()
    users = L.Users(env)
    try:
        sub = users['sub_psb']
        title = '刷盘失败的申报'
        h.psql(env, f'REVOKE EXECUTE ON FUNCTION {FLUSH_FN} FROM PUBLIC', user='postgres')
        try:
            r = L.create(sub, expect=500, title=title)
            assert r.status_code == 500, describe(r)
            assert 'Retry-After' not in r.headers, describe(r)
            L.problem(r, 500)
            with h.Client(env, user='auditor1') as aud:
                r = aud.get('/api/v1/audit/verify')
                assert r.status_code == 500, describe(r)
        finally:
            h.psql(env, f'GRANT EXECUTE ON FUNCTION {FLUSH_FN} TO PUBLIC', user='postgres')
        made = h.psql(env, f"SELECT count(*) FROM projects WHERE title = '{title}'",
                      user='postgres')
        assert made == '1', made
        log = open(env['ITPM_LOG'], encoding='utf-8').read()
        assert 'committed but the WAL flush after it failed' in log, log[-2000:]
    finally:
        users.close()
