"""Helpers of the bulk batch tests (tests/http/test_batches.py): batch files
written by bench/gen_batch.py, uploads, the batchResult and problem
documents as dicts, and what PostgreSQL holds (through psql as the superuser).

Requests go through lifecycle_api.User, which validates every XML reply
against xsd/ (itpm.xsd, problem.xsd).
"""

import datetime
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import itpm_http as h
import lifecycle_api as L
from lifecycle_api import N, P, describe

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / 'bench' / 'gen_batch.py'
BATCHES = '/api/v1/batches'
BIG_TIMEOUT = (10, 600)


def new_id(prefix='bt'):
    return f'{prefix}-{uuid.uuid4().hex[:16]}'


def new_tag():
    """A word put in every title of one batch, to find its rows with psql."""
    return 'T' + uuid.uuid4().hex[:12]


def generate(path, records, **opts):
    """Run bench/gen_batch.py --out path --records N with the options
    (id, region, unit, kind, submit, urgent, year_start, per_year,
    ref_prefix, tag, invalid=[...], no_ref, csv); return its JSON report
    with 'path' added."""
    cmd = [sys.executable, str(GEN), '--out', str(path), '--records', str(records)]
    for k, v in opts.items():
        if v is None or v is False:
            continue
        flag = '--' + k.replace('_', '-')
        if k == 'invalid':
            for spec in v:
                cmd += ['--invalid', spec]
        elif v is True:
            cmd.append(flag)
        else:
            cmd += [flag, str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'{" ".join(cmd)}: {r.stderr}'
    info = json.loads(r.stdout.strip().splitlines()[-1])
    info['path'] = Path(path)
    return info


def body_of(info):
    return info['path'].read_bytes()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def post(user, body, timeout=L.TIMEOUT, headers=None, content_type='application/xml'):
    """POST /api/v1/batches: body is bytes, str, or a Path (streamed from disk)."""
    hd = {'Content-Type': content_type}
    hd.update(headers or {})
    if isinstance(body, Path):
        with open(body, 'rb') as f:
            return user.post(BATCHES, data=f, headers=hd, timeout=timeout)
    if isinstance(body, str):
        body = body.encode()
    return user.post(BATCHES, data=body, headers=hd, timeout=timeout)


class Result:
    """A <batchResult>: attrs (dict) and codes [dict(record, ref, stage, code)]."""

    def __init__(self, root):
        assert root is not None and root.tag == N + 'batchResult', root
        self.attrs = dict(root.attrib)
        self.codes = [{'record': int(c.get('record')), 'ref': c.get('ref'),
                       'stage': c.get('stage'), 'code': (c.text or '').strip()}
                      for c in root.findall(N + 'code')]

    def __getitem__(self, k):
        return self.attrs[k]

    def same_as(self, other):
        return self.attrs == other.attrs and self.codes == other.codes

    def __repr__(self):
        return f'Result({self.attrs}, {len(self.codes)} codes)'


def result(resp, status=201):
    assert resp.status_code == status, describe(resp)
    assert L.media_type(resp) == 'application/xml', describe(resp)
    return Result(resp.doc)


def errors(root):
    """The <errors> of a problem: (total, [dict(record, line, column, message)])."""
    errs = root.find(P + 'errors')
    assert errs is not None, 'the problem lists no <errors>'
    out = []
    for e in errs.findall(P + 'error'):
        out.append({k: (int(e.get(k)) if e.get(k) else None)
                    for k in ('record', 'line', 'column')})
        out[-1]['message'] = (e.findtext(P + 'message') or '').strip()
    return int(errs.get('total')), out


def check_code(code, region, year):
    r, y, s = code.split('-')
    assert r == region and int(y) == year and 1 <= int(s) <= 99999, (code, region, year)
    return int(s)


def check_codes(res, n, region, stage, year_start=2031, per_year=90000, refs=True,
                ref_prefix='r'):
    """Every record has a code, in record order, in its region and year;
    serials are consecutive per year in record order."""
    assert [c['record'] for c in res.codes] == list(range(1, n + 1)), res
    last = {}
    for c in res.codes:
        i = c['record']
        year = year_start + (i - 1) // per_year
        s = check_code(c['code'], region, year)
        if year in last:
            assert s == last[year] + 1, f'record {i}: {c["code"]} after serial {last[year]}'
        last[year] = s
        assert c['stage'] == stage, c
        if refs:
            assert c['ref'] == f'{ref_prefix}{i}', c
    assert len({c['code'] for c in res.codes}) == n


def check_summary(res, batch_id, region, kind, n, body, submitter, submitted=False):
    a = res.attrs
    assert a['id'] == batch_id and a['region'] == region and a['kind'] == kind, a
    assert a['submitted'] in (('true', '1') if submitted else ('false', '0')), a
    assert int(a['records']) == n and int(a['created']) == n, a
    assert a['sha256'] == sha256(body), a
    assert a['submitter'] == submitter, a
    received = datetime.datetime.fromisoformat(a['received'].replace('Z', '+00:00'))
    assert received.tzinfo is not None, a
    age = datetime.datetime.now(datetime.timezone.utc) - received
    assert datetime.timedelta(minutes=-5) < age < datetime.timedelta(hours=1), a


# --------------------------------------------------------------------------
# PostgreSQL, as the superuser (row-level security is forced even for the
# owner, as test_identity_scope.py shows)

def su(env, sql):
    return h.psql(env, sql, user='postgres')


def sql_text(s):
    return "'" + s.replace("'", "''") + "'"


def rows_tagged(env, tag):
    """Projects whose title carries the tag (every record of one batch)."""
    return int(su(env, f"SELECT count(*) FROM projects WHERE title LIKE "
                           f"{sql_text('% ' + tag)}"))


def stages_tagged(env, tag):
    """{(region, stage, category): count} of the tagged projects."""
    out = su(env, f"SELECT region, stage, category, count(*) FROM projects WHERE "
                      f"title LIKE {sql_text('% ' + tag)} GROUP BY 1, 2, 3")
    res = {}
    for line in out.splitlines():
        region, stage, category, count = line.split('|')
        res[(region, stage, category)] = int(count)
    return res


def resources_tagged(env, tag):
    return int(su(env, f"SELECT count(*) FROM data_resources d JOIN projects p "
                           f"ON p.id = d.project_id WHERE p.title LIKE "
                           f"{sql_text('% ' + tag)}"))


def resources_text_behind(env, tag):
    """Projects of the batch whose text of their resources (projects.resources,
    what a read answers from) is not their data_resources rows."""
    return int(su(env, f"SELECT count(*) FROM projects p WHERE p.title LIKE "
                       f"{sql_text('% ' + tag)} "
                       f"AND p.resources IS DISTINCT FROM project_resources_text(p.id)"))


def batch_rows(env, batch_id, region=None):
    """Rows of table `batches` with this id (and region)."""
    where = f'batch_id = {sql_text(batch_id)}'
    if region:
        where += f' AND region = {sql_text(region)}'
    return int(su(env, f'SELECT count(*) FROM batches WHERE {where}'))


def nothing_stored(env, batch_id, tag):
    """No project of the batch and no batch record."""
    assert rows_tagged(env, tag) == 0, f'projects of refused batch {batch_id} were stored'
    assert batch_rows(env, batch_id) == 0, f'refused batch {batch_id} has a batch record'


# --------------------------------------------------------------------------
# reading back

def audit_of(auditor, region, batch_id):
    """Audit records of object batch:{region}/{id}."""
    r = auditor.get('/api/v1/audit', params={'object': f'batch:{region}/{batch_id}',
                                             'limit': 1000})
    assert r.status_code == 200, describe(r)
    out = []
    for rec in r.doc.iter(N + 'record'):
        d = {c.tag[len(N):]: (c.text or '') for c in rec}
        d['id'] = int(rec.get('id'))
        out.append(d)
    return out


def list_batches(user, **params):
    """Every <batch> summary of GET /api/v1/batches (paged); (list, total)."""
    out, offset, total = [], 0, None
    for _ in range(1000):
        r = user.get(BATCHES, params=dict(params, offset=offset, limit=100))
        assert r.status_code == 200, describe(r)
        root = r.doc
        assert root.tag == N + 'batches', describe(r)
        total = int(root.get('total'))
        page = [dict(b.attrib) for b in root.findall(N + 'batch')]
        out += page
        offset += len(page)
        if not page or offset >= total:
            break
    return out, total


def check_project(user, code, i, tag, stage, region, unit, year, category):
    """GET the project of record i as `user`: 200 with what the generator
    wrote for record i (title, unit, year, category, budget, resource)."""
    r = user.get(L.path(code))
    assert r.status_code == 200, f'record {i}, {user.uid or "bearer"}: {describe(r)}'
    p = L.Project(r)
    assert p.code == code and p.stage == stage, (i, p)
    title = p.text('title')
    assert title.endswith(f'第{i}号 {tag}'), (i, title)
    assert p.text('unit') == unit and int(p.text('year')) == year, (i, describe(r))
    assert p.text('region') == region and p.text('category') == category, (i, describe(r))
    fen = 10_000_000 + (i * 7919) % 39_000_000
    assert L.fen_of(p.text('budget')) == fen, (i, p.text('budget'))
    res = p.doc.find(N + 'dataResources')
    assert res is not None, f'record {i}: no dataResources: {describe(r)}'
    assert [x.get('code') for x in res.findall(N + 'resource')] == [f'DR{i}'], describe(r)
    return p


# --------------------------------------------------------------------------
# processes

class BatchesLock:
    """Context manager: a background psql (as the owner) holds ACCESS
    EXCLUSIVE on table `batches` for `seconds`, so a batch waits inside the
    database; leaving ends that session at once."""

    def __init__(self, env, seconds):
        self.env = env
        self.seconds = seconds
        self.app_name = 'itpm-test-batches-lock-' + uuid.uuid4().hex[:8]
        self.proc = None

    def __enter__(self):
        e = self.env
        sql = (f'BEGIN; LOCK TABLE batches IN ACCESS EXCLUSIVE MODE; '
               f'SELECT pg_sleep({float(self.seconds)}); COMMIT;')
        self.proc = subprocess.Popen(
            ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', e['ITPM_PG_HOST'],
             '-p', e['ITPM_PG_PORT'], '-U', e.get('ITPM_PG_OWNER', 'itpm_owner'),
             '-d', e.get('ITPM_PG_DB', 'itpm'), '-c', sql],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PGAPPNAME=self.app_name, PGCONNECT_TIMEOUT='5'))
        try:
            def held():
                if self.proc.poll() is not None:
                    raise AssertionError(f'lock session ended: {self.proc.stderr.read()}')
                return su(self.env, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                                    "ON a.pid = l.pid WHERE l.granted AND l.mode = "
                                    "'AccessExclusiveLock' AND l.relation = 'batches'::regclass "
                                    f"AND a.application_name = '{self.app_name}'") == '1'
            h.wait_until(held, 10, 'the lock on batches is held')
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            su(self.env, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         f"WHERE application_name = '{self.app_name}'")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        self.proc = None

    def __exit__(self, *exc):
        self.release()
        return False
