"""Documents of the lifecycle API (SPEC section 5): schema-invalid
declarations and transitions get 422 with each error's line (and column
where the parser knows it) and nothing is stored; every document the API
returns validates against xsd/ (the client of lifecycle_api validates every
reply; here each kind of document is fetched on purpose)."""

import pytest

import lifecycle_api as L
from lifecycle_api import N, describe


def line_of(body, needle, nth=0):
    lines = body.decode().splitlines()
    hits = [i + 1 for i, x in enumerate(lines) if needle in x]
    assert len(hits) > nth, f'{needle!r} not in the test document'
    return hits[nth]


def mutate(old, new, **decl):
    body = L.declaration(**decl)
    assert old.encode() in body, old
    return body.replace(old.encode(), new.encode(), 1)


# (name, body, the text that marks the line the error must name)
def invalid_declarations():
    y = L.open_year()
    return [
        ('category', mutate('<category>new</category>', '<category>bogus</category>'),
         '<category>'),
        ('budget_no_cents', mutate('<budget>300000.00</budget>', '<budget>12.5</budget>'),
         '<budget>'),
        ('budget_negative', mutate('<budget>300000.00</budget>', '<budget>-1.00</budget>'),
         '<budget>'),
        ('budget_float', mutate('<budget>300000.00</budget>', '<budget>3e5</budget>'),
         '<budget>'),
        ('title_blank', mutate('<title>T</title>', '<title>   </title>', title='T'), '<title>'),
        ('unit_pattern', mutate('<unit>321300-PSB</unit>', '<unit>PSB</unit>'), '<unit>'),
        ('year_range', mutate(f'<year>{y}</year>', '<year>1999</year>'), '<year>'),
        ('date', mutate(f'start="{y}-03-01"', 'start="next spring"'), '<schedule'),
        ('date_zone', mutate(f'start="{y}-03-01"', f'start="{y}-03-01+08:00"'), '<schedule'),
        ('date_year_5', mutate(f'start="{y}-03-01"', f'start="1{y}-03-01"'), '<schedule'),
        ('unknown_element', mutate('<unit>321300-PSB</unit>',
                                   '<unit>321300-PSB</unit>\n  <secret>x</secret>'), '<secret>'),
        ('flag_value', mutate('classified="false"', 'classified="maybe"'), '<flags'),
        ('mode', mutate('mode="centralized"', 'mode="outsourced"'), '<construction'),
        ('resource_share', mutate('share="conditional"', 'share="everyone"',
                                  resources=[('R-1', '数据')]), '<resource'),
        ('email', mutate('email="wf@example.gov.cn"', 'email="not an address"'), '<contact'),
        ('order', mutate(f'<year>{y}</year>\n  <category>new</category>',
                         f'<category>new</category>\n  <year>{y}</year>'), '<category>'),
    ]


@pytest.mark.parametrize('name,body,marker', invalid_declarations(),
                         ids=[c[0] for c in invalid_declarations()])
def test_schema_invalid_declaration_names_its_line(users, name, body, marker):
    sub = users['sub_psb']
    before = sub.get('/api/v1/projects', params={'limit': 1}).doc.get('total')
    r = sub.post_xml('/api/v1/projects', body)
    root = L.problem(r, 422)
    errors = L.problem_errors(root)
    assert errors, describe(r)
    line = line_of(body, marker)
    assert any(e[0] == line for e in errors), f'expected an error at line {line}: {errors}'
    for ln, col, msg in errors:
        assert ln is not None and ln >= 1 and msg, errors
        # libxml2's schema validator does not report columns; when one is
        # given it must be a real position on that line.
        if col is not None:
            assert 1 <= col <= len(body.decode().splitlines()[ln - 1]) + 1, errors
    errs = root.find(L.P + 'errors')
    assert errs.get('total') == str(len(errors))
    after = sub.get('/api/v1/projects', params={'limit': 1}).doc.get('total')
    assert after == before, 'an invalid declaration was stored'


