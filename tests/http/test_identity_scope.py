"""Scope in the database (SPEC section 3: row-level security as well as the
code). There is no project API yet, so this is shown where a forgotten
filter would leak: an unfiltered `SELECT ... FROM projects` run as the
daemon's own role, itpm_app, after itpm_set_context() for a caller.

Test projects are inserted as the PostgreSQL superuser (who bypasses row
security) in year 2001, and removed again afterwards."""

import pytest

import itpm_http as h

YEAR = 2001
# code serial -> (region, unit, classified)
PROJECTS = {
    1: ('321322', '321322-DATA', False),
    2: ('321322', '321322-AGRI', False),
    3: ('321322', '321322-AGRI', True),
    4: ('321323', '321323-EDU', False),
    5: ('321323', '321323-DATA', False),
    6: ('321300', '321300-PSB', False),
    7: ('321300', '321300-PSB', True),
}


def code(serial):
    region = PROJECTS[serial][0]
    return f'{region}-{YEAR}-{serial:05d}'


ALL = {code(s): v for s, v in PROJECTS.items()}


def superuser(env, sql):
    return h.psql(env, sql, user='postgres')


@pytest.fixture(scope='module')
def projects(env):
    values = ',\n'.join(
        f"('{code(s)}', '{region}', '{unit}', {YEAR}, {s}, '范围测试项目 {s}', 'new', "
        f"{'true' if classified else 'false'}, 100000)"
        for s, (region, unit, classified) in PROJECTS.items())
    cleanup = f"DELETE FROM projects WHERE year = {YEAR} AND code LIKE '%-{YEAR}-%'"
    superuser(env, cleanup)
    superuser(env, 'INSERT INTO projects (code, region, unit, year, serial, title, category, '
                   f'classified, budget_requested_fen) VALUES {values}')
    yield ALL
    superuser(env, cleanup)


def as_app(env, user, unit, region, roles, classified,
           query='SELECT code, region, unit, classified FROM projects'):
    """Rows of `query` (unfiltered by default) as itpm_app inside a
    transaction with the caller's context, as tuples of strings."""
    sql = (f"BEGIN;\nSELECT itpm_set_context('{user}', '{unit}', '{region}', '{roles}', "
           f"{'true' if classified else 'false'});\n{query};\nCOMMIT;\n")
    out = h.psql(env, sql, user=env.get('ITPM_PG_APP', 'itpm_app'))
    return {tuple(l.strip().split('|')) for l in out.splitlines() if l.strip()}


def ours(rows):
    """The codes of this file's projects among rows."""
    return {r[0] for r in rows if f'-{YEAR}-' in r[0]}


def leaked(rows, allowed):
    """Rows outside the caller's scope, whoever made them: allowed(code,
    region, unit, classified) says what the caller may see."""
    return {r for r in rows if not allowed(*r)}


def test_county_admin_sees_only_their_county(env, projects):
    rows = as_app(env, 'ca_shuyang', '321322-DATA', '321322', 'county_admin', False)
    assert not leaked(rows, lambda c, r, u, cl: r == '321322' and cl == 'f'), rows
    assert ours(rows) == {code(1), code(2)}


def test_county_admin_cannot_read_another_county_by_code(env, projects):
    rows = as_app(env, 'ca_siyang', '321323-DATA', '321323', 'county_admin', False,
                  f"SELECT code FROM projects WHERE code = '{code(1)}' OR id > 0 AND "
                  f"region = '321322'")
    assert rows == set(), rows
    rows = as_app(env, 'ca_siyang', '321323-DATA', '321323', 'county_admin', False)
    assert ours(rows) == {code(4), code(5)}


def test_submitter_sees_only_their_unit(env, projects):
    rows = as_app(env, 'sub_agri', '321322-AGRI', '321322', 'submitter', False)
    assert ours(rows) == {code(2)}, rows
    assert not leaked(rows, lambda c, r, u, cl: u == '321322-AGRI' and cl == 'f'), rows
    rows = as_app(env, 'cdo_edu_sy', '321323-EDU', '321323', 'cdo', False)
    assert ours(rows) == {code(4)}, rows
    assert not leaked(rows, lambda c, r, u, cl: u == '321323-EDU' and cl == 'f'), rows


