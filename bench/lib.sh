# bench/lib.sh — helpers shared by the benchmark drivers (pool.sh,
# identity.sh, lifecycle.sh, batch.sh), which source it first with BENCH_DIR
# set to bench/; it sets REPO and brings scripts/lib.sh. A driver's cleanup
# trap stops WRK_PID, the wrk run_wrk has in flight.
# shellcheck shell=bash

REPO=$(cd "$BENCH_DIR/.." && pwd -P)
# shellcheck source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"
ITPM_LOG_TAG=bench

WRK_PID=""

# bench_stop_pid NAME PID: TERM, up to 5 s, then KILL; only that pid.
bench_stop_pid() {
    local name=$1 pid=$2 i
    [ -n "$pid" ] && itpm_pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        itpm_pid_alive "$pid" || return 0
        sleep 0.1
    done
    itpm_log "$name (pid $pid) still running, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# bench_to_ms VALUE: wrk's latency (e.g. 812.00us, 3.21ms, 1.02s, 2.00m) in ms.
bench_to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# bench_seconds DURATION: wrk's duration (10, 10s, 2m, 1h) in seconds.
bench_seconds() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "m") n *= 60; else if (u == "h") n *= 3600
        else if (u != "" && u != "s") { print "bad" > "/dev/stderr"; exit 1 }
        printf "%g", n }'
}

# bench_wrk_parse FILE: prints "REQ_PER_S P99_MS REQUESTS ERRORS" from wrk's
# output; ERRORS counts non-2xx/3xx answers and socket errors.
bench_wrk_parse() {
    local rps p99 reqs errs
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
    p99=$(awk '$1 == "99%" { print $2 }' "$1")
    reqs=$(awk '/ requests in / { print $1 }' "$1")
    errs=$(awk '/Non-2xx or 3xx responses:/ { e += $NF }
                /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
                END { print e + 0 }' "$1")
    if [ -z "$rps" ] || [ -z "$reqs" ]; then
        cat "$1" >&2
        itpm_die "cannot parse wrk output $1"
    fi
    # Without --latency wrk prints no percentiles.
    if [ -n "$p99" ]; then p99=$(bench_to_ms "$p99"); else p99=nan; fi
    printf '%s %s %s %s\n' "$rps" "$p99" "$reqs" "$errs"
}

# bench_run_wrk OUT ARGS...: wrk in the background (so the traps can stop it).
bench_run_wrk() {
    local out=$1
    shift
    wrk "$@" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { cat "$out" >&2; itpm_die "wrk failed: $*"; }
    WRK_PID=""
}

# bench_children PID: the child pids of a process, sorted.
bench_children() {
    ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' | sort -n || true
}

# bench_render_nginx DIR PORT FCGI_PASS: DIR/nginx.conf from the stack's
# template with the values scripts/stack's render_nginx gives it (the same
# user line, worker_processes, body limit, read timeout and certificate), but
# its own listener, upstream, pid file, logs and temp dir.
bench_render_nginx() {
    local dir=$1 port=$2 fcgi=$3 max_body rt batch_body batch_rt user_line
    max_body=$(itpm_ini_get "$ITPM_CONF" server max_body 1048576)
    rt=$(itpm_ini_get "$ITPM_CONF" server request_timeout 60)
    case "$rt" in '' | *[!0-9]*) rt=60 ;; esac
    if [ "$rt" -eq 0 ]; then rt=600; else rt=$((rt + 30)); fi
    batch_body=$(itpm_size_bytes "$(itpm_ini_get "$ITPM_CONF" batch max_body 1g)")
    batch_rt=$(itpm_ini_get "$ITPM_CONF" batch timeout 900)
    case "$batch_rt" in '' | *[!0-9]*) batch_rt=900 ;; esac
    if itpm_is_root; then
        user_line="user $ITPM_WEB_USER $ITPM_WEB_USER;"
    else
        user_line="# not root: workers run as $(id -un)"
    fi
    itpm_render "$REPO/nginx/itpm.conf.template" "$dir/nginx.conf" \
        "USER_LINE=$user_line" \
        "WORKER_PROCESSES=${ITPM_NGINX_WORKERS:-auto}" \
        "PID_FILE=$dir/run/nginx.pid" \
        "LOG_DIR=$dir/log" \
        "TEMP_DIR=$dir/tmp" \
        "LISTEN=127.0.0.1:$port" \
        "SERVER_NAME=localhost" \
        "TLS_CERT=$ITPM_STATE/tls/cert.pem" \
        "TLS_KEY=$ITPM_STATE/tls/key.pem" \
        "FCGI_PASS=$fcgi" \
        "MAX_BODY=$max_body" \
        "FCGI_READ_TIMEOUT=$rt" \
        "BATCH_MAX_BODY=$batch_body" \
        "BATCH_READ_TIMEOUT=$((batch_rt + 60))"
    # Apart from those lines, the two files must be the same.
    if [ -r "${ITPM_NGINX_CONF:-}" ] &&
        ! diff <(sed -e "s|$ITPM_STATE|STATE|g; s|$dir|STATE|g" "$ITPM_NGINX_CONF" |
                 grep -vE '^\s*(#|(listen|fastcgi_pass|pid|error_log|access_log|[a-z_]+_temp_path) )') \
               <(sed -e "s|$ITPM_STATE|STATE|g; s|$dir|STATE|g" "$dir/nginx.conf" |
                 grep -vE '^\s*(#|(listen|fastcgi_pass|pid|error_log|access_log|[a-z_]+_temp_path) )') \
               >"$dir/config.diff"; then
        itpm_log "warning: the baseline's nginx.conf differs from the stack's beyond paths and ports (see $dir/config.diff)"
    fi
}

