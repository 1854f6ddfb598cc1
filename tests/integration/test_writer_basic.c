/* test_writer_basic.c - cdr-writer's contract against a working PostgreSQL and Redis: where the
 * rows of known stream entries land and with which values, duplicates and redeliveries stored
 * and counted once, rows PostgreSQL refuses kept as rejects while the rest commits, months
 * without a partition, undecodable entries dead-lettered, the stream acknowledged and emptied,
 * and a clean stop on SIGTERM (docs/writer.md). Failures - SIGKILL, PostgreSQL or Redis lost,
 * two writers - are in test_writer_crash.c. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cdr_codec.h"
#include "itest.h"
#include "oracle_sql.h"
#include "redis_own.h"
#include "writer_fixture.h"

#define TENANT   "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define DOMAIN   "tenanta.edvoip.it"
#define STORE_1  "11111111-2222-4333-8444-555555555555"
#define STORE_2  "22222222-3333-4444-8555-666666666666"
#define USER_1   "aaaaaaaa-0000-4000-8000-000000000001"
#define USER_2   "aaaaaaaa-0000-4000-8000-000000000002"
#define NO_STORE "00000000-0000-0000-0000-000000000000"

/* The row of the example in docs/stream-format.md. */
#define EXAMPLE_ROW                                                                                \
    TENANT "\t" STORE_1 "\tRoma Centro\t" DOMAIN "\ta1b2c3d4@pbx-1\tin\t+393331234567\t100\t"      \
           "+39061234567\t100\t\\N\t2025-10-30 09:12:00+00\t2025-10-30 09:12:05+00\t"              \
           "2025-10-30 09:14:13+00\t128\tANSWERED\thttps://rec.edvoip.it/a1b2c3d4.wav\t4.1\t"      \
           "12.5\t0.2\t{\"hangup_cause\":\"NORMAL_CLEARING\"}\t2025-10-30 09:14:14.500000+00\n"

TestSuite(writer_basic, .init = writer_setup, .fini = writer_teardown, .timeout = 120);

/* A CDR in the columns of docs/stream-format.md, all of them text; NULL fields are \N. */
typedef struct call {
    const char *tenant, *store, *store_name, *call_id, *dir, *from, *to, *ext, *user, *start,
        *answer, *end, *billsec, *disp, *mos, *jitter, *loss;
} call;

/* Appends the COPY row of 'c' to 'b' (the test's values need no escaping). */
static void append_call(cdr_buf *b, const call *c)
{
    const char *cols[CDR_CODEC_CDR_NCOLS] = {c->tenant ? c->tenant : TENANT,
                                             c->store,
                                             c->store_name,
                                             DOMAIN,
                                             c->call_id,
                                             c->dir,
                                             c->from,
                                             c->to,
                                             NULL,
                                             c->ext,
                                             c->user,
                                             c->start,
                                             c->answer,
                                             c->end,
                                             c->billsec,
                                             c->disp,
                                             NULL,
                                             c->mos,
                                             c->jitter,
                                             c->loss,
                                             NULL,
                                             "2025-11-01 00:00:00+00"};
    for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++)
        cr_assert(cdr_buf_printf(b, "%s%c", cols[i] ? cols[i] : "\\N",
                                 i + 1 < CDR_CODEC_CDR_NCOLS ? '\t' : '\n') == 0);
}

/* Asserts that 'sql' with the 'n' text parameters 'params' returns one row whose 'ncols'
 * columns are the texts 'want' (NULL: SQL NULL); 'what' names the row in messages. */
static void expect_row(const char *sql, int n, const char *const *params, const char *const *want,
                       int ncols, const char *what)
{
    PGresult *r = pg_one_row(sql, n, params);
    expect_pg_row(r, want, ncols, what);
    PQclear(r);
}

/* An inbound call of no store and no extension from +39333 to 100 that nobody answered. */
static call unanswered_call(const char *call_id, const char *start, const char *end,
                            const char *disp)
{
    return (call){.call_id = call_id,
                  .dir = "in",
                  .from = "+39333",
                  .to = "100",
                  .start = start,
                  .end = end,
                  .billsec = "0",
                  .disp = disp};
}

/* Each table kept from the CDRs against its recomputation from voip_cdr. With the test's QoS
 * values every sum is exact. */
