"""Every request leaves one line in the daemon's log with its id, method,
path and status."""

import re
import uuid
from pathlib import Path

import itpm_http as h


def _lines_with(env, rid):
    try:
        text = Path(env['ITPM_LOG']).read_text(errors='replace')
    except FileNotFoundError:
        return []
    return [l for l in text.splitlines() if rid in l]


def test_request_log_line(env, auth_session):
    cases = [('GET', '/api/v1/regions/321322', 200),
             ('GET', '/api/v1/no-such-thing', 404),
             ('DELETE', '/api/v1/regions', 405)]
    for method, path, status in cases:
        rid = 'itpm-log-' + uuid.uuid4().hex
        r = auth_session.request(method, path, headers={'X-Request-Id': rid})
        assert r.status_code == status, h.describe(r)
        lines = h.wait_until(lambda: _lines_with(env, rid), 3,
                             f'a line with request id {rid} in {env["ITPM_LOG"]}')
        access = [l for l in lines if re.search(rf'\b{method}\b', l) and path in l
                  and re.search(rf'\b{status}\b', l)]
        assert len(access) == 1, \
            f'want one line with {rid}, {method}, {path}, {status}; got {lines}'
