"""The audit trail (GET /api/v1/audit, auditors only) and its hash chain
(GET /api/v1/audit/verify, auditors and admins): who may read it, its
filters and pages, that the daemon's database role cannot change it, that an
owner's edit is found at the record edited, and that the chain still holds
after the whole suite."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

import itpm_http as h


def role_token(env, role):
    return h.sso_token(env, sub=f'sso-{role}', roles=[role])


@pytest.mark.parametrize('role', h.ROLES)
def test_audit_routes_by_role(env, session, problem, role):
    token = h.bearer(role_token(env, role))
    r = session.get('/api/v1/audit', params={'limit': 1}, headers=token)
    if role == 'auditor':
        assert r.status_code == 200, h.describe(r)
    else:
        problem(r, 403)
    r = session.get('/api/v1/audit/verify', headers=token)
    if role in ('auditor', 'admin'):
        assert r.status_code == 200, h.describe(r)
    else:
        problem(r, 403)


def test_audit_routes_need_a_login(session, problem):
    for path in ('/api/v1/audit', '/api/v1/audit/verify'):
        problem(session.get(path), 401)


def test_audit_trail_filters_and_pages(env, session, auditor, problem):
    pw = h.demo_password(env)
    rids = ['itpm-aud-' + uuid.uuid4().hex for _ in range(3)]
    for request_id in rids:
        h.session_doc(h.login(session, 'expert3', pw, headers={'X-Request-Id': request_id}))
    recs, _ = h.audit_records(auditor, object='user:expert3', limit=1000)
    mine = [x for x in recs if x['requestId'] in rids]
    assert [x['requestId'] for x in mine] == rids, recs
    assert all(x['action'] == 'login' and x['actor'] == 'expert3' and
               x['object'] == 'user:expert3' and x['address'] == '127.0.0.1' for x in mine), mine
    assert [x['id'] for x in recs] == sorted(x['id'] for x in recs)
    assert len({x['hash'] for x in recs}) == len(recs)

    by_actor, _ = h.audit_records(auditor, actor='expert3', limit=1000)
    assert {x['id'] for x in mine} <= {x['id'] for x in by_actor}
    assert all(x['actor'] == 'expert3' for x in by_actor)

    # Pages: limit and next/after.
    first = {'after': mine[0]['id'] - 1} if mine[0]['id'] > 1 else {}
    page1, nxt = h.audit_records(auditor, object='user:expert3', limit=2, **first)
    assert [x['id'] for x in page1] == [x['id'] for x in mine[:2]] and nxt == str(mine[1]['id'])
    page2, _ = h.audit_records(auditor, object='user:expert3', after=nxt, limit=2)
    assert page2 and page2[0]['id'] == mine[2]['id']
    # The last page says so: no next when nothing follows, even when it is full.
    last, nxt = h.audit_records(auditor, object='user:expert3', after=mine[-1]['id'] - 1,
                                limit=1)
    assert [x['id'] for x in last] == [mine[-1]['id']] and nxt is None, (last, nxt)
    # By action.
    logins, _ = h.audit_records(auditor, object='user:expert3', action='login', limit=1000)
    assert {x['id'] for x in mine} <= {x['id'] for x in logins}
    assert logins and all(x['action'] == 'login' for x in logins)
    none, _ = h.audit_records(auditor, object='user:expert3', action='no-such-action')
    assert none == []
    # Or by offset, as lists usually page.
    page2, _ = h.audit_records(auditor, object='user:expert3', limit=2, offset=2, **first)
    assert [x['id'] for x in page2] == [x['id'] for x in mine[2:4]]

    # Time window.
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    later, _ = h.audit_records(auditor, object='user:expert3', **{'from': soon})
    assert later == []
    before, _ = h.audit_records(auditor, object='user:expert3', to=soon, limit=1000)
    assert {x['id'] for x in mine} <= {x['id'] for x in before}

    for bad in ({'limit': '0'}, {'limit': '1001'}, {'limit': 'abc'}, {'after': '-1'},
                {'offset': '-1'}, {'offset': 'abc'}, {'offset': '1000001'},
                {'from': 'not-a-date'}, {'to': '2026-13-45'}):
        problem(auditor.get('/api/v1/audit', params=bad), 400)


def test_app_role_cannot_change_or_forge_audit_rows(env, session, auditor):
    app = env.get('ITPM_PG_APP', 'itpm_app')
    h.session_doc(h.login(session, 'jr_drc', h.demo_password(env)))  # at least one record
    count = h.psql(env, 'SELECT count(*) FROM audit_log')
    last = h.psql(env, 'SELECT max(id) FROM audit_log')
    for sql in (f"UPDATE audit_log SET summary = 'x' WHERE id = {last}",
                f"DELETE FROM audit_log WHERE id = {last}",
                'TRUNCATE audit_log',
                "INSERT INTO audit_log SELECT id + 1000000, at, actor, role, client_addr, "
                f"request_id, action, object, summary, prev_hash, hash FROM audit_log "
                f"WHERE id = {last}"):
        r = h.psql_run(env, sql, user=app)
        assert r.returncode != 0, f'as {app}: {sql!r} succeeded: {r.stdout}'
    # Not even the owner, while the trigger is on.
    for sql in (f"UPDATE audit_log SET summary = 'x' WHERE id = {last}",
                f"DELETE FROM audit_log WHERE id = {last}", 'TRUNCATE audit_log'):
        r = h.psql_run(env, sql)
        assert r.returncode != 0, f'as the owner: {sql!r} succeeded: {r.stdout}'
    assert h.psql(env, 'SELECT count(*) FROM audit_log') == count
    ok, records, broken, reason = h.audit_verify(auditor)
    assert ok and broken is None, f'chain broken at {broken}: {reason}'


def test_app_role_cannot_run_its_code_as_the_owner_through_audit_append(env):
    """audit_append() runs as the owner: a temporary type of the caller's
    named like one of its variables' types (pg_temp is searched for types
    before pg_catalog unless named) must not reach it, or the type's check
    would run as the owner. Nothing is stored (the call is rolled back)."""
    app = env.get('ITPM_PG_APP', 'itpm_app')
    sql = ("BEGIN;\n"
           "CREATE FUNCTION pg_temp.evil(pg_catalog.text) RETURNS pg_catalog.bool "
           "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ran as %', current_user; END $$;\n"
           "CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));\n"
           "CREATE DOMAIN pg_temp.bytea AS pg_catalog.bytea CHECK (pg_temp.evil('x'));\n"
           "SELECT audit_append('x', 'x', 'x', 'x', 'x', 'x', 'x') > 0;\n"
           "ROLLBACK;\n")
    r = h.psql_run(env, sql, user=app)
    assert 'ran as' not in r.stderr, r.stderr
    assert r.returncode == 0 and 't' in r.stdout.split(), (r.stdout, r.stderr)


def _as_owner_without_trigger(env, sql):
    h.psql(env, 'BEGIN;\nALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;\n'
                f'{sql};\nALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;\nCOMMIT;\n')


def test_owner_edit_and_removal_are_found(private_stack):
    """Never on the shared stack: this breaks the chain for good."""
    env = private_stack()
    with h.Client(env, user='auditor1') as aud, h.Client(env) as c:
        for user in ('sub_psb', 'cdo_psb', 'rev_city', 'dir_city'):
            h.session_doc(h.login(c, user, h.demo_password(env)))
        ok, records, broken, _ = h.audit_verify(aud)
        assert ok and broken is None and records >= 5
        recs, _ = h.audit_records(aud, limit=1000)
        n = recs[len(recs) // 2]['id']
        original = h.psql(env, f'SELECT summary FROM audit_log WHERE id = {n}')

        _as_owner_without_trigger(env, f"UPDATE audit_log SET summary = 'x' WHERE id = {n}")
        ok, records2, broken, reason = h.audit_verify(aud)
        assert (ok, broken) == (False, n), f'edit of record {n}: ok {ok}, firstBroken {broken}'
        assert 'edit' in reason, reason
        assert records2 == records
        with h.Client(env, user='admin1') as adm:
            ok, _, broken, _ = h.audit_verify(adm)
            assert (ok, broken) == (False, n), 'the admin sees another verdict'

        # Put back exactly: the chain holds again (the check is deterministic).
        _as_owner_without_trigger(
            env, f"UPDATE audit_log SET summary = $q${original}$q$ WHERE id = {n}")
        ok, _, broken, reason = h.audit_verify(aud)
        assert ok and broken is None, f'after the restore: firstBroken {broken}: {reason}'

        # Remove a record: the next one no longer links.
        ids = [x['id'] for x in h.audit_records(aud, limit=1000)[0]]
        m = ids[len(ids) // 2]
        following = ids[ids.index(m) + 1]
        _as_owner_without_trigger(env, f'DELETE FROM audit_log WHERE id = {m}')
        ok, _, broken, reason = h.audit_verify(aud)
        assert (ok, broken) == (False, following), \
            f'record {m} removed: ok {ok}, firstBroken {broken} ({reason})'
        assert 'link' in reason or 'removed' in reason, reason


@pytest.mark.run_last
def test_audit_chain_verifies_after_the_suite(env, auditor):
    ok, records, broken, reason = h.audit_verify(auditor)
    assert ok, f'the shared stack\'s audit chain is broken at record {broken}: {reason}'
    assert records > 0
    with h.Client(env) as c:
        r = c.get('/api/v1/audit/verify', headers=h.bearer(role_token(env, 'admin')))
        assert r.status_code == 200 and 'ok="true"' in r.text, h.describe(r)


def test_removal_of_the_newest_records_is_found_once_verified(private_stack):
    """What is left after the newest records are removed is a whole chain:
    each verification that finds it whole keeps the newest record it saw,
    and the next one reports that record gone. Never on the shared stack."""
    env = private_stack()
    with h.Client(env, user='auditor1') as aud, h.Client(env) as c:
        for user in ('sub_psb', 'cdo_psb', 'rev_city'):
            h.session_doc(h.login(c, user, h.demo_password(env)))
        ok, records, broken, _ = h.audit_verify(aud)
        assert ok and broken is None
        newest = int(h.psql(env, 'SELECT max(id) FROM audit_log', user='postgres'))
        _as_owner_without_trigger(env, f'DELETE FROM audit_log WHERE id >= {newest - 1}')
        ok, records2, broken, reason = h.audit_verify(aud)
        assert (ok, broken) == (False, newest), f'ok {ok}, firstBroken {broken} ({reason})'
        assert 'removed' in reason, reason
        assert records2 == records - 2
