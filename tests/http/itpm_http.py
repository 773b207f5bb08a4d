"""Helpers for the black-box HTTP suite: the stack's env file, an HTTPS client,
problem+xml and schema checks, Prometheus text, process inspection under /proc,
and a PostgreSQL table lock that makes requests slow without any test endpoint.

Everything here looks at the system from outside, as an operator would.
"""

import base64
import configparser
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
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

class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The suite keeps the session cookie itself (explicit Cookie header), so
    what is sent is always what the test says."""

    def set_ok(self, cookie, request):
        return False

    def return_ok(self, cookie, request):
        return False


class Client(requests.Session):
    """requests.Session bound to one stack: base URL, TLS, default time-out,
    no proxies from the environment, no cookie jar.

    With `user`, the client logs that demo user in (once per stack and user,
    see login_token) and sends the session cookie with every request.

    Every application/xml or application/problem+xml body the API returns is
    validated against xsd/itpm.xsd or xsd/problem.xsd (validate_xml=False
    turns that off for one client)."""

    def __init__(self, env, user=None, validate_xml=True):
        super().__init__()
        self.env = env
        self.base_url = env['ITPM_URL'].rstrip('/')
        self.trust_env = False
        self.verify = tls_verify(env)
        self.cookies.set_policy(_NoCookies())
        self.validate_xml = validate_xml
        self.token = None
        self.csrf = None
        if user is not None:
            self.use_token(login_token(env, user))

    def use_token(self, token, csrf=None):
        """Send `token` as the session cookie from now on (None: no cookie)."""
        self.token = token
        self.csrf = csrf
        if token is None:
            self.headers.pop('Cookie', None)
        else:
            self.headers['Cookie'] = f'{SESSION_COOKIE}={token}'

    def request(self, method, url, *args, **kwargs):
        if url.startswith('/'):
            url = self.base_url + url
        kwargs.setdefault('timeout', DEFAULT_TIMEOUT)
        kwargs.setdefault('allow_redirects', False)
        resp = super().request(method, url, *args, **kwargs)
        if self.validate_xml:
            check_xml(resp)
        return resp


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


def check_xml(resp):
    """Every XML document the API returns is valid against its schema."""
    mt = media_type(resp)
    if mt == 'application/xml' and resp.content:
        validate(resp, 'itpm.xsd')
    elif mt == 'application/problem+xml':
        validate(resp, 'problem.xsd')


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

def proc_fields(pid):
    """(comm, the fields of /proc/PID/stat after it: fields[0] is the state),
    or None when the process does not exist."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rp = data.rindex(')')
    return data[data.index('(') + 1:rp], data[rp + 2:].split()


def proc_stat(pid):
    """(comm, state, ppid) of a process, or None when it does not exist."""
    st = proc_fields(pid)
    return None if st is None else (st[0], st[1][0], int(st[1][1]))


def cpu_ticks(pid):
    """utime + stime of a process in clock ticks (None when it is gone)."""
    st = proc_fields(pid)
    return None if st is None else int(st[1][11]) + int(st[1][12])


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

def psql_run(env, sql, user=None, timeout=15, app_name='itpm-http-tests'):
    """Run SQL (one script, stops at the first error) as `user` (default: the
    owner role); return the CompletedProcess (unaligned, tuples only)."""
    cmd = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
           '-h', env['ITPM_PG_HOST'], '-p', env['ITPM_PG_PORT'],
           '-U', user or env.get('ITPM_PG_OWNER', 'itpm_owner'),
           '-d', env.get('ITPM_PG_DB', 'itpm')]
    return subprocess.run(cmd, input=sql, capture_output=True, text=True,
                          timeout=timeout,
                          env=dict(os.environ, PGAPPNAME=app_name,
                                   PGCONNECT_TIMEOUT='5'))


def psql(env, sql, timeout=15, app_name='itpm-http-tests', user=None):
    """Run SQL as the owner (or `user`); return stdout (unaligned, tuples only)."""
    r = psql_run(env, sql, user=user, timeout=timeout, app_name=app_name)
    assert r.returncode == 0, f'psql as {user or "owner"} failed ({r.returncode}): {r.stderr.strip()}'
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


# --------------------------------------------------------------------------
# identity: the demo directory, logins, session documents

