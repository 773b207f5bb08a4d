"""Refused transitions (SPEC section 4 and 5): for every action, a role that
may never take it gets 403, a user who cannot see the project 404, a
permitted role at the wrong stage 409 wrong_stage, a stale version 412 and a
missing If-Match 428; and none of them writes anything (version, stage,
events and the project's audit trail unchanged)."""

import pytest

import lifecycle_api as L
from lifecycle_api import describe

# The lifecycle table of SPEC section 4: (stage, action) -> roles.
TABLE = {
    ('draft', 'submit'): {'submitter'},
    ('endorsement', 'endorse'): {'cdo'},
    ('endorsement', 'return'): {'cdo'},
    ('endorsement', 'withdraw'): {'submitter'},
    ('registration', 'pass'): {'reviewer'},
    ('registration', 'return'): {'reviewer'},
    ('registration', 'reject'): {'reviewer'},
    ('registration', 'withdraw'): {'submitter'},
    ('prereview', 'pass'): {'reviewer'},
    ('prereview', 'return'): {'reviewer'},
    ('prereview', 'reject'): {'reviewer'},
    ('budget_review', 'pass'): {'reviewer'},
    ('budget_review', 'return'): {'reviewer'},
    ('budget_review', 'reject'): {'reviewer'},
    ('listing', 'pass'): {'reviewer'},
    ('listing', 'defer'): {'reviewer'},
    ('pre_implementation', 'pass'): {'reviewer'},
    ('pre_implementation', 'return'): {'reviewer'},
    ('pre_implementation', 'reject'): {'reviewer'},
    ('approval', 'approve'): {'director'},
    ('approval', 'reject'): {'director'},
    ('construction', 'start_trial'): {'submitter'},
    ('trial_operation', 'request_acceptance'): {'submitter'},
    ('acceptance', 'accept'): {'reviewer'},
    ('acceptance', 'return'): {'reviewer'},
    ('filing', 'complete_filing'): {'submitter'},
    ('operation', 'retire'): {'submitter', 'reviewer'},
    ('operation', 'force_exit'): {'reviewer'},
}
# Roles that may take an action at some stage.
ACTION_ROLES = {}
for (_s, _a), _r in TABLE.items():
    ACTION_ROLES.setdefault(_a, set()).update(_r)

# The demo users in scope of a city PSB project, with their roles.
IN_SCOPE = {'sub_psb': {'submitter'}, 'cdo_psb': {'cdo'}, 'rev_city': {'reviewer'},
            'dir_city': {'director'}, 'auditor1': {'auditor'}, 'admin1': {'admin'}}
# Users who cannot see an ordinary city PSB project (under 500,000.00, not
# cross-department, not classified).
OUT_OF_SCOPE = ('sub_health', 'cdo_health', 'rev_shuyang', 'dir_shuyang', 'ca_shuyang',
                'jr_drc', 'jr_sec', 'expert1', 'eval1', 'sub_agri')


def body_kw(action, stage=None):
    """A body that the action would accept if it were allowed."""
    kw = {'reason': '测试理由'}
    if action == 'pass' and stage in (None, 'budget_review'):
        kw['amount'] = '1.00'
    if action == 'pass' and stage == 'listing':
        kw['list_year'] = L.open_year()
    return kw


def state(users, code):
    """Everything a refusal must leave alone."""
    version, stage, nevents = L.snapshot(users['rev_city'], code)
    return version, stage, nevents, len(L.audit(users['auditor1'], code))


