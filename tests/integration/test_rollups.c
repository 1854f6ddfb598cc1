/* test_rollups.c - `cdrctl rollups rebuild` against a real PostgreSQL: CDRs stored straight into
 * voip_cdr (no writer) get the rollups and callback state a recomputation written here expects,
 * the daily store rollup is the sum of the hourly one, a rebuild run twice changes nothing, days
 * outside the range are left alone, bad ranges are refused. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "db_fixture.h"
#include "itest.h"
#include "oracle_sql.h"

static itest_db db;

static void drop_db(void)
{
    itest_db_drop(&db);
}

TestSuite(rollups, .fini = drop_db, .timeout = 300);

static PGconn *make_db(void)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&db, (const char *const[]){"migrate", NULL});
    PGconn *c = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(c, "%s", err);
    return c;
}

static long long scalar(PGconn *c, const char *sql, int n, const char *const *params)
{
    char err[1024];
    long long v = -1;
    cr_assert(itest_scalar(c, sql, n, params, &v, err, sizeof(err)) == 0, "%s: %s", sql, err);
    return v;
}

static void exec_ok(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *res = itest_query(c, sql, n, params);
    cr_assert(itest_ok(res), "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

/* A few thousand CDRs from 2025-09-20 to 2025-11-07 stored as the owner, straight into
 * voip_cdr: three tenants, stores and none, both directions, every disposition, extensions and
 * none, users and none, MOS around the 3.6 threshold (3.6 itself is not poor), calls at
 * midnight and just before, and the month boundaries. MOS, jitter, loss and ring time are
 * values whose sums are exact in any order, so rollups computed by two plans compare equal. */
static const char seed_sql[] =
    "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, store_id, sip_domain, direction,"
    "    from_uri, to_uri, ext_number, user_id, answer_ts, end_ts, billsec, disposition, mos,"
    "    jitter_ms, loss_pct)"
    " SELECT (ARRAY['aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb',"
    "               'cccccccc-cccc-4ccc-8ccc-cccccccccccc'])[1 + g % 3]::uuid,"
    "   'call-' || g, ts,"
    "   CASE WHEN g % 7 = 0 THEN NULL"
    "        ELSE ('00000000-0000-4000-8000-00000000000' || (g % 4))::uuid END,"
    "   'x.example', CASE WHEN g % 5 < 3 THEN 'in' ELSE 'out' END,"
    "   'sip:+3902' || (g % 23) || '@x.example', 'sip:+3906' || (g % 19) || '@x.example',"
    "   CASE WHEN g % 11 = 0 THEN NULL ELSE '1' || (g % 6) END,"
    "   CASE WHEN g % 4 = 0 THEN NULL"
    "        ELSE ('11111111-0000-4000-8000-00000000000' || (g % 9))::uuid END,"
    "   CASE WHEN disp = 'ANSWERED' THEN ts + make_interval(secs => g % 30 + 0.5) END,"
    "   ts + interval '600 seconds',"
    "   CASE WHEN disp = 'ANSWERED' THEN g % 500 ELSE 0 END, disp,"
    "   (CASE g % 6 WHEN 0 THEN NULL WHEN 1 THEN 3.6 WHEN 2 THEN 3.5 WHEN 3 THEN 4.25"
    "               WHEN 4 THEN 3.59 ELSE 1 END)::real,"
    "   CASE WHEN g % 8 = 0 THEN NULL ELSE (g % 40) * 0.25 END,"
    "   CASE WHEN g % 9 = 0 THEN NULL ELSE (g % 13) * 0.5 END"
    " FROM (SELECT g, (ARRAY['ANSWERED', 'ANSWERED', 'NO_ANSWER', 'BUSY', 'FAILED'])"
    "                 [1 + (g / 3) % 5] AS disp,"
    "          CASE WHEN g % 97 = 0 THEN date_trunc('day', t, 'UTC')"
    "               WHEN g % 89 = 0 THEN date_trunc('day', t, 'UTC') - interval '0.25 seconds'"
    "               WHEN g > 3000 THEN (ARRAY[timestamptz '2025-09-30 23:59:59.75+00',"
    "                   '2025-10-01 00:00:00+00', '2025-10-31 23:59:59.5+00',"
    "                   '2025-11-01 00:00:00+00'])[g - 3000]"
    "               ELSE t END AS ts"
    "         FROM (SELECT g, timestamptz '2025-09-20 00:00:00+00'"
    "                         + make_interval(secs => g * 1399.25) AS t"
    "                 FROM generate_series(1, 3004) AS g) AS raw) AS s";

