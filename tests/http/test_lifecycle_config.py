"""Gates that depend on the administered rules (SPEC section 4: "each value
is configuration, per region"), each on a private stack of its own because
it changes the rules: an expert pool too small for the draw, a county's own
thresholds and windows next to the city's, and the trial period (set to 0
days so that acceptance can be reached and its gates checked)."""

import pytest

import lifecycle_api as L
from lifecycle_api import N, describe


@pytest.fixture
def stack(private_stack):
    env = private_stack()
    users = L.Users(env)
    L.ensure_expert_pool(users['admin1'])
    yield env, users
    users.close()


def thresholds_body(region, expert_amount='500000.00', expert_count=3,
                    joint_amount='5000000.00', joint_count=5, min_mean=60, trial_days=90,
                    lists=''):
    return (f'<thresholds xmlns="{L.NS}"><threshold region="{region}" '
            f'expertAmount="{expert_amount}" expertCount="{expert_count}" '
            f'jointAmount="{joint_amount}" jointExpertCount="{joint_count}" '
            f'expertMinMean="{min_mean}" trialDays="{trial_days}">{lists}</threshold>'
            '</thresholds>')


def put_thresholds(admin, region, **kw):
    r = admin.put_xml('/api/v1/config/thresholds', thresholds_body(region, **kw))
    assert r.status_code == 200, describe(r)
    return r.doc


def put_window(admin, region, year, opens, closes):
    body = (f'<windows xmlns="{L.NS}"><window region="{region}" year="{year}" '
            f'opens="{opens}" closes="{closes}"/></windows>')
    r = admin.put_xml('/api/v1/config/windows', body)
    assert r.status_code == 200, describe(r)


def test_expert_pool_too_small(stack):
    env, users = stack
    admin = users['admin1']
    L.ensure_expert_pool(admin, active={u: u in ('expert1', 'expert2')
                                        for u in L.EXPERTS})
    flow = L.flow_to(users, 'prereview', budget='600000.00')
    v = flow.p.version
    r = L.assign_experts(flow.rev, flow.code)
    d = L.problem_detail(L.problem(r, 409, 'expert_pool_too_small'))
    assert '2' in d and '3' in d, d
    # All or nothing: the two who could be drawn are not kept.
    assert L.experts_of(flow.rev, flow.code).findall(N + 'expert') == []
    # An inactive expert cannot be named.
    r = L.assign_experts(flow.rev, flow.code, ['expert3'])
    assert r.status_code in (409, 422), describe(r)
    # The declaring unit's expert does not count towards the pool.
    L.ensure_expert_pool(admin, active={u: u in ('expert1', 'expert2', 'expert6')
                                        for u in L.EXPERTS})
    L.problem(L.assign_experts(flow.rev, flow.code), 409, 'expert_pool_too_small')
    L.ensure_expert_pool(admin, active={u: u in ('expert1', 'expert2', 'expert3')
                                        for u in L.EXPERTS})
    r = L.assign_experts(flow.rev, flow.code)
    assert r.status_code == 201, describe(r)
    assert sorted(e.get('user') for e in r.doc.findall(N + 'expert')) == \
        ['expert1', 'expert2', 'expert3']
    assert L.read(flow.rev, flow.code).version == v
    r = users['admin1'].get('/api/v1/config/experts')
    assert {e.get('user'): e.get('active') for e in r.doc.findall(N + 'expert')}['expert4'] \
        == 'false'


