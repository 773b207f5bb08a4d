#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from traps
# bench/pool.sh — the pool benchmark: itpmd against a bare libfcgi + libpq
# baseline (bench/baseline.c) with the same worker count behind a second nginx
# rendered from the same template; then worker RSS over 100,000 requests.
# Prints figures; it is not a test. See bench/README.md.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
REGION=${BENCH_REGION:-321322}
RSS_TOTAL=${BENCH_RSS_REQUESTS:-100000}
RSS_FIRST=${BENCH_RSS_FIRST:-10000}
RSS_MAX_KIB=${BENCH_RSS_MAX_KIB:-16384}
RSS_GROWTH_KIB=${BENCH_RSS_GROWTH_KIB:-64}
RATIO_MIN=${BENCH_RATIO_MIN:-0.8}
# Sent with every regions request, to itpmd and to the baseline alike (which
# ignores it). Empty and a stack of our own: an SSO token of our own making.
AUTH_HEADER=${BENCH_AUTH_HEADER:-}

WORK=""
OWN_STACK=""
BASE_PID=""
NGINX_PID=""
FAILED=0
DONE=""

# ---------------------------------------------------------------- cleanup

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    bench_stop_pid wrk "$WRK_PID"
    bench_stop_pid nginx "$NGINX_PID"
    bench_stop_pid baseline "$BASE_PID"
    bench_teardown "$rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# snapshot MASTER FILE: one "PID RSS_KIB" line per worker.
