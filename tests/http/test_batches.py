"""Bulk XML submissions (POST /api/v1/batches, issue 5; SPEC sections 4-6):
who may send them, what they store (drafts, submitted declarations or
existing systems at `operation`, readable within the scope rules), the
result and its idempotency, all-or-nothing refusals that name the record,
line and column of every error, hostile documents and size limits, one
audit record per batch, and a worker killed in the middle of a large upload.

Batch records use the years 2031-2039 (no other test declares them; there
is no declaration window for them in the seeded rules), every batch has an
id of its own and every record's title a tag of its batch, by which psql
finds its rows. Batch files come from bench/gen_batch.py.
"""

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import batch_api as B
import itpm_http as h
import lifecycle_api as L
from lifecycle_api import N, describe

REGION = '321322'      # 沭阳县: ca_shuyang, unit 321322-AGRI
OTHER = '321323'       # 泗阳县: ca_siyang, unit 321323-EDU
UNIT = {REGION: '321322-AGRI', OTHER: '321323-EDU'}
ADMIN = {REGION: 'ca_shuyang', OTHER: 'ca_siyang'}
BIG = 10_000
BIG_PER_YEAR = 1112    # 10,000 records over 2031..2039
KILL_RECORDS = int(os.environ.get('ITPM_BATCH_KILL_RECORDS', '50000'))
QUICK = 5.0            # seconds within which a hostile document is refused


@pytest.fixture(scope='module')
def volume(request):
    """(env, users) of a private stack for the tests that store tens of
    thousands of rows or kill a worker, so the shared stack's lists stay
    small for the other suites. Torn down like conftest's private_stack:
    `scripts/stack down`, sanitizer reports in its itpmd log fail the run,
    the logs are kept when a test of this module failed."""
    import conftest
    d = tempfile.mkdtemp(prefix='itpm-', dir='/tmp')
    os.chmod(d, 0o755)
    failed_before = request.session.testsfailed
    users = None
    try:
        r = h.run_stack('up', d, {'ITPM_CONF_EXTRA': ''}, conftest.STACK_UP_TIMEOUT)
        assert r.returncode == 0, (f'scripts/stack up {d} exited {r.returncode}: '
                                   f'{r.stdout[-2000:]} {r.stderr[-2000:]}')
        e = h.read_env_file(Path(d) / 'env')
        e.setdefault('ITPM_STATE', d)
        users = L.Users(e)
        yield e, users
    finally:
        if users is not None:
            users.close()
        down = h.run_stack('down', d, timeout=conftest.STACK_DOWN_TIMEOUT)
        hits = []
        for log in sorted(Path(d, 'log').glob('itpmd*')):
            hits += [l for l in log.read_text(errors='replace').splitlines()
                     if conftest.SANITIZER_RE.search(l)]
        if hits or down.returncode != 0 or request.session.testsfailed > failed_before:
            print(f'logs of {d} kept in {conftest._keep_logs(d, "test_batches-volume")}')
        shutil.rmtree(d, ignore_errors=True)
        assert down.returncode == 0, f'scripts/stack down {d}: {down.stderr[-1000:]}'
        assert not hits, 'sanitizer report in the volume stack:\n' + '\n'.join(hits[:20])


class Batch:
    """One generated batch file: id, tag, region, report of the generator."""

    def __init__(self, tmp_path, n, region=REGION, kind='projects', name='b', **opts):
        self.id = opts.pop('id', None) or B.new_id()
        self.tag = opts.pop('tag', None) or B.new_tag()
        self.region = region
        self.kind = kind
        self.n = n
        self.year_start = opts.get('year_start', 2031)
        self.per_year = opts.get('per_year', 90000)
        # refs are unique in a region across batches: each batch its own
        opts.setdefault('ref_prefix', self.tag + '-')
        self.ref_prefix = opts['ref_prefix']
        self.unit = opts.get('unit') or UNIT.get(region)
        self.lines_per_record = 14 + (opts.get('urgent') is not None)
        self.info = B.generate(tmp_path / f'{name}-{self.id}.xml', n, id=self.id,
                               region=region, kind=kind, tag=self.tag, **opts)
        self.path = self.info['path']

    @property
    def body(self):
        return self.path.read_bytes()

    def year(self, i):
        return self.year_start + (i - 1) // self.per_year

    def invalid(self):
        return self.info['invalid']

    def line(self, i):
        """The line of record i's <project start tag (no extra elements before it)."""
        return 3 + (i - 1) * self.lines_per_record

    def check_codes(self, res, stage, refs=True):
        B.check_codes(res, self.n, self.region, stage, self.year_start, self.per_year,
                      refs=refs, ref_prefix=self.ref_prefix)

    def nothing_stored(self, env):
        B.nothing_stored(env, self.id, self.tag)


def healthy(user):
    r = user.get('/healthz')
    assert r.status_code == 200, describe(r)


def check_error(err, rec, line):
    assert err['record'] == rec, err
    assert err['line'] == line, err
    assert err['column'] is not None and err['column'] > 0, err
    assert err['message'], err


# --------------------------------------------------------------------------
# storing a batch

def test_county_admin_stores_drafts_readable_in_scope(env, users, tmp_path):
    """Five records over three years from 沭阳县's county admin: 201 with a
    code per record in record order (serials consecutive per year), every
    record a draft readable by the admin and a city reviewer, not by the
    other county's admin; one audit record with the count and SHA-256."""
    b = Batch(tmp_path, 5, per_year=2)
    admin = users['ca_shuyang']
    r = B.post(admin, b.path)
    res = B.result(r, 201)
    B.check_summary(res, b.id, REGION, 'projects', 5, b.body, 'ca_shuyang')
    b.check_codes(res, 'draft')
    assert B.rows_tagged(env, b.tag) == 5
    assert B.stages_tagged(env, b.tag) == {(REGION, 'draft', 'new'): 5}
    assert B.resources_tagged(env, b.tag) == 5
    assert B.resources_text_behind(env, b.tag) == 0
    assert B.batch_rows(env, b.id, REGION) == 1
    for c in res.codes:
        i = c['record']
        for reader in (admin, users['rev_city']):
            B.check_project(reader, c['code'], i, b.tag, 'draft', REGION, UNIT[REGION],
                            b.year(i), 'new')
        L.problem(users['ca_siyang'].get(L.path(c['code'])), 404)

    # The stored result, as the POST gave it.
    for params in ({}, {'region': REGION}):
        got = B.result(admin.get(f'{B.BATCHES}/{b.id}', params=params), 200)
        assert got.same_as(res), (got, res)
    got = B.result(users['rev_city'].get(f'{B.BATCHES}/{b.id}',
                                         params={'region': REGION}), 200)
    assert got.same_as(res)
    L.problem(users['ca_siyang'].get(f'{B.BATCHES}/{b.id}'), 404)
    L.problem(users['ca_siyang'].get(f'{B.BATCHES}/{b.id}', params={'region': REGION}), 404)
    L.problem(admin.get(f'{B.BATCHES}/{B.new_id()}'), 404)

    recs = B.audit_of(users['auditor1'], REGION, b.id)
    assert len(recs) == 1, recs
    assert re.search(r'\b5\b', recs[0]['summary']), recs
    assert res['sha256'] in recs[0]['summary'], recs
    assert recs[0]['actor'] == 'ca_shuyang', recs