def test_county_thresholds_of_its_own(stack):
    """沭阳县 (321322) gets thresholds of its own: experts from 100,000.00 and
    a mean of at least 80. Its projects follow them; the city's and 泗阳县's
    (which has none) still follow the city's."""
    env, users = stack
    doc = put_thresholds(users['admin1'], '321322', expert_amount='100000.00', min_mean=80)
    regions = {t.get('region'): t for t in doc.findall(N + 'threshold')}
    assert regions['321322'].get('expertMinMean') == '80'
    assert regions['321300'].get('expertMinMean') == '60'
    county = L.create(users['sub_agri'], unit='321322-AGRI', budget='200000.00')
    city = L.create(users['sub_psb'], budget='200000.00')
    other = L.create(users['sub_edu_sy'], unit='321323-EDU', budget='200000.00')
    assert L.experts_of(users['rev_city'], county.code).get('required') == '3'
    assert L.experts_of(users['rev_city'], city.code).get('required') == '0'
    assert L.experts_of(users['rev_city'], other.code).get('required') == '0'
    cf = L.flow_to(users, 'prereview', unit='321322-AGRI', budget='600000.00',
                   scores=[70, 70, 70])
    cf.score_all()
    L.problem(L.transition(cf.rev, cf.code, 'pass', cf.p.version), 409, 'expert_mean_low')
    pf = L.flow_to(users, 'prereview', unit='321300-PSB', budget='600000.00',
                   scores=[70, 70, 70])
    pf.score_all()
    assert L.act(pf.rev, pf.code, 'pass').stage == 'budget_review'
    # Only an admin changes thresholds; the change is audited.
    r = users['rev_city'].put_xml('/api/v1/config/thresholds',
                                  f'<thresholds xmlns="{L.NS}"/>')
    assert r.status_code == 403, describe(r)
    r = users['auditor1'].get('/api/v1/audit', params={'object': 'region:321322'})
    assert any(x.findtext(N + 'action') == 'config_thresholds'
               for x in r.doc.iter(N + 'record')), describe(r)


def test_county_window_of_its_own(stack):
    """A window of 沭阳县's own for 2094 opens 2094 for the county only. A
    county that has a window of its own for one year keeps following the
    city's windows for the other years (a careful admin opening one special
    year does not expect every other year of the county to close)."""
    env, users = stack
    import datetime
    today = datetime.date.today()
    put_window(users['admin1'], '321322', 2094, today - datetime.timedelta(days=1),
               today + datetime.timedelta(days=1))
    sub_c, sub = users['sub_agri'], users['sub_psb']
    pc = L.create(sub_c, unit='321322-AGRI', year=2094)
    pp = L.create(sub, year=2094)
    for u, p in ((sub_c, pc), (sub, pp)):
        for k in L.MATERIALS:
            L.attach(u, p.code, k)
    assert L.act(sub_c, pc, 'submit').stage == 'endorsement'
    L.problem(L.transition(sub, pp.code, 'submit', 1), 409, 'window_closed')
    # The county's ordinary year, open in the city's windows.
    q = L.create(sub_c, unit='321322-AGRI')
    for k in L.MATERIALS:
        L.attach(sub_c, q.code, k)
    r = L.transition(sub_c, q.code, 'submit', 1)
    assert r.status_code == 200, (
        'after a county window of its own for 2094, the county\'s declarations for '
        f'{L.open_year()} (open in the city\'s windows) are refused: {describe(r)}')


