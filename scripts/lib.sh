# scripts/lib.sh - helpers shared by scripts/ and tests/support/teststack: messages, Debian
# packages, a private PostgreSQL and Redis on loopback, free ports and health checks.
# Sourced by bash scripts that run with `set -euo pipefail`; it never runs anything by itself.
# shellcheck shell=bash

if [[ -n ${CDR_LIB_SOURCED:-} ]]; then
    return 0
fi
CDR_LIB_SOURCED=1

# The name every message starts with; a script may set it before sourcing this file.
CDR_SCRIPT_NAME=${CDR_SCRIPT_NAME:-$(basename "$0")}
# The checkout this file belongs to (scripts/..), symlinks resolved.
# shellcheck disable=SC2034 # used by the scripts that source this file
CDR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# PostgreSQL's server binaries; Debian 12 puts version 15 here.
CDR_PG_BIN=${CDR_PG_BIN:-/usr/lib/postgresql/15/bin}

# Every Debian package the project needs to build, test and run its stack.
CDR_PACKAGES=(
    build-essential cmake pkg-config git
    libevent-dev libpq-dev libjansson-dev libhiredis-dev libzstd-dev zlib1g-dev
    libcriterion-dev libjwt-dev libssl-dev libjemalloc-dev openssl
    postgresql-15 postgresql-client-15 redis-server redis-tools
    clang-format curl zstd procps util-linux
)

# ---------------------------------------------------------------------------------------------
# Messages

cdr_info() { printf '%s: %s\n' "$CDR_SCRIPT_NAME" "$*" >&2; }
cdr_warn() { printf '%s: warning: %s\n' "$CDR_SCRIPT_NAME" "$*" >&2; }
cdr_die() {
    printf '%s: error: %s\n' "$CDR_SCRIPT_NAME" "$*" >&2
    exit 1
}

# Prints the last 'n' lines (default 20) of 'file' indented, to stderr, under a title line.
cdr_log_tail() {
    local file=$1 n=${2:-20}
    if [[ -s $file ]]; then
        printf '%s: --- last %s lines of %s ---\n' "$CDR_SCRIPT_NAME" "$n" "$file" >&2
        tail -n "$n" "$file" | sed 's/^/    /' >&2
        printf '%s: ---\n' "$CDR_SCRIPT_NAME" >&2
    else
        printf '%s: (%s is empty or missing)\n' "$CDR_SCRIPT_NAME" "$file" >&2
    fi
}

# ---------------------------------------------------------------------------------------------
# Packages

# need_packages [PKG...]: installs those of 'PKG' (default: CDR_PACKAGES) that dpkg does not list
# as installed, and nothing else. Runs `apt-get update` first unless CDR_APT_UPDATED=1 says the
# caller just did. Uses sudo when not root; exits naming the packages when that is impossible.
# No service is started by the installation: Debian's postinst scripts are held back through
# policy-rc.d, so a package such as redis-server or postgresql-15 leaves nothing running.
need_packages() {
    local pkgs=("$@") missing=() p status
    if ((${#pkgs[@]} == 0)); then
        pkgs=("${CDR_PACKAGES[@]}")
    fi
    command -v dpkg-query >/dev/null 2>&1 ||
        cdr_die "dpkg-query not found: this needs Debian 12; install by hand: ${pkgs[*]}"
    for p in "${pkgs[@]}"; do
        # shellcheck disable=SC2016 # ${...} is dpkg-query's format, not the shell's
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        if [[ $status != installed ]]; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 ||
            cdr_die "missing packages and neither root nor sudo: as root run: apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    cdr_info "installing missing packages: ${missing[*]}"

    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# cdrflow: no service starts while packages are being installed.\nexit 101\n' |
            "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod 755 "$policy" && made_policy=1
    fi
    if [[ ${CDR_APT_UPDATED:-} != 1 ]]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update || rc=$?
    fi
    if ((rc == 0)); then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}" || rc=$?
    fi
    if ((made_policy)); then
        "${sudo[@]}" rm -f "$policy"
    fi
    ((rc == 0)) || cdr_die "apt-get failed (exit $rc) while installing: ${missing[*]}"

    for p in "${missing[@]}"; do
        # shellcheck disable=SC2016 # ${...} is dpkg-query's format, not the shell's
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [[ $status == installed ]] || cdr_die "package $p is still not installed after apt-get install"
    done
    cdr_info "installed: ${missing[*]}"
}

# ---------------------------------------------------------------------------------------------
# Processes and ports

# Succeeds when process 'pid' exists and is not a zombie (an exited child nobody reaped yet).
cdr_pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Prints the command name (at most 15 characters, as the kernel keeps it) of process 'pid'.
cdr_pid_comm() {
    local comm=
    { read -r comm <"/proc/$1/comm"; } 2>/dev/null || true
    printf '%s' "$comm"
}

# Reads a pid from 'pidfile' and prints it when that process is alive and its command name is
# 'comm'; fails otherwise (no file, garbage, dead, or the pid now belongs to something else).
cdr_pidfile_alive() {
    local pidfile=$1 comm=$2 pid=
    { read -r pid <"$pidfile"; } 2>/dev/null || return 1
    cdr_pid_alive "$pid" || return 1
    [[ $(cdr_pid_comm "$pid") == "${comm:0:15}" ]] || return 1
    printf '%s\n' "$pid"
}

# Sends SIGTERM to 'pid' and waits up to 'timeout' seconds (default 30) for it to exit.
# Fails, naming 'what', if it is still there afterwards.
cdr_terminate() {
    local pid=$1 what=$2 timeout=${3:-30} deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + timeout))
    while cdr_pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            cdr_info "$what (pid $pid) did not exit within ${timeout}s of SIGTERM"
            return 1
        fi
        sleep 0.1
    done
}

