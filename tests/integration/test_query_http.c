/* test_query_http.c - cdr-query over HTTP against a migrated database holding CDRs of two
 * tenants: the answers' shapes, tenant isolation on every endpoint, authentication, parameter
 * errors, the tenant rate limit, the CSV export, the OpenAPI document and a clean SIGTERM. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cdr_bodies.h"
#include "db_fixture.h"
#include "http_client.h"
#include "itest.h"
#include "proc.h"
#include "query_run.h"

#define LOCALHOST  "127.0.0.1"
#define PER_TENANT 150
#define STORE_A    "a0000000-0000-4000-8000-000000000001"
#define STORE_B    "b0000000-0000-4000-8000-000000000001"
#define RANGE      "from=2025-10-01&to=2025-10-31"
#define QA         "sip_domain=" DOMAIN_A "&" RANGE
#define QB         "sip_domain=" DOMAIN_B "&" RANGE
#define TIMEOUT_MS 10000

static itest_db db;
static query_run query;
static http_conn conn;
static char *token_a;

/* PER_TENANT CDRs per tenant from 2025-10-01, 37 minutes apart: a third answered, the rest
 * missed, half inbound; call_ids "a-N" and "b-N". */
static void insert_rows(PGconn *owner, const char *tenant, const char *domain, const char *store,
                        const char *prefix)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", PER_TENANT);
    const char *params[] = {tenant, domain, store, prefix, n};
    PGresult *res = itest_query(
        owner,
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, store_id, sip_domain, direction, "
        "from_uri, to_uri, did_e164, ext_number, answer_ts, end_ts, billsec, disposition) "
        "SELECT $1::uuid, $4 || i, ts, $3::uuid, $2, CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' "
        "END, 'sip:+39333' || lpad((i % 40)::text, 6, '0') || '@' || $2, 'sip:10' || (i % 5) "
        "|| '@' || $2, '+390200000001', '10' || (i % 5), CASE WHEN i % 3 = 0 THEN ts + "
        "interval '5 s' END, ts + interval '65 s', CASE WHEN i % 3 = 0 THEN 60 ELSE 0 END, "
        "CASE WHEN i % 3 = 0 THEN 'ANSWERED' ELSE 'NO_ANSWER' END "
        "FROM generate_series(1, $5::int) i, "
        "LATERAL (SELECT timestamptz '2025-10-01 00:00:00+00' + i * interval '37 min' AS ts) t",
        5, params);
    cr_assert(itest_ok(res), "INSERT: %s", PQerrorMessage(owner));
    PQclear(res);
}

static void setup(void)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&db, (const char *const[]){"migrate", NULL});
    fixture_ctl(&db, (const char *const[]){"partitions", "ensure", "--from", "2025-09", "--months",
                                           "3", NULL});
    PGconn *owner = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(owner, "%s", err);
    insert_rows(owner, TENANT_A, DOMAIN_A, STORE_A, "a-");
    insert_rows(owner, TENANT_B, DOMAIN_B, STORE_B, "b-");
    PQfinish(owner);
    fixture_ctl(&db, (const char *const[]){"rollups", "rebuild", "--from", "2025-09-30", "--to",
                                           "2025-10-10", NULL});
    token_a = mint(TENANT_A, DOMAIN_A, "cdr:read", (int64_t)time(NULL), 3600, SECRET);
}

static void teardown(void)
{
    http_close(&conn);
    query_run_kill(&query);
    free(token_a);
    token_a = NULL;
    itest_db_drop(&db);
}

TestSuite(query_http, .init = setup, .fini = teardown, .timeout = 300);

/* Starts cdr-query with a tenant rate of 1/s and 'tenant_burst', and connects to it. */
static void query_start(const char *tenant_burst)
{
    char burst[64], err[256];
    snprintf(burst, sizeof(burst), "CDR_QUERY_TENANT_BURST=%s", tenant_burst);
    query_run_start(&query, &db, (const char *const[]){"CDR_QUERY_TENANT_RATE=1", burst, NULL});
    cr_assert(http_connect(&conn, LOCALHOST, query.port, TIMEOUT_MS, err, sizeof(err)) == 0, "%s",
              err);
}

/* SIGTERM; cdr-query must exit 0. */
static void query_stop(void)
{
    http_close(&conn);
    query_run_stop(&query);
}

/* GET 'path' with 'token' (NULL: none) and 'accept' (NULL: none). */
static void get(const char *path, const char *token, const char *accept, http_response *r)
{
    char auth[4096], err[256];
    http_header h[2];
    int n = 0;
    if (token) {
        snprintf(auth, sizeof(auth), "Bearer %s", token);
        h[n++] = (http_header){"Authorization", auth};
    }
    if (accept)
        h[n++] = (http_header){"Accept", accept};
    cr_assert(http_request(&conn, "GET", path, h, n, NULL, 0, r, err, sizeof(err)) == 0,
              "GET %s: %s; log:\n%s", path, err, proc_log_tail(query.log));
}