/* The rollup tables' rows of the days [$1, $2], in the order of the expected rows below. */
#define ROWS_MEASURES                                                                              \
    "calls, answered, no_answer, busy, failed, billsec_sum, ring_sum_s, mos_sum, mos_n,"           \
    " jitter_sum, jitter_n, loss_sum, loss_n, poor_mos_n"
#define HOUR_DAY "(hour AT TIME ZONE 'UTC')::date"
static const char store_rows_sql[] =
    "SELECT tenant_id, store_id, hour, direction, " ROWS_MEASURES
    " FROM voip_cdr_rollup_store_hour WHERE " HOUR_DAY " BETWEEN $1::date AND $2::date";
static const char store_day_rows_sql[] =
    "SELECT tenant_id, store_id, day, direction, " ROWS_MEASURES
    " FROM voip_cdr_rollup_store_day WHERE day BETWEEN $1::date AND $2::date";
static const char ext_rows_sql[] =
    "SELECT tenant_id, ext_number, day, direction, " ROWS_MEASURES ", user_id, store_id"
    " FROM voip_cdr_rollup_ext_day WHERE day BETWEEN $1::date AND $2::date";

/* The store-hour rows of the days [$1, $2] summed per UTC day, as store_day_rows_sql. */
static const char store_hours_by_day_sql[] =
    "SELECT tenant_id, store_id, " HOUR_DAY ", direction, sum(calls), sum(answered),"
    "   sum(no_answer), sum(busy), sum(failed), sum(billsec_sum), sum(ring_sum_s), sum(mos_sum),"
    "   sum(mos_n), sum(jitter_sum), sum(jitter_n), sum(loss_sum), sum(loss_n), sum(poor_mos_n)"
    " FROM voip_cdr_rollup_store_hour WHERE " HOUR_DAY " BETWEEN $1::date AND $2::date"
    " GROUP BY 1, 2, 3, 4";

/* The test's own recomputation of what the writer keeps, from voip_cdr rows of the UTC days
 * [$1, $2] (docs/schema.md). */
#define EXPECT_MEASURES                                                                            \
    "count(*)::bigint, sum((disposition = 'ANSWERED')::int)::bigint,"                              \
    " sum((disposition = 'NO_ANSWER')::int)::bigint, sum((disposition = 'BUSY')::int)::bigint,"    \
    " sum((disposition = 'FAILED')::int)::bigint,"                                                 \
    " sum(CASE WHEN disposition = 'ANSWERED' THEN billsec ELSE 0 END)::bigint,"                    \
    " sum(CASE WHEN answer_ts IS NULL THEN 0"                                                      \
    "          ELSE extract(epoch FROM answer_ts - start_ts)::float8 END),"                        \
    " coalesce(sum(mos::float8), 0), count(mos), coalesce(sum(jitter_ms::float8), 0),"             \
    " count(jitter_ms), coalesce(sum(loss_pct::float8), 0), count(loss_pct),"                      \
    " sum(CASE WHEN mos < real '3.6' THEN 1 ELSE 0 END)::bigint"
#define EXPECT_DAYS "(start_ts AT TIME ZONE 'UTC')::date BETWEEN $1::date AND $2::date"

#define UTC_DAY "(start_ts AT TIME ZONE 'UTC')::date"

/* Grouped by tenant, store (none: the all-zero UUID), the time bucket 'bucket' and direction. */
#define STORE_EXPECT(bucket)                                                                       \
    "SELECT tenant_id, coalesce(store_id, '00000000-0000-0000-0000-000000000000'), " bucket        \
    ", direction, " EXPECT_MEASURES " FROM voip_cdr WHERE " EXPECT_DAYS " GROUP BY 1, 2, 3, 4"
static const char store_expect_sql[] =
    STORE_EXPECT("date_trunc('hour', start_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'");
static const char store_day_expect_sql[] = STORE_EXPECT(UTC_DAY);

