#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from traps
# bench/lifecycle.sh — the lifecycle benchmark: through nginx with SSO bearer
# users, GET /api/v1/projects/{code} and a transition (defer at listing)
# beside the baseline program (bench/baseline.c) doing one keyed read and one
# UPDATE + INSERT transaction, interleaved in one run; then the project list
# over 100,000 projects, timed at the server from itpmd's request log.
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
READ_MIN=${BENCH_READ_RATIO_MIN:-0.6}
TX_MIN=${BENCH_TX_RATIO_MIN:-0.5}
LIST_MAX_MS=${BENCH_LIST_MAX_MS:-20}
LIST_PROJECTS=${BENCH_LIST_PROJECTS:-100000}
LIST_REQUESTS=${BENCH_LIST_REQUESTS:-50}
# Projects the transitions rotate over (stage listing, year 2000): each
# takes at most 100 defers between two resets of its list year (defer adds
# one, the column stops at 2100), so this many allow 100× as many per run.
TX_PROJECTS=${BENCH_TX_PROJECTS:-512}
DECL=${BENCH_DECLARATION:-/tmp/decl.xml}

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

psql_su() {
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$ITPM_PG_HOST" -p "$ITPM_PG_PORT" -U postgres -d "$ITPM_PG_DB" "$@"
}

token() {
    "$REPO/scripts/sso-token" "$ITPM_STATE" --ttl 14400 "$@" || itpm_die "scripts/sso-token failed"
}

# The transition projects' list years back to none, and their current
# versions into FILE ("code version" lines) for transition.lua.
tx_prepare() {
    psql_su -c "UPDATE projects SET list_year = NULL
                 WHERE region = '321300' AND year = 2000 AND list_year IS NOT NULL" >/dev/null
    psql_su -F ' ' -c "SELECT code, version FROM projects
                        WHERE region = '321300' AND year = 2000 ORDER BY code" >"$1"
}

# ---------------------------------------------------------------- setup

itpm_install_packages
for tool in wrk nginx curl cc psql; do
    command -v "$tool" >/dev/null || itpm_die "$tool not found"
done
[ -r "$DECL" ] || itpm_die "no declaration document at $DECL (BENCH_DECLARATION)"

WORK=$(mktemp -d /tmp/itpm-bench.XXXXXX)
chmod 0755 "$WORK"

if [ -z "${ITPM_ENV:-}" ]; then
    if [ -z "${ITPM_BIN:-}" ] && [ -z "${BENCH_NO_BUILD:-}" ]; then
        itpm_log "building $REPO/build (Release)"
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
[ -n "${ITPM_SSO_ISSUER:-}" ] || itpm_die "$ITPM_ENV has no ITPM_SSO_ISSUER: a stack with the demo SSO keys is needed"
[ -r "${ITPM_LOG:-}" ] || itpm_die "itpmd's request log ITPM_LOG=${ITPM_LOG:-} is not readable"

MASTER=$(itpm_read_pid "$ITPM_PIDFILE") || itpm_die "no itpmd pid in $ITPM_PIDFILE"
itpm_pid_alive "$MASTER" || itpm_die "itpmd (pid $MASTER) is not running"
WORKERS=$(itpm_ini_get "$ITPM_CONF" server workers 4)

# The baseline as the superuser: row-level security is forced on projects
# even for their owner, and the baseline is the bare keyed read and write.
bench_start_baseline "host=$ITPM_PG_HOST port=$ITPM_PG_PORT dbname=$ITPM_PG_DB user=postgres"

SUB_H="Authorization: Bearer $(token --sub bench-submitter --roles submitter --unit 321300-PSB --region 321300)"
REV_H="Authorization: Bearer $(token --sub bench-reviewer --roles reviewer --unit 321300-DATA --region 321300)"
CA_H="Authorization: Bearer $(token --sub bench-county-admin --roles county_admin --unit 321322-DATA --region 321322)"
JR_H="Authorization: Bearer $(token --sub bench-joint-reviewer --roles joint_reviewer --unit 321300-DRC --region 321300)"

# ---------------------------------------------------------------- data

# One project declared through the API by a submitter of 321300-PSB.
sed -e 's|<unit>[^<]*</unit>|<unit>321300-PSB</unit>|' "$DECL" >"$WORK/decl.xml"
code=$(curl -s --cacert "$ITPM_CA" -o "$WORK/created.xml" -w '%{http_code}' -H "$SUB_H" \
    -H 'Content-Type: application/xml' --data-binary @"$WORK/decl.xml" "$ITPM_URL/api/v1/projects" || true)