def test_county_reviewer_sees_their_county(env, projects):
    rows = as_app(env, 'rev_shuyang', '321322-DATA', '321322', 'reviewer', False)
    assert ours(rows) == {code(1), code(2)}, rows
    assert not leaked(rows, lambda c, r, u, cl: r == '321322' and cl == 'f'), rows


def test_city_reviewer_sees_all_regions(env, projects):
    rows = as_app(env, 'rev_city2', '321300-DATA', '321300', 'reviewer', False)
    assert ours(rows) == {c for c, v in ALL.items() if not v[2]}, rows
    assert not leaked(rows, lambda c, r, u, cl: cl == 'f'), rows
    rows = as_app(env, 'dir_city', '321300-DATA', '321300', 'director', True)
    assert ours(rows) == set(ALL), rows


def test_classified_project_needs_the_clearance(env, projects):
    rows = as_app(env, 'sub_agri', '321322-AGRI', '321322', 'submitter', True)
    assert ours(rows) == {code(2), code(3)}, rows
    rows = as_app(env, 'ca_shuyang', '321322-DATA', '321322', 'county_admin', True)
    assert ours(rows) == {code(1), code(2), code(3)}, rows
    rows = as_app(env, 'auditor1', '321300-DATA', '321300', 'auditor', False)
    assert ours(rows) == {c for c, v in ALL.items() if not v[2]}, rows
    assert not leaked(rows, lambda c, r, u, cl: cl == 'f'), rows


@pytest.mark.parametrize('roles', ['expert', 'evaluator', 'joint_reviewer', ''])
def test_roles_without_a_scope_see_nothing_yet(env, projects, roles):
    """Experts, evaluators and joint reviewers see assigned projects only;
    none of this file's projects is assigned to anyone (other tests may
    assign theirs)."""
    rows = as_app(env, 'expert7', '321322-DATA', '321322', roles, True)
    assert ours(rows) == set(), rows
    if roles == '':
        assert rows == set(), rows


def test_no_context_sees_nothing(env, projects):
    app = env.get('ITPM_PG_APP', 'itpm_app')
    assert h.psql(env, 'SELECT code FROM projects', user=app) == ''
    # The context lasts one transaction: nothing after COMMIT.
    out = h.psql(env, "BEGIN;\nSELECT itpm_set_context('auditor1', '321300-DATA', '321300', "
                      "'auditor', true);\nCOMMIT;\nSELECT code FROM projects;\n", user=app)
    assert out.strip() == '', out


def test_writes_stay_in_scope(env, projects):
    app = env.get('ITPM_PG_APP', 'itpm_app')
    ctx = ("SELECT itpm_set_context('ca_shuyang', '321322-DATA', '321322', "
           "'county_admin', false);\n")
    out = h.psql(env, f"BEGIN;\n{ctx}UPDATE projects SET title = 'x' WHERE code = '{code(4)}' "
                      "RETURNING code;\nROLLBACK;\n", user=app)
    assert out.strip() == '', f'county admin of 321322 updated {code(4)}: {out}'
    r = h.psql_run(env, f"BEGIN;\n{ctx}INSERT INTO projects (code, region, unit, year, serial, "
                        f"title, category, budget_requested_fen) VALUES ('321323-{YEAR}-00099', "
                        f"'321323', '321323-EDU', {YEAR}, 99, 'x', 'new', 1);\nROLLBACK;\n",
                   user=app)
    assert r.returncode != 0 and 'row-level security' in r.stderr, \
        f'insert into another county: rc {r.returncode}: {r.stdout} {r.stderr}'
    r = h.psql_run(env, "BEGIN;\nSELECT itpm_set_context('auditor1', '321300-DATA', '321300', "
                        f"'auditor,admin', true);\nUPDATE projects SET title = 'x' WHERE code = "
                        f"'{code(6)}' RETURNING code;\nROLLBACK;\n", user=app)
    assert r.returncode == 0 and r.stdout.strip() == '', \
        f'the read-only roles changed a project: {r.stdout} {r.stderr}'