static void expect_rollups_recomputed(void)
{
    static const struct {
        const char *what, *sql;
    } tables[] = {
        {"store-hour rollup", ORACLE_DIFFER(ORACLE_STORE_ROWS("hour"), ORACLE_STORE_HOUR("true"))},
        {"store-day rollup", ORACLE_DIFFER(ORACLE_STORE_ROWS("day"), ORACLE_STORE_DAY("true"))},
        {"extension-day rollup", ORACLE_DIFFER(ORACLE_EXT_ROWS("day"), ORACLE_EXT_DAY("true"))},
        {"extension-month rollup",
         ORACLE_DIFFER(ORACLE_EXT_ROWS("month"), ORACLE_EXT_MONTH("true"))},
        {"callback state",
         ORACLE_DIFFER("SELECT " ORACLE_CALLBACK_COLUMNS " FROM voip_callback_state",
                       ORACLE_CALLBACK_STATE("true"))},
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(tables); i++)
        cr_expect_eq(pg_scalar(tables[i].sql, 0, NULL), 0, "the %s differs from voip_cdr",
                     tables[i].what);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests */

Test(writer_basic, known_entries_land_with_their_values)
{
    /* A session an hour ahead of UTC, where 2025-10-31 23:59:59.25 UTC is already November:
     * the rollups' hours, days and months are UTC's all the same. */
    writer_start((const char *const[]){"PGTZ=Europe/Rome", NULL});
    stream_add_rows(CDR_CODEC_KIND_CDR, EXAMPLE_ROW, NULL);
    /* An outbound unanswered call of no store, in a compressed entry. */
    cdr_buf rows = {0};
    append_call(&rows, &(call){.call_id = "out-1@pbx",
                               .dir = "out",
                               .from = "101",
                               .to = "+390612345678",
                               .ext = "101",
                               .user = USER_1,
                               .start = "2025-10-31 23:59:59.25+00",
                               .end = "2025-11-01 00:00:09+00",
                               .billsec = "0",
                               .disp = "NO_ANSWER"});
    stream_add_rows_zstd(CDR_CODEC_KIND_CDR, rows.data, NULL);
    cdr_buf_free(&rows);
    stream_drain();

    static const char cols[] = "SELECT tenant_id, store_id, sip_domain, call_id, direction, "
                               "from_uri, to_uri, did_e164, ext_number, user_id, start_ts, "
                               "answer_ts, end_ts, billsec, disposition, recording_url, mos, "
                               "jitter_ms, loss_pct, meta_json, ingested_at "
                               "FROM voip_cdr WHERE call_id = $1";
    expect_row(cols, 1, (const char *const[]){"a1b2c3d4@pbx-1"},
               (const char *const[]){TENANT,
                                     STORE_1,
                                     DOMAIN,
                                     "a1b2c3d4@pbx-1",
                                     "in",
                                     "+393331234567",
                                     "100",
                                     "+39061234567",
                                     "100",
                                     NULL,
                                     "2025-10-30 09:12:00+00",
                                     "2025-10-30 09:12:05+00",
                                     "2025-10-30 09:14:13+00",
                                     "128",
                                     "ANSWERED",
                                     "https://rec.edvoip.it/a1b2c3d4.wav",
                                     "4.1",
                                     "12.5",
                                     "0.2",
                                     "{\"hangup_cause\": \"NORMAL_CLEARING\"}",
                                     "2025-10-30 09:14:14.5+00"},
               21, "the example CDR");
    expect_row(cols, 1, (const char *const[]){"out-1@pbx"},
               (const char *const[]){TENANT,
                                     NULL,
                                     DOMAIN,
                                     "out-1@pbx",
                                     "out",
                                     "101",
                                     "+390612345678",
                                     NULL,
                                     "101",
                                     USER_1,
                                     "2025-10-31 23:59:59.25+00",
                                     NULL,
                                     "2025-11-01 00:00:09+00",
                                     "0",
                                     "NO_ANSWER",
                                     NULL,
                                     NULL,
                                     NULL,
                                     NULL,
                                     NULL,
                                     "2025-11-01 00:00:00+00"},
               21, "the compressed CDR");

    /* The rollups, the callback state and the store name, from these two calls: the example's
     * hour and UTC day have the same measures. */
    static const struct {
        const char *what, *from;
    } example_store[] = {
        {"store rollup", "voip_cdr_rollup_store_hour WHERE hour = '2025-10-30 09:00:00+00'"},
        {"store-day rollup", "voip_cdr_rollup_store_day WHERE day = '2025-10-30'"},
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(example_store); i++) {
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SELECT calls, answered, no_answer, billsec_sum, ring_sum_s, mos_n, jitter_sum, "
                 "poor_mos_n FROM %s AND store_id = $1 AND direction = 'in'",
                 example_store[i].from);
        expect_row(sql, 1, (const char *const[]){STORE_1},
                   (const char *const[]){"1", "1", "0", "128", "5", "1", "12.5", "0"}, 8,
                   example_store[i].what);
    }
    expect_row("SELECT calls, answered, no_answer, billsec_sum, ring_sum_s, mos_n "
               "FROM voip_cdr_rollup_store_hour "
               "WHERE store_id = $1 AND hour = '2025-10-31 23:00:00+00' AND direction = 'out'",
               1, (const char *const[]){NO_STORE},
               (const char *const[]){"1", "0", "1", "0", "0", "0"}, 6, "store rollup of no store");
    /* 23:59:59.25 UTC is still 2025-10-31 (in Rome, 2025-11-01). */
    expect_row("SELECT day, calls, answered, no_answer FROM voip_cdr_rollup_store_day "
               "WHERE store_id = $1 AND direction = 'out'",
               1, (const char *const[]){NO_STORE},
               (const char *const[]){"2025-10-31", "1", "0", "1"}, 4,
               "store-day rollup of no store");
    /* The extensions' days and months: the answered inbound call of no user, and USER_1's
     * outbound call, which nobody missed. */
    static const char *const ext_100[] = {"1", "1", "0", "0", "128", NULL};
    static const char *const ext_101[] = {"1", "0", "1", "0", "0", USER_1};
    static const struct {
        const char *row;
        const char *const *want;
    } example_ext[] = {
        {"voip_cdr_rollup_ext_day WHERE day = '2025-10-30' AND ext_number = '100'", ext_100},
        {"voip_cdr_rollup_ext_month WHERE month = '2025-10-01' AND ext_number = '100'", ext_100},
        {"voip_cdr_rollup_ext_day WHERE day = '2025-10-31' AND ext_number = '101'", ext_101},
        {"voip_cdr_rollup_ext_month WHERE month = '2025-10-01' AND ext_number = '101'", ext_101},
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(example_ext); i++) {
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SELECT calls, answered, no_answer, in_missed, billsec_sum, user_id FROM %s",
                 example_ext[i].row);
        expect_row(sql, 0, NULL, example_ext[i].want, 6, example_ext[i].row);
    }
    expect_row("SELECT number, last_answered_ts FROM voip_callback_state", 0, NULL,
               (const char *const[]){"+393331234567", "2025-10-30 09:12:00+00"}, 2,
               "callback state");
    expect_row("SELECT store_id, name FROM voip_stores", 0, NULL,
               (const char *const[]){STORE_1, "Roma Centro"}, 2, "store names");
    expect_rollups_recomputed();
    cr_expect_eq(writer_metric("cdr_writer_rows_inserted_total"), 2);
    writer_stop();
}

