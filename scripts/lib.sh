# shellcheck shell=bash
# Helpers sourced by scripts/stack, scripts/run and scripts/test: package
# installation, builds, free ports, rendering of the nginx and itpmd
# configurations, and starting/stopping processes by their pid files.

ITPM_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ITPM_PYTHON=/usr/bin/python3
# shellcheck disable=SC2034  # used by the scripts that source this file
ITPM_WEB_USER=www-data

ITPM_PACKAGES=(
    build-essential cmake pkg-config
    libfcgi-dev libpq-dev libxml2-dev libssl-dev libldap2-dev libinih-dev
    libjansson-dev libcmocka-dev
    postgresql slapd ldap-utils nginx-light openssl wrk
    python3-pytest python3-requests python3-lxml python3-jwt python3-cryptography
    libxml2-utils clang libclang-rt-14-dev procps psmisc curl util-linux
)

itpm_log() { printf '[%s] %s\n' "${ITPM_LOG_TAG:-itpm}" "$*" >&2; }
itpm_die() { itpm_log "error: $*"; exit 1; }

itpm_is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- packages

# Installs the Debian packages that are missing, without prompts and without
# letting their maintainer scripts start system services (policy-rc.d = 101).
itpm_install_packages() {
    local missing=() p status
    for p in "${ITPM_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$status" = "install ok installed" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    itpm_log "installing: ${missing[*]}"
    local sudo=()
    if ! itpm_is_root; then
        command -v sudo >/dev/null || itpm_die "not root and no sudo: install ${missing[*]}"
        sudo=(sudo)
    fi
    local policy=/usr/sbin/policy-rc.d backup="" rc=0
    if [ -e "$policy" ]; then
        backup=$(mktemp /tmp/itpm-policy-rc.d.XXXXXX)
        "${sudo[@]}" cp -p "$policy" "$backup"
    fi
    printf '#!/bin/sh\n# written by itpm scripts/lib.sh during apt-get install\nexit 101\n' \
        | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 0755 "$policy"
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold "${missing[@]}"
    } || rc=$?
    if [ -n "$backup" ]; then
        "${sudo[@]}" cp -p "$backup" "$policy"
        rm -f "$backup"
    else
        "${sudo[@]}" rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || itpm_die "apt-get failed ($rc)"
}

# ---------------------------------------------------------------- builds

# itpm_build BUILD_DIR CMAKE_ARGS...: configure (once) and build; a lock keeps
# two scripts (run beside test) from building the same tree at once.
itpm_build() {
    local dir=$1; shift
    mkdir -p "$dir"
    (
        flock 9
        cmake -S "$ITPM_REPO" -B "$dir" "$@" >/dev/null &&
        cmake --build "$dir" -j "$(nproc)"
    ) 9>"$dir/.itpm-build.lock"
}

# itpm_random_secret: 32 hex digits from the kernel's RNG (a password that
# needs no quoting anywhere: INI, env file, shell, LDIF).
itpm_random_secret() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# ---------------------------------------------------------------- ports

# itpm_port_free PORT: true when 127.0.0.1:PORT can be bound now by a server
# (SO_REUSEADDR, as nginx does: a port left in TIME_WAIT by our own previous
# run counts as free, one with a listener does not).
itpm_port_free() {
    "$ITPM_PYTHON" - "$1" <<'EOF' >/dev/null 2>&1
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
}

