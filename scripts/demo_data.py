#!/usr/bin/env python3
"""Load the demo portfolio into a running itpm through its API only.

    scripts/demo_data.py URL CAFILE PASSWORD

URL is the stack's HTTPS base (ITPM_URL), CAFILE its certificate (ITPM_CA),
PASSWORD the demo directory's password (ITPM_DEMO_PASSWORD). Every write is a
request a demo user could send, on the same code paths: admin1 sets the
expert pool; submitters declare and upload the materials; CDOs endorse;
reviewers pass, draw experts, approve budgets and list; the drawn experts
score; the joint reviewers sign off; directors approve; submitters start
the trial and ask for acceptance, which reviewers give. A demo cannot wait
the 90 days of trial the city's rules ask: admin1 sets the city's minimum
trial period to 0 days for the one step of asking and back to what it was
at once (both changes are audited, as every configuration change is).

The portfolio: about thirty projects of the city (市公安局, 市卫健委) and of
two counties (沭阳县农业农村局, 泗阳县教育局) in every stage from draft to
construction (several per stage), plus one each in trial operation,
acceptance and filing, a rejection, a returned draft, two existing systems
in operation and one retired; and 泗阳县's inventory
of systems built before the platform, sent as one bulk batch
(POST /api/v1/batches by its county admin) that enters them at operation.

Idempotent: a project is recognised by its title and the demo mark in its
summary; the batch by its id (the same bytes again answer the stored result). A second run finds every one and skips it (nothing is added twice); a run that was interrupted is
completed by the next one (a project found short of its stage is moved on).
Only the Python standard library is used. Exit status 0 when the whole
portfolio is in place, 1 otherwise.
"""

import contextlib
import datetime
import hashlib
import http.client
import ssl
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS = 'urn:itpm:1'
N = f'{{{NS}}}'
P = '{urn:ietf:rfc:7807}'
COOKIE = '__Host-itpm_session'
MARK = '：演示数据，'  # after the title in the summary: how a re-run knows its projects

EXPERTS = [('expert1', '朱晓明', '321300-HOSP1', ['医疗信息化', '数据治理']),
           ('expert2', '胡雪', '321300-WATER', ['物联网', '水务']),
           ('expert3', '郭涛', '321300-CHURUN', ['公共数据', '云计算']),
           ('expert4', '何平', '321300-EDU', ['教育信息化']),
           ('expert5', '高远', '321300-HEALTH', ['卫生健康', '网络安全']),
           ('expert6', '林海', '321300-PSB', ['公安信息化', '视频图像']),
           ('expert7', '罗琳', '321322-DATA', ['县域数字化', '农业物联网'])]
UNITS = {  # unit: (submitter, cdo, reviewer, director)
    '321300-PSB': ('sub_psb', 'cdo_psb', 'rev_city', 'dir_city'),
    '321300-HEALTH': ('sub_health', 'cdo_health', 'rev_city2', 'dir_city'),
    '321322-AGRI': ('sub_agri', 'cdo_agri', 'rev_shuyang', 'dir_shuyang'),
    '321323-EDU': ('sub_edu_sy', 'cdo_edu_sy', 'rev_city', 'dir_city'),
}
JOINT = {'321300-DRC': 'jr_drc', '321300-FIN': 'jr_fin', '321300-CAC': 'jr_cac'}
MATERIALS = [('declaration_form', '项目申报书.pdf'), ('construction_plan', '建设方案.pdf'),
             ('budget_detail', '预算明细.xlsx'), ('security_plan', '安全保障方案.pdf')]
PATH = ['draft', 'endorsement', 'registration', 'prereview', 'budget_review', 'listing',
        'pre_implementation', 'approval', 'construction', 'trial_operation', 'acceptance',
        'filing']
ACCEPTANCE = [('acceptance_report', '验收报告.pdf'), ('test_report', '测试报告.pdf'),
              ('security_assessment', '安全评估报告.pdf')]


# Experts who hold the classified clearance in the demo directory.
CLEARED = {'expert1', 'expert2', 'expert3'}


def S(title, unit, budget, stage, **kw):
    return dict(title=title, unit=unit, budget=budget, stage=stage, **kw)


