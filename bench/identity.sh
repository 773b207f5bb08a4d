#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from traps
# bench/identity.sh — the identity benchmark: directory logins per second
# through nginx beside plain binds to the same slapd (the directory's own
# limit) with the same parallelism, and an authenticated GET /api/v1/session
# (cookie, bearer) beside the unauthenticated /healthz, interleaved in one run.
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
RATIO_MIN=${BENCH_RATIO_MIN:-0.7}
# Demo users the logins rotate over (scripts/ldap/demo.ldif), all with the
# demo password. Only correct passwords are ever sent: a wrong one would
# count towards the account's throttle.
USERS=${BENCH_USERS:-rev_city sub_psb cdo_psb auditor1 expert1 rev_city2 dir_city jr_fin ca_shuyang eval1}
BIND_PROCS=${BENCH_BIND_PROCS:-}
PROFILE=${BENCH_PROFILE:-}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-8}
# perf: one sample per 100 µs of CPU (cpu-clock works in VMs too).
PERF_PERIOD_NS=100000

WORK=""
OWN_STACK=""
BIND_PID=""
PERF_PID=""
PROF_PIDS=""
FAILED=0
DONE=""

# ---------------------------------------------------------------- cleanup

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    bench_stop_pid perf "$PERF_PID"
    bench_stop_pid wrk "$WRK_PID"
    bench_stop_pid ldap_binds "$BIND_PID"
    bench_teardown "$rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# run_binds OUT SECONDS [-s]: ldap_binds in the background (the traps stop
# it); OUT gets its one line, or the run fails.
run_binds() {
    local out=$1 secs=$2 mode=()
    [ "${3:-}" = -s ] && mode=(-s -D "$ITPM_LDAP_SERVICE_DN" -Y "$WORK/service.pw" -b "$ITPM_LDAP_BASE")
    "$LDAP_BINDS" -p "$BIND_PROCS" -t "$secs" -y "$WORK/demo.pw" "${mode[@]}" \
        "$ITPM_LDAP_URI" "${DNS[@]}" >"$out" 2>"$out.err" &
    BIND_PID=$!
    wait "$BIND_PID" || { cat "$out" "$out.err" >&2; itpm_die "ldap_binds failed"; }
    BIND_PID=""
}

# binds_parse FILE: "RATE P99_MS OPS ERRORS" from ldap_binds' line.
binds_parse() {
    awk '$1 == "ops" { print $8, $12, $2, $4; found = 1 }
         END { exit !found }' "$1" || { cat "$1" >&2; itpm_die "cannot parse $1"; }
}

psql_owner() {
    psql -X -q -At -h "$ITPM_PG_HOST" -p "$ITPM_PG_PORT" -U "$ITPM_PG_OWNER" -d "$ITPM_PG_DB" -c "$1"
}

# Successful logins leave one session row and one 'login' audit record each.
login_rows() {
    psql_owner "SELECT (SELECT count(*) FROM sessions) || ' ' ||
                       (SELECT count(*) FROM audit_log WHERE action = 'login')"
}

# stack_pids: the stack's processes (itpmd, PostgreSQL, slapd, nginx, a
# running ldap_binds, and their children), comma-separated.
stack_pids() {
    local p pg=""
    [ -r "$ITPM_PGDATA/postmaster.pid" ] && pg=$(head -n 1 "$ITPM_PGDATA/postmaster.pid" 2>/dev/null || true)
    for p in "$MASTER" "$pg" "$SLAPD" "$(itpm_read_pid "$ITPM_NGINX_PIDFILE" 2>/dev/null || true)" "$BIND_PID"; do
        [ -n "$p" ] || continue
        printf '%s\n' "$p"
        bench_children "$p"
    done | paste -sd, -
}

# itpmd's 2xx count (all workers, from /metrics).
requests_2xx() {
    curl -s --cacert "$ITPM_CA" "$ITPM_URL/metrics" |
        awk '/^itpm_requests_total\{class="2xx"\}/ { print $2; f = 1 } END { if (!f) print 0 }'
}