SESSION = '/api/v1/session'
# The demo user whose session the suite uses where any logged-in user will
# do (GET /api/v1/regions needs a login since the identity work).
DEMO_USER = 'auditor1'
SESSION_COOKIE = '__Host-itpm_session'
DEMO_LDIF = REPO / 'scripts' / 'ldap' / 'demo.ldif'
ROLES = ('submitter', 'cdo', 'reviewer', 'director', 'expert', 'joint_reviewer',
         'county_admin', 'evaluator', 'auditor', 'admin')
# The stack's directory groups ([roles] defaults of itpmd: itpm-<role> with
# dashes); itpm-classified carries the clearance.
GROUP_ROLE = {'itpm-' + r.replace('_', '-'): r for r in ROLES}
CLASSIFIED_GROUP = 'itpm-classified'


def _ldif_entries(path):
    """The entries of an LDIF file as lists of (attribute, value)."""
    entries, cur, last = [], [], None
    for raw in Path(path).read_text(encoding='utf-8').splitlines():
        if raw.startswith('#'):
            continue
        if not raw.strip():
            if cur:
                entries.append(cur)
            cur, last = [], None
            continue
        if raw.startswith(' ') and last is not None:
            k, v = cur[-1]
            cur[-1] = (k, v + raw[1:])
            continue
        key, _, value = raw.partition(':')
        if value.startswith(':'):
            value = base64.b64decode(value[1:].strip()).decode('utf-8')
        else:
            value = value.strip()
        cur.append((key.strip(), value))
        last = key
    if cur:
        entries.append(cur)
    return entries


def demo_directory():
    """Every person of scripts/ldap/demo.ldif as dicts: uid, dn, name (cn),
    unit (departmentNumber), region (l), roles (set, from the groups) and
    classified (member of itpm-classified)."""
    people, members = [], {}
    for entry in _ldif_entries(DEMO_LDIF):
        attrs = {}
        for k, v in entry:
            attrs.setdefault(k.lower(), []).append(v)
        classes = {c.lower() for c in attrs.get('objectclass', [])}
        if 'inetorgperson' in classes:
            people.append({'uid': attrs['uid'][0], 'dn': attrs['dn'][0].lower(),
                           'name': attrs['cn'][0],
                           'unit': attrs['departmentnumber'][0],
                           'region': attrs['l'][0]})
        elif 'groupofnames' in classes:
            members[attrs['cn'][0]] = {m.lower() for m in attrs.get('member', [])}
    for p in people:
        p['roles'] = {role for group, role in GROUP_ROLE.items()
                      if p['dn'] in members.get(group, set())}
        p['classified'] = p['dn'] in members.get(CLASSIFIED_GROUP, set())
    return people


def demo_users():
    """uid -> person for the uids that name exactly one entry."""
    people = demo_directory()
    count = {}
    for p in people:
        count[p['uid']] = count.get(p['uid'], 0) + 1
    return {p['uid']: p for p in people if count[p['uid']] == 1}


def demo_password(env):
    pw = env.get('ITPM_DEMO_PASSWORD')
    assert pw, 'the stack env lacks ITPM_DEMO_PASSWORD (slapd not part of the stack yet?)'
    return pw


def login_body(username, password):
    """<login> document; text is escaped by lxml."""
    root = etree.Element(f'{{{ITPM_NS}}}login', nsmap={None: ITPM_NS})
    etree.SubElement(root, f'{{{ITPM_NS}}}username').text = username
    if password is not None:
        etree.SubElement(root, f'{{{ITPM_NS}}}password').text = password
    return etree.tostring(root, xml_declaration=True, encoding='UTF-8')


def login(client, username, password, form=False, headers=None):
    """POST /api/v1/session (XML, or form-encoded with form=True: refused, 415)."""
    hd = dict(headers or {})
    if form:
        data = urllib.parse.urlencode({'username': username, 'password': password})
        hd.setdefault('Content-Type', 'application/x-www-form-urlencoded')
    else:
        data = login_body(username, password)
        hd.setdefault('Content-Type', 'application/xml')
    return client.post(SESSION, data=data, headers=hd)


def session_cookie(resp):
    """The Set-Cookie line for the session cookie parsed into (value, attrs):
    attrs maps lower-case attribute names to values (True for flags).
    None when the response sets no session cookie."""
    for line in resp.raw.headers.getlist('Set-Cookie') if resp.raw is not None else []:
        parts = [p.strip() for p in line.split(';')]
        name, _, value = parts[0].partition('=')
        if name != SESSION_COOKIE:
            continue
        attrs = {}
        for p in parts[1:]:
            if not p:
                continue
            k, sep, v = p.partition('=')
            attrs[k.strip().lower()] = v.strip() if sep else True
        return value, attrs
    return None