# Callers of every kind of scope, with and without the clearance.
CALLERS = [
    ('ca_shuyang', '321322-DATA', '321322', 'county_admin', False),
    ('sub_agri', '321322-AGRI', '321322', 'submitter', True),
    ('rev_shuyang', '321322-DATA', '321322', 'reviewer', False),
    ('rev_city2', '321300-DATA', '321300', 'reviewer', False),
    ('dir_city', '321300-DATA', '321300', 'director', True),
    ('auditor1', '321300-DATA', '321300', 'auditor', False),
    ('expert7', '321322-DATA', '321322', 'expert', True),
]


@pytest.fixture(scope='module')
def resources(env, projects):
    """Two data resources on each of this file's projects."""
    mine = f"SELECT id FROM projects WHERE year = {YEAR} AND code LIKE '%-{YEAR}-%'"
    superuser(env, f"INSERT INTO data_resources (project_id, code, name, source, share, "
                   f"frequency) SELECT p.id, r.c || '-' || p.serial, '范围测试资源', 'dept', "
                   f"'none', 'daily' FROM projects p, (VALUES ('RA'), ('RB')) r (c) "
                   f"WHERE p.id IN ({mine})")
    ids = superuser(env, f"SELECT id, code FROM projects WHERE id IN ({mine})")
    yield {i: c for i, c in (l.split('|') for l in ids.split())}
    superuser(env, f"DELETE FROM data_resources WHERE project_id IN ({mine})")


@pytest.mark.parametrize('caller', CALLERS, ids=[c[0] + '-' + c[3] for c in CALLERS])
def test_project_documents_and_resources_keep_the_project_scope(env, resources, caller):
    """The project document (the view the daemon reads a project through,
    whose resources are a text the triggers on data_resources keep in the
    project's row, here written by the superuser) and data_resources itself
    show exactly the resources of the projects the caller sees."""
    visible = ours(as_app(env, *caller))
    docs = as_app(env, *caller, query="SELECT d.code, split_part(r, chr(31), 1) "
                                      "FROM project_documents d, "
                                      "unnest(string_to_array(d.resources, chr(30))) r")
    assert ours(docs) == visible, docs
    assert {(c, r) for c, r in docs if c in visible} == \
        {(c, f'{p}-{int(c[-5:])}') for c in visible for p in ('RA', 'RB')}, docs
    rows = as_app(env, *caller, query='SELECT project_id FROM data_resources')
    assert {resources[i] for (i,) in rows if i in resources} == visible, rows


@pytest.mark.parametrize('code, region, year, serial', [
    (f'321322-{YEAR}-00098', '321322', YEAR, 97),      # serial differs
    (f'321322-{YEAR}-00098', '321323', YEAR, 98),      # region differs
    (f'321322-{YEAR + 1}-00098', '321322', YEAR, 98),  # year differs
])
def test_project_code_must_spell_region_year_serial(env, projects, code, region, year, serial):
    """The database keeps a project's code equal to its region, year and
    serial, whoever writes the row (here the superuser, past every policy)."""
    unit = f'{region}-DATA'
    r = h.psql_run(env, 'BEGIN;\nINSERT INTO projects (code, region, unit, year, serial, title, '
                        f"category, budget_requested_fen) VALUES ('{code}', '{region}', '{unit}', "
                        f"{year}, {serial}, 'x', 'new', 1);\nROLLBACK;\n", user='postgres')
    assert r.returncode != 0 and 'projects_code_parts' in r.stderr, (r.stdout, r.stderr)


# A transition runs as itpm_transition (sql/022_transition_role.sql), whose
# own policies let it read every project and skip the check of the new row:
# safe only while the owner does not inherit them, the role may change only
# what a transition writes, and the checks it calls run as the owner.

def test_the_owner_does_not_inherit_the_transition_role(env, projects):
    # Forced row security holds the owner to the policies: with no caller's
    # context it sees nothing (the transition role's own read policy would
    # let it see every project).
    assert h.psql(env, f"SELECT count(*) FROM projects WHERE year = {YEAR}") == '0'
    assert superuser(env, f"SELECT count(*) FROM projects WHERE year = {YEAR}") == \
        str(len(PROJECTS))


