/* rollups.c - `cdrctl rollups rebuild`: the rollups and callback state of a range of UTC days
 * recomputed from voip_cdr, for rows loaded around the writer (COPY) and for repair.
 *
 * The rows written are those the writer would have written for the same CDRs (ingest/pg_batch.c
 * keeps them from the rows it inserts): the same keys, the same measures. The SQL of the measures
 * below must stay the same as the writer's. */
#include "rollups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pg_util.h"
#include "rollup_sql.h"

/* Transaction advisory lock of a rebuild: "cdr_roll" read as a big-endian int64. */
#define ROLLUPS_LOCK_KEY "7161975061693295724"

/* The range: start_ts (or hour) in [$1 00:00Z, $2 + 1 day 00:00Z), whatever the session's
 * TimeZone. */
#define RANGE_LO "(($1::date)::timestamp AT TIME ZONE 'UTC')"
#define RANGE_HI "(($2::date + 1)::timestamp AT TIME ZONE 'UTC')"
#define IN_RANGE "start_ts >= " RANGE_LO " AND start_ts < " RANGE_HI

/* The UTC months the range touches, whole: the first days of the first and the last one, and
 * start_ts in [first 00:00Z, the month after the last 00:00Z). */
#define MONTH_FIRST "date_trunc('month', $1::date::timestamp)"
#define MONTH_LAST  "date_trunc('month', $2::date::timestamp)"
#define IN_MONTHS                                                                                  \
    "start_ts >= (" MONTH_FIRST " AT TIME ZONE 'UTC') AND start_ts < ((" MONTH_LAST                \
    " + interval '1 month') AT TIME ZONE 'UTC')"

/* Keeps writers' rollup upserts waiting until the rebuild commits. Without it a writer's batch
 * committed between the DELETE and the snapshot of the INSERT would be counted twice (by its
 * own upsert of a key the DELETE had not seen, and by the recomputation). Writers lock these
 * tables in this order in their one statement, so neither side can hold one while waiting for
 * the other. */
static const char lock_tables_sql[] =
    "LOCK TABLE public.voip_cdr_rollup_store_hour, public.voip_cdr_rollup_store_day, "
    "public.voip_cdr_rollup_ext_day, public.voip_cdr_rollup_ext_month "
    "IN SHARE ROW EXCLUSIVE MODE";

static const char delete_store_sql[] =
    "DELETE FROM public.voip_cdr_rollup_store_hour WHERE hour >= " RANGE_LO " AND hour < " RANGE_HI;

static const char delete_store_day_sql[] =
    "DELETE FROM public.voip_cdr_rollup_store_day WHERE day BETWEEN $1::date AND $2::date";

static const char delete_ext_sql[] =
    "DELETE FROM public.voip_cdr_rollup_ext_day WHERE day BETWEEN $1::date AND $2::date";

static const char delete_ext_month_sql[] =
    "DELETE FROM public.voip_cdr_rollup_ext_month"
    " WHERE month BETWEEN " MONTH_FIRST "::date AND " MONTH_LAST "::date";

/* Answers the rows written and the CDRs they count. */
static const char insert_store_sql[] =
    "WITH ins AS ("
    "  INSERT INTO public.voip_cdr_rollup_store_hour (tenant_id, hour, store_id, direction, "
    "" ROLLUP_COLUMNS ")"
    "  SELECT " ROLLUP_STORE_HOUR_KEY ", " ROLLUP_MEASURES
    "    FROM public.voip_cdr WHERE " IN_RANGE "   GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  RETURNING calls"
    ") SELECT count(*), coalesce(sum(calls), 0) FROM ins";

/* Answers the rows written. */
static const char insert_store_day_sql[] =
    "WITH ins AS ("
    "  INSERT INTO public.voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, "
    "" ROLLUP_COLUMNS ")"
    "  SELECT " ROLLUP_STORE_DAY_KEY ", " ROLLUP_MEASURES "    FROM public.voip_cdr WHERE " IN_RANGE
    "   GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  RETURNING 1"
    ") SELECT count(*) FROM ins";

