"""Helpers for the black-box HTTP suite: the stack's env file, an HTTPS client,
problem+xml and schema checks, Prometheus text, process inspection under /proc,
and a PostgreSQL table lock that makes requests slow without any test endpoint.

Everything here looks at the system from outside, as an operator would.
"""

import configparser
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import requests
import urllib3
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
XSD_DIR = REPO / 'xsd'
STACK = REPO / 'scripts' / 'stack'

# verify=False is only a fallback when the stack's CA does not verify;
# test_headers.py::test_tls_certificate_verifies_against_stack_ca reports that.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

DEFAULT_TIMEOUT = (5, 20)  # connect, read (seconds)


# --------------------------------------------------------------------------
# env file and configuration

def read_env_file(path):
    """Parse `KEY=value` lines (shell style, optional quotes) into a dict."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('export '):
            line = line[len('export '):]
        key, sep, value = line.partition('=')
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
            value = value[1:-1]
        env[key.strip()] = value
    return env


def read_conf(env):
    """The itpmd INI file as configparser (later keys override earlier ones)."""
    cp = configparser.ConfigParser(strict=False, interpolation=None,
                                   inline_comment_prefixes=(';', '#'))
    cp.read_string(Path(env['ITPM_CONF']).read_text())
    return cp


def conf_int(env, section, key, default):
    cp = read_conf(env)
    if cp.has_option(section, key) and cp.get(section, key).strip():
        return int(cp.get(section, key).strip())
    return default


def itpm_bin():
    """The itpmd binary for private stacks: $ITPM_BIN, else the one the shared
    stack (ITPM_ENV) runs, else build/itpmd."""
    if os.environ.get('ITPM_BIN'):
        return os.environ['ITPM_BIN']
    shared = os.environ.get('ITPM_ENV')
    if shared and os.path.isfile(shared):
        b = read_env_file(shared).get('ITPM_BIN')
        if b:
            return b
    return str(REPO / 'build' / 'itpmd')


# --------------------------------------------------------------------------
# HTTP client

class Client(requests.Session):
    """requests.Session bound to one stack: base URL, TLS, default time-out,
    no proxies from the environment."""

    def __init__(self, env):
        super().__init__()
        self.base_url = env['ITPM_URL'].rstrip('/')
        self.trust_env = False
        self.verify = tls_verify(env)

    def request(self, method, url, *args, **kwargs):
        if url.startswith('/'):
            url = self.base_url + url
        kwargs.setdefault('timeout', DEFAULT_TIMEOUT)
        kwargs.setdefault('allow_redirects', False)
        return super().request(method, url, *args, **kwargs)


_verify_cache = {}


def tls_verify(env):
    """ITPM_CA when the stack's certificate verifies against it, else False."""
    url = env['ITPM_URL'].rstrip('/')
    if url in _verify_cache:
        return _verify_cache[url]
    ca = env.get('ITPM_CA')
    verify = False
    if ca and os.path.exists(ca):
        try:
            s = requests.Session()
            s.trust_env = False
            s.get(url + '/healthz', verify=ca, timeout=DEFAULT_TIMEOUT)
            verify = ca
        except requests.exceptions.SSLError:
            verify = False
        except requests.exceptions.RequestException:
            return ca  # not up yet: don't cache, try the CA
    _verify_cache[url] = verify
    return verify


def describe(resp):
    """One line naming a response, for assertion messages."""
    body = resp.content[:400].decode('utf-8', 'replace')
    return (f'{resp.request.method} {resp.request.path_url[:120]} -> '
            f'{resp.status_code} {resp.headers.get("Content-Type")!r} {body!r}')


# --------------------------------------------------------------------------
# XML: problem documents and the API's schemas

_schemas = {}


def schema(name):
    if name not in _schemas:
        path = XSD_DIR / name
        assert path.is_file(), f'schema {path} is missing'
        _schemas[name] = etree.XMLSchema(etree.parse(str(path)))
    return _schemas[name]


