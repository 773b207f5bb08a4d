"""Concurrency (SPEC section 4): two reviewers sending the same transition at
the same moment with the same version: exactly one wins, the other gets 412
and nothing of it is written; many declarations created at once in one
region get distinct, consecutive codes."""

import re
import threading
import uuid

import pytest

import lifecycle_api as L
from lifecycle_api import N, describe

# Codes of this year in 泗阳县 (321323) are made only by the creation race.
YEAR_RACE = 2095
CREATIONS = 50


def race(calls):
    """Run the callables at the same moment (a barrier), each in its own
    thread; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(i, fn):
        try:
            barrier.wait(timeout=30)
            results[i] = fn()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), 'a racing request did not finish'
    assert not errors, errors
    return results


def one_winner(results):
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 412], [describe(r) for r in results]
    for r in results:
        if r.status_code == 412:
            L.problem(r, 412)
    return next(r for r in results if r.status_code == 200)


@pytest.mark.parametrize('round_', range(3))
def test_two_reviewers_same_transition_one_wins(env, users, round_):
    """rev_city and rev_city2, each with a session and a connection of their
    own, send the same transition with the same If-Match at every review
    step of one project."""
    flow = L.Flow(users, budget='300000.00')
    flow.to('registration')
    revs = [L.User(env, 'rev_city'), L.User(env, 'rev_city2')]
    steps = [('registration', {}), ('prereview', {}),
             ('budget_review', {'amount': '280000.00'}),
             ('listing', {'list_year': int(flow.p.text('year'))}),
             ('pre_implementation', {})]
    for stage, kw in steps:
        p = L.read(flow.rev, flow.code)
        assert p.stage == stage
        n_events = len(L.events(flow.rev, flow.code))
        results = race([lambda u=u: L.transition(u, flow.code, 'pass', p.version, **kw)
                        for u in revs])
        won = L.Project(one_winner(results))
        assert won.version == p.version + 1
        after = L.read(flow.rev, flow.code)
        assert (after.version, after.stage) == (won.version, won.stage)
        ev = L.events(flow.rev, flow.code)
        assert len(ev) == n_events + 1, 'exactly one of the two wrote its event'
        assert ev[-1]['from'] == stage
    for u in revs:
        u.close()


def test_different_actions_at_once_one_wins(env, users):
    """At registration the unit withdraws while the reviewer returns, with
    the same version: one of them happens, the other gets 412."""
    for _ in range(3):
        flow = L.flow_to(users, 'registration', budget='100000.00')
        v = flow.p.version
        sub, rev = L.User(env, 'sub_psb'), L.User(env, 'rev_city2')
        results = race([lambda: L.transition(sub, flow.code, 'withdraw', v),
                        lambda: L.transition(rev, flow.code, 'return', v, reason='退回')])
        won = L.Project(one_winner(results))
        assert (won.stage, won.version) == ('draft', v + 1)
        assert [e['action'] for e in L.events(users['rev_city'], flow.code)][-1] in \
            ('withdraw', 'return')
        assert len(L.events(users['rev_city'], flow.code)) == v + 1
        sub.close()
        rev.close()


def test_many_reviewers_race_on_one_version(env, users):
    """Eight concurrent passes (two reviewers, four connections each): one
    wins, seven get 412."""
    flow = L.flow_to(users, 'registration', budget='100000.00')
    v = flow.p.version
    clients = [L.User(env, uid) for uid in ('rev_city', 'rev_city2') * 4]
    results = race([lambda c=c: L.transition(c, flow.code, 'pass', v) for c in clients])
    assert sorted(r.status_code for r in results) == [200] + [412] * 7, \
        [r.status_code for r in results]
    assert L.read(users['rev_city'], flow.code).version == v + 1
    assert len(L.events(users['rev_city'], flow.code)) == v + 1
    for c in clients:
        c.close()


def test_concurrent_creations_get_distinct_consecutive_codes(env, users):
    """50 declarations of 泗阳县教育局 (321323) sent at once, each on its own
    connection: 50 distinct codes 321323-2095-NNNNN whose serials follow one
    another without a gap; each reads back with its own title."""
    tag = uuid.uuid4().hex[:6]
    clients = [L.User(env, 'sub_edu_sy') for _ in range(CREATIONS)]
    bodies = [L.declaration(unit='321323-EDU', year=YEAR_RACE, title=f'并发申报 {tag} {i:02d}',
                            budget=f'{1000 + i}.00') for i in range(CREATIONS)]
    results = race([lambda c=c, b=b: c.post_xml('/api/v1/projects', b)
                    for c, b in zip(clients, bodies)])
    bad = [describe(r) for r in results if r.status_code != 201]
    assert not bad, f'{len(bad)} of {CREATIONS} creations failed: {bad[:3]}'
    projects = [L.Project(r) for r in results]
    codes = [p.code for p in projects]
    assert len(set(codes)) == CREATIONS
    for p in projects:
        assert re.fullmatch(rf'321323-{YEAR_RACE}-\d{{5}}', p.code), p.code
        assert p.version == 1 and p.stage == 'draft'
    serials = sorted(int(c[-5:]) for c in codes)
    assert serials == list(range(serials[0], serials[0] + CREATIONS)), serials
    for i, p in enumerate(projects):
        assert p.text('title') == f'并发申报 {tag} {i:02d}'
        assert p.text('budget') == f'{1000 + i}.00'
    r = users['sub_edu_sy'].get('/api/v1/projects', params={
        'region': '321323', 'year': YEAR_RACE, 'text': f'并发申报 {tag}', 'limit': 500})
    assert r.status_code == 200, describe(r)
    assert r.doc.get('total') == str(CREATIONS)
    assert sorted(x.get('code') for x in r.doc.findall(N + 'project')) == sorted(codes)
    for c in clients:
        c.close()


def test_two_reviewers_draw_experts_at_once(env, users):
    """Two random draws sent together for a project that needs five: the
    panel has exactly five distinct experts, none of the declaring unit."""
    for _ in range(2):
        flow = L.flow_to(users, 'prereview', budget='5000000.00')
        revs = [L.User(env, 'rev_city'), L.User(env, 'rev_city2')]
        results = race([lambda u=u: L.assign_experts(u, flow.code) for u in revs])
        assert all(r.status_code == 201 for r in results), [describe(r) for r in results]
        names = [e.get('user') for e in
                 L.experts_of(users['rev_city'], flow.code).findall(N + 'expert')]
        assert len(names) == 5 and len(set(names)) == 5 and 'expert6' not in names, names
        for u in revs:
            u.close()