static const char insert_ext_sql[] =
    "WITH ins AS ("
    "  INSERT INTO public.voip_cdr_rollup_ext_day (tenant_id, day, ext_number, "
    "" ROLLUP_EXT_COLUMNS ")"
    "  SELECT " ROLLUP_EXT_DAY_KEY ", " ROLLUP_EXT_MEASURES
    "    FROM public.voip_cdr WHERE ext_number IS NOT NULL AND " IN_RANGE
    "   GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "  RETURNING 1"
    ") SELECT count(*) FROM ins";

/* Every month the range touches, recomputed whole, so that a month row always counts all of
 * its calls. Answers the rows written. */
static const char insert_ext_month_sql[] =
    "WITH ins AS ("
    "  INSERT INTO public.voip_cdr_rollup_ext_month (tenant_id, month, ext_number, "
    "" ROLLUP_EXT_COLUMNS ")"
    "  SELECT " ROLLUP_EXT_MONTH_KEY ", " ROLLUP_EXT_MEASURES
    "    FROM public.voip_cdr WHERE ext_number IS NOT NULL AND " IN_MONTHS
    "   GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "  RETURNING 1"
    ") SELECT count(*) FROM ins";

/* GREATEST: the state of a number may come from a call outside the range, or a later one a
 * writer stored meanwhile; it only ever moves forward. Answers the rows made or moved. */
static const char upsert_callback_sql[] =
    "WITH up AS ("
    "  INSERT INTO public.voip_callback_state AS c (tenant_id, number, last_answered_ts,"
    "      last_missed_ts)"
    "  SELECT " ROLLUP_CALLBACK_SELECT "    FROM public.voip_cdr WHERE " ROLLUP_CALLBACK_WHERE
    " AND " IN_RANGE "   GROUP BY 1, 2 ORDER BY 1, 2"
    "  " ROLLUP_CALLBACK_UPSERT "  RETURNING 1"
    ") SELECT count(*) FROM up";

bool rollups_day_parse(const char *s, long *days)
{
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    long year = strtol(s, NULL, 10);
    int month = (int)strtol(s + 5, NULL, 10);
    int day = (int)strtol(s + 8, NULL, 10);
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 2000 || month < 1 || month > 12 || day < 1 ||
        day > month_days[month - 1] + (month == 2 && leap))
        return false;
    /* Leap years in [1970, year): those up to year-1 less those up to 1969. */
    long y = year - 1;
    long leaps = (y / 4 - y / 100 + y / 400) - (1969 / 4 - 1969 / 100 + 1969 / 400);
    long n = (year - 1970) * 365 + leaps;
    for (int m = 1; m < month; m++)
        n += month_days[m - 1] + (m == 2 && leap);
    *days = n + day - 1;
    return true;
}

/* Runs the step 'sql' with the range 'params' and stores the bigint columns of its one row in
 * 'out' ('n_out' of them; with none, a statement without rows such as a DELETE). Returns 0, or
 * -1 with 'err' naming 'what' and the server's message. */
static int step(PGconn *conn, const char *what, const char *sql, const char *const *params,
                long long *out, int n_out, char *err, size_t errlen)
{
    char msg[1024];
    PGresult *r = pgu_query(conn, sql, 2, params, msg, sizeof(msg));
    if (!r) {
        snprintf(err, errlen, "%s: %s", what, msg);
        return -1;
    }
    int rc = 0;
    if (n_out > 0 && (PQntuples(r) != 1 || PQnfields(r) < n_out)) {
        snprintf(err, errlen, "%s: unexpected answer from the server", what);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < n_out; i++)
        out[i] = strtoll(PQgetvalue(r, 0, i), NULL, 10);
    PQclear(r);
    return rc;
}