# perf_window NAME: a system-wide perf record of PROFILE_SECONDS into
# WORK/prof-NAME.data; PROF_PIDS gets the stack's processes at both ends.
perf_window() {
    local name=$1
    PROF_PIDS=$(stack_pids)
    perf record -q -a -g -e cpu-clock -c "$PERF_PERIOD_NS" -o "$WORK/prof-$name.data" \
        -- sleep "$PROFILE_SECONDS" >"$WORK/prof-$name.log" 2>&1 &
    PERF_PID=$!
    wait "$PERF_PID" || { cat "$WORK/prof-$name.log" >&2; itpm_die "perf record failed"; }
    PERF_PID=""
    PROF_PIDS="$PROF_PIDS,$(stack_pids)"
}

# perf_report NAME OPS LABEL TITLE: the split of the recorded CPU per operation.
perf_report() {
    perf script -i "$WORK/prof-$1.data" -F comm,pid,ip,sym >"$WORK/prof-$1.script" 2>/dev/null
    echo "  profile of $4 (perf record -a -g -e cpu-clock, ${PROFILE_SECONDS}s, the stack's processes only):"
    "$ITPM_PYTHON" "$BENCH_DIR/perf_split.py" "$WORK/prof-$1.script" "$PROF_PIDS" "$2" \
        "$((PERF_PERIOD_NS / 1000))" "$3" || true
}

# profile_wrk NAME LABEL TITLE COUNTER WRK_ARGS...: wrk for PROFILE_SECONDS
# + 3 s with the perf window in its middle; COUNTER (a function printing a
# running count of completed operations) read at both ends of the window.
profile_wrk() {
    local name=$1 label=$2 title=$3 counter=$4 before after
    shift 4
    wrk -t"$THREADS" -c"$CONNS" -d"$((PROFILE_SECONDS + 3))s" "$@" >"$WORK/prof-$name.wrk" 2>&1 &
    WRK_PID=$!
    sleep 1
    before=$($counter)
    perf_window "$name"
    after=$($counter)
    wait "$WRK_PID" || true
    WRK_PID=""
    perf_report "$name" "$((after - before))" "$label" "$title"
}

# profile_binds NAME LABEL TITLE [-s]: the same for ldap_binds, whose rate
# over its run gives the operations in the window.
profile_binds() {
    local name=$1 label=$2 title=$3 mode=() ops
    [ "${4:-}" = -s ] && mode=(-s -D "$ITPM_LDAP_SERVICE_DN" -Y "$WORK/service.pw" -b "$ITPM_LDAP_BASE")
    "$LDAP_BINDS" -p "$BIND_PROCS" -t "$((PROFILE_SECONDS + 2))" -y "$WORK/demo.pw" "${mode[@]}" \
        "$ITPM_LDAP_URI" "${DNS[@]}" >"$WORK/prof-$name.out" 2>&1 &
    BIND_PID=$!
    sleep 2 # its children connect, wait 1 s, then start
    perf_window "$name"
    wait "$BIND_PID" || { cat "$WORK/prof-$name.out" >&2; itpm_die "ldap_binds failed"; }
    BIND_PID=""
    ops=$(awk -v s="$PROFILE_SECONDS" '$1 == "ops" { printf "%d", $8 * s }' "$WORK/prof-$name.out")
    perf_report "$name" "$ops" "$label" "$title"
}

sessions_count() { login_rows | awk '{ print $1 }'; }

# ---------------------------------------------------------------- setup

[ -z "$PROFILE" ] || ITPM_PACKAGES+=(linux-perf)
itpm_install_packages
for tool in wrk curl cc psql ldapsearch; do
    command -v "$tool" >/dev/null || itpm_die "$tool not found"
done
[ -z "$PROFILE" ] || command -v perf >/dev/null || itpm_die "perf not found (BENCH_PROFILE)"
SECS=$(bench_seconds "$DURATION") || itpm_die "BENCH_DURATION=$DURATION is not a duration"
WARMUP_SECS=$(bench_seconds "$WARMUP") || itpm_die "BENCH_WARMUP=$WARMUP is not a duration"

WORK=$(mktemp -d /tmp/itpm-bench.XXXXXX)
# The stack lives inside it: the postgres user must traverse it. Its secrets
# (the password files) are 0600.
chmod 0755 "$WORK"

