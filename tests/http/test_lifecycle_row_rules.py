"""The rules of a project row and of the audit chain's hashes hold in the
database, whoever writes (sql/011_row_rules.sql): on an insert, on an update
that sets the columns a rule is about, for the superuser too. A transition,
which sets none of them, is not slowed by them; that it is not weakened
either is what every other lifecycle test shows. And the actions whose gate
project_transition() runs are exactly the gated ones
(sql/012_transition_fast_path.sql): an action marked otherwise would skip
its gate."""

import pytest

import itpm_http as h

YEAR = 2002
REGION = '321322'
UNIT = '321322-DATA'

# (column values for an insert or an update, the rule that refuses them)
BROKEN = [
    ({'code': "'321322-2002-0001'"}, 'projects_code_check'),
    ({'code': "'321322-2002-00098'"}, 'projects_code_parts'),
    ({'code': "'321322-2002-00000'", 'serial': '0'}, 'projects_serial_check'),
    ({'code': "'321322-1999-00001'", 'year': '1999'}, 'projects_year_check'),
    ({'title': "''"}, 'projects_title_check'),
    ({'title': "repeat('长', 201)"}, 'projects_title_check'),
    ({'budget_requested_fen': '-1'}, 'projects_budget_requested_fen_check'),
    ({'budget_requested_fen': '100000000000001'}, 'projects_budget_requested_fen_check'),
    ({'funding': "'loan'"}, 'projects_funding_check'),
    ({'construction_mode': "'outsourced'"}, 'projects_construction_mode_check'),
    ({'schedule_start': "'2027-05-01'", 'schedule_end': "'2027-04-30'"}, 'schedule_order'),
    ({'batch_id': "(SELECT id FROM batches WHERE batch_id = 'row-rules')", 'batch_record': '0'},
     'projects_batch_record_check'),
    ({'batch_record': '3'}, 'batch_record_with_batch'),
    ({'source_ref': "'-bad'"}, 'projects_source_ref_check'),
    ({'version': '0'}, 'projects_version_check'),
    ({'list_year': '2101'}, 'projects_list_year_check'),
    ({'budget_approved_fen': '2'}, 'projects_check'),
]
IDS = [', '.join(f'{k}={v}' for k, v in values.items()) for values, _ in BROKEN]

GATED = {('draft', 'submit'), ('endorsement', 'endorse'), ('prereview', 'pass'),
         ('budget_review', 'pass'), ('pre_implementation', 'pass'),
         ('trial_operation', 'request_acceptance'), ('acceptance', 'accept'),
         ('filing', 'complete_filing'), ('operation', 'force_exit')}


def superuser(env, sql):
    return h.psql_run(env, sql, user='postgres')


@pytest.fixture(scope='module')
def row(env):
    """One project and one batch, inserted by the superuser past every policy."""
    code = f'{REGION}-{YEAR}-00001'
    h.psql(env, f"""
        INSERT INTO batches (region, batch_id, kind, sha256, records, created, bytes, submitter)
        VALUES ('{REGION}', 'row-rules', 'projects', repeat('0', 64), 0, 0, 0, 'tests')
        ON CONFLICT (region, batch_id) DO NOTHING;
        INSERT INTO projects (code, region, unit, year, serial, title, category,
                              budget_requested_fen)
        VALUES ('{code}', '{REGION}', '{UNIT}', {YEAR}, 1, 'row rules', 'new', 1)
        ON CONFLICT (code) DO NOTHING""", user='postgres')
    yield code
    h.psql(env, f"DELETE FROM projects WHERE code = '{code}';"
                "DELETE FROM batches WHERE batch_id = 'row-rules'", user='postgres')


@pytest.mark.parametrize('broken, rule', BROKEN, ids=IDS)
def test_an_update_that_breaks_a_rule_is_refused_with_its_name(env, row, broken, rule):
    assignment = ', '.join(f'{k} = {v}' for k, v in broken.items())
    r = superuser(env, f"UPDATE projects SET {assignment} WHERE code = '{row}'")
    assert r.returncode != 0 and 'check constraint' in r.stderr and rule in r.stderr, \
        (r.stdout, r.stderr)
    assert h.psql(env, f"SELECT version, title FROM projects WHERE code = '{row}'",
                  user='postgres') == '1|row rules'


@pytest.mark.parametrize('broken, rule', BROKEN, ids=IDS)
def test_an_insert_that_breaks_a_rule_is_refused_with_its_name(env, row, broken, rule):
    values = {'code': f"'{REGION}-{YEAR}-00001'", 'region': f"'{REGION}'", 'unit': f"'{UNIT}'",
              'year': str(YEAR), 'serial': '1', 'title': "'x'", 'category': "'new'",
              'budget_requested_fen': '1'}
    if 'code' not in broken:
        values.update(code=f"'{REGION}-{YEAR}-00096'", serial='96')
    values.update(broken)
    r = superuser(env, 'BEGIN;\nINSERT INTO projects (' + ', '.join(values) + ') VALUES ('
                  + ', '.join(values.values()) + ');\nROLLBACK;\n')
    assert r.returncode != 0 and rule in r.stderr, (r.stdout, r.stderr)


def test_a_row_that_keeps_the_rules_is_written(env):
    code = f'{REGION}-{YEAR}-00097'
    r = superuser(env, f"""BEGIN;
        INSERT INTO projects (code, region, unit, year, serial, title, category,
                              budget_requested_fen, schedule_start, schedule_end, source_ref)
        VALUES ('{code}', '{REGION}', '{UNIT}', {YEAR}, 97, repeat('长', 200), 'new',
                100000000000000, '2027-01-01', '2027-01-01', 'A1._:-z');
        UPDATE projects SET title = 't', funding = 'mixed', construction_mode = 'self-built'
         WHERE code = '{code}';
        ROLLBACK;""")
    assert r.returncode == 0, r.stderr


def test_an_audit_hash_of_the_wrong_length_is_refused(env):
    r = superuser(env, """BEGIN;
        INSERT INTO audit_log (id, at, actor, role, client_addr, request_id, action, object,
                               summary, prev_hash, hash)
        VALUES (nextval('audit_log_id_seq'), now(), 'x', 'x', 'x', 'x', 'x', 'x', 'x',
                decode(repeat('00', 32), 'hex'), decode('00', 'hex'));
        ROLLBACK;""")
    assert r.returncode != 0 and 'sha256_digest' in r.stderr, (r.stdout, r.stderr)


def test_the_gated_actions_are_those_with_a_gate(env):
    rows = h.psql(env, 'SELECT from_stage, action, gated FROM lifecycle_actions')
    marked = {tuple(line.split('|')[:2]) for line in rows.splitlines() if line.endswith('|t')}
    assert marked == GATED, marked