[ "$code" = 201 ] || { cat "$WORK/created.xml" >&2; itpm_die "POST /api/v1/projects answers $code, not 201"; }
READ_CODE=$(sed -n 's/.*<project[^>]* code="\([0-9-]*\)".*/\1/p' "$WORK/created.xml" | head -n 1)
[ -n "$READ_CODE" ] || itpm_die "no project code in the answer (see $WORK/created.xml)"

# The transition projects and the 100,000 of the list, as the superuser.
itpm_log "inserting $TX_PROJECTS projects at listing and $LIST_PROJECTS for the list"
psql_su >/dev/null <<SQL
BEGIN;
INSERT INTO projects (code, region, unit, year, serial, title, category, stage, budget_requested_fen)
SELECT '321300-2000-' || lpad(i::text, 5, '0'), '321300', '321300-PSB', 2000, i,
       'bench transition ' || i, 'new', 'listing', 50000000
  FROM generate_series(1, $TX_PROJECTS) i
ON CONFLICT (code) DO NOTHING;
INSERT INTO project_serials AS s (region, year, last_serial) VALUES ('321300', 2000, $TX_PROJECTS)
ON CONFLICT (region, year) DO UPDATE SET last_serial = greatest(s.last_serial, excluded.last_serial);
INSERT INTO projects (code, region, unit, year, serial, title, category, stage, budget_requested_fen)
SELECT r.region || '-2027-' || lpad(((i - 1) / 3 + 1)::text, 5, '0'), r.region, r.unit, 2027,
       (i - 1) / 3 + 1, 'bench list ' || i,
       (ARRAY['new', 'upgrade', 'operation', 'existing'])[i % 4 + 1]::project_category,
       (ARRAY['draft', 'registration', 'listing', 'construction', 'operation'])[(i / 3) % 5 + 1]::project_stage,
       (i % 1000 + 1) * 1000000
  FROM generate_series(1, $LIST_PROJECTS) i
  JOIN (VALUES (0, '321300', '321300-PSB'), (1, '321322', '321322-AGRI'), (2, '321323', '321323-EDU'))
       AS r (k, region, unit) ON r.k = (i - 1) % 3
ON CONFLICT (code) DO NOTHING;
INSERT INTO project_serials AS s (region, year, last_serial)
SELECT region, 2027, max(serial) FROM projects WHERE year = 2027 GROUP BY region
ON CONFLICT (region, year) DO UPDATE SET last_serial = greatest(s.last_serial, excluded.last_serial);
COMMIT;
ANALYZE projects;
SQL
TOTAL_PROJECTS=$(psql_su -c "SELECT count(*) FROM projects")

# Every target answers 200 once before any loop.
for pair in "itpmd|$ITPM_URL/api/v1/projects/$READ_CODE" "baseline|$BASE_URL/bench/project/$READ_CODE"; do
    code=$(curl -s --cacert "$ITPM_CA" -o "$WORK/read-${pair%%|*}.xml" -w '%{http_code}' -H "$REV_H" \
        "${pair#*|}" || true)
    [ "$code" = 200 ] || { cat "$WORK/read-${pair%%|*}.xml" >&2; itpm_die "GET ${pair#*|} answers $code"; }
done
tx_prepare "$WORK/codes"
read -r c1 v1 <"$WORK/codes"
code=$(curl -s --cacert "$ITPM_CA" -D "$WORK/tx.h" -o "$WORK/tx.xml" -w '%{http_code}' -H "$REV_H" \
    -H 'Content-Type: application/xml' -H "If-Match: \"$v1\"" \
    --data-binary '<transition xmlns="urn:itpm:1" action="defer"/>' \
    "$ITPM_URL/api/v1/projects/$c1/transitions" || true)
[ "$code" = 200 ] || { cat "$WORK/tx.xml" >&2; itpm_die "the defer of $c1 answers $code"; }
grep -qi "^etag: \"$((v1 + 1))\"" "$WORK/tx.h" || itpm_die "the defer of $c1 did not answer ETag \"$((v1 + 1))\""
grep -qi '^x-request-id:' "$WORK/tx.h" || itpm_die "nginx does not echo X-Request-Id (transition.lua needs it)"
code=$(curl -s --cacert "$ITPM_CA" -o "$WORK/tx-base.xml" -w '%{http_code}' -X POST "$BASE_URL/bench/tx/$c1" || true)
[ "$code" = 200 ] || { cat "$WORK/tx-base.xml" "$WORK/baseline.log" >&2; itpm_die "baseline /bench/tx/$c1 answers $code"; }

echo "itpm lifecycle bench: $WORKERS workers each; wrk -t$THREADS -c$CONNS -d$DURATION --latency," \
    "$ROUNDS round(s), interleaved; $(nproc) CPUs; $TOTAL_PROJECTS projects"