def set_cookies(resp):
    """All Set-Cookie header lines of a response."""
    return resp.raw.headers.getlist('Set-Cookie') if resp.raw is not None else []


def session_doc(resp, status=200):
    """A <session> reply (schema-valid) as a dict: user, name, unit, region,
    roles (set), clearance, via, csrfToken, expires."""
    assert resp.status_code == status, describe(resp)
    assert media_type(resp) == 'application/xml', describe(resp)
    root = validate(resp, 'itpm.xsd')
    assert root.tag == f'{{{ITPM_NS}}}session', describe(resp)
    ns = f'{{{ITPM_NS}}}'
    doc = {k: root.findtext(ns + k) for k in
           ('user', 'name', 'unit', 'region', 'clearance', 'via', 'csrfToken', 'expires')}
    doc['roles'] = {e.text for e in root.iter(ns + 'role')}
    return doc


_token_cache = {}


def login_token(env, user=DEMO_USER, password=None):
    """Log a demo user in (once per stack and user; the cookie is reused
    while it still works) and return the session token."""
    key = (env['ITPM_URL'], user)
    token = _token_cache.get(key)
    with Client(env) as c:
        if token is not None:
            c.use_token(token)
            if c.get(SESSION).status_code == 200:
                return token
        r = login(c, user, password or demo_password(env))
        assert r.status_code == 200, f'login of {user}: {describe(r)}'
        cookie = session_cookie(r)
        assert cookie, f'login of {user} set no session cookie: {describe(r)}'
    _token_cache[key] = cookie[0]
    return cookie[0]


def logged_in(env, user, password=None):
    """A new Client with a fresh session of `user` (not cached); .token,
    .csrf and .doc (the session document of the login reply) are set."""
    c = Client(env)
    r = login(c, user, password or demo_password(env))
    doc = session_doc(r)
    cookie = session_cookie(r)
    assert cookie, f'login of {user} set no session cookie: {describe(r)}'
    c.use_token(cookie[0], doc['csrfToken'])
    c.doc = doc
    return c


def audit_records(client, **params):
    """GET /api/v1/audit with params; list of dicts (id, at, actor, role,
    address, requestId, action, object, summary, hash) and the next marker."""
    r = client.get('/api/v1/audit', params=params)
    assert r.status_code == 200, describe(r)
    assert media_type(r) == 'application/xml', describe(r)
    root = validate(r, 'itpm.xsd')
    assert root.tag == f'{{{ITPM_NS}}}auditRecords', describe(r)
    ns = f'{{{ITPM_NS}}}'
    out = []
    for rec in root.iter(ns + 'record'):
        d = {child.tag[len(ns):]: (child.text or '') for child in rec}
        d['id'] = int(rec.get('id'))
        out.append(d)
    return out, root.get('next')


def audit_verify(client):
    """GET /api/v1/audit/verify -> (ok, records, firstBroken id or None, reason)."""
    r = client.get('/api/v1/audit/verify')
    assert r.status_code == 200, describe(r)
    root = validate(r, 'itpm.xsd')
    assert root.tag == f'{{{ITPM_NS}}}auditVerification', describe(r)
    broken = root.find(f'{{{ITPM_NS}}}firstBroken')
    ok = root.get('ok') in ('true', '1')
    return (ok, int(root.get('records')),
            int(broken.get('id')) if broken is not None else None,
            broken.get('reason') if broken is not None else None)


def spread_logins(env, user, password, n, threads=4):
    """n logins of `user` from `threads` concurrent clients, so that several
    workers serve them; list of (request id, response)."""
    out, lock = [], threading.Lock()

    def run(k):
        with Client(env) as c:
            for _ in range(k):
                request_id = 'itpm-spread-' + uuid.uuid4().hex
                r = login(c, user, password, headers={'X-Request-Id': request_id})
                with lock:
                    out.append((request_id, r))
    ts = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    return out


