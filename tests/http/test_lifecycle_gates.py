"""The gate rules of SPEC section 4, each refusing when its condition is not
met (409 and the rule's name, nothing written) and passing when it is:
declaration windows and urgent declarations, materials, expert counts and
the mean score, expert conflicts, joint sign-offs, the approved budget,
self-built construction and endorsement by the unit's own CDO.

Windows are changed (by admin1) only for years nobody else uses, on the
city's rules; everything else runs on the default rules."""

import datetime

import pytest

import lifecycle_api as L
from lifecycle_api import N, describe

# City windows this module owns (no other test declares for these years).
YEAR_NO_WINDOW = 2099
YEAR_ADMIN_WINDOW = 2093


def state(users, code):
    version, stage, nevents = L.snapshot(users['rev_city'], code)
    return version, stage, nevents, len(L.audit(users['auditor1'], code))


def refused(users, user, flow_or_code, action, rule, status=409, **kw):
    """The transition is refused with `rule` and nothing changes; returns
    the problem's detail."""
    code = flow_or_code if isinstance(flow_or_code, str) else flow_or_code.code
    before = state(users, code)
    r = L.transition(user, code, action, before[0], **kw)
    root = L.problem(r, status, rule)
    assert state(users, code) == before, f'{action} refused with {rule} but wrote something'
    return L.problem_detail(root)


def draft_with_materials(users, unit='321300-PSB', **decl):
    sub = users[L.SUBMITTER[unit]]
    p = L.create(sub, unit=unit, **decl)
    for k in L.MATERIALS:
        L.attach(sub, p.code, k)
    return sub, p


# --------------------------------------------------------------------------
# windows and urgent declarations

def test_submit_outside_any_window_is_refused(users):
    """No window is configured for 2099: window_closed."""
    sub, p = draft_with_materials(users, year=YEAR_NO_WINDOW)
    d = refused(users, sub, p.code, 'submit', 'window_closed')
    assert str(YEAR_NO_WINDOW) in d


def test_urgent_declaration_outside_the_window_needs_a_reason(users):
    sub, p = draft_with_materials(users, year=YEAR_NO_WINDOW, urgent='')
    assert p.doc.find(N + 'urgent') is not None
    refused(users, sub, p.code, 'submit', 'urgent_reason_missing')
    # The unit adds the reason to its draft; now it goes through.
    r = sub.put_xml(L.path(p.code), L.declaration(year=YEAR_NO_WINDOW,
                                                  urgent='防汛应急指挥需要'),
                    headers={'If-Match': '"1"'})
    assert r.status_code == 200, describe(r)
    q = L.Project(r)
    assert q.doc.find(N + 'urgent').get('reason') == '防汛应急指挥需要'
    q = L.act(sub, q, 'submit')
    assert q.stage == 'endorsement'


def test_urgent_reason_of_blanks_is_no_reason(users):
    sub, p = draft_with_materials(users, year=YEAR_NO_WINDOW, urgent='   ')
    refused(users, sub, p.code, 'submit', 'urgent_reason_missing')


def test_urgent_with_reason_outside_window_passes_at_once(users):
    sub, p = draft_with_materials(users, year=YEAR_NO_WINDOW, urgent='上级部署的紧急任务')
    assert L.act(sub, p, 'submit').stage == 'endorsement'


def test_inside_the_window_urgent_needs_no_reason(users):
    sub, p = draft_with_materials(users, urgent='')
    assert L.act(sub, p, 'submit').stage == 'endorsement'


def put_window(admin, region, year, opens, closes):
    body = (f'<windows xmlns="{L.NS}"><window region="{region}" year="{year}" '
            f'opens="{opens}" closes="{closes}"/></windows>')
    r = admin.put_xml('/api/v1/config/windows', body)
    assert r.status_code == 200, describe(r)
    got = [(w.get('opens'), w.get('closes')) for w in r.doc.findall(N + 'window')
           if w.get('region') == region and w.get('year') == str(year)]
    assert got == [(str(opens), str(closes))], describe(r)