echo "  itpmd    $ITPM_URL (pid $MASTER, ${ITPM_BIN:-$REPO/build/itpmd})"
echo "  baseline $BASE_URL (pid $BASE_PID, $BASELINE, as postgres)"
echo "  read $READ_CODE as a city reviewer (SSO bearer); transitions: defer at listing over $TX_PROJECTS projects"

# ---------------------------------------------------------------- runs

# run_target NAME SECONDS OUT [--latency]
run_target() {
    local name=$1 secs=$2 out=$3 lat=${4:-}
    local args=(-t"$THREADS" -c"$CONNS" -d"${secs}s")
    [ -z "$lat" ] || args+=(--latency)
    case "$name" in
        read-itpmd) bench_run_wrk "$out" "${args[@]}" -H "$REV_H" "$ITPM_URL/api/v1/projects/$READ_CODE" ;;
        read-baseline) bench_run_wrk "$out" "${args[@]}" -H "$REV_H" "$BASE_URL/bench/project/$READ_CODE" ;;
        tx-itpmd | tx-baseline)
            tx_prepare "$WORK/codes"
            bench_run_wrk "$out" "${args[@]}" -H "$REV_H" -s "$BENCH_DIR/transition.lua" \
                "$([ "$name" = tx-itpmd ] && echo "$ITPM_URL" || echo "$BASE_URL")" -- \
                "${name#tx-}" "$THREADS" "$WORK/codes" ;;
    esac
}

SECS=$(bench_seconds "$DURATION") || itpm_die "BENCH_DURATION=$DURATION is not a duration"
WARMUP_SECS=$(bench_seconds "$WARMUP") || itpm_die "BENCH_WARMUP=$WARMUP is not a duration"
ORDER=(read-itpmd read-baseline tx-itpmd tx-baseline)
for t in "${ORDER[@]}"; do
    run_target "$t" "$WARMUP_SECS" "$WORK/warmup-$t.out"
done
events() { psql_su -c "SELECT count(*) FILTER (WHERE actor <> 'bench') || ' ' || count(*) FILTER (WHERE actor = 'bench')
                         FROM project_events WHERE action = 'defer'"; }
read -r E0_I E0_B < <(events)
# The whole machine's CPU time as "busy idle" jiffies (/proc/stat; steal,
# time the hypervisor gave to other guests, counts as neither).
cpu_jiffies() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 ":" $5 + $6; exit }' /proc/stat; }
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, ":"); split(b, y, ":")
                                             printf "%d %d", y[1] - x[1], y[2] - x[2] }'; }
RESULTS="$WORK/results"
: >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then seq=(0 1 2 3); else seq=(3 2 1 0); fi
    for k in "${seq[@]}"; do
        t=${ORDER[$k]}
        out="$WORK/run-$t-$r.out"
        read -r c0 < <(cpu_jiffies)
        run_target "$t" "$SECS" "$out" --latency
        read -r c1 < <(cpu_jiffies)
        printf '%s %s %s\n' "$t" "$(bench_wrk_parse "$out")" "$(cpu_delta "$c0" "$c1")" >>"$RESULTS"
    done
done
read -r E1_I E1_B < <(events)