/* Four calls over two hours, two days, both directions, two stores and none, two extensions and
 * none, every disposition, QoS in multiples of 1/4 and a MOS of exactly 3.6 (not poor). */
static const call calls[4] = {
    {.call_id = "c1",
     .dir = "in",
     .from = "+393330000001",
     .to = "101",
     .store = STORE_1,
     .store_name = "Roma Centro",
     .ext = "101",
     .user = USER_1,
     .start = "2025-10-30 09:12:00+00",
     .answer = "2025-10-30 09:12:07.5+00",
     .end = "2025-10-30 09:14:07.5+00",
     .billsec = "120",
     .disp = "ANSWERED",
     .mos = "4.25",
     .jitter = "2.5",
     .loss = "0.25"},
    {.call_id = "c2",
     .dir = "in",
     .from = "+393330000001",
     .to = "101",
     .store = STORE_1,
     .store_name = "Roma Centro",
     .ext = "101",
     .user = USER_1,
     .start = "2025-10-30 09:40:00+00",
     .end = "2025-10-30 09:40:30+00",
     .billsec = "0",
     .disp = "NO_ANSWER"},
    {.call_id = "c3",
     .dir = "out",
     .from = "102",
     .to = "+393330000002",
     .ext = "102",
     .user = USER_2,
     .start = "2025-10-30 10:05:00+00",
     .answer = "2025-10-30 10:05:03+00",
     .end = "2025-10-30 10:06:03+00",
     .billsec = "60",
     .disp = "ANSWERED",
     .mos = "3.6",
     .jitter = "0.5"},
    {.call_id = "c4",
     .dir = "in",
     .from = "+393330000003",
     .to = "+390600000000",
     .store = STORE_2,
     .store_name = "Milano",
     .start = "2025-10-31 23:59:59.5+00",
     .end = "2025-11-01 00:00:01+00",
     .billsec = "0",
     .disp = "BUSY",
     .mos = "3.5"},
};

