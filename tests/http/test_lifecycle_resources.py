"""A project's data resources (SPEC section 5: stored as their own rows)
read back with the project: in code order, after every way they are
written — a declaration, a PUT that replaces them, a write straight into
data_resources — and never behind their rows (sql/009_resource_text.sql
keeps a text of them in the project's row, which a read answers from)."""

import itpm_http as h
import lifecycle_api as L
from lifecycle_api import N, describe


def resources(user, code):
    """(code, name, source, share, frequency, aggregated) of each
    <resource> of the project as `user` reads it, in document order."""
    doc = L.read(user, code).doc
    return [(x.get('code'), x.findtext(N + 'name'), x.get('source'), x.get('share'),
             x.get('frequency'), x.get('aggregated'))
            for x in doc.find(N + 'dataResources')]


def su(env, sql):
    return h.psql(env, sql, user='postgres')


def stale(env, code):
    """Whether the project's text of its resources differs from its rows."""
    return su(env, f"SELECT p.resources IS DISTINCT FROM project_resources_text(p.id) "
                   f"FROM projects p WHERE p.code = '{code}'")


def row(code, name, aggregated='false'):
    return (code, name, 'business', 'conditional', 'daily', aggregated)


def test_declared_and_replaced_resources_read_back_in_code_order(users, env):
    sub, rev = users['sub_psb'], users['rev_city']
    p = L.create(sub, resources=[('PSB-B-02', '乙数据'), ('PSB-A-01', '甲数据'),
                                 ('PSB-a-03', '小写在后')])
    want = [row('PSB-A-01', '甲数据'), row('PSB-B-02', '乙数据'), row('PSB-a-03', '小写在后')]
    # The answer to the POST, the submitter's read and a reviewer's read.
    assert [(x.get('code'), x.findtext(N + 'name'))
            for x in p.doc.find(N + 'dataResources')] == [w[:2] for w in want]
    assert resources(sub, p.code) == want
    assert resources(rev, p.code) == want
    # A PUT replaces them all; its answer shows the new ones.
    r = sub.put_xml(L.path(p.code), L.declaration(resources=[('PSB-C-03', '丙数据')]),
                    headers={'If-Match': '"1"'})
    assert r.status_code == 200, describe(r)
    assert [x.get('code') for x in r.doc.find(N + 'dataResources')] == ['PSB-C-03']
    assert resources(rev, p.code) == [row('PSB-C-03', '丙数据')]
    # And a PUT without any leaves none.
    r = sub.put_xml(L.path(p.code), L.declaration(), headers={'If-Match': '"2"'})
    assert r.status_code == 200, describe(r)
    assert resources(rev, p.code) == []
    assert int(su(env, f"SELECT count(*) FROM data_resources d JOIN projects p "
                       f"ON p.id = d.project_id WHERE p.code = '{p.code}'")) == 0
    assert stale(env, p.code) == 'f'


def test_rows_written_directly_show_in_the_project(users, env):
    """An operator's INSERT, UPDATE and DELETE on data_resources (psql, as
    the superuser) show in the next read, as the daemon's own writes do."""
    rev = users['rev_city']
    p = L.create(users['sub_psb'], resources=[('PSB-M-01', '原有数据')])
    pid = f"(SELECT id FROM projects WHERE code = '{p.code}')"
    su(env, f"INSERT INTO data_resources (project_id, code, name, source, share, frequency) "
            f"VALUES ({pid}, 'PSB-K-00', '补录数据', 'business', 'conditional', 'daily'), "
            f"({pid}, 'PSB-Z-09', '末尾数据', 'business', 'conditional', 'daily')")
    assert resources(rev, p.code) == [row('PSB-K-00', '补录数据'), row('PSB-M-01', '原有数据'),
                                      row('PSB-Z-09', '末尾数据')]
    su(env, f"UPDATE data_resources SET name = '已汇聚数据', aggregated = true "
            f"WHERE project_id = {pid} AND code = 'PSB-M-01'")
    assert resources(rev, p.code)[1] == row('PSB-M-01', '已汇聚数据', 'true')
    su(env, f"DELETE FROM data_resources WHERE project_id = {pid} AND code <> 'PSB-Z-09'")
    assert resources(rev, p.code) == [row('PSB-Z-09', '末尾数据')]
    su(env, f"DELETE FROM data_resources WHERE project_id = {pid}")
    assert resources(rev, p.code) == []
    assert stale(env, p.code) == 'f'