def logins_on_every_worker(env, user, password, workers, rounds=5):
    """Logins of `user` spread over the pool until every pid in `workers`
    has served one (at most `rounds` rounds of 8); {worker pid: statuses}."""
    by = {}
    for _ in range(rounds):
        for rid, r in spread_logins(env, user, password, 8):
            pid = wait_until(lambda: log_pid_of(env, rid), 3, f'request {rid} in {env["ITPM_LOG"]}')
            by.setdefault(pid, []).append(r.status_code)
        if set(by) == set(workers):
            return by
    raise AssertionError(f'logins reached only workers {sorted(by)} of {sorted(workers)}')


def log_pid_of(env, rid):
    """The worker pid the request log names for request id `rid`, or None."""
    try:
        text = Path(env['ITPM_LOG']).read_text(errors='replace')
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if f'rid={rid} ' in line:
            m = re.search(r'\bpid=(\d+)', line)
            if m:
                return int(m.group(1))
    return None


# --------------------------------------------------------------------------
# SSO: tokens of the stack's demo identity provider, signed here

def b64url(data):
    if isinstance(data, str):
        data = data.encode('utf-8')
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def _pem(env, key):
    value = env.get(key)
    assert value, f'the stack env lacks {key} (SSO demo keys not part of the stack yet?)'
    if value.lstrip().startswith('-----BEGIN'):
        return value.encode()
    return Path(value).read_bytes()


def sso_private_key(env, kind='RSA'):
    """The demo IdP's private key (cryptography object), kind RSA or EC."""
    from cryptography.hazmat.primitives import serialization
    pem = _pem(env, 'ITPM_SSO_RSA_KEY' if kind == 'RSA' else 'ITPM_SSO_EC_KEY')
    return serialization.load_pem_private_key(pem, password=None)


def sso_kid(env, kind='RSA'):
    key = 'ITPM_SSO_RSA_KID' if kind == 'RSA' else 'ITPM_SSO_EC_KID'
    assert env.get(key), f'the stack env lacks {key}'
    return env[key]


def sso_claims(env, **override):
    """Claims of a valid token (a city PSB submitter), with overrides; an
    override of None removes the claim."""
    now = int(time.time())
    claims = {'iss': env['ITPM_SSO_ISSUER'], 'aud': env['ITPM_SSO_AUDIENCE'],
              'iat': now, 'nbf': now - 5, 'exp': now + 600,
              'sub': 'sso-zhangwei', 'name': '张伟（单点）', 'unit': '321300-PSB',
              'region': '321300', 'roles': ['submitter']}
    for k, v in override.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def sso_token(env, kind='RSA', claims=None, headers=None, **override):
    """A token signed with PyJWT (an implementation independent of itpmd's)."""
    import jwt
    alg = 'RS256' if kind == 'RSA' else 'ES256'
    hd = {'kid': sso_kid(env, kind), 'typ': 'JWT'}
    hd.update(headers or {})
    return jwt.encode(claims if claims is not None else sso_claims(env, **override),
                      sso_private_key(env, kind), algorithm=alg, headers=hd)


def sign_raw(key, signing_input):
    """RS256 or ES256 (raw r||s) signature of bytes with a cryptography key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, 'big') + s.to_bytes(32, 'big')


def raw_token(header, claims, key=None, signature=None):
    """A compact JWS built by hand: header is a dict or the exact JSON text;
    signed with `key` (cryptography private key) unless `signature` (bytes)
    is given."""
    h64 = b64url(header if isinstance(header, str) else json.dumps(header))
    p64 = b64url(claims if isinstance(claims, str) else json.dumps(claims))
    signing_input = f'{h64}.{p64}'.encode('ascii')
    if signature is None:
        signature = sign_raw(key, signing_input) if key is not None else b''
    return f'{h64}.{p64}.{b64url(signature)}'


def sso_body(token):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sso xmlns="{ITPM_NS}">'
            f'<token>{token}</token></sso>').encode()


def bearer(token):
    return {'Authorization': f'Bearer {token}'}


class Listener:
    """A TCP listener on a free loopback port that records every connection
    made to it (a stand-in for a key URL a token might point at)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def url(self, path='/'):
        return f'https://127.0.0.1:{self.port}{path}'

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections.append(addr)
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# --------------------------------------------------------------------------
# slapd

def slapd_log_text(env):
    path = env.get('ITPM_SLAPD_LOG')
    assert path, 'the stack env lacks ITPM_SLAPD_LOG'
    try:
        return Path(path).read_text(errors='replace')
    except FileNotFoundError:
        return ''