/* The latest user and store are looked up per group, the latest call first, ties by call_id. */
static const char ext_expect_sql[] =
    "SELECT g.*,"
    "   (SELECT user_id FROM voip_cdr c WHERE c.tenant_id = g.tenant_id"
    "      AND c.ext_number = g.ext_number AND c.direction = g.direction"
    "      AND (c.start_ts AT TIME ZONE 'UTC')::date = g.day AND c.user_id IS NOT NULL"
    "    ORDER BY c.start_ts DESC, c.call_id DESC LIMIT 1),"
    "   (SELECT store_id FROM voip_cdr c WHERE c.tenant_id = g.tenant_id"
    "      AND c.ext_number = g.ext_number AND c.direction = g.direction"
    "      AND (c.start_ts AT TIME ZONE 'UTC')::date = g.day AND c.store_id IS NOT NULL"
    "    ORDER BY c.start_ts DESC, c.call_id DESC LIMIT 1)"
    " FROM (SELECT tenant_id, ext_number, (start_ts AT TIME ZONE 'UTC')::date AS day, direction,"
    "          " EXPECT_MEASURES " FROM voip_cdr"
    "        WHERE ext_number IS NOT NULL AND " EXPECT_DAYS " GROUP BY 1, 2, 3, 4) AS g";

/* The callback state the recomputation expects when it held nothing before. */
static const char callback_rows_sql[] =
    "SELECT " ORACLE_CALLBACK_COLUMNS " FROM voip_callback_state";
static const char callback_expect_sql[] = ORACLE_CALLBACK_STATE("true");

/* Rows in one of 'a' and 'b' but not the other, both run with the 'n' parameters 'params'. */
static long long differ(PGconn *c, const char *a, const char *b, int n, const char *const *params)
{
    char sql[8192];
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) AS x)"
             "     + (SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) AS y)",
             a, b, b, a);
    return scalar(c, sql, n, params);
}

/* Asserts the rollups of the days 'from'..'to' equal the recomputation, the store-day one the
 * store-hour one summed per day too, and with 'callback' the whole callback state too. */
static void expect_recomputed(PGconn *c, const char *from, const char *to, bool callback)
{
    const char *const range[2] = {from, to};
    cr_expect_eq(differ(c, store_rows_sql, store_expect_sql, 2, range), 0,
                 "store-hour rollup of %s..%s differs from the recomputation", from, to);
    cr_expect_eq(differ(c, store_day_rows_sql, store_day_expect_sql, 2, range), 0,
                 "store-day rollup of %s..%s differs from the recomputation", from, to);
    cr_expect_eq(differ(c, store_day_rows_sql, store_hours_by_day_sql, 2, range), 0,
                 "store-day rollup of %s..%s differs from the store-hour one summed per day", from,
                 to);
    cr_expect_gt(scalar(c,
                        "SELECT count(*) FROM voip_cdr_rollup_store_day"
                        " WHERE day BETWEEN $1::date AND $2::date",
                        2, range),
                 0, "no store-day rows of %s..%s to compare", from, to);
    cr_expect_eq(differ(c, ext_rows_sql, ext_expect_sql, 2, range), 0,
                 "extension-day rollup of %s..%s differs from the recomputation", from, to);
    if (callback)
        cr_expect_eq(differ(c, callback_rows_sql, callback_expect_sql, 0, NULL), 0,
                     "callback state differs from the recomputation");
}

/* Runs the rebuild in a session an hour ahead of UTC (where the seed's calls just before a UTC
 * midnight are on the next day): the hours and days it keeps are UTC's all the same. */
static void rebuild(const char *from, const char *to, char *out, size_t len)
{
    itest_proc p;
    fixture_ctl_run(&db,
                    (const char *const[]){"rollups", "rebuild", "--from", from, "--to", to, NULL},
                    (const char *const[]){"PGTZ=Europe/Rome", NULL}, &p);
    cr_assert_eq(p.status, 0, "rollups rebuild %s..%s: %s", from, to, p.err);
    cr_expect_str_eq(p.err, "", "rebuild wrote to stderr: %s", p.err);
    snprintf(out, len, "%s", p.out);
    itest_proc_free(&p);
}

static void seed(PGconn *c)
{
    exec_ok(c, "SELECT cdr_ensure_months('2025-09-01', 3)", 0, NULL);
    exec_ok(c, seed_sql, 0, NULL);
    cr_assert_eq(scalar(c, "SELECT count(*) FROM voip_cdr", 0, NULL), 3004);
}

