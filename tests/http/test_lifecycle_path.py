"""The lifecycle walked end to end over HTTP (SPEC section 4): a project from
draft to construction through every step, each taken by the demo user
whose job it is, with the events and the audit trail to match; both
threshold paths (under 500,000: no experts; from 5,000,000: five experts and
the joint sign-off), the middle one, a county's own path, a classified
project, the side paths (return, withdraw, reject, defer) and existing
systems."""

import base64
import hashlib
import urllib.parse

import pytest

import lifecycle_api as L
from lifecycle_api import N, describe



def walk(users, flow, check_audit=True):
    """Drive flow from nothing to construction one step at a time, checking
    every reply; return the expected events as (actor, role, action, from,
    to, amount, listYear)."""
    expected = []
    p = flow.create()
    assert (p.stage, p.version) == ('draft', 1)
    assert p.text('region') == flow.region
    expected.append((flow.sub.uid, 'submitter', 'create', None, 'draft', None, None))
    budget = p.text('budget')
    since = p.text('stageSince')
    for stage, actor, role, amount, list_year in [
            ('endorsement', flow.sub, 'submitter', None, None),
            ('registration', flow.cdo, 'cdo', None, None),
            ('prereview', flow.rev, 'reviewer', None, None),
            ('budget_review', flow.rev, 'reviewer', None, None),
            ('listing', flow.rev, 'reviewer', budget, None),
            ('pre_implementation', flow.rev, 'reviewer', None, p.text('year')),
            ('approval', flow.rev, 'reviewer', None, None),
            ('construction', flow.dir, 'director', None, None)]:
        before = flow.p
        after = flow.step()
        assert after.stage == stage, f'{before} -> {after}'
        assert after.version == before.version + 1, f'{before} -> {after}'
        assert after.text('stageSince') >= since
        since = after.text('stageSince')
        action = 'approve' if stage == 'construction' else (
            'submit' if stage == 'endorsement' else 'endorse' if stage == 'registration'
            else 'pass')
        expected.append((actor.uid, role, action, before.stage, stage, amount, list_year))
        # What the unit sees matches what the reviewer sees.
        seen = L.read(flow.sub, flow.code)
        assert (seen.version, seen.stage) == (after.version, after.stage)
    return expected


