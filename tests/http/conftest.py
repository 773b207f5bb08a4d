"""Fixtures of the black-box HTTP suite.

The suite talks HTTPS to nginx only. It needs a running stack: set ITPM_ENV
to the env file that `scripts/stack up DIR` writes (DIR/env). Destructive
tests (killing the master, stopping PostgreSQL, SIGTERM, SIGHUP with a new
configuration) start a private stack of their own through `private_stack`
and always take it down again, so the shared stack stays usable.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import itpm_http as h
import lifecycle_api as L

STACK_UP_TIMEOUT = 180
STACK_DOWN_TIMEOUT = 90
SANITIZER_RE = re.compile(r'ERROR: AddressSanitizer|runtime error:|LeakSanitizer')


@pytest.fixture(scope='session')
def env():
    path = os.environ.get('ITPM_ENV')
    if not path:
        pytest.fail('ITPM_ENV is not set: start a stack with '
                    '`scripts/stack up DIR` and run with ITPM_ENV=DIR/env',
                    pytrace=False)
    if not os.path.isfile(path):
        pytest.fail(f'ITPM_ENV={path}: no such file (did `scripts/stack up` '
                    'finish?)', pytrace=False)
    e = h.read_env_file(path)
    missing = [k for k in ('ITPM_URL', 'ITPM_CONF', 'ITPM_PIDFILE', 'ITPM_LOG',
                           'ITPM_PG_HOST', 'ITPM_PG_PORT') if k not in e]
    if missing:
        pytest.fail(f'{path} lacks {", ".join(missing)}', pytrace=False)
    return e


@pytest.fixture(scope='session')
def base_url(env):
    return env['ITPM_URL'].rstrip('/')


@pytest.fixture
def session(env):
    """HTTPS client for the shared stack; paths may be given as '/api/...'."""
    with h.Client(env) as s:
        yield s


@pytest.fixture
def auth_session(env):
    """HTTPS client for the shared stack with a session of h.DEMO_USER (one
    login per run; the cookie is reused)."""
    with h.Client(env, user=h.DEMO_USER) as s:
        yield s


@pytest.fixture(scope='session')
def auditor(env):
    """auditor1's client on the shared stack, for reading the audit trail."""
    with h.Client(env, user='auditor1') as s:
        yield s


def pytest_collection_modifyitems(session, config, items):
    """Tests marked `run_last` (the audit chain check) run after all others."""
    last = [i for i in items if i.get_closest_marker('run_last')]
    if last:
        items[:] = [i for i in items if not i.get_closest_marker('run_last')] + last


def pytest_configure(config):
    config.addinivalue_line('markers', 'run_last: run after every other test '
                            '(checks what the whole suite left behind)')
    config.addinivalue_line('markers', 'slow: a large case (thousands of records); '
                            'runs in every suite run')


@pytest.fixture(scope='session')
def problem():
    """problem(resp[, status]) -> root of a schema-valid problem+xml reply."""
    return h.problem


def _stack_processes(state_dir):
    """Pids of everything a stack in state_dir runs, found from its pid files."""
    env_file = Path(state_dir) / 'env'
    if not env_file.exists():
        return []
    e = h.read_env_file(env_file)
    roots = []
    for key in ('ITPM_PIDFILE', 'ITPM_NGINX_PIDFILE'):
        if e.get(key):
            roots.append(h.read_pid(e[key]))
    if e.get('ITPM_PGDATA'):
        roots.append(h.read_pid(Path(e['ITPM_PGDATA']) / 'postmaster.pid'))
    pids = []
    for p in roots:
        if p and h.alive(p):
            pids.append(p)
            pids.extend(h.descendants(p))
    return pids


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


def _keep_logs(d, test_name):
    """Copy a failed test's private stack logs to .state/test-logs/http/."""
    dest = h.REPO / '.state' / 'test-logs' / 'http' / re.sub(r'[^\w.-]+', '_', test_name)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    for f in list(Path(d, 'log').glob('*')) + [Path(d, 'itpmd.ini'), Path(d, 'nginx.conf')]:
        if f.is_file():
            shutil.copy(f, dest / f.name)
    return dest


@pytest.fixture
def private_stack(request):
    """Factory: private_stack(extra_conf='') starts `scripts/stack up` in a new
    temporary folder with ITPM_CONF_EXTRA=extra_conf and returns its parsed
    env. Teardown always runs `scripts/stack down` and checks that nothing
    of the stack is left running."""
    made = []
    watched = {}

    def make(extra_conf=''):
        # Short path under /tmp: unix socket paths are limited to 107 bytes;
        # 0755 so the postgres and nginx users can reach their files.
        d = tempfile.mkdtemp(prefix='itpm-', dir='/tmp')
        os.chmod(d, 0o755)
        made.append(d)
        t0 = time.monotonic()
        r = h.run_stack('up', d, {'ITPM_CONF_EXTRA': extra_conf}, STACK_UP_TIMEOUT)
        watched[d] = _stack_processes(d)
        assert r.returncode == 0, (f'scripts/stack up {d} exited {r.returncode} '
                                   f'after {time.monotonic() - t0:.1f} s: '
                                   f'{r.stdout[-2000:]} {r.stderr[-2000:]}')
        e = h.read_env_file(Path(d) / 'env')
        e.setdefault('ITPM_STATE', d)
        return e

    yield make

    errors = []
    for d in made:
        before = set(watched.get(d, [])) | set(_stack_processes(d))
        try:
            r = h.run_stack('down', d)
            if r.returncode != 0:
                errors.append(f'scripts/stack down {d} exited {r.returncode}: '
                              f'{r.stdout[-1000:]} {r.stderr[-1000:]}')
        except subprocess.TimeoutExpired:
            errors.append(f'scripts/stack down {d} took over {STACK_DOWN_TIMEOUT} s')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(h.alive(p) for p in before):
            time.sleep(0.1)
        left = [p for p in before if h.alive(p)]
        if left:
            errors.append(f'after scripts/stack down {d}, still running: ' +
                          ', '.join(f'{p} ({h.proc_stat(p)[0]})' for p in left
                                    if h.proc_stat(p)))
            for p in left:  # our own private stack's processes
                h.kill_quietly(p, signal.SIGKILL)
        # The logs go with the folder: report sanitizer findings first
        # (scripts/test only scans the shared stack's logs).
        for log in sorted(Path(d, 'log').glob('itpmd*')):
            hits = [l for l in log.read_text(errors='replace').splitlines()
                    if SANITIZER_RE.search(l)]
            if hits:
                errors.append(f'sanitizer report in {log.name} of private stack '
                              f'{d}:\n' + '\n'.join(hits[:20]))
        rep = getattr(request.node, 'rep_call', None)
        if errors or rep is None or rep.failed:
            print(f'logs of {d} kept in {_keep_logs(d, request.node.name)}')
        shutil.rmtree(d, ignore_errors=True)
    if errors:
        pytest.fail('\n'.join(errors), pytrace=False)


@pytest.fixture(scope='module')
def users(env):
    """The demo users of the shared stack, each logged in on first use
    (lifecycle_api.Users), with the expert pool the reviews draw from."""
    u = L.Users(env)
    L.ensure_expert_pool(u['admin1'])
    yield u
    u.close()
