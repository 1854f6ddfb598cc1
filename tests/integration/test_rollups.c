/* test_rollups.c - `cdrctl rollups rebuild` against a real PostgreSQL: CDRs stored straight into
 * voip_cdr (no writer) get the rollups and callback state the tests' own recomputation
 * (oracle_sql.h) expects, the daily store rollup is the sum of the hourly one, a rebuild run
 * twice changes nothing, the extension months the range touches are recomputed whole, days and
 * months outside it are left alone, bad ranges are refused. */
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

/* The rollup rows of the UTC days [$1, $2], and of the UTC months that overlap them. */
#define IN_DAYS   "day BETWEEN $1::date AND $2::date"
#define IN_MONTHS "month <= $2::date AND month + interval '1 month' > $1::date"
#define HOUR_DAY  "(hour AT TIME ZONE 'UTC')::date"
static const char store_rows_sql[] =
    ORACLE_STORE_ROWS("hour") " WHERE " HOUR_DAY " BETWEEN $1::date AND $2::date";
static const char store_day_rows_sql[] = ORACLE_STORE_ROWS("day") " WHERE " IN_DAYS;
static const char ext_rows_sql[] = ORACLE_EXT_ROWS("day") " WHERE " IN_DAYS;
static const char ext_month_rows_sql[] = ORACLE_EXT_ROWS("month") " WHERE " IN_MONTHS;

/* The store-hour rows of the days [$1, $2] summed per UTC day, as store_day_rows_sql. */
static const char store_hours_by_day_sql[] =
    ORACLE_STORE_HOURS_BY_DAY(HOUR_DAY " BETWEEN $1::date AND $2::date");

/* What the rollups must hold from the voip_cdr rows of the UTC days [$1, $2], and for the
 * extension months from all the rows of the months that overlap them. */
#define EXPECT_DAYS "(start_ts AT TIME ZONE 'UTC')::date BETWEEN $1::date AND $2::date"
static const char store_expect_sql[] = ORACLE_STORE_HOUR(EXPECT_DAYS);
static const char store_day_expect_sql[] = ORACLE_STORE_DAY(EXPECT_DAYS);
static const char ext_expect_sql[] = ORACLE_EXT_DAY(IN_DAYS);
static const char ext_month_expect_sql[] = ORACLE_EXT_MONTH(IN_MONTHS);

/* The callback state the recomputation expects when it held nothing before. */
static const char callback_rows_sql[] =
    "SELECT " ORACLE_CALLBACK_COLUMNS " FROM voip_callback_state";
static const char callback_expect_sql[] = ORACLE_CALLBACK_STATE("true");

/* Rows in one of 'a' and 'b' but not the other, both run with the 'n' parameters 'params'. */
static long long differ(PGconn *c, const char *a, const char *b, int n, const char *const *params)
{
    char sql[8192];
    int len = snprintf(sql, sizeof(sql),
                       "SELECT (SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) AS x)"
                       "     + (SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) AS y)",
                       a, b, b, a);
    cr_assert(len > 0 && (size_t)len < sizeof(sql), "the comparison does not fit");
    return fixture_scalar(c, sql, n, params);
}

/* Asserts the rollups of the days 'from'..'to', and the extension-month one of the months they
 * touch, equal the recomputation, the store-day one the store-hour one summed per day too, and
 * with 'callback' the whole callback state too. */
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
    cr_expect_gt(fixture_scalar(c, "SELECT count(*) FROM voip_cdr_rollup_store_day WHERE " IN_DAYS,
                                2, range),
                 0, "no store-day rows of %s..%s to compare", from, to);
    cr_expect_eq(differ(c, ext_rows_sql, ext_expect_sql, 2, range), 0,
                 "extension-day rollup of %s..%s differs from the recomputation", from, to);
    cr_expect_eq(differ(c, ext_month_rows_sql, ext_month_expect_sql, 2, range), 0,
                 "extension-month rollup of the months of %s..%s differs from the recomputation",
                 from, to);
    cr_expect_gt(fixture_scalar(c,
                                "SELECT count(*) FROM voip_cdr_rollup_ext_month WHERE " IN_MONTHS,
                                2, range),
                 0, "no extension-month rows of %s..%s to compare", from, to);
    if (callback)
        cr_expect_eq(differ(c, callback_rows_sql, callback_expect_sql, 0, NULL), 0,
                     "callback state differs from the recomputation");
}

