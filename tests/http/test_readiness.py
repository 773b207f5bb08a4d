"""Liveness and readiness: /healthz answers while the process lives; /readyz
follows the database, and the pool rides out a database restart without
restarting its workers."""

import time

import requests

import itpm_http as h


def log_tail(env, n=30):
    try:
        with open(env['ITPM_LOG'], errors='replace') as f:
            return '\n'.join(l[:200] for l in f.read().splitlines()[-n:])
    except FileNotFoundError:
        return '(no log)'


def test_healthz_is_plain_ok(session):
    r = session.get('/healthz')
    assert r.status_code == 200, h.describe(r)
    assert h.media_type(r) == 'text/plain', h.describe(r)
    assert r.text.strip() == 'ok'


def test_readyz_ok_when_database_answers(session):
    r = session.get('/readyz')
    assert r.status_code == 200, h.describe(r)


def test_database_down_then_back(private_stack, problem):
    env = private_stack('[server]\nworkers = 2\n')
    master = h.master_pid(env)
    with h.Client(env, user=h.DEMO_USER) as c:
        kids = h.wait_children(master, 2, 10)
        assert c.get('/readyz').status_code == 200

        h.stack_cmd(env, 'pg-stop')
        r = c.get('/readyz')
        doc = problem(r, 503)
        assert 'database' in h.problem_text(doc, 'detail').lower(), h.describe(r)
        r = c.get('/healthz')
        assert r.status_code == 200, h.describe(r)
        r = c.get('/api/v1/regions')
        problem(r, 503)

        h.stack_cmd(env, 'pg-start')
        t0 = time.monotonic()

        def ready():
            try:
                return c.get('/readyz').status_code == 200
            except requests.RequestException:
                return False
        h.wait_until(ready, 5, '/readyz 200 after pg-start', 0.2)
        assert h.children(master) == kids, \
            f'workers restarted: before {kids}, after {h.children(master)}'
        assert h.master_pid(env) == master
        # Every worker reconnects by itself: soon (a worker may hold off a
        # quarter second after a failed connect) ten requests in a row succeed.
        last = []

        def all_served():
            last[:] = [c.get('/api/v1/regions/321322').status_code for _ in range(10)]
            return last == [200] * 10
        try:
            h.wait_until(all_served, 3, 'ten requests in a row served', 0.2)
        except AssertionError:
            raise AssertionError(
                f'GET /api/v1/regions/321322 x10, {time.monotonic() - t0:.1f} s '
                f'after pg-start: {last}; itpmd log: {log_tail(env)}')
        assert h.children(master) == kids


def test_writes_after_a_database_restart_unseen_by_the_workers(private_stack):
    """PostgreSQL restarts between two requests and nothing reads meanwhile:
    every worker's connection is closed by the server. A write cannot be
    retried once sent (it may have run), so each worker must find its
    connection closed before it sends: the first write on each (a login)
    succeeds, none answers 503."""
    env = private_stack('[server]\nworkers = 2\n')
    pw = h.demo_password(env)
    kids = h.wait_children(h.master_pid(env), 2, 10)
    served = h.logins_on_every_worker(env, 'sub_psb', pw, kids)
    assert all(s == 200 for v in served.values() for s in v)
    h.stack_cmd(env, 'pg-stop')
    h.stack_cmd(env, 'pg-start')
    after = h.logins_on_every_worker(env, 'cdo_psb', pw, kids)
    assert all(s == 200 for v in after.values() for s in v), \
        f'logins after a restart of PostgreSQL, by worker: {after}; itpmd log: {log_tail(env)}'