if [ -z "${ITPM_ENV:-}" ]; then
    if [ -z "${ITPM_BIN:-}" ] && [ -z "${BENCH_NO_BUILD:-}" ]; then
        itpm_log "building $REPO/build (Release)"
        # Its progress goes to stderr: stdout carries only the fixed-format lines.
        itpm_build "$REPO/build" -DCMAKE_BUILD_TYPE=Release >&2
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
for key in ITPM_LDAP_URI ITPM_LDAP_BASE ITPM_LDAP_SERVICE_DN ITPM_LDAP_SERVICE_PW \
    ITPM_DEMO_PASSWORD ITPM_SLAPD_PIDFILE ITPM_SSO_ISSUER; do
    [ -n "${!key:-}" ] || itpm_die "$ITPM_ENV has no $key: a stack with the demo directory and SSO keys is needed"
done

MASTER=$(itpm_read_pid "$ITPM_PIDFILE") || itpm_die "no itpmd pid in $ITPM_PIDFILE"
itpm_pid_alive "$MASTER" || itpm_die "itpmd (pid $MASTER) is not running"
SLAPD=$(itpm_read_pid "$ITPM_SLAPD_PIDFILE") || itpm_die "no slapd pid in $ITPM_SLAPD_PIDFILE"
itpm_pid_alive "$SLAPD" || itpm_die "slapd (pid $SLAPD) is not running"
WORKERS=$(itpm_ini_get "$ITPM_CONF" server workers 4)
LIVE=$(bench_children "$MASTER" | wc -l)
[ "$LIVE" -eq "$WORKERS" ] || itpm_log "warning: $ITPM_CONF says workers = $WORKERS, master $MASTER has $LIVE children"
# itpmd holds one bind connection per worker, so at most WORKERS binds are
# in flight: the bind loop gets as many processes, one connection each.
BIND_PROCS=${BIND_PROCS:-$WORKERS}

# No newline at the end: ldapsearch -y takes the whole file as the password.
(umask 077 && printf '%s' "$ITPM_DEMO_PASSWORD" >"$WORK/demo.pw" &&
    printf '%s' "$ITPM_LDAP_SERVICE_PW" >"$WORK/service.pw")

# The bind loop: the CMake target when built, else compiled here.
LDAP_BINDS=${BENCH_LDAP_BINDS:-}
if [ -z "$LDAP_BINDS" ]; then
    LDAP_BINDS="$(dirname "${ITPM_BIN:-$REPO/build/itpmd}")/bench_ldap_binds"
    if [ ! -x "$LDAP_BINDS" ] || [ "$BENCH_DIR/ldap_binds.c" -nt "$LDAP_BINDS" ]; then
        LDAP_BINDS="$WORK/ldap_binds"
        cc -std=c11 -O2 -Wall -Wextra -Werror -o "$LDAP_BINDS" "$BENCH_DIR/ldap_binds.c" -lldap -llber
    fi
fi

# Every user must log in, once, before any loop: a refusal stops the bench
# here instead of being repeated thousands of times.
read -r -a USER_LIST <<<"$USERS"
[ "${#USER_LIST[@]}" -gt 0 ] || itpm_die "BENCH_USERS is empty"
DNS=()
COOKIE=""
for u in "${USER_LIST[@]}"; do
    case "$u" in *[!A-Za-z0-9_.-]*) itpm_die "BENCH_USERS: unexpected user name '$u'" ;; esac
    printf '<login xmlns="urn:itpm:1"><username>%s</username><password>%s</password></login>' \
        "$u" "$(sed -e 's/&/\&amp;/g; s/</\&lt;/g' "$WORK/demo.pw")" >"$WORK/login-body.xml"
    code=$(curl -s --cacert "$ITPM_CA" -D "$WORK/login.h" -o "$WORK/login.xml" -w '%{http_code}' \
        -H 'Content-Type: application/xml' --data-binary @"$WORK/login-body.xml" \
        "$ITPM_URL/api/v1/session" || true)
    [ "$code" = 200 ] || { cat "$WORK/login.xml" >&2; itpm_die "login of demo user $u answers $code, not 200"; }
    [ -n "$COOKIE" ] || COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: *\([^;=]*itpm_session=[^;]*\).*/\1/p' "$WORK/login.h" | head -n 1 | tr -d '\r')
    dn=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$ITPM_LDAP_URI" -D "$ITPM_LDAP_SERVICE_DN" -y "$WORK/service.pw" \
        -b "$ITPM_LDAP_BASE" "(uid=$u)" 1.1 | sed -n 's/^dn: //p')
    [ "$(printf '%s\n' "$dn" | grep -c .)" -eq 1 ] || itpm_die "uid=$u: not exactly one plain DN in the directory"
    DNS+=("$dn")