def test_window_changed_by_the_admin_decides_submit(users):
    """admin1 sets the city's window for 2093: closed (over, not yet open),
    then open; a city and a county declaration (the county uses the city's
    windows) follow each change; the change is audited."""
    admin = users['admin1']
    today = datetime.date.today()
    day = datetime.timedelta(days=1)
    sub, p = draft_with_materials(users, year=YEAR_ADMIN_WINDOW)
    sub_c, pc = draft_with_materials(users, unit='321322-AGRI', year=YEAR_ADMIN_WINDOW)
    put_window(admin, '321300', YEAR_ADMIN_WINDOW, today - 30 * day, today - 2 * day)
    refused(users, sub, p.code, 'submit', 'window_closed')
    refused(users, sub_c, pc.code, 'submit', 'window_closed')
    put_window(admin, '321300', YEAR_ADMIN_WINDOW, today + 2 * day, today + 30 * day)
    refused(users, sub, p.code, 'submit', 'window_closed')
    put_window(admin, '321300', YEAR_ADMIN_WINDOW, today - day, today + day)
    assert L.act(sub, p, 'submit').stage == 'endorsement'
    assert L.act(sub_c, pc, 'submit').stage == 'endorsement'
    r = users['auditor1'].get('/api/v1/audit', params={'object': 'region:321300',
                                                        'actor': 'admin1', 'limit': 1000})
    assert r.status_code == 200, describe(r)
    summaries = [x.findtext(N + 'summary') for x in r.doc.iter(N + 'record')
                 if x.findtext(N + 'action') == 'config_window']
    assert any(s.startswith(f'{YEAR_ADMIN_WINDOW}:') and str(today + day) in s
               for s in summaries), summaries
    # Only an admin changes windows.
    r = users['rev_city'].put_xml('/api/v1/config/windows',
                                  f'<windows xmlns="{L.NS}"><window region="321300" '
                                  f'year="{YEAR_ADMIN_WINDOW}" opens="2000-01-01" '
                                  f'closes="2000-01-02"/></windows>')
    L.problem(r, 403)


# --------------------------------------------------------------------------
# materials

@pytest.mark.parametrize('missing', L.MATERIALS)
def test_submit_needs_every_material(users, missing):
    sub = users['sub_psb']
    p = L.create(sub)
    for k in L.MATERIALS:
        if k != missing:
            L.attach(sub, p.code, k)
    L.attach(sub, p.code, 'other')  # does not stand in for anything
    d = refused(users, sub, p.code, 'submit', 'materials_missing')
    assert missing in d and all(k not in d for k in L.MATERIALS if k != missing), d
    L.attach(sub, p.code, missing)
    assert L.act(sub, p, 'submit').stage == 'endorsement'


def test_submit_with_no_material_names_all_four(users):
    sub = users['sub_health']
    p = L.create(sub, unit='321300-HEALTH')
    d = refused(users, sub, p.code, 'submit', 'materials_missing')
    assert all(k in d for k in L.MATERIALS), d


# --------------------------------------------------------------------------
# thresholds and experts

@pytest.mark.parametrize('budget,experts,signoff', [
    ('0.00', 0, False), ('499999.99', 0, False), ('500000.00', 3, False),
    ('4999999.99', 3, False), ('5000000.00', 5, True), ('98000000.00', 5, True)])
def test_threshold_boundaries(users, budget, experts, signoff):
    """How many expert scores a budget needs, and whether the joint
    reviewers are asked (they see exactly the projects they must sign)."""
    p = L.create(users['sub_psb'], budget=budget)
    assert L.experts_of(users['rev_city'], p.code).get('required') == str(experts)
    for jr in ('jr_drc', 'jr_fin', 'jr_cac'):
        assert users[jr].get(L.path(p.code)).status_code == (200 if signoff else 404), jr
    assert users['jr_sec'].get(L.path(p.code)).status_code == 404


def test_cross_department_needs_the_three_signoffs_at_any_amount(users):
    p = L.create(users['sub_psb'], budget='1000.00', cross=True)
    assert L.experts_of(users['rev_city'], p.code).get('required') == '0'
    for jr in ('jr_drc', 'jr_fin', 'jr_cac'):
        assert users[jr].get(L.path(p.code)).status_code == 200, jr


