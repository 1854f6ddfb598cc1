/* test_ingest.c - cdr-ingest's contract over HTTP against a real Redis: what it accepts and the
 * exact stream entries it writes for a known input, what it refuses and how (every answer of
 * docs/ingest.md), and its health, readiness and metrics. Limits, outages and connections are
 * in test_ingest_limits.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "cdr_bodies.h"
#include "ingest_run.h"

/* The integer count 'name' ("accepted", "rejected") of an error body, at the top level or
 * inside "error". */
static long long error_count(const json_t *j, const char *name)
{
    json_t *v = json_object_get(j, name);
    if (!v)
        v = json_object_get(json_object_get(j, "error"), name);
    cr_assert(json_is_integer(v), "no integer \"%s\" count in the error body", name);
    return json_integer_value(v);
}

/* Asserts that error.details holds exactly one problem of item 'index' with 'call_id', 'field'
 * and 'message'. */
static void expect_detail(const json_t *j, int index, const char *call_id, const char *field,
                          const char *message)
{
    json_t *details = json_object_get(json_object_get(j, "error"), "details");
    size_t i;
    json_t *d;
    int found = 0;
    json_array_foreach(details, i, d)
    {
        if (json_integer_value(json_object_get(d, "index")) != index ||
            !json_is_integer(json_object_get(d, "index")))
            continue;
        const char *f = json_string_value(json_object_get(d, "field"));
        if (!f || strcmp(f, field) != 0)
            continue;
        found++;
        cr_assert_str_eq(json_string_value(json_object_get(d, "call_id")), call_id,
                         "detail of item %d names the wrong call_id", index);
        const char *m = json_string_value(json_object_get(d, "message"));
        cr_assert(m && strcmp(m, message) == 0, "item %d %s: expected message \"%s\", got \"%s\"",
                  index, field, message, m ? m : "(none)");
    }
    char *s = dump(details);
    cr_assert_eq(found, 1, "expected one detail {index %d, field %s}, details are %s", index, field,
                 s);
    free(s);
}

static void expect_details_count(const json_t *j, size_t n)
{
    json_t *details = json_object_get(json_object_get(j, "error"), "details");
    char *s = dump(details);
    cr_assert_eq(json_array_size(details), n, "expected %zu details, got %s", n, s);
    free(s);
}

/* The value of the series 'series' (name with labels, as written) in Prometheus text, or -1
 * when absent. */
static double metric(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return -1;
}

/* True when Prometheus text 'text' has a sample of metric 'name' (with or without labels). */
static bool has_series(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '{'))
            return true;
    return false;
}

/* Asserts the reject row for 'call_id': tenant A's caller, source ingest, 'reason' and the
 * item as it was sent. */
static void expect_reject(const sdump *d, const char *call_id, const char *reason,
                          const json_t *item)
{
    const srow *row = sdump_row(d, "reject", call_id);
    const char *want[CDR_CODEC_REJECT_NCOLS] = {NULL,     TENANT_A, DOMAIN_A, call_id,
                                                "ingest", reason,   NULL};
    expect_recent(row->col[REJ_RECEIVED_AT], "received_at");
    expect_cols(row, "reject", want, 1, REJ_RAW);
    json_error_t e;
    json_t *raw = row->col[REJ_RAW] ? json_loads(row->col[REJ_RAW], 0, &e) : NULL;
    cr_assert(raw && json_equal(raw, item), "raw of %s is not the item sent: %s", call_id,
              row->col[REJ_RAW] ? row->col[REJ_RAW] : "\\N");
    json_decref(raw);
}

/* An item of a batch that cdr-ingest refuses: its index, and the field and message that name
 * the problem in the answer's details (and, as "field: message", in its reject row). */
typedef struct broken {
    int index;
    const char *field, *message;
} broken;

/* Asserts the answer 'r' (then freed) to the batch 'items' of call_ids "'prefix'-0" ...: the
 * error 'status' with one detail for each of the 'n' items of 'bad' and the counts 'accepted'
 * and 'n' rejected; then that the stream keeps each of those items as one reject row and none as
 * a cdr row. */
