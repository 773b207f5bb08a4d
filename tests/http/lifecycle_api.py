"""Helpers of the lifecycle tests (tests/http/test_lifecycle_*.py): demo users
logged in over HTTPS, declarations, transitions, sub-records, and a driver
that takes a project from draft to any stage up to construction through the
API only, each step by the demo user whose job it is.

Self-contained on purpose (conftest.py and itpm_http.py are someone else's):
the client here logs in itself, keeps its own cookie and CSRF token, and
validates every XML document the API returns against xsd/ (itpm.xsd for
application/xml, problem.xsd for application/problem+xml).
"""

import datetime
import hashlib
import threading
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import requests
import urllib3
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
XSD_DIR = REPO / 'xsd'
NS = 'urn:itpm:1'
PNS = 'urn:ietf:rfc:7807'
N = f'{{{NS}}}'
P = f'{{{PNS}}}'
SESSION_COOKIE = '__Host-itpm_session'
TIMEOUT = (5, 30)

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

# --------------------------------------------------------------------------
# the demo directory (scripts/ldap/demo.ldif) as the lifecycle uses it

SUBMITTER = {'321300-PSB': 'sub_psb', '321300-HEALTH': 'sub_health',
             '321322-AGRI': 'sub_agri', '321323-EDU': 'sub_edu_sy'}
CDO = {'321300-PSB': 'cdo_psb', '321300-HEALTH': 'cdo_health',
       '321322-AGRI': 'cdo_agri', '321323-EDU': 'cdo_edu_sy'}
# 321323 (泗阳县) has no reviewer or director of its own: the city's act.
REVIEWER = {'321300': 'rev_city', '321322': 'rev_shuyang', '321323': 'rev_city'}
DIRECTOR = {'321300': 'dir_city', '321322': 'dir_shuyang', '321323': 'dir_city'}
JOINT = {'321300-DRC': 'jr_drc', '321300-FIN': 'jr_fin', '321300-CAC': 'jr_cac',
         '321300-SEC': 'jr_sec'}
JOINT_THREE = ('321300-CAC', '321300-DRC', '321300-FIN')
EXPERTS = {'expert1': ('朱晓明', '321300-HOSP1'), 'expert2': ('胡雪', '321300-WATER'),
           'expert3': ('郭涛', '321300-CHURUN'), 'expert4': ('何平', '321300-EDU'),
           'expert5': ('高远', '321300-HEALTH'), 'expert6': ('林海', '321300-PSB'),
           'expert7': ('罗琳', '321322-DATA')}
MATERIALS = ('declaration_form', 'construction_plan', 'budget_detail', 'security_plan')

STAGES = ('draft', 'endorsement', 'registration', 'prereview', 'budget_review', 'listing',
          'pre_implementation', 'approval', 'construction')
ALL_ACTIONS = ('submit', 'endorse', 'return', 'withdraw', 'pass', 'reject', 'defer',
               'approve', 'start_trial', 'request_acceptance', 'accept',
               'complete_filing', 'retire', 'force_exit')


def open_year():
    """A project year whose default declaration window (year-1-01-01 ..
    year-12-31, seeded for 2024..2030) contains today."""
    return datetime.date.today().year + 1


def money(fen):
    return f'{fen // 100}.{fen % 100:02d}'


def fen_of(text):
    units, _, cents = text.partition('.')
    return int(units) * 100 + int(cents or 0)


# --------------------------------------------------------------------------
# XML

_schemas = {}
_schema_lock = threading.Lock()


def schema(name):
    with _schema_lock:
        if name not in _schemas:
            _schemas[name] = etree.XMLSchema(etree.parse(str(XSD_DIR / name)))
        return _schemas[name]


def parse(content):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(content, parser=parser)


def describe(resp):
    body = resp.content[:600].decode('utf-8', 'replace')
    return (f'{resp.request.method} {resp.request.path_url[:140]} -> {resp.status_code} '
            f'{resp.headers.get("Content-Type")!r} {body!r}')