def test_existing_systems_enter_at_operation(env, users, tmp_path):
    """kind=existing (泗阳县's county admin): every record at `operation`,
    category existing, readable in scope only."""
    b = Batch(tmp_path, 4, region=OTHER, kind='existing', per_year=3)
    res = B.result(B.post(users['ca_siyang'], b.path), 201)
    B.check_summary(res, b.id, OTHER, 'existing', 4, b.body, 'ca_siyang')
    b.check_codes(res, 'operation')
    assert B.stages_tagged(env, b.tag) == {(OTHER, 'operation', 'existing'): 4}
    for c in res.codes:
        for reader in (users['ca_siyang'], users['rev_city']):
            B.check_project(reader, c['code'], c['record'], b.tag, 'operation', OTHER,
                            UNIT[OTHER], b.year(c['record']), 'existing')
        L.problem(users['ca_shuyang'].get(L.path(c['code'])), 404)


def test_existing_batch_without_refs(env, users, tmp_path):
    """ref is optional: codes come back without it, in record order."""
    b = Batch(tmp_path, 3, kind='existing', no_ref=True, year_start=2036)
    res = B.result(B.post(users['ca_shuyang'], b.path), 201)
    b.check_codes(res, 'operation', refs=False)
    assert all(c['ref'] is None for c in res.codes), res


@pytest.mark.parametrize('region', [REGION, OTHER])
def test_city_reviewer_sends_for_any_region(env, users, tmp_path, region):
    b = Batch(tmp_path, 3, region=region, year_start=2032)
    res = B.result(B.post(users['rev_city'], b.path), 201)
    B.check_summary(res, b.id, region, 'projects', 3, b.body, 'rev_city')
    b.check_codes(res, 'draft')
    assert B.stages_tagged(env, b.tag) == {(region, 'draft', 'new'): 3}
    B.check_project(users[ADMIN[region]], res.codes[0]['code'], 1, b.tag, 'draft', region,
                    UNIT[region], 2032, 'new')


def test_county_system_sends_with_a_bearer_token(env, users, tmp_path):
    """A county system's SSO token (county_admin of 321322): no cookie, no
    CSRF token; its region only."""
    token = L.sso_token(env, 'sso-county-sys', '321322-DATA', REGION, ['county_admin'],
                        name='沭阳县系统')
    system = L.User(env, bearer=token)
    try:
        b = Batch(tmp_path, 3, year_start=2033)
        res = B.result(B.post(system, b.path), 201)
        B.check_summary(res, b.id, REGION, 'projects', 3, b.body, 'sso-county-sys')
        b.check_codes(res, 'draft')
        got = B.result(system.get(f'{B.BATCHES}/{b.id}'), 200)
        assert got.same_as(res)

        other = Batch(tmp_path, 2, region=OTHER, year_start=2033)
        L.problem(B.post(system, other.path), 403)
        other.nothing_stored(env)
    finally:
        system.close()
    sub = L.User(env, bearer=L.sso_token(env, 'sso-sub', '321322-AGRI', REGION,
                                         ['submitter']))
    try:
        b = Batch(tmp_path, 2, year_start=2033)
        L.problem(B.post(sub, b.path), 403)
        b.nothing_stored(env)
    finally:
        sub.close()


# --------------------------------------------------------------------------
# who may not

@pytest.mark.parametrize('uid', ['sub_agri', 'cdo_agri', 'dir_shuyang', 'dir_city',
                                 'expert7', 'jr_drc', 'eval1', 'auditor1', 'admin1'])
def test_other_roles_get_403_and_nothing_is_stored(env, users, tmp_path, uid):
    b = Batch(tmp_path, 2, year_start=2034)
    L.problem(B.post(users[uid], b.path), 403)
    b.nothing_stored(env)


@pytest.mark.parametrize('uid,region', [('ca_shuyang', OTHER), ('ca_siyang', REGION)])
def test_county_admin_cannot_send_for_another_region(env, users, tmp_path, uid, region):
    b = Batch(tmp_path, 3, region=region, year_start=2034)
    L.problem(B.post(users[uid], b.path), 403)
    b.nothing_stored(env)
    # Not even with units of its own region inside.
    own = REGION if uid == 'ca_shuyang' else OTHER
    b2 = Batch(tmp_path, 2, region=region, unit=UNIT[own], year_start=2034)
    L.problem(B.post(users[uid], b2.path), 403)
    b2.nothing_stored(env)


def test_login_csrf_and_content_type(env, users, tmp_path):
    b = Batch(tmp_path, 2, year_start=2034)
    admin = users['ca_shuyang']
    with h.Client(env) as anon:
        r = anon.post(B.BATCHES, data=b.body, headers={'Content-Type': 'application/xml'})
        h.problem(r, 401)
    # A session cookie without the CSRF token.
    r = admin.request('POST', B.BATCHES, data=b.body, csrf=False,
                      headers={'Content-Type': 'application/xml'})
    L.problem(r, 403)
    r = B.post(admin, b.body, content_type='text/plain')
    L.problem(r, 415)
    b.nothing_stored(env)


# --------------------------------------------------------------------------
# idempotency

def test_same_batch_twice_is_stored_once(env, users, tmp_path):
    b = Batch(tmp_path, 20, year_start=2035, per_year=8)
    admin = users['ca_shuyang']
    r = B.post(admin, b.path)
    first = B.result(r, 201)
    assert 'Idempotent-Replayed' not in r.headers
    # The first result again, as it was answered (201); marked a replay.
    r = B.post(admin, b.path)
    again = B.result(r, 201)
    assert r.headers.get('Idempotent-Replayed') == 'true', r.headers
    assert again.same_as(first), (again, first)
    assert B.rows_tagged(env, b.tag) == 20
    assert B.batch_rows(env, b.id) == 1
    # Another sender in scope (a city reviewer) sending the same bytes gets
    # the stored result as well.
    again = B.result(B.post(users['rev_city'], b.path), 201)
    assert again.same_as(first)
    assert B.rows_tagged(env, b.tag) == 20
    assert len(B.audit_of(users['auditor1'], REGION, b.id)) == 1
    # What happened to a project since does not change the first answer.
    code = first.codes[0]['code']
    B.su(env, f"UPDATE projects SET stage = 'rejected' WHERE code = '{code}'")
    again = B.result(B.post(admin, b.path), 201)
    assert again.same_as(first), (again, first)