static void expect_refused_items(http_response *r, int status, long long accepted,
                                 const char *prefix, const json_t *items, const broken *bad,
                                 size_t n)
{
    json_t *j = expect_error(r, status);
    expect_details_count(j, n);
    cr_assert_eq(error_count(j, "accepted"), accepted);
    cr_assert_eq(error_count(j, "rejected"), (long long)n);
    sdump d;
    stream_load(&d);
    cr_assert_eq(sdump_only(&d, "reject")->n, (long)n);
    for (size_t i = 0; i < n; i++) {
        char id[64], reason[256];
        snprintf(id, sizeof(id), "%s-%d", prefix, bad[i].index);
        snprintf(reason, sizeof(reason), "%s: %s", bad[i].field, bad[i].message);
        expect_detail(j, bad[i].index, id, bad[i].field, bad[i].message);
        expect_reject(&d, id, reason, json_array_get(items, (size_t)bad[i].index));
        cr_assert_eq(sdump_count_call(&d, "cdr", id, NULL), 0, "%s has a cdr row", id);
    }
    sdump_free(&d);
    json_decref(j);
    http_response_free(r);
}

/* Asserts the stream holds one cdr entry with exactly the call_ids "'prefix'-0" ... in order,
 * and nothing else. */
static void expect_one_cdr_entry(const char *prefix, int n, const char *enc)
{
    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 1, "expected one entry, the stream has %d", d.n);
    const sentry *e = sdump_only(&d, "cdr");
    cr_assert_eq(e->n, n);
    cr_assert_str_eq(e->enc, enc);
    for (int i = 0; i < n; i++) {
        char id[128];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert_str_eq(e->rows[i].col[COL_CALL_ID], id, "row %d", i);
    }
    sdump_free(&d);
}

TestSuite(ingest, .init = ingest_setup, .fini = ingest_teardown, .timeout = 30);

/* ------------------------------------------------------------------------------------------ */
/* Accepted CDRs and the exact rows written */

Test(ingest, one_cdr_becomes_one_exact_copy_row)
{
    static const char body[] =
        "{\"tenant_id\":\"6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B\","
        "\"store_id\":\"11111111-2222-4333-8444-555555555555\",\"store_name\":\"Roma Centro\","
        "\"sip_domain\":\"tenantA.edvoip.it\",\"call_id\":\"a1b2c3d4@pbx-1\","
        "\"direction\":\"inbound\","
        "\"from_uri\":\"sip:+393331234567@tenantA.edvoip.it;user=phone\","
        "\"to_uri\":\"sip:100@tenantA.edvoip.it\",\"did_e164\":\"+39061234567\","
        "\"ext_number\":\"100\",\"user_id\":\"ABCDEF01-2345-4678-89AB-CDEF01234567\","
        "\"start_ts\":\"2025-10-30T10:12:00+01:00\",\"answer_ts\":\"2025-10-30T09:12:05Z\","
        "\"end_ts\":\"2025-10-30T09:14:13.25Z\",\"billsec\":128,\"disposition\":\"answered\","
        "\"recording_url\":\"https://rec.edvoip.it/a1b2c3d4.wav\","
        "\"qos\":{\"mos\":4.1,\"jitter_ms\":12.5,\"loss_pct\":0.2},"
        "\"meta_json\":{\"hangup_cause\":\"NORMAL_CLEARING\",\"note\":\"l1\\nl2\\tx\"},"
        "\"unknown_member\":true}";
    static const char *const want[CDR_CODEC_CDR_NCOLS] = {
        TENANT_A,                                                          /* tenant_id */
        "11111111-2222-4333-8444-555555555555",                            /* store_id */
        "Roma Centro",                                                     /* store_name */
        DOMAIN_A,                                                          /* sip_domain */
        "a1b2c3d4@pbx-1",                                                  /* call_id */
        "in",                                                              /* direction */
        "+393331234567",                                                   /* from_uri */
        "100",                                                             /* to_uri */
        "+39061234567",                                                    /* did_e164 */
        "100",                                                             /* ext_number */
        "abcdef01-2345-4678-89ab-cdef01234567",                            /* user_id */
        "2025-10-30 09:12:00+00",                                          /* start_ts */
        "2025-10-30 09:12:05+00",                                          /* answer_ts */
        "2025-10-30 09:14:13.250000+00",                                   /* end_ts */
        "128",                                                             /* billsec */
        "ANSWERED",                                                        /* disposition */
        "https://rec.edvoip.it/a1b2c3d4.wav",                              /* recording_url */
        "4.1",                                                             /* mos */
        "12.5",                                                            /* jitter_ms */
        "0.2",                                                             /* loss_pct */
        "{\"hangup_cause\":\"NORMAL_CLEARING\",\"note\":\"l1\\nl2\\tx\"}", /* meta_json */
    };
    http_response r;
    ingest_start(NULL, true);
    post(run.token, "application/json", NULL, body, strlen(body), &r);
    expect_accepted(&r, 1);

    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 1, "expected exactly one entry, the stream has %d", d.n);
    const sentry *e = sdump_only(&d, "cdr");
    cr_assert_eq(e->n, 1);
    cr_assert_str_eq(e->enc, "copy");
    expect_cols(&e->rows[0], "cdr", want, 0, COL_INGESTED_AT);
    expect_recent(e->rows[0].col[COL_INGESTED_AT], "ingested_at");
    sdump_free(&d);
    ingest_stop();
}

