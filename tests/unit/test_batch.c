/* test_batch.c - a request's items become COPY rows, reject rows and the answer's problems. */
#include <criterion/criterion.h>
#include <string.h>

#include "batch.h"
#include "cdr_codec.h"

#define TENANT "11111111-1111-4111-8111-111111111111"
#define OTHER  "22222222-2222-4222-8222-222222222222"
#define DOMAIN "tenanta.example.it"

static auth_claims claims;
static cdr_buf rows, rejects;
static ingest_batch b;

static void setup(void)
{
    memset(&claims, 0, sizeof(claims));
    strcpy(claims.tenant_id, TENANT);
    strcpy(claims.sip_domain, DOMAIN);
    claims.scope_write = true;
    cdr_buf_init(&rows, 0);
    cdr_buf_init(&rejects, 0);
    /* 2025-10-30T12:00:00Z */
    ingest_batch_init(&b, &claims, INT64_C(1761825600) * TIMEFMT_US_PER_SEC, &rows, &rejects);
}

static void teardown(void)
{
    ingest_batch_free(&b);
    cdr_buf_free(&rows);
    cdr_buf_free(&rejects);
}

TestSuite(batch, .init = setup, .fini = teardown);

static const char *VALID =
    "{\"call_id\":\"c1\",\"direction\":\"in\",\"from_uri\":\"+39061234567\",\"to_uri\":\"1001\","
    "\"start_ts\":\"2025-10-30T09:12:05Z\",\"answer_ts\":\"2025-10-30T09:12:12Z\","
    "\"end_ts\":\"2025-10-30T09:14:20Z\",\"billsec\":128,\"disposition\":\"ANSWERED\"}";

static int feed(int index, const char *text)
{
    json_error_t e;
    json_t *item = json_loads(text, 0, &e);
    cr_assert_not_null(item, "test item does not parse: %s", e.text);
    int rc = ingest_batch_item(index, item, NULL, 0, NULL, &b);
    json_decref(item);
    return rc;
}

/* Splits the only row of 'buf' and returns field 'i' of it. */
static const char *field(const cdr_buf *buf, int i, cdr_buf *scratch)
{
    static const char *f[CDR_CODEC_CDR_NCOLS + 1];
    const char *nl = memchr(buf->data, '\n', buf->len);
    cr_assert_not_null(nl);
    int n = cdr_codec_split_row(buf->data, (size_t)(nl - buf->data), scratch, f, CDR_ARRAY_LEN(f));
    cr_assert_gt(n, i);
    return f[i];
}

Test(batch, valid_item_becomes_a_row_with_the_token_tenant)
{
    cr_assert_eq(feed(0, VALID), 0);
    cr_assert_eq(b.n_rows, 1);
    cr_assert_eq(b.n_rejects, 0);
    cr_assert_null(b.details);
    cdr_buf scratch = {0};
    cr_assert_str_eq(field(&rows, 0, &scratch), TENANT);
    cr_assert_str_eq(field(&rows, 3, &scratch), DOMAIN);
    cr_assert_str_eq(field(&rows, 4, &scratch), "c1");
    cdr_buf_free(&scratch);
}

Test(batch, invalid_item_is_kept_as_a_reject_with_every_problem)
{
    cr_assert_eq(feed(0, VALID), 0);
    cr_assert_eq(feed(1, "{\"call_id\":\"c2\",\"direction\":\"sideways\",\"from_uri\":\"1\","
                         "\"to_uri\":\"2\",\"start_ts\":\"2025-10-30T09:12:05Z\","
                         "\"end_ts\":\"2025-10-30T09:14:20Z\",\"billsec\":5,"
                         "\"disposition\":\"BUSY\"}"),
                 0);
    cr_assert_eq(b.n_rows, 1);
    cr_assert_eq(b.n_rejects, 1);
    cr_assert_not(b.forbidden);
    cr_assert_eq(json_array_size(b.details), 2, "direction and billsec are both wrong");
    json_t *d = json_array_get(b.details, 0);
    cr_assert_eq(json_integer_value(json_object_get(d, "index")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(d, "call_id")), "c2");

    cdr_buf scratch = {0};
    /* received_at, tenant_id, sip_domain, call_id, source, reason, raw */
    cr_assert_str_eq(field(&rejects, 1, &scratch), TENANT);
    cr_assert_str_eq(field(&rejects, 3, &scratch), "c2");
    cr_assert_str_eq(field(&rejects, 4, &scratch), "ingest");
    const char *reason = field(&rejects, 5, &scratch);
    cr_assert(strstr(reason, "direction: ") && strstr(reason, "billsec: "), "reason: %s", reason);
    cr_assert(strstr(field(&rejects, 6, &scratch), "\"sideways\""), "raw item kept");
    cdr_buf_free(&scratch);
}

Test(batch, another_tenant_is_forbidden)
{
    char item[1024];
    snprintf(item, sizeof(item), "{\"tenant_id\":\"%s\",%s", OTHER, VALID + 1);
    cr_assert_eq(feed(0, item), 0);
    cr_assert_eq(b.n_rows, 0);
    cr_assert_eq(b.n_rejects, 1);
    cr_assert(b.forbidden);
}

Test(batch, unparsable_ndjson_line_is_kept_raw)
{
    const char *line = "{\"call_id\": oops}";
    cr_assert_eq(ingest_batch_item(3, NULL, line, strlen(line), "not valid JSON: x", &b), 0);
    cr_assert_eq(b.n_rejects, 1);
    json_t *d = json_array_get(b.details, 0);
    cr_assert_str_eq(json_string_value(json_object_get(d, "field")), "item");
    cr_assert(json_is_null(json_object_get(d, "call_id")));
    cdr_buf scratch = {0};
    cr_assert_str_eq(field(&rejects, 6, &scratch), line);
    cdr_buf_free(&scratch);
}

Test(batch, details_are_capped_but_every_reject_is_kept)
{
    for (int i = 0; i < INGEST_MAX_DETAILS + 10; i++)
        cr_assert_eq(feed(i, "{\"call_id\":\"x\"}"), 0);
    cr_assert_eq(b.n_rejects, INGEST_MAX_DETAILS + 10);
    cr_assert_eq(json_array_size(b.details), INGEST_MAX_DETAILS);
    cr_assert_gt(b.details_dropped, 0);
}

Test(batch, undo_takes_back_only_this_requests_rows)
{
    cr_assert_eq(feed(0, VALID), 0);
    size_t rows_before = rows.len;
    ingest_batch_free(&b);
    ingest_batch_init(&b, &claims, INT64_C(1761825600) * TIMEFMT_US_PER_SEC, &rows, &rejects);
    cr_assert_eq(feed(0, VALID), 0);
    cr_assert_eq(feed(1, "{\"call_id\":\"x\"}"), 0);
    cr_assert_gt(rows.len, rows_before);
    cr_assert_gt(rejects.len, 0);
    ingest_batch_undo(&b);
    cr_assert_eq(rows.len, rows_before, "the earlier request's row stays");
    cr_assert_eq(rejects.len, 0);
    cr_assert_eq(b.n_rows, 0);
    cr_assert_eq(b.n_rejects, 0);
}