def test_cdata_is_text_like_any_other(env, users, tmp_path):
    """A CDATA section in a record is part of its text, as in a single
    declaration: kept whole, and a title that is only CDATA is a title."""
    b = Batch(tmp_path, 2, year_start=2035)
    body = b.body.decode()
    titles = re.findall(r'<title>([^<]*)</title>', body)
    body = body.replace(f'<title>{titles[0]}</title>',
                        f'<title>A<![CDATA[ & <b> ]]>Z {titles[0]}</title>', 1)
    body = body.replace(f'<title>{titles[1]}</title>', f'<title><![CDATA[{titles[1]}]]></title>', 1)
    b.path.write_bytes(body.encode())
    admin = users['ca_shuyang']
    res = B.result(B.post(admin, b.path), 201)
    got = [L.read(admin, c['code']).text('title') for c in res.codes]
    assert got == [f'A & <b> Z {titles[0]}', titles[1]], got


def test_same_id_other_content_is_a_conflict(env, users, tmp_path):
    b = Batch(tmp_path, 3, year_start=2035)
    admin = users['ca_shuyang']
    first = B.result(B.post(admin, b.path), 201)
    # Same id, one more record; and same id, same records, other titles.
    for changed in (Batch(tmp_path, 4, id=b.id, year_start=2035, name='more'),
                    Batch(tmp_path, 3, id=b.id, year_start=2035, name='tag')):
        L.problem(B.post(admin, changed.path), 409, 'batch_conflict')
        assert B.rows_tagged(env, changed.tag) == 0
    # Whitespace is content too: the SHA-256 of the body decides.
    body = b.body.replace(b'</batch>', b' </batch>')
    L.problem(B.post(admin, body), 409, 'batch_conflict')
    assert B.rows_tagged(env, b.tag) == 3
    assert B.batch_rows(env, b.id) == 1
    got = B.result(admin.get(f'{B.BATCHES}/{b.id}'), 200)
    assert got.same_as(first)


def test_same_id_in_another_region_is_another_batch(env, users, tmp_path):
    b = Batch(tmp_path, 2, year_start=2035)
    mine = B.result(B.post(users['ca_shuyang'], b.path), 201)
    # Same id and the same refs: refs, too, are unique per region only.
    theirs_b = Batch(tmp_path, 3, region=OTHER, id=b.id, year_start=2035, name='other',
                     ref_prefix=b.ref_prefix)
    theirs = B.result(B.post(users['ca_siyang'], theirs_b.path), 201)
    assert theirs['region'] == OTHER and int(theirs['records']) == 3
    assert B.batch_rows(env, b.id) == 2
    assert [c['ref'] for c in theirs.codes[:2]] == [c['ref'] for c in mine.codes]
    assert B.result(users['ca_shuyang'].get(f'{B.BATCHES}/{b.id}'), 200).same_as(mine)
    assert B.result(users['ca_siyang'].get(f'{B.BATCHES}/{b.id}'), 200).same_as(theirs)
    for region, res in ((REGION, mine), (OTHER, theirs)):
        got = B.result(users['rev_city'].get(f'{B.BATCHES}/{b.id}',
                                             params={'region': region}), 200)
        assert got.same_as(res)


def test_two_concurrent_uploads_store_one_set_of_rows(volume, tmp_path):
    env, users = volume
    b = Batch(tmp_path, 3000, year_start=2036, per_year=1500)
    body = b.body
    senders = [L.User(env, 'ca_shuyang') for _ in range(2)]
    barrier = threading.Barrier(2)

    def send(u):
        barrier.wait(timeout=30)
        return B.post(u, body, timeout=B.BIG_TIMEOUT)
    try:
        with ThreadPoolExecutor(2) as pool:
            resps = list(pool.map(send, senders))
    finally:
        for u in senders:
            u.close()
    statuses = sorted(r.status_code for r in resps)
    assert statuses in ([200, 201], [201, 201]), [describe(r) for r in resps]
    a, c = (B.Result(r.doc) for r in resps)
    assert a.same_as(c), (a, c)
    b.check_codes(a, 'draft')
    assert B.rows_tagged(env, b.tag) == 3000
    assert B.batch_rows(env, b.id) == 1
    assert len(B.audit_of(users['auditor1'], REGION, b.id)) == 1


# --------------------------------------------------------------------------
# listing

def test_list_of_batches_in_scope(env, users, tmp_path):
    mine = [B.result(B.post(users['ca_shuyang'], Batch(tmp_path, 1, year_start=2037,
                                                       name=f'l{k}').path), 201)
            for k in range(2)]
    theirs = B.result(B.post(users['ca_siyang'], Batch(tmp_path, 1, region=OTHER,
                                                       year_start=2037).path), 201)

    listed, total = B.list_batches(users['ca_shuyang'])
    assert total == len(listed) and total >= 2
    assert {b['region'] for b in listed} == {REGION}, listed
    by_id = {b['id']: b for b in listed}
    for res in mine:
        assert by_id.get(res['id']) == res.attrs, (by_id.get(res['id']), res.attrs)
    assert theirs['id'] not in by_id

    listed, _ = B.list_batches(users['ca_siyang'])
    assert {b['region'] for b in listed} == {OTHER}, listed
    assert theirs['id'] in {b['id'] for b in listed}

    listed, _ = B.list_batches(users['rev_city'], region=OTHER)
    assert {b['region'] for b in listed} == {OTHER}
    assert theirs['id'] in {b['id'] for b in listed}
    listed, _ = B.list_batches(users['rev_city'])
    ids = {(b['region'], b['id']) for b in listed}
    assert {(REGION, r['id']) for r in mine} | {(OTHER, theirs['id'])} <= ids

    # Pages.
    r1 = users['ca_shuyang'].get(B.BATCHES, params={'offset': 0, 'limit': 1})
    r2 = users['ca_shuyang'].get(B.BATCHES, params={'offset': 1, 'limit': 1})
    for r, off in ((r1, 0), (r2, 1)):
        assert r.status_code == 200, describe(r)
        assert r.doc.get('offset') == str(off) and r.doc.get('limit') == '1', describe(r)
        assert len(r.doc.findall(N + 'batch')) == 1, describe(r)
    assert r1.doc.find(N + 'batch').get('id') != r2.doc.find(N + 'batch').get('id') or \
        r1.doc.find(N + 'batch').get('region') != r2.doc.find(N + 'batch').get('region')
    with h.Client(env) as anon:
        h.problem(anon.get(B.BATCHES), 401)


# --------------------------------------------------------------------------
# invalid records: nothing stored, every error named