def test_every_schema_error_is_listed_with_its_own_line(users):
    body = mutate('<budget>300000.00</budget>', '<budget>12.5</budget>')
    body = body.replace(b'<category>new</category>', b'<category>bogus</category>')
    r = users['sub_psb'].post_xml('/api/v1/projects', body)
    errors = L.problem_errors(L.problem(r, 422))
    lines = sorted(e[0] for e in errors)
    assert lines == [line_of(body, '<category>'), line_of(body, '<budget>')], errors


def test_malformed_declaration_names_line_and_column(users):
    """Not well-formed: 400, the parser knows line and column."""
    body = L.declaration().replace(b'</title>', b'</titel>')
    r = users['sub_psb'].post_xml('/api/v1/projects', body)
    errors = L.problem_errors(L.problem(r, 400))
    line = line_of(body, '</titel>')
    assert errors and errors[0][0] == line, errors
    assert errors[0][1] is not None and errors[0][1] >= 1, errors


@pytest.mark.parametrize('body', [
    b'<projekt xmlns="urn:itpm:1"><title>x</title></projekt>',
    b'<project xmlns="urn:other"><title>x</title></project>',
    b'<project><title>x</title></project>',
])
def test_wrong_document_is_refused(users, body):
    """Well-formed, but not a valid <project> of urn:itpm:1 (another element,
    another namespace; with no namespace at all it is read as urn:itpm:1's
    and fails the schema): schema-invalid, 422, with where; nothing stored."""
    r = users['sub_psb'].post_xml('/api/v1/projects', body)
    errors = L.problem_errors(L.problem(r, 422))
    assert errors and errors[0][0] == 1, errors


def test_transition_without_namespace_is_read_as_the_apis(users):
    """<transition action="…"/> as the interface shows it, no xmlns: applied
    like the same document in urn:itpm:1."""
    flow = L.flow_to(users, 'endorsement', budget='1000.00')
    r = flow.sub.post_xml(L.path(flow.code, '/transitions'), b'<transition action="withdraw"/>',
                          headers={'If-Match': f'"{flow.p.version}"'})
    assert r.status_code == 200, describe(r)
    assert L.Project(r).stage == 'draft', describe(r)


def test_declaration_needs_xml_content_type(users):
    r = users['sub_psb'].post('/api/v1/projects', data=L.declaration(),
                              headers={'Content-Type': 'text/plain'})
    L.problem(r, 415)


@pytest.mark.parametrize('body', [
    f'<transition xmlns="{L.NS}"/>',                                   # no action
    f'<transition xmlns="{L.NS}" action="Submit!"/>',                  # pattern
    f'<transition xmlns="{L.NS}" action="submit"><why>x</why></transition>',
    f'<transition xmlns="{L.NS}" action="pass"><amount>1,00</amount></transition>',
    f'<transition xmlns="{L.NS}" action="pass"><listYear>27</listYear></transition>',
    f'<transition xmlns="{L.NS}" action="pass"><listYear>2027</listYear>'
    f'<amount>1.00</amount></transition>',                              # order
])
def test_schema_invalid_transition_is_422_and_writes_nothing(users, body):
    flow = L.flow_to(users, 'draft', budget='1000.00')
    flow.attach_materials()
    r = flow.sub.post_xml(L.path(flow.code, '/transitions'), body,
                          headers={'If-Match': '"1"'})
    root = L.problem(r, 422)
    assert L.problem_errors(root), describe(r)
    assert L.snapshot(users['rev_city'], flow.code) == (1, 'draft', 1)