/* Adds the 'n' calls of 'cs' as one plain stream entry. */
static void add_entry(const call *cs, int n)
{
    cdr_buf rows = {0};
    for (int i = 0; i < n; i++)
        append_call(&rows, &cs[i]);
    stream_add_rows(CDR_CODEC_KIND_CDR, rows.data, NULL);
    cdr_buf_free(&rows);
}

static void add_calls(const int *which, int n, bool zstd)
{
    cdr_buf rows = {0};
    for (int i = 0; i < n; i++)
        append_call(&rows, &calls[which[i]]);
    if (zstd)
        stream_add_rows_zstd(CDR_CODEC_KIND_CDR, rows.data, NULL);
    else
        stream_add_rows(CDR_CODEC_KIND_CDR, rows.data, NULL);
    cdr_buf_free(&rows);
}

Test(writer_basic, duplicates_are_stored_and_counted_once)
{
    writer_start(NULL);
    /* Within one entry, across entries of one batch, and across batches. */
    add_calls((const int[]){0, 1, 0}, 3, false);
    add_calls((const int[]){1, 2}, 2, true);
    stream_drain();
    add_calls((const int[]){0, 2, 3}, 3, false);
    stream_drain();

    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 4);
    cr_expect_eq(pg_scalar("SELECT count(DISTINCT call_id) FROM voip_cdr", 0, NULL), 4);
    cr_expect_eq(pg_scalar("SELECT sum(calls) FROM voip_cdr_rollup_store_hour", 0, NULL), 4,
                 "every call counted once in the store rollup");
    cr_expect_eq(pg_scalar("SELECT sum(calls) FROM voip_cdr_rollup_ext_day", 0, NULL), 3,
                 "every call with an extension counted once in the extension-day rollup");
    cr_expect_eq(pg_scalar("SELECT sum(calls) FROM voip_cdr_rollup_ext_month", 0, NULL), 3,
                 "every call with an extension counted once in the extension-month rollup");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rollup_ext_month WHERE ext_number = "
                           "'101' AND calls = 2 AND in_missed = 1",
                           0, NULL),
                 1, "101's answered and missed inbound calls share its month row");
    cr_expect_eq(pg_scalar("SELECT sum(poor_mos_n) FROM voip_cdr_rollup_store_hour", 0, NULL), 1,
                 "MOS 3.5 is poor, 3.6 is not");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rollup_store_hour", 0, NULL), 3,
                 "buckets (store 1, 09h, in), (no store, 10h, out), (store 2, 23h, in)");
    cr_expect_eq(pg_scalar("SELECT sum(calls) FROM voip_cdr_rollup_store_day", 0, NULL), 4,
                 "every call counted once in the store-day rollup");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rollup_store_day", 0, NULL), 3,
                 "buckets (store 1, 10-30, in), (no store, 10-30, out), (store 2, 10-31, in)");
    expect_rollups_recomputed();
    expect_row("SELECT string_agg(number || ' ' || last_answered_ts::text, ', ' "
               "ORDER BY number) FROM voip_callback_state",
               0, NULL,
               (const char *const[]){"+393330000001 2025-10-30 09:12:00+00, "
                                     "+393330000002 2025-10-30 10:05:00+00"},
               1, "callback state");
    expect_row("SELECT string_agg(name, ', ' ORDER BY name) FROM voip_stores", 0, NULL,
               (const char *const[]){"Milano, Roma Centro"}, 1, "store names");
    cr_expect_eq(writer_metric("cdr_writer_rows_inserted_total"), 4);
    cr_expect_eq(writer_metric("cdr_writer_duplicates_total"), 4);
    writer_stop();
}