# itpm_free_port: prints a port the kernel considers free on 127.0.0.1.
itpm_free_port() {
    "$ITPM_PYTHON" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

# ---------------------------------------------------------------- processes

# The newest installed PostgreSQL server (Debian 12: 15).
itpm_pg_bindir() {
    local d best="" v bestv=0
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        v=${d#/usr/lib/postgresql/}
        v=${v%%/*}
        case "$v" in '' | *[!0-9]*) continue ;; esac
        if [ "$v" -gt "$bestv" ]; then
            best=$d bestv=$v
        fi
    done
    [ -n "$best" ] || itpm_die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    printf '%s\n' "$best"
}

# itpm_as_pg CMD...: runs CMD as the postgres user when root, else as ourselves.
itpm_as_pg() {
    if itpm_is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# itpm_pid_alive PID: the process exists and is not a zombie.
itpm_pid_alive() {
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# itpm_pid_is PID EXPECT...: the live process PID has one of EXPECT in its
# command line, or its executable is one of EXPECT; protects against stale
# pid files naming a process that is not ours.
itpm_pid_is() {
    local pid=$1 cmd exe e
    shift
    itpm_pid_alive "$pid" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || exe=""
    exe=${exe% (deleted)}
    for e in "$@"; do
        [ -n "$e" ] || continue
        case "$cmd" in *"$e"*) return 0 ;; esac
        [ "$exe" = "$e" ] && return 0
    done
    return 1
}

# itpm_read_pid FILE: prints the pid in the first line of FILE, if numeric.
itpm_read_pid() {
    local pid=""
    [ -s "$1" ] && read -r pid <"$1" 2>/dev/null
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    printf '%s\n' "$pid"
}

# itpm_pidfile_running FILE EXPECT...: prints the pid when FILE names a live
# process matching one of EXPECT.
itpm_pidfile_running() {
    local file=$1 pid
    shift
    pid=$(itpm_read_pid "$file") || return 1
    itpm_pid_is "$pid" "$@" || return 1
    printf '%s\n' "$pid"
}

# itpm_stop_pidfile NAME FILE TIMEOUT EXPECT...: TERM, wait up to TIMEOUT
# seconds, then KILL the process and its process group. Does nothing when
# FILE is missing or names a process that is not ours; removes FILE
# afterwards. Never signals anything matched by name.
itpm_stop_pidfile() {
    local name=$1 file=$2 timeout=$3 pid pgid i
    shift 3
    if ! pid=$(itpm_pidfile_running "$file" "$@"); then
        if [ -e "$file" ]; then
            itpm_log "$name: not running (removing stale $file)"
        fi
        rm -f "$file"
        return 0
    fi
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
    itpm_log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        itpm_pid_alive "$pid" || break
        sleep 0.1
    done
    if itpm_pid_is "$pid" "$@"; then
        itpm_log "$name: still running after ${timeout}s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # Children left behind (an nginx worker, say) share the leader's group.
    if [ -n "$pgid" ] && [ "$pgid" = "$pid" ]; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    for ((i = 0; i < 50; i++)); do
        itpm_pid_alive "$pid" || break
        sleep 0.1
    done
    rm -f "$file"
}

# itpm_wait_url URL CAFILE SECONDS: polls until URL answers 2xx.
itpm_wait_url() {
    local url=$1 ca=$2 secs=$3 i
    for ((i = 0; i < secs * 5; i++)); do
        if curl -sf -o /dev/null --max-time 2 --cacert "$ca" "$url"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# itpm_tail_logs DIR: the end of every log of a stack, for failure reports.
itpm_tail_logs() {
    local f
    for f in "$1"/log/*; do
        [ -f "$f" ] || continue
        printf '%s\n' "----- $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
}

# ---------------------------------------------------------------- rendering

# itpm_render TEMPLATE OUT NAME=VALUE...: replaces @NAME@ by VALUE and fails
# if a placeholder is left over. Values must not contain a newline.
itpm_render() {
    local template=$1 out=$2 kv name value esc
    shift 2
    local args=()
    for kv in "$@"; do
        name=${kv%%=*}
        value=${kv#*=}
        esc=$(printf '%s' "$value" | sed -e 's/[\\|&]/\\&/g')
        args+=(-e "s|@${name}@|${esc}|g")
    done
    sed "${args[@]}" "$template" >"$out.tmp"
    if grep -nE '@[A-Z][A-Z0-9_]*@' "$out.tmp" >&2; then
        rm -f "$out.tmp"
        itpm_die "unreplaced placeholder in $out"
    fi
    mv -f "$out.tmp" "$out"
}

# itpm_size_bytes SIZE: N, Nk, Nm or Ng (powers of 1024, as itpmd and nginx
# read them) in bytes; anything else is printed unchanged.
itpm_size_bytes() {
    local n=${1%[kKmMgG]} mult=1
    case "$1" in
        *[kK]) mult=1024 ;;
        *[mM]) mult=$((1024 * 1024)) ;;
        *[gG]) mult=$((1024 * 1024 * 1024)) ;;
    esac
    case "$n" in
        '' | *[!0-9]*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$((10#$n * mult))" ;;
    esac
}

# itpm_ini_get FILE SECTION KEY DEFAULT: the last value of KEY in SECTION
# (later keys override earlier ones, as in itpmd).
itpm_ini_get() {
    awk -v sec="$2" -v key="$3" -v def="$4" '
        BEGIN { v = def }
        /^[ \t]*[;#]/ { next }
        /^[ \t]*\[/ { s = $0; gsub(/[][ \t]/, "", s); next }
        s == sec {
            line = $0; sub(/[ \t]+;.*$/, "", line)
            n = index(line, "=")
            if (n == 0) next
            k = substr(line, 1, n - 1); gsub(/[ \t]/, "", k)
            if (k != key) next
            val = substr(line, n + 1); gsub(/^[ \t]+|[ \t]+$/, "", val)
            v = val
        }
        END { print v }' "$1"
}

# ---------------------------------------------------------------- demo

# itpm_demo_logins LDIF: a table of the demo directory's people (uid, name,
# roles, unit, region), read from the LDIF itself: a role is the group cn
# without its "itpm-" prefix ("-" becoming "_"), as in itpmd's [roles]
# defaults; itpm-classified is the clearance.
itpm_demo_logins() {
    "$ITPM_PYTHON" - "$1" <<'EOF'
import base64, sys, unicodedata

def entries(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    entry, last = [], None
    for line in lines + ['']:
        if line.startswith(' ') and entry:          # continuation line
            entry[-1] = (entry[-1][0], entry[-1][1] + line[1:])
            continue
        if line.startswith('#'):
            continue
        if not line.strip():
            if entry:
                yield entry
            entry = []
            continue
        key, _, value = line.partition(':')
        if value.startswith(':'):                   # base64 value
            value = base64.b64decode(value[1:].strip()).decode('utf-8')
        entry.append((key.strip().lower(), value.strip()))

people, groups = [], {}
for e in entries(sys.argv[1]):
    attrs = {}
    for k, v in e:
        attrs.setdefault(k, []).append(v)
    ocs = {v.lower() for v in attrs.get('objectclass', [])}
    if 'inetorgperson' in ocs:
        people.append(attrs)
    elif 'groupofnames' in ocs:
        cn = attrs['cn'][0]
        for m in attrs.get('member', []):
            groups.setdefault(m.lower(), []).append(cn)

def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in 'WF' else 1 for c in s)

def pad(s, n):
    return s + ' ' * max(0, n - width(s))

rows = [('user', 'name', 'roles', 'unit', 'region')]
for p in people:
    dn = p['dn'][0]
    roles, clearance = [], False
    for g in groups.get(dn.lower(), []):
        name = g[5:] if g.startswith('itpm-') else g
        if name == 'classified':
            clearance = True
        else:
            roles.append(name.replace('-', '_'))
    role_text = ','.join(roles) or '(no role)'
    if clearance:
        role_text += ' +classified'
    uid = p['uid'][0]
    if ',ou=people,' not in dn.lower():
        uid += ' (' + dn.split(',')[1] + ')'
    rows.append((uid, (p.get('displayname') or p.get('cn'))[0], role_text,
                 p.get('departmentnumber', [''])[0], p.get('l', [''])[0]))
widths = [max(width(r[i]) for r in rows) for i in range(5)]
for r in rows:
    print('  ' + '  '.join(pad(c, widths[i]) for i, c in enumerate(r)).rstrip())
uids = [p['uid'][0] for p in people]
for u in sorted({u for u in uids if uids.count(u) > 1}):
    print(f'  ({u}: {uids.count(u)} entries share this uid on purpose; its login is ambiguous and refused)')
EOF
}