def test_every_document_validates(users, env):
    """Fetch every kind of document the lifecycle API emits; each must be
    application/xml, valid against xsd/itpm.xsd, with the expected root."""
    flow = L.Flow(users, budget='5000000.00', cross=True,
                  resources=[('PSB-CASE-01', '案件数据'), ('PSB-CAM-02', '视频点位')])
    flow.to('pre_implementation')
    flow.sign_all()
    code = flow.code
    rev = users['rev_city']
    att = L.attach(flow.sub, code, 'implementation_plan')
    checks = [
        (rev, 'GET', L.path(code), None, 'project'),
        (rev, 'GET', '/api/v1/projects?limit=5', None, 'projects'),
        (rev, 'GET', '/api/v1/projects?stage=pre_implementation&limit=500', None, 'projects'),
        (flow.sub, 'GET', '/api/v1/projects?limit=3&offset=1', None, 'projects'),
        (rev, 'GET', L.path(code, '/events'), None, 'events'),
        (rev, 'GET', L.path(code, '/attachments'), None, 'attachments'),
        (rev, 'GET', L.path(code, '/experts'), None, 'experts'),
        (rev, 'GET', '/api/v1/config/windows', None, 'windows'),
        (rev, 'GET', '/api/v1/config/thresholds', None, 'thresholds'),
        (rev, 'GET', '/api/v1/config/experts', None, 'expertPool'),
        (rev, 'GET', '/api/v1/stats/overview', None, 'overview'),
        (flow.sub, 'GET', '/api/v1/stats/overview', None, 'overview'),
        (users['auditor1'], 'GET', f'/api/v1/audit?object=project:{code}', None,
         'auditRecords'),
    ]
    for user, method, url, body, root in checks:
        r = user.request(method, url, data=body)
        assert r.status_code == 200, describe(r)
        assert L.media_type(r) == 'application/xml', describe(r)
        assert r.doc is not None and r.doc.tag == N + root, describe(r)
    assert att.tag == N + 'attachment'
    r = L.signoff(users['jr_drc'], code)
    assert r.status_code == 201 and r.doc.tag == N + 'signoff', describe(r)
    r = L.transition(rev, code, 'pass', flow.p.version)
    assert r.status_code == 200 and r.doc.tag == N + 'project', describe(r)
    # The project as read back carries everything it was declared with.
    doc = L.read(rev, code).doc
    assert [x.get('code') for x in doc.find(N + 'dataResources')] == \
        ['PSB-CAM-02', 'PSB-CASE-01']
    # The problems of every refusal kind validate against xsd/problem.xsd.
    for resp, status in (
            (L.transition(users['sub_health'], code, 'pass', 1), 404),
            (L.transition(users['sub_psb'], code, 'pass', 1), 403),
            (L.transition(rev, code, 'pass', 1), 412),
            (L.transition(rev, code, 'pass', None), 428),
            (L.transition(rev, code, 'defer', L.read(rev, code).version), 409)):
        L.problem(resp, status)


def test_config_put_documents_echo_the_schema(users):
    """The admin's PUTs answer with the whole (valid) configuration."""
    admin = users['admin1']
    r = admin.get('/api/v1/config/thresholds')
    assert r.status_code == 200, describe(r)
    city = [t for t in r.doc.findall(N + 'threshold') if t.get('region') == '321300']
    assert city and city[0].get('expertAmount') == '500000.00' and \
        city[0].get('jointAmount') == '5000000.00' and city[0].get('expertCount') == '3' \
        and city[0].get('jointExpertCount') == '5' and city[0].get('expertMinMean') == '60'
    r = admin.get('/api/v1/config/windows')
    years = {int(w.get('year')) for w in r.doc.findall(N + 'window')
             if w.get('region') == '321300'}
    assert set(range(2024, 2031)) <= years
    r = admin.put_xml('/api/v1/config/experts', L.expert_pool_body())
    assert r.status_code == 200 and r.doc.tag == N + 'expertPool', describe(r)
    pool = {e.get('user'): e.get('unit') for e in r.doc.findall(N + 'expert')}
    assert all(pool.get(u) == unit for u, (_, unit) in L.EXPERTS.items())