Test(ingest, missing_tenant_and_domain_come_from_the_token)
{
    static const char body[] = "{\"call_id\":\"minimal-1\",\"direction\":\"OUT\","
                               "\"from_uri\":\"tel:+39061234567;phone-context=+39\","
                               "\"to_uri\":\"SIPS:alice@example.it\","
                               "\"start_ts\":\"2025-10-30 11:12:05+02\","
                               "\"end_ts\":\"2025-10-30T09:12:35Z\",\"billsec\":0,"
                               "\"disposition\":\"no answer\",\"qos\":null}";
    static const char *const want[CDR_CODEC_CDR_NCOLS] = {
        TENANT_A,                 /* tenant_id */
        NULL,                     /* store_id */
        NULL,                     /* store_name */
        DOMAIN_A,                 /* sip_domain */
        "minimal-1",              /* call_id */
        "out",                    /* direction */
        "+39061234567",           /* from_uri */
        "alice",                  /* to_uri */
        NULL,                     /* did_e164 */
        NULL,                     /* ext_number */
        NULL,                     /* user_id */
        "2025-10-30 09:12:05+00", /* start_ts */
        NULL,                     /* answer_ts */
        "2025-10-30 09:12:35+00", /* end_ts */
        "0",                      /* billsec */
        "NO_ANSWER",              /* disposition */
        NULL,                     /* recording_url */
        NULL,                     /* mos */
        NULL,                     /* jitter_ms */
        NULL,                     /* loss_pct */
        NULL,                     /* meta_json */
    };
    http_response r;
    ingest_start(NULL, true);
    post(run.token, NULL, NULL, body, strlen(body), &r); /* no Content-Type: JSON */
    expect_accepted(&r, 1);

    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 1);
    expect_cols(sdump_row(&d, "cdr", "minimal-1"), "cdr", want, 0, COL_INGESTED_AT);
    sdump_free(&d);
    ingest_stop();
}

Test(ingest, json_array_is_one_entry)
{
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("arr", 3);
    post_json(a, &r);
    json_decref(a);
    expect_accepted(&r, 3);
    expect_one_cdr_entry("arr", 3, "copy");
    ingest_stop();
}

Test(ingest, ndjson_is_one_entry)
{
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("nd", 3);
    char *body = ndjson(a);
    json_decref(a);
    post(run.token, "application/x-ndjson", NULL, body, strlen(body), &r);
    free(body);
    expect_accepted(&r, 3);
    expect_one_cdr_entry("nd", 3, "copy");
    ingest_stop();
}

Test(ingest, large_batch_is_one_zstd_entry)
{
    http_response r;
    ingest_start((const char *const[]){"CDR_INGEST_COMPRESS_MIN=1k", NULL}, true);
    json_t *a = cdr_batch("big", 50);
    post_json(a, &r);
    json_decref(a);
    expect_accepted(&r, 50);
    expect_one_cdr_entry("big", 50, "copy+zstd");
    ingest_stop();
}

Test(ingest, compressed_bodies_are_accepted)
{
    http_response r;
    cdr_buf z;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("zst", 2), *b = cdr_batch("gz", 2);
    char *body = dump(a);
    compress_into(ZSTD, body, strlen(body), 1, &z);
    post(run.token, "application/json", "zstd", z.data, z.len, &r);
    expect_accepted(&r, 2);
    free(body);
    cdr_buf_free(&z);

    body = ndjson(b);
    compress_into(GZIP, body, strlen(body), 1, &z);
    post(run.token, "application/x-ndjson", "gzip", z.data, z.len, &r);
    expect_accepted(&r, 2);
    free(body);
    cdr_buf_free(&z);
    json_decref(a);
    json_decref(b);

    sdump d;
    stream_load(&d);
    cr_assert_eq(sdump_entries(&d, "cdr"), 2);
    const char *ids[] = {"zst-0", "zst-1", "gz-0", "gz-1"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(ids); i++)
        (void)sdump_row(&d, "cdr", ids[i]);
    sdump_free(&d);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Refused items */

Test(ingest, bad_items_are_400_and_kept_as_rejects_while_good_ones_queue)
{
    static const broken bad[] = {
        {1, "billsec", "billsec 99 does not match end_ts - answer_ts = 128 s"},
        {3, "direction", "must be one of in, out"},
    };
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("mix", 5);
    json_object_set_new(json_array_get(a, 1), "billsec", json_integer(99));
    json_object_set_new(json_array_get(a, 3), "direction", json_string("sideways"));
    post_json(a, &r);
    expect_refused_items(&r, 400, 3, "mix", a, bad, CDR_ARRAY_LEN(bad));

    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 2, "expected a cdr and a reject entry, the stream has %d entries", d.n);
    cr_assert_eq(sdump_only(&d, "cdr")->n, 3);
    for (int i = 0; i < 5; i += 2) {
        char id[16];
        snprintf(id, sizeof(id), "mix-%d", i);
        (void)sdump_row(&d, "cdr", id);
    }
    sdump_free(&d);
    json_decref(a);
    ingest_stop();
}