Test(rollups, rebuild_equals_recomputation_and_again_changes_nothing)
{
    PGconn *c = make_db();
    seed(c);
    /* Wrong rows inside the range, as a repair would find them. */
    exec_ok(c,
            "INSERT INTO voip_cdr_rollup_store_hour (tenant_id, store_id, hour, direction, calls)"
            " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-"
            "000000000000', '2025-10-05 10:00:00+00', 'in', 999)",
            0, NULL);
    exec_ok(c,
            "INSERT INTO voip_cdr_rollup_ext_day (tenant_id, ext_number, day, direction, calls)"
            " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '99', '2025-10-05', 'out', 999)",
            0, NULL);
    exec_ok(c,
            "INSERT INTO voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, calls)"
            " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '2025-10-05', '00000000-0000-0000-"
            "0000-000000000000', 'in', 999)",
            0, NULL);
    /* A number's state older than its answered calls of the range, which moves it forward. */
    exec_ok(c,
            "INSERT INTO voip_callback_state SELECT tenant_id, from_uri, '2025-01-01 00:00:00+00'"
            " FROM voip_cdr WHERE direction = 'in' AND answer_ts IS NOT NULL LIMIT 1",
            0, NULL);

    const char *from = "2025-09-01", *to = "2025-11-30";
    char first[1024], second[1024], want[1024];
    rebuild(from, to, first, sizeof(first));
    const char *const range[2] = {from, to};
    snprintf(want, sizeof(want),
             "rebuilt %lld store-hour, %lld store-day and %lld extension-day rollup rows from 3004 "
             "CDRs, 2025-09-01..2025-11-30\n",
             scalar(c,
                    "SELECT count(*) FROM ("
                    "SELECT 1 FROM voip_cdr WHERE " EXPECT_DAYS
                    " GROUP BY tenant_id, store_id, date_trunc('hour', start_ts, 'UTC'),"
                    " direction) AS k",
                    2, range),
             scalar(c,
                    "SELECT count(*) FROM (SELECT 1 FROM voip_cdr WHERE " EXPECT_DAYS
                    " GROUP BY tenant_id, store_id, " UTC_DAY ", direction) AS k",
                    2, range),
             scalar(c,
                    "SELECT count(*) FROM (SELECT 1 FROM voip_cdr WHERE ext_number IS NOT NULL"
                    " AND " EXPECT_DAYS " GROUP BY tenant_id, ext_number,"
                    " (start_ts AT TIME ZONE 'UTC')::date, direction) AS k",
                    2, range));
    cr_expect(strncmp(first, want, strlen(want)) == 0, "got %s, want %s", first, want);
    expect_recomputed(c, from, to, true);
    cr_expect_eq(scalar(c,
                        "SELECT (SELECT count(*) FROM voip_cdr_rollup_store_hour"
                        "         WHERE (hour AT TIME ZONE 'UTC')::date < $1::date"
                        "            OR (hour AT TIME ZONE 'UTC')::date > $2::date)"
                        "     + (SELECT count(*) FROM voip_cdr_rollup_store_day"
                        "         WHERE day < $1::date OR day > $2::date)",
                        2, range),
                 0);
    /* The seed's MOS 3.5, 3.59 and 1 are poor, 3.6 and 4.25 are not. */
    cr_expect_eq(
        scalar(c, "SELECT sum(poor_mos_n) FROM voip_cdr_rollup_store_hour", 0, NULL),
        scalar(c, "SELECT count(*) FROM voip_cdr WHERE mos IN (1, 3.5, real '3.59')", 0, NULL));
    cr_expect_gt(scalar(c, "SELECT count(*) FROM voip_cdr WHERE mos = real '3.6'", 0, NULL), 0);

    /* Again: the same rows, and the callback state has nothing left to move. */
    rebuild(from, to, second, sizeof(second));
    cr_expect(strncmp(second, want, strlen(want)) == 0, "got %s, want %s", second, want);
    cr_expect(strstr(second, "for 0 numbers") != NULL, "%s", second);
    expect_recomputed(c, from, to, true);
    PQfinish(c);
}