def check_events(users, flow, expected):
    got = L.events(flow.rev, flow.code)
    assert [(e['actor'], e['role'], e['action'], e['from'], e['to'], e['amount'],
             e['listYear']) for e in got] == expected
    ids = [int(e['id']) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    ats = [e['at'] for e in got]
    assert ats == sorted(ats), 'events are in time order'
    # The unit reads the same history.
    assert L.events(flow.sub, flow.code) == got
    return got


def check_audit(users, flow, expected, extra):
    """Every event has its audit record (same actor, role, action, in
    order); `extra` lists the other writes as (actor, role, action) in
    order (attachments, expert draws and scores, sign-offs)."""
    recs = L.audit(users['auditor1'], flow.code)
    for r in recs:
        assert r['object'] == f'project:{flow.code}'
        assert r['address'] and r['requestId'] and len(r['hash']) == 64, r
    transitions = [(r['actor'], r['role'], r['action']) for r in recs
                   if r['action'] == 'create' or r['action'].startswith('transition:')]
    assert transitions == [(a, role, 'create' if act == 'create' else 'transition:' + act)
                           for a, role, act, *_ in expected]
    others = [(r['actor'], r['role'], r['action']) for r in recs
              if not (r['action'] == 'create' or r['action'].startswith('transition:'))]
    assert sorted(others) == sorted(extra)
    # Summaries name the stage change and the versions.
    steps = [r for r in recs if r['action'].startswith('transition:')]
    for i, (r, e) in enumerate(zip(steps, expected[1:])):
        assert f'{e[3]} -> {e[4]}' in r['summary'], r
        assert f'version {i + 1} -> {i + 2}' in r['summary'], r
    return recs


def material_audit(flow):
    return [(flow.sub.uid, 'submitter', 'attach')] * len(flow.materials)


def test_small_project_needs_no_experts_and_no_signoff(users):
    """Under 500,000.00: prereview passes without any expert, and
    pre_implementation without any sign-off."""
    flow = L.Flow(users, unit='321300-PSB', title='宿迁市公安局视频会商系统升级',
                  budget='499999.99')
    expected = walk(users, flow)
    p = flow.p
    assert p.stage == 'construction' and p.version == 9
    assert p.text('approvedBudget') == '499999.99'
    assert p.text('reductionRate') == '0.0000'
    assert p.text('listYear') == p.text('year')
    doc = L.experts_of(flow.rev, flow.code)
    assert doc.get('required') == '0' and doc.findall(N + 'expert') == []
    check_events(users, flow, expected)
    check_audit(users, flow, expected, material_audit(flow))


def test_middle_project_needs_three_experts_and_no_signoff(users):
    flow = L.Flow(users, unit='321300-HEALTH', title='宿迁市全民健康信息平台二期',
                  budget='500000.00', scores=[70, 80, 90])
    expected = walk(users, flow)
    doc = L.experts_of(flow.rev, flow.code)
    assert doc.get('required') == '3'
    experts = doc.findall(N + 'expert')
    assert len(experts) == 3
    assert sorted(int(e.get('score')) for e in experts) == [70, 80, 90]
    assert all(e.get('unit') != '321300-HEALTH' for e in experts)
    check_events(users, flow, expected)
    extra = material_audit(flow) + [('rev_city', 'reviewer', 'experts_assign')] + \
        [(e.get('user'), 'expert', 'expert_score') for e in experts]
    check_audit(users, flow, expected, extra)


def test_large_project_needs_five_experts_and_joint_signoff(users):
    """From 5,000,000.00: five expert scores (none from the declaring unit,
    none twice) and the sign-offs of DRC, FIN and CAC."""
    flow = L.Flow(users, unit='321300-PSB', title='宿迁市智慧警务大数据平台',
                  budget='5000000.00')
    flow.to('pre_implementation')
    doc = L.experts_of(flow.rev, flow.code)
    experts = doc.findall(N + 'expert')
    assert doc.get('required') == '5' and len(experts) == 5
    names = [e.get('user') for e in experts]
    assert len(set(names)) == 5 and 'expert6' not in names
    assert all(e.get('unit') != '321300-PSB' and e.get('score') == '80' for e in experts)
    # The joint reviewers see it (it needs their sign-off); each signs once.
    for unit in L.JOINT_THREE:
        jr = users[L.JOINT[unit]]
        assert jr.get(L.path(flow.code)).status_code == 200
        r = L.signoff(jr, flow.code, opinion=f'{unit} 同意')
        assert r.status_code == 201, describe(r)
        assert r.doc.get('unit') == unit and r.doc.get('by') == jr.uid
        assert r.doc.get('approved') == 'true'
    flow.p = L.act(flow.rev, flow.p, 'pass')
    assert flow.p.stage == 'approval'
    flow.p = L.act(flow.dir, flow.p, 'approve')
    assert (flow.p.stage, flow.p.version) == ('construction', 9)
    got = L.events(flow.rev, flow.code)
    assert [(e['action'], e['from'], e['to'], e['actor']) for e in got] == [
        ('create', None, 'draft', 'sub_psb'),
        ('submit', 'draft', 'endorsement', 'sub_psb'),
        ('endorse', 'endorsement', 'registration', 'cdo_psb'),
        ('pass', 'registration', 'prereview', 'rev_city'),
        ('pass', 'prereview', 'budget_review', 'rev_city'),
        ('pass', 'budget_review', 'listing', 'rev_city'),
        ('pass', 'listing', 'pre_implementation', 'rev_city'),
        ('pass', 'pre_implementation', 'approval', 'rev_city'),
        ('approve', 'approval', 'construction', 'dir_city')]
    assert got[5]['amount'] == '5000000.00'
    recs = L.audit(users['auditor1'], flow.code)
    acts = [(r['actor'], r['action']) for r in recs]
    assert acts.count(('rev_city', 'experts_assign')) == 1
    assert sorted(a for a, act in acts if act == 'expert_score') == sorted(names)
    assert sorted(a for a, act in acts if act == 'signoff') == ['jr_cac', 'jr_drc', 'jr_fin']
    summaries = [r['summary'] for r in recs if r['action'] == 'signoff']
    assert sorted(s.split()[0] for s in summaries) == list(L.JOINT_THREE)


def test_county_project_is_run_by_the_county_with_city_rules(users):
    """沭阳县's own Data Bureau moves its project (reviewer and director of
    the county); the county has no rules of its own, so the city's apply:
    a cross-department declaration needs three experts (2,350,000.00) and
    the three joint sign-offs."""
    flow = L.Flow(users, unit='321322-AGRI', title='沭阳县智慧农业物联网平台',
                  budget='2350000.00', cross=True,
                  resources=[('AGRI-SOIL-01', '土壤墒情监测数据')])
    assert flow.rev.uid == 'rev_shuyang' and flow.dir.uid == 'dir_shuyang'
    expected = walk(users, flow)
    assert L.experts_of(flow.rev, flow.code).get('required') == '3'
    assert flow.code.startswith('321322-')
    check_events(users, flow, expected)
    recs = L.audit(users['auditor1'], flow.code)
    assert sorted(r['actor'] for r in recs if r['action'] == 'signoff') == \
        ['jr_cac', 'jr_drc', 'jr_fin']
    # The city's reviewer sees it too; the other county's users do not.
    assert users['rev_city'].get(L.path(flow.code)).status_code == 200
    assert users['sub_edu_sy'].get(L.path(flow.code)).status_code == 404
    assert users['cdo_edu_sy'].get(L.path(flow.code)).status_code == 404
    # Declared data resources are read back.
    res = flow.p.doc.find(N + 'dataResources').findall(N + 'resource')
    assert [(r.get('code'), r.findtext(N + 'name')) for r in res] == \
        [('AGRI-SOIL-01', '土壤墒情监测数据')]


def test_classified_project_needs_secrecy_review_and_secrecy_signoff(users, env):
    """A classified declaration (by users holding the clearance: an SSO
    submitter and CDO of 321300-PSB, rev_city, dir_city, jr_sec) needs the
    secrecy review attached and the secrecy bureau's sign-off, and stays
    invisible to everyone without the clearance."""
    sub = L.User(env, bearer=L.sso_token(env, 'sso-sub-psb-secret', '321300-PSB', '321300',
                                         ['submitter'], clearance='classified',
                                         name='涉密申报人'))
    cdo = L.User(env, bearer=L.sso_token(env, 'sso-cdo-psb-secret', '321300-PSB', '321300',
                                         ['cdo'], clearance='classified',
                                         name='涉密首席数据官'))
    flow = L.Flow(users, unit='321300-PSB', submitter=sub, cdo=cdo,
                  title='宿迁市涉密业务专网改造', budget='300000.00', classified=True)
    flow.create()
    for u in ('sub_psb', 'cdo_psb', 'rev_city2', 'jr_drc', 'auditor1'):
        assert users[u].get(L.path(flow.code)).status_code == 404, u
    flow.attach_materials(L.MATERIALS)
    r = L.transition(sub, flow.code, 'submit', 1)
    assert 'secrecy_review' in L.problem_detail(L.problem(r, 409, 'materials_missing'))
    L.attach(sub, flow.code, 'secrecy_review')
    flow.to('pre_implementation')
    r = L.transition(flow.rev, flow.code, 'pass', flow.p.version)
    d = L.problem_detail(L.problem(r, 409, 'signoffs_missing'))
    assert '321300-SEC' in d and '321300-DRC' not in d
    r = L.signoff(users['jr_sec'], flow.code)
    assert r.status_code == 201, describe(r)
    flow.p = L.act(flow.rev, flow.p, 'pass')
    flow.p = L.act(flow.dir, flow.p, 'approve')
    assert flow.p.stage == 'construction'
    assert [e['actor'] for e in L.events(flow.rev, flow.code)][:3] == \
        ['sso-sub-psb-secret', 'sso-sub-psb-secret', 'sso-cdo-psb-secret']


def test_after_construction_trial_and_its_minimum_period(users):
    """construction -> trial_operation by the unit; acceptance is refused
    until the minimum trial period (90 days by default) is over."""
    flow = L.flow_to(users, 'construction', budget='120000.00')
    p = L.act(flow.sub, flow.p, 'start_trial')
    assert (p.stage, p.version) == ('trial_operation', 10)
    r = L.transition(flow.sub, flow.code, 'request_acceptance', p.version)
    L.problem(r, 409, 'trial_period_not_over')
    assert L.snapshot(flow.rev, flow.code) == (10, 'trial_operation', 10)


def test_attachment_name_from_content_disposition(users):
    """With no filename in the query, the Content-Disposition header's is kept
    (RFC 6266's UTF-8 form first); with neither, 422 and nothing stored."""
    sub = users['sub_psb']
    p = L.create(sub, title='附件文件名测试')
    for header, name in (('attachment; filename="plan.pdf"', 'plan.pdf'),
                         ("attachment; filename=\"x.pdf\"; filename*=UTF-8''%E6%96%B9%E6%A1%88.pdf",
                          '方案.pdf')):
        r = sub.post(L.path(p.code, '/attachments'), params={'kind': 'construction_plan'},
                     data=b'%PDF-1.4 x', headers={'Content-Type': 'application/pdf',
                                                  'Content-Disposition': header})
        assert r.status_code == 201, describe(r)
        assert r.doc.get('filename') == name, describe(r)
    r = sub.post(L.path(p.code, '/attachments'), params={'kind': 'other'}, data=b'x',
                 headers={'Content-Type': 'application/pdf'})
    L.problem(r, 422)
    r = sub.get(L.path(p.code, '/attachments'))
    assert len(r.doc.findall(N + 'attachment')) == 2, describe(r)


@pytest.mark.parametrize('name,data,ctype,status', [
    ('empty.pdf', b'', 'application/pdf', 422),
    # U+202E shows "invoice\u202Efdp.exe" as "invoiceexe.pdf".
    ('invoice\u202efdp.exe', b'x', 'application/pdf', 422),
    ('plan\u200b.pdf', b'x', 'application/pdf', 422),
    ('c1\u0085.pdf', b'x', 'application/pdf', 422),
    ('\u3000 ', b'x', 'application/pdf', 422),
    ('soft\u00adhyphen.pdf', b'x', 'application/pdf', 422),
    ('line\u2028break.pdf', b'x', 'application/pdf', 422),
    ('tag\U000e0041.pdf', b'x', 'application/pdf', 422),
    ('filler\u3164.pdf', b'x', 'application/pdf', 422),
    # Not UTF-8: a surrogate, an overlong 'A', a stray continuation byte.
    (b'\xed\xa0\x80.pdf', b'x', 'application/pdf', 422),
    (b'\xc1\x81.pdf', b'x', 'application/pdf', 422),
    (b'\xbf.pdf', b'x', 'application/pdf', 422),
    ('plan.pdf', b'x', 'not a type', 415),
    ('plan.pdf', b'x', 'application/', 415),
    ('plan.pdf', b'x', 'application/pdf garbage', 415),
])
def test_attachment_refusals(users, name, data, ctype, status):
    """An empty file is no material; a name that hides what it is (C1
    controls, zero-width and bidirectional formatting) or is blank, and a
    content type that is not type/subtype (it is served back as given) are
    refused, and nothing is stored."""
    sub = users['sub_psb']
    p = L.create(sub, title='附件拒收测试')
    r = sub.post(L.path(p.code, '/attachments'),
                 params={'kind': 'security_plan', 'filename': name},
                 data=data, headers={'Content-Type': ctype})
    L.problem(r, status)
    r = sub.get(L.path(p.code, '/attachments'))
    assert r.doc.findall(N + 'attachment') == [], describe(r)
    # A content type with parameters is one.
    doc = L.attach(sub, p.code, 'security_plan', content_type='text/plain; charset=utf-8')
    assert doc.get('contentType') == 'text/plain; charset=utf-8'


def test_attachments_round_trip(users):
    """Uploads keep kind, file name, content type and SHA-256; the bytes
    come back unchanged; the list shows every upload."""
    p = L.create(users['sub_psb'], title='附件往返测试')
    files = {
        'declaration_form': (b'%PDF-1.7\n' + bytes(range(256)) * 64, 'application/pdf',
                             '申报书.pdf'),
        'budget_detail': ('项目,金额\n服务器,100000.00\n'.encode(), 'text/csv', 'budget.csv'),
        'other': (b'\x00', 'application/octet-stream', 'one-byte.bin'),
    }
    ids = {}
    for kind, (data, ctype, name) in files.items():
        doc = L.attach(users['sub_psb'], p.code, kind, data=data, filename=name,
                       content_type=ctype)
        assert doc.get('kind') == kind and doc.get('filename') == name
        assert doc.get('contentType') == ctype and doc.get('size') == str(len(data))
        assert doc.get('uploadedBy') == 'sub_psb'
        ids[kind] = doc.get('id')
    for who in ('sub_psb', 'cdo_psb', 'rev_city', 'auditor1'):
        r = users[who].get(L.path(p.code, '/attachments'))
        assert r.status_code == 200, describe(r)
        listed = {a.get('kind'): a for a in r.doc.findall(N + 'attachment')}
        assert set(listed) == set(files)
        for kind, (data, ctype, name) in files.items():
            assert listed[kind].get('sha256') == hashlib.sha256(data).hexdigest()
            g = users[who].get(L.path(p.code, f'/attachments/{ids[kind]}'))
            assert g.status_code == 200, describe(g)
            assert g.content == data
            assert g.headers.get('Content-Type', '').split(';')[0] == ctype
            # RFC 3230 / RFC 9530: the digest in base64; RFC 6266: a
            # non-ASCII name in filename*, an ASCII stand-in in filename.
            b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
            assert g.headers.get('Digest') == f'sha-256={b64}', g.headers
            assert g.headers.get('Repr-Digest') == f'sha-256=:{b64}:', g.headers
            # An attachment never changes: its hash is its strong validator.
            assert g.headers.get('ETag') == f'"{hashlib.sha256(data).hexdigest()}"', g.headers
            cd = g.headers.get('Content-Disposition', '')
            if name.isascii():
                assert cd == f'attachment; filename="{name}"', cd
            else:
                quoted = urllib.parse.quote(name, safe='')
                ascii = ''.join(chr(b) if b < 0x80 else '_' for b in name.encode())
                assert cd == f"attachment; filename=\"{ascii}\"; filename*=UTF-8''{quoted}", cd
    # Out of scope: 404, for the list and the file.
    assert users['sub_health'].get(L.path(p.code, '/attachments')).status_code == 404
    r = users['sub_health'].get(L.path(p.code, f'/attachments/{ids["other"]}'))
    assert r.status_code == 404
    # A reviewer in scope may attach too; a CDO may not (role).
    L.attach(users['rev_city'], p.code, 'other')
    r = users['cdo_psb'].post(L.path(p.code, '/attachments'),
                              params={'kind': 'other', 'filename': 'x.pdf'},
                              data=b'x', headers={'Content-Type': 'application/pdf'})
    L.problem(r, 403)
    # Attachments are sub-records: they need no If-Match and leave the
    # project's version alone.
    assert L.read(users['sub_psb'], p.code).version == 1


def test_return_withdraw_reject_and_defer(users):
    """The side paths: return (with its reason, shown to the unit) and
    withdraw take the project back to draft; a corrected draft is submitted
    again; defer moves the list year on; reject ends it."""
    flow = L.flow_to(users, 'endorsement', budget='200000.00')
    sub, cdo, rev, dr = flow.sub, flow.cdo, flow.rev, flow.dir
    p = L.act(cdo, flow.p, 'return', reason='申报书缺少盖章页')
    assert (p.stage, p.text('returnReason')) == ('draft', '申报书缺少盖章页')
    assert L.read(sub, flow.code).text('returnReason') == '申报书缺少盖章页'
    # The unit corrects its draft (PUT with If-Match) and submits again.
    r = sub.put_xml(L.path(flow.code), L.declaration(title='改正后的标题', budget='200000.00'),
                    headers={'If-Match': f'"{p.version}"'})
    assert r.status_code == 200, describe(r)
    p = L.Project(r)
    assert p.text('title') == '改正后的标题' and p.version == 4
    p = L.act(sub, p, 'submit')
    p = L.act(sub, p, 'withdraw')
    assert p.stage == 'draft'
    p = L.act(sub, p, 'submit')
    p = L.act(cdo, p, 'endorse')
    p = L.act(sub, p, 'withdraw')
    assert p.stage == 'draft'
    p = L.act(sub, p, 'submit')
    p = L.act(cdo, p, 'endorse')
    p = L.act(rev, p, 'return', reason='请补充安全方案')
    assert (p.stage, p.text('returnReason')) == ('draft', '请补充安全方案')
    flow.p = p
    flow.to('listing')
    year = int(flow.p.text('year'))
    p = L.act(rev, flow.p, 'defer')
    assert (p.stage, p.text('listYear')) == ('listing', str(year + 1))
    p = L.act(rev, p, 'defer')
    assert p.text('listYear') == str(year + 2)
    p = L.act(rev, p, 'pass', list_year=year + 2)
    assert (p.stage, p.text('listYear')) == ('pre_implementation', str(year + 2))
    p = L.act(rev, p, 'pass')
    p = L.act(dr, p, 'reject', reason='与已建系统重复')
    assert p.stage == 'rejected'
    ev = L.events(rev, flow.code)
    assert [e['action'] for e in ev] == [
        'create', 'submit', 'return', 'submit', 'withdraw', 'submit', 'endorse', 'withdraw',
        'submit', 'endorse', 'return', 'submit', 'endorse', 'pass', 'pass', 'pass',
        'defer', 'defer', 'pass', 'pass', 'reject']
    assert ev[2]['reason'] == '申报书缺少盖章页' and ev[-1]['reason'] == '与已建系统重复'
    assert [e['listYear'] for e in ev if e['action'] == 'defer'] == [None, None] or \
        [e['listYear'] for e in ev if e['action'] == 'defer'] == [str(year + 1), str(year + 2)]
    # Terminal: nothing more happens to it.
    v = p.version
    for user, action in ((sub, 'submit'), (rev, 'pass'), (dr, 'approve'), (sub, 'withdraw'),
                         (rev, 'return'), (dr, 'reject')):
        r = L.transition(user, flow.code, action, v, reason='再试')
        L.problem(r, 409, 'wrong_stage')
    assert L.snapshot(rev, flow.code) == (v, 'rejected', len(ev))


@pytest.mark.parametrize('stage', ['registration', 'prereview', 'budget_review',
                                   'pre_implementation'])
def test_reviewer_rejects_at_each_review_step(users, stage):
    flow = L.flow_to(users, stage, budget='100000.00')
    p = L.act(flow.rev, flow.p, 'reject', reason=f'{stage} 不通过')
    assert p.stage == 'rejected'
    last = L.events(flow.rev, flow.code)[-1]
    assert (last['action'], last['from'], last['to'], last['reason']) == \
        ('reject', stage, 'rejected', f'{stage} 不通过')


def test_existing_systems_enter_at_operation(users):
    """category existing: a reviewer or county admin registers a system
    built before the platform, which enters at operation; a submitter's
    existing declaration is an ordinary draft."""
    p = L.create(users['rev_city'], unit='321300-PSB', category='existing',
                 title='宿迁市人口信息管理系统（存量）')
    assert p.stage == 'operation'
    assert [(e['actor'], e['role'], e['to']) for e in L.events(users['rev_city'], p.code)] == \
        [('rev_city', 'reviewer', 'operation')]
    q = L.create(users['ca_shuyang'], unit='321322-AGRI', category='existing',
                 title='沭阳县农技推广系统（存量）')
    assert q.stage == 'operation'
    assert L.events(users['ca_shuyang'], q.code)[0]['role'] == 'county_admin'
    d = L.create(users['sub_psb'], category='existing', title='存量系统草稿')
    assert d.stage == 'draft'
    # A county admin registers only in its own region.
    r = L.create(users['ca_shuyang'], expect=403, unit='321323-EDU', category='existing')
    assert r.status_code in (403, 404), describe(r)
    # force_exit needs the exit-candidate mark (monitoring); retire does not.
    r = L.transition(users['rev_city'], p.code, 'force_exit', p.version, reason='长期无人使用')
    L.problem(r, 409, 'not_exit_candidate')
    p = L.act(users['sub_psb'], p, 'retire')
    assert p.stage == 'retired'
    r = L.transition(users['rev_city'], p.code, 'retire', p.version)
    L.problem(r, 409, 'wrong_stage')


def test_list_pages_by_offset_or_by_page(users):
    """limit/offset, or size (pageSize, per_page) and a 1-based page: the
    same pages; total counts every match; bad paging is 400."""
    rev = users['rev_city']
    made = sorted(L.create(users['sub_psb'], title=f'分页测试 {tag}').code
                  for tag in ('甲', '乙', '丙', '丁', '戊'))
    q = {'text': '分页测试', 'unit': '321300-PSB'}

    def page(**kw):
        r = rev.get('/api/v1/projects', params=dict(q, **kw))
        assert r.status_code == 200, describe(r)
        return r.doc, [x.get('code') for x in r.doc.findall(N + 'project')]

    doc, every = page(limit=500)
    assert set(made) <= set(every) and every == sorted(every)
    assert doc.get('total') == str(len(every)) and doc.get('totalAtLeast') is None
    assert page(limit=2, offset=2)[1] == every[2:4]
    for size in ('size', 'pageSize', 'per_page'):
        assert page(**{size: 2, 'page': 2})[1] == every[2:4], size
    assert page(size=2, page=1)[1] == every[:2]
    for bad in ({'page': 0}, {'page': 'x'}, {'limit': 0}, {'size': 501},
                {'page': 2, 'offset': 4}, {'offset': -1}):
        L.problem(rev.get('/api/v1/projects', params=dict(q, **bad)), 400)


def test_list_filters_find_the_project(users):
    flow = L.flow_to(users, 'registration', unit='321300-HEALTH',
                     title='列表过滤测试 卫健委 专用', budget='88000.00')
    year = flow.p.text('year')
    r = users['rev_city'].get('/api/v1/projects', params={
        'stage': 'registration', 'unit': '321300-HEALTH', 'region': '321300', 'year': year,
        'category': 'new', 'text': '列表过滤测试 卫健委', 'limit': 500})
    assert r.status_code == 200, describe(r)
    codes = [x.get('code') for x in r.doc.findall(N + 'project')]
    assert flow.code in codes
    for params in ({'stage': 'draft'}, {'unit': '321300-PSB'}, {'region': '321322'},
                   {'category': 'existing'}, {'text': '没有这个标题的项目'}):
        params = dict(params, limit=500, text=params.get('text', '列表过滤测试 卫健委'))
        r = users['rev_city'].get('/api/v1/projects', params=params)
        assert r.status_code == 200, describe(r)
        assert flow.code not in [x.get('code') for x in r.doc.findall(N + 'project')], params
    # Out of scope: the list of another unit's submitter does not show it.
    r = users['sub_psb'].get('/api/v1/projects', params={'text': '列表过滤测试 卫健委'})
    assert flow.code not in [x.get('code') for x in r.doc.findall(N + 'project')]


def test_history_keeps_only_the_amounts_an_action_applied(users):
    """An amount or a list year sent with an action that applies neither
    (a pass at registration) changes nothing and is not recorded in the
    event or the audit record; the approved amount of budget_review's pass
    and the list year of listing's pass are."""
    flow = L.flow_to(users, 'registration', budget='100000.00')
    rev = flow.rev
    flow.p = L.act(rev, flow.p, 'pass', amount='99999999.00', list_year=2099)
    assert flow.p.stage == 'prereview'
    assert flow.p.text('approvedBudget') is None and flow.p.text('listYear') is None
    last = L.events(rev, flow.code)[-1]
    assert (last['action'], last['amount'], last['listYear']) == ('pass', None, None), last
    summary = L.audit(users['auditor1'], flow.code)[-1]['summary']
    assert 'amount' not in summary and 'list_year' not in summary, summary
    flow.to('budget_review')
    flow.step(amount='90000.00')
    last = L.events(rev, flow.code)[-1]
    assert (last['from'], last['amount'], last['listYear']) == ('budget_review', '90000.00', None)
    year = int(flow.p.text('year'))
    flow.step(list_year=year)
    last = L.events(rev, flow.code)[-1]
    assert (last['from'], last['amount'], last['listYear']) == ('listing', None, str(year)), last


def test_update_audit_record_says_what_changed(users):
    """SPEC section 4: an audit record carries a before/after summary; for
    an update of a draft, each changed field before -> after (long texts by
    name), and nothing about fields left alone."""
    sub = users['sub_psb']
    p = L.create(sub, title='审计摘要测试', budget='300000.00')
    body = L.declaration(title='审计摘要测试（修订）', budget='280000.00',
                         resources=[('PSB-AUD-01', '审计测试数据')])
    r = sub.put_xml(L.path(p.code), body, headers={'If-Match': f'"{p.version}"'})
    assert r.status_code == 200, describe(r)
    rec = [x for x in L.audit(users['auditor1'], p.code) if x['action'] == 'update'][-1]
    summary = rec['summary']
    assert summary.startswith(f'version {p.version} -> {p.version + 1}'), summary
    assert 'title: 审计摘要测试 -> 审计摘要测试（修订）' in summary, summary
    assert 'budget_fen: 30000000 -> 28000000' in summary, summary
    assert 'data_resources changed: 0 -> 1' in summary, summary
    assert 'category' not in summary and 'funding' not in summary, summary
    # A resource's other fields count too; what is left alone is not named.
    body = L.declaration(title='审计摘要测试（修订）', budget='280000.00',
                         resources=[('PSB-AUD-01', '审计测试数据（更名）')])
    r = sub.put_xml(L.path(p.code), body, headers={'If-Match': f'"{p.version + 1}"'})
    assert r.status_code == 200, describe(r)
    summary = [x for x in L.audit(users['auditor1'], p.code) if x['action'] == 'update'][-1][
        'summary']
    assert summary == f'version {p.version + 1} -> {p.version + 2}; data_resources changed: 1 -> 1', \
        summary


def test_drawn_experts_carry_the_id_their_score_is_put_to(users):
    """Each drawn expert is listed with an id, and PUT …/experts/{id} with
    that id records the expert's score."""
    flow = L.Flow(users, budget='600000.00')
    flow.to('prereview')
    flow.draw_experts()
    doc = L.experts_of(flow.rev, flow.code)
    experts = doc.findall(N + 'expert')
    assert experts and all(e.get('id') == e.get('user') for e in experts), \
        [dict(e.attrib) for e in experts]
    first = experts[0].get('id')
    r = users[first].put_xml(L.path(flow.code, f'/experts/{first}'),
                             f'<score xmlns="{L.NS}" value="77"/>'.encode())
    assert r.status_code == 200, describe(r)
    scored = {e.get('id'): e.get('score') for e in L.experts_of(flow.rev, flow.code)
              .findall(N + 'expert')}
    assert scored[first] == '77', scored