def test_acceptance_gates_with_a_trial_period_of_zero_days(stack):
    """trialDays 0 (admin) lets the project reach acceptance at once:
    accept needs the acceptance report, test report and security
    assessment, and every declared data resource aggregated; return at
    acceptance goes back to trial_operation with its reason; then
    filing needs a registered asset."""
    env, users = stack
    put_thresholds(users['admin1'], '321300', trial_days=0)
    flow = L.flow_to(users, 'construction', budget='100000.00',
                     resources=[('PSB-R1', '未汇聚的数据')])
    sub, rev = flow.sub, flow.rev
    p = L.act(sub, flow.p, 'start_trial')
    p = L.act(sub, p, 'request_acceptance')
    assert p.stage == 'acceptance'
    r = L.transition(rev, p.code, 'accept', p.version)
    d = L.problem_detail(L.problem(r, 409, 'materials_missing'))
    assert all(k in d for k in ('acceptance_report', 'test_report', 'security_assessment')), d
    for k in ('acceptance_report', 'test_report', 'security_assessment'):
        L.attach(sub, p.code, k)
    r = L.transition(rev, p.code, 'accept', p.version)
    L.problem(r, 409, 'data_not_aggregated')
    L.problem(L.transition(rev, p.code, 'return', p.version), 422)
    L.problem(L.transition(rev, p.code, 'return', p.version + 1, reason='x'), 412)
    L.problem(L.transition(rev, p.code, 'return', None, reason='x'), 428)
    L.problem(L.transition(sub, p.code, 'return', p.version, reason='x'), 403)
    L.problem(L.transition(sub, p.code, 'accept', p.version), 403)
    L.problem(L.transition(rev, p.code, 'complete_filing', p.version), 403)
    L.problem(L.transition(sub, p.code, 'complete_filing', p.version), 409, 'wrong_stage')
    assert L.snapshot(rev, p.code)[:2] == (p.version, 'acceptance')
    p = L.act(rev, p, 'return', reason='数据未汇聚')
    assert (p.stage, p.text('returnReason')) == ('trial_operation', '数据未汇聚')
    # A project whose resources are aggregated is accepted.
    g = L.Flow(users, budget='100000.00')
    g.decl['resources'] = ()
    g.to('construction')
    q = L.act(g.sub, g.p, 'start_trial')
    q = L.act(g.sub, q, 'request_acceptance')
    for k in ('acceptance_report', 'test_report', 'security_assessment'):
        L.attach(g.sub, q.code, k)
    L.problem(L.transition(g.sub, q.code, 'accept', q.version), 403)
    L.problem(L.transition(rev, q.code, 'accept', q.version - 1), 412)
    L.problem(L.transition(rev, q.code, 'accept', None), 428)
    q = L.act(rev, q, 'accept')
    assert q.stage == 'filing'
    L.attach(g.sub, q.code, 'filing_document')
    L.problem(L.transition(g.sub, q.code, 'complete_filing', q.version), 409, 'assets_missing')
    L.problem(L.transition(g.sub, q.code, 'complete_filing', None), 428)
    L.problem(L.transition(g.sub, q.code, 'complete_filing', q.version - 1), 412)
    L.problem(L.transition(rev, q.code, 'accept', q.version), 409, 'wrong_stage')
    assert L.snapshot(rev, q.code)[:2] == (q.version, 'filing')


def test_rules_for_a_region_that_does_not_exist(stack):
    """A window or thresholds for a region code the city does not have: 422
    (the document names nothing real), nothing stored."""
    env, users = stack
    admin = users['admin1']
    before = admin.get('/api/v1/config/windows').content
    body = (f'<windows xmlns="{L.NS}"><window region="999999" year="2030" '
            f'opens="2030-01-01" closes="2030-03-31"/></windows>')
    L.problem(admin.put_xml('/api/v1/config/windows', body), 422)
    body = (f'<thresholds xmlns="{L.NS}"><threshold region="999999" '
            f'expertAmount="500000.00" expertCount="3" jointAmount="5000000.00" '
            f'jointExpertCount="5" expertMinMean="60" trialDays="90"/></thresholds>')
    L.problem(admin.put_xml('/api/v1/config/thresholds', body), 422)
    assert admin.get('/api/v1/config/windows').content == before


@pytest.mark.parametrize('attr,value', [('expertCount', 0), ('expertCount', 51),
                                        ('jointExpertCount', 0), ('jointExpertCount', 51)])
def test_expert_counts_outside_what_a_threshold_holds_are_refused_422(stack, attr, value):
    """An expert count of 0 or over 50 is refused by the schema (422), as
    the database would refuse it, and nothing is stored."""
    env, users = stack
    admin = users['admin1']
    before = admin.get('/api/v1/config/thresholds').content
    counts = {'expertCount': 3, 'jointExpertCount': 5}
    counts[attr] = value
    body = (f'<thresholds xmlns="{L.NS}"><threshold region="321300" '
            f'expertAmount="500000.00" expertCount="{counts["expertCount"]}" '
            f'jointAmount="5000000.00" jointExpertCount="{counts["jointExpertCount"]}" '
            f'expertMinMean="60" trialDays="90"/></thresholds>')
    L.problem(admin.put_xml('/api/v1/config/thresholds', body), 422)
    assert admin.get('/api/v1/config/thresholds').content == before


def audit_summaries(auditor, obj, action):
    r = auditor.get('/api/v1/audit', params={'object': obj, 'limit': 1000})
    assert r.status_code == 200, describe(r)
    return [rec.findtext(N + 'summary') for rec in r.doc.iter(N + 'record')
            if rec.findtext(N + 'action') == action]


