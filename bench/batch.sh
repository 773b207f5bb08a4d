#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from traps
# bench/batch.sh — the bulk batch benchmark: POST /api/v1/batches of N
# records (bench/gen_batch.py) through nginx as a county admin, end to end to
# the 201, beside the libraries' own limit measured in the same run on the
# same file: `xmllint --noout --stream --schema xsd/itpm.xsd` plus `psql
# \copy` of every row the batch stores (projects, data_resources,
# project_events) as CSV into tables shaped like those (same indexes, the same
# foreign keys: projects to regions, units and a copy of its batches row, the
# other two to the projects copy). Also the peak RSS (VmHWM) of itpmd's
# workers per size, itpmd restarted before each. Prints figures; it is not a
# test. See bench/README.md.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

SIZES=${BATCH_SIZES:-100000 1000000}
RATIO_MAX=${BENCH_RATIO_MAX:-1.5}
RSS_MAX_MIB=${BENCH_RSS_MAX_MIB:-64}
GROWTH_MAX_MIB=${BENCH_RSS_GROWTH_MAX_MIB:-2}
USER_NAME=${BENCH_USER:-ca_shuyang}
REGION=${BENCH_REGION:-321322}
UNIT=${BENCH_UNIT:-321322-AGRI}
YEAR_START=${BENCH_YEAR_START:-2031}
PER_YEAR=${BENCH_PER_YEAR:-90000}
# Disk a size needs at its peak, per record: the XML (~590 B), the CSV files
# (~320 B), nginx's temporary copy of the body (~590 B) and what PostgreSQL
# writes for it (projects, data resources, events, the baseline's tables, their
# indexes and WAL): a little over 3 KiB a record was seen; twice that, and more.
DISK_PER_RECORD=${BENCH_DISK_PER_RECORD:-8192}

WORK=""
OWN_STACK=""
CHILD_PID=""
FAILED=0
DONE=""

# ---------------------------------------------------------------- cleanup