@pytest.mark.parametrize('column', ['region', 'unit', 'classified', 'budget_requested_fen',
                                    'cross_department', 'code'])
def test_the_transition_role_cannot_change_what_scope_reads(env, projects, column):
    r = h.psql_run(env, f"BEGIN;\nSET LOCAL ROLE itpm_transition;\nUPDATE projects SET {column} = "
                        f"{column} WHERE code = '{code(4)}';\nROLLBACK;\n")
    assert r.returncode != 0 and 'permission denied for table projects' in r.stderr, \
        (r.stdout, r.stderr)


@pytest.mark.parametrize('caller, serial, found', [
    # A county admin of 321322: another county's project is not found, its
    # own county's is, a classified one only with the clearance.
    (('ca_shuyang', '321322-DATA', '321322', 'county_admin', 'false'), 4, False),
    (('ca_shuyang', '321322-DATA', '321322', 'county_admin', 'false'), 1, True),
    (('ca_shuyang', '321322-DATA', '321322', 'county_admin', 'false'), 3, False),
    (('ca_shuyang', '321322-DATA', '321322', 'county_admin', 'true'), 3, True),
    # Those who read everything and write nothing.
    (('auditor1', '321300-DATA', '321300', 'auditor', 'true'), 6, False),
    (('admin1', '321300-DATA', '321300', 'admin', 'true'), 6, False),
])
def test_the_transition_role_writes_only_in_the_callers_scope(env, projects, caller, serial,
                                                              found):
    user, unit, region, roles, cleared = caller
    ctx = (f"SELECT itpm_set_context('{user}', '{unit}', '{region}', '{roles}', {cleared});\n"
           "SET LOCAL ROLE itpm_transition;\n")
    out = h.psql(env, f"BEGIN;\n{ctx}UPDATE projects SET list_year = NULL WHERE code = "
                      f"'{code(serial)}' RETURNING code;\nROLLBACK;\n")
    assert out.strip() == (code(serial) if found else ''), out


def test_a_transition_out_of_scope_is_not_found_not_refused_by_stage(env, projects):
    # The checks run when the update finds nothing; run as the transition
    # role they would see another county's project and name its stage.
    app = env.get('ITPM_PG_APP', 'itpm_app')
    # Without a version (no If-Match) too: 404 comes before 428.
    for serial, version, rule in ((4, '1', 'not_found'), (4, 'NULL', 'not_found'),
                                  (1, '1', 'wrong_stage')):
        r = h.psql_run(env, "BEGIN;\nSELECT itpm_set_context('rev_shuyang', '321322-DATA', "
                            "'321322', 'reviewer', false);\nSELECT code FROM project_transition("
                            f"'{code(serial)}', 'pass', {version}, '', NULL, NULL, '127.0.0.1', "
                            "'scope-test');\nROLLBACK;\n", user=app)
        assert r.returncode != 0 and rule in r.stderr, (serial, version, r.stdout, r.stderr)


def test_the_transition_runs_as_its_role_and_its_checks_as_the_owner(env):
    # What a later migration restating either function must keep (022).
    rows = superuser(env, "SELECT proname, pg_get_userbyid(proowner), prosecdef FROM pg_proc "
                          "WHERE proname IN ('project_transition', 'project_transition_check') "
                          "ORDER BY proname")
    assert rows.splitlines() == ['project_transition|itpm_transition|t',
                                 f"project_transition_check|{env.get('ITPM_PG_OWNER', 'itpm_owner')}|t"]


# A joint reviewer sees the projects that need their department's sign-off
# (SPEC section 3): the read policy's scope (sql/020_review_scope.sql, 023)
# must agree row by row with the rule itself, project_required_signoffs(),
# whether every region follows the city's rules (one array of amounts for
# all) or a county has thresholds or a list of its own (a lookup by region).
SIGNOFF_YEAR = 2003
SIGNOFF_ROWS = [(region, unit, budget, cross, classified)
                for region, unit in (('321300', '321300-PSB'), ('321322', '321322-AGRI'))
                for budget in (0, 100000000, 499999999, 500000000, 2000000000)
                for cross in (False, True) for classified in (False, True)]