# The portfolio. stage: where it ends; approve: the approved budget at
# budget_review (default: as requested); then: a side step at the end
# (reject, return); scored: how many experts score when it stops at
# prereview; signed: sign-offs given when it stops at pre_implementation.
PORTFOLIO = [
    # draft
    S('宿迁市公安局移动警务终端升级', '321300-PSB', '380000.00', 'draft'),
    S('沭阳县高标准农田监测系统', '321322-AGRI', '620000.00', 'draft', materials=2),
    S('泗阳县中小学智慧课堂试点', '321323-EDU', '260000.00', 'draft'),
    S('宿迁市全民健康信息平台数据治理', '321300-HEALTH', '450000.00', 'draft',
      then=('return', '申报书缺少单位盖章页，请补充后重新提交'), stop_before_then='registration'),
    # endorsement
    S('宿迁市公安局执法记录仪管理平台', '321300-PSB', '290000.00', 'endorsement'),
    S('泗阳县教育资源公共服务平台', '321323-EDU', '880000.00', 'endorsement'),
    # registration
    S('宿迁市卫生健康综合监管系统', '321300-HEALTH', '1250000.00', 'registration'),
    S('沭阳县农产品质量安全追溯平台', '321322-AGRI', '430000.00', 'registration'),
    # prereview
    S('宿迁市公安局智慧警务大数据平台', '321300-PSB', '6800000.00', 'prereview', scored=3),
    S('沭阳县智慧农业物联网平台', '321322-AGRI', '2350000.00', 'prereview', cross=True,
      scored=0, resources=[('AGRI-SOIL-01', '土壤墒情监测数据', 'sensor')]),
    S('宿迁市互联网医院监管平台', '321300-HEALTH', '560000.00', 'prereview', scored=3),
    # budget_review
    S('泗阳县教育城域网扩容', '321323-EDU', '1680000.00', 'budget_review'),
    S('宿迁市公安局视频图像解析系统', '321300-PSB', '420000.00', 'budget_review'),
    # listing
    S('宿迁市基层医疗机构信息系统一体化', '321300-HEALTH', '2900000.00', 'listing',
      approve='2600000.00'),
    S('沭阳县农村集体资产管理平台', '321322-AGRI', '310000.00', 'listing', approve='280000.00'),
    # pre_implementation
    S('宿迁市公安局警务云平台二期', '321300-PSB', '5600000.00', 'pre_implementation',
      approve='5200000.00', signed=['321300-DRC']),
    S('泗阳县智慧校园安全管理系统', '321323-EDU', '470000.00', 'pre_implementation',
      mode='self-built', exemption='涉及未成年人敏感信息，由省教育厅统一部署'),
    # approval
    S('宿迁市卫生应急指挥系统', '321300-HEALTH', '990000.00', 'approval', approve='900000.00'),
    S('沭阳县农机作业监测平台', '321322-AGRI', '480000.00', 'approval', cross=True),
    # construction
    S('宿迁市城市运行管理服务平台公安专题', '321300-PSB', '7500000.00', 'construction',
      approve='6900000.00', cross=True,
      resources=[('PSB-CASE-01', '案件统计数据', 'business'),
                 ('PSB-CAM-02', '视频点位目录', 'business')]),
    S('宿迁市电子健康档案开放服务', '321300-HEALTH', '350000.00', 'construction'),
    S('泗阳县教育督导信息平台', '321323-EDU', '720000.00', 'construction', approve='650000.00'),
    S('沭阳县智慧水利灌区管理系统', '321322-AGRI', '1900000.00', 'construction',
      approve='1750000.00'),
    # trial operation, acceptance, filing
    S('宿迁市公安局出入境自助办证系统', '321300-PSB', '260000.00', 'trial_operation'),
    S('宿迁市公安局警用无人机管理平台', '321300-PSB', '330000.00', 'acceptance'),
    S('宿迁市卫健委预约诊疗服务平台', '321300-HEALTH', '280000.00', 'filing'),
    # rejected
    S('宿迁市卫健委重复建设的预约挂号系统', '321300-HEALTH', '300000.00', 'registration',
      then=('reject', '与市互联网医院平台功能重复，不予入库')),
    # existing systems, registered by a reviewer and a county admin
    S('宿迁市人口信息管理系统（存量）', '321300-PSB', '1200000.00', 'operation',
      existing='rev_city'),
    S('沭阳县农技推广服务系统（存量）', '321322-AGRI', '180000.00', 'operation',
      existing='ca_shuyang'),
    # retired: an existing system its reviewer takes out of service
    S('宿迁市公安局旧版办公自动化系统（存量）', '321300-PSB', '150000.00', 'retired',
      existing='rev_city', then=('retire', '已由全市统一协同办公平台替代')),
]