# A folder kept after an error keeps the logs, not the gigabytes: the batch
# files, the database and nginx's buffered bodies go (all stay with
# BENCH_KEEP); the stack's logs are in WORK/stack/log.
bench_prune_kept() {
    rm -rf "$WORK"/batch-*.xml "$WORK"/csv-* "$WORK"/result-*.xml \
        "$WORK/stack/pg" "$WORK/stack/nginx/tmp"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    bench_stop_pid "${CHILD_NAME:-child}" "$CHILD_PID"
    bench_teardown "$rc" bench_prune_kept
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# timed NAME OUT_LOG CMD...: runs CMD in the background (so the traps can stop
# it), output to OUT_LOG; sets ELAPSED (seconds) and returns its status.
ELAPSED=""
timed() {
    local name=$1 log=$2 t0 t1 rc=0
    shift 2
    t0=$EPOCHREALTIME
    "$@" >"$log" 2>&1 &
    CHILD_PID=$!
    CHILD_NAME=$name
    wait "$CHILD_PID" || rc=$?
    t1=$EPOCHREALTIME
    CHILD_PID=""
    ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    return "$rc"
}

psql_su() {
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$ITPM_PG_HOST" -p "$ITPM_PG_PORT" -U postgres -d "$ITPM_PG_DB" "$@"
}
psql_owner() {
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$ITPM_PG_HOST" -p "$ITPM_PG_PORT" -U "$ITPM_PG_OWNER" -d "$ITPM_PG_DB" "$@"
}

# Free bytes on the file system of a folder.
free_bytes() { df -P -B1 "$1" | awk 'NR == 2 { print $4 }'; }

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# worker_hwm MASTER: the largest VmHWM (kB) over the master's children.
worker_hwm() {
    local pid max=0 v
    for pid in $(bench_children "$1"); do
        v=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
    done
    echo "$max"
}

restart_itpmd() {
    "$REPO/scripts/stack" itpmd-stop "$OWN_STACK" >>"$WORK/stack-restart.log" 2>&1 ||
        { tail -n 20 "$WORK/stack-restart.log" >&2; itpm_die "scripts/stack itpmd-stop failed"; }
    "$REPO/scripts/stack" itpmd-start "$OWN_STACK" >>"$WORK/stack-restart.log" 2>&1 ||
        { tail -n 20 "$WORK/stack-restart.log" >&2; itpm_die "scripts/stack itpmd-start failed"; }
    MASTER=$(itpm_read_pid "$ITPM_PIDFILE") || itpm_die "no itpmd pid in $ITPM_PIDFILE"
    itpm_wait_url "$ITPM_URL/healthz" "$ITPM_CA" 30 || itpm_die "itpmd does not answer /healthz after its restart"
    # Every worker forked (the master starts them all before /healthz, but
    # give a late one a moment).
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(bench_children "$MASTER" | wc -l)" -ge "$WORKERS" ] && break
        sleep 0.1
    done
}

# login: a session of USER_NAME; sets CSRF, the cookie is in $WORK/cookies.
login() {
    local code
    rm -f "$WORK/cookies"
    printf '<login xmlns="urn:itpm:1"><username>%s</username><password>%s</password></login>' \
        "$USER_NAME" "$ITPM_DEMO_PASSWORD" >"$WORK/login.xml"
    code=$(curl -s --cacert "$ITPM_CA" -c "$WORK/cookies" -o "$WORK/session.xml" -w '%{http_code}' \
        -H 'Content-Type: application/xml' --data-binary @"$WORK/login.xml" \
        "$ITPM_URL/api/v1/session" || true)
    rm -f "$WORK/login.xml"
    [ "$code" = 200 ] || { cat "$WORK/session.xml" >&2; itpm_die "login of $USER_NAME answers $code, not 200"; }
    CSRF=$(sed -n 's|.*<csrfToken>\([^<]*\)</csrfToken>.*|\1|p' "$WORK/session.xml")
    [ -n "$CSRF" ] || itpm_die "no csrfToken in the login answer (see $WORK/session.xml)"
}

# ---------------------------------------------------------------- setup

itpm_install_packages
if ! command -v xmllint >/dev/null && itpm_is_root; then
    itpm_log "installing libxml2-utils (xmllint)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libxml2-utils >&2 ||
        itpm_die "could not install libxml2-utils"
fi
for tool in xmllint psql curl python3 df; do
    command -v "$tool" >/dev/null || itpm_die "$tool not found"
done

# Sizes: positive integers; records of one size get years of their own
# (codes allow 99,999 serials per region and year).
read -r -a SIZE_LIST <<<"$SIZES"
[ "${#SIZE_LIST[@]}" -gt 0 ] || itpm_die "BATCH_SIZES is empty"
MAX_N=0
YEARS_NEEDED=0
for n in "${SIZE_LIST[@]}"; do
    case "$n" in '' | *[!0-9]* | 0*) itpm_die "BATCH_SIZES: $n is not a positive integer" ;; esac
    [ "$n" -gt "$MAX_N" ] && MAX_N=$n
    YEARS_NEEDED=$((YEARS_NEEDED + (n + PER_YEAR - 1) / PER_YEAR))
done
[ $((YEAR_START + YEARS_NEEDED - 1)) -le 2100 ] ||
    itpm_die "BATCH_SIZES need $YEARS_NEEDED years from $YEAR_START at $PER_YEAR records a year: past 2100"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/itpm-bench.XXXXXX")
chmod 0755 "$WORK"

# Disk: the largest size at its peak, plus what the smaller ones leave in
# PostgreSQL (their files are removed as soon as they are measured).
need=0
for n in "${SIZE_LIST[@]}"; do need=$((need + n * DISK_PER_RECORD)); done
have=$(free_bytes "$WORK")
if [ "$have" -lt "$need" ]; then
    itpm_die "not enough free disk in $(dirname "$WORK"): $((have / 1048576)) MiB free, about" \
        "$((need / 1048576)) MiB needed for BATCH_SIZES=\"$SIZES\" (XML, CSV, nginx's copy, PostgreSQL);" \
        "free some space, set TMPDIR to a larger file system, or use smaller sizes"
