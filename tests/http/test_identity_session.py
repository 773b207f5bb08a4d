"""Sessions as a browser holds them: the cookie and its flags, a new token at
every login, logout, idle and absolute time-outs, and the CSRF token and
Origin that every unsafe request with a cookie must carry."""

import re
import time

import pytest

import itpm_http as h

TOKEN_RE = re.compile(r'[A-Za-z0-9_-]{43}')


def whoami(env, token):
    with h.Client(env) as c:
        c.use_token(token)
        return c.get(h.SESSION)


def test_cookie_flags(env, session):
    r = h.login(session, 'rev_city2', h.demo_password(env))
    doc = h.session_doc(r)
    lines = [l for l in h.set_cookies(r) if l.startswith(h.SESSION_COOKIE + '=')]
    assert len(lines) == 1, f'Set-Cookie lines: {h.set_cookies(r)}'
    value, attrs = h.session_cookie(r)
    assert TOKEN_RE.fullmatch(value), f'token {value!r} is not 256 bits of base64url'
    absolute = h.conf_int(env, 'session', 'absolute_timeout', 28800)
    assert attrs == {'path': '/', 'max-age': str(absolute), 'secure': True,
                     'httponly': True, 'samesite': 'Strict'}, lines[0]
    # __Host- cookies carry no Domain; the token is never in the body.
    assert value.encode() not in r.content
    assert doc['csrfToken'] != value


def test_session_document_by_cookie(env, session, problem):
    c = h.logged_in(env, 'jr_sec')
    with c:
        doc = h.session_doc(c.get(h.SESSION))
        assert doc['via'] == 'cookie' and doc['csrfToken'] == c.csrf
        assert doc['clearance'] == 'classified'
    problem(session.get(h.SESSION), 401)


def test_new_token_at_every_login(env, session):
    pw = h.demo_password(env)
    a = h.logged_in(env, 'sub_health')
    b = h.logged_in(env, 'sub_health')
    with a, b:
        assert a.token != b.token and a.csrf != b.csrf
        # Two logins (two browsers): both live.
        assert whoami(env, a.token).status_code == 200
        assert whoami(env, b.token).status_code == 200
        # Logging in again with a session cookie replaces that session.
        r = h.login(a, 'sub_health', pw)
        h.session_doc(r)
        c_token = h.session_cookie(r)[0]
        assert c_token not in (a.token, b.token)
        assert whoami(env, a.token).status_code == 401, 'the replaced session still works'
        assert whoami(env, c_token).status_code == 200
        assert whoami(env, b.token).status_code == 200


def test_logout_ends_the_session(env, auditor, problem):
    c = h.logged_in(env, 'cdo_health')
    with c:
        assert c.get('/api/v1/regions').status_code == 200
        r = c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf})
        assert r.status_code == 204, h.describe(r)
        assert r.content == b''
        cleared = h.session_cookie(r)
        assert cleared and cleared[0] == '' and cleared[1].get('max-age') == '0', \
            f'logout does not clear the cookie: {h.set_cookies(r)}'
        problem(c.get(h.SESSION), 401)
        problem(c.get('/api/v1/regions'), 401)
        problem(c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf}), 401)
    recs, _ = h.audit_records(auditor, object='user:cdo_health', limit=1000)
    assert 'logout' in [x['action'] for x in recs], recs


def test_unsafe_method_without_csrf_token_is_403(env, problem):
    c = h.logged_in(env, 'dir_shuyang')
    other = h.logged_in(env, 'dir_shuyang')
    with c, other:
        problem(c.delete(h.SESSION), 403)
        problem(c.delete(h.SESSION, headers={'X-CSRF-Token': ''}), 403)
        problem(c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf[:-1]}), 403)
        problem(c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf + 'x'}), 403)
        problem(c.delete(h.SESSION, headers={'X-CSRF-Token': other.csrf}), 403)
        problem(c.delete(h.SESSION, headers={'X-CSRF-Token': c.token}), 403)
        # None of that ended the session.
        doc = h.session_doc(c.get(h.SESSION))
        assert doc['user'] == 'dir_shuyang'
        r = c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf})
        assert r.status_code == 204, h.describe(r)
        problem(c.get(h.SESSION), 401)
        h.session_doc(other.get(h.SESSION))


@pytest.mark.parametrize('origin', ['https://evil.example', 'null', 'http://{host}',
                                    'https://{host}:1', 'https://{host}.evil.example'])
def test_unsafe_method_from_another_origin_is_403(env, problem, origin):
    host = env['ITPM_URL'].split('://', 1)[1].rstrip('/')
    c = h.logged_in(env, 'expert2')
    with c:
        r = c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf,
                                         'Origin': origin.format(host=host)})
        problem(r, 403)
        h.session_doc(c.get(h.SESSION))
        r = c.delete(h.SESSION, headers={'X-CSRF-Token': c.csrf,
                                         'Origin': env['ITPM_URL'].rstrip('/')})
        assert r.status_code == 204, h.describe(r)


def test_bearer_request_needs_no_csrf_token(env):
    """A token in Authorization is not sent by a browser on its own."""
    with h.Client(env) as c:
        r = c.delete(h.SESSION, headers=h.bearer(h.sso_token(env)))
        assert r.status_code == 204, h.describe(r)


def test_idle_and_absolute_timeouts(private_stack, problem):
    """idle_timeout 5 s: a session left alone for 7 s is over; one used every
    2 s lives on, until absolute_timeout (20 s) after its login."""
    env = private_stack('[session]\nidle_timeout = 5\nabsolute_timeout = 20\n')
    idle = h.logged_in(env, 'sub_agri')
    busy = h.logged_in(env, 'cdo_agri')
    t0 = time.monotonic()
    with idle, busy:
        assert h.session_cookie(idle.get(h.SESSION)) is None
        assert busy.doc['expires'] is not None
        seen = []
        idle_checked = False
        while time.monotonic() - t0 < 17:
            r = busy.get('/api/v1/regions/321322')
            seen.append((round(time.monotonic() - t0, 1), r.status_code))
            if not idle_checked and time.monotonic() - t0 >= 7:
                problem(idle.get(h.SESSION), 401)
                problem(idle.get('/api/v1/regions'), 401)
                idle_checked = True
            time.sleep(2)
        assert idle_checked
        assert all(s == 200 for _, s in seen), f'a session in use ended early: {seen}'
        h.wait_until(lambda: time.monotonic() - t0 >= 21, 10, '21 s after the login', 0.2)
        r = busy.get(h.SESSION)
        problem(r, 401)
        # Logging in again works.
        h.session_doc(h.login(busy, 'cdo_agri', h.demo_password(env)))