def parse_xml(resp):
    parser = etree.XMLParser(resolve_entities=False, no_network=True,
                             load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(resp.content, parser=parser)
    except etree.XMLSyntaxError as e:
        raise AssertionError(f'not well-formed XML ({e}): {describe(resp)}')


def validate(resp, xsd_name):
    """Parse the body, validate it against xsd/<xsd_name>, return the root."""
    root = parse_xml(resp)
    s = schema(xsd_name)
    if not s.validate(root):
        errors = '; '.join(f'line {e.line}: {e.message}' for e in s.error_log)
        raise AssertionError(f'invalid against {xsd_name}: {errors}: {describe(resp)}')
    return root


def media_type(resp):
    return resp.headers.get('Content-Type', '').split(';')[0].strip().lower()


PROBLEM_NS = 'urn:ietf:rfc:7807'
ITPM_NS = 'urn:itpm:1'


def problem(resp, status=None):
    """Assert an application/problem+xml reply valid against xsd/problem.xsd;
    return its root element. With `status`, the HTTP status must be that."""
    if status is not None:
        assert resp.status_code == status, describe(resp)
    assert media_type(resp) == 'application/problem+xml', describe(resp)
    root = validate(resp, 'problem.xsd')
    assert root.tag == f'{{{PROBLEM_NS}}}problem', describe(resp)
    got = root.findtext(f'{{{PROBLEM_NS}}}status')
    assert got is not None and got.strip() == str(resp.status_code), \
        f'<status>{got}</status> differs from HTTP status: {describe(resp)}'
    return root


def problem_text(root, field):
    return (root.findtext(f'{{{PROBLEM_NS}}}{field}') or '').strip()


# --------------------------------------------------------------------------
# Prometheus text format

_NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
_SAMPLE_RE = re.compile(rf'^({_NAME})(?:\{{(.*)\}})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\.)*)"\s*(?:,|$)')


def _parse_labels(text, line):
    labels = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        assert m and m.end() > pos, f'bad labels in metrics line {line!r}'
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def parse_metrics(text):
    """Strictly parse Prometheus text exposition format.
    Returns (samples, helps, types): samples a list of (name, labels, value)."""
    samples, helps, types = [], {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith('#'):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == 'HELP':
                helps[parts[2]] = parts[3] if len(parts) > 3 else ''
            elif len(parts) >= 3 and parts[1] == 'TYPE':
                assert len(parts) == 4 and parts[3] in (
                    'counter', 'gauge', 'histogram', 'summary', 'untyped'), \
                    f'bad TYPE line {line!r}'
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE_RE.match(line)
        assert m, f'metrics line is not `name{{labels}} value`: {line!r}'
        labels = _parse_labels(m.group(2), line) if m.group(2) else {}
        try:
            value = float(m.group(3))
        except ValueError:
            raise AssertionError(f'bad value in metrics line {line!r}')
        samples.append((m.group(1), labels, value))
    return samples, helps, types


def family_of(name, types):
    if name in types:
        return name
    for suffix in ('_bucket', '_sum', '_count', '_total', '_created'):
        if name.endswith(suffix) and name[:-len(suffix)] in types:
            return name[:-len(suffix)]
    return None


def metric(samples, name, **labels):
    """Sum of the samples called `name` whose labels include `labels`;
    None when there is no such sample."""
    found = [v for n, l, v in samples
             if n == name and all(l.get(k) == v2 for k, v2 in labels.items())]
    return sum(found) if found else None


def get_metrics(client):
    r = client.get('/metrics')
    assert r.status_code == 200, describe(r)
    return parse_metrics(r.text)[0]


# --------------------------------------------------------------------------
# processes

def proc_stat(pid):
    """(comm, state, ppid) of a process, or None when it does not exist."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rp = data.rindex(')')
    comm = data[data.index('(') + 1:rp]
    fields = data[rp + 2:].split()
    return comm, fields[0], int(fields[1])


def alive(pid):
    """True while the process exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ('Z', 'X')


def children(pid):
    """Sorted pids of the live children of `pid` (scans /proc/*/stat)."""
    kids = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[2] == pid and st[1] not in ('Z', 'X'):
            kids.append(int(name))
    return sorted(kids)


def descendants(pid):
    out = []
    todo = [pid]
    while todo:
        for k in children(todo.pop()):
            out.append(k)
            todo.append(k)
    return out


def read_pid(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def master_pid(env):
    pid = read_pid(env['ITPM_PIDFILE'])
    assert pid and alive(pid), f'no live itpmd master in {env["ITPM_PIDFILE"]}'
    return pid


def workers(env):
    return children(master_pid(env))


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll `predicate` until it returns something truthy; return that.
    Fail with `what` (and the last value) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f'after {timeout} s: {what} (last: {value!r})')
        time.sleep(interval)


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------
# PostgreSQL, as the owner role over the unix socket

def psql(env, sql, timeout=15, app_name='itpm-http-tests'):
    """Run SQL as the owner; return stdout (unaligned, tuples only)."""
    cmd = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
           '-h', env['ITPM_PG_HOST'], '-p', env['ITPM_PG_PORT'],
           '-U', env.get('ITPM_PG_OWNER', 'itpm_owner'),
           '-d', env.get('ITPM_PG_DB', 'itpm'), '-c', sql]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, PGAPPNAME=app_name,
                                PGCONNECT_TIMEOUT='5'))
    assert r.returncode == 0, f'psql failed ({r.returncode}): {r.stderr.strip()}'
    return r.stdout.strip()