fi

if [ -z "${ITPM_BIN:-}" ] && [ -z "${BENCH_NO_BUILD:-}" ]; then
    itpm_log "building $REPO/build (Release)"
    itpm_build "$REPO/build" -DCMAKE_BUILD_TYPE=Release >&2
fi
# The same workers for the whole size (VmHWM is per process), and [batch]
# limits that fit the largest size: ~590 bytes a record, 1 KiB allowed.
max_body=$((MAX_N * 1024))
[ "$max_body" -ge $((1024 * 1024 * 1024)) ] || max_body=$((1024 * 1024 * 1024))
export ITPM_CONF_EXTRA="${ITPM_CONF_EXTRA:-}"$'\n[server]\nmax_requests = 0\n[batch]\nmax_body = '"$max_body"$'\nmax_records = '"$MAX_N"$'\ntimeout = '"${BENCH_BATCH_TIMEOUT:-3600}"$'\n'
OWN_STACK="$WORK/stack"
itpm_log "starting a stack in $OWN_STACK"
"$REPO/scripts/stack" up "$OWN_STACK" >"$WORK/stack-up.log" 2>&1 ||
    { cat "$WORK/stack-up.log" >&2; itpm_die "scripts/stack up failed"; }
ITPM_ENV="$OWN_STACK/env"
# shellcheck disable=SC1090
. "$ITPM_ENV"
[ -n "${ITPM_DEMO_PASSWORD:-}" ] || itpm_die "$ITPM_ENV has no ITPM_DEMO_PASSWORD (the demo directory is needed)"
PG_LOG="$ITPM_STATE/log/pg.log"
WORKERS=$(itpm_ini_get "$ITPM_CONF" server workers 4)
MASTER=$(itpm_read_pid "$ITPM_PIDFILE") || itpm_die "no itpmd pid in $ITPM_PIDFILE"
login

echo "itpm batch bench: sizes $SIZES; $WORKERS workers (max_requests 0), itpmd restarted before each size; $(nproc) CPUs"
echo "  itpmd    $ITPM_URL (pid $MASTER, ${ITPM_BIN:-$REPO/build/itpmd}); POST /api/v1/batches as $USER_NAME" \
    "(session cookie + X-CSRF-Token), records of $UNIT, curl --data-binary"
echo "  baseline xmllint --noout --stream --schema xsd/itpm.xsd FILE, then psql \\copy of the same rows (CSV)" \
    "into fresh bench_projects, bench_data_resources, bench_project_events (LIKE ... INCLUDING ALL," \
    "the real FKs: regions, units, bench_batches (one row); bench_projects (id)) as $ITPM_PG_OWNER, one \\copy each"

# ---------------------------------------------------------------- sizes