def test_role_that_may_never_act_gets_403(users):
    """A cross-department project at prereview with its experts drawn, so
    that an expert and the joint reviewers can see it too: every user in
    scope whose roles never allow an action gets 403 for it, with the
    current version."""
    flow = L.Flow(users, budget='600000.00', cross=True)
    flow.to('prereview')
    experts = flow.draw_experts()
    in_scope = dict(IN_SCOPE)
    in_scope[experts[0]] = {'expert'}
    in_scope['jr_drc'] = {'joint_reviewer'}
    in_scope['jr_fin'] = {'joint_reviewer'}
    for uid in in_scope:
        assert users[uid].get(L.path(flow.code)).status_code == 200, uid
    before = state(users, flow.code)
    tried, wrong = [], []
    for action, roles in ACTION_ROLES.items():
        for uid, have in in_scope.items():
            if have & roles:
                continue
            # With the current version and with none: If-Match is asked
            # for only of a caller who may act at all.
            for version in (before[0], None):
                r = L.transition(users[uid], flow.code, action, version,
                                 **body_kw(action, 'prereview'))
                tried.append((uid, action))
                if r.status_code != 403:
                    wrong.append(f'{uid} {action} If-Match {version}: {r.status_code}')
                else:
                    L.problem(r, 403, False)
    assert len(tried) > 60
    assert state(users, flow.code) == before
    assert not wrong, (f'{len(wrong)} of {len(tried)} refusals of a role that may never '
                       'act were not 403 (users who can read the project): ' + '; '.join(wrong))


def test_unknown_action_is_refused_and_writes_nothing(users):
    p = L.create(users['sub_psb'])
    before = state(users, p.code)
    for user in ('sub_psb', 'rev_city'):
        r = L.transition(users[user], p.code, 'promote', 1)
        assert r.status_code in (403, 422), describe(r)
    assert state(users, p.code) == before


def test_out_of_scope_gets_404_for_every_action(users):
    """Users who cannot see the project get 404 for it, whatever the action
    and whatever their role; the project's existence is not revealed (the
    same reply as for a code that does not exist)."""
    flow = L.flow_to(users, 'registration', budget='100000.00')
    before = state(users, flow.code)
    missing = f'321300-{L.open_year()}-99999'
    for uid in OUT_OF_SCOPE:
        u = users[uid]
        assert u.get(L.path(flow.code)).status_code == 404, uid
        assert u.get(L.path(flow.code, '/events')).status_code == 404, uid
        for action in L.ALL_ACTIONS:
            r = L.transition(u, flow.code, action, before[0], **body_kw(action))
            L.problem(r, 404, False)
            r2 = L.transition(u, missing, action, 1, **body_kw(action))
            L.problem(r2, 404, False)
            # Without If-Match too: not 428, which would tell nothing but
            # is not what a project out of sight answers.
            L.problem(L.transition(u, flow.code, action, None, **body_kw(action)), 404, False)
            assert r.doc.findtext(L.P + 'detail') == r2.doc.findtext(L.P + 'detail'), \
                f'{uid} {action}: a hidden project answers unlike a missing one'
    assert state(users, flow.code) == before


def test_permitted_role_at_wrong_stage_gets_409_at_every_stage(users):
    """Walking a project from draft to construction: at each stage, every
    action that a user's role may take somewhere, but not here, gets 409
    wrong_stage; nothing is written."""
    flow = L.Flow(users, budget='100000.00')
    flow.create()
    actors = {'sub_psb': {'submitter'}, 'cdo_psb': {'cdo'}, 'rev_city': {'reviewer'},
              'dir_city': {'director'}}
    seen = set()
    while True:
        stage = flow.p.stage
        before = state(users, flow.code)
        for action, roles in ACTION_ROLES.items():
            for uid, have in actors.items():
                if not have & roles or have & TABLE.get((stage, action), set()):
                    continue
                r = L.transition(users[uid], flow.code, action, flow.p.version,
                                 **body_kw(action, stage))
                L.problem(r, 409, 'wrong_stage')
                seen.add(action)
        assert state(users, flow.code) == before, stage
        if stage == 'construction':
            break
        flow.step()
    assert seen == set(L.ALL_ACTIONS)


# Every action a permitted role may take on the way to construction (and the
# first one after it), with the body it needs.
STEPS = [(stage, action) for (stage, action) in TABLE
         if stage in L.STAGES or stage == 'trial_operation']


