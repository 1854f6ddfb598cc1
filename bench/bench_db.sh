# bench/bench_db.sh - helpers of the database benchmarks (bench/index-cost, bench/writer-bench):
# figures (medians, thousands separators), the machine line, a private PostgreSQL tuned as the
# stack runs it, a migrated template database, and timed COPY loads into voip_cdr.
# Sourced after scripts/lib.sh by bash scripts running with `set -euo pipefail`.
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
# The columns of voip_cdr the stream rows fill: CDR_CODEC_CDR_COLUMNS without store_name (which
# the writer keeps in voip_stores). Stream rows become voip_cdr rows with `cut -f "$BENCH_CDR_CUT"`.
BENCH_CDR_COLUMNS="tenant_id, store_id, sip_domain, call_id, direction, from_uri, to_uri, \
did_e164, ext_number, user_id, start_ts, answer_ts, end_ts, billsec, disposition, recording_url, \
mos, jitter_ms, loss_pct, meta_json, ingested_at"
BENCH_CDR_CUT=1,2,4-22

# Owner of the benchmark databases (as `scripts/stack` makes it) and the template every measured
# database is copied from.
BENCH_OWNER=cdr_owner
BENCH_TEMPLATE=cdr_bench_template

# ---------------------------------------------------------------------------------------------
# Figures

# calc EXPR: evaluates an awk arithmetic expression.
calc() { awk "BEGIN { printf \"%.6g\n\", $1 }"; }

# median VALUE...: the median of the numbers given (empty when none).
median() {
    (($#)) || return 0
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# fmt_int N: N rounded, with thousands separators.
fmt_int() {
    LC_ALL=C awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); r = "";
    while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
    print s r }'
}

# joined SEP VALUE...: the values joined by SEP.
joined() {
    local sep=$1 out='' v
    shift
    for v in "$@"; do
        out+=${out:+$sep}$v
    done
    printf '%s' "$out"
}

# now_s: seconds since the epoch, to the microsecond.
now_s() { printf '%s' "$EPOCHREALTIME"; }

# machine_line: CPU, memory, kernel and system, for the report.
machine_line() {
    local cpu mem
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
    printf '%s × %s, %s GiB, Linux %s, Debian %s, PostgreSQL %s' "$(nproc)" "$cpu" "$mem" \
        "$(uname -r)" "$(cat /etc/debian_version 2>/dev/null || echo '?')" \
        "$("$CDR_PG_BIN/postgres" --version | awk '{ print $3 }')"
}

# commit_line: the checkout's commit when the benchmark started (and built its programs),
# "+ uncommitted changes" when the tree differed then; what the tree holds by the time the
# report is written does not matter.
bench_commit_now() {
    local c
    c=$(git -C "$CDR_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$CDR_ROOT" status --porcelain 2>/dev/null) ]]; then
        c+=" + uncommitted changes"
    fi
    printf '%s' "$c"
}
BENCH_COMMIT=$(bench_commit_now)
commit_line() { printf '%s' "$BENCH_COMMIT"; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# bench_pg_start DIR: a private cluster in DIR/pg on a free port, as scripts/lib.sh starts the
# stack's (shared_buffers 256MB, fsync and synchronous_commit on); sets BENCH_PG_PORT.
bench_pg_start() {
    local dir=$1
    unset CDR_PG_FAST
    cdr_pg_init "$dir/pg"
    BENCH_PG_PORT=$(cdr_free_port "$@")
    cdr_pg_start "$dir/pg" "$BENCH_PG_PORT" "$dir/pg.log"
}

# bench_pg_stop DIR: stops the cluster of bench_pg_start, if it runs.
bench_pg_stop() {
    cdr_pg_stop "$1/pg"
}

# pg DB [PSQL ARGS...]: psql as the superuser on DB, unaligned and quiet, stopping at errors.
pg() {
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" cdr_psql "$BENCH_PG_PORT" postgres "$db" -At "$@"
}

# bench_template MONTH MONTHS [CDRCTL]: creates the owner role and the template database, applies
# the migrations (with CDRCTL's `migrate` when given, else sql/*.sql in name order in one
# transaction each, as cdrctl does) and the partitions of MONTHS months from MONTH (YYYY-MM).
bench_template() {
    local month=$1 months=$2 cdrctl=${3:-} f
    pg postgres <<SQL || cdr_die "could not create the role and the template database"
SELECT 'CREATE ROLE $BENCH_OWNER LOGIN CREATEROLE'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$BENCH_OWNER') \gexec
CREATE DATABASE $BENCH_TEMPLATE OWNER $BENCH_OWNER;
SQL
    if [[ -n $cdrctl ]]; then
        CDR_PG_URL="postgresql://$BENCH_OWNER@127.0.0.1:$BENCH_PG_PORT/$BENCH_TEMPLATE" \
            CDR_LOG_LEVEL=warn "$cdrctl" migrate >/dev/null || cdr_die "cdrctl migrate failed"
    else
        for f in "$CDR_ROOT"/sql/*.sql; do
            cdr_psql "$BENCH_PG_PORT" "$BENCH_OWNER" "$BENCH_TEMPLATE" -1 -f "$f" >/dev/null ||
                cdr_die "migration $(basename "$f") failed"
        done
    fi
    cdr_psql "$BENCH_PG_PORT" "$BENCH_OWNER" "$BENCH_TEMPLATE" -At \
        -c "SELECT count(*) FROM cdr_ensure_months('$month-01', $months)" >/dev/null ||
        cdr_die "could not create the partitions"
}

# bench_fresh_db NAME: database NAME as a copy of the template (dropped first if it exists).
bench_fresh_db() {
    pg postgres -c "DROP DATABASE IF EXISTS $1" \
        -c "CREATE DATABASE $1 TEMPLATE $BENCH_TEMPLATE OWNER $BENCH_OWNER" >/dev/null ||
        cdr_die "could not create database $1"
}

# bench_drop_db NAME
bench_drop_db() {
    pg postgres -c "DROP DATABASE IF EXISTS $1" >/dev/null || cdr_die "could not drop database $1"
}

# wal_lsn DB: the current WAL insert position.
wal_lsn() { pg "$1" -c 'SELECT pg_current_wal_insert_lsn()'; }

# wal_mib DB FROM TO: MiB of WAL between two positions.
wal_mib() {
    pg "$1" -c "SELECT round(pg_wal_lsn_diff('$3', '$2') / 1048576.0, 1)"
}

# bench_copy DB FILE: CHECKPOINT, then one COPY of FILE (voip_cdr rows, BENCH_CDR_COLUMNS) into
# voip_cdr of DB as a client sends it; prints "seconds wal_mib".
bench_copy() {
    local db=$1 file=$2 t0 t1 l0 l1
    pg "$db" -c CHECKPOINT >/dev/null
    l0=$(wal_lsn "$db")
    t0=$(now_s)
    pg "$db" -c "COPY voip_cdr ($BENCH_CDR_COLUMNS) FROM STDIN" <"$file" >/dev/null ||
        cdr_die "COPY into voip_cdr of $db failed"
    t1=$(now_s)
    l1=$(wal_lsn "$db")
    printf '%s %s\n' "$(calc "$t1 - $t0")" "$(wal_mib "$db" "$l0" "$l1")"
}