# 泗阳县's inventory: (ref, title, unit, original budget, year built, data resource).
INVENTORY_ID = 'demo-inventory-321323'
INVENTORY = [
    ('SY-EDU-2016-01', '泗阳县学籍管理系统（存量）', '321323-EDU', '420000.00', 2016,
     ('SY-EDU-STU', '学生学籍数据')),
    ('SY-EDU-2018-02', '泗阳县教育装备管理平台（存量）', '321323-EDU', '260000.00', 2018, None),
    ('SY-DATA-2019-01', '泗阳县政务数据共享交换平台（存量）', '321323-DATA', '1150000.00', 2019,
     ('SY-DATA-DIR', '政务数据资源目录')),
]


def inventory_batch():
    """The inventory as a <batch kind="existing">, byte for byte the same at
    every run (the batch id is an idempotency key)."""
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n'
           f'<batch xmlns="{NS}" id="{INVENTORY_ID}" region="321323" kind="existing">\n']
    for ref, title, unit, budget, year, res in INVENTORY:
        out.append(
            f'<project ref="{ref}"><title>{escape(title)}</title><unit>{unit}</unit>'
            f'<year>{year}</year><category>existing</category><budget>{budget}</budget>'
            f'<funding>fiscal</funding><construction mode="centralized"/>'
            f'<summary>{escape(title + MARK)}平台上线前建成，纳入运维监管。</summary>'
            + (f'<dataResources><resource code="{res[0]}" source="business" share="conditional"'
               f' frequency="daily" aggregated="true"><name>{escape(res[1])}</name></resource>'
               f'</dataResources>' if res else '')
            + '</project>\n')
    out.append('</batch>\n')
    return ''.join(out)


class Refused(Exception):
    pass


class Api:
    def __init__(self, url, cafile, password):
        u = urllib.parse.urlsplit(url)
        if u.scheme != 'https':
            raise SystemExit(f'{url}: the API is served over HTTPS')
        self.host, self.port = u.hostname, u.port or 443
        self.prefix = u.path.rstrip('/')
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.password = password
        self.sessions = {}
        self.requests = 0

    def _send(self, method, path, body, headers):
        for attempt in range(5):
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                               timeout=60)
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                self.requests += 1
                if r.status in (502, 503) and attempt < 4:
                    time.sleep(1 + attempt)
                    continue
                return r.status, r, data
            except (ConnectionError, http.client.HTTPException, OSError):
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)
            finally:
                conn.close()

    def login(self, user):
        if user not in self.sessions:
            body = (f'<login xmlns="{NS}"><username>{escape(user)}</username>'
                    f'<password>{escape(self.password)}</password></login>').encode()
            status, r, data = self._send('POST', '/api/v1/session', body,
                                         {'Content-Type': 'application/xml'})
            if status != 200:
                raise SystemExit(f'login of {user} failed: {status} {data[:300]!r}')
            token = None
            for k, v in r.getheaders():
                if k.lower() == 'set-cookie' and v.startswith(COOKIE + '='):
                    token = v.split(';')[0].split('=', 1)[1]
            csrf = ET.fromstring(data).findtext(N + 'csrfToken')
            self.sessions[user] = (token, csrf)
        return self.sessions[user]

    def call(self, user, method, path, body=None, ctype='application/xml', headers=None,
             ok=(200, 201)):
        token, csrf = self.login(user)
        hd = {'Cookie': f'{COOKIE}={token}'}
        if method != 'GET':
            hd['X-CSRF-Token'] = csrf
        if body is not None:
            hd['Content-Type'] = ctype
            if isinstance(body, str):
                body = body.encode()
        hd.update(headers or {})
        status, r, data = self._send(method, path, body, hd)
        if status == 401:  # the session ended: log in again once
            self.sessions.pop(user, None)
            token, csrf = self.login(user)
            hd['Cookie'] = f'{COOKIE}={token}'
            if method != 'GET':
                hd['X-CSRF-Token'] = csrf
            status, r, data = self._send(method, path, body, hd)
        if status not in ok:
            rule = detail = ''
            try:
                root = ET.fromstring(data)
                rule = root.findtext(P + 'rule') or ''
                detail = root.findtext(P + 'detail') or ''
            except ET.ParseError:
                detail = data[:200].decode('utf-8', 'replace')
            raise Refused(f'{user} {method} {path}: {status} {rule} {detail}'.strip())
        return ET.fromstring(data) if data and data.lstrip().startswith(b'<') else None


