"""The pre-forking pool as an operator sees it: worker processes under the
master, respawn after a crash, request time-out, master death, graceful stop
on SIGTERM and reload on SIGHUP, with the counters on /metrics."""

import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

import itpm_http as h

REGION = '/api/v1/regions/321300'  # needs a login: reads the database twice
RESPAWN_WAIT = 10  # seconds; covers a modest respawn back-off


def slow_get(env, path, token, timeout=30):
    """GET with session `token` from a thread of its own; returns (response
    or exception, seconds). Log in before locking the tables: the login
    itself writes to the database."""
    t0 = time.monotonic()
    try:
        with h.Client(env) as c:
            c.use_token(token)
            r = c.get(path, timeout=(5, timeout))
    except requests.RequestException as e:
        r = e
    return r, time.monotonic() - t0


def all_ok(client, path='/healthz', n=8):
    statuses = [client.get(path).status_code for _ in range(n)]
    assert statuses == [200] * n, f'GET {path} x{n}: {statuses}'


def replaced(env, old, count):
    """Predicate: the master has `count` live children, none of them in `old`."""
    def check():
        kids = h.workers(env)
        return kids if len(kids) == count and not set(kids) & set(old) else None
    return check


# --------------------------------------------------------------------------
# shared stack

def test_master_runs_the_configured_number_of_workers(env, session):
    n = h.conf_int(env, 'server', 'workers', 4)
    kids = h.wait_children(h.master_pid(env), n, RESPAWN_WAIT)
    assert len(kids) == n
    samples = h.get_metrics(session)
    assert h.metric(samples, 'itpm_workers') == n


def test_killed_idle_worker_is_replaced_and_counted(env, session, auth_session):
    n = h.conf_int(env, 'server', 'workers', 4)
    master = h.master_pid(env)
    before = h.wait_children(h.master_pid(env), n, RESPAWN_WAIT)
    respawns = h.metric(h.get_metrics(session), 'itpm_respawns_total')
    assert respawns is not None, 'itpm_respawns_total missing from /metrics'

    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    def one_new():
        kids = h.workers(env)
        if len(kids) == n and victim not in kids:
            return kids
        return None
    after = h.wait_until(one_new, RESPAWN_WAIT, f'worker {victim} replaced')
    assert set(before) - {victim} <= set(after), \
        f'only the killed worker should change: before {before}, after {after}'
    assert h.master_pid(env) == master
    all_ok(session)
    all_ok(auth_session, REGION, 4)
    h.wait_until(lambda: h.metric(h.get_metrics(session), 'itpm_respawns_total')
                 >= respawns + 1, 3, 'itpm_respawns_total grew by one')


def test_workers_killed_mid_request_are_replaced(env, session, auth_session):
    """kill -9 every worker while one of them waits on the database: the
    request in flight gets a 5xx from nginx, each worker is replaced, the
    pool keeps answering and /metrics counts the respawns."""
    n = h.conf_int(env, 'server', 'workers', 4)
    master = h.master_pid(env)
    before = h.wait_children(h.master_pid(env), n, RESPAWN_WAIT)
    respawns = h.metric(h.get_metrics(session), 'itpm_respawns_total')
    assert respawns is not None, 'itpm_respawns_total missing from /metrics'

    token = h.login_token(env)
    with ThreadPoolExecutor(1) as pool, h.TableLock(env, 20) as lock:
        slow = pool.submit(slow_get, env, REGION, token)
        lock.wait_for_blocked_request()
        assert not slow.done(), 'the request should still wait on the lock'
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        resp, took = slow.result(timeout=15)
        assert isinstance(resp, requests.Response), f'request failed: {resp!r}'
        assert resp.status_code in (502, 503), h.describe(resp)
        assert took < 10, f'in-flight request answered only after {took:.1f} s'
        h.wait_until(replaced(env, before, n), RESPAWN_WAIT,
                     f'all {n} killed workers replaced')
        all_ok(session)  # served while the lock is still held
    all_ok(auth_session, REGION, 2 * n)
    assert h.master_pid(env) == master
    h.wait_until(lambda: h.metric(h.get_metrics(session), 'itpm_respawns_total')
                 >= respawns + n, 3, f'itpm_respawns_total grew by {n}')


# --------------------------------------------------------------------------
# private stacks

def test_request_past_timeout_is_cut_and_worker_replaced(private_stack):
    env = private_stack('[server]\nworkers = 2\nrequest_timeout = 2\n')
    with h.Client(env, user=h.DEMO_USER) as c:
        before = h.wait_children(h.master_pid(env), 2, RESPAWN_WAIT)
        samples = h.get_metrics(c)
        timeouts = h.metric(samples, 'itpm_timeouts_total')
        assert timeouts is not None, 'itpm_timeouts_total missing from /metrics'

        with ThreadPoolExecutor(1) as pool, h.TableLock(env, 6) as lock:
            slow = pool.submit(slow_get, env, REGION, c.token)
            lock.wait_for_blocked_request()
            resp, took = slow.result(timeout=15)
            assert isinstance(resp, requests.Response), f'request failed: {resp!r}'
            assert resp.status_code in (502, 503, 504), h.describe(resp)
            # lock lasts 6 s; time-out is 2 s (+ the master's tick)
            assert took < 5, f'request ran {took:.1f} s despite request_timeout = 2'

            def one_replaced():
                kids = h.workers(env)
                return kids if len(kids) == 2 and set(kids) != set(before) else None
            after = h.wait_until(one_replaced, RESPAWN_WAIT,
                                 f'the timed-out worker replaced (before {before})')
            assert len(set(before) - set(after)) == 1, \
                f'exactly the busy worker is replaced: before {before}, after {after}'
            all_ok(c)  # while the lock is still held
        all_ok(c, REGION, 4)
        h.wait_until(lambda: h.metric(h.get_metrics(c), 'itpm_timeouts_total')
                     >= timeouts + 1, 3, 'itpm_timeouts_total grew')