/* GET with tenant A's token, asserting 'status'; returns the parsed body. */
static json_t *get_json(const char *path, int status)
{
    http_response r;
    get(path, token_a, NULL, &r);
    cr_assert_eq(r.status, status, "GET %s: %d instead of %d: %s", path, r.status, status, r.body);
    json_error_t je;
    json_t *j = json_loadb(r.body, r.body_len, 0, &je);
    cr_assert(j, "GET %s: not JSON: %s", path, r.body);
    http_response_free(&r);
    return j;
}

/* Asserts a 400 whose message names 'param'. */
static void expect_400(const char *path, const char *param)
{
    json_t *j = get_json(path, 400);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    cr_assert(msg && strstr(msg, param), "GET %s: message '%s' does not name %s", path,
              msg ? msg : "(none)", param);
    json_decref(j);
}

static long long int_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "no integer %s", key);
    return (long long)json_integer_value(v);
}

Test(query_http, shapes)
{
    query_start("100000");
    json_t *j = get_json("/api/cdr?" QA "&page_size=10", 200);
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items) && json_array_size(items) == 10);
    cr_assert_eq(int_of(j, "total"), PER_TENANT);
    cr_assert_eq(int_of(j, "page"), 1);
    cr_assert_eq(int_of(j, "page_size"), 10);
    cr_assert(json_is_string(json_object_get(j, "next_cursor")));
    json_t *first = json_array_get(items, 0);
    static const char *const keys[] = {"call_id",  "sip_domain", "tenant_id", "store_id",
                                       "start_ts", "end_ts",     "billsec",   "disposition",
                                       "qos",      "direction",  "from_uri",  "to_uri"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert(json_object_get(first, keys[i]), "item without %s", keys[i]);
    cr_assert_str_eq(json_string_value(json_object_get(first, "call_id")), "a-150");
    cr_assert_str_eq(json_string_value(json_object_get(first, "tenant_id")), TENANT_A);

    /* The next page by cursor starts after the first page. */
    char path[1024];
    snprintf(path, sizeof(path), "/api/cdr?" QA "&page_size=10&cursor=%s",
             json_string_value(json_object_get(j, "next_cursor")));
    json_t *j2 = get_json(path, 200);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(j2, "items"), 0), "call_id")),
                     "a-140");
    json_decref(j2);
    json_decref(j);

    j = get_json("/api/cdr/a-7?sip_domain=" DOMAIN_A, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "call_id")), "a-7");
    json_decref(j);
    j = get_json("/api/cdr/a%2D7?sip_domain=" DOMAIN_A, 200); /* percent-decoded */
    cr_assert_str_eq(json_string_value(json_object_get(j, "call_id")), "a-7");
    json_decref(j);

    j = get_json("/api/analytics/summary?" QA, 200);
    cr_assert_eq(int_of(j, "total_calls"), PER_TENANT);
    cr_assert_eq(int_of(j, "missed_calls"), 50); /* inbound (75) not answered (25 of them) */
    static const char *const kpis[] = {"answered_rate", "avg_handle_time_sec", "avg_ring_time_sec",
                                       "asr", "callbacks_due"};
    for (size_t i = 0; i < sizeof(kpis) / sizeof(kpis[0]); i++)
        cr_assert(json_object_get(j, kpis[i]), "summary without %s", kpis[i]);
    json_decref(j);

    j = get_json("/api/analytics/by-store?" QA, 200);
    items = json_object_get(j, "items");
    cr_assert_eq(json_array_size(items), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "store_id")),
                     STORE_A);
    cr_assert_eq(int_of(json_array_get(items, 0), "total"), PER_TENANT);
    json_decref(j);

    j = get_json("/api/analytics/by-agent?" QA, 200);
    items = json_object_get(j, "items");
    cr_assert_eq(json_array_size(items), 5);
    cr_assert(json_object_get(json_array_get(items, 0), "ext_number"));
    cr_assert(json_object_get(json_array_get(items, 0), "avg_mos"));
    json_decref(j);

    /* A client that knows no query string is answered by /metrics too. */
    http_response r;
    get("/metrics", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "cdr_query_request_duration_seconds"), "%s", r.body);
    http_response_free(&r);
    query_stop();
}