# Lock every table the owner owns, then sleep inside the transaction: any
# request that reads the database waits for the lock. Locking all of them
# keeps the tests independent of the table names the lead chose.
_LOCK_SQL = """
BEGIN;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT schemaname, tablename FROM pg_tables
           WHERE tableowner = current_user
             AND schemaname NOT IN ('pg_catalog', 'information_schema')
  LOOP
    EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE',
                   r.schemaname, r.tablename);
  END LOOP;
END $$;
SELECT pg_sleep({seconds});
COMMIT;
"""


class TableLock:
    """Context manager: hold ACCESS EXCLUSIVE locks on the owner's tables for
    `seconds` from a background psql. Entering waits until the locks are held;
    leaving ends the locking session at once (pg_terminate_backend) unless
    it already finished, so no test leaves a lock behind."""

    def __init__(self, env, seconds):
        self.env = env
        self.seconds = seconds
        self.app_name = 'itpm-test-lock-' + uuid.uuid4().hex[:8]
        self.proc = None
        self.held_at = None

    def __enter__(self):
        e = self.env
        cmd = ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
               '-h', e['ITPM_PG_HOST'], '-p', e['ITPM_PG_PORT'],
               '-U', e.get('ITPM_PG_OWNER', 'itpm_owner'),
               '-d', e.get('ITPM_PG_DB', 'itpm'),
               '-c', _LOCK_SQL.format(seconds=float(self.seconds))]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PGAPPNAME=self.app_name, PGCONNECT_TIMEOUT='5'))
        try:
            count_tables = int(psql(e, "SELECT count(*) FROM pg_tables WHERE "
                                       "tableowner = current_user AND schemaname "
                                       "NOT IN ('pg_catalog','information_schema')"))
            assert count_tables > 0, 'the owner role owns no table to lock'

            def sleeping():
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f'lock session ended early: {self.proc.stderr.read()}')
                return psql(e, "SELECT count(*) FROM pg_stat_activity "
                               f"WHERE application_name = '{self.app_name}' "
                               "AND wait_event = 'PgSleep'") == '1'
            wait_until(sleeping, 10, 'the lock session holds its locks')
        except BaseException:
            self.release()
            raise
        self.held_at = time.monotonic()
        return self

    def wait_for_blocked_request(self, timeout=5):
        """Wait until a backend of the app role is waiting for a lock, i.e. a
        request is in flight inside a worker. (pg_locks is readable by any
        role; pg_stat_activity's wait columns are not, for other roles.)"""
        app = self.env.get('ITPM_PG_APP', 'itpm_app')
        sql = ("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
               f"ON a.pid = l.pid WHERE NOT l.granted AND a.usename = '{app}'")
        return wait_until(lambda: int(psql(self.env, sql)) > 0, timeout,
                          'a request of the daemon waits on the table lock '
                          '(does the endpoint read the database?)', interval=0.1)

    def wait(self, timeout):
        """Let the lock run its course."""
        self.proc.wait(timeout=timeout)

    def release(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                psql(self.env, "SELECT pg_terminate_backend(pid) FROM "
                               "pg_stat_activity WHERE application_name = "
                               f"'{self.app_name}'")
            except (AssertionError, subprocess.TimeoutExpired):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def __exit__(self, *exc):
        self.release()
        return False


# --------------------------------------------------------------------------
# scripts/stack

def run_stack(cmd, state_dir, extra_env=None, timeout=90):
    env = dict(os.environ, ITPM_BIN=itpm_bin())
    env.update(extra_env or {})
    return subprocess.run([str(STACK), cmd, str(state_dir)], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=str(REPO))


def stack_cmd(env, cmd, timeout=90):
    """Run `scripts/stack CMD DIR` on a (private) stack; fail on error."""
    r = run_stack(cmd, env['ITPM_STATE'], timeout=timeout)
    assert r.returncode == 0, (f'scripts/stack {cmd} {env["ITPM_STATE"]} exited '
                               f'{r.returncode}: {r.stdout[-1500:]} {r.stderr[-1500:]}')
    return r


def wait_children(pid, n, timeout=10):
    """Wait until process `pid` has exactly `n` live children; return them."""
    def check():
        kids = children(pid)
        return kids if len(kids) == n else None
    return wait_until(check, timeout, f'process {pid} has {n} live children')