Test(ingest, another_tenant_or_domain_is_403_and_kept_as_reject)
{
    static const broken bad[] = {
        {1, "tenant_id", "tenant_id differs from the token's tenant"},
        {2, "sip_domain", "sip_domain differs from the token's domain"},
    };
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("ten", 3);
    json_object_set_new(json_array_get(a, 1), "tenant_id", json_string(TENANT_B));
    json_object_set_new(json_array_get(a, 2), "sip_domain", json_string(DOMAIN_B));
    post_json(a, &r);
    expect_refused_items(&r, 403, 1, "ten", a, bad, CDR_ARRAY_LEN(bad));

    sdump d;
    stream_load(&d);
    cr_assert_eq(sdump_only(&d, "cdr")->n, 1);
    (void)sdump_row(&d, "cdr", "ten-0");
    sdump_free(&d);

    /* A single item of tenant B: 403, and no cdr row at all. */
    json_t *b = cdr_obj("ten-b");
    json_object_set_new(b, "tenant_id", json_string(TENANT_B));
    post_json(b, &r);
    json_t *j = expect_error(&r, 403);
    cr_assert_eq(error_count(j, "accepted"), 0);
    json_decref(j);
    http_response_free(&r);
    stream_load(&d);
    cr_assert_eq(sdump_count_call(&d, "cdr", "ten-b", NULL), 0,
                 "tenant B's CDR reached a cdr entry");
    cr_assert_eq(sdump_count_call(&d, "reject", "ten-b", NULL), 1);
    sdump_free(&d);
    json_decref(b);
    json_decref(a);
    ingest_stop();
}

Test(ingest, bad_tokens_are_401_and_store_nothing)
{
    char *expired = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_WRITE, time(NULL) - 7200, 60, SECRET);
    char *foreign = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_WRITE, time(NULL), 3600, OTHER_SECRET);
    char *none = alg_none_token();
    const struct {
        const char *what;
        const char *authorization; /* as request_headers() takes it; NULL: no header */
    } cases[] = {
        {"no Authorization header", NULL},        {"not a JWT", "Bearer not.a.jwt"},
        {"another scheme", "Basic dXNlcjpwYXNz"}, {"expired", expired},
        {"signed with another secret", foreign},  {"alg none", none},
    };
    ingest_start(NULL, true);
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        char text[1024];
        http_response r;
        snprintf(text, sizeof(text), CDR_FMT, "unauth");
        post(cases[i].authorization, "application/json", NULL, text, strlen(text), &r);
        cr_assert_eq(r.status, 401, "%s: expected 401, got %d: %s", cases[i].what, r.status,
                     r.body);
        const char *www = http_header_get(&r, "WWW-Authenticate");
        cr_assert(www && strncasecmp(www, "Bearer", 6) == 0, "%s: WWW-Authenticate is %s",
                  cases[i].what, www ? www : "missing");
        expect_error_only(&r, 401);
    }
    cr_assert_eq(xlen(), 0, "a refused token stored something");
    free(expired);
    free(foreign);
    free(none);
    ingest_stop();
}

Test(ingest, read_only_token_is_403)
{
    char text[1024];
    http_response r;
    char *reader = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_READ, time(NULL), 3600, SECRET);
    ingest_start(NULL, true);
    snprintf(text, sizeof(text), CDR_FMT, "reader");
    post(reader, "application/json", NULL, text, strlen(text), &r);
    expect_error_only(&r, 403);
    cr_assert_eq(xlen(), 0);
    free(reader);
    ingest_stop();
}