done
[ -n "$COOKIE" ] || itpm_die "no session cookie in the login answer (see $WORK/login.h)"
COOKIE_H="Cookie: $COOKIE"
TOKEN=$("$REPO/scripts/sso-token" "$ITPM_STATE" --sub bench --roles reviewer --unit 321300-DATA \
    --region 321300 --ttl 14400) || itpm_die "scripts/sso-token failed"
BEARER_H="Authorization: Bearer $TOKEN"
for pair in "cookie|$COOKIE_H" "bearer|$BEARER_H"; do
    via=${pair%%|*}
    code=$(curl -s --cacert "$ITPM_CA" -o "$WORK/session-$via.xml" -w '%{http_code}' -H "${pair#*|}" \
        "$ITPM_URL/api/v1/session" || true)
    if [ "$code" != 200 ] || ! grep -q "<via>$via</via>" "$WORK/session-$via.xml"; then
        cat "$WORK/session-$via.xml" >&2
        itpm_die "GET /api/v1/session with the $via answers $code"
    fi
done

echo "itpm identity bench: $WORKERS workers; wrk -t$THREADS -c$CONNS -d$DURATION --latency;" \
    "ldap_binds $BIND_PROCS processes, one connection each; $ROUNDS round(s), interleaved; $(nproc) CPUs"
echo "  itpmd  $ITPM_URL (pid $MASTER, ${ITPM_BIN:-$REPO/build/itpmd})"
echo "  slapd  $ITPM_LDAP_URI (pid $SLAPD)"
echo "  logins rotate over ${#USER_LIST[@]} demo users: ${USER_LIST[*]}"

# ---------------------------------------------------------------- runs

# run_target NAME SECONDS OUT [--latency]: one run of a target.
run_target() {
    local name=$1 secs=$2 out=$3 lat=${4:-}
    local wrk_args=(-t"$THREADS" -c"$CONNS" -d"${secs}s")
    [ -z "$lat" ] || wrk_args+=(--latency)
    case "$name" in
        login) bench_run_wrk "$out" "${wrk_args[@]}" -s "$BENCH_DIR/login.lua" "$ITPM_URL" -- \
                   "$WORK/demo.pw" "${USER_LIST[@]}" ;;
        binds) run_binds "$out" "$secs" ;;
        dirlogin) run_binds "$out" "$secs" -s ;;
        cookie) bench_run_wrk "$out" "${wrk_args[@]}" -H "$COOKIE_H" "$ITPM_URL/api/v1/session" ;;
        bearer) bench_run_wrk "$out" "${wrk_args[@]}" -H "$BEARER_H" "$ITPM_URL/api/v1/session" ;;
        healthz) bench_run_wrk "$out" "${wrk_args[@]}" "$ITPM_URL/healthz" ;;
    esac
}

parse_target() {
    case "$1" in
        binds | dirlogin) binds_parse "$2" ;;
        *) bench_wrk_parse "$2" ;;
    esac
}

ORDER=(login binds dirlogin cookie healthz bearer)
for t in "${ORDER[@]}"; do
    run_target "$t" "$WARMUP_SECS" "$WORK/warmup.out"
done