/* A batch naming a store by the name it already has leaves the row alone, not even locked (a
 * lock would hold a second writer until this one commits); a new name replaces it. */
Test(writer_basic, store_names_change_only_when_they_differ)
{
    writer_start(NULL);
    add_calls((const int[]){0}, 1, false);
    stream_drain();
    const char *const xmin_sql = "SELECT xmin::text::bigint FROM voip_stores";
    long long xmin0 = pg_scalar(xmin_sql, 0, NULL);

    add_calls((const int[]){1}, 1, false); /* the same store, the same name */
    stream_drain();
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 2);
    cr_expect_eq(pg_scalar(xmin_sql, 0, NULL), xmin0, "an unchanged name rewrote the row");
    cr_expect_eq(pg_scalar("SELECT xmax::text::bigint FROM voip_stores", 0, NULL), 0,
                 "an unchanged name locked the row");

    call renamed = calls[1];
    renamed.call_id = "c2-renamed";
    renamed.store_name = "Roma Termini";
    add_entry(&renamed, 1);
    stream_drain();
    expect_row("SELECT store_id, name FROM voip_stores", 0, NULL,
               (const char *const[]){STORE_1, "Roma Termini"}, 2, "the new name");
    cr_expect_neq(pg_scalar(xmin_sql, 0, NULL), xmin0, "a new name left the row as it was");
    writer_stop();
}

/* Adds calls 0 (09:12) and 1 (09:40) of store 1 in one entry, named 'early' and 'late'. */
static void add_named_pair(const char *early, const char *late)
{
    call pair[2] = {calls[0], calls[1]};
    pair[0].store_name = early;
    pair[1].store_name = late;
    add_entry(pair, 2);
}

/* Within a batch the name of the latest row wins, whether or not earlier rows differ from the
 * stored name; rows already stored (resent here) still carry names. */
Test(writer_basic, the_latest_name_of_a_batch_wins)
{
    writer_start(NULL);
    add_calls((const int[]){0}, 1, false);
    stream_drain();
    const char *const name_sql = "SELECT name FROM voip_stores WHERE store_id = $1";
    const char *const store[] = {STORE_1};

    add_named_pair("Roma Nord", "Roma Centro");
    stream_drain();
    expect_row(name_sql, 1, store, (const char *const[]){"Roma Centro"}, 1,
               "an earlier row's other name replaced the latest");

    add_named_pair("Roma Centro", "Roma Sud");
    stream_drain();
    expect_row(name_sql, 1, store, (const char *const[]){"Roma Sud"}, 1,
               "the latest row's new name");

    add_named_pair("Roma Est", "Roma Ovest");
    stream_drain();
    expect_row(name_sql, 1, store, (const char *const[]){"Roma Ovest"}, 1,
               "two new names: the latest");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 2);
    writer_stop();
}

Test(writer_basic, a_redelivered_entry_is_stored_once)
{
    /* Two reject rows as ingest writes them, and a CDR, each entry under a fixed id so that it
     * can be delivered again under the same id after the stream was deleted and made again:
     * as a writer that died between COMMIT and XACK leaves it. */
    static const char rejects[] =
        "2025-10-30 09:14:14+00\t" TENANT "\t" DOMAIN "\tbad-1\tingest\t"
        "billsec: expected an integer\t{\"call_id\":\"bad-1\",\"billsec\":\"x\"}\n"
        "2025-10-30 09:14:14+00\t" TENANT "\t" DOMAIN "\t\\N\tingest\t"
        "call_id: missing\t{\"billsec\":1}\n";
    for (int round = 0; round < 2; round++) {
        stream_add("1700000000000-1", "1", CDR_CODEC_KIND_REJECT, "2", CDR_CODEC_ENC_PLAIN, rejects,
                   strlen(rejects), NULL);
        stream_add("1700000000000-2", "1", CDR_CODEC_KIND_CDR, "1", CDR_CODEC_ENC_PLAIN,
                   EXAMPLE_ROW, strlen(EXAMPLE_ROW), NULL);
        writer_start(NULL);
        stream_drain();
        cr_expect_eq(writer_metric("cdr_writer_rejects_total{source=\"ingest\"}"),
                     round == 0 ? 2 : 0, "round %d", round);
        cr_expect_eq(writer_metric("cdr_writer_rows_inserted_total"), round == 0 ? 1 : 0,
                     "round %d", round);
        writer_stop();
        redis_do(wfix.redis, "DEL %s", wfix.key);
    }
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rejects", 0, NULL), 2);
    expect_row("SELECT entry_id, entry_seq, source, call_id, reason, raw, tenant_id "
               "FROM voip_cdr_rejects WHERE entry_seq = 1",
               0, NULL,
               (const char *const[]){"1700000000000-1", "1", "ingest", "bad-1",
                                     "billsec: expected an integer",
                                     "{\"call_id\":\"bad-1\",\"billsec\":\"x\"}", TENANT},
               7, "reject row 1");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 1);
    cr_expect_eq(pg_scalar("SELECT sum(calls) FROM voip_cdr_rollup_store_hour", 0, NULL), 1);
    cr_expect_eq(pg_scalar("SELECT sum(calls) FROM voip_cdr_rollup_store_day", 0, NULL), 1);
    expect_rollups_recomputed();
}

