"""/metrics in the Prometheus text format, and its counters moving."""

import math

import itpm_http as h

REQUIRED = ['itpm_requests_total', 'itpm_busy_workers', 'itpm_workers',
            'itpm_respawns_total', 'itpm_timeouts_total',
            'itpm_request_duration_seconds_bucket',
            'itpm_request_duration_seconds_sum',
            'itpm_request_duration_seconds_count']


def test_metrics_is_valid_prometheus_text(session):
    r = session.get('/metrics')
    assert r.status_code == 200, h.describe(r)
    assert h.media_type(r) == 'text/plain', h.describe(r)
    assert r.text.endswith('\n'), 'exposition must end with a newline'
    samples, helps, types = h.parse_metrics(r.text)  # asserts each line's shape
    names = {n for n, _, _ in samples}
    missing = [n for n in REQUIRED if n not in names]
    assert not missing, f'missing from /metrics: {missing}'
    for name in names:
        family = h.family_of(name, types)
        assert family, f'no # TYPE line for {name}'
        assert family in helps, f'no # HELP line for {family}'
    seen = set()
    for n, labels, _ in samples:
        key = (n, tuple(sorted(labels.items())))
        assert key not in seen, f'duplicate series {key}'
        seen.add(key)
    assert types.get('itpm_request_duration_seconds') == 'histogram'
    for n in ('itpm_respawns_total', 'itpm_timeouts_total'):
        assert types.get(h.family_of(n, types)) == 'counter', f'{n} is not a counter'
    for n in ('itpm_busy_workers', 'itpm_workers'):
        assert types.get(n) == 'gauge', f'{n} is not a gauge'


def test_request_classes(session):
    assert session.get('/api/v1/no-such-thing').status_code == 404
    samples = h.get_metrics(session)
    classes = {l.get('class') for n, l, _ in samples if n == 'itpm_requests_total'}
    assert {'2xx', '4xx'} <= classes, f'classes on itpm_requests_total: {classes}'


def test_duration_histogram_is_cumulative(session):
    samples = h.get_metrics(session)
    buckets = sorted(((float(l['le']), v) for n, l, v in samples
                      if n == 'itpm_request_duration_seconds_bucket'),
                     key=lambda b: b[0])
    assert buckets and math.isinf(buckets[-1][0]), 'needs an le="+Inf" bucket'
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f'buckets not cumulative: {buckets}'
    assert buckets[-1][1] == h.metric(samples, 'itpm_request_duration_seconds_count')


def test_counters_grow_with_requests(session):
    before = h.get_metrics(session)
    ok0 = h.metric(before, 'itpm_requests_total', **{'class': '2xx'}) or 0
    nf0 = h.metric(before, 'itpm_requests_total', **{'class': '4xx'}) or 0
    cnt0 = h.metric(before, 'itpm_request_duration_seconds_count')
    for _ in range(10):
        assert session.get('/healthz').status_code == 200
    for _ in range(3):
        assert session.get('/api/v1/no-such-thing').status_code == 404

    last = []

    def grown():
        s = h.get_metrics(session)
        ok = h.metric(s, 'itpm_requests_total', **{'class': '2xx'}) or 0
        nf = h.metric(s, 'itpm_requests_total', **{'class': '4xx'}) or 0
        cnt = h.metric(s, 'itpm_request_duration_seconds_count')
        last[:] = [ok, nf, cnt]
        return ok >= ok0 + 10 and nf >= nf0 + 3 and cnt >= cnt0 + 13
    try:
        h.wait_until(grown, 3, 'counters grew')
    except AssertionError:
        raise AssertionError(f'after 10 x 200 and 3 x 404: 2xx {ok0} -> {last[0]}, '
                             f'4xx {nf0} -> {last[1]}, '
                             f'duration count {cnt0} -> {last[2]}')


def test_workers_gauge_matches_processes(env, session):
    samples = h.get_metrics(session)
    assert h.metric(samples, 'itpm_workers') == len(h.workers(env))
    busy = h.metric(samples, 'itpm_busy_workers')
    assert 1 <= busy <= len(h.workers(env)), f'busy {busy}: the /metrics request itself is one'