Test(query_http, isolation)
{
    query_start("100000");
    static const char *const paths[] = {"/api/cdr", "/api/cdr/a-1", "/api/analytics/summary",
                                        "/api/analytics/by-store", "/api/analytics/by-agent"};
    char path[512];
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        snprintf(path, sizeof(path), "%s?" QB, paths[i]);
        json_decref(get_json(path, 403));
    }
    /* B's store: nothing. */
    json_t *j = get_json("/api/cdr?" QA "&store_id=" STORE_B, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
    cr_assert_eq(int_of(j, "total"), 0);
    json_decref(j);
    j = get_json("/api/analytics/summary?" QA "&store_id=" STORE_B, 200);
    cr_assert_eq(int_of(j, "total_calls"), 0);
    json_decref(j);
    j = get_json("/api/analytics/by-agent?" QA "&store_id=" STORE_B, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    /* B's call: not found; A's rows never hold B's. */
    json_decref(get_json("/api/cdr/b-1?sip_domain=" DOMAIN_A, 404));
    j = get_json("/api/analytics/by-store?" QA, 200);
    json_t *it;
    size_t k;
    json_array_foreach(json_object_get(j, "items"), k, it)
        cr_assert_str_neq(json_string_value(json_object_get(it, "store_id")), STORE_B);
    json_decref(j);
    query_stop();
}

Test(query_http, errors)
{
    query_start("100000");
    http_response r;
    get("/api/cdr?" QA, NULL, NULL, &r);
    cr_assert_eq(r.status, 401);
    http_response_free(&r);
    expect_400("/api/cdr?" QA "&foo=1", "foo");
    expect_400("/api/cdr?sip_domain=" DOMAIN_A "&from=2025-13-45", "from");
    expect_400("/api/cdr?sip_domain=" DOMAIN_A "&from=2025-10-20&to=2025-10-01", "from");
    expect_400("/api/cdr?" QA "&page_size=900", "page_size");
    expect_400("/api/cdr?" QA "&direction=sideways", "direction");
    expect_400("/api/cdr?" QA "&cursor=***", "cursor");
    expect_400("/api/cdr?" QA "&cursor=AAAA", "cursor");
    expect_400("/api/cdr?" QA "&tz=Mars/Olympus", "tz");
    expect_400("/api/analytics/summary?" QA "&tz=Mars/Olympus", "tz");
    expect_400("/api/analytics/summary?sip_domain=" DOMAIN_A "&to=2025-10-02", "from");
    /* missed and qos: answered, or 501 while not available in this build. */
    http_response q;
    get("/api/analytics/qos?" QA, token_a, NULL, &q);
    cr_assert(q.status == 200 || q.status == 501, "qos: %d", q.status);
    http_response_free(&q);
    json_decref(get_json("/api/nothing", 404));
    query_stop();
}

Test(query_http, rate_limit)
{
    query_start("5");
    int limited = 0;
    for (int i = 0; i < 8; i++) {
        http_response r;
        get("/api/analytics/summary?" QA, token_a, NULL, &r);
        if (r.status == 429) {
            limited++;
            const char *ra = http_header_get(&r, "Retry-After");
            cr_assert(ra && atoi(ra) >= 1, "429 without Retry-After");
        } else {
            cr_assert_eq(r.status, 200, "%d: %s", r.status, r.body);
        }
        http_response_free(&r);
    }
    cr_assert(limited >= 2, "only %d of 8 requests limited", limited);
    query_stop();
}

Test(query_http, csv)
{
    query_start("100000");
    for (int pass = 0; pass < 2; pass++) {
        http_response r;
        if (pass == 0)
            get("/api/cdr?" QA "&format=csv", token_a, NULL, &r);
        else
            get("/api/cdr?" QA, token_a, "text/csv", &r);
        cr_assert_eq(r.status, 200, "%s", r.body);
        const char *ct = http_header_get(&r, "Content-Type");
        cr_assert(ct && strstr(ct, "text/csv"), "%s", ct ? ct : "(none)");
        int lines = 0;
        for (size_t i = 0; i < r.body_len; i++)
            lines += r.body[i] == '\n';
        cr_assert_eq(lines, PER_TENANT + 1, "%d lines", lines);
        cr_assert(strncmp(r.body, "call_id,", 8) == 0, "header: %.80s", r.body);
        cr_assert(!strstr(r.body, "\nb-") && !strstr(r.body, TENANT_B), "tenant B's rows exported");
        http_response_free(&r);
    }
    query_stop();
}

Test(query_http, openapi)
{
    query_start("100000");
    http_response r;
    get("/api/openapi.json", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    json_error_t je;
    json_t *j = json_loadb(r.body, r.body_len, 0, &je);
    cr_assert(j, "openapi.json: %s at %d", je.text, je.position);
    cr_assert(json_is_string(json_object_get(j, "openapi")));
    static const char *const paths[] = {"/api/cdr",
                                        "/api/cdr/{call_id}",
                                        "/api/analytics/summary",
                                        "/api/analytics/by-store",
                                        "/api/analytics/by-agent",
                                        "/api/analytics/missed",
                                        "/api/analytics/qos",
                                        "/api/openapi.json",
                                        "/healthz",
                                        "/readyz",
                                        "/metrics"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        cr_assert(json_object_get(json_object_get(j, "paths"), paths[i]), "no path %s", paths[i]);
    json_decref(j);
    http_response_free(&r);
    query_stop();
}
