"""The directory goes away and comes back (private stack): logins get a 503
problem within the configured time-out, the pool stays healthy, /readyz
names the directory, existing sessions and tokens keep working, and after
slapd is back logins work again without restarting itpmd."""

import time

import requests

import itpm_http as h

LDAP_TIMEOUTS = '[server]\nworkers = 2\n[ldap]\ntimeout = 2\nnetwork_timeout = 2\n'


def _served_by(env, tries):
    """{worker pid: statuses} of (request id, response) pairs, from the log."""
    by = {}
    for request_id, r in tries:
        pid = h.wait_until(lambda: h.log_pid_of(env, request_id), 3,
                           f'request {request_id} in {env["ITPM_LOG"]}')
        by.setdefault(pid, []).append(r.status_code)
    return by


def test_directory_down_then_back(private_stack, problem):
    env = private_stack(LDAP_TIMEOUTS)
    pw = h.demo_password(env)
    master = h.master_pid(env)
    kids = h.wait_children(master, 2, 10)
    with h.Client(env) as c:
        # Both workers have logged someone in (talked to slapd) before it goes.
        served = {}
        for _ in range(5):
            for pid, statuses in _served_by(env, h.spread_logins(env, 'sub_psb', pw, 8)).items():
                served.setdefault(pid, []).extend(statuses)
            if set(served) == set(kids):
                break
        assert set(served) == set(kids), f'logins reached only workers {sorted(served)} of {kids}'
        assert all(s == 200 for v in served.values() for s in v), served
        held = h.logged_in(env, 'rev_city')
        assert c.get('/readyz').status_code == 200

        h.stack_cmd(env, 'ldap-stop')
        for i in range(4):
            t0 = time.monotonic()
            r = h.login(c, 'cdo_psb', pw)
            took = time.monotonic() - t0
            doc = problem(r, 503)
            assert not h.set_cookies(r), h.describe(r)
            assert took < 2 + 2 + 1, f'login took {took:.1f} s with [ldap] timeouts of 2 s'
            assert 'directory' in h.problem_text(doc, 'detail').lower(), h.describe(r)
        r = c.get('/readyz')
        doc = problem(r, 503)
        assert 'directory' in h.problem_text(doc, 'detail').lower(), h.describe(r)
        r = c.get('/healthz')
        assert r.status_code == 200, h.describe(r)
        assert h.children(master) == kids, f'workers changed: {kids} -> {h.children(master)}'
        # What does not need the directory goes on.
        with held:
            h.session_doc(held.get(h.SESSION))
            assert held.get('/api/v1/regions').status_code == 200
        r = c.get(h.SESSION, headers=h.bearer(h.sso_token(env)))
        h.session_doc(r)

        h.stack_cmd(env, 'ldap-start')

        def ready():
            try:
                return c.get('/readyz').status_code == 200
            except requests.RequestException:
                return False
        h.wait_until(ready, 10, '/readyz 200 after ldap-start', 0.2)
        after = _served_by(env, h.spread_logins(env, 'cdo_psb', pw, 16))
        assert all(s == 200 for v in after.values() for s in v), \
            f'logins after slapd came back (and /readyz said ready), by worker: {after}'
        assert h.children(master) == kids, 'itpmd restarted its workers'
        assert h.master_pid(env) == master