SMALL_INVALID = [
    # (--invalid spec, status, rule or None)
    ('schema', 422, None),
    ('schema:element', 422, None),
    ('unit', 422, None),
    ('dupref', 422, None),
    ('category', 422, None),
]


def check_refusal(env, users, b, resp, status, rule, expected):
    """resp refuses batch b with `status` (and `rule`); the errors are exactly
    `expected` [(record, line)] in that order, each with a column and a
    message; nothing is stored."""
    root = L.problem(resp, status, rule)
    total, errs = B.errors(root)
    got = [(e['record'], e['line']) for e in errs]
    assert got == expected, f'errors {got}, expected {expected}: {describe(resp)}'
    for e, (rec, line) in zip(errs, expected):
        check_error(e, rec, line)
    assert total == len(errs), (total, errs)
    b.nothing_stored(env)
    L.problem(users['rev_city'].get(f'{B.BATCHES}/{b.id}', params={'region': b.region}),
              404)
    assert B.audit_of(users['auditor1'], b.region, b.id) == [], 'a refused batch is audited'
    return root, errs


def existing_ref(env, users, tmp_path):
    """A ref that exists in 321322 from an earlier batch."""
    prior = Batch(tmp_path, 1, year_start=2038, ref_prefix=f'x{B.new_tag()}-', name='prior')
    B.result(B.post(users['ca_shuyang'], prior.path), 201)
    return prior.ref_prefix + '1'


@pytest.mark.parametrize('spec,status,rule', SMALL_INVALID + [('existingref', 409,
                                                               'batch_conflict')])
def test_one_invalid_record_among_twenty(env, users, tmp_path, spec, status, rule):
    if spec == 'existingref':
        spec = 'existingref:' + existing_ref(env, users, tmp_path)
    # A category that does not fit: a declaration in a batch of existing
    # systems (an existing system in a batch of projects is taken, below).
    kind = 'existing' if spec == 'category' else 'projects'
    b = Batch(tmp_path, 20, kind=kind, year_start=2038, invalid=[f'13:{spec}'])
    bad = b.invalid()[0]
    resp = B.post(users['ca_shuyang'], b.path)
    check_refusal(env, users, b, resp, status, rule, [(13, bad['error_line'])])


def test_every_error_is_listed(env, users, tmp_path):
    """Three schema errors: all three, in document order; then two business
    errors (a unit of another region, a duplicate ref): both."""
    admin = users['ca_shuyang']
    b = Batch(tmp_path, 30, year_start=2038,
              invalid=['3:schema', '17:schema:element', '29:schema'])
    exp = [(x['record'], x['error_line']) for x in b.invalid()]
    _, errs = check_refusal(env, users, b, B.post(admin, b.path), 422, None, exp)
    assert [e['record'] for e in errs] == [3, 17, 29], errs

    b = Batch(tmp_path, 30, year_start=2038, invalid=['4:unit', '21:dupref'])
    exp = [(x['record'], x['line']) for x in b.invalid()]
    check_refusal(env, users, b, B.post(admin, b.path), 422, None, exp)


def test_schema_and_rule_errors_are_listed_together(env, users, tmp_path):
    """Records the schema refuses do not hide the rule errors of the others:
    every invalid record, in record order, one total; nothing stored."""
    admin = users['ca_shuyang']
    b = Batch(tmp_path, 30, year_start=2038,
              invalid=['3:schema', '9:unit', '17:schema:element', '24:unit'])
    exp = [(x['record'], x['error_line'] if x['kind'].startswith('schema') else x['line'])
           for x in b.invalid()]
    _, errs = check_refusal(env, users, b, B.post(admin, b.path), 422, None, exp)
    assert [e['record'] for e in errs] == [3, 9, 17, 24], errs
    # The rule errors alone would have been a 422 too; a batch whose only
    # valid records pass the rules still lists its schema errors only.
    b = Batch(tmp_path, 12, year_start=2038, invalid=['2:schema', '11:schema'])
    exp = [(x['record'], x['error_line']) for x in b.invalid()]
    check_refusal(env, users, b, B.post(admin, b.path), 422, None, exp)


def test_a_hundred_and_fifty_invalid_records_are_all_listed(env, users, tmp_path):
    b = Batch(tmp_path, 160, year_start=2038, invalid=[f'{k}:schema' for k in range(1, 151)])
    root = L.problem(B.post(users['ca_shuyang'], b.path), 422)
    total, errs = B.errors(root)
    assert total == 150 and [e['record'] for e in errs] == list(range(1, 151)), total
    b.nothing_stored(env)


def test_existing_system_in_a_batch_of_projects_enters_at_operation(env, users, tmp_path):
    """SPEC: a declaration of category existing from a county admin enters
    at operation, singly or in a batch: in a batch of projects, that record
    is at operation and the others are drafts."""
    b = Batch(tmp_path, 5, year_start=2038, invalid=['3:category'])
    res = B.result(B.post(users['ca_shuyang'], b.path), 201)
    stages = {c['record']: c['stage'] for c in res.codes}
    assert stages == {1: 'draft', 2: 'draft', 3: 'operation', 4: 'draft', 5: 'draft'}, stages
    p = L.read(users['ca_shuyang'], res.codes[2]['code'])
    assert p.stage == 'operation'


def test_category_must_fit_the_kind(env, users, tmp_path):
    """A record of category new in an existing batch: 422 naming it."""
    b = Batch(tmp_path, 5, kind='existing', year_start=2038, invalid=['2:category'])
    check_refusal(env, users, b, B.post(users['ca_shuyang'], b.path), 422, None,
                  [(2, b.invalid()[0]['line'])])


# --------------------------------------------------------------------------
# submit="true": every gate of `submit` for every record

def test_submit_is_refused_when_materials_are_required(env, users, tmp_path):
    """沭阳县 follows the city's materials rules (rules_materials has no rows
    of its own): submit needs four attachments, which a batch cannot carry,
    so an urgent batch (no window needed) is refused with materials_missing,
    naming the records; nothing is stored."""
    own = h.psql(env, "SELECT count(*) FROM rules_materials WHERE region = '321322' "
                      "AND action = 'submit' AND NOT classified_only")
    city = h.psql(env, "SELECT count(*) FROM rules_materials WHERE region = '321300' "
                       "AND action = 'submit' AND NOT classified_only")
    if own == '0':
        assert int(city) > 0, 'the city requires no materials for submit'
    else:
        pytest.skip('321322 has materials rules of its own on this stack')
    b = Batch(tmp_path, 4, year_start=2039, submit=True, urgent='防汛应急')
    resp = B.post(users['ca_shuyang'], b.path)
    root = L.problem(resp, 409, 'materials_missing')
    total, errs = B.errors(root)
    assert errs and {e['record'] for e in errs} <= {1, 2, 3, 4}, errs
    for e in errs:
        check_error(e, e['record'], b.line(e['record']))
    b.nothing_stored(env)