/* Runs the rebuild in a session an hour ahead of UTC (where the seed's calls just before a UTC
 * midnight are on the next day, and those just before a UTC month in the next month): the hours,
 * days and months it keeps are UTC's all the same. */
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
    fixture_exec(c, "SELECT cdr_ensure_months('2025-09-01', 3)", 0, NULL);
    fixture_exec(c, seed_sql, 0, NULL);
    cr_assert_eq(fixture_scalar(c, "SELECT count(*) FROM voip_cdr", 0, NULL), 3004);
}

Test(rollups, rebuild_equals_recomputation_and_again_changes_nothing)
{
    PGconn *c = make_db();
    seed(c);
    /* Wrong rows inside the range, as a repair would find them. */
    fixture_exec(
        c,
        "INSERT INTO voip_cdr_rollup_store_hour (tenant_id, store_id, hour, direction, calls)"
        " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-"
        "000000000000', '2025-10-05 10:00:00+00', 'in', 999)",
        0, NULL);
    fixture_exec(c,
                 "INSERT INTO voip_cdr_rollup_ext_day (tenant_id, ext_number, day, calls)"
                 " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '99', '2025-10-05', 999)",
                 0, NULL);
    fixture_exec(c,
                 "INSERT INTO voip_cdr_rollup_ext_month (tenant_id, ext_number, month, calls)"
                 " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '99', '2025-10-01', 999)",
                 0, NULL);
    fixture_exec(
        c,
        "INSERT INTO voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, calls)"
        " VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '2025-10-05', '00000000-0000-0000-"
        "0000-000000000000', 'in', 999)",
        0, NULL);
    /* A number's state older than its answered calls of the range, which moves it forward. */
    fixture_exec(
        c,
        "INSERT INTO voip_callback_state SELECT tenant_id, from_uri, '2025-01-01 00:00:00+00'"
        " FROM voip_cdr WHERE direction = 'in' AND answer_ts IS NOT NULL LIMIT 1",
        0, NULL);

    const char *from = "2025-09-01", *to = "2025-11-30";
    char first[1024], second[1024], want[1024];
    rebuild(from, to, first, sizeof(first));
    const char *const range[2] = {from, to};
#define ROWS_OF(query) "SELECT count(*) FROM (" query ") AS k"
    snprintf(want, sizeof(want),
             "rebuilt %lld store-hour, %lld store-day, %lld extension-day and %lld "
             "extension-month rollup rows from 3004 CDRs, 2025-09-01..2025-11-30\n",
             fixture_scalar(c, ROWS_OF(ORACLE_STORE_HOUR(EXPECT_DAYS)), 2, range),
             fixture_scalar(c, ROWS_OF(ORACLE_STORE_DAY(EXPECT_DAYS)), 2, range),
             fixture_scalar(c, ROWS_OF(ORACLE_EXT_DAY(IN_DAYS)), 2, range),
             fixture_scalar(c, ROWS_OF(ORACLE_EXT_MONTH(IN_MONTHS)), 2, range));
    cr_expect(strncmp(first, want, strlen(want)) == 0, "got %s, want %s", first, want);
    expect_recomputed(c, from, to, true);
    cr_expect_eq(fixture_scalar(c,
                                "SELECT (SELECT count(*) FROM voip_cdr_rollup_store_hour"
                                "         WHERE (hour AT TIME ZONE 'UTC')::date < $1::date"
                                "            OR (hour AT TIME ZONE 'UTC')::date > $2::date)"
                                "     + (SELECT count(*) FROM voip_cdr_rollup_store_day"
                                "         WHERE day < $1::date OR day > $2::date)"
                                "     + (SELECT count(*) FROM voip_cdr_rollup_ext_day"
                                "         WHERE NOT (" IN_DAYS "))"
                                "     + (SELECT count(*) FROM voip_cdr_rollup_ext_month"
                                "         WHERE NOT (" IN_MONTHS "))",
                                2, range),
                 0, "rows outside the range are left");
    /* The seed's MOS 3.5, 3.59 and 1 are poor, 3.6 and 4.25 are not. */
    cr_expect_eq(
        fixture_scalar(c, "SELECT sum(poor_mos_n) FROM voip_cdr_rollup_store_hour", 0, NULL),
        fixture_scalar(c, "SELECT count(*) FROM voip_cdr WHERE mos IN (1, 3.5, real '3.59')", 0,
                       NULL));
    cr_expect_gt(fixture_scalar(c, "SELECT count(*) FROM voip_cdr WHERE mos = real '3.6'", 0, NULL),
                 0);

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

    /* Outside 2025-10-01..2025-10-31: the hour, day and month just before and just after it,
     * altered and added; inside: altered at both edges, and a day removed. */
    fixture_exec(c,
                 "UPDATE voip_cdr_rollup_store_hour SET calls = calls + 1000"
                 " WHERE hour IN ('2025-09-30 23:00:00+00', '2025-11-01 00:00:00+00',"
                 "                '2025-10-01 00:00:00+00', '2025-10-31 23:00:00+00')",
                 0, NULL);
    fixture_exec(c,
                 "UPDATE voip_cdr_rollup_ext_day SET calls = calls + 1000"
                 " WHERE day IN ('2025-09-30', '2025-11-01', '2025-10-01', '2025-10-31')",
                 0, NULL);
    fixture_exec(c,
                 "UPDATE voip_cdr_rollup_store_day SET calls = calls + 1000"
                 " WHERE day IN ('2025-09-30', '2025-11-01', '2025-10-01', '2025-10-31')",
                 0, NULL);
    fixture_exec(c, "UPDATE voip_cdr_rollup_ext_month SET calls = calls + 1000", 0, NULL);
    fixture_exec(c, "DELETE FROM voip_cdr_rollup_ext_day WHERE day = '2025-10-15'", 0, NULL);
    fixture_exec(c, "DELETE FROM voip_cdr_rollup_store_day WHERE day = '2025-10-15'", 0, NULL);
    fixture_exec(
        c,
        "INSERT INTO voip_cdr_rollup_store_hour (tenant_id, store_id, hour, direction, calls)"
        " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '00000000-0000-0000-0000-"
        "000000000000', '2025-11-01 00:00:00+00', 'in', 7)",
        0, NULL);
    fixture_exec(c,
                 "INSERT INTO voip_cdr_rollup_ext_day (tenant_id, ext_number, day, calls)"
                 " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '10', '2025-09-30', 7)",
                 0, NULL);
    fixture_exec(
        c,
        "INSERT INTO voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, calls)"
        " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '2025-11-01', '00000000-0000-0000-"
        "0000-000000000000', 'out', 7)",
        0, NULL);
    fixture_exec(c,
                 "INSERT INTO voip_cdr_rollup_ext_month (tenant_id, ext_number, month, calls)"
                 " VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '10', '2025-11-01', 7)",
                 0, NULL);
    /* Numbers answered later than anything in voip_cdr: the state never moves back. */
    fixture_exec(c,
                 "UPDATE voip_callback_state SET last_answered_ts = '2030-01-01 00:00:00+00'"
                 " WHERE number = 'sip:+39021@x.example'",
                 0, NULL);
    long long ahead = fixture_scalar(c,
                                     "SELECT count(*) FROM voip_callback_state"
                                     " WHERE last_answered_ts = '2030-01-01 00:00:00+00'",
                                     0, NULL);
    cr_assert_gt(ahead, 0);
    /* The rows altered next to the range, counted before and after it is rebuilt. */
    static const struct {
        const char *what, *sql;
    } outside[] = {
        {"store-hour rows next to the range",
         "SELECT count(*) FROM voip_cdr_rollup_store_hour WHERE calls >= 1000"
         " AND hour IN ('2025-09-30 23:00:00+00', '2025-11-01 00:00:00+00')"},
        {"store-day rows next to the range",
         "SELECT count(*) FROM voip_cdr_rollup_store_day WHERE calls >= 1000"
         " AND day IN ('2025-09-30', '2025-11-01')"},
        {"extension-day rows next to the range",
         "SELECT count(*) FROM voip_cdr_rollup_ext_day WHERE calls >= 1000"
         " AND day IN ('2025-09-30', '2025-11-01')"},
        {"extension-month rows of the months next to the range",
         "SELECT count(*) FROM voip_cdr_rollup_ext_month WHERE calls >= 1000"
         " AND month IN ('2025-09-01', '2025-11-01')"},
    };
    long long altered[CDR_ARRAY_LEN(outside)];
    for (size_t i = 0; i < CDR_ARRAY_LEN(outside); i++) {
        altered[i] = fixture_scalar(c, outside[i].sql, 0, NULL);
        cr_assert_gt(altered[i], 1, "the seed has calls in the %s", outside[i].what);
    }

    rebuild("2025-10-01", "2025-10-31", out, sizeof(out));
    expect_recomputed(c, "2025-10-01", "2025-10-31", false);
    for (size_t i = 0; i < CDR_ARRAY_LEN(outside); i++)
        cr_expect_eq(fixture_scalar(c, outside[i].sql, 0, NULL), altered[i], "%s were changed",
                     outside[i].what);
    cr_expect_eq(
        fixture_scalar(c,
                       "SELECT (SELECT count(*) FROM voip_cdr_rollup_store_hour"
                       "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')"
                       "     + (SELECT count(*) FROM voip_cdr_rollup_store_day"
                       "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')"
                       "     + (SELECT count(*) FROM voip_cdr_rollup_ext_day"
                       "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')"
                       "     + (SELECT count(*) FROM voip_cdr_rollup_ext_month"
                       "         WHERE tenant_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')",
                       0, NULL),
        4, "the sentinel rows outside the range are gone");
    cr_expect_eq(fixture_scalar(c,
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

    /* Two days of November: its month is recomputed from all of its calls, also those after
     * them (the recomputation above compares the whole month), and the months before are left
     * as they are. */
    fixture_exec(c, "UPDATE voip_cdr_rollup_ext_month SET calls = calls + 1000", 0, NULL);
    static const char months_before[] = "SELECT count(*) FROM voip_cdr_rollup_ext_month"
                                        " WHERE calls >= 1000 AND month < '2025-11-01'";
    long long before = fixture_scalar(c, months_before, 0, NULL);
    cr_assert_gt(before, 0);
    cr_assert_gt(fixture_scalar(c,
                                "SELECT count(*) FROM voip_cdr WHERE ext_number IS NOT NULL"
                                " AND start_ts >= '2025-11-03 00:00:00+00'",
                                0, NULL),
                 0, "the seed has calls with an extension in November after the days rebuilt");
    rebuild("2025-11-01", "2025-11-02", out, sizeof(out));
    expect_recomputed(c, "2025-11-01", "2025-11-02", false);
    cr_expect_eq(fixture_scalar(c, months_before, 0, NULL), before,
                 "extension-month rows of the months before the range were changed");
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
    static const char empty[] = "rebuilt 0 store-hour, 0 store-day, 0 extension-day and 0 "
                                "extension-month rollup rows from 0 CDRs, "
                                "2024-01-01..2025-02-03\n";
    cr_expect(strncmp(p.out, empty, strlen(empty)) == 0, "%s", p.out);
    itest_proc_free(&p);

    fixture_ctl_run(&db, (const char *const[]){"rollups", "rebuild", "--help", NULL}, NULL, &p);
    cr_expect_eq(p.status, 0);
    cr_expect(strstr(p.out, "--from") && strstr(p.out, "--to") && strstr(p.out, "writers"), "%s",
              p.out);
    itest_proc_free(&p);
    PQfinish(c);
}