RESULTS="$WORK/results"
: >"$RESULTS"
read -r S0 A0 < <(login_rows)
# Interleaved: odd rounds in ORDER, even rounds in reverse, so a drift of the
# machine weighs on both sides of every ratio alike.
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then seq=(0 1 2 3 4 5); else seq=(5 4 3 2 1 0); fi
    for k in "${seq[@]}"; do
        t=${ORDER[$k]}
        out="$WORK/run-$t-$r.out"
        run_target "$t" "$SECS" "$out" --latency
        printf '%s %s\n' "$t" "$(parse_target "$t" "$out")" >>"$RESULTS"
    done
done
read -r S1 A1 < <(login_rows)

# mean NAME FIELD: mean over the rounds (1 = ops/s, 2 = p99 ms); 3 and 4
# (operations, errors) are summed.
mean() { awk -v t="$1" -v f="$2" '$1 == t { s += $(f + 1); n++ }
                                  END { printf "%.6f", (f >= 3 ? s : s / n) }' "$RESULTS"; }

# line LABEL A_NAME A_TEXT A_UNIT B_NAME B_TEXT B_UNIT: one fixed-format line.
line() {
    local label=$1 a=$2 atext=$3 aunit=$4 b=$5 btext=$6 bunit=$7 out ae be
    out=$(awk -v l="$label" -v at="$atext" -v au="$aunit" -v bt="$btext" -v bu="$bunit" \
        -v ar="$(mean "$a" 1)" -v ap="$(mean "$a" 2)" -v br="$(mean "$b" 1)" -v bp="$(mean "$b" 2)" \
        -v min="$RATIO_MIN" 'BEGIN {
        ratio = ar / br
        printf "%-18s %s %.1f %s p99 %.2f ms | %s %.1f %s p99 %.2f ms | ratio %.2f %s",
               l, at, ar, au, ap, bt, br, bu, bp, ratio, (ratio >= min ? "PASS" : "FAIL") }')
    ae=$(mean "$a" 4); be=$(mean "$b" 4)
    if [ "${ae%.*}" -gt 0 ] || [ "${be%.*}" -gt 0 ]; then
        out="$out (errors: ${ae%.*} and ${be%.*}: FAIL)"
    fi
    case "$out" in *FAIL*) FAILED=1 ;; esac
    echo "$out"
}

line login login itpmd logins/s binds "slapd binds" binds/s
line session/cookie cookie itpmd req/s healthz healthz req/s
line session/bearer bearer itpmd req/s healthz healthz req/s

# Informational: the directory's share of a login, and the rows each login wrote.
awk -v dr="$(mean dirlogin 1)" -v dp="$(mean dirlogin 2)" -v lr="$(mean login 1)" -v br="$(mean binds 1)" 'BEGIN {
    printf "  (info) directory work of one login (search as the service account, then bind), same processes:" \
           " %.1f /s p99 %.2f ms; that over plain binds %.2f, logins over it %.2f\n", dr, dp, dr / br, lr / dr }'
ok_logins=$(awk '$1 == "login" { s += $4 - $5 } END { print s + 0 }' "$RESULTS")
echo "  (info) logins answered 200 in the timed runs: $ok_logins; sessions written meanwhile: $((S1 - S0));" \
    "'login' audit records: $((A1 - A0)) (a few more than the answers: requests in flight when wrk stops)"

# ---------------------------------------------------------------- profile

if [ -n "$PROFILE" ]; then
    profile_wrk login login "logins" sessions_count \
        -s "$BENCH_DIR/login.lua" "$ITPM_URL" -- "$WORK/demo.pw" "${USER_LIST[@]}"
    profile_binds binds bind "plain binds (slapd and ldap_binds)"
    profile_binds dirlogin "search+bind" "search+bind loop (slapd and ldap_binds)" -s
    profile_wrk cookie request "GET /api/v1/session with the cookie" requests_2xx \
        -H "$COOKIE_H" "$ITPM_URL/api/v1/session"
    profile_wrk healthz request "GET /healthz" requests_2xx "$ITPM_URL/healthz"
fi

if [ "$FAILED" -eq 0 ]; then
    echo "targets: ratio >= $RATIO_MIN on login, session/cookie and session/bearer: PASS"
else
    echo "targets: ratio >= $RATIO_MIN on login, session/cookie and session/bearer: FAIL"
fi
DONE=1
exit "$FAILED"