Test(ingest, malformed_bodies_are_400_and_store_nothing)
{
    static const char corrupt[] = "\x1f\x8b\x08\x00garbage that is not deflate";
    const struct {
        const char *what, *ctype, *cenc, *body;
        size_t len;
    } cases[] = {
        {"truncated JSON", "application/json", NULL, "{\"call_id\": ", 0},
        {"not JSON", "application/json", NULL, "call_id=1", 0},
        {"empty array", "application/json", NULL, "[]", 0},
        {"a JSON scalar", "application/json", NULL, "42", 0},
        {"empty body", "application/json", NULL, "", 0},
        {"NDJSON of blank lines", "application/x-ndjson", NULL, "\n\n", 0},
        {"corrupt gzip", "application/json", "gzip", corrupt, sizeof(corrupt) - 1},
    };
    ingest_start(NULL, true);
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        http_response r;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);
        post(run.token, cases[i].ctype, cases[i].cenc, cases[i].body, len, &r);
        cr_assert_eq(r.status, 400, "%s: expected 400, got %d: %s", cases[i].what, r.status,
                     r.body);
        expect_error_only(&r, 400);
    }
    cr_assert_eq(xlen(), 0, "a malformed body stored something");
    ingest_stop();
}

Test(ingest, unknown_type_or_encoding_is_415)
{
    char text[1024];
    http_response r;
    snprintf(text, sizeof(text), CDR_FMT, "media");
    ingest_start(NULL, true);
    post(run.token, "text/plain", NULL, text, strlen(text), &r);
    expect_error_only(&r, 415);
    post(run.token, "application/json", "br", text, strlen(text), &r);
    expect_error_only(&r, 415);
    cr_assert_eq(xlen(), 0);
    ingest_stop();
}

Test(ingest, unknown_path_is_404_and_wrong_method_405)
{
    http_response r;
    ingest_start(NULL, true);
    request("GET", "/nope", run.token, NULL, NULL, NULL, 0, &r);
    expect_error_only(&r, 404);
    request("POST", "/api/voip/cdrs", run.token, "application/json", NULL, "{}", 2, &r);
    expect_error_only(&r, 404);
    request("GET", CDR_PATH, run.token, NULL, NULL, NULL, 0, &r);
    expect_error_only(&r, 405);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Health and metrics */

Test(ingest, health_readiness_and_metrics)
{
    http_response r;
    ingest_start(NULL, true);
    get("/healthz", &r);
    cr_assert_eq(r.status, 200);
    http_response_free(&r);
    get("/readyz", &r);
    cr_assert_eq(r.status, 200, "/readyz with Redis up: %d %s", r.status, r.body);
    http_response_free(&r);

    char id[32];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "met-%d", i);
        post_one(id, &r);
        expect_accepted(&r, 1);
    }
    json_t *a = cdr_batch("metb", 3);
    json_object_set_new(json_array_get(a, 2), "disposition", json_string("MAYBE"));
    post_json(a, &r);
    json_decref(a);
    expect_error_only(&r, 400);

    /* Counters may be bumped just after the answer is sent: give them a moment. */
    double ok = -1, acc = -1, rej = -1;
    int64_t deadline = itest_now_ms() + 1000;
    do {
        get("/metrics", &r);
        cr_assert_eq(r.status, 200);
        ok = metric(r.body, "cdr_ingest_requests_total{status=\"202\"}");
        acc = metric(r.body, "cdr_ingest_cdrs_accepted_total");
        rej = metric(r.body, "cdr_ingest_cdrs_rejected_total");
        if (ok == 3 && acc == 5 && rej == 1)
            break;
        http_response_free(&r);
        itest_sleep_ms(50);
    } while (itest_now_ms() < deadline);
    const char *ct = http_header_get(&r, "Content-Type");
    cr_assert(ct && strncmp(ct, "text/plain", 10) == 0, "/metrics Content-Type %s",
              ct ? ct : "none");
    cr_assert_eq(ok, 3, "requests_total{status=\"202\"} is %g after three 202s:\n%s", ok, r.body);
    cr_assert_eq(metric(r.body, "cdr_ingest_requests_total{status=\"400\"}"), 1, "%s", r.body);
    cr_assert_eq(acc, 5, "cdrs_accepted_total is %g, expected 5:\n%s", acc, r.body);
    cr_assert_eq(rej, 1, "cdrs_rejected_total is %g, expected 1:\n%s", rej, r.body);
    cr_assert(has_series(r.body, "cdr_ingest_redis_rtt_seconds_bucket"),
              "no cdr_ingest_redis_rtt_seconds histogram:\n%s", r.body);
    cr_assert(has_series(r.body, "cdr_ingest_stream_backlog"), "no cdr_ingest_stream_backlog:\n%s",
              r.body);
    http_response_free(&r);
    ingest_stop();
}