# Succeeds when something accepts TCP connections on 'host':'port'.
cdr_port_open() {
    local host=$1 port=$2
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# Waits up to 'timeout' seconds for 'host':'port' to accept connections.
cdr_wait_for_port() {
    local host=$1 port=$2 timeout=$3 deadline
    deadline=$((SECONDS + timeout))
    until cdr_port_open "$host" "$port"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# Prints the HTTP status 'url' answers with ("000" when nothing answers).
cdr_http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# Waits up to 'timeout' seconds for 'url' to answer 200.
cdr_wait_for_http() {
    local url=$1 timeout=$2 deadline
    deadline=$((SECONDS + timeout))
    until [[ $(cdr_http_status "$url") == 200 ]]; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# Prints a TCP port of 127.0.0.1 that nothing listens on, other than any of the 'exclude' ports.
# Chosen below Linux's ephemeral range so that outgoing connections do not take it meanwhile.
cdr_free_port() {
    local port tries x taken
    for ((tries = 0; tries < 200; tries++)); do
        port=$((20000 + RANDOM % 12000))
        taken=0
        for x in "$@"; do
            if [[ $x == "$port" ]]; then
                taken=1
            fi
        done
        if ((!taken)) && ! cdr_port_open 127.0.0.1 "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    cdr_die "found no free TCP port on 127.0.0.1 after $tries tries"
}

# ---------------------------------------------------------------------------------------------
# Private PostgreSQL. As root every server command runs as the `postgres` user (PostgreSQL
# refuses root); as anyone else it runs as that user.

# Runs a command as the user that owns private PostgreSQL clusters, from / so that a working
# directory the postgres user cannot enter does not matter.
cdr_as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Succeeds when the user running PostgreSQL can traverse into directory 'dir'.
cdr_pg_can_reach() {
    if ((EUID == 0)); then
        cdr_as_pg test -x "$1"
    else
        test -x "$1"
    fi
}

# Checks that the PostgreSQL server binaries (and, as root, the postgres user) are there.
cdr_pg_check() {
    [[ -x $CDR_PG_BIN/postgres && -x $CDR_PG_BIN/pg_ctl && -x $CDR_PG_BIN/initdb ]] ||
        cdr_die "PostgreSQL server binaries not found in $CDR_PG_BIN (package postgresql-15; run scripts/deps)"
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 ||
            cdr_die "user postgres does not exist (package postgresql-15 creates it; run scripts/deps)"
    fi
}

# Creates a cluster in 'data' unless one is already there: trust authentication, superuser
# postgres, UTF8, text compared byte by byte (collation C: every text a table orders or
# indexes is an identifier, and C.UTF-8 sorts them the same but through strcoll). The
# directory is created (owned by the postgres user when root).
cdr_pg_init() {
    local data=$1 locale=C out
    cdr_pg_check
    if [[ -f $data/PG_VERSION ]]; then
        return 0
    fi
    mkdir -p "$data" || cdr_die "cannot create PostgreSQL data directory $data"
    chmod 700 "$data"
    if ((EUID == 0)); then
        chown postgres:postgres "$data" || cdr_die "cannot hand $data to user postgres"
    fi
    if locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8'; then
        locale=C.UTF-8
    fi
    out=$(cdr_as_pg "$CDR_PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 \
        --locale="$locale" --lc-collate=C 2>&1) || {
        printf '%s\n' "$out" | tail -n 20 >&2
        cdr_die "initdb failed for $data"
    }
    # The settings that depend on the start (port, socket, speed) live in cdrflow.conf.
    printf "\n# cdrflow: loopback-only settings written at each start by scripts/lib.sh\ninclude_if_exists 'cdrflow.conf'\n" \
        >>"$data/postgresql.conf"
}

# Succeeds when the cluster in 'data' runs.
cdr_pg_running() {
    local data=$1
    [[ -f $data/PG_VERSION ]] || return 1
    cdr_as_pg "$CDR_PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# Prints the port of the running cluster in 'data' (from its postmaster.pid).
cdr_pg_port() {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null
}

# Prints the postmaster's pid of the running cluster in 'data'.
cdr_pg_pid() {
    sed -n 1p "$1/postmaster.pid" 2>/dev/null
}

# Starts the cluster in 'data' on 127.0.0.1:'port', logging to 'logfile', and waits until it
# accepts connections. The Unix socket lives in 'data'. CDR_PG_FAST=1 trades crash safety for
# speed (fsync, synchronous_commit and full_page_writes off): for throw-away test clusters.
# Fails with the log tail when the server does not come up.
cdr_pg_start() {
    local data=$1 port=$2 logfile=$3 conf sockdir
    cdr_pg_check
    if cdr_port_open 127.0.0.1 "$port"; then
        cdr_die "cannot start PostgreSQL: 127.0.0.1:$port is already in use by another process"
    fi
    sockdir=$data
    # A Unix socket path is limited to 107 bytes; past that, TCP only.
    if ((${#data} + 20 > 107)); then
        cdr_warn "$data is too long a path for a Unix socket: PostgreSQL listens on TCP only"
        sockdir=
    fi
    conf="$data/cdrflow.conf"
    {
        printf '# Written by scripts/lib.sh at each start; changes here are overwritten.\n'
        printf "listen_addresses = '127.0.0.1'\n"
        printf 'port = %s\n' "$port"
        printf "unix_socket_directories = '%s'\n" "${sockdir//\'/\'\'}"
        printf 'shared_buffers = 256MB\n'
        printf 'max_connections = 200\n'
        if [[ ${CDR_PG_FAST:-} == 1 ]]; then
            printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
        else
            printf 'fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n'
        fi
    } >"$conf" || cdr_die "cannot write $conf"
    touch "$logfile" || cdr_die "cannot create PostgreSQL log file $logfile"
    if ((EUID == 0)); then
        chown postgres:postgres "$conf" "$logfile"
    fi
    if ! cdr_as_pg "$CDR_PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start >/dev/null; then
        cdr_log_tail "$logfile"
        cdr_die "PostgreSQL did not start (data $data, port $port, log $logfile)"
    fi
}

# Stops the cluster in 'data' if it runs (fast mode: clients are disconnected, then a clean
# shutdown). Fails when pg_ctl cannot stop it.
cdr_pg_stop() {
    local data=$1
    cdr_pg_running "$data" || return 0
    cdr_as_pg "$CDR_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null ||
        cdr_die "pg_ctl could not stop the PostgreSQL cluster in $data"
}

# Runs psql against 127.0.0.1:'port' as 'user' on database 'db', stopping at the first error;
# further arguments go to psql.
cdr_psql() {
    local port=$1 user=$2 db=$3
    shift 3
    "$CDR_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$user" -d "$db" "$@"
}

# ---------------------------------------------------------------------------------------------
# Private Redis: a generated config in its own directory, AOF on (fsync every second), no RDB
# snapshots, daemonised with a pidfile, bound to 127.0.0.1.

# Prints the pid of the Redis started in 'dir' when it runs.
cdr_redis_pid() {
    cdr_pidfile_alive "$1/redis.pid" redis-server
}

# Prints the port the Redis of 'dir' was configured with.
cdr_redis_port() {
    sed -n 's/^port \([0-9]*\)$/\1/p' "$1/redis.conf" 2>/dev/null
}

# Starts Redis with its data, config, pidfile and log in 'dir' on 127.0.0.1:'port' and waits
# until it answers PING. Fails with the log tail otherwise.
cdr_redis_start() {
    local dir=$1 port=$2 deadline out
    command -v redis-server >/dev/null 2>&1 ||
        cdr_die "redis-server not found (package redis-server; run scripts/deps)"
    if cdr_port_open 127.0.0.1 "$port"; then
        cdr_die "cannot start Redis: 127.0.0.1:$port is already in use by another process"
    fi
    mkdir -p "$dir" || cdr_die "cannot create Redis directory $dir"
    cat >"$dir/redis.conf" <<EOF || cdr_die "cannot write $dir/redis.conf"
# Written by scripts/lib.sh at each start; changes here are overwritten.
bind 127.0.0.1
protected-mode yes
port $port
dir "$dir"
daemonize yes
pidfile "$dir/redis.pid"
logfile "$dir/redis.log"
appendonly yes
appendfsync everysec
save ""
EOF
    rm -f "$dir/redis.pid"
    # Daemonised, Redis points its output at /dev/null: only a failure before that is captured.
    if ! out=$(redis-server "$dir/redis.conf" 2>&1); then
        printf '%s\n' "$out" | tail -n 20 >&2
        cdr_log_tail "$dir/redis.log"
        cdr_die "redis-server did not start (dir $dir, port $port)"
    fi
    deadline=$((SECONDS + 15))
    until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] &&
        cdr_redis_pid "$dir" >/dev/null; do
        if ((SECONDS >= deadline)); then
            cdr_log_tail "$dir/redis.log"
            cdr_die "Redis did not answer PING on 127.0.0.1:$port within 15s (dir $dir)"
        fi
        sleep 0.1
    done
}

# Stops the Redis started in 'dir', if it runs, with SIGTERM: Redis then flushes and fsyncs its
# AOF and exits. Fails if it does not exit within 30 s.
cdr_redis_stop() {
    local dir=$1 pid
    pid=$(cdr_redis_pid "$dir") || return 0
    cdr_terminate "$pid" "redis-server" 30 || cdr_die "could not stop Redis (pid $pid, dir $dir)"
    rm -f "$dir/redis.pid"
}