RESULTS="$WORK/results"
: >"$RESULTS"
year=$YEAR_START
k=0
for n in "${SIZE_LIST[@]}"; do
    k=$((k + 1))
    xml="$WORK/batch-$n.xml"
    csvdir="$WORK/csv-$n"
    res="$WORK/result-$n.xml"
    id="bench-$k-$n-$$"
    label=$(printf 'batch %-8s' "$n")

    # 1. The files (not timed).
    have=$(free_bytes "$WORK")
    [ "$have" -ge $((n * DISK_PER_RECORD)) ] ||
        itpm_die "not enough free disk for $n records: $((have / 1048576)) MiB free, about" \
            "$((n * DISK_PER_RECORD / 1048576)) MiB needed"
    itpm_log "generating $n records ($id, years $year..$((year + (n - 1) / PER_YEAR)))"
    timed gen_batch "$WORK/gen-$n.log" python3 "$BENCH_DIR/gen_batch.py" --out "$xml" --records "$n" \
        --id "$id" --region "$REGION" --unit "$UNIT" --year-start "$year" --per-year "$PER_YEAR" \
        --ref-prefix "b$k-" --csv-dir "$csvdir" --batch-pk "$k" --actor "$USER_NAME" --role county_admin ||
        { cat "$WORK/gen-$n.log" >&2; itpm_die "gen_batch.py failed"; }
    gen_s=$ELAPSED
    year=$((year + (n + PER_YEAR - 1) / PER_YEAR))
    bytes=$(stat -c %s "$xml")
    sync "$xml" "$csvdir"/*.csv

    # 2. The baseline: xmllint, then one \copy per table into fresh tables.
    itpm_log "xmllint --stream --schema over $((bytes / 1048576)) MiB"
    timed xmllint "$WORK/xmllint-$n.log" xmllint --noout --stream --schema "$REPO/xsd/itpm.xsd" "$xml" ||
        { tail -n 5 "$WORK/xmllint-$n.log" >&2; itpm_die "xmllint does not validate $xml"; }
    xmllint_s=$ELAPSED
    # Every row batch_apply() stores, each table shaped like the real one
    # (LIKE ... INCLUDING ALL: columns, defaults, identity, checks, indexes)
    # plus the foreign keys the real tables have (LIKE copies no foreign
    # key), made before the copies so they pay the same checks: projects to
    # regions, units and bench_batches (the batches row, id = --batch-pk, not
    # timed), the other two to the projects copy. No row-level security
    # (itpmd's own cost). The projects rows carry their ids (COPY writes given
    # values into the GENERATED ALWAYS identity column), the batch columns and
    # created_by; the other two refer to those ids.
    sha=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$WORK/gen-$n.log")
    psql_owner -c "SET client_min_messages = warning" \
        -c "DROP TABLE IF EXISTS bench_project_events, bench_data_resources, bench_projects, bench_batches" \
        -c "CREATE TABLE bench_batches (LIKE batches INCLUDING ALL)" \
        -c "INSERT INTO bench_batches (id, region, batch_id, kind, submitted, sha256, records, created, bytes, submitter)
            OVERRIDING SYSTEM VALUE VALUES ($k, '$REGION', '$id', 'projects', false, '$sha', $n, $n, $bytes, '$USER_NAME')" \
        -c "CREATE TABLE bench_projects (LIKE projects INCLUDING ALL)" \
        -c "CREATE TABLE bench_data_resources (LIKE data_resources INCLUDING ALL)" \
        -c "CREATE TABLE bench_project_events (LIKE project_events INCLUDING ALL)" \
        -c "ALTER TABLE bench_projects ADD FOREIGN KEY (region) REFERENCES regions (code)" \
        -c "ALTER TABLE bench_projects ADD FOREIGN KEY (unit) REFERENCES units (code)" \
        -c "ALTER TABLE bench_projects ADD FOREIGN KEY (batch_id) REFERENCES bench_batches (id)" \
        -c "ALTER TABLE bench_data_resources ADD FOREIGN KEY (project_id) REFERENCES bench_projects (id)" \
        -c "ALTER TABLE bench_project_events ADD FOREIGN KEY (project_id) REFERENCES bench_projects (id)"
    psql_su -c "CHECKPOINT"
    copy_s=""
    for t in projects data_resources project_events; do
        f="$csvdir/$t.csv"
        cols=$(head -n 1 "$f")
        itpm_log "psql \\copy of $(($(wc -l <"$f") - 1)) rows into bench_$t"
        timed psql "$WORK/copy-$n-$t.log" psql_owner \
            -c "\\copy bench_$t ($cols) FROM '$f' WITH (FORMAT csv, HEADER true)" ||
            { cat "$WORK/copy-$n-$t.log" >&2; itpm_die "psql \\copy into bench_$t failed"; }
        copy_s="$copy_s $ELAPSED"
    done
    read -r copy_p copy_r copy_e <<<"$copy_s"
    rows=$(psql_owner -c "SELECT (SELECT count(*) FROM bench_projects) || ' ' ||
                                 (SELECT count(*) FROM bench_data_resources) || ' ' ||
                                 (SELECT count(*) FROM bench_project_events)")
    # One data resource and one event per record (gen_batch.py writes one
    # <resource> a record and no --submit).
    [ "$rows" = "$n $n $n" ] ||
        itpm_die "bench_projects, bench_data_resources, bench_project_events hold $rows rows after the \\copy, not $n each"
    psql_owner -c "DROP TABLE bench_project_events, bench_data_resources, bench_projects, bench_batches"

    # 3. itpmd: a fresh session (kept in PostgreSQL, so it outlives the
    # restart), fresh workers, then the POST: the login's directory and TLS
    # work is not in any worker's VmHWM, only the batch is.
    login
    restart_itpmd
    hwm0=$(worker_hwm "$MASTER")
    psql_su -c "CHECKPOINT"
    pg_off=$(stat -c %s "$PG_LOG" 2>/dev/null || echo 0)
    log_off=$(stat -c %s "$ITPM_LOG" 2>/dev/null || echo 0)
    itpm_log "POST /api/v1/batches: $n records"
    timed curl "$WORK/post-$n.log" curl -sS --cacert "$ITPM_CA" -b "$WORK/cookies" \
        -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/xml' --data-binary @"$xml" \
        -o "$res" -w '%{http_code} %{time_total} %{size_upload} %{size_download}\n' \
        "$ITPM_URL/api/v1/batches" || true
    read -r status total up dl <"$WORK/post-$n.log" || true
    if [ "${status:-}" != 201 ]; then
        cat "$WORK/post-$n.log" >&2
        [ -s "$res" ] && head -c 2000 "$res" >&2 && echo >&2
        tail -n 5 "$ITPM_LOG" >&2
        itpm_die "POST /api/v1/batches of $n records answers ${status:-nothing} after ${ELAPSED} s, not 201"
    fi
    hwm=$(worker_hwm "$MASTER")
    # The worker that served it (from the request log, written just after
    # the answer), for information.
    for ((i = 0; i < 20; i++)); do
        tail -c +"$((log_off + 1))" "$ITPM_LOG" | grep -q ' POST /api/v1/batches 201 ' && break
        sleep 0.1
    done
    pid=$(tail -c +"$((log_off + 1))" "$ITPM_LOG" |
        sed -n 's|.* POST /api/v1/batches 201 .* pid=\([0-9]*\).*|\1|p' | tail -n 1)
    pid_hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${pid:-0}/status" 2>/dev/null || true)
    codes=$(grep -o '<code ' "$res" | wc -l)
    head_ok=1
    grep -q "records=\"$n\" created=\"$n\"" "$res" || head_ok=0
    rm -rf "$xml" "$csvdir" "$res"

    # 4. The lines.
    # The time target is the issue's: on the largest batch (1,000,000
    # records by default); smaller sizes are shown for the RSS comparison.
    out=$(awk -v l="$label" -v n="$n" -v it="$total" -v xl="$xmllint_s" -v cp="$copy_p" -v cr="$copy_r" \
        -v ce="$copy_e" -v max="$RATIO_MAX" -v largest="$MAX_N" 'BEGIN {
        cs = cp + cr + ce; base = xl + cs; ratio = it / base
        verdict = n == largest ? sprintf("(target <= %s) %s", max, ratio <= max ? "PASS" : "FAIL") \
                               : "(info; the target is on the largest size)"
        printf "%s itpmd %.1f s (%.0f records/s) | xmllint --stream %.1f s + psql \\copy %.1f s (projects %.1f + data_resources %.1f + project_events %.1f) = %.1f s | ratio %.2f %s",
               l, it, n / it, xl, cs, cp, cr, ce, base, ratio, verdict }')
    if [ "$codes" -ne "$n" ] || [ "$head_ok" -ne 1 ]; then
        out="$out (201 with $codes codes, not $n: FAIL)"
    fi
    case "$out" in *FAIL*) FAILED=1 ;; esac
    echo "$out"
    # The earlier reading, projects rows alone (no targets).
    awk -v l="$label" -v it="$total" -v xl="$xmllint_s" -v cp="$copy_p" 'BEGIN {
        printf "  (info) %s projects rows alone: xmllint --stream %.1f s + psql \\copy projects %.1f s = %.1f s | ratio %.2f\n",
               l, xl, cp, xl + cp, it / (xl + cp) }'
    echo "$label worker peak RSS $(mib "$hwm") MiB"
    # Where the time went (no targets).
    server=$(tail -c +"$((log_off + 1))" "$ITPM_LOG" |
        sed -n "s|.* batch $REGION/$id: \([0-9]*\) records, \([0-9]*\) bytes in \([0-9]*\) ms (\([0-9]*\) records/s).*|\3 \4|p" | tail -n 1)
    awk -v l="$label" -v s="${server:-}" -v tt="$total" -v up="$up" -v dl="$dl" \
        -v g="$gen_s" -v pid="${pid:-?}" -v ph="${pid_hwm:-}" -v h0="$hwm0" 'BEGIN {
        split(s, a, " ")
        printf "  (info) %s %.0f MiB up, %.1f MiB of <batchResult> down (generated in %.1f s);", l, up / 1048576, dl / 1048576, g
        if (s != "") printf " itpmd log: %.1f s at the server (%d records/s; the other %.1f s: upload into nginx'"'"'s buffer file, the answer), worker pid %s (VmHWM %s);", a[1] / 1000, a[2], tt - a[1] / 1000, pid, (ph == "" ? "?" : sprintf("%.1f MiB", ph / 1024))
        printf " max over the fresh workers before the POST: %.1f MiB\n", h0 / 1024 }'
    tail -c +"$((pg_off + 1))" "$PG_LOG" 2>/dev/null |
        sed -n 's/.* duration: \([0-9.]*\) ms  *\(statement\|execute [^:]*\|bind [^:]*\): *\(.*\)/\1 \3/p' |
        sort -rn | head -n 4 |
        awk -v l="$label" '{ ms = $1; $1 = ""; sub(/^ /, ""); s = substr($0, 1, 90)
                             printf "  (info) %s postgres %.1f s: %s\n", l, ms / 1000, s }' || true
    printf '%s %s %s\n' "$n" "$hwm" "$total" >>"$RESULTS"
done

# ---------------------------------------------------------------- RSS

read -r n_lo h_lo <<<"$(sort -n -k1,1 "$RESULTS" | head -n 1 | cut -d' ' -f1,2)"
read -r n_hi h_hi <<<"$(sort -n -k1,1 "$RESULTS" | tail -n 1 | cut -d' ' -f1,2)"
h_max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$RESULTS")
if [ "$n_lo" != "$n_hi" ]; then
    out=$(awk -v a="$n_lo" -v b="$n_hi" -v ha="$h_lo" -v hb="$h_hi" -v hm="$h_max" \
        -v max="$RSS_MAX_MIB" -v gmax="$GROWTH_MAX_MIB" 'BEGIN {
        g = (hb - ha) / 1024; if (g > -0.05 && g < 0.05) g = 0; ok = hm / 1024 <= max && g <= gmax
        printf "RSS growth %s -> %s: %+.1f MiB (target: peak <= %s MiB and not growing with the file, growth <= %s MiB) %s",
               a, b, g, max, gmax, ok ? "PASS" : "FAIL" }')
else
    out=$(awk -v hm="$h_max" -v max="$RSS_MAX_MIB" 'BEGIN {
        ok = hm / 1024 <= max
        printf "RSS peak %.1f MiB (target: peak <= %s MiB; growth needs two sizes) %s", hm / 1024, max, ok ? "PASS" : "FAIL" }')
fi
case "$out" in *FAIL*) FAILED=1 ;; esac
echo "$out"

if [ "$FAILED" -eq 0 ]; then verdict=PASS; else verdict=FAIL; fi
echo "targets: itpmd time <= $RATIO_MAX x (xmllint --stream + psql \\copy) for $MAX_N records, 201 with every code," \
    "worker peak RSS <= $RSS_MAX_MIB MiB and growth <= $GROWTH_MAX_MIB MiB: $verdict"
DONE=1
exit "$FAILED"