# bench_teardown RC [PRUNE]: the end every bench shares, after it stopped
# its own processes: its own stack (OWN_STACK) down, then its work folder
# (WORK) removed, or kept for a look after an error (not after Ctrl-C, nor
# after a complete run that missed a target: DONE is set then) or when
# BENCH_KEEP asks. PRUNE, a function, thins a folder kept after an error.
bench_teardown() {
    local rc=$1 prune=${2:-}
    if [ -n "${OWN_STACK:-}" ]; then
        ITPM_LOG_TAG=bench "$REPO/scripts/stack" down "$OWN_STACK" >/dev/null 2>&1
    fi
    [ -n "${WORK:-}" ] || return 0
    if { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ] && [ -z "${DONE:-}" ]; } ||
        [ -n "${BENCH_KEEP:-}" ]; then
        if [ -n "$prune" ] && [ -z "${BENCH_KEEP:-}" ]; then
            "$prune"
        fi
        itpm_log "work files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}

# bench_start_baseline CONNINFO: the bare libfcgi + libpq program
# (bench/baseline.c: the CMake target next to ITPM_BIN when built and
# current, else compiled into WORK) with WORKERS workers on a socket in WORK,
# behind a second nginx: the stack's template rendered the stack's way with
# fastcgi_pass on that socket, its own port, pid, logs and temp. Sets
# BASELINE (the program), BASE_PID, NGINX_PID (for the caller's cleanup)
# and BASE_URL.
bench_start_baseline() {
    local conninfo=$1 sock="$WORK/baseline.sock" port i
    BASELINE=${BENCH_BASELINE:-}
    if [ -z "$BASELINE" ]; then
        BASELINE="$(dirname "${ITPM_BIN:-$REPO/build/itpmd}")/bench_baseline"
        if [ ! -x "$BASELINE" ] || [ "$BENCH_DIR/baseline.c" -nt "$BASELINE" ]; then
            BASELINE="$WORK/baseline"
            cc -std=c11 -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
                -o "$BASELINE" "$BENCH_DIR/baseline.c" -lfcgi -lpq
        fi
    fi
    "$BASELINE" "$sock" "$WORKERS" "$conninfo" >"$WORK/baseline.log" 2>&1 &
    BASE_PID=$!
    for ((i = 0; i < 50; i++)); do
        [ -S "$sock" ] && break
        itpm_pid_alive "$BASE_PID" || { cat "$WORK/baseline.log" >&2; itpm_die "baseline exited"; }
        sleep 0.1
    done
    [ -S "$sock" ] || itpm_die "baseline socket $sock did not appear"

    port=$(itpm_free_port)
    mkdir -p "$WORK/nginx/log" "$WORK/nginx/tmp" "$WORK/nginx/run"
    chmod 0755 "$WORK/nginx" "$WORK/nginx/tmp"
    bench_render_nginx "$WORK/nginx" "$port" "unix:$sock"
    nginx -t -q -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/log/nginx-error.log" 2>"$WORK/nginx/check.log" ||
        { cat "$WORK/nginx/check.log" >&2; itpm_die "rendered nginx.conf is invalid"; }
    nginx -g 'daemon off;' -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/log/nginx-error.log" \
        >"$WORK/nginx/log/stdout.log" 2>&1 &
    NGINX_PID=$!
    BASE_URL="https://127.0.0.1:$port"
    itpm_wait_url "$BASE_URL/healthz" "$ITPM_CA" 15 || itpm_die "baseline nginx does not answer on $BASE_URL"
}
