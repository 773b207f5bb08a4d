"""Single sign-on tokens of the demo identity provider, signed here with
PyJWT (an implementation independent of itpmd's) from the stack's PEM keys:
valid RS256 and ES256 tokens are accepted as Bearer and exchanged for a
session; forged, expired, misdirected and hostile tokens are refused with
401 and make itpmd connect nowhere."""

import functools
import json
import time

import pytest

import itpm_http as h

SSO = h.SESSION + '/sso'
XML = {'Content-Type': 'application/xml'}


def exchange(client, token, **kw):
    return client.post(SSO, data=h.sso_body(token), headers=XML, **kw)


# --------------------------------------------------------------------------
# valid tokens

@pytest.mark.parametrize('kind', ['RSA', 'EC'])
def test_valid_token_is_accepted_as_bearer(env, session, kind):
    token = h.sso_token(env, kind, sub=f'sso-{kind.lower()}', roles=['reviewer', 'director'],
                        unit='321322-DATA', region='321322', name='徐敏（单点）')
    r = session.get(h.SESSION, headers=h.bearer(token))
    doc = h.session_doc(r)
    assert {k: doc[k] for k in ('user', 'name', 'unit', 'region', 'roles', 'via')} == \
        {'user': f'sso-{kind.lower()}', 'name': '徐敏（单点）', 'unit': '321322-DATA',
         'region': '321322', 'roles': {'reviewer', 'director'}, 'via': 'bearer'}, h.describe(r)
    assert doc['csrfToken'] is None and doc['clearance'] is None, h.describe(r)
    assert not h.set_cookies(r), h.describe(r)
    r = session.get('/api/v1/regions/321322', headers=h.bearer(token))
    assert r.status_code == 200, h.describe(r)


@pytest.mark.parametrize('kind', ['RSA', 'EC'])
def test_valid_token_is_exchanged_for_a_cookie_session(env, session, kind):
    token = h.sso_token(env, kind, sub=f'sso-x-{kind.lower()}', clearance='classified',
                        roles=['auditor'])
    r = exchange(session, token)
    doc = h.session_doc(r)
    assert (doc['user'], doc['via'], doc['roles'], doc['clearance']) == \
        (f'sso-x-{kind.lower()}', 'cookie', {'auditor'}, 'classified'), h.describe(r)
    value, attrs = h.session_cookie(r)
    assert attrs.get('httponly') and attrs.get('secure') and attrs.get('samesite') == 'Strict'
    with h.Client(env) as c:
        c.use_token(value)
        again = h.session_doc(c.get(h.SESSION))
        assert again['user'] == doc['user'] and again['via'] == 'cookie'
        assert c.get('/api/v1/audit/verify').status_code == 200


def test_token_with_fractional_times_and_layout_around_it(env, session):
    """RFC 7519's NumericDate may carry a fraction (time.time() + 600): read;
    white space around the token in <token> is layout: ignored."""
    import time
    now = time.time()
    token = h.sso_token(env, 'RSA', sub='sso-frac', iat=now, nbf=now - 5.5, exp=now + 600.25)
    r = session.get('/api/v1/regions/321322', headers=h.bearer(token))
    assert r.status_code == 200, h.describe(r)
    body = (f'<sso xmlns="{h.ITPM_NS}">\n  <token>\n    {token}\n  </token>\n</sso>').encode()
    r = session.post('/api/v1/session/sso', data=body, headers={'Content-Type': 'application/xml'})
    assert h.session_doc(r)['user'] == 'sso-frac', h.describe(r)
    expired = h.sso_token(env, 'RSA', sub='sso-frac', iat=now - 900.5, nbf=now - 900.5,
                          exp=now - 300.75)
    r = session.get('/api/v1/regions/321322', headers=h.bearer(expired))
    assert r.status_code == 401, h.describe(r)


def test_token_claims_decide_roles_not_the_route(env, session, problem):
    token = h.sso_token(env, roles=['submitter'])
    problem(session.get('/api/v1/audit', headers=h.bearer(token)), 403)


# --------------------------------------------------------------------------
# hostile tokens

def _public_pem(env):
    from cryptography.hazmat.primitives import serialization
    return h.sso_private_key(env, 'RSA').public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=None)