Test(writer_basic, a_month_without_partition_gets_one)
{
    cr_assert_eq(pg_scalar("SELECT count(*) FROM pg_class WHERE relname IN "
                           "('voip_cdr_2019_03', 'voip_cdr_2031_07')",
                           0, NULL),
                 0);
    writer_start(NULL);
    const call old_and_future[2] = {
        unanswered_call("old", "2019-03-15 08:00:00+00", "2019-03-15 08:01:00+00", "FAILED"),
        unanswered_call("future", "2031-07-31 23:59:59.999999+00", "2031-08-01 00:01:00+00",
                        "FAILED")};
    add_entry(old_and_future, 2);
    stream_drain();
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_2019_03 WHERE call_id = 'old'", 0, NULL),
                 1);
    cr_expect_eq(
        pg_scalar("SELECT count(*) FROM voip_cdr_2031_07 WHERE call_id = 'future'", 0, NULL), 1);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rejects", 0, NULL), 0);
    /* The current month and CDR_WRITER_MONTHS_AHEAD (2) after it are ready too. */
    cr_expect_eq(pg_scalar("SELECT count(*) FROM generate_series(0, 2) AS m(i) "
                           "WHERE to_regclass('voip_cdr_' || to_char(date_trunc('month', now() "
                           "AT TIME ZONE 'UTC') + make_interval(months => i), 'YYYY_MM')) IS NULL",
                           0, NULL),
                 0);
    writer_stop();
}