Test(rollups, rebuild_of_some_days_leaves_the_others_alone)
{
    PGconn *c = make_db();
    seed(c);
    char out[1024];
    rebuild("2025-09-01", "2025-11-30", out, sizeof(out));

    /* Outside 2025-10-01..2025-10-31: the hour and day just before and just after it, altered
     * and added; inside: altered at both edges, and a day removed. */
    exec_ok(c,
            "UPDATE voip_cdr_rollup_store_hour SET calls = calls + 1000"
            " WHERE hour IN ('2025-09-30 23:00:00+00', '2025-11-01 00:00:00+00',"
            "                '2025-10-01 00:00:00+00', '2025-10-31 23:00:00+00')",
            0, NULL);
    exec_ok(c,
            "UPDATE voip_cdr_rollup_ext_day SET calls = calls + 1000"
            " WHERE day IN ('2025-09-30', '2025-11-01', '2025-10-01', '2025-10-31')",
            0, NULL);
    exec_ok(c,
            "UPDATE voip_cdr_rollup_store_day SET calls = calls + 1000"
            " WHERE day IN ('2025-09-30', '2025-11-01', '2025-10-01', '2025-10-31')",
            0, NULL);
    exec_ok(c, "DELETE FROM voip_cdr_rollup_ext_day WHERE day = '2025-10-15'", 0, NULL);
    exec_ok(c, "DELETE FROM voip_cdr_rollup_store_day WHERE day = '2025-10-15'", 0, NULL);
    exec_ok(c,
            "INSERT INTO voip_cdr_rollup_store_hour (tenant_id, store_id, hour, direction, calls)"
            " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '00000000-0000-0000-0000-"
            "000000000000', '2025-11-01 00:00:00+00', 'in', 7)",
            0, NULL);
    exec_ok(c,
            "INSERT INTO voip_cdr_rollup_ext_day (tenant_id, ext_number, day, direction, calls)"
            " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '10', '2025-09-30', 'in', 7)",
            0, NULL);
    exec_ok(c,
            "INSERT INTO voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, calls)"
            " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '2025-11-01', '00000000-0000-0000-"
            "0000-000000000000', 'out', 7)",
            0, NULL);
    /* Numbers answered later than anything in voip_cdr: the state never moves back. */
    exec_ok(c,
            "UPDATE voip_callback_state SET last_answered_ts = '2030-01-01 00:00:00+00'"
            " WHERE number = 'sip:+39021@x.example'",
            0, NULL);
    long long ahead = scalar(c,
                             "SELECT count(*) FROM voip_callback_state"
                             " WHERE last_answered_ts = '2030-01-01 00:00:00+00'",
                             0, NULL);
    cr_assert_gt(ahead, 0);
    long long outside = scalar(c,
                               "SELECT count(*) FROM voip_cdr_rollup_store_hour"
                               " WHERE calls >= 1000 AND hour IN"
                               " ('2025-09-30 23:00:00+00', '2025-11-01 00:00:00+00')",
                               0, NULL);
    long long outside_ext = scalar(c,
                                   "SELECT count(*) FROM voip_cdr_rollup_ext_day"
                                   " WHERE calls >= 1000 AND day IN ('2025-09-30', '2025-11-01')",
                                   0, NULL);
    long long outside_day = scalar(c,
                                   "SELECT count(*) FROM voip_cdr_rollup_store_day"
                                   " WHERE calls >= 1000 AND day IN ('2025-09-30', '2025-11-01')",
                                   0, NULL);
    cr_assert_gt(outside, 1, "the seed has calls in the hours next to the range");
    cr_assert_gt(outside_ext, 1, "the seed has calls on the days next to the range");
    cr_assert_gt(outside_day, 1, "the seed has store calls on the days next to the range");

    rebuild("2025-10-01", "2025-10-31", out, sizeof(out));
    expect_recomputed(c, "2025-10-01", "2025-10-31", false);
    cr_expect_eq(scalar(c,
                        "SELECT count(*) FROM voip_cdr_rollup_store_hour"
                        " WHERE calls >= 1000 AND hour IN"
                        " ('2025-09-30 23:00:00+00', '2025-11-01 00:00:00+00')",
                        0, NULL),
                 outside, "store-hour rows next to the range were changed");
    cr_expect_eq(scalar(c,
                        "SELECT count(*) FROM voip_cdr_rollup_ext_day"
                        " WHERE calls >= 1000 AND day IN ('2025-09-30', '2025-11-01')",
                        0, NULL),
                 outside_ext, "extension-day rows next to the range were changed");
    cr_expect_eq(scalar(c,
                        "SELECT count(*) FROM voip_cdr_rollup_store_day"
                        " WHERE calls >= 1000 AND day IN ('2025-09-30', '2025-11-01')",
                        0, NULL),
                 outside_day, "store-day rows next to the range were changed");
    cr_expect_eq(scalar(c,
                        "SELECT (SELECT count(*) FROM voip_cdr_rollup_store_hour"
                        "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')"
                        "     + (SELECT count(*) FROM voip_cdr_rollup_store_day"
                        "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')"
                        "     + (SELECT count(*) FROM voip_cdr_rollup_ext_day"
                        "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')",
                        0, NULL),
                 3, "the sentinel rows outside the range are gone");
    cr_expect_eq(scalar(c,
                        "SELECT count(*) FROM voip_callback_state"
                        " WHERE last_answered_ts = '2030-01-01 00:00:00+00'",
                        0, NULL),
                 ahead, "the callback state moved back");
    cr_expect_eq(differ(c,
                        "SELECT " ORACLE_CALLBACK_COLUMNS " FROM voip_callback_state"
                        " WHERE number <> 'sip:+39021@x.example'",
                        "SELECT * FROM (" ORACLE_CALLBACK_STATE(
                            "true") ") AS e"
                                    " WHERE number <> 'sip:+39021@x.example'",
                        0, NULL),
                 0, "the callback state of other numbers differs from the recomputation");
    PQfinish(c);
}

