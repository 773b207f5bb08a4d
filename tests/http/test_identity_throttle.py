"""Failed-login throttling, on private stacks with small limits (the shared
stack's real limits are 5 per account and 50 per address in 15 minutes, and
every test comes from 127.0.0.1)."""

import threading
import time
import uuid

import itpm_http as h

LIMITS = '[throttle]\naccount_failures = 3\naddress_failures = 20\nwindow = 60\n'
WINDOW = 60


def _login(env, user, password, request_id):
    with h.Client(env) as c:
        return h.login(c, user, password, headers={'X-Request-Id': request_id})


def _retry_after(r):
    value = r.headers.get('Retry-After', '')
    assert value.isdigit(), f'Retry-After {value!r}: {h.describe(r)}'
    return int(value)


def test_account_locked_after_failures_on_every_worker(private_stack, problem):
    env = private_stack('[server]\nworkers = 4\n' + LIMITS)
    master = h.master_pid(env)
    h.wait_children(master, 4, 10)
    pw = h.demo_password(env)

    for i in range(3):
        r = _login(env, 'rev_shuyang', 'wrong-' + str(i), 'itpm-thr-' + uuid.uuid4().hex)
        problem(r, 401)
    locked_at = time.monotonic()

    # Now refused with 429 even with the right password, whichever worker
    # answers: 24 tries from 4 concurrent clients.
    tries = h.spread_logins(env, 'rev_shuyang', pw, 24)
    pids = {}
    for request_id, r in tries:
        problem(r, 429)
        assert not h.set_cookies(r), h.describe(r)
        ra = _retry_after(r)
        elapsed = time.monotonic() - locked_at
        assert WINDOW - elapsed - 2 <= ra <= WINDOW, \
            f'Retry-After {ra} s, {elapsed:.1f} s into a {WINDOW} s lock'
        pid = h.wait_until(lambda: h.log_pid_of(env, request_id), 3,
                           f'request {request_id} in {env["ITPM_LOG"]}')
        pids[pid] = pids.get(pid, 0) + 1
    assert len(pids) >= 2, f'all 24 locked logins were served by one worker: {pids}'
    assert set(pids) <= set(h.children(master)), f'pids {pids} vs workers {h.children(master)}'

    # Another account from the same address is not locked (3 < 20).
    with h.Client(env) as c:
        h.session_doc(h.login(c, 'dir_shuyang', pw))
        # The lock outlives the stream of refused tries: still 429.
        problem(h.login(c, 'REV_SHUYANG', pw), 429)


def test_account_lock_holds_for_every_spelling_of_the_uid(private_stack, problem):
    """The directory finds rev_shuyang as ' rev_shuyang', 'REV_SHUYANG',
    'ｒｅｖ_shuyang' or with a no-break space too: once the account is
    locked, no spelling gets in."""
    env = private_stack(LIMITS)
    pw = h.demo_password(env)
    # slapd folds case (Unicode too: fullwidth letters, long s), surrounding
    # spaces of any kind (no-break, em, ideographic) and fullwidth punctuation.
    spellings = [' rev_shuyang', 'rev_shuyang ', 'Rev_Shuyang', 'rev_shuyang\u3000',
                 '\u00a0rev_shuyang', '\u2003rev_shuyang', '\uff52\uff45\uff56_shuyang',
                 'rev\uff3fshuyang', 'rev_\u017fhuyang']
    with h.Client(env) as c:
        for i in range(3):
            problem(h.login(c, 'rev_shuyang', f'wrong-{i}'), 401)
        got = {s: h.login(c, s, pw).status_code for s in spellings}
        # Spellings the throttle folds (ASCII case, spaces, U+3000) meet the
        # lock (429); the others are refused before the directory (401).
        # Either way, none gets in.
        assert all(code in (401, 429) for code in got.values()), \
            f'account rev_shuyang locked after 3 failures; right password as: {got}'
        assert all(got[s] == 429 for s in spellings[:4]), got


def test_other_spellings_never_reach_the_account(private_stack, problem):
    """Unicode respellings that LDAP would fold onto dir_shuyang are refused
    before any directory look-up, even with the right password, so they can
    neither guess the password nor dodge the account's lock."""
    env = private_stack(LIMITS)
    pw = h.demo_password(env)
    with h.Client(env) as c:
        for s in ['\u00a0dir_shuyang', '\uff44\uff49\uff52_shuyang', 'dir_\u017fhuyang']:
            r = h.login(c, s, pw)
            problem(r, 401)
            assert not h.set_cookies(r), h.describe(r)
        r = h.login(c, 'dir_shuyang', pw)
        assert r.status_code == 200, h.describe(r)


def test_address_locked_after_failures_across_accounts(private_stack, problem):
    env = private_stack(LIMITS)
    pw = h.demo_password(env)
    with h.Client(env) as c:
        for i in range(20):
            r = h.login(c, f'nobody-{i}-{uuid.uuid4().hex[:6]}', pw)
            problem(r, 401)
        r = h.login(c, 'sub_edu_sy', pw)
        problem(r, 429)
        assert not h.set_cookies(r), h.describe(r)
        assert 0 < _retry_after(r) <= WINDOW


def test_failed_sso_exchanges_do_not_lock_out_other_users(private_stack, problem):
    """Bad tokens at /session/sso are failures of no account: three of them
    must not lock out the next, valid token of another user (the address,
    with 3 failures, is below its limit of 20)."""
    env = private_stack(LIMITS)
    with h.Client(env) as c:
        for i in range(3):
            bad = h.sso_token(env, iss='https://not-the-idp.example')
            problem(c.post(h.SESSION + '/sso', data=h.sso_body(bad),
                           headers={'Content-Type': 'application/xml'}), 401)
        good = h.sso_token(env, sub='sso-someone-else')
        r = c.post(h.SESSION + '/sso', data=h.sso_body(good),
                   headers={'Content-Type': 'application/xml'})
        assert r.status_code == 200, \
            f'a valid token of another user refused after 3 bad tokens: {h.describe(r)}'


def test_guesses_sent_at_once_get_no_more_tries_than_the_limit(private_stack, problem):
    """24 wrong passwords for one account released together over 24
    connections (4 workers): at most the limit (3) reach the directory and
    get 401, every other one 429, and exactly the limit is counted."""
    env = private_stack('[server]\nworkers = 4\n' + LIMITS)
    h.wait_children(h.master_pid(env), 4, 10)
    n = 24
    barrier = threading.Barrier(n)
    results = []
    lock = threading.Lock()

    def guess(i):
        with h.Client(env) as c:
            barrier.wait(timeout=30)
            r = h.login(c, 'dir_shuyang', f'wrong-{i}')
        with lock:
            results.append(r)
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = sorted(r.status_code for r in results)
    assert len(statuses) == n and set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= 3, statuses
    for r in results:
        problem(r, r.status_code)
    counted = h.psql(env, "SELECT count(*) FROM login_failures WHERE username = 'dir_shuyang'")
    assert int(counted) == statuses.count(401) == 3, (counted, statuses)