def actor_for(flow, users, stage, action):
    role = sorted(TABLE[(stage, action)])[0]
    return {'submitter': flow.sub, 'cdo': flow.cdo, 'reviewer': flow.rev,
            'director': flow.dir}[role]


def test_stale_version_412_and_missing_if_match_428_for_every_action(users):
    """At every stage from draft to trial operation, each action the stage
    allows, sent by its role with a stale version (older and newer, weak
    and strong ETag forms) gets 412, and without If-Match 428; nothing is
    written. Then the real step is taken."""
    flow = L.Flow(users, budget='600000.00')
    flow.create()
    done = []
    while True:
        stage = flow.p.stage
        v = flow.p.version
        before = state(users, flow.code)
        for (s, action) in STEPS:
            if s != stage:
                continue
            user = actor_for(flow, users, stage, action)
            kw = body_kw(action, stage)
            for stale in ([f'"{v - 1}"', f'W/"{v - 1}"'] if v > 1 else []) + \
                    [f'"{v + 1}"', f'"{v + 100}"', '"0"']:
                r = L.transition(user, flow.code, action, stale, **kw)
                L.problem(r, 412, False)
            r = L.transition(user, flow.code, action, None, **kw)
            L.problem(r, 428, False)
            done.append(action)
        assert state(users, flow.code) == before, stage
        if stage == 'trial_operation':
            break
        if stage == 'construction':
            flow.p = L.act(flow.sub, flow.p, 'start_trial')
        else:
            flow.step()
    assert set(done) >= {'submit', 'endorse', 'return', 'withdraw', 'pass', 'reject',
                         'defer', 'approve', 'start_trial', 'request_acceptance'}


def test_stale_and_missing_if_match_for_operation_actions(users):
    """retire and force_exit (an existing system at operation)."""
    p = L.create(users['rev_city'], category='existing', title='存量系统 412 测试')
    before = state(users, p.code)
    for user, action in (('sub_psb', 'retire'), ('rev_city', 'retire'),
                         ('rev_city', 'force_exit')):
        r = L.transition(users[user], p.code, action, '"7"', reason='理由')
        L.problem(r, 412, False)
        r = L.transition(users[user], p.code, action, None, reason='理由')
        L.problem(r, 428, False)
    assert state(users, p.code) == before


def test_put_of_a_draft_needs_if_match_and_the_current_version(users):
    sub = users['sub_psb']
    p = L.create(sub, title='草稿修改测试')
    before = state(users, p.code)
    body = L.declaration(title='新标题')
    L.problem(sub.put_xml(L.path(p.code), body), 428)
    L.problem(sub.put_xml(L.path(p.code), body, headers={'If-Match': '"2"'}), 412)
    # Another unit's submitter cannot see it; a CDO may not change drafts.
    L.problem(users['sub_health'].put_xml(L.path(p.code), body, headers={'If-Match': '"1"'}),
              404)
    L.problem(users['cdo_psb'].put_xml(L.path(p.code), body, headers={'If-Match': '"1"'}), 403)
    # The same without If-Match: 428 is asked only of a caller who may change it.
    L.problem(users['sub_health'].put_xml(L.path(p.code), body), 404)
    L.problem(users['cdo_psb'].put_xml(L.path(p.code), body), 403)
    L.problem(users['sub_psb'].put_xml(L.path(f'321300-{L.open_year()}-99999'), body), 404)
    # The unit and the year are fixed by the code.
    r = sub.put_xml(L.path(p.code), L.declaration(year=L.open_year() - 1),
                    headers={'If-Match': '"1"'})
    assert r.status_code in (409, 422), describe(r)
    assert state(users, p.code) == before
    r = sub.put_xml(L.path(p.code), body, headers={'If-Match': '"1"'})
    assert r.status_code == 200, describe(r)
    q = L.Project(r)
    assert (q.version, q.text('title')) == (2, '新标题')
    # A submitted project is no longer a draft.
    flow = L.Flow(users)
    flow.p = q
    flow.step()
    r = sub.put_xml(L.path(p.code), body, headers={'If-Match': f'"{flow.p.version}"'})
    L.problem(r, 409, 'wrong_stage')