def test_prereview_needs_every_expert_score(users):
    """600,000.00 needs three scores: none assigned, two assigned, three
    assigned with two scored, all scored."""
    flow = L.flow_to(users, 'prereview', budget='600000.00')
    rev = flow.rev
    d = refused(users, rev, flow, 'pass', 'experts_incomplete')
    assert '0 of 3' in d, d
    r = L.assign_experts(rev, flow.code, ['expert1', 'expert2'])
    assert r.status_code == 201, describe(r)
    refused(users, rev, flow, 'pass', 'experts_incomplete')
    r = L.assign_experts(rev, flow.code)  # the draw completes the panel
    assert r.status_code == 201, describe(r)
    names = [e.get('user') for e in r.doc.findall(N + 'expert')]
    assert len(names) == 3 and len(set(names)) == 3 and names[:2] == ['expert1', 'expert2']
    assert 'expert6' not in names
    for uid in names[:2]:
        assert L.score(users[uid], flow.code, 75).status_code == 200
    d = refused(users, rev, flow, 'pass', 'experts_incomplete')
    assert '2 of 3' in d, d
    assert L.score(users[names[2]], flow.code, 75).status_code == 200
    assert L.act(rev, flow.code, 'pass').stage == 'budget_review'


def test_experts_drawn_below_the_threshold_still_count(users):
    """400,000.00 asks for no experts, but once a reviewer names one, prereview
    waits for their score and its mean like any other panel."""
    flow = L.flow_to(users, 'prereview', budget='400000.00')
    rev = flow.rev
    r = L.assign_experts(rev, flow.code, ['expert1'])
    assert r.status_code == 201, describe(r)
    d = refused(users, rev, flow, 'pass', 'experts_incomplete')
    assert '0 of 1' in d, d
    assert L.score(users['expert1'], flow.code, 40).status_code == 200
    refused(users, rev, flow, 'pass', 'expert_mean_low')
    assert L.score(users['expert1'], flow.code, 80).status_code == 200
    assert L.act(rev, flow.code, 'pass').stage == 'budget_review'


def test_large_project_needs_five_scores(users):
    flow = L.flow_to(users, 'prereview', unit='321300-HEALTH', budget='5000000.00')
    names = flow.draw_experts()
    assert len(names) == 5 and len(set(names)) == 5 and 'expert5' not in names
    for uid in names[:4]:
        assert L.score(users[uid], flow.code, 90).status_code == 200
    d = refused(users, flow.rev, flow, 'pass', 'experts_incomplete')
    assert '4 of 5' in d, d
    assert L.score(users[names[4]], flow.code, 90).status_code == 200
    assert L.act(flow.rev, flow.code, 'pass').stage == 'budget_review'


def test_mean_score_below_60_is_refused(users):
    flow = L.flow_to(users, 'prereview', budget='800000.00')
    names = flow.draw_experts()
    for uid, v in zip(names, (50, 60, 65)):
        assert L.score(users[uid], flow.code, v).status_code == 200
    d = refused(users, flow.rev, flow, 'pass', 'expert_mean_low')
    assert '58.33' in d and '60' in d, d
    # An expert revises a score (still at prereview): 70 + 60 + 65 = 65.
    r = L.score(users[names[0]], flow.code, 70, opinion='补充材料后可行')
    assert r.status_code == 200, describe(r)
    mine = [e for e in r.doc.findall(N + 'expert') if e.get('user') == names[0]]
    assert mine[0].get('score') == '70' and mine[0].findtext(N + 'opinion') == '补充材料后可行'
    assert L.act(flow.rev, flow.code, 'pass').stage == 'budget_review'


def test_mean_score_of_exactly_60_passes(users):
    flow = L.flow_to(users, 'prereview', budget='800000.00')
    names = flow.draw_experts()
    for uid, v in zip(names, (59, 60, 61)):
        assert L.score(users[uid], flow.code, v).status_code == 200
    assert L.act(flow.rev, flow.code, 'pass').stage == 'budget_review'


def test_the_same_expert_twice_is_a_conflict(users):
    flow = L.flow_to(users, 'registration', budget='600000.00')
    rev = flow.rev
    assert L.assign_experts(rev, flow.code, ['expert1']).status_code == 201
    before = state(users, flow.code)
    r = L.assign_experts(rev, flow.code, ['expert1'])
    assert 'expert1' in L.problem_detail(L.problem(r, 409, 'expert_conflict'))
    # Twice in one request: refused as a whole (expert2 is not kept).
    r = L.assign_experts(rev, flow.code, ['expert2', 'expert2'])
    L.problem(r, 409, 'expert_conflict')
    assert [e.get('user') for e in L.experts_of(rev, flow.code).findall(N + 'expert')] == \
        ['expert1']
    assert state(users, flow.code) == before