Test(writer_basic, refused_rows_become_rejects_and_the_rest_commits)
{
    writer_start(NULL);
    cdr_buf rows = {0};
    call ok =
        unanswered_call(NULL, "2025-10-30 12:00:00+00", "2025-10-30 12:01:00+00", "NO_ANSWER");
    call c = ok;
    c.call_id = "ok-1";
    append_call(&rows, &c);
    c.call_id = "bad-uuid";
    c.tenant = "not-a-uuid";
    append_call(&rows, &c);
    size_t bad_uuid_end = rows.len;
    c = ok;
    c.call_id = "ok-2";
    append_call(&rows, &c);
    size_t check_start = rows.len;
    c.call_id = "bad-billsec";
    c.billsec = "-5"; /* CHECK (billsec >= 0) */
    append_call(&rows, &c);
    size_t check_end = rows.len;
    c = ok;
    c.call_id = "ok-3";
    append_call(&rows, &c);
    static const char short_row[] = TENANT "\t\\N\n"; /* two columns of 22 */
    cr_assert(cdr_buf_append_str(&rows, short_row) == 0);
    char id[64];
    stream_add_rows(CDR_CODEC_KIND_CDR, rows.data, id);
    stream_drain();

    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 3);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr WHERE call_id LIKE 'ok-%'", 0, NULL), 3);
    cr_expect_eq(
        pg_scalar("SELECT count(*) FROM voip_cdr_rejects WHERE source = 'writer'", 0, NULL), 3);
    expect_rollups_recomputed();

    /* Each with PostgreSQL's message, the raw row, its entry and row number. */
    const char *rows_text = rows.data;
    char raw_uuid[512], raw_check[512];
    size_t uuid_start = strstr(rows_text, "not-a-uuid") - rows_text;
    snprintf(raw_uuid, sizeof(raw_uuid), "%.*s", (int)(bad_uuid_end - 1 - uuid_start),
             rows_text + uuid_start);
    snprintf(raw_check, sizeof(raw_check), "%.*s", (int)(check_end - 1 - check_start),
             rows_text + check_start);
    static const char rej_sql[] = "SELECT entry_id, entry_seq, tenant_id, sip_domain, call_id, "
                                  "raw, reason LIKE $2 FROM voip_cdr_rejects WHERE call_id = $1";
    expect_row(rej_sql, 2, (const char *const[]){"bad-uuid", "invalid input syntax for type uuid%"},
               (const char *const[]){id, "2", NULL, DOMAIN, "bad-uuid", raw_uuid, "t"}, 7,
               "the row with a bad uuid");
    expect_row(rej_sql, 2,
               (const char *const[]){"bad-billsec",
                                     "%violates check constraint \"voip_cdr_billsec_check\"%"},
               (const char *const[]){id, "4", TENANT, DOMAIN, "bad-billsec", raw_check, "t"}, 7,
               "the row that violates a CHECK");
    expect_row("SELECT entry_seq, tenant_id, call_id, raw, reason LIKE 'missing data for column%' "
               "FROM voip_cdr_rejects WHERE entry_seq = 6",
               0, NULL, (const char *const[]){"6", TENANT, NULL, TENANT "\t\\N", "t"}, 5,
               "the row with too few columns");
    cr_expect_eq(writer_metric("cdr_writer_rejects_total{source=\"writer\"}"), 3);
    cr_expect_eq(writer_metric("cdr_writer_rows_inserted_total"), 3);
    cdr_buf_free(&rows);
    writer_stop();
}

/* The value of 'field' of the dead-letter entry 'e' ([id, [field, value...]]), or NULL. */
static const char *dead_field(const redisReply *e, const char *field)
{
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, field) == 0)
            return f->element[i + 1]->str;
    return NULL;
}

Test(writer_basic, undecodable_entries_go_to_the_dead_letter_stream)
{
    writer_start(NULL);
    static const struct {
        const char *v, *kind, *n, *enc, *rows, *reason;
    } bad[] = {
        {"2", "cdr", "1", "copy", EXAMPLE_ROW, "unsupported stream format version '2'"},
        {"1", "invoice", "1", "copy", EXAMPLE_ROW, "unsupported entry kind 'invoice'"},
        {"1", "cdr", "1", "copy+lz4", EXAMPLE_ROW, "unsupported stream encoding 'copy+lz4'"},
        {"1", "cdr", "1", "copy+zstd", "not a zstd frame", "corrupt zstd frame"},
        {"1", "cdr", "2", "copy", EXAMPLE_ROW, "field 'n' says 2 rows, the rows hold 1"},
    };
    char ids[CDR_ARRAY_LEN(bad)][64];
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad); i++)
        stream_add("*", bad[i].v, bad[i].kind, bad[i].n, bad[i].enc, bad[i].rows,
                   strlen(bad[i].rows), ids[i]);
    stream_add_rows(CDR_CODEC_KIND_CDR, EXAMPLE_ROW,
                    NULL); /* behind them, and not blocked by them */
    stream_drain();

    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 1);
    redisReply *r = redis_cmd(wfix.redis, "XRANGE %s - +", wfix.dead_key);
    cr_assert_eq(r->elements, CDR_ARRAY_LEN(bad), "%zu dead letters", r->elements);
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad); i++) {
        const redisReply *e = r->element[i];
        const char *entry_id = dead_field(e, "entry_id"), *reason = dead_field(e, "reason");
        cr_expect(entry_id && strcmp(entry_id, ids[i]) == 0, "dead letter %zu: entry_id %s", i,
                  entry_id ? entry_id : "(none)");
        cr_expect(reason && strncmp(reason, bad[i].reason, strlen(bad[i].reason)) == 0,
                  "dead letter %zu: reason '%s', expected '%s...'", i, reason ? reason : "(none)",
                  bad[i].reason);
        /* The entry itself, whole. */
        cr_expect_str_eq(dead_field(e, "v"), bad[i].v);
        cr_expect_str_eq(dead_field(e, "kind"), bad[i].kind);
        cr_expect_str_eq(dead_field(e, "enc"), bad[i].enc);
        cr_expect_str_eq(dead_field(e, "rows"), bad[i].rows);
    }
    freeReplyObject(r);
    cr_expect_eq(writer_metric("cdr_writer_dead_letters_total"), (double)CDR_ARRAY_LEN(bad));
    writer_stop();
}