def test_rule_changes_are_audited_before_and_after(stack):
    """SPEC section 4: every audit record has a before/after summary. A
    change of thresholds names each changed value before -> after (a county
    without rules of its own starts from the city's, said so); a change of
    an expert likewise; an expert's fields come back as they were put,
    commas and quotes included."""
    env, users = stack
    admin, auditor = users['admin1'], users['auditor1']
    put_thresholds(admin, '321300', expert_count=4)
    last = audit_summaries(auditor, 'region:321300', 'config_thresholds')[-1]
    assert last == 'expert_count 3 -> 4', last
    put_thresholds(admin, '321322', joint_count=6, trial_days=30)
    last = audit_summaries(auditor, 'region:321322', 'config_thresholds')[-1]
    assert last == ('expert_count 4 -> 3, joint_expert_count 5 -> 6, trial_days 90 -> 30 '
                    '(before: inherited from 321300)'), last

    fields = ['a,b', '"q"', 'c\\d', '数据, 治理']
    body = (f'<expertPool xmlns="{L.NS}"><expert user="expert-fields" name="X" '
            f'unit="321300-PSB">' + ''.join(f'<field>{f.replace("&", "&amp;")}</field>'
                                            for f in fields) + '</expert></expertPool>')
    r = admin.put_xml('/api/v1/config/experts', body)
    assert r.status_code == 200, describe(r)
    for who in ('admin1', 'rev_city'):
        r = users[who].get('/api/v1/config/experts')
        assert r.status_code == 200, describe(r)
        got = [e for e in r.doc.findall(N + 'expert') if e.get('user') == 'expert-fields']
        assert [f.text for f in got[0].findall(N + 'field')] == fields, describe(r)
    last = audit_summaries(auditor, 'expert:expert-fields', 'config_expert')[-1]
    assert last.startswith('added: name=none -> X unit=none -> 321300-PSB'), last
    r = admin.put_xml('/api/v1/config/experts', body.replace('321300-PSB', '321322-AGRI'))
    assert r.status_code == 200, describe(r)
    last = audit_summaries(auditor, 'expert:expert-fields', 'config_expert')[-1]
    assert last == 'unit=321300-PSB -> 321322-AGRI', last


@pytest.mark.parametrize('opens,closes', [('12030-01-01', '12030-03-31'),
                                          ('2030-01-01Z', '2030-03-31Z'),
                                          ('2030-01-01+08:00', '2030-03-31'),
                                          ('-2030-01-01', '2030-03-31'),
                                          ('2030-1-1', '2030-03-31')])
def test_window_days_are_plain_calendar_days(users, opens, closes):
    """A window's days are YYYY-MM-DD: five-digit or negative years and time
    zones are refused by the schema (422), nothing stored."""
    admin = users['admin1']
    before = admin.get('/api/v1/config/windows').content
    body = (f'<windows xmlns="{L.NS}"><window region="321300" year="2030" '
            f'opens="{opens}" closes="{closes}"/></windows>')
    L.problem(admin.put_xml('/api/v1/config/windows', body), 422)
    assert admin.get('/api/v1/config/windows').content == before


def test_large_projects_need_no_fewer_experts_than_mid_sized(users):
    """jointExpertCount below expertCount would ask fewer experts of a
    project over the joint amount than of a smaller one: 422, nothing
    stored."""
    admin = users['admin1']
    before = admin.get('/api/v1/config/thresholds').content
    body = (f'<thresholds xmlns="{L.NS}"><threshold region="321300" '
            f'expertAmount="500000.00" expertCount="6" jointAmount="5000000.00" '
            f'jointExpertCount="2" expertMinMean="60" trialDays="90"/></thresholds>')
    L.problem(admin.put_xml('/api/v1/config/thresholds', body), 422)
    assert admin.get('/api/v1/config/thresholds').content == before