@pytest.mark.parametrize('action,stage,user', [
    ('return', 'endorsement', 'cdo_psb'),
    ('return', 'registration', 'rev_city'),
    ('return', 'prereview', 'rev_city'),
    ('return', 'budget_review', 'rev_city'),
    ('return', 'pre_implementation', 'rev_city'),
])
def test_return_needs_a_written_reason(users, action, stage, user):
    flow = L.flow_to(users, stage, budget='100000.00')
    before = state(users, flow.code)
    for reason in (None, '', '    '):
        r = L.transition(users[user], flow.code, action, flow.p.version, reason=reason)
        L.problem(r, 422)
    assert state(users, flow.code) == before
    p = L.act(users[user], flow.p, action, reason='理由充分')
    assert p.stage == 'draft'


@pytest.mark.parametrize('stage,user,reason', [
    ('registration', 'rev_city', None),
    ('prereview', 'rev_city', '方案与已建系统重复'),
    ('approval', 'dir_city', None),
])
def test_reject_takes_a_reason_but_needs_none(users, stage, user, reason):
    """SPEC asks a written reason of `return`, not of `reject`: a rejection
    without one is applied; one given is kept in the event."""
    flow = L.flow_to(users, stage, budget='100000.00')
    p = L.act(users[user], flow.p, 'reject', reason=reason)
    assert p.stage == 'rejected'
    ev = L.events(users['rev_city'], flow.code)[-1]
    assert (ev['action'], ev['from'], ev['to'], ev['reason'] or '') == \
        ('reject', stage, 'rejected', reason or ''), ev


@pytest.mark.parametrize('reason', ['\n\t\n', '\u3000\u3000'])
def test_a_reason_of_only_whitespace_is_no_reason(users, reason):
    """A reason of tabs and newlines (or ideographic spaces, as a Chinese
    input method types them) is as empty as no reason."""
    flow = L.flow_to(users, 'registration', budget='100000.00')
    before = state(users, flow.code)
    r = L.transition(flow.rev, flow.code, 'return', flow.p.version, reason=reason)
    L.problem(r, 422)
    assert state(users, flow.code) == before


def test_csrf_token_is_needed_for_a_transition(users):
    """A cookie session without X-CSRF-Token cannot move a project."""
    p = L.create(users['sub_psb'])
    for k in L.MATERIALS:
        L.attach(users['sub_psb'], p.code, k)
    r = users['sub_psb'].post(L.path(p.code, '/transitions'), csrf=False,
                              data=L.transition_body('submit'),
                              headers={'Content-Type': 'application/xml', 'If-Match': '"1"'})
    L.problem(r, 403)
    assert L.snapshot(users['rev_city'], p.code)[:2] == (1, 'draft')


def test_declarations_only_for_the_own_unit_and_by_submitters(users):
    """Creation: a submitter declares for its own unit only (403 for another
    unit's, in or out of its region); a reviewer, director, CDO or auditor
    declares nothing new (403); nothing is created."""
    def count():
        return int(users['rev_city'].get('/api/v1/projects', params={'limit': 1})
                   .doc.get('total'))
    before = count()
    for uid, unit in (('sub_agri', '321300-PSB'), ('sub_psb', '321300-HEALTH'),
                      ('sub_psb', '321322-AGRI'), ('rev_city', '321300-PSB'),
                      ('dir_city', '321300-PSB'), ('cdo_psb', '321300-PSB'),
                      ('auditor1', '321300-PSB'), ('expert1', '321300-PSB')):
        r = L.create(users[uid], expect=403, unit=unit)
        L.problem(r, 403)
    r = L.create(users['sub_psb'], expect=422, unit='321300-NOPE')
    assert r.status_code in (403, 422), describe(r)
    assert count() == before