def _attacker_key(kind='RSA'):
    """The attacker's own key pair (made once per run: RSA is slow to make)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if kind == 'RSA':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _attacker_jwk(key):
    n = key.public_key().public_numbers()
    return {'kty': 'RSA', 'kid': 'attacker', 'alg': 'RS256', 'use': 'sig',
            'n': h.b64url(n.n.to_bytes((n.n.bit_length() + 7) // 8, 'big')),
            'e': h.b64url(n.e.to_bytes(3, 'big'))}


def hostile_tokens(env, listener_url):
    """name -> token; each must be refused with 401."""
    rsa, ec = h.sso_private_key(env, 'RSA'), h.sso_private_key(env, 'EC')
    rkid, ekid = h.sso_kid(env, 'RSA'), h.sso_kid(env, 'EC')
    claims = h.sso_claims(env)
    now = int(time.time())
    hdr = {'alg': 'RS256', 'typ': 'JWT', 'kid': rkid}
    attacker = _attacker_key()
    tokens = {
        'alg none': h.raw_token({'alg': 'none', 'typ': 'JWT', 'kid': rkid}, claims),
        'alg none, no kid': h.raw_token({'alg': 'none'}, claims),
        'HS256 keyed with the public key PEM': None,  # below
        'unknown kid': h.sso_token(env, headers={'kid': 'no-such-key'}),
        'expired': h.sso_token(env, exp=now - 3600, nbf=now - 7200, iat=now - 7200),
        'not yet valid': h.sso_token(env, nbf=now + 3600, exp=now + 7200),
        'wrong iss': h.sso_token(env, iss=env['ITPM_SSO_ISSUER'] + '.evil.example'),
        'wrong aud': h.sso_token(env, aud='someone-else'),
        'tampered payload': None,  # below
        'no exp': h.sso_token(env, exp=None),
        'kid with a path': h.sso_token(env, headers={'kid': '../../etc/passwd'}),
        'kid with SQL': h.sso_token(env, headers={'kid': "' OR '1'='1"}),
        'jku to a local port': h.raw_token(
            {**hdr, 'jku': listener_url + 'jwks.json'}, claims, attacker),
        'x5u to a local port': h.raw_token(
            {**hdr, 'x5u': listener_url + 'cert.pem'}, claims, attacker),
        'jku, own kid': h.raw_token(
            {'alg': 'RS256', 'kid': 'attacker', 'jku': listener_url + 'k'}, claims, attacker),
        'embedded jwk': h.raw_token({**hdr, 'jwk': _attacker_jwk(attacker)}, claims, attacker),
        'unknown crit': h.raw_token({**hdr, 'crit': ['urn:example:unknown'],
                                     'urn:example:unknown': True}, claims, rsa),
        'duplicated alg': h.raw_token(
            '{"alg":"RS256","typ":"JWT","kid":%s,"alg":"none"}' % json.dumps(rkid), claims, rsa),
        'ES256 r = s = 0': h.raw_token({'alg': 'ES256', 'typ': 'JWT', 'kid': ekid}, claims,
                                       signature=bytes(64)),
        'ES256 header, RSA kid': h.raw_token({'alg': 'ES256', 'kid': rkid}, claims, ec),
        'RS256 header, EC kid': h.raw_token({'alg': 'RS256', 'kid': ekid}, claims, rsa),
        'over 8 KB': h.sso_token(env, pad='x' * 8300),
        'unit and region disagree': h.sso_token(env, unit='321322-DATA', region='321300'),
        # Claims outside the user model (xsd/ unitCode, regionCode).
        'region not digits': h.sso_token(env, unit='abcdef-X', region='abcdef'),
        'unit in lower case': h.sso_token(env, unit='321300-psb', region='321300'),
        'unit without its code': h.sso_token(env, unit='321300', region='321300'),
        'unit code too long': h.sso_token(env, unit='321300-' + 'A' * 17, region='321300'),
        'no role': h.sso_token(env, roles=[]),
        'signed by another key': h.raw_token(hdr, claims, attacker),
    }
    h64, p64, s64 = h.sso_token(env).split('.')
    tokens['HS256 keyed with the public key PEM'] = _hs256(
        {'alg': 'HS256', 'typ': 'JWT', 'kid': rkid}, claims, _public_pem(env))
    forged = dict(claims, roles=['admin', 'auditor'], sub='sso-mallory')
    tokens['tampered payload'] = f'{h64}.{h.b64url(json.dumps(forged))}.{s64}'
    assert len(tokens['over 8 KB']) > 8192
    return tokens


def _hs256(header, claims, key):
    import hashlib
    import hmac
    h64 = h.b64url(json.dumps(header))
    p64 = h.b64url(json.dumps(claims))
    mac = hmac.new(key, f'{h64}.{p64}'.encode(), hashlib.sha256).digest()
    return f'{h64}.{p64}.{h.b64url(mac)}'


HOSTILE = ['alg none', 'alg none, no kid', 'HS256 keyed with the public key PEM',
           'unknown kid', 'expired', 'not yet valid', 'wrong iss', 'wrong aud',
           'tampered payload', 'no exp', 'kid with a path', 'kid with SQL',
           'jku to a local port', 'x5u to a local port', 'jku, own kid', 'embedded jwk',
           'unknown crit', 'duplicated alg', 'ES256 r = s = 0', 'ES256 header, RSA kid',
           'RS256 header, EC kid', 'over 8 KB', 'unit and region disagree',
           'region not digits', 'unit in lower case', 'unit without its code',
           'unit code too long', 'no role',
           'signed by another key']


@pytest.fixture(scope='module')
def listener():
    with h.Listener() as lst:
        yield lst


def test_every_hostile_case_is_built(hostile):
    assert sorted(hostile) == sorted(HOSTILE)


@pytest.fixture(scope='module')
def hostile(env, listener):
    return hostile_tokens(env, listener.url())


@pytest.mark.parametrize('case', HOSTILE)
def test_hostile_token_is_refused_as_bearer(session, problem, listener, hostile, case):
    token = hostile[case]
    before = len(listener.connections)
    for path in (h.SESSION, '/api/v1/regions'):
        r = session.get(path, headers=h.bearer(token))
        problem(r, 401)
        assert r.headers.get('WWW-Authenticate', '').lower().startswith('bearer'), h.describe(r)
    time.sleep(0.3)
    assert len(listener.connections) == before, \
        f'itpmd connected to {listener.url()} for a token with {case}'


def test_hostile_tokens_are_not_exchanged(private_stack, problem):
    """The same tokens at POST /api/v1/session/sso: 401, no cookie, and no
    connection to the listener. On a private stack: each refused exchange
    counts as a failed login."""
    env = private_stack('[throttle]\naccount_failures = 1000\naddress_failures = 100000\n')
    master = h.master_pid(env)
    kids = h.wait_children(master, h.conf_int(env, 'server', 'workers', 4), 10)
    wrong = []
    with h.Listener() as lst, h.Client(env) as c:
        tokens = hostile_tokens(env, lst.url())
        for case in HOSTILE:
            r = exchange(c, tokens[case])
            if r.status_code != 401 or h.set_cookies(r):
                wrong.append(f'{case}: {h.describe(r)} {h.set_cookies(r)}')
            else:
                problem(r, 401)
        time.sleep(0.3)
        assert not lst.connections, f'itpmd connected to {lst.url()}: {lst.connections}'
        assert not wrong, '\n'.join(wrong)
        # Malformed <sso> documents: 4xx, no cookie.
        for body in (b'<sso xmlns="urn:itpm:1"><token></token></sso>',
                     b'<sso xmlns="urn:itpm:1"/>',
                     b'<sso xmlns="urn:itpm:1"><token>a.b.c</token></sso>',
                     b'<sso xmlns="urn:itpm:1"><token>' + b'A' * 70000 + b'</token></sso>',
                     b'<sso xmlns="urn:itpm:1"><token>' + h.sso_token(env).encode() +
                     b'</token><token>x</token></sso>'):
            r = c.post(SSO, data=body, headers=XML)
            if not 400 <= r.status_code < 500 or h.set_cookies(r):
                wrong.append(f'{body[:60]!r}: {h.describe(r)}')
        assert not wrong, '\n'.join(wrong)
        # A valid token still goes through: the refusals did no harm.
        h.session_doc(exchange(c, h.sso_token(env)))
    assert h.children(master) == kids, 'a worker died on a hostile token'


def test_token_used_before_is_refused_once_expired(private_stack, problem):
    """A token accepted (and perhaps remembered) earlier is refused as soon
    as it expires, by every worker (clock_skew 0 on this stack)."""
    env = private_stack('[sso]\nclock_skew = 0\n')
    exp = int(time.time()) + 3
    token = h.sso_token(env, exp=exp)
    with h.Client(env) as c:
        for _ in range(8):
            h.session_doc(c.get(h.SESSION, headers=h.bearer(token)))
        h.wait_until(lambda: time.time() >= exp + 1, 10, 'the token expired', 0.1)
        for _ in range(8):
            problem(c.get(h.SESSION, headers=h.bearer(token)), 401)


def test_exchange_without_sso_keys_is_503_and_counts_against_no_one(private_stack, problem):
    """With no JWKS configured single sign-on is off: the exchange is 503
    (the server's state, not the caller's failure) and no failed login is
    counted against the address."""
    env = private_stack('[sso]\njwks_file =\n')
    token = h.sso_token(env)
    with h.Client(env) as c:
        for _ in range(3):
            r = c.post('/api/v1/session/sso', data=f'<sso xmlns="urn:itpm:1"><token>{token}'
                       '</token></sso>'.encode(), headers={'Content-Type': 'application/xml'})
            problem(r, 503)
    assert h.psql(env, 'SELECT count(*) FROM login_failures') == '0'