def rule_lists(admin, region):
    """{('materials', action) | ('signoffs', purpose): [items]} of a region
    as GET /api/v1/config/thresholds shows them (kind, with '*' for
    classified only; unit; a list the region inherits marked '(city)')."""
    r = admin.get('/api/v1/config/thresholds')
    assert r.status_code == 200, describe(r)
    t = next(t for t in r.doc.findall(N + 'threshold') if t.get('region') == region)
    out = {}
    for g in t.findall(N + 'materials'):
        out[('materials', g.get('action'))] = [
            m.get('kind') + ('*' if m.get('classifiedOnly') == 'true' else '')
            for m in g.findall(N + 'material')] + \
            (['(city)'] if g.get('inherited') == 'true' else [])
    for g in t.findall(N + 'signoffs'):
        out[('signoffs', g.get('purpose'))] = [u.get('unit') for u in g.findall(N + 'signoff')] + \
            (['(city)'] if g.get('inherited') == 'true' else [])
    return out


CITY_LISTS = {
    ('materials', 'submit'): ['budget_detail', 'construction_plan', 'declaration_form',
                              'secrecy_review*', 'security_plan'],
    ('materials', 'accept'): ['acceptance_report', 'security_assessment', 'test_report'],
    ('signoffs', 'joint'): ['321300-CAC', '321300-DRC', '321300-FIN'],
    ('signoffs', 'secrecy'): ['321300-SEC'],
}


def inherited(lists):
    return {k: v + ['(city)'] for k, v in lists.items()}


def county_submits(users, attach=()):
    flow = L.Flow(users, unit='321322-AGRI', budget='300000.00')
    flow.create()
    flow.attach_materials(list(attach))
    return flow, L.transition(flow.sub, flow.code, 'submit', flow.p.version)


def test_materials_and_signoff_departments_are_rules_of_each_region(stack):
    """Issue 4: every gate up to approval is configurable per region, the
    required materials and the sign-off departments included. A list given
    replaces that list of the region; the others stay the city's and follow
    it; an empty list of its own means nothing is needed; inherited="true"
    gives a list back to the city's; each change is audited before -> after;
    the gates and the joint reviewers' scope follow at once."""
    env, users = stack
    admin = users['admin1']
    assert rule_lists(admin, '321300') == CITY_LISTS
    put_thresholds(admin, '321322', lists=(
        '<materials action="submit"><material kind="declaration_form"/>'
        '<material kind="secrecy_review" classifiedOnly=" true "/></materials>'
        '<signoffs purpose="joint"><signoff unit="321300-DRC"/></signoffs>'))
    county = rule_lists(admin, '321322')
    assert county == {**inherited(CITY_LISTS),
                      ('materials', 'submit'): ['declaration_form', 'secrecy_review*'],
                      ('signoffs', 'joint'): ['321300-DRC']}, county
    assert rule_lists(admin, '321300') == CITY_LISTS
    summary = audit_summaries(users['auditor1'], 'region:321322', 'config_thresholds')[-1]
    assert ('lists submit=(city) accept=(city) joint=(city) secrecy=(city) -> '
            'submit=[declaration_form, secrecy_review*] accept=(city) joint=[321300-DRC] '
            'secrecy=(city)') in summary, summary

    # The county's declaration needs its one material; the city's still four.
    flow, r = county_submits(users, ['declaration_form'])
    assert r.status_code == 200, describe(r)
    city = L.Flow(users, budget='300000.00')
    city.create()
    city.attach_materials(['declaration_form'])
    L.problem(L.transition(city.sub, city.code, 'submit', city.p.version), 409,
              'materials_missing')
    # Cross-department in the county: the one department it names signs.
    flow = L.Flow(users, unit='321322-AGRI', cross=True, budget='300000.00')
    flow.materials = ('declaration_form',)
    flow.to('pre_implementation')
    assert users['jr_fin'].get(L.path(flow.code)).status_code == 404
    r = L.transition(flow.rev, flow.code, 'pass', flow.p.version)
    detail = L.problem_detail(L.problem(r, 409, 'signoffs_missing'))
    assert '321300-DRC' in detail and '321300-FIN' not in detail, detail
    r = L.signoff(users['jr_drc'], flow.code)
    assert r.status_code == 201, describe(r)
    flow.p = L.act(flow.rev, flow.refresh(), 'pass')
    assert flow.p.stage == 'approval'

    # A list the county inherits follows the city's when it changes.
    put_thresholds(admin, '321300', lists=(
        '<materials action="accept"><material kind="acceptance_report"/></materials>'))
    assert rule_lists(admin, '321322')[('materials', 'accept')] == \
        ['acceptance_report', '(city)']
    # Empty lists of its own: nothing to attach, nothing to sign.
    put_thresholds(admin, '321322', lists=(
        '<materials action="submit"/><materials action="accept"/>'
        '<signoffs purpose="joint"/><signoffs purpose="secrecy"/>'))
    assert set(map(tuple, rule_lists(admin, '321322').values())) == {()}
    _, r = county_submits(users)
    assert r.status_code == 200, describe(r)
    # Given back to the city's: the county needs the city's four again.
    put_thresholds(admin, '321322', lists='<materials action="submit" inherited="true"/>')
    assert rule_lists(admin, '321322')[('materials', 'submit')] == \
        CITY_LISTS[('materials', 'submit')] + ['(city)']
    _, r = county_submits(users, ['declaration_form'])
    L.problem(r, 409, 'materials_missing')


