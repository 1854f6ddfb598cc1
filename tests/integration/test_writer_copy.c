/* test_writer_copy.c - cdr-writer sends CDR rows to PostgreSQL in binary COPY form
 * (ingest/copy_binary.c): every value it stores must be the one PostgreSQL reads from the row's
 * text, which this suite loads with a text COPY of its own as the oracle; rows in forms the
 * conversion leaves alone go to PostgreSQL as text and are stored the same way. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cdr_codec.h"
#include "db_fixture.h"
#include "example_cdr.h"
#include "itest.h"
#include "writer_fixture.h"

#define TENANT EXAMPLE_CDR_TENANT
#define DOMAIN EXAMPLE_CDR_DOMAIN
#define STORE  EXAMPLE_CDR_STORE
#define USER   "aaaaaaaa-0000-4000-8000-000000000001"
#define N      "\\N"

/* What the writer logs (at debug) when a batch goes as text, and (at warn) when its staging
 * table does not have the types of the binary form. */
#define AS_TEXT       "is not in the form cdr-ingest writes"
#define STAGE_AS_TEXT "staging column 15 is bigint, not integer: CDR rows are sent as text"

/* The columns of voip_cdr the writer sets, compared between its rows and the oracle's. */
#define COLUMNS                                                                                    \
    "tenant_id, call_id, start_ts, store_id, sip_domain, direction, from_uri, to_uri, did_e164, "  \
    "ext_number, user_id, answer_ts, end_ts, billsec, disposition, recording_url, mos, "           \
    "jitter_ms, loss_pct, meta_json, ingested_at"

TestSuite(writer_copy, .init = writer_setup, .fini = writer_teardown, .timeout = 120);

typedef const char *const row_fields[CDR_CODEC_CDR_NCOLS];

/* In the forms cdr-ingest writes, with values at the edges of each type. */
static row_fields ingest_form[] = {
    EXAMPLE_CDR_FIELDS,
    /* Every optional field NULL; fractions of one to six digits across a leap day. */
    {TENANT,
     N,
     N,
     DOMAIN,
     "nulls@pbx-1",
     "out",
     "101",
     "+393330000001",
     N,
     N,
     N,
     "2024-02-29 23:59:59.999999+00",
     N,
     "2024-03-01 00:00:00.1+00",
     "0",
     "NO_ANSWER",
     N,
     N,
     N,
     N,
     N,
     "2024-03-01 00:00:01.25+00"},
    /* Escaped tab, newline and backslash, the two characters \N as text, UTF-8, JSON with an
     * escaped newline; a call across the new year. */
    {TENANT,
     STORE,
     "Forl\xc3\xac\\tA\\nB\\\\C \\\\N \xf0\x9f\x98\x80",
     DOMAIN,
     "text@pbx-1",
     "in",
     "sip:+39\\\\x@host",
     "100",
     N,
     "100",
     USER,
     "2025-12-31 23:59:59.000001+00",
     "2025-12-31 23:59:59.5+00",
     "2026-01-01 00:01:00+00",
     "60",
     "ANSWERED",
     N,
     "1",
     "0",
     "100",
     "{\"note\":\"a\\\\nb\",\"citt\xc3\xa0\":\"Cant\xc3\xb9\",\"e\":\"\xf0\x9f\x98\x80\"}",
     "2026-01-01 00:01:02.123456+00"},
    /* Numbers in exponent form and at their bounds, an upper-case UUID, a day-long call. */
    {TENANT,
     "11111111-2222-4333-8444-55555555555A",
     "Milano",
     DOMAIN,
     "numbers@pbx-1",
     "in",
     "+393330000002",
     "101",
     "+390200000000",
     "101",
     USER,
     "2025-10-01 00:00:00+00",
     "2025-10-01 00:00:00.5+00",
     "2025-10-02 00:00:00.5+00",
     "86400",
     "ANSWERED",
     N,
     "3.6",
     "1e-05",
     "33.333333333333",
     "{}",
     "2025-10-02 00:00:01+00"},
    {TENANT,
     STORE,
     "\\\\N",
     DOMAIN,
     "slash-n@pbx-1",
     "in",
     "+393330000003",
     "100",
     N,
     "100",
     N,
     "2025-10-30 10:00:00+00",
     N,
     "2025-10-30 10:00:30+00",
     "0",
     "BUSY",
     N,
     "5",
     "300",
     "0",
     "[1,2.5,\"x\",null,true]",
     "2025-10-30 10:00:31+00"},
};

/* Forms PostgreSQL reads and the conversion leaves to it: another UTC offset and separator, a
 * UUID without hyphens, a signed integer, a number after a space. */
static row_fields other_form[] = {
    {"6f1c2b3a4d5e4f608a7b9c0d1e2f3a4b",
     N,
     N,
     DOMAIN,
     "other@pbx-1",
     "in",
     "+393330000004",
     "100",
     N,
     "100",
     N,
     "2025-10-30T10:12:00+01",
     N,
     "2025-10-30 10:13:00+01",
     "+0",
     "NO_ANSWER",
     N,
     " 4.5",
     N,
     N,
     N,
     "2025-10-30 09:13:01+00"},
};