Test(rollups, bad_ranges_exit_2_naming_the_flag)
{
    PGconn *c = make_db();
    static const struct {
        const char *from, *to, *names;
    } cases[] = {
        {NULL, "2025-10-01", "--from"},          {"2025-10-01", NULL, "--to"},
        {"2025-13-01", "2025-10-01", "--from"},  {"2025-02-29", "2025-03-01", "--from"},
        {"25-10-01", "2025-10-01", "--from"},    {"2025-10-01", "2025-1-05", "--to"},
        {"2025-10-01", "2025-10-01T00", "--to"}, {"2025-10-02", "2025-10-01", "--to"},
        {"2024-01-01", "2025-02-04", "--to"}, /* 401 days */
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        const char *args[8];
        size_t n = 0;
        args[n++] = "rollups";
        args[n++] = "rebuild";
        if (cases[i].from) {
            args[n++] = "--from";
            args[n++] = cases[i].from;
        }
        if (cases[i].to) {
            args[n++] = "--to";
            args[n++] = cases[i].to;
        }
        args[n] = NULL;
        itest_proc p;
        fixture_ctl_run(&db, args, NULL, &p);
        cr_expect_eq(p.status, 2, "case %zu: exit %d: %s", i, p.status, p.err);
        cr_expect(strstr(p.err, cases[i].names) != NULL, "case %zu names %s: %s", i, cases[i].names,
                  p.err);
        cr_expect_str_eq(p.out, "", "case %zu printed %s", i, p.out);
        itest_proc_free(&p);
    }

    itest_proc p;
    fixture_ctl_run(&db, (const char *const[]){"rollups", NULL}, NULL, &p);
    cr_expect_eq(p.status, 2);
    itest_proc_free(&p);
    fixture_ctl_run(&db, (const char *const[]){"rollups", "rebuilt", NULL}, NULL, &p);
    cr_expect_eq(p.status, 2);
    cr_expect(strstr(p.err, "rebuilt") != NULL, "%s", p.err);
    itest_proc_free(&p);

    /* 400 days, a leap day included, is allowed, on a database without CDRs. */
    fixture_ctl_run(&db,
                    (const char *const[]){"rollups", "rebuild", "--from", "2024-01-01", "--to",
                                          "2025-02-03", NULL},
                    NULL, &p);
    cr_expect_eq(p.status, 0, "%s", p.err);
    static const char empty[] = "rebuilt 0 store-hour, 0 store-day and 0 extension-day rollup "
                                "rows from 0 CDRs, 2024-01-01..2025-02-03\n";
    cr_expect(strncmp(p.out, empty, strlen(empty)) == 0, "%s", p.out);
    itest_proc_free(&p);

    fixture_ctl_run(&db, (const char *const[]){"rollups", "rebuild", "--help", NULL}, NULL, &p);
    cr_expect_eq(p.status, 0);
    cr_expect(strstr(p.out, "--from") && strstr(p.out, "--to") && strstr(p.out, "writers"), "%s",
              p.out);
    itest_proc_free(&p);
    PQfinish(c);
}
