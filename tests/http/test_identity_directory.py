"""The directory goes away and comes back (private stack): logins get a 503
problem within the configured time-out, the pool stays healthy, /readyz
names the directory, existing sessions and tokens keep working, and after
slapd is back logins work again without restarting itpmd."""

import subprocess
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
        served = h.logins_on_every_worker(env, 'sub_psb', pw, kids)
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


def test_directory_restart_unseen_by_the_workers(private_stack):
    """slapd restarts between two logins and nothing else asks it meanwhile
    (no /readyz): every worker's kept connections are stale, search and bind
    alike, and the first login on each must still succeed (one retry on
    fresh connections), not answer 503."""
    env = private_stack(LDAP_TIMEOUTS)
    pw = h.demo_password(env)
    kids = h.wait_children(h.master_pid(env), 2, 10)
    h.logins_on_every_worker(env, 'sub_psb', pw, kids)
    h.stack_cmd(env, 'ldap-stop')
    h.stack_cmd(env, 'ldap-start')
    after = h.logins_on_every_worker(env, 'cdo_psb', pw, kids)
    assert all(s == 200 for v in after.values() for s in v), \
        f'logins after a restart of slapd, by worker: {after}'


def test_a_role_group_outside_the_group_base_grants_nothing(private_stack):
    """Roles come from groups under group_base_dn only: a group named like a
    role group (cn=itpm-admin) made anywhere else in the directory, by
    whoever may create entries there, gives its members nothing."""
    env = private_stack()
    base = env['ITPM_LDAP_BASE']
    ldif = (f'dn: ou=elsewhere,{base}\nobjectClass: organizationalUnit\nou: elsewhere\n\n'
            f'dn: cn=itpm-admin,ou=elsewhere,{base}\nobjectClass: groupOfNames\n'
            f'cn: itpm-admin\nmember: uid=norole,ou=people,{base}\n')
    r = subprocess.run(['ldapadd', '-x', '-H', env['ITPM_LDAP_URI'], '-D', env['ITPM_LDAP_ADMIN_DN'],
                        '-w', env['ITPM_LDAP_ADMIN_PW']], input=ldif, capture_output=True,
                       text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    with h.Client(env) as c:
        r = h.login(c, 'norole', h.demo_password(env))
        assert r.status_code == 403, h.describe(r)
        assert not h.set_cookies(r), h.describe(r)