COUNTY_RULES = {
    'city': '',
    'county thresholds': "INSERT INTO rules_thresholds SELECT '321322', expert_amount_fen, "
                         "expert_count, 100000000, joint_expert_count, expert_min_mean, "
                         "change_director_pct, trial_days, filing_overdue_days, "
                         "monitoring_min_availability, monitoring_abnormal_months "
                         "FROM rules_thresholds WHERE region = '321300';\n",
    'county list': "INSERT INTO rules_own VALUES ('321322', 'signoffs', 'joint');\n"
                   "INSERT INTO rules_signoff_units VALUES ('321322', 'joint', '321300-DRC');\n",
}


@pytest.fixture(scope='module')
def signoff_projects(env):
    values = ',\n'.join(
        f"('{region}-{SIGNOFF_YEAR}-{i:05d}', '{region}', '{unit}', {SIGNOFF_YEAR}, {i}, "
        f"'会签范围 {i}', 'new', {str(classified).lower()}, {str(cross).lower()}, {budget})"
        for i, (region, unit, budget, cross, classified) in enumerate(SIGNOFF_ROWS, 1))
    cleanup = f"DELETE FROM projects WHERE year = {SIGNOFF_YEAR}"
    superuser(env, cleanup)
    superuser(env, 'INSERT INTO projects (code, region, unit, year, serial, title, category, '
                   f'classified, cross_department, budget_requested_fen) VALUES {values}')
    yield
    superuser(env, cleanup)


@pytest.mark.parametrize('rules', list(COUNTY_RULES))
@pytest.mark.parametrize('unit', ['321300-DRC', '321300-FIN', '321300-SEC', '321300-PSB'])
def test_a_joint_reviewers_scope_is_the_sign_off_rule(env, signoff_projects, unit, rules):
    setup = COUNTY_RULES[rules]
    ctx = (f"SET LOCAL ROLE {env.get('ITPM_PG_APP', 'itpm_app')};\n"
           f"SELECT itpm_set_context('jr-test', '{unit}', '321300', 'joint_reviewer', true);\n")
    seen = superuser(env, f"BEGIN;\n{setup}{ctx}SELECT itpm_signoff_uniform() IS NOT NULL;\n"
                          f"SELECT code FROM projects WHERE year = {SIGNOFF_YEAR};\nROLLBACK;\n")
    uniform, *codes = seen.split()
    rule = superuser(env, f"BEGIN;\n{setup}SELECT code FROM projects WHERE year = {SIGNOFF_YEAR} "
                          f"AND '{unit}' = ANY (project_required_signoffs(region, "
                          "budget_requested_fen, cross_department, classified));\nROLLBACK;\n")
    assert set(codes) == set(rule.split())
    # Both ways of the policy are shown: the array when the department is
    # asked the same everywhere, the lookup by region when not.
    expected = {('321300-DRC', 'city'): 't', ('321300-DRC', 'county thresholds'): 'f',
                ('321300-DRC', 'county list'): 't', ('321300-FIN', 'county list'): 'f'}
    assert uniform == expected.get((unit, rules), uniform)
    if unit != '321300-PSB':
        assert codes, f'{unit} needed nowhere: the comparison shows nothing'


@pytest.mark.parametrize('cleared', [False, True])
def test_audit_records_of_a_classified_project_need_the_clearance(env, projects, cleared):
    # SPEC section 3: classified projects only for the cleared, never a hint
    # that one exists; the audit trail is no way round (sql/024_audit_scope.sql).
    marker = f'audit-scope-{cleared}'
    for serial in (6, 7):
        superuser(env, f"SELECT audit_append('scope-test', 'submitter', '127.0.0.1', "
                       f"'{marker}', 'update', 'project:{code(serial)}', 'title: a -> b')")
    rows = as_app(env, 'auditor1', '321300-DATA', '321300', 'auditor', cleared,
                  query=f"SELECT object FROM audit_log WHERE request_id = '{marker}'")
    expected = {(f'project:{code(6)}',)} | ({(f'project:{code(7)}',)} if cleared else set())
    assert rows == expected