def money_fen(text):
    units, _, cents = text.partition('.')
    return int(units) * 100 + int((cents + '00')[:2])


def declaration(s, year, urgent):
    flags = (f'<flags classified="false" soe="false" publicInstitution="false" '
             f'crossDepartment="{"true" if s.get("cross") else "false"}" vertical="false" '
             f'key="{"true" if money_fen(s["budget"]) >= 500000000 else "false"}"/>')
    mode = s.get('mode', 'centralized')
    cons = f'<construction mode="{mode}"' + (
        f' reason={quoteattr(s["exemption"])}' if s.get('exemption') else '') + '/>'
    res = ''
    if s.get('resources'):
        res = '<dataResources>' + ''.join(
            f'<resource code="{c}" source="{src}" share="conditional" frequency="daily" '
            f'aggregated="false"><name>{escape(n)}</name></resource>'
            for c, n, src in s['resources']) + '</dataResources>'
    return (f'<project xmlns="{NS}"><title>{escape(s["title"])}</title>'
            f'<unit>{s["unit"]}</unit><year>{year}</year><category>new</category>{flags}'
            + (f'<urgent reason={quoteattr(urgent)}/>' if urgent else '')
            + f'<budget>{s["budget"]}</budget><funding>fiscal</funding>{cons}'
            f'<schedule start="{year}-03-01" end="{year}-12-31"/>'
            f'<contact name="项目联系人" phone="0527-84360000" email="demo@suqian.gov.cn"/>'
            f'<summary>{escape(s["title"] + MARK)}按市数据局统筹要求建设。</summary>'
            f'{res}</project>')


def existing_declaration(s, year):
    return declaration(dict(s, cross=False), year, None).replace(
        '<category>new</category>', '<category>existing</category>')


