"""The reference regions and their units, as the API lists them to a
logged-in user (any role); without a session they are refused."""

import pytest

import itpm_http as h

NS = '{urn:itpm:1}'

# From the reference data (shared/data/regions.csv and units.csv), copied
# here: the project does not read ../shared at run time.
REGIONS = {
    # code: (name, kind, parent)
    '321300': ('宿迁市', 'city', ''),
    '321302': ('宿城区', 'district', '321300'),
    '321311': ('宿豫区', 'district', '321300'),
    '321322': ('沭阳县', 'county', '321300'),
    '321323': ('泗阳县', 'county', '321300'),
    '321324': ('泗洪县', 'county', '321300'),
    '321391': ('宿迁经济技术开发区', 'zone', '321300'),
    '321392': ('宿迁市湖滨新区', 'zone', '321300'),
    '321393': ('宿迁市洋河新区', 'zone', '321300'),
    '321394': ('苏州宿迁工业园区', 'zone', '321300'),
}

UNITS = {
    # code: (name, region, kind)
    '321300-DATA': ('宿迁市数据局', '321300', 'department'),
    '321300-DRC': ('宿迁市发展和改革委员会', '321300', 'department'),
    '321300-FIN': ('宿迁市财政局', '321300', 'department'),
    '321300-CAC': ('中共宿迁市委网络安全和信息化委员会办公室', '321300',
                    'department'),
    '321300-SEC': ('宿迁市国家保密局', '321300', 'department'),
    '321300-CHURUN': ('宿迁市楚润数据集团', '321300', 'soe'),
    '321300-PSB': ('宿迁市公安局', '321300', 'department'),
    '321300-HEALTH': ('宿迁市卫生健康委员会', '321300', 'department'),
    '321300-EDU': ('宿迁市教育局', '321300', 'department'),
    '321300-HOSP1': ('宿迁市第一人民医院', '321300', 'public_institution'),
    '321300-WATER': ('宿迁市水务集团', '321300', 'soe'),
    '321322-DATA': ('沭阳县数据局', '321322', 'department'),
    '321322-AGRI': ('沭阳县农业农村局', '321322', 'department'),
    '321323-DATA': ('泗阳县数据局', '321323', 'department'),
    '321323-EDU': ('泗阳县教育局', '321323', 'department'),
}


def xml_ok(resp):
    assert resp.status_code == 200, h.describe(resp)
    assert h.media_type(resp) == 'application/xml', h.describe(resp)
    return h.validate(resp, 'itpm.xsd')


def test_list_has_the_city_and_all_its_regions(auth_session):
    root = xml_ok(auth_session.get('/api/v1/regions'))
    assert root.tag == NS + 'regions'
    got = {}
    for el in root.iter(NS + 'region'):
        got[el.get('code')] = (el.get('name'), el.get('kind'), el.get('parent') or '')
    assert got == REGIONS


@pytest.mark.parametrize('code', sorted(REGIONS))
def test_each_region_with_its_units(auth_session, code):
    root = xml_ok(auth_session.get(f'/api/v1/regions/{code}'))
    assert root.tag == NS + 'region'
    name, kind, parent = REGIONS[code]
    assert (root.get('code'), root.get('name'), root.get('kind'),
            root.get('parent') or '') == (code, name, kind, parent)
    units = {u.get('code'): (u.get('name'), u.get('kind'))
             for u in root.iter(NS + 'unit')}
    expected = {c: (n, k) for c, (n, r, k) in UNITS.items() if r == code}
    assert units == expected


def test_county_units(auth_session):
    root = xml_ok(auth_session.get('/api/v1/regions/321322'))
    units = {u.get('code'): u.get('name') for u in root.iter(NS + 'unit')}
    assert units == {'321322-DATA': '沭阳县数据局', '321322-AGRI': '沭阳县农业农村局'}


@pytest.mark.parametrize('code', ['999999', '321399', '000000'])
def test_unknown_region_is_404_problem(auth_session, problem, code):
    problem(auth_session.get(f'/api/v1/regions/{code}'), 404)


@pytest.mark.parametrize('code', ['abc', "321300'%20OR%20'1'='1", '3213001',
                                  '321300%20', 'x' * 2000])
def test_malformed_region_code_is_4xx_problem(auth_session, problem, code):
    r = auth_session.get(f'/api/v1/regions/{code}')
    assert r.status_code in (400, 404), h.describe(r)
    problem(r)


@pytest.mark.parametrize('code', ['%00', '..%2F..%2F..%2Fetc%2Fpasswd',
                                  '%2e%2e/%2e%2e/healthz', '%ff%fe'])
def test_hostile_region_code_is_refused_without_5xx(auth_session, code):
    r = auth_session.get(f'/api/v1/regions/{code}')
    assert 400 <= r.status_code < 500, h.describe(r)
    assert b'root:' not in r.content


@pytest.mark.parametrize('path', ['/api/v1/regions', '/api/v1/regions/321322'])
def test_regions_need_a_login(session, problem, path):
    r = session.get(path)
    problem(r, 401)
    assert r.headers.get('WWW-Authenticate', '').lower().startswith('bearer'), h.describe(r)
    assert b'321322' not in r.content and '沭阳'.encode() not in r.content


@pytest.mark.parametrize('cookie', ['__Host-itpm_session=' + 'A' * 43,
                                    '__Host-itpm_session=',
                                    '__Host-itpm_session=' + 'A' * 4000,
                                    'itpm_session=' + 'A' * 43])
def test_regions_refuse_a_cookie_that_is_no_session(session, problem, cookie):
    problem(session.get('/api/v1/regions', headers={'Cookie': cookie}), 401)


@pytest.mark.parametrize('user', ['sub_agri', 'ca_siyang', 'expert1', 'admin1'])
def test_any_role_reads_the_regions(env, user):
    with h.logged_in(env, user) as c:
        root = xml_ok(c.get('/api/v1/regions/321323'))
        assert root.get('name') == '泗阳县'