@pytest.mark.parametrize('unit,expert', [('321300-PSB', 'expert6'),
                                         ('321300-HEALTH', 'expert5')])
def test_an_expert_of_the_declaring_unit_is_a_conflict(users, unit, expert):
    flow = L.flow_to(users, 'prereview', unit=unit, budget='600000.00')
    before = state(users, flow.code)
    r = L.assign_experts(flow.rev, flow.code, [expert])
    assert expert in L.problem_detail(L.problem(r, 409, 'expert_conflict'))
    # Named with others: nothing of the request is kept.
    r = L.assign_experts(flow.rev, flow.code, ['expert2', expert])
    L.problem(r, 409, 'expert_conflict')
    assert L.experts_of(flow.rev, flow.code).findall(N + 'expert') == []
    assert state(users, flow.code) == before
    # The draws never pick the declaring unit's expert either.
    names = flow.draw_experts()
    assert len(names) == 3 and expert not in names


def test_random_draws_never_pick_the_declaring_unit(users):
    """Five of the six eligible experts, three times: the PSB's own expert
    (expert6) is never among them, nobody is drawn twice."""
    for _ in range(3):
        p = L.create(users['sub_psb'], budget='5000000.00')
        flow = L.Flow(users)
        flow.p = p
        flow.to('registration')
        names = flow.draw_experts()
        assert len(names) == 5 and len(set(names)) == 5 and 'expert6' not in names


def test_experts_score_only_their_own_assignment_at_prereview(users):
    flow = L.flow_to(users, 'registration', budget='600000.00')
    r = L.assign_experts(flow.rev, flow.code, ['expert1', 'expert2', 'expert3'])
    assert r.status_code == 201, describe(r)
    # Assigned at registration, scored only at prereview.
    L.problem(L.score(users['expert1'], flow.code, 80), 409, 'wrong_stage')
    flow.step()
    assert flow.p.stage == 'prereview'
    # Another expert's assignment, and an expert not assigned at all.
    r = users['expert1'].put_xml(L.path(flow.code, '/experts/expert2'),
                                 f'<score xmlns="{L.NS}" value="10"/>')
    L.problem(r, 403)
    r = L.score(users['expert4'], flow.code, 80)
    assert r.status_code == 404, describe(r)
    # Scores outside 0..100 are schema-invalid.
    for v in ('101', '-1', 'x'):
        r = users['expert1'].put_xml(L.path(flow.code, '/experts/expert1'),
                                     f'<score xmlns="{L.NS}" value="{v}"/>')
        L.problem(r, 422)
    doc = L.experts_of(flow.rev, flow.code)
    assert all(e.get('score') is None for e in doc.findall(N + 'expert'))
    # Only reviewers draw.
    L.problem(L.assign_experts(users['sub_psb'], flow.code), 403)
    L.problem(L.assign_experts(users['dir_city'], flow.code), 403)


def test_experts_are_drawn_only_at_registration_or_prereview(users):
    flow = L.flow_to(users, 'budget_review', budget='100000.00')
    r = L.assign_experts(flow.rev, flow.code, ['expert1'])
    L.problem(r, 409, 'wrong_stage')


# --------------------------------------------------------------------------
# joint sign-off

@pytest.mark.parametrize('missing', L.JOINT_THREE)
def test_each_missing_signoff_is_refused(users, missing):
    """A cross-department project (any amount) at pre_implementation with
    two of the three sign-offs: refused, naming the third; then it passes."""
    flow = L.flow_to(users, 'pre_implementation', budget='100000.00', cross=True)
    for unit in L.JOINT_THREE:
        if unit != missing:
            assert L.signoff(users[L.JOINT[unit]], flow.code).status_code == 201
    d = refused(users, flow.rev, flow, 'pass', 'signoffs_missing')
    assert missing in d and all(u not in d for u in L.JOINT_THREE if u != missing), d
    assert L.signoff(users[L.JOINT[missing]], flow.code).status_code == 201
    assert L.act(flow.rev, flow.code, 'pass').stage == 'approval'