def media_type(resp):
    return resp.headers.get('Content-Type', '').split(';')[0].strip().lower()


class SchemaViolation(AssertionError):
    pass


def check_document(resp):
    """Parse and validate an XML reply against its schema; return the root
    (None for a body that is not XML)."""
    mt = media_type(resp)
    if mt not in ('application/xml', 'application/problem+xml') or not resp.content:
        return None
    try:
        root = parse(resp.content)
    except etree.XMLSyntaxError as e:
        raise SchemaViolation(f'not well-formed ({e}): {describe(resp)}')
    s = schema('itpm.xsd' if mt == 'application/xml' else 'problem.xsd')
    with _schema_lock:
        ok = s.validate(root)
        log = '; '.join(f'line {e.line}: {e.message}' for e in s.error_log)
    if not ok:
        raise SchemaViolation(f'reply invalid against its schema: {log}: {describe(resp)}')
    return root


def problem(resp, status, rule=None):
    """Assert a problem+xml reply with `status` (and `rule` when given, or
    no rule element when rule is False); return its root."""
    assert resp.status_code == status, describe(resp)
    assert media_type(resp) == 'application/problem+xml', describe(resp)
    root = check_document(resp)
    assert root.tag == P + 'problem', describe(resp)
    assert (root.findtext(P + 'status') or '').strip() == str(status), describe(resp)
    got = (root.findtext(P + 'rule') or '').strip()
    if rule is False:
        assert got == '', f'unexpected rule {got!r}: {describe(resp)}'
    elif rule is not None:
        assert got == rule, f'expected rule {rule!r}, got {got!r}: {describe(resp)}'
    return root


def problem_detail(root):
    return (root.findtext(P + 'detail') or '').strip()


def problem_errors(root):
    """[(line, column, message)] of a problem's errors (None where absent)."""
    out = []
    for e in root.iter(P + 'error'):
        line = e.get('line')
        col = e.get('column')
        out.append((int(line) if line else None, int(col) if col else None,
                    (e.findtext(P + 'message') or '').strip()))
    return out


# --------------------------------------------------------------------------
# users

class LoginFailed(AssertionError):
    pass


_sessions = {}
_sessions_lock = threading.Lock()


def _tls(env):
    ca = env.get('ITPM_CA')
    return ca if ca and Path(ca).exists() else False


class User:
    """One demo user's session on one stack. Unsafe requests carry the CSRF
    token; every XML reply is validated; paths may start with '/'.

    User(env, 'rev_city') logs in with the demo password (once per stack
    and user, the session is shared by every User of that name);
    User(env, bearer=token) sends an SSO token instead (no CSRF needed)."""

    def __init__(self, env, uid=None, bearer=None, password=None):
        self.env = env
        self.base = env['ITPM_URL'].rstrip('/')
        self.uid = uid
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = _tls(env)
        self.bearer = bearer
        self.token = None
        self.csrf = None
        self.password = password
        if bearer is None:
            self._session(fresh=False)

    def _session(self, fresh):
        key = (self.base, self.uid)
        with _sessions_lock:
            cached = None if fresh else _sessions.get(key)
        if cached is None:
            cached = login(self.env, self.uid, self.password)
            with _sessions_lock:
                _sessions[key] = cached
        self.token, self.csrf = cached

    def request(self, method, path, headers=None, csrf=True, **kw):
        url = path if path.startswith('http') else self.base + path
        hd = dict(headers or {})
        if self.bearer is not None:
            hd['Authorization'] = f'Bearer {self.bearer}'
        else:
            hd['Cookie'] = f'{SESSION_COOKIE}={self.token}'
            if csrf and method not in ('GET', 'HEAD', 'OPTIONS'):
                hd['X-CSRF-Token'] = self.csrf
        kw.setdefault('timeout', TIMEOUT)
        kw.setdefault('allow_redirects', False)
        resp = self.http.request(method, url, headers=hd, **kw)
        if resp.status_code == 401 and self.bearer is None:
            # The shared session expired or was revoked by another test:
            # log in again once.
            self._session(fresh=True)
            hd['Cookie'] = f'{SESSION_COOKIE}={self.token}'
            if csrf and method not in ('GET', 'HEAD', 'OPTIONS'):
                hd['X-CSRF-Token'] = self.csrf
            resp = self.http.request(method, url, headers=hd, **kw)
        resp.doc = check_document(resp)
        return resp

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, **kw):
        return self.request('POST', path, **kw)

    def put(self, path, **kw):
        return self.request('PUT', path, **kw)

    def post_xml(self, path, body, headers=None, **kw):
        hd = {'Content-Type': 'application/xml'}
        hd.update(headers or {})
        return self.post(path, data=body if isinstance(body, bytes) else body.encode(),
                         headers=hd, **kw)

    def put_xml(self, path, body, headers=None, **kw):
        hd = {'Content-Type': 'application/xml'}
        hd.update(headers or {})
        return self.put(path, data=body if isinstance(body, bytes) else body.encode(),
                        headers=hd, **kw)

    def close(self):
        self.http.close()

    def __repr__(self):
        return f'User({self.uid or "bearer"})'