snapshot() {
    local pid
    : >"$2"
    for pid in $(bench_children "$1"); do
        printf '%s %s\n' "$pid" "$(rss_kib "$pid")" >>"$2"
    done
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------- setup

itpm_install_packages python3-cryptography
for tool in wrk nginx curl cc; do
    command -v "$tool" >/dev/null || itpm_die "$tool not found"
done

WORK=$(mktemp -d /tmp/itpm-bench.XXXXXX)
# nginx workers run as www-data when we are root: they must reach the socket.
chmod 0755 "$WORK"

if [ -z "${ITPM_ENV:-}" ]; then
    if [ -z "${ITPM_BIN:-}" ] && [ -z "${BENCH_NO_BUILD:-}" ]; then
        itpm_log "building $REPO/build (Release)"
        # Its progress goes to stderr: stdout carries only the fixed-format lines.
        itpm_build "$REPO/build" -DCMAKE_BUILD_TYPE=Release >&2
    fi
    # The same workers must serve all the RSS run's requests: no recycling.
    export ITPM_CONF_EXTRA="${ITPM_CONF_EXTRA:-}"$'\n[server]\nmax_requests = 0\n'
    # GET /api/v1/regions/{code} needs a user: itpmd trusts a key of ours for
    # SSO, and every regions request carries a token signed with it (RS256,
    # the cheapest to verify of what itpmd accepts).
    if [ -z "$AUTH_HEADER" ]; then
        token=$("$ITPM_PYTHON" "$BENCH_DIR/sso_token.py" "$WORK/jwks.json" itpm-bench) ||
            itpm_die "cannot make an SSO token"
        AUTH_HEADER="Authorization: Bearer $token"
        ITPM_CONF_EXTRA+=$'\n[sso]\njwks_file = '"$WORK/jwks.json"$'\nissuer = itpm-bench\n'
    fi
    OWN_STACK="$WORK/stack"
    itpm_log "starting a stack in $OWN_STACK"
    "$REPO/scripts/stack" up "$OWN_STACK" >"$WORK/stack-up.log" 2>&1 ||
        { cat "$WORK/stack-up.log" >&2; itpm_die "scripts/stack up failed"; }
    ITPM_ENV="$OWN_STACK/env"
fi
[ -r "$ITPM_ENV" ] || itpm_die "ITPM_ENV=$ITPM_ENV is not readable"
# shellcheck disable=SC1090
. "$ITPM_ENV"

MASTER=$(itpm_read_pid "$ITPM_PIDFILE") || itpm_die "no itpmd pid in $ITPM_PIDFILE"
itpm_pid_alive "$MASTER" || itpm_die "itpmd (pid $MASTER) is not running"
WORKERS=$(itpm_ini_get "$ITPM_CONF" server workers 4)
LIVE=$(bench_children "$MASTER" | wc -l)
[ "$LIVE" -eq "$WORKERS" ] || itpm_log "warning: $ITPM_CONF says workers = $WORKERS, master $MASTER has $LIVE children"
MAX_REQUESTS=$(itpm_ini_get "$ITPM_CONF" server max_requests 10000)

bench_start_baseline "host=$ITPM_PG_HOST port=$ITPM_PG_PORT dbname=$ITPM_PG_DB user=$ITPM_PG_APP"
REG_H=()
[ -z "$AUTH_HEADER" ] || REG_H=(-H "$AUTH_HEADER")
for url in "$ITPM_URL/api/v1/regions/$REGION" "$BASE_URL/api/v1/regions/$REGION"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ITPM_CA" "${REG_H[@]}" "$url" || true)
    if [ "$code" = 401 ] && [ -z "$AUTH_HEADER" ]; then
        itpm_die "GET $url answers 401: set BENCH_AUTH_HEADER (e.g. 'Authorization: Bearer TOKEN') for this stack"
    fi
    [ "$code" = 200 ] || itpm_die "GET $url answers $code, not 200"
done

echo "itpm pool bench: $WORKERS workers each; wrk -t$THREADS -c$CONNS -d$DURATION --latency," \
    "$ROUNDS round(s), interleaved; $(nproc) CPUs"
echo "  itpmd    $ITPM_URL (pid $MASTER, ${ITPM_BIN:-$REPO/build/itpmd})"
echo "  baseline $BASE_URL (pid $BASE_PID, $BASELINE)"
if [ -n "$AUTH_HEADER" ]; then
    echo "  regions requests carry: ${AUTH_HEADER:0:40}… (${#AUTH_HEADER} bytes)"
else
    echo "  regions requests carry: no credential"
fi

# ---------------------------------------------------------------- throughput

declare -A PATHS=([healthz]=/healthz [regions]="/api/v1/regions/$REGION")
declare -A URLS=([itpmd]="$ITPM_URL" [baseline]="$BASE_URL")
RESULTS="$WORK/results"
: >"$RESULTS"

for ep in healthz regions; do
    for who in itpmd baseline; do
        hdr=()
        [ "$ep" = healthz ] || hdr=("${REG_H[@]}")
        bench_run_wrk "$WORK/warmup.out" -t"$THREADS" -c"$CONNS" -d"$WARMUP" "${hdr[@]}" "${URLS[$who]}${PATHS[$ep]}"
    done
done

# Interleaved ABBA order: odd rounds itpmd first, even rounds the reverse, so
# a slow drift of the machine weighs on both sides alike.
ORDER=("healthz itpmd" "healthz baseline" "regions itpmd" "regions baseline")
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then seq=(0 1 2 3); else seq=(3 2 1 0); fi
    for k in "${seq[@]}"; do
        read -r ep who <<<"${ORDER[$k]}"
        out="$WORK/wrk-$ep-$who-$r.out"
        hdr=()
        [ "$ep" = healthz ] || hdr=("${REG_H[@]}")
        bench_run_wrk "$out" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" "${URLS[$who]}${PATHS[$ep]}"
        printf '%s %s %s\n' "$ep" "$who" "$(bench_wrk_parse "$out")" >>"$RESULTS"
    done
done

# mean EP WHO FIELD: mean over the rounds (2 = req/s, 3 = p99 ms, 5 = errors summed).
mean() { awk -v ep="$1" -v who="$2" -v f="$3" '$1 == ep && $2 == who { s += $(f + 1); n++ }
                                               END { printf "%.6f", (f == 5 ? s : s / n) }' "$RESULTS"; }

for ep in healthz regions; do
    i_rps=$(mean "$ep" itpmd 2); i_p99=$(mean "$ep" itpmd 3); i_err=$(mean "$ep" itpmd 5)
    b_rps=$(mean "$ep" baseline 2); b_p99=$(mean "$ep" baseline 3); b_err=$(mean "$ep" baseline 5)
    label=$ep
    [ "$ep" = regions ] && label='regions/{code}'
    line=$(awk -v l="$label" -v ir="$i_rps" -v ip="$i_p99" -v br="$b_rps" -v bp="$b_p99" -v min="$RATIO_MIN" 'BEGIN {
        ratio = ir / br
        printf "%-18s itpmd %.1f req/s p99 %.2f ms | baseline %.1f req/s p99 %.2f ms | ratio %.2f %s",
               l, ir, ip, br, bp, ratio, (ratio >= min ? "PASS" : "FAIL") }')
    if [ "${i_err%.*}" -gt 0 ] || [ "${b_err%.*}" -gt 0 ]; then
        line="$line (errors: itpmd ${i_err%.*}, baseline ${b_err%.*}: FAIL)"
        FAILED=1
    fi
    case "$line" in *FAIL*) FAILED=1 ;; esac
    echo "$line"
done

# ---------------------------------------------------------------- RSS

# rss_run NAME MASTER URL: fresh workers, RSS_FIRST requests, snapshot, the
# rest up to RSS_TOTAL, snapshot; prints one line and returns 1 on failure.
rss_run() {
    local name=$1 master=$2 url=$3 first last
    first="$WORK/rss-$name-first"
    last="$WORK/rss-$name-last"
    bench_run_wrk "$WORK/rss-$name-1.out" -t1 -c"$CONNS" -d600s -s "$BENCH_DIR/count.lua" "${REG_H[@]}" "$url" -- "$RSS_FIRST"
    snapshot "$master" "$first"
    bench_run_wrk "$WORK/rss-$name-2.out" -t1 -c"$CONNS" -d600s -s "$BENCH_DIR/count.lua" "${REG_H[@]}" "$url" -- $((RSS_TOTAL - RSS_FIRST))
    snapshot "$master" "$last"
    local n1 n2 e1 e2
    read -r _ _ n1 e1 < <(bench_wrk_parse "$WORK/rss-$name-1.out")
    read -r _ _ n2 e2 < <(bench_wrk_parse "$WORK/rss-$name-2.out")
    awk -v name="$name" -v n1="$n1" -v n2="$n2" -v errs=$((e1 + e2)) \
        -v maxk="$RSS_MAX_KIB" -v growk="$RSS_GROWTH_KIB" '
        FNR == NR { a[$1] = $2; na++; next }
        { b[$1] = $2; nb++ }
        END {
            ma = mb = 0; g = -1e9; same = (na == nb && na > 0)
            for (p in a) { if (a[p] > ma) ma = a[p]; if (!(p in b)) same = 0 }
            for (p in b) { if (b[p] > mb) mb = b[p]; if ((p in a) && b[p] - a[p] > g) g = b[p] - a[p] }
            if (g == -1e9) g = 0
            ok = same && errs == 0 && mb <= maxk && g <= growk
            printf "%-8s worker RSS after %d req: max %.1f MiB; after %d: max %.1f MiB; growth %.2f MiB %s",
                   name, n1, ma / 1024, n1 + n2, mb / 1024, g / 1024, ok ? "PASS" : "FAIL"
            if (!same) printf " (workers were replaced during the run)"
            if (errs) printf " (%d errors)", errs
            printf "\n"
            exit !ok }' "$first" "$last"
}

# Fresh itpmd workers: HUP replaces them one by one (contract); wait until
# none of the old pids is left.
OLD=$(bench_children "$MASTER" | tr '\n' ' ')
kill -HUP "$MASTER"
fresh=""
for ((i = 0; i < 300; i++)); do
    sleep 0.1
    now=$(bench_children "$MASTER")
    [ "$(printf '%s\n' "$now" | grep -c .)" -eq "$WORKERS" ] || continue
    stale=0
    for p in $OLD; do printf '%s\n' "$now" | grep -qx "$p" && stale=1; done
    [ "$stale" -eq 0 ] && { fresh=1; break; }
done
[ -n "$fresh" ] || itpm_log "warning: itpmd did not replace its workers on HUP; measuring the current ones"
itpm_wait_url "$ITPM_URL/healthz" "$ITPM_CA" 15 || itpm_die "itpmd does not answer after HUP"
case "$MAX_REQUESTS" in
    0) ;;
    *) [ "$MAX_REQUESTS" -ge $((RSS_TOTAL * 2)) ] ||
        itpm_log "warning: max_requests = $MAX_REQUESTS recycles workers during the RSS run (set it to 0)" ;;
esac

rss_run itpmd "$MASTER" "$ITPM_URL/api/v1/regions/$REGION" || FAILED=1
# The baseline for reference (its workers are never replaced).
rss_run baseline "$BASE_PID" "$BASE_URL/api/v1/regions/$REGION" || true

if [ "$FAILED" -eq 0 ]; then
    echo "targets: ratio >= $RATIO_MIN on both, worker RSS <= $(mib "$RSS_MAX_KIB") MiB, growth <= $RSS_GROWTH_KIB KiB: PASS"
else
    echo "targets: ratio >= $RATIO_MIN on both, worker RSS <= $(mib "$RSS_MAX_KIB") MiB, growth <= $RSS_GROWTH_KIB KiB: FAIL"
fi
DONE=1
exit "$FAILED"