class Loader:
    def __init__(self, api):
        self.api = api
        self.year, self.urgent = self.pick_year()

    def pick_year(self):
        """A year whose city window is open today (next year first); with
        none, urgent declarations with a reason."""
        today = datetime.date.today().isoformat()
        doc = self.api.call('admin1', 'GET', '/api/v1/config/windows')
        for year in (datetime.date.today().year + 1, datetime.date.today().year):
            for w in doc.findall(N + 'window'):
                if (w.get('region') == '321300' and w.get('year') == str(year)
                        and w.get('opens') <= today <= w.get('closes')):
                    return year, None
        return datetime.date.today().year + 1, '演示数据：申报窗口外的紧急申报'

    def expert_pool(self):
        body = f'<expertPool xmlns="{NS}">' + ''.join(
            f'<expert user="{u}" name="{n}" unit="{unit}"'
            f' cleared="{str(u in CLEARED).lower()}">'
            + ''.join(f'<field>{escape(f)}</field>' for f in fields) + '</expert>'
            for u, n, unit, fields in EXPERTS) + '</expertPool>'
        self.api.call('admin1', 'PUT', '/api/v1/config/experts', body)

    def find(self, title):
        q = urllib.parse.urlencode({'text': title, 'limit': 500})
        doc = self.api.call('rev_city', 'GET', f'/api/v1/projects?{q}')
        for p in doc.findall(N + 'project'):
            if p.findtext(N + 'title') == title and \
                    (p.findtext(N + 'summary') or '').startswith(title + MARK):
                return p
        return None

    def get(self, code):
        return self.api.call('rev_city', 'GET', f'/api/v1/projects/{code}')

    def act(self, user, p, action, reason=None, amount=None, list_year=None):
        body = f'<transition xmlns="{NS}" action="{action}">' + (
            f'<reason>{escape(reason)}</reason>' if reason else '') + (
            f'<amount>{amount}</amount>' if amount else '') + (
            f'<listYear>{list_year}</listYear>' if list_year else '') + '</transition>'
        return self.api.call(user, 'POST', f'/api/v1/projects/{p.get("code")}/transitions',
                             body, headers={'If-Match': f'"{p.get("version")}"'})

    def attach(self, user, code, kind, filename):
        data = (f'%PDF-1.4\n% itpm demo: {kind} of {code}\n').encode() + \
            hashlib.sha256(f'{code}/{kind}'.encode()).hexdigest().encode()
        q = urllib.parse.urlencode({'kind': kind, 'filename': filename})
        ctype = ('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                 if filename.endswith('.xlsx') else 'application/pdf')
        self.api.call(user, 'POST', f'/api/v1/projects/{code}/attachments?{q}', data, ctype)

    def attached(self, code):
        doc = self.api.call('rev_city', 'GET', f'/api/v1/projects/{code}/attachments')
        return {a.get('kind') for a in doc.findall(N + 'attachment')}

    def experts(self, code):
        return self.api.call('rev_city', 'GET', f'/api/v1/projects/{code}/experts')

    def score_experts(self, code, how_many=None):
        doc = self.experts(code)
        need = int(doc.get('required'))
        if need == 0:
            return
        have = doc.findall(N + 'expert')
        if len(have) < need:
            doc = self.api.call('rev_city', 'POST', f'/api/v1/projects/{code}/experts')
            have = doc.findall(N + 'expert')
        scores = [86, 78, 91, 72, 83]
        for i, e in enumerate(have):
            if how_many is not None and i >= how_many:
                break
            if e.get('score') is None:
                uid = e.get('user')
                self.api.call(uid, 'PUT', f'/api/v1/projects/{code}/experts/{uid}',
                              f'<score xmlns="{NS}" value="{scores[i % len(scores)]}">'
                              f'<opinion>技术方案可行，建议加强数据共享与安全防护。</opinion>'
                              f'</score>')

    def needed_signoffs(self, p):
        flags = p.find(N + 'flags')
        if flags.get('crossDepartment') == 'true' or money_fen(p.findtext(N + 'budget')) \
                >= 500000000:
            return sorted(JOINT)
        return []

    def sign(self, p, units):
        for unit in units:
            self.api.call(JOINT[unit], 'POST', f'/api/v1/projects/{p.get("code")}/signoffs',
                          f'<signoff xmlns="{NS}" approved="true"><opinion>同意实施</opinion>'
                          '</signoff>')

    def drive(self, s, p):
        """Move p one step towards s['stage']; return the project."""
        sub, cdo, rev, dr = UNITS[s['unit']]
        code = p.get('code')
        stage = p.get('stage')
        if stage == 'draft':
            have = self.attached(code)
            for kind, name in MATERIALS[:s.get('materials', len(MATERIALS))]:
                if kind not in have:
                    self.attach(sub, code, kind, name)
            return self.act(sub, p, 'submit')
        if stage == 'endorsement':
            return self.act(cdo, p, 'endorse')
        if stage == 'registration':
            return self.act(rev, p, 'pass')
        if stage == 'prereview':
            self.score_experts(code)
            return self.act(rev, p, 'pass')
        if stage == 'budget_review':
            return self.act(rev, p, 'pass', amount=s.get('approve', s['budget']))
        if stage == 'listing':
            return self.act(rev, p, 'pass', list_year=p.findtext(N + 'year'))
        if stage == 'pre_implementation':
            self.sign(p, self.needed_signoffs(p))
            return self.act(rev, p, 'pass')
        if stage == 'approval':
            return self.act(dr, p, 'approve')
        if stage == 'construction':
            return self.act(sub, p, 'start_trial')
        if stage == 'trial_operation':
            with self.trial_days(0):
                return self.act(sub, self.get(code), 'request_acceptance')
        if stage == 'acceptance':
            have = self.attached(code)
            for kind, name in ACCEPTANCE:
                if kind not in have:
                    self.attach(sub, code, kind, name)
            return self.act(rev, self.get(code), 'accept')
        raise Refused(f'{code}: no way on from {stage}')

    @contextlib.contextmanager
    def trial_days(self, days):
        """The city's minimum trial period set to `days` by admin1 for the
        time of one step, then back to what it was (both changes audited):
        a demo cannot wait 90 days for a project to reach acceptance."""
        doc = self.api.call('admin1', 'GET', '/api/v1/config/thresholds')
        city = next(t for t in doc.findall(N + 'threshold') if t.get('region') == '321300')
        attrs = ('region', 'expertAmount', 'expertCount', 'jointAmount', 'jointExpertCount',
                 'expertMinMean', 'trialDays')

        def put(values):
            body = (f'<thresholds xmlns="{NS}"><threshold '
                    + ' '.join(f'{a}={quoteattr(values[a])}' for a in attrs)
                    + '/></thresholds>')
            self.api.call('admin1', 'PUT', '/api/v1/config/thresholds', body)

        original = {a: city.get(a) for a in attrs}
        put(dict(original, trialDays=str(days)))
        try:
            yield
        finally:
            put(original)

    def finish(self, s, p):
        """What a project stopping at its stage has besides: materials of a
        draft, the experts and scores of a prereview, sign-offs waiting."""
        code = p.get('code')
        if p.get('stage') == 'draft' and not s.get('then'):
            have = self.attached(code)
            for kind, name in MATERIALS[:s.get('materials', 2)]:
                if kind not in have:
                    self.attach(UNITS[s['unit']][0], code, kind, name)
        if p.get('stage') == 'prereview' and s.get('scored') is not None:
            if int(self.experts(code).get('required')) > 0:
                self.score_experts(code, s['scored'])
        if p.get('stage') == 'pre_implementation' and s.get('signed'):
            self.sign(p, s['signed'])

    def load(self, s):
        """Make sure the project of s exists and stands where it should;
        returns (code, stage, 'created'|'moved'|'kept')."""
        p = self.find(s['title'])
        what = 'kept'
        if p is None:
            if s.get('existing'):
                p = self.api.call(s['existing'], 'POST', '/api/v1/projects',
                                  existing_declaration(s, self.year))
                what = 'created'
                if s.get('then'):
                    action, reason = s['then']
                    p = self.act(s['existing'], p, action, reason=reason)
                return p.get('code'), p.get('stage'), what
            sub = UNITS[s['unit']][0]
            p = self.api.call(sub, 'POST', '/api/v1/projects',
                              declaration(s, self.year, self.urgent))
            what = 'created'
        if s.get('existing') or p.get('stage') in ('rejected', 'retired', 'operation'):
            return p.get('code'), p.get('stage'), what
        then = s.get('then')
        target = s.get('stop_before_then', s['stage']) if then else s['stage']
        if p.get('stage') == 'draft' and then and p.findtext(N + 'returnReason'):
            return p.get('code'), 'draft', what  # returned already
        if p.get('stage') in PATH and PATH.index(p.get('stage')) < PATH.index(target):
            p = self.get(p.get('code'))
            while p.get('stage') != target:
                p = self.drive(s, p)
                what = 'created' if what == 'created' else 'moved'
        if then and p.get('stage') == target:
            action, reason = then
            user = UNITS[s['unit']][2]
            p = self.act(user, self.get(p.get('code')), action, reason=reason)
        self.finish(s, self.get(p.get('code')))
        return p.get('code'), p.get('stage'), what


def main(argv):
    if len(argv) != 4:
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    url, cafile, password = argv[1:]
    api = Api(url, cafile, password)
    loader = Loader(api)
    loader.expert_pool()
    failed = 0
    counts = {}
    for s in PORTFOLIO:
        try:
            code, stage, what = loader.load(s)
        except Refused as e:
            failed += 1
            print(f'  FAILED  {s["title"]}: {e}', file=sys.stderr)
            continue
        counts[what] = counts.get(what, 0) + 1
        print(f'  {what:7} {code}  {stage:<18} {s["title"]}')
    try:
        result = api.call('ca_siyang', 'POST', '/api/v1/batches', inventory_batch())
        for c in result.findall(N + 'code'):
            print(f'  batch   {c.text}  {c.get("stage"):<18} {INVENTORY[int(c.get("record")) - 1][1]}')
    except Refused as e:
        failed += 1
        print(f'  FAILED  batch {INVENTORY_ID}: {e}', file=sys.stderr)
    print(f'demo data: {len(PORTFOLIO) - failed} of {len(PORTFOLIO)} projects in place '
          f'({", ".join(f"{n} {k}" for k, n in sorted(counts.items()))}); '
          f'{api.requests} requests; declaration year {loader.year}'
          + (' (urgent: no open window)' if loader.urgent else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