def test_return_to_draft_leaves_no_decided_figures_behind(users):
    """A return to draft takes back what the review had decided (approved
    budget, list year): the unit told to cut its budget below the old
    approved amount can save its draft, and the new review decides again.
    The return reason is shown until the unit acts again; the events keep
    the earlier decisions."""
    flow = L.Flow(users, budget='100000.00')
    flow.to('budget_review')
    flow.p = L.act(flow.rev, flow.p, 'pass', amount='90000.00')
    flow.p = L.act(flow.rev, flow.p, 'pass', list_year=int(flow.p.text('year')) + 1)
    assert (flow.p.stage, flow.p.text('approvedBudget')) == ('pre_implementation', '90000.00')
    p = L.act(flow.rev, flow.p, 'return', reason='请把预算压缩到5万元')
    assert p.stage == 'draft'
    for name in ('approvedBudget', 'reductionRate', 'listYear'):
        assert p.doc.find(L.N + name) is None, p.doc
    assert p.text('returnReason') == '请把预算压缩到5万元'
    r = flow.sub.put_xml(L.path(flow.code), L.declaration(title=flow.decl['title'],
                                                          budget='50000.00'),
                         headers={'If-Match': f'"{p.version}"'})
    assert r.status_code == 200, describe(r)
    flow.p = L.Project(r)
    assert flow.p.text('budget') == '50000.00'
    flow.step()
    assert flow.p.stage == 'endorsement' and flow.p.doc.find(L.N + 'returnReason') is None
    amounts = [e['amount'] for e in L.events(flow.rev, flow.code) if e['amount']]
    assert amounts == ['90000.00'], amounts


def test_list_year_before_the_projects_year_is_refused_422(users):
    flow = L.Flow(users, budget='100000.00')
    flow.to('listing')
    before = state(users, flow.code)
    year = int(flow.p.text('year'))
    r = L.transition(flow.rev, flow.code, 'pass', flow.p.version, list_year=year - 1)
    L.problem(r, 422)
    assert state(users, flow.code) == before
    flow.p = L.act(flow.rev, flow.p, 'pass', list_year=year)
    assert flow.p.text('listYear') == str(year)


def test_if_match_as_rfc_9110_reads_it(users):
    """If-Match holds when any strong entity tag it lists is the current
    version; a weak tag never matches (strong comparison); white space
    around it does not matter. A header that names no current version is
    412, but only for a caller who could otherwise act (403 and 404 first).
    "*" names no version at all: like no If-Match, 428 (with it two
    reviewers acting at once would both win)."""
    sub = users['sub_psb']
    p = L.create(sub, title='If-Match 列表测试')
    body = L.declaration(title='改名一')
    v = p.version
    for header in (f'W/"{v}"', f'"{v + 1}", "{v + 7}"', 'garbage', f'"{v}" x', '"', ',',
                   f'"0{v}"'):
        L.problem(sub.put_xml(L.path(p.code), body, headers={'If-Match': header}), 412, False)
    L.problem(users['cdo_psb'].put_xml(L.path(p.code), body, headers={'If-Match': 'garbage'}),
              403)
    L.problem(users['sub_health'].put_xml(L.path(p.code), body, headers={'If-Match': '*'}),
              404)
    L.problem(sub.put_xml(L.path(p.code), body, headers={'If-Match': '*'}), 428, False)
    L.problem(L.transition(sub, p.code, 'submit', '*'), 428, False)
    assert L.read(sub, p.code).version == v
    for form in ('"{f}", "{v}"', 'W/"{f}", "{v}"\t', '"{v}" , W/"{f}"'):
        header = form.format(v=v, f=v + 1)
        r = sub.put_xml(L.path(p.code), body, headers={'If-Match': header})
        assert r.status_code == 200, (header, describe(r))
        v += 1
        assert r.headers['ETag'] == f'"{v}"'
    r = L.transition(sub, p.code, 'submit', f'"{v + 1}", W/"{v}"')
    L.problem(r, 412, False)