def login(env, uid, password=None):
    """POST /api/v1/session as a demo user; (session token, csrf token)."""
    pw = password or env.get('ITPM_DEMO_PASSWORD')
    if not pw:
        raise LoginFailed('the stack env lacks ITPM_DEMO_PASSWORD')
    body = (f'<login xmlns="{NS}"><username>{escape(uid)}</username>'
            f'<password>{escape(pw)}</password></login>').encode()
    with requests.Session() as s:
        s.trust_env = False
        s.verify = _tls(env)
        for attempt in range(3):
            r = s.post(env['ITPM_URL'].rstrip('/') + '/api/v1/session', data=body,
                       headers={'Content-Type': 'application/xml'}, timeout=TIMEOUT)
            if r.status_code != 503:
                break
            time.sleep(1)
    if r.status_code != 200:
        raise LoginFailed(f'login of {uid}: {describe(r)}')
    root = check_document(r)
    csrf = root.findtext(N + 'csrfToken')
    token = None
    for line in r.raw.headers.getlist('Set-Cookie'):
        name, _, rest = line.partition('=')
        if name.strip() == SESSION_COOKIE:
            token = rest.split(';')[0]
    if not token or not csrf:
        raise LoginFailed(f'login of {uid} gave no cookie or CSRF token: {describe(r)}')
    return token, csrf


class Users:
    """Lazily logged-in demo users of one stack: users['rev_city']."""

    def __init__(self, env):
        self.env = env
        self._users = {}
        self._lock = threading.Lock()

    def __getitem__(self, uid):
        with self._lock:
            if uid not in self._users:
                self._users[uid] = User(self.env, uid)
            return self._users[uid]

    def close(self):
        for u in self._users.values():
            u.close()