def test_submit_gates_with_the_regions_own_rules(private_stack, tmp_path):
    """On a private stack, 沭阳县 gets a submit materials list of its own that
    asks nothing (set by the admin): then the window gate
    decides. Outside any window: window_closed naming every record; urgent
    without a reason: urgent_reason_missing; urgent with a reason: 201 at
    endorsement; a window opened for 2032 by the admin: 201, and a batch
    mixing 2032 and 2033 records names only the 2033 ones."""
    env = private_stack()
    users = L.Users(env)
    try:
        body = (f'<thresholds xmlns="{L.NS}"><threshold region="321322" '
                'expertAmount="500000.00" expertCount="3" jointAmount="5000000.00" '
                'jointExpertCount="5" expertMinMean="60" trialDays="90">'
                '<materials action="submit"/></threshold></thresholds>')
        r = users['admin1'].put_xml('/api/v1/config/thresholds', body)
        assert r.status_code == 200, describe(r)
        admin = users['ca_shuyang']

        b = Batch(tmp_path, 3, year_start=2031, submit=True)
        root = L.problem(B.post(admin, b.path), 409, 'window_closed')
        total, errs = B.errors(root)
        assert [e['record'] for e in errs] == [1, 2, 3] and total == 3, errs
        for e in errs:
            check_error(e, e['record'], b.line(e['record']))
        b.nothing_stored(env)

        b = Batch(tmp_path, 3, year_start=2031, submit=True, urgent='')
        L.problem(B.post(admin, b.path), 409, 'urgent_reason_missing')
        b.nothing_stored(env)

        b = Batch(tmp_path, 3, year_start=2031, submit=True, urgent='汛期应急')
        # xs:boolean allows white space around the value: still a submit.
        b.path.write_bytes(b.body.replace(b' submit="true"', b' submit="  true  "', 1))
        res = B.result(B.post(admin, b.path), 201)
        B.check_summary(res, b.id, REGION, 'projects', 3, b.body, 'ca_shuyang',
                        submitted=True)
        b.check_codes(res, 'endorsement')
        assert B.stages_tagged(env, b.tag) == {(REGION, 'endorsement', 'new'): 3}
        for c in res.codes:
            B.check_project(admin, c['code'], c['record'], b.tag, 'endorsement', REGION,
                            UNIT[REGION], 2031, 'new')

        today = time.strftime('%Y-%m-%d')
        body = (f'<windows xmlns="{L.NS}"><window region="321322" year="2032" '
                f'opens="{int(today[:4]) - 1}-01-01" closes="2032-12-31"/></windows>')
        r = users['admin1'].put_xml('/api/v1/config/windows', body)
        assert r.status_code == 200, describe(r)
        b = Batch(tmp_path, 4, year_start=2032, per_year=2, submit=True)
        # records 1, 2 in 2032 (open), 3, 4 in 2033 (closed)
        root = L.problem(B.post(admin, b.path), 409, 'window_closed')
        total, errs = B.errors(root)
        assert [e['record'] for e in errs] == [3, 4] and total == 2, errs
        b.nothing_stored(env)
        b = Batch(tmp_path, 4, year_start=2032, submit=True)
        res = B.result(B.post(admin, b.path), 201)
        b.check_codes(res, 'endorsement')
        # Back to draft by the unit's submitter: an ordinary declaration now.
        code = res.codes[0]['code']
        p = L.read(users['sub_agri'], code)
        assert p.stage == 'endorsement'
        p = L.act(users['sub_agri'], p, 'withdraw')
        assert p.stage == 'draft'
    finally:
        users.close()


# --------------------------------------------------------------------------
# hostile documents

def small_batch_text(tmp_path, **opts):
    b = Batch(tmp_path, 2, year_start=2039, **opts)
    return b, b.body.decode('utf-8')


def with_doctype(text, doctype):
    decl, _, rest = text.partition('\n')
    return f'{decl}\n{doctype}\n{rest}'


def first_title(text, replacement):
    start = text.index('<title>')
    end = text.index('</title>', start) + len('</title>')
    return text[:start] + replacement + text[end:]