def test_a_reader_who_may_not_change_the_project_cannot_add_its_resources(users, env):
    """The auditor reads every project and changes none: adding a resource
    to one (its rows being part of the project) is refused, and nothing is
    stored."""
    p = L.create(users['sub_psb'], resources=[('PSB-R-01', '只读测试')])
    sql = ("BEGIN;\nSELECT itpm_set_context('auditor1', '321300-DATA', '321300', 'auditor', "
           "false);\n"
           "INSERT INTO data_resources (project_id, code, name, source, share, frequency) "
           f"SELECT id, 'PSB-R-02', '越权数据', 'business', 'none', 'daily' FROM projects "
           f"WHERE code = '{p.code}';\nCOMMIT;\n")
    r = h.psql_run(env, sql, user=env.get('ITPM_PG_APP', 'itpm_app'))
    assert r.returncode != 0 and 'forbidden' in r.stderr, (r.stdout, r.stderr)
    assert resources(users['rev_city'], p.code) == [row('PSB-R-01', '只读测试')]
    assert int(su(env, f"SELECT count(*) FROM data_resources d JOIN projects p "
                       f"ON p.id = d.project_id WHERE p.code = '{p.code}'")) == 1


def test_a_resource_field_cannot_hold_the_separators_of_the_text(users, env):
    """The record and field separators of the text (U+001E, U+001F) are
    refused in the fields they could hide in, whoever writes the row."""
    p = L.create(users['sub_psb'])
    for col in ('name', 'source', 'frequency'):
        vals = {'name': "'名称'", 'source': "'business'", 'frequency': "'daily'"}
        vals[col] = "'a' || chr(30) || 'b'"
        r = h.psql_run(env, "INSERT INTO data_resources (project_id, code, name, source, share, "
                            f"frequency) SELECT id, 'PSB-S-01', {vals['name']}, "
                            f"{vals['source']}, 'none', {vals['frequency']} FROM projects "
                            f"WHERE code = '{p.code}'", user='postgres')
        assert r.returncode != 0 and 'data_resources_no_separators' in r.stderr, r.stderr
    assert resources(users['rev_city'], p.code) == []


def test_the_text_is_written_by_the_triggers_only(users, env):
    """Whoever would write the text past the rows is refused: the owner
    without a caller's settings (who sees no project), an update of the
    column itself, a TRUNCATE (which fires no row trigger)."""
    p = L.create(users['sub_psb'], resources=[('PSB-T-01', '原样数据')])
    pid = f"(SELECT id FROM projects WHERE code = '{p.code}')"
    r = h.psql_run(env, "INSERT INTO data_resources (project_id, code, name, source, share, "
                        f"frequency) VALUES ({pid}, 'PSB-T-02', '无主数据', 'business', 'none', "
                        "'daily')", user=env.get('ITPM_PG_OWNER', 'itpm_owner'))
    # The owner's subquery sees no project under the forced policies: the
    # insert names none, or names it and is refused.
    assert r.returncode != 0, (r.stdout, r.stderr)
    sql = ("BEGIN;\nSELECT itpm_set_context('sub_psb', '321300-PSB', '321300', 'submitter', "
           f"false);\nUPDATE projects SET resources = 'X' WHERE code = '{p.code}';\nCOMMIT;\n")
    r = h.psql_run(env, sql, user=env.get('ITPM_PG_APP', 'itpm_app'))
    assert r.returncode != 0 and 'kept by the triggers' in r.stderr, (r.stdout, r.stderr)
    r = h.psql_run(env, 'BEGIN;\nTRUNCATE data_resources CASCADE;\nROLLBACK;\n', user='postgres')
    assert r.returncode != 0 and 'cannot be truncated' in r.stderr, (r.stdout, r.stderr)
    assert resources(users['rev_city'], p.code) == [row('PSB-T-01', '原样数据')]
    assert stale(env, p.code) == 'f'


def test_the_owner_without_settings_cannot_leave_the_text_behind(users, env):
    """An insert by the owner for a project it cannot see (no caller's
    settings: the policies of projects are forced on it) is refused by the
    trigger, not left with the text behind the rows."""
    p = L.create(users['sub_psb'])
    project_id = su(env, f"SELECT id FROM projects WHERE code = '{p.code}'")
    r = h.psql_run(env, "INSERT INTO data_resources (project_id, code, name, source, share, "
                        f"frequency) VALUES ({project_id}, 'PSB-O-01', '越权数据', 'business', "
                        "'none', 'daily')", user=env.get('ITPM_PG_OWNER', 'itpm_owner'))
    assert r.returncode != 0 and 'forbidden' in r.stderr, (r.stdout, r.stderr)
    assert resources(users['rev_city'], p.code) == []
    assert stale(env, p.code) == 'f'