def test_a_signoff_that_disapproves_counts_as_missing(users):
    flow = L.flow_to(users, 'pre_implementation', budget='5000000.00')
    d = refused(users, flow.rev, flow, 'pass', 'signoffs_missing')
    assert all(u in d for u in L.JOINT_THREE), d
    for unit in L.JOINT_THREE:
        approved = unit != '321300-FIN'
        r = L.signoff(users[L.JOINT[unit]], flow.code, approved=approved, opinion='意见')
        assert r.status_code == 201 and r.doc.get('approved') == str(approved).lower()
    d = refused(users, flow.rev, flow, 'pass', 'signoffs_missing')
    assert '321300-FIN' in d and '321300-DRC' not in d, d
    # The department changes its mind.
    assert L.signoff(users['jr_fin'], flow.code, approved=True).status_code == 201
    assert L.act(flow.rev, flow.code, 'pass').stage == 'approval'


def test_signoffs_only_at_pre_implementation_and_only_by_the_asked(users):
    flow = L.flow_to(users, 'prereview', budget='100000.00', cross=True)
    L.problem(L.signoff(users['jr_drc'], flow.code), 409, 'wrong_stage')
    flow.to('pre_implementation')
    # The secrecy bureau is not asked for an unclassified project: it cannot see it.
    assert L.signoff(users['jr_sec'], flow.code).status_code == 404
    # Other roles may not sign off.
    L.problem(L.signoff(users['rev_city'], flow.code), 403)
    L.problem(L.signoff(users['sub_psb'], flow.code), 403)
    # A department signs for itself, as itself: naming another unit or user
    # is refused, not quietly replaced; naming its own is accepted.
    for attrs in ('unit="321300-FIN"', 'by="jr_fin"'):
        body = (f'<signoff xmlns="{L.NS}" approved="true" {attrs}>'
                '<opinion>同意</opinion></signoff>')
        L.problem(users['jr_drc'].post_xml(L.path(flow.code, '/signoffs'), body), 403)
    d = L.problem_detail(L.problem(L.transition(flow.rev, flow.code, 'pass', flow.refresh().version),
                                   409, 'signoffs_missing'))
    assert '321300-DRC' in d and '321300-FIN' in d, d
    body = f'<signoff xmlns="{L.NS}" approved="true" unit="321300-DRC" by="jr_drc"/>'
    r = users['jr_drc'].post_xml(L.path(flow.code, '/signoffs'), body)
    assert r.status_code == 201 and r.doc.get('unit') == '321300-DRC', describe(r)
    # A small project that is not cross-department asks nobody.
    small = L.flow_to(users, 'pre_implementation', budget='100000.00')
    assert L.signoff(users['jr_drc'], small.code).status_code == 404
    assert L.act(small.rev, small.code, 'pass').stage == 'approval'


# --------------------------------------------------------------------------
# budget

def test_approved_budget_needs_an_amount_at_most_the_request(users):
    flow = L.flow_to(users, 'budget_review', budget='300000.00')
    rev = flow.rev
    before = state(users, flow.code)
    r = L.transition(rev, flow.code, 'pass', flow.p.version)
    L.problem(r, 422)
    r = L.transition(rev, flow.code, 'pass', flow.p.version, amount='12.5')
    L.problem(r, 422)
    assert state(users, flow.code) == before
    refused(users, rev, flow, 'pass', 'budget_exceeds_request', amount='300000.01')
    refused(users, rev, flow, 'pass', 'budget_exceeds_request', amount='999999999.00')
    p = L.act(rev, flow.code, 'pass', amount='255000.00')
    assert p.stage == 'listing'
    assert p.text('approvedBudget') == '255000.00'
    assert p.text('reductionRate') == '0.1500'
    ev = L.events(rev, flow.code)[-1]
    assert (ev['action'], ev['amount']) == ('pass', '255000.00')


def test_approved_budget_equal_to_the_request_passes(users):
    flow = L.flow_to(users, 'budget_review', budget='300000.00')
    p = L.act(flow.rev, flow.code, 'pass', amount='300000.00')
    assert (p.text('approvedBudget'), p.text('reductionRate')) == ('300000.00', '0.0000')


# --------------------------------------------------------------------------
# self-built construction

def self_built(reason_attr):
    return L.declaration(mode='self-built', exemption=reason_attr)