# mean NAME FIELD: 1 = req/s, 2 = p99 ms (means); 3 = requests, 4 = errors (sums).
mean() { awk -v t="$1" -v f="$2" '$1 == t { s += $(f + 1); n++ }
                                  END { printf "%.6f", (f >= 3 ? s : s / n) }' "$RESULTS"; }

line() {
    local label=$1 what=$2 min=$3 out ie be
    out=$(awk -v l="$label" -v ir="$(mean "$what-itpmd" 1)" -v ip="$(mean "$what-itpmd" 2)" \
        -v br="$(mean "$what-baseline" 1)" -v bp="$(mean "$what-baseline" 2)" -v min="$min" 'BEGIN {
        ratio = ir / br
        printf "%-13s itpmd %.1f req/s p99 %.2f ms | baseline %.1f req/s p99 %.2f ms | ratio %.2f %s",
               l, ir, ip, br, bp, ratio, (ratio >= min ? "PASS" : "FAIL") }')
    ie=$(mean "$what-itpmd" 4); be=$(mean "$what-baseline" 4)
    if [ "${ie%.*}" -gt 0 ] || [ "${be%.*}" -gt 0 ]; then
        out="$out (non-200 or socket errors: itpmd ${ie%.*}, baseline ${be%.*}: FAIL)"
    fi
    case "$out" in *FAIL*) FAILED=1 ;; esac
    echo "$out"
}
line "project read" read "$READ_MIN"
line "transition" tx "$TX_MIN"
# The ratio of each round's pair of runs: the spread shows how much of a
# line's verdict is the machine's noise.
by_round() { awk -v a="$1-itpmd" -v b="$1-baseline" '$1 == a { x[++i] = $2 } $1 == b { y[++j] = $2 }
                 END { for (k = 1; k <= i && k <= j; k++) printf " %.2f", x[k] / y[k] }' "$RESULTS"; }
echo "  (info) ratio by round: project read$(by_round read); transition$(by_round tx)"
echo "  (info) transitions answered in the timed runs: itpmd $(mean tx-itpmd 3 | cut -d. -f1)," \
    "baseline $(mean tx-baseline 3 | cut -d. -f1); defer events written meanwhile: itpmd $((E1_I - E0_I))," \
    "baseline $((E1_B - E0_B)) (a few more than the answers: requests in flight when wrk stops)"
# CPU per answer of the whole machine (the stack, nginx, wrk): a target that
# leaves CPU idle is waiting on something (a lock, the disk), not computing.
cpu_line() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" '$1 == t { n += $4; b += $6; i += $7 }
                 END { printf "%.0f µs (idle %.0f%%)", (n ? b * 1e6 / hz / n : 0), (b + i ? 100 * i / (b + i) : 0) }' "$RESULTS"; }
echo "  (info) machine CPU per answer: project read itpmd $(cpu_line read-itpmd), baseline" \
    "$(cpu_line read-baseline); transition itpmd $(cpu_line tx-itpmd), baseline $(cpu_line tx-baseline)"
for t in tx-itpmd tx-baseline; do
    grep -h '^transition' "$WORK"/run-"$t"-*.out 2>/dev/null | head -n 3 | sed 's/^/  (info) /' || true
done

# ---------------------------------------------------------------- list

# Each query LIST_REQUESTS times over one connection (curl reuses it), with
# an X-Request-Id of its own; the times are the request log's.
LIST_QUERIES=("offset 0|limit=50&offset=0" "offset 100|limit=50&offset=100" "offset 5000|limit=50&offset=5000"
    "stage=listing|limit=50&stage=listing" "region=321322|limit=50&region=321322")
# A joint reviewer's scope is worked out per project (the departments its
# sign-off needs), the one scope not read off the row's own columns.
for who in reviewer county_admin joint_reviewer; do
    case $who in
        reviewer) hdr=$REV_H ;;
        county_admin) hdr=$CA_H ;;
        *) hdr=$JR_H ;;
    esac
    for q in "${LIST_QUERIES[@]}"; do
        label=${q%%|*}
        rid="list-$who-$(printf '%s' "$label" | tr -c 'A-Za-z0-9' '_')-$$"
        urls=()
        for ((n = 0; n < LIST_REQUESTS; n++)); do urls+=("$ITPM_URL/api/v1/projects?${q#*|}"); done
        curl -s --cacert "$ITPM_CA" -H "$hdr" -H "X-Request-Id: $rid" -o /dev/null \
            -w '%{http_code}\n' "${urls[@]}" >"$WORK/list-$rid.codes" || true
        sleep 0.2 # the log line is written after the answer is sent
        out=$(awk -v rid="rid=$rid" -v n="$LIST_REQUESTS" -v max="$LIST_MAX_MS" -v l="$who $label" '
            { for (i = 1; i <= NF; i++) if ($i == rid) {
                  if ($(i + 3) != 200) bad++
                  d = $(i + 4); sub(/ms$/, "", d); t[++c] = d + 0; break } }
            END {
                if (c == 0) { printf "list (100k)   %s: no lines in the request log FAIL\n", l; exit 1 }
                for (i = 2; i <= c; i++) { v = t[i]; j = i - 1; while (j > 0 && t[j] > v) { t[j + 1] = t[j]; j-- } t[j + 1] = v }
                med = (c % 2) ? t[(c + 1) / 2] : (t[c / 2] + t[c / 2 + 1]) / 2
                p95 = t[int(0.95 * c + 0.999999)]
                ok = med < max && !bad && c == n
                printf "list (100k)   %-26s median %.2f ms p95 %.2f ms (%d requests) %s", l ":", med, p95, c, ok ? "PASS" : "FAIL"
                if (bad) printf " (%d not 200)", bad
                if (c != n) printf " (%d of %d logged)", c, n
                printf "\n"; exit !ok }' "$ITPM_LOG") || FAILED=1
        echo "$out"
    done
done

if [ "$FAILED" -eq 0 ]; then verdict=PASS; else verdict=FAIL; fi
echo "targets: ratio >= $READ_MIN on project read, >= $TX_MIN on transition, list median < $LIST_MAX_MS ms at the server: $verdict"
DONE=1
exit "$FAILED"
