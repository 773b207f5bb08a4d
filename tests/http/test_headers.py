"""Response headers a browser and an auditor rely on, on success and on
refusals alike; the request id; TLS."""

import re
import uuid

import pytest
import requests

import itpm_http as h


def _ok(session):
    r = session.get('/api/v1/regions')  # a logged-in client
    assert r.status_code == 200, h.describe(r)
    return r


def _not_found(session):
    r = session.get('/api/v1/no-such-thing')
    assert r.status_code == 404, h.describe(r)
    return r


def _too_large(session, env):
    size = h.conf_int(env, 'server', 'max_body', 1048576) + 1
    r = session.post('/api/v1/session', data=b'x' * size,
                     headers={'Content-Type': 'application/xml'})
    assert r.status_code == 413, h.describe(r)
    return r


RESPONSES = {'200': lambda s, e: _ok(s), '404': lambda s, e: _not_found(s),
             '413': _too_large}


@pytest.mark.parametrize('kind', sorted(RESPONSES))
def test_security_headers(auth_session, env, kind):
    r = RESPONSES[kind](auth_session, env)
    hd = r.headers
    hsts = hd.get('Strict-Transport-Security', '')
    assert re.search(r'max-age=\d+', hsts), f'HSTS {hsts!r}: {h.describe(r)}'
    assert int(re.search(r'max-age=(\d+)', hsts).group(1)) > 0
    assert hd.get('Content-Security-Policy'), f'no CSP: {h.describe(r)}'
    assert hd.get('X-Content-Type-Options', '').lower() == 'nosniff', h.describe(r)
    assert hd.get('Referrer-Policy'), f'no Referrer-Policy: {h.describe(r)}'
    cache = [v.strip().lower() for v in hd.get('Cache-Control', '').split(',')]
    assert 'no-store' in cache, f'Cache-Control {hd.get("Cache-Control")!r} on /api/'
    server = hd.get('Server', '')
    assert not re.search(r'nginx/\d', server, re.I), f'Server: {server!r}'
    assert not re.search(r'\d+\.\d+', server), f'Server reveals a version: {server!r}'


def test_no_version_on_nginx_own_errors(session):
    r = session.get('/api/v1/regions', headers={'X-Filler': 'a' * 65536})
    assert 400 <= r.status_code < 500, h.describe(r)
    assert not re.search(r'nginx/\d', r.headers.get('Server', ''), re.I)
    assert not re.search(rb'nginx/\d', r.content, re.I), h.describe(r)


def test_request_id_is_echoed(auth_session):
    rid = 'itpm-test-' + uuid.uuid4().hex
    for path in ('/api/v1/regions', '/api/v1/no-such-thing', '/healthz'):
        r = auth_session.get(path, headers={'X-Request-Id': rid})
        assert r.headers.get('X-Request-Id') == rid, h.describe(r)


@pytest.mark.parametrize('hostile', ['a b"c<script>', 'x' * 300, 'id;rm -rf', '../../etc'])
def test_unsafe_request_id_is_replaced(session, hostile):
    """A request id that is not a plain token never reaches the response (or
    the logs): a fresh one is generated instead."""
    r = session.get('/healthz', headers={'X-Request-Id': hostile})
    rid = r.headers.get('X-Request-Id', '')
    assert rid != hostile, h.describe(r)
    assert re.fullmatch(r'[A-Za-z0-9._:-]{8,128}', rid), f'X-Request-Id {rid!r}'


def test_request_id_is_generated_when_absent(auth_session):
    ids = []
    for path in ('/api/v1/regions', '/api/v1/regions', '/api/v1/no-such-thing'):
        r = auth_session.get(path)
        rid = r.headers.get('X-Request-Id', '')
        assert re.fullmatch(r'[A-Za-z0-9._:-]{8,128}', rid), \
            f'X-Request-Id {rid!r}: {h.describe(r)}'
        ids.append(rid)
    assert len(set(ids)) == len(ids), f'request ids repeat: {ids}'


def test_tls_certificate_verifies_against_stack_ca(env, base_url):
    ca = env.get('ITPM_CA')
    assert ca, 'env lacks ITPM_CA'
    s = requests.Session()
    s.trust_env = False
    try:
        r = s.get(base_url + '/healthz', verify=ca, timeout=h.DEFAULT_TIMEOUT)
    except requests.exceptions.SSLError as e:
        pytest.fail(f'{base_url} does not verify against {ca}: {e}')
    assert r.status_code == 200


def test_plain_http_is_not_served_on_the_https_port(base_url):
    plain = base_url.replace('https://', 'http://', 1)
    s = requests.Session()
    s.trust_env = False
    try:
        r = s.get(plain + '/healthz', timeout=h.DEFAULT_TIMEOUT, allow_redirects=False)
    except requests.RequestException:
        return  # refused outright: fine
    assert r.status_code != 200 or r.text.strip() != 'ok', 'health answered over plain HTTP'