def test_no_worker_outlives_a_killed_master(private_stack):
    env = private_stack('[server]\nworkers = 2\n')
    master = h.master_pid(env)
    kids = h.wait_children(master, 2, RESPAWN_WAIT)
    os.kill(master, signal.SIGKILL)
    try:
        h.wait_until(lambda: not any(h.alive(p) for p in kids), 2,
                     f'workers {kids} gone after kill -9 of master {master}')
    finally:
        for p in kids:
            if h.alive(p):
                h.kill_quietly(p)


def _start_own_itpmd(env, tmp):
    """Stop the stack's itpmd and run one ourselves, so we can wait() on it."""
    old = h.master_pid(env)
    old_kids = h.children(old)
    h.stack_cmd(env, 'itpmd-stop')
    h.wait_until(lambda: not any(h.alive(p) for p in [old] + old_kids), 10,
                 'the stack\'s itpmd stopped')
    out = open(Path(tmp) / 'itpmd.out', 'wb')
    binary = env.get('ITPM_BIN') or h.itpm_bin()
    proc = subprocess.Popen([binary, '-c', env['ITPM_CONF']],
                            stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, cwd=str(h.REPO))
    out.close()
    return proc


def _output(tmp):
    try:
        return (Path(tmp) / 'itpmd.out').read_text(errors='replace')[-1500:]
    except FileNotFoundError:
        return ''


def test_sigterm_finishes_request_in_flight_then_exits_0(private_stack, tmp_path):
    env = private_stack('[server]\nworkers = 2\n')
    proc = _start_own_itpmd(env, tmp_path)
    kids = []
    try:
        with h.Client(env) as c:
            def up():
                if proc.poll() is not None:
                    raise AssertionError(f'itpmd exited {proc.returncode}: '
                                         f'{_output(tmp_path)}')
                try:
                    return c.get('/healthz').status_code == 200
                except requests.RequestException:
                    return False
            h.wait_until(up, 15, 'own itpmd answers /healthz through nginx', 0.1)
            kids = h.wait_children(proc.pid, 2, RESPAWN_WAIT)
            token = h.login_token(env)

            with ThreadPoolExecutor(1) as pool, h.TableLock(env, 2) as lock:
                slow = pool.submit(slow_get, env, REGION, token)
                lock.wait_for_blocked_request()
                proc.send_signal(signal.SIGTERM)
                resp, took = slow.result(timeout=20)
                assert isinstance(resp, requests.Response), f'request failed: {resp!r}'
                assert resp.status_code == 200, h.describe(resp)
                h.validate(resp, 'itpm.xsd')
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError('master still running 15 s after SIGTERM')
        assert rc == 0, f'master exit status {rc}: {_output(tmp_path)}'
        assert not re.search(r'AddressSanitizer|runtime error:|LeakSanitizer',
                             _output(tmp_path)), _output(tmp_path)
        h.wait_until(lambda: not any(h.alive(p) for p in kids), 2,
                     f'workers {kids} gone after the master exited')
        assert h.children(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in kids:
            if h.alive(p):
                h.kill_quietly(p)


def _set_workers(conf_path, n):
    text = Path(conf_path).read_text()
    new, count = re.subn(r'(?m)^(\s*workers\s*=\s*)\d+', rf'\g<1>{n}', text)
    if count == 0:
        new = text + f'\n[server]\nworkers = {n}\n'
    Path(conf_path).write_text(new)


def test_sighup_reloads_without_dropping_requests(private_stack):
    env = private_stack('[server]\nworkers = 2\n')
    master = h.master_pid(env)
    old = h.wait_children(master, 2, RESPAWN_WAIT)

    target = 2000
    stop = threading.Event()
    lock = threading.Lock()
    results = {'done': 0, 'bad': []}
    paths = ['/api/v1/regions/321322', '/healthz']
    token = h.login_token(env)

    def load(i):
        with h.Client(env) as c:
            c.use_token(token)
            k = i
            while not stop.is_set():
                path = paths[k % 2]
                k += 1
                try:
                    r = c.get(path)
                    bad = None if r.status_code == 200 else h.describe(r)
                except requests.RequestException as e:
                    bad = f'GET {path}: {e!r}'
                with lock:
                    results['done'] += 1
                    if bad:
                        results['bad'].append(bad)

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    try:
        h.wait_until(lambda: results['done'] >= 300, 15, 'load running')
        _set_workers(env['ITPM_CONF'], 3)
        os.kill(master, signal.SIGHUP)
        new = h.wait_until(replaced(env, old, 3),
                           15, f'after SIGHUP: 3 workers, none of {old}')
        h.wait_until(lambda: results['done'] >= target, 20,
                     f'{target} requests sent')
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    done, bad = results['done'], results['bad']
    assert not bad, f'{len(bad)} of {done} requests failed during reload; first: {bad[:5]}'
    assert h.master_pid(env) == master, 'SIGHUP must not replace the master'
    assert h.children(master) == new
    with h.Client(env) as c:
        h.wait_until(lambda: h.metric(h.get_metrics(c), 'itpm_workers') == 3, 3,
                     'itpm_workers reports 3')
