-- Reference data: the city of Suqian, its districts, counties and zones, and the
-- Data Bureau, the joint-review departments and sample declaring units.
-- Source: GB/T 2260 codes (zones carry local codes).
INSERT INTO regions (code, name, kind, parent, code_source) VALUES
    ('321300', '宿迁市', 'city', NULL, 'GB/T 2260'),
    ('321302', '宿城区', 'district', '321300', 'GB/T 2260'),
    ('321311', '宿豫区', 'district', '321300', 'GB/T 2260'),
    ('321322', '沭阳县', 'county', '321300', 'GB/T 2260'),
    ('321323', '泗阳县', 'county', '321300', 'GB/T 2260'),
    ('321324', '泗洪县', 'county', '321300', 'GB/T 2260'),
    ('321391', '宿迁经济技术开发区', 'zone', '321300', 'local (zones have no GB/T 2260 code)'),
    ('321392', '宿迁市湖滨新区', 'zone', '321300', 'local'),
    ('321393', '宿迁市洋河新区', 'zone', '321300', 'local'),
    ('321394', '苏州宿迁工业园区', 'zone', '321300', 'local');

INSERT INTO units (code, name, region, kind, review_role) VALUES
    ('321300-DATA', '宿迁市数据局', '321300', 'department', 'gatekeeper (reviewers and director)'),
    ('321300-DRC', '宿迁市发展和改革委员会', '321300', 'department', 'joint review: development & reform'),
    ('321300-FIN', '宿迁市财政局', '321300', 'department', 'joint review: finance'),
    ('321300-CAC', '中共宿迁市委网络安全和信息化委员会办公室', '321300', 'department', 'joint review: cyberspace affairs'),
    ('321300-SEC', '宿迁市国家保密局', '321300', 'department', 'joint review: secrecy'),
    ('321300-CHURUN', '宿迁市楚润数据集团', '321300', 'soe', 'authorized operator of public data'),
    ('321300-PSB', '宿迁市公安局', '321300', 'department', 'declaring unit'),
    ('321300-HEALTH', '宿迁市卫生健康委员会', '321300', 'department', 'declaring unit'),
    ('321300-EDU', '宿迁市教育局', '321300', 'department', 'declaring unit'),
    ('321300-HOSP1', '宿迁市第一人民医院', '321300', 'public_institution', 'declaring unit'),
    ('321300-WATER', '宿迁市水务集团', '321300', 'soe', 'declaring unit'),
    ('321322-DATA', '沭阳县数据局', '321322', 'department', 'county gatekeeper'),
    ('321322-AGRI', '沭阳县农业农村局', '321322', 'department', 'declaring unit'),
    ('321323-DATA', '泗阳县数据局', '321323', 'department', 'county gatekeeper'),
    ('321323-EDU', '泗阳县教育局', '321323', 'department', 'declaring unit');