def sso_token(env, sub, unit, region, roles, clearance=None, name='单点用户'):
    """A token of the stack's demo identity provider (PyJWT, RS256)."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(Path(env['ITPM_SSO_RSA_KEY']).read_bytes(),
                                             password=None)
    now = int(time.time())
    claims = {'iss': env['ITPM_SSO_ISSUER'], 'aud': env['ITPM_SSO_AUDIENCE'], 'iat': now,
              'nbf': now - 5, 'exp': now + 1800, 'sub': sub, 'name': name, 'unit': unit,
              'region': region, 'roles': list(roles)}
    if clearance:
        claims['clearance'] = clearance
    return jwt.encode(claims, key, algorithm='RS256',
                      headers={'kid': env['ITPM_SSO_RSA_KID'], 'typ': 'JWT'})


# --------------------------------------------------------------------------
# declarations and projects

def declaration(title=None, unit='321300-PSB', year=None, category='new', budget='300000.00',
                classified=False, cross=False, key=False, urgent=None, mode='centralized',
                exemption=None, resources=(), summary='建设内容概述', schedule=True,
                funding='fiscal'):
    """A <project> document. urgent: None (not urgent), '' (urgent without
    reason) or the reason. resources: [(code, name)]."""
    year = open_year() if year is None else year
    title = title or f'测试项目 {uuid.uuid4().hex[:8]}'
    lines = [f'<project xmlns="{NS}">',
             f'  <title>{escape(title)}</title>',
             f'  <unit>{unit}</unit>',
             f'  <year>{year}</year>',
             f'  <category>{category}</category>',
             f'  <flags classified="{str(classified).lower()}" soe="false" '
             f'publicInstitution="false" crossDepartment="{str(cross).lower()}" '
             f'vertical="false" key="{str(key).lower()}"/>']
    if urgent is not None:
        lines.append('  <urgent/>' if urgent == '' else f'  <urgent reason={quoteattr(urgent)}/>')
    lines += [f'  <budget>{budget}</budget>',
              f'  <funding>{funding}</funding>',
              f'  <construction mode="{mode}"'
              + (f' reason={quoteattr(exemption)}' if exemption is not None else '') + '/>']
    if schedule:
        lines.append(f'  <schedule start="{year}-03-01" end="{year}-12-31"/>')
    lines.append('  <contact name="王芳" phone="0527-88880000" email="wf@example.gov.cn"/>')
    if summary:
        lines.append(f'  <summary>{escape(summary)}</summary>')
    if resources:
        lines.append('  <dataResources>')
        for code, name in resources:
            lines.append(f'    <resource code="{code}" source="business" share="conditional" '
                         f'frequency="daily" aggregated="false"><name>{escape(name)}</name>'
                         '</resource>')
        lines.append('  </dataResources>')
    lines.append('</project>')
    return ('\n'.join(lines) + '\n').encode()


class Project:
    """A project as read back: code, version (int), stage and the document."""

    def __init__(self, resp):
        root = resp.doc
        assert root is not None and root.tag == N + 'project', describe(resp)
        self.doc = root
        self.code = root.get('code')
        self.version = int(root.get('version'))
        self.stage = root.get('stage')
        etag = resp.headers.get('ETag')
        assert etag == f'"{self.version}"', f'ETag {etag!r} vs version {self.version}: ' \
                                            f'{describe(resp)}'

    def text(self, name):
        return self.doc.findtext(N + name)

    def __repr__(self):
        return f'Project({self.code} v{self.version} {self.stage})'


def path(code, sub=''):
    return f'/api/v1/projects/{code}{sub}'


def create(user, expect=201, **decl):
    r = user.post_xml('/api/v1/projects', declaration(**decl))
    if expect != 201:
        return r
    assert r.status_code == 201, describe(r)
    p = Project(r)
    assert r.headers.get('Location') == path(p.code), describe(r)
    return p


def read(user, code):
    r = user.get(path(code))
    assert r.status_code == 200, describe(r)
    return Project(r)


def transition_body(action, reason=None, amount=None, list_year=None):
    parts = [f'<transition xmlns="{NS}" action="{action}">']
    if reason is not None:
        parts.append(f'<reason>{escape(reason)}</reason>')
    if amount is not None:
        parts.append(f'<amount>{amount}</amount>')
    if list_year is not None:
        parts.append(f'<listYear>{list_year}</listYear>')
    parts.append('</transition>')
    return ''.join(parts).encode()


def transition(user, code, action, version, reason=None, amount=None, list_year=None):
    """POST the transition; version None sends no If-Match, a str is sent as is."""
    hd = {}
    if version is not None:
        hd['If-Match'] = version if isinstance(version, str) else f'"{version}"'
    return user.post_xml(path(code, '/transitions'),
                         transition_body(action, reason, amount, list_year), headers=hd)


def act(user, project, action, **kw):
    """A transition that must succeed; returns the project read back."""
    code = project if isinstance(project, str) else project.code
    version = kw.pop('version', None)
    if version is None:
        version = project.version if isinstance(project, Project) else read(user, code).version
    r = transition(user, code, action, version, **kw)
    assert r.status_code == 200, f'{user.uid} {action}: {describe(r)}'
    return Project(r)


def attach(user, code, kind, data=None, filename=None, content_type='application/pdf'):
    data = data if data is not None else f'%PDF-1.4 {kind} {code} {uuid.uuid4()}'.encode()
    r = user.post(path(code, '/attachments'),
                  params={'kind': kind, 'filename': filename or f'{kind}.pdf'},
                  data=data, headers={'Content-Type': content_type})
    assert r.status_code == 201, describe(r)
    assert r.doc.get('sha256') == hashlib.sha256(data).hexdigest(), describe(r)
    return r.doc


def events(user, code):
    """The project's events as dicts (id, actor, role, action, from, to,
    reason, amount, listYear)."""
    r = user.get(path(code, '/events'))
    assert r.status_code == 200, describe(r)
    out = []
    for e in r.doc.iter(N + 'event'):
        d = {k: e.get(k) for k in ('id', 'at', 'actor', 'role', 'action', 'from', 'to')}
        for k in ('reason', 'amount', 'listYear'):
            d[k] = e.findtext(N + k)
        out.append(d)
    return out


def audit(auditor, code):
    """Every audit record of project:<code> (paged with `after`)."""
    out, after = [], None
    for _ in range(100):
        params = {'object': f'project:{code}', 'limit': 1000}
        if after:
            params['after'] = after
        r = auditor.get('/api/v1/audit', params=params)
        assert r.status_code == 200, describe(r)
        recs = list(r.doc.iter(N + 'record'))
        for rec in recs:
            d = {c.tag[len(N):]: (c.text or '') for c in rec}
            d['id'] = int(rec.get('id'))
            out.append(d)
        after = r.doc.get('next')
        if not after or not recs:
            break
    return out


def experts_of(user, code):
    r = user.get(path(code, '/experts'))
    assert r.status_code == 200, describe(r)
    return r.doc


def assign_experts(user, code, named=None):
    if named is None:
        return user.post(path(code, '/experts'))
    body = f'<experts xmlns="{NS}">' + ''.join(
        f'<expert user="{u}"/>' for u in named) + '</experts>'
    return user.post_xml(path(code, '/experts'), body)


def score(user, code, value, opinion='方案可行'):
    body = f'<score xmlns="{NS}" value="{value}"><opinion>{escape(opinion)}</opinion></score>'
    return user.put_xml(path(code, f'/experts/{user.uid}'), body)


def signoff(user, code, approved=True, opinion='同意'):
    body = (f'<signoff xmlns="{NS}" approved="{str(approved).lower()}">'
            f'<opinion>{escape(opinion)}</opinion></signoff>')
    return user.post_xml(path(code, '/signoffs'), body)


def expert_pool_body(experts=EXPERTS, active=None):
    active = active or {}
    return (f'<expertPool xmlns="{NS}">' + ''.join(
        f'<expert user="{u}" name="{n}" unit="{unit}" '
        f'active="{str(active.get(u, True)).lower()}" '
        f'cleared="{str(u in ("expert1", "expert2", "expert3")).lower()}">'
        f'<field>信息化</field></expert>'
        for u, (n, unit) in experts.items()) + '</expertPool>').encode()


def ensure_expert_pool(admin, active=None):
    r = admin.put_xml('/api/v1/config/experts', expert_pool_body(active=active))
    assert r.status_code == 200, describe(r)
    return r.doc


def stats(user):
    r = user.get('/api/v1/stats/overview')
    assert r.status_code == 200, describe(r)
    return r.doc


def snapshot(user, code):
    """What a refused request must leave unchanged: version, stage, the
    number of events (the audit is checked separately where it matters)."""
    p = read(user, code)
    return p.version, p.stage, len(events(user, code))


# --------------------------------------------------------------------------
# the driver

class Flow:
    """One project and the demo users who move it, from draft to
    construction. Each step is the real request a user would send."""

    def __init__(self, users, unit='321300-PSB', submitter=None, cdo=None, scores=None,
                 **decl):
        self.users = users
        self.unit = unit
        self.region = unit[:6]
        self.decl = dict(decl)
        self.decl.setdefault('title', f'全流程测试 {uuid.uuid4().hex[:8]}')
        self.sub = submitter or users[SUBMITTER[unit]]
        self.cdo = cdo or users[CDO[unit]]
        self.rev = users[REVIEWER[self.region]]
        self.dir = users[DIRECTOR[self.region]]
        self.scores = scores
        self.p = None
        self.materials = MATERIALS + (('secrecy_review',) if decl.get('classified') else ())

    @property
    def code(self):
        return self.p.code

    def refresh(self, user=None):
        self.p = read(user or self.rev, self.p.code)
        return self.p

    def create(self):
        self.p = create(self.sub, unit=self.unit, **self.decl)
        return self.p

    def attach_materials(self, kinds=None):
        for k in kinds if kinds is not None else self.materials:
            attach(self.sub, self.p.code, k)

    def required_experts(self):
        return int(experts_of(self.rev, self.p.code).get('required'))

    def draw_experts(self):
        need = self.required_experts()
        doc = experts_of(self.rev, self.p.code)
        have = len(doc.findall(N + 'expert'))
        if need > have:
            r = assign_experts(self.rev, self.p.code)
            assert r.status_code == 201, describe(r)
            doc = r.doc
        return [e.get('user') for e in doc.findall(N + 'expert')]

    def score_all(self, values=None):
        names = self.draw_experts()
        values = values or self.scores or [80] * len(names)
        for uid, v in zip(names, values):
            r = score(self.users[uid], self.p.code, v)
            assert r.status_code == 200, describe(r)
        return names

    def required_signoffs(self):
        """The departments whose sign-off the default rules ask for."""
        units = set()
        budget = fen_of(self.p.text('budget'))
        flags = self.p.doc.find(N + 'flags')
        if budget >= 500000000 or flags.get('crossDepartment') in ('true', '1'):
            units.update(JOINT_THREE)
        if flags.get('classified') in ('true', '1'):
            units.add('321300-SEC')
        return sorted(units)

    def sign_all(self):
        for unit in self.required_signoffs():
            r = signoff(self.users[JOINT[unit]], self.p.code)
            assert r.status_code == 201, describe(r)

    def step(self, amount=None, list_year=None):
        """Take the one next step forward; return the project."""
        s = self.p.stage if self.p else None
        if s is None:
            return self.create()
        if s == 'draft':
            self.attach_materials()
            self.p = act(self.sub, self.p, 'submit')
        elif s == 'endorsement':
            self.p = act(self.cdo, self.p, 'endorse')
        elif s == 'registration':
            self.p = act(self.rev, self.p, 'pass')
        elif s == 'prereview':
            if self.required_experts() > 0:
                self.score_all()
            self.p = act(self.rev, self.p, 'pass')
        elif s == 'budget_review':
            self.p = act(self.rev, self.p, 'pass', amount=amount or self.p.text('budget'))
        elif s == 'listing':
            self.p = act(self.rev, self.p, 'pass',
                         list_year=list_year or int(self.p.text('year')))
        elif s == 'pre_implementation':
            self.sign_all()
            self.p = act(self.rev, self.p, 'pass')
        elif s == 'approval':
            self.p = act(self.dir, self.p, 'approve')
        else:
            raise AssertionError(f'the driver stops at construction ({self.p})')
        return self.p

    def to(self, stage):
        assert stage in STAGES, stage
        if self.p is None:
            self.create()
        while self.p.stage != stage:
            assert STAGES.index(self.p.stage) < STAGES.index(stage), \
                f'{self.p} is past {stage}'
            self.step()
        return self.p


def flow_to(users, stage, **kw):
    f = Flow(users, **kw)
    f.to(stage)
    return f