def test_self_built_without_reason_is_refused_at_the_door(users):
    """A self-built declaration without an exemption reason never becomes
    a project: 422 naming the rule exemption_reason_missing and the
    <construction> line, on POST and on PUT. White space is no reason, the
    ideographic and no-break spaces included, as at pre_implementation.
    (So exemption_reason_missing at pre_implementation cannot happen through
    the API: every self-built project has a reason.)"""
    sub = users['sub_psb']
    for reason in (None, '', '   ', '\u3000\u3000', '\u00a0', ' \u2003\t'):
        body = self_built(reason)
        line = body.decode().splitlines().index(
            [x for x in body.decode().splitlines() if '<construction' in x][0]) + 1
        r = sub.post_xml('/api/v1/projects', body)
        errors = L.problem_errors(L.problem(r, 422, 'exemption_reason_missing'))
        assert errors and errors[0][0] == line, errors
    p = L.create(sub)
    before = state(users, p.code)
    r = sub.put_xml(L.path(p.code), self_built('\u3000'), headers={'If-Match': '"1"'})
    L.problem(r, 422, 'exemption_reason_missing')
    assert state(users, p.code) == before


def test_self_built_with_reason_is_seen_by_the_reviewer(users):
    reason = '涉密系统，按规定自行建设'
    flow = L.flow_to(users, 'pre_implementation', budget='200000.00', mode='self-built',
                     exemption=reason)
    cons = L.read(flow.rev, flow.code).doc.find(N + 'construction')
    assert (cons.get('mode'), cons.get('reason')) == ('self-built', reason)
    assert L.act(flow.rev, flow.code, 'pass').stage == 'approval'


# --------------------------------------------------------------------------
# endorsement by the unit's own CDO

def test_another_units_cdo_cannot_endorse(users, env):
    """What a user sees: the CDO of another unit cannot see the project at
    all (404, out of scope), so endorsement_unit_mismatch never reaches an
    ordinary CDO. It is what a user who can see the project (a city
    reviewer who is also the CDO of another unit, e.g. through SSO) gets."""
    flow = L.flow_to(users, 'endorsement', budget='100000.00')
    before = state(users, flow.code)
    for cdo in ('cdo_health', 'cdo_agri', 'cdo_edu_sy'):
        r = L.transition(users[cdo], flow.code, 'endorse', flow.p.version)
        L.problem(r, 404, False)
    both = L.User(env, bearer=L.sso_token(env, 'sso-cdo-health-rev', '321300-HEALTH',
                                          '321300', ['cdo', 'reviewer'], name='兼职审核员'))
    assert both.get(L.path(flow.code)).status_code == 200
    r = L.transition(both, flow.code, 'endorse', flow.p.version)
    assert '321300-PSB' in L.problem_detail(L.problem(r, 409, 'endorsement_unit_mismatch'))
    assert state(users, flow.code) == before
    assert L.act(users['cdo_psb'], flow.code, 'endorse').stage == 'registration'


# --------------------------------------------------------------------------
# classified projects and their experts

def test_classified_project_experts_can_score(users, env):
    """A classified declaration of 600,000.00 needs three expert scores.
    The draw must give experts who can see the project and score it (or
    refuse with expert_pool_too_small when the pool has no cleared
    experts); a panel that can never score leaves the project stuck at
    prereview."""
    sub = L.User(env, bearer=L.sso_token(env, 'sso-sub-psb-secret2', '321300-PSB', '321300',
                                         ['submitter'], clearance='classified'))
    cdo = L.User(env, bearer=L.sso_token(env, 'sso-cdo-psb-secret2', '321300-PSB', '321300',
                                         ['cdo'], clearance='classified'))
    flow = L.Flow(users, unit='321300-PSB', submitter=sub, cdo=cdo, budget='600000.00',
                  classified=True, title='涉密专网安全加固（专家评审）')
    flow.to('prereview')
    r = L.assign_experts(flow.rev, flow.code)
    if r.status_code == 409:
        L.problem(r, 409, 'expert_pool_too_small')
        return
    assert r.status_code == 201, describe(r)
    stuck = []
    for e in r.doc.findall(N + 'expert'):
        u = users[e.get('user')]
        g = u.get(L.path(flow.code))
        s = L.score(u, flow.code, 80)
        if g.status_code != 200 or s.status_code != 200:
            stuck.append(f'{u.uid}: GET {g.status_code}, score {s.status_code}')
    assert not stuck, ('experts without the clearance were drawn for a classified project '
                       'and cannot see or score it: ' + '; '.join(stuck))