int rollups_rebuild(PGconn *conn, const char *from, const char *to, rollups_result *res, char *err,
                    size_t errlen)
{
    const char *const range[2] = {from, to};
    const char *const lock_params[1] = {ROLLUPS_LOCK_KEY};
    char msg[1024];
    long long store[2] = {0, 0};
    PGresult *r = NULL;
    bool in_tx = false;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    if (pgu_exec(conn, "BEGIN", msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "cannot begin the transaction: %s", msg);
        goto done;
    }
    in_tx = true;
    r = pgu_query(conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock_params, msg,
                  sizeof(msg));
    if (!r) {
        snprintf(err, errlen, "cannot take the rebuild lock: %s", msg);
        goto done;
    }
    PQclear(r);
    if (pgu_exec(conn, lock_tables_sql, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "cannot lock the rollup tables: %s", msg);
        goto done;
    }
    if (step(conn, "cannot delete the store-hour rollup rows", delete_store_sql, range, NULL, 0,
             err, errlen) != 0)
        goto done;
    if (step(conn, "cannot delete the store-day rollup rows", delete_store_day_sql, range, NULL, 0,
             err, errlen) != 0)
        goto done;
    if (step(conn, "cannot delete the extension-day rollup rows", delete_ext_sql, range, NULL, 0,
             err, errlen) != 0)
        goto done;
    if (step(conn, "cannot delete the extension-month rollup rows", delete_ext_month_sql, range,
             NULL, 0, err, errlen) != 0)
        goto done;
    if (step(conn, "cannot insert the store-hour rollup rows", insert_store_sql, range, store, 2,
             err, errlen) != 0)
        goto done;
    if (step(conn, "cannot insert the store-day rollup rows", insert_store_day_sql, range,
             &res->store_day_rows, 1, err, errlen) != 0)
        goto done;
    if (step(conn, "cannot insert the extension-day rollup rows", insert_ext_sql, range,
             &res->ext_day_rows, 1, err, errlen) != 0)
        goto done;
    if (step(conn, "cannot insert the extension-month rollup rows", insert_ext_month_sql, range,
             &res->ext_month_rows, 1, err, errlen) != 0)
        goto done;
    if (step(conn, "cannot update the callback state", upsert_callback_sql, range,
             &res->callback_moved, 1, err, errlen) != 0)
        goto done;
    r = PQexec(conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        pgu_error(conn, r, msg, sizeof(msg));
        snprintf(err, errlen, "cannot commit: %s", msg);
        PQclear(r);
        goto done;
    }
    PQclear(r);
    in_tx = false;
    res->store_hour_rows = store[0];
    res->cdrs = store[1];
    rc = 0;
done:
    if (in_tx && rc != 0) {
        r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    return rc;
}

typedef struct rebuild_flags {
    char *from;
    char *to;
} rebuild_flags;

static const cfg_option rebuild_options[] = {
    {"from", NULL, CFG_STRING, NULL, 0, 0, NULL, offsetof(rebuild_flags, from),
     "first UTC day, YYYY-MM-DD (required)"},
    {"to", NULL, CFG_STRING, NULL, 0, 0, NULL, offsetof(rebuild_flags, to),
     "last UTC day, YYYY-MM-DD, included (required; at most 400 days from --from)"},
};

static const cfg_table rebuild_table = {
    .program = "cdrctl rollups rebuild",
    .summary = "Recomputes from voip_cdr, in one transaction, the store-hour, store-day and "
               "extension-day rollups of the UTC days --from..--to (rows of other days are left "
               "as they are) and the extension-month rollup of every UTC month they touch, "
               "whole, and moves the callback state forward to the range's calls.",
    .usage = "--from YYYY-MM-DD --to YYYY-MM-DD",
    .opts = rebuild_options,
    .n_opts = CDR_ARRAY_LEN(rebuild_options),
};

/* What --help says besides the table: how a rebuild meets running writers. */
static const char rebuild_notes[] =
    "\n"
    "For CDRs loaded around the writer (COPY) and for repair. Safe while writers run: it locks\n"
    "the rollup tables against writers' updates before it reads voip_cdr, until it commits, so\n"
    "a CDR a writer committed before the lock is counted by the rebuild and one committed after\n"
    "by the writer, never both and never neither; writers wait meanwhile (the stream backlog\n"
    "waits in Redis). CDRs loaded by other means (COPY) while it runs may be missed: rebuild\n"
    "again after loading. The callback state never moves back, so any range is safe for it.\n"
    "Two rebuilds run one after the other.\n"
    "Prints: rebuilt N store-hour, N store-day, N extension-day and N extension-month rollup\n"
    "        rows from N CDRs, FROM..TO\n"
    "        callback state moved forward for N numbers\n";

static void print_help(void)
{
    cfg_print_help(&rebuild_table, stdout);
    fputs(rebuild_notes, stdout);
}

int ctl_rollups_main(const ctl_config *conf, int argc, char **argv)
{
    rebuild_flags flags = {0};
    rollups_result res;
    char err[1536];
    long from_day = 0, to_day = 0;
    PGconn *conn = NULL;
    int rc;

    if (argc < 2) {
        ctl_error("rollups: missing command (rebuild)");
        fprintf(stderr, "Try 'cdrctl rollups --help'.\n");
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help();
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "rebuild") != 0) {
        ctl_error("rollups: unknown command '%s' (expected rebuild)", argv[1]);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_parse_flags(&rebuild_table, &flags, argc - 1, argv + 1);
    if (rc == CTL_EXIT_OK)
        fputs(rebuild_notes, stdout);
    if (rc != CTL_CONTINUE)
        goto done;

    rc = CTL_EXIT_USAGE;
    if (!flags.from) {
        ctl_error("rollups rebuild: --from is required");
        goto done;
    }
    if (!flags.to) {
        ctl_error("rollups rebuild: --to is required");
        goto done;
    }
    if (!rollups_day_parse(flags.from, &from_day)) {
        ctl_error("rollups rebuild: --from: expected a day YYYY-MM-DD, got '%s'", flags.from);
        goto done;
    }
    if (!rollups_day_parse(flags.to, &to_day)) {
        ctl_error("rollups rebuild: --to: expected a day YYYY-MM-DD, got '%s'", flags.to);
        goto done;
    }
    if (to_day < from_day) {
        ctl_error("rollups rebuild: --to %s is before --from %s", flags.to, flags.from);
        goto done;
    }
    if (to_day - from_day + 1 > ROLLUPS_DAYS_MAX) {
        ctl_error("rollups rebuild: --from %s --to %s spans %ld days, at most %d", flags.from,
                  flags.to, to_day - from_day + 1, ROLLUPS_DAYS_MAX);
        goto done;
    }

    conn = pgu_connect(conf->pg_url, err, sizeof(err));
    if (!conn) {
        ctl_error("rollups rebuild: %s", err);
        rc = CTL_EXIT_FAILURE;
        goto done;
    }
    if (rollups_rebuild(conn, flags.from, flags.to, &res, err, sizeof(err)) != 0) {
        ctl_error("rollups rebuild: %s..%s: %s", flags.from, flags.to, err);
        rc = CTL_EXIT_FAILURE;
        goto done;
    }
    printf("rebuilt %lld store-hour, %lld store-day, %lld extension-day and %lld extension-month "
           "rollup rows from %lld CDRs, %s..%s\n",
           res.store_hour_rows, res.store_day_rows, res.ext_day_rows, res.ext_month_rows, res.cdrs,
           flags.from, flags.to);
    printf("callback state moved forward for %lld numbers\n", res.callback_moved);
    rc = CTL_EXIT_OK;
done:
    PQfinish(conn);
    cfg_free(&rebuild_table, &flags);
    return rc;
}