static void append_rows(cdr_buf *b, row_fields *rows, size_t n)
{
    for (size_t r = 0; r < n; r++)
        for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++)
            cr_assert(cdr_buf_printf(b, "%s%c", rows[r][i],
                                     i + 1 < CDR_CODEC_CDR_NCOLS ? '\t' : '\n') == 0);
}

/* How many times 'needle' occurs in the writer's log. */
static int log_count(const char *needle)
{
    FILE *f = fopen(wfix.log, "r");
    cr_assert(f, "cannot read %s", wfix.log);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Loads 'rows' with a text COPY into the temp table oracle (the staging table's columns). */
static void load_oracle(const cdr_buf *rows)
{
    fixture_exec(wfix.pg, "CREATE TEMP TABLE oracle (LIKE voip_cdr_staging)", 0, NULL);
    fixture_copy_in(wfix.pg, "COPY oracle (" CDR_CODEC_CDR_COLUMNS ") FROM STDIN", rows->data,
                    rows->len);
}

Test(writer_copy, binary_rows_hold_what_postgresql_reads_from_their_text)
{
    writer_start((const char *const[]){"CDR_LOG_LEVEL=debug", NULL});
    const size_t n_ingest = sizeof(ingest_form) / sizeof(ingest_form[0]);
    const size_t n_other = sizeof(other_form) / sizeof(other_form[0]);
    cdr_buf first = {0}, second = {0}, all = {0};
    append_rows(&first, ingest_form, n_ingest);
    append_rows(&second, other_form, n_other);

    stream_add_rows(CDR_CODEC_KIND_CDR, first.data, NULL);
    stream_drain();
    cr_assert_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), (long long)n_ingest,
                 "log:\n%s", writer_log_tail());
    cr_expect_eq(log_count(AS_TEXT), 0, "rows in cdr-ingest's form went as text");

    stream_add_rows(CDR_CODEC_KIND_CDR, second.data, NULL);
    stream_drain();
    cr_assert_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL),
                 (long long)(n_ingest + n_other));
    cr_expect_eq(log_count(AS_TEXT), 1, "a row in another form did not go as text");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rejects", 0, NULL), 0);

    cr_assert(cdr_buf_append(&all, first.data, first.len) == 0);
    cr_assert(cdr_buf_append(&all, second.data, second.len) == 0);
    load_oracle(&all);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM (SELECT " COLUMNS " FROM voip_cdr EXCEPT ALL "
                           "SELECT " COLUMNS " FROM oracle) d",
                           0, NULL),
                 0, "rows stored otherwise than PostgreSQL reads their text");
    cr_expect_eq(pg_scalar("SELECT count(*) FROM (SELECT " COLUMNS " FROM oracle EXCEPT ALL "
                           "SELECT " COLUMNS " FROM voip_cdr) d",
                           0, NULL),
                 0, "rows of the text missing from voip_cdr");
    /* The text of a few values, so that a failure of the oracle itself would show. */
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr WHERE call_id = 'other@pbx-1' AND "
                           "start_ts = '2025-10-30 09:12:00+00' AND mos = 4.5",
                           0, NULL),
                 1);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr WHERE call_id = 'nulls@pbx-1' AND "
                           "extract(microseconds FROM start_ts) = 59999999",
                           0, NULL),
                 1);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_stores WHERE name = "
                           "E'Forl\xc3\xac\\tA\\nB\\\\C \\\\N \xf0\x9f\x98\x80'",
                           0, NULL),
                 1);
    writer_stop();
    cdr_buf_free(&first);
    cdr_buf_free(&second);
    cdr_buf_free(&all);
}

/* A staging table whose types differ from the binary form's (a migration this writer does not
 * know) would read its bytes wrongly, or refuse every row: the writer sends text instead. */
Test(writer_copy, a_staging_table_of_other_types_gets_text)
{
    PGresult *r = PQexec(wfix.pg, "ALTER TABLE voip_cdr_staging ALTER COLUMN billsec TYPE bigint");
    cr_assert(itest_ok(r), "%s", PQresultErrorMessage(r));
    PQclear(r);
    writer_start(NULL);
    const size_t n_ingest = sizeof(ingest_form) / sizeof(ingest_form[0]);
    cdr_buf rows = {0};
    append_rows(&rows, ingest_form, n_ingest);
    stream_add_rows(CDR_CODEC_KIND_CDR, rows.data, NULL);
    stream_drain();
    cr_expect_eq(log_count(STAGE_AS_TEXT), 1, "log:\n%s", writer_log_tail());
    cr_assert_eq(pg_scalar("SELECT count(*) FROM voip_cdr", 0, NULL), (long long)n_ingest);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM voip_cdr_rejects", 0, NULL), 0);
    load_oracle(&rows);
    cr_expect_eq(pg_scalar("SELECT count(*) FROM (SELECT " COLUMNS " FROM voip_cdr EXCEPT ALL "
                           "SELECT " COLUMNS " FROM oracle) d",
                           0, NULL),
                 0);
    writer_stop();
    cdr_buf_free(&rows);
}