Test(writer_basic, batches_are_acknowledged_and_deleted)
{
    /* Small batches: 7 entries of 3 rows each take several. The rows of an entry fall in three
     * hours of one day, so a batch adds three hours to one store-day row, and later batches add
     * to the rows of earlier ones; the same for the day and month of extension 100, which passes
     * from USER_1 to USER_2 at the fifth entry. */
    writer_start((const char *const[]){"CDR_WRITER_BATCH=5", NULL});
    for (int e = 0; e < 7; e++) {
        cdr_buf rows = {0};
        for (int i = 0; i < 3; i++) {
            char call_id[32], start[32], end[32];
            snprintf(call_id, sizeof(call_id), "ack-%d-%d", e, i);
            snprintf(start, sizeof(start), "2025-10-30 %02d:00:00+00", 12 + i);
            snprintf(end, sizeof(end), "2025-10-30 %02d:01:00+00", 12 + i);
            call c = unanswered_call(call_id, start, end, "NO_ANSWER");
            c.ext = "100";
            c.user = e < 4 ? USER_1 : USER_2;
            append_call(&rows, &c);
        }
        stream_add_rows(CDR_CODEC_KIND_CDR, rows.data, NULL);
        cdr_buf_free(&rows);
    }
    stream_drain();
    cr_expect_eq(redis_xlen(wfix.redis, wfix.key), 0, "XDEL after commit");
    cr_expect_eq(stream_pending(), 0, "XACK after commit");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 21);
    cr_expect_eq(pg_scalar("SELECT calls FROM voip_cdr_rollup_store_day", 0, NULL), 21);
    static const char *const ext_100[] = {"21", "21", USER_2};
    expect_row("SELECT calls, in_missed, user_id FROM voip_cdr_rollup_ext_day", 0, NULL, ext_100, 3,
               "extension-day rollup");
    expect_row("SELECT calls, in_missed, user_id FROM voip_cdr_rollup_ext_month", 0, NULL, ext_100,
               3, "extension-month rollup");
    expect_rollups_recomputed();
    cr_expect_eq(writer_metric("cdr_writer_rows_inserted_total"), 21);
    cr_expect_geq(writer_metric("cdr_writer_batches_total"), 4,
                  "batches of at most 5 rows, 3 a entry");
    cr_expect_eq(writer_metric("cdr_writer_duplicates_total"), 0);
    cr_expect_eq(writer_metric("cdr_writer_dead_letters_total"), 0);
    cr_expect_eq(writer_get("/healthz", NULL), 200);
    cr_expect_eq(writer_get("/readyz", NULL), 200);
    /* The lag is polled every second. */
    itest_sleep_ms(1200);
    cr_expect_eq(writer_metric("cdr_writer_stream_lag_entries"), 0);
    cr_expect_eq(writer_metric("cdr_writer_stream_lag_seconds"), 0);
    cr_expect_geq(writer_metric("cdr_writer_batch_seconds_count"), 4);
    writer_stop();
}

Test(writer_basic, sigterm_finishes_the_batch_in_hand_and_exits_0)
{
    /* A long flush: the entry is in hand, the batch still filling, when SIGTERM comes. */
    writer_start((const char *const[]){"CDR_WRITER_FLUSH_MS=1500", NULL});
    stream_add_rows(CDR_CODEC_KIND_CDR, EXAMPLE_ROW, NULL);
    itest_sleep_ms(300);
    writer_stop_within(5000);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), 1, "log:\n%s",
                 writer_log_tail());
    cr_expect_eq(redis_xlen(wfix.redis, wfix.key), 0);
    cr_expect_eq(stream_pending(), 0);
    /* A writer that stopped cleanly leaves the group. */
    redisReply *r = redis_cmd(wfix.redis, "XINFO CONSUMERS %s %s", wfix.key, WRITER_GROUP);
    cr_expect_eq(r->elements, 0, "consumers left in the group");
    freeReplyObject(r);
}