def hostile_documents(tmp_path, port):
    """(name, batch, body, allowed statuses)."""
    out = []
    b, t = small_batch_text(tmp_path)
    out.append(('xxe', b, first_title(with_doctype(
        t, '<!DOCTYPE batch [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
        '<title>&xxe;</title>'), (400, 422)))
    b, t = small_batch_text(tmp_path)
    lol = ['<!ENTITY lol0 "lollollollollollollollollollol">'] + [
        f'<!ENTITY lol{k} "{("&lol%d;" % (k - 1)) * 10}">' for k in range(1, 10)]
    out.append(('billion-laughs', b, first_title(with_doctype(
        t, '<!DOCTYPE batch [' + ''.join(lol) + ']>'), '<title>&lol9;</title>'), (400, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('external-dtd', b, with_doctype(
        t, f'<!DOCTYPE batch SYSTEM "http://127.0.0.1:{port}/evil.dtd">'), (400, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('external-parameter-entity', b, first_title(with_doctype(
        t, f'<!DOCTYPE batch [<!ENTITY % ext SYSTEM "http://127.0.0.1:{port}/x.dtd"> '
           '%ext;]>'), '<title>x</title>'), (400, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('xinclude', b, t.replace(
        '<summary>', '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                     'href="file:///etc/passwd" parse="text"/>\n<summary>', 1), (400, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('xinclude-network', b, t.replace(
        '<summary>', '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                     f'href="http://127.0.0.1:{port}/x.xml"/>\n<summary>', 1), (400, 422)))
    b, t = small_batch_text(tmp_path)
    depth = 100_000
    out.append(('deep-nesting', b, t.replace(
        '<summary>', '<a>' * depth + '</a>' * depth + '\n<summary>', 1), (400, 413, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('deep-nesting-unclosed', b, t.replace('<summary>', '<a>' * depth, 1)[:-200],
                (400, 413, 422)))
    b, t = small_batch_text(tmp_path)
    # libxml2 compares each attribute of a tag with every earlier one.
    attrs = ''.join(f' a{k}=""' for k in range(40_000))
    out.append(('many-attributes', b, t.replace('<project ', f'<project{attrs} ', 1), (400,)))
    b, t = small_batch_text(tmp_path)
    out.append(('not-well-formed', b, t.replace('</title>', '</titel>', 1), (400,)))
    b, t = small_batch_text(tmp_path)
    out.append(('truncated', b, t[:len(t) * 2 // 3], (400,)))
    b, t = small_batch_text(tmp_path)
    # Well-formed but not a batch: schema-invalid, as on every resource.
    out.append(('wrong-root', b, t.replace('<batch ', '<bunch ').replace('</batch>',
                                                                          '</bunch>'), (422,)))
    b, t = small_batch_text(tmp_path)
    out.append(('wrong-namespace', b, t.replace('urn:itpm:1', 'urn:itpm:2'), (400, 422)))
    b, t = small_batch_text(tmp_path)
    start = t.index('<project')
    out.append(('declaration-as-root', b, t[:t.index('<batch')] +
                t[start:t.index('</project>') + len('</project>')].replace(
                    '<project ref="r1">', '<project xmlns="urn:itpm:1">'), (422,)))
    b, t = small_batch_text(tmp_path)
    out.append(('no-records', b, t[:t.index('<project')] + '</batch>\n', (400, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('unknown-kind', b, t.replace('kind="projects"', 'kind="monitoring"'),
                (400, 422)))
    b, t = small_batch_text(tmp_path)
    out.append(('empty', b, '', (400, 422)))
    return out


def test_hostile_documents_are_refused_quickly(env, users, tmp_path):
    """Each document: 4xx within a few seconds, no file or network read,
    nothing stored, and the same workers serve on (none crashed)."""
    admin = users['ca_shuyang']
    before = h.workers(env)
    failures = []
    with h.Listener() as listener:
        for name, b, body, allowed in hostile_documents(tmp_path, listener.port):
            t0 = time.monotonic()
            try:
                r = B.post(admin, body, timeout=(5, 30))
            except requests.RequestException as e:
                failures.append(f'{name}: {e!r}')
                continue
            took = time.monotonic() - t0
            try:
                L.problem(r, r.status_code)
                assert r.status_code in allowed, f'{name}: {describe(r)}'
                assert took < QUICK, f'{name}: answered after {took:.1f} s'
                assert b'root:' not in r.content, f'{name}: {describe(r)}'
                if name.startswith('xinclude') and r.status_code == 422:
                    # an element the schema does not know, in record 1, on
                    # the line before <summary>
                    _, errs = B.errors(r.doc)
                    check_error(errs[0], 1, b.line(1) + 11)
                b.nothing_stored(env)
                healthy(admin)
            except AssertionError as e:
                failures.append(f'{name}: {e}')
        assert listener.connections == [], 'the parser reached the network'
    assert not failures, '\n'.join(failures)
    assert h.workers(env) == before, 'a worker died on a hostile document'


# --------------------------------------------------------------------------
# limits

def test_body_and_record_limits(private_stack, tmp_path):
    """[batch] max_body 3m (above [server] max_body, 1m): a 1.6 MB batch is
    accepted, a 4 MB one gets 413 (with Content-Length and chunked);
    max_records 3000: 3001 records get 413; max_errors 5: twelve invalid
    records are counted and five listed."""
    env = private_stack('[batch]\nmax_body = 3m\nmax_records = 3000\nmax_errors = 5\n')
    users = L.Users(env)
    try:
        admin = users['ca_shuyang']
        limit = 3 * 1024 * 1024
        ok = Batch(tmp_path, 2700, year_start=2031)
        assert 1024 * 1024 < ok.info['bytes'] < limit, ok.info
        B.result(B.post(admin, ok.path, timeout=B.BIG_TIMEOUT), 201)

        big = Batch(tmp_path, 7000, year_start=2032)
        assert big.info['bytes'] > limit + 64 * 1024
        t0 = time.monotonic()
        r = B.post(admin, big.path, timeout=B.BIG_TIMEOUT)
        h.problem(r, 413)
        assert time.monotonic() - t0 < 10
        data = big.body

        def chunks():
            for k in range(0, len(data), 65536):
                yield data[k:k + 65536]
        r = admin.post(B.BATCHES, data=chunks(), timeout=B.BIG_TIMEOUT,
                       headers={'Content-Type': 'application/xml'})
        h.problem(r, 413)
        big.nothing_stored(env)

        many = Batch(tmp_path, 3001, year_start=2033)
        assert many.info['bytes'] < limit
        h.problem(B.post(admin, many.path, timeout=B.BIG_TIMEOUT), 413)
        many.nothing_stored(env)

        bad = Batch(tmp_path, 100, year_start=2034,
                    invalid=[f'{k}:schema' for k in range(5, 65, 5)])
        root = L.problem(B.post(admin, bad.path), 422)
        total, errs = B.errors(root)
        assert total == 12 and len(errs) == 5, (total, errs)
        exp = {x['record']: x['error_line'] for x in bad.invalid()}
        for e in errs:
            check_error(e, e['record'], exp.get(e['record']))
        bad.nothing_stored(env)
        healthy(admin)
    finally:
        users.close()


def test_batch_past_its_timeout_is_rolled_back(private_stack, tmp_path):
    """[batch] timeout 2 s: a batch held up inside the database (table
    `batches` locked) gets 503 soon after 2 s and leaves nothing; sent again
    once the lock is gone, it is stored."""
    env = private_stack('[batch]\ntimeout = 2\n')
    users = L.Users(env)
    try:
        admin = users['ca_shuyang']
        healthy(admin)  # logged in before the lock
        b = Batch(tmp_path, 3, year_start=2031)
        with B.BatchesLock(env, 30):
            t0 = time.monotonic()
            r = B.post(admin, b.path, timeout=(5, 60))
            took = time.monotonic() - t0
            L.problem(r, 503)
            assert 1.5 < took < 15, f'answered after {took:.1f} s'
            healthy(admin)
        b.nothing_stored(env)
        res = B.result(B.post(admin, b.path), 201)
        b.check_codes(res, 'draft')
    finally:
        users.close()


# --------------------------------------------------------------------------
# 10,000 records

@pytest.mark.slow
def test_ten_thousand_records(volume, tmp_path):
    env, users = volume
    b = Batch(tmp_path, BIG, year_start=2031, per_year=BIG_PER_YEAR)
    admin = users['ca_shuyang']
    res = B.result(B.post(admin, b.path, timeout=B.BIG_TIMEOUT), 201)
    B.check_summary(res, b.id, REGION, 'projects', BIG, b.body, 'ca_shuyang')
    b.check_codes(res, 'draft')
    assert B.stages_tagged(env, b.tag) == {(REGION, 'draft', 'new'): BIG}
    assert B.resources_tagged(env, b.tag) == BIG
    assert B.resources_text_behind(env, b.tag) == 0
    assert B.batch_rows(env, b.id, REGION) == 1
    # Every code in the database is the one the result gives for its record.
    codes = set(B.su(env, f"SELECT code FROM projects WHERE title LIKE "
                            f"{B.sql_text('% ' + b.tag)}").split())
    assert codes == {c['code'] for c in res.codes}
    picks = sorted({1, 2, BIG_PER_YEAR, BIG_PER_YEAR + 1, 5000, 7777, BIG - 1, BIG}
                   | set(range(37, BIG, 997)))
    for i in picks:
        c = res.codes[i - 1]
        B.check_project(admin, c['code'], i, b.tag, 'draft', REGION, UNIT[REGION],
                        b.year(i), 'new')
    for i in picks[:5]:
        c = res.codes[i - 1]
        B.check_project(users['rev_city'], c['code'], i, b.tag, 'draft', REGION,
                        UNIT[REGION], b.year(i), 'new')
        L.problem(users['ca_siyang'].get(L.path(c['code'])), 404)
    got = B.result(admin.get(f'{B.BATCHES}/{b.id}', timeout=B.BIG_TIMEOUT), 200)
    assert got.same_as(res)
    recs = B.audit_of(users['auditor1'], REGION, b.id)
    assert len(recs) == 1, recs
    assert re.search(rf'\b{BIG}\b', recs[0]['summary']), recs
    assert res['sha256'] in recs[0]['summary'], recs

    # The request log shows the batch's throughput (issue 5, item 6).
    def logged():
        text = Path(env['ITPM_LOG']).read_text(errors='replace')
        return [l for l in text.splitlines()
                if f'{REGION}/{b.id}' in l and re.search(r'\brecords/s\b', l)]
    lines = h.wait_until(logged, 5, 'a log line with the records per second')
    assert str(BIG) in lines[0], lines


@pytest.mark.slow
@pytest.mark.parametrize('spec,status,rule', [
    ('schema', 422, None), ('unit', 422, None), ('dupref', 422, None),
    ('category', 422, None), ('existingref', 409, 'batch_conflict')])
def test_one_invalid_record_among_ten_thousand(env, users, tmp_path, spec, status, rule):
    if spec == 'existingref':
        spec = 'existingref:' + existing_ref(env, users, tmp_path)
    kind = 'existing' if spec == 'category' else 'projects'
    b = Batch(tmp_path, BIG, kind=kind, year_start=2031, per_year=BIG_PER_YEAR,
              invalid=[f'7777:{spec}'])
    bad = b.invalid()[0]
    t0 = time.monotonic()
    resp = B.post(users['ca_shuyang'], b.path, timeout=B.BIG_TIMEOUT)
    check_refusal(env, users, b, resp, status, rule, [(7777, bad['error_line'])])
    assert time.monotonic() - t0 < 120


# --------------------------------------------------------------------------
# a worker killed in the middle of a large upload

@pytest.mark.slow
def test_worker_killed_mid_upload_leaves_nothing(volume, tmp_path):
    """kill -9 the worker busy with a 50,000-record batch (about 28 MB; more
    with ITPM_BATCH_KILL_RECORDS), found by its CPU time growing: nginx
    answers 5xx, no project and no batch record are left, the worker is
    replaced, and the same batch sent again is 201."""
    env, users = volume
    admin = users['ca_shuyang']
    healthy(admin)
    b = Batch(tmp_path, KILL_RECORDS, year_start=2031, per_year=20000)
    workers = h.workers(env)
    start = {p: h.cpu_ticks(p) for p in workers}

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(B.post, admin, b.path, B.BIG_TIMEOUT)
        victim = None
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and not fut.done():
            for p in workers:
                t = h.cpu_ticks(p)
                if t is not None and start[p] is not None and t - start[p] >= 30:
                    victim = p  # 0.3 s of CPU since the upload began
                    break
            time.sleep(0.02)
        assert victim is not None, ('no worker got busy before the reply: ' +
                                    (describe(fut.result()) if fut.done() else 'timeout'))
        os.kill(victim, signal.SIGKILL)
        resp = fut.result(timeout=120)
    assert 500 <= resp.status_code < 600, describe(resp)
    b.nothing_stored(env)
    L.problem(admin.get(f'{B.BATCHES}/{b.id}'), 404)
    h.wait_until(lambda: victim not in h.workers(env) and
                 len(h.workers(env)) == len(workers), 10, 'the killed worker replaced')
    b.nothing_stored(env)

    res = B.result(B.post(admin, b.path, timeout=B.BIG_TIMEOUT), 201)
    assert int(res['created']) == KILL_RECORDS
    b.check_codes(res, 'draft')
    assert B.rows_tagged(env, b.tag) == KILL_RECORDS
    assert B.batch_rows(env, b.id) == 1


# --------------------------------------------------------------------------
# the database going away

def test_database_restart_around_batches(private_stack, tmp_path):
    """One worker, a county system's bearer token (no database work to
    authenticate, so the batch is the first to meet a connection the server
    dropped). PostgreSQL restarted between two batches: the next one is
    stored all the same (the worker reconnects by itself). PostgreSQL down:
    503, nothing stored, the worker alive; back: the same batch is stored."""
    env = private_stack('[server]\nworkers = 1\n')
    token = L.sso_token(env, 'sso-county-sys', '321322-DATA', REGION, ['county_admin'],
                        name='沭阳县系统')
    system = L.User(env, bearer=token)
    try:
        first = Batch(tmp_path, 3, year_start=2036, name='first')
        B.result(B.post(system, first.path), 201)
        h.stack_cmd(env, 'pg-stop')
        h.stack_cmd(env, 'pg-start')
        after = Batch(tmp_path, 3, year_start=2036, name='after')
        B.result(B.post(system, after.path), 201)

        h.stack_cmd(env, 'pg-stop')
        down = Batch(tmp_path, 3, year_start=2036, name='down')
        r = B.post(system, down.path)
        h.problem(r, 503)
        assert system.get('/healthz').status_code == 200
        h.stack_cmd(env, 'pg-start')
        h.wait_until(lambda: system.get('/readyz').status_code == 200, 10,
                     '/readyz 200 after pg-start', 0.2)
        res = B.result(B.post(system, down.path), 201)
        down.check_codes(res, 'draft')
    finally:
        system.close()


# --------------------------------------------------------------------------
# rules checked on the whole set that the generator does not exercise

def hand_batch(tag, year, records):
    """A small batch written here: records is a list of (ref, classified)."""
    batch_id = 'hb-' + tag
    body = [f'<batch xmlns="{L.NS}" id="{batch_id}" region="{REGION}" kind="projects">\n']
    for ref, classified in records:
        body.append(
            f'<project ref="{ref}-{tag}"><title>手工批次 {tag}</title>'
            f'<unit>{UNIT[REGION]}</unit><year>{year}</year><category>new</category>'
            f'<flags classified="{"true" if classified else "false"}"/>'
            f'<budget>1000.00</budget><funding>fiscal</funding>'
            f'<construction mode="centralized"/></project>\n')
    body.append('</batch>\n')
    return batch_id, ''.join(body)


def test_classified_records_need_the_clearance(env, users, tmp_path):
    """A county admin without the classified clearance: a classified record
    is refused with 403 naming it (line 3), nothing stored. A reviewer of
    the city with the clearance stores the same batch."""
    tag = B.new_tag()
    batch_id, body = hand_batch(tag, 2040, [('a', False), ('b', True), ('c', False)])
    root = L.problem(B.post(users['ca_shuyang'], body), 403)
    total, errs = B.errors(root)
    assert total == 1 and [(e['record'], e['line']) for e in errs] == [(2, 3)], errs
    B.nothing_stored(env, batch_id, tag)
    res = B.result(B.post(users['rev_city'], body), 201)
    assert [c['stage'] for c in res.codes] == ['draft'] * 3, res


def test_no_code_left_for_the_year(env, users, tmp_path):
    """Codes have five serial digits: with 99,998 taken in a year, the second
    record of a batch for that year has none left: 409 naming it, nothing
    stored, the counter untouched."""
    year = 2041
    h.psql(env, "INSERT INTO project_serials (region, year, last_serial) "
                f"VALUES ('{REGION}', {year}, 99998) ON CONFLICT (region, year) "
                "DO UPDATE SET last_serial = 99998")
    tag = B.new_tag()
    batch_id, body = hand_batch(tag, year, [('a', False), ('b', False), ('c', False)])
    root = L.problem(B.post(users['ca_shuyang'], body), 409)
    total, errs = B.errors(root)
    assert total == 1 and [(e['record'], e['line']) for e in errs] == [(2, 3)], errs
    B.nothing_stored(env, batch_id, tag)
    assert h.psql(env, "SELECT last_serial FROM project_serials "
                       f"WHERE region = '{REGION}' AND year = {year}").strip() == '99998'


def test_records_after_a_foreign_element_are_not_trusted(env, users, tmp_path):
    """An element of the batch that is not a <project>: libxml2 checks no
    later record against the schema, so none is used (one missing its
    construction, one with three decimals): 422 naming the foreign element,
    the worker unharmed, nothing stored."""
    tag = B.new_tag()
    batch_id, body = hand_batch(tag, 2040, [('a', False), ('b', False)])
    first_end = body.index('</project>\n') + len('</project>\n')
    body = (body[:first_end] + '<foo/>\n'
            + f'<project ref="c-{tag}"><title>t</title><unit>{UNIT[REGION]}</unit></project>\n'
            + body[first_end:].replace('<budget>1000.00</budget>', '<budget>1000.001</budget>'))
    admin = users['ca_shuyang']
    total, errs = B.errors(L.problem(B.post(admin, body), 422))
    assert total >= 1 and errs[0]['record'] == 2, errs
    healthy(admin)
    B.nothing_stored(env, batch_id, tag)


def test_ref_taken_by_a_project_outside_the_callers_sight(env, users, tmp_path):
    """A classified project stored with ref R by a cleared reviewer: a county
    admin without the clearance cannot see it, and a batch of theirs reusing
    R is refused with 409 batch_conflict all the same (the unique index
    finds what the policy hides), without naming the hidden project; nothing
    of that batch is stored."""
    tag = B.new_tag()
    batch_id, body = hand_batch(tag, 2040, [('a', True)])
    B.result(B.post(users['rev_city'], body), 201)
    again = body.replace(f'id="{batch_id}"', f'id="{batch_id}x"').replace(
        'classified="true"', 'classified="false"')
    root = L.problem(B.post(users['ca_shuyang'], again), 409, 'batch_conflict')
    assert 'outside what you may see' in L.problem_detail(root), L.problem_detail(root)
    assert B.rows_tagged(env, tag) == 1 and B.batch_rows(env, batch_id + 'x') == 0
    L.problem(users['rev_city'].get(f'{B.BATCHES}/{batch_id}x', params={'region': REGION}), 404)


def sanitized(env):
    """Whether itpmd runs with AddressSanitizer (its allocator, not malloc's)."""
    maps = Path(f'/proc/{h.master_pid(env)}/maps').read_text(errors='replace')
    return 'libasan' in maps


def rss_kib(pid):
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    return 0


def test_one_record_larger_than_its_bound_is_413_and_the_memory_goes_back(env, users,
                                                                          tmp_path):
    """A record of several megabytes (thousands of data resources) is not
    built whole: 413 naming the record once it passes 2 MiB, nothing stored,
    and no worker holds on to the memory afterwards."""
    tag = B.new_tag()
    batch_id, body = hand_batch(tag, 2040, [('a', False), ('b', False)])
    resources = ''.join(
        f'<resource code="BIG-{i:06d}" source="sensor" share="open" frequency="daily" '
        f'aggregated="false"><name>数据资源 {i}</name></resource>' for i in range(40000))
    second = body.index(f'<project ref="b-{tag}">')
    end = body.index('</project>', second)
    body = (body[:end] + f'<dataResources>{resources}</dataResources>' + body[end:])
    assert len(body.encode()) > 4 * 1024 * 1024
    admin = users['ca_shuyang']
    before = {pid: rss_kib(pid) for pid in h.workers(env)}
    r = B.post(admin, body)
    root = L.problem(r, 413)
    assert 'record 2' in root.findtext(L.P + 'detail'), describe(r)
    B.nothing_stored(env, batch_id, tag)
    healthy(admin)
    if sanitized(env):
        return  # AddressSanitizer's allocator keeps freed memory in quarantine
    after = {pid: rss_kib(pid) for pid in h.workers(env)}
    grown = {pid: after[pid] - before[pid] for pid in after if pid in before}
    assert max(grown.values(), default=0) < 32 * 1024, f'worker RSS grew (KiB): {grown}'


def test_batch_written_without_a_namespace_is_read_as_the_apis(env, users, tmp_path):
    """SPEC section 5 writes the root as <batch id="…" region="…" kind="…">:
    without xmlns the document is read as urn:itpm:1's (as every request
    body is), stored, and the same id again is the same result; with
    xmlns="" of its own it is another document (422)."""
    tag = B.new_tag()
    batch_id, body = hand_batch(tag, 2040, [('a', False), ('b', False)])
    plain = body.replace(f' xmlns="{L.NS}"', '', 1)
    assert 'xmlns' not in plain
    admin = users['ca_shuyang']
    res = B.result(B.post(admin, plain), 201)
    assert [c['stage'] for c in res.codes] == ['draft', 'draft'], res
    assert B.result(B.post(admin, plain), 201).same_as(res)
    tag2 = B.new_tag()
    batch_id2, body2 = hand_batch(tag2, 2040, [('a', False)])
    refused = body2.replace(f' xmlns="{L.NS}"', ' xmlns=""', 1)
    L.problem(B.post(admin, refused), 422)
    B.nothing_stored(env, batch_id2, tag2)