@pytest.mark.parametrize('lists', [
    '<materials action="submit"><material kind="declaration_form"/>'
    '<material kind="declaration_form"/></materials>',
    '<materials action="submit"/><materials action="submit"/>',
    '<materials action="filing"/>',
    '<materials action="submit"><material kind="photo"/></materials>',
    '<signoffs purpose="joint"><signoff unit="321300-DRC"/><signoff unit="321300-DRC"/>'
    '</signoffs>',
    '<signoffs purpose="joint"><signoff unit="321300-NOPE"/></signoffs>',
    '<signoffs purpose="audit"/>',
    # The city's lists are its own: it has nothing to inherit.
    '<signoffs purpose="joint" inherited="true"/>',
])
def test_bad_rule_lists_are_refused_422(users, lists):
    """A material or department twice, a list twice, an action or purpose
    without a list, a kind that is not an attachment kind, a department
    that does not exist, the city inheriting: 422, nothing stored."""
    admin = users['admin1']
    before = admin.get('/api/v1/config/thresholds').content
    L.problem(admin.put_xml('/api/v1/config/thresholds', thresholds_body('321300', lists=lists)),
              422)
    assert admin.get('/api/v1/config/thresholds').content == before


def test_white_space_around_a_day_is_no_part_of_it(users):
    """xs:date collapses white space: " 2035-01-02 " is 2035-01-02, stored so
    and ordered so (a window that closes before it opens is still 422)."""
    admin = users['admin1']
    body = (f'<windows xmlns="{L.NS}"><window region="321300" year="2035" '
            f'opens=" 2035-01-02 " closes="2035-01-10"/></windows>')
    r = admin.put_xml('/api/v1/config/windows', body)
    assert r.status_code == 200, describe(r)
    got = [w for w in r.doc.findall(N + 'window') if w.get('year') == '2035']
    assert [(w.get('opens'), w.get('closes')) for w in got] == [('2035-01-02', '2035-01-10')]
    body = (f'<windows xmlns="{L.NS}"><window region="321300" year="2035" '
            f'opens=" 2035-01-11" closes="2035-01-10 "/></windows>')
    L.problem(admin.put_xml('/api/v1/config/windows', body), 422)


def test_thresholds_as_read_can_be_sent_back(stack):
    """What GET /api/v1/config/thresholds answers, PUT back as it is, changes
    nothing: a list a county inherits (shown with the city's items and
    inherited="true") stays inherited and follows the city's."""
    env, users = stack
    admin = users['admin1']
    put_thresholds(admin, '321322', lists='<signoffs purpose="joint"><signoff unit="321300-DRC"/>'
                                          '</signoffs>')
    before = admin.get('/api/v1/config/thresholds')
    assert before.status_code == 200, describe(before)
    r = admin.put_xml('/api/v1/config/thresholds', before.content)
    assert r.status_code == 200, describe(r)
    assert r.content == before.content
    assert admin.get('/api/v1/config/thresholds').content == before.content
    put_thresholds(admin, '321300', lists=(
        '<materials action="accept"><material kind="test_report"/></materials>'))
    assert rule_lists(admin, '321322')[('materials', 'accept')] == ['test_report', '(city)']
