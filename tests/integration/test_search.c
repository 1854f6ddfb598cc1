/* test_search.c - the /api/cdr statements against a real PostgreSQL, read as cdr_reader through
 * the pool with the token's tenant: every page and total checked against the test's own
 * computation over the rows it generated (each filter, date-only and datetime ranges in
 * Europe/Rome across a month boundary), keyset paging through everything (also while rows
 * arrive), offset against cursor, tenant isolation, /api/cdr/{call_id} and CSV. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db_fixture.h"
#include "itest.h"
#include "params.h"
#include "pg_pool.h"
#include "pool_fixture.h"
#include "search.h"
#include "timefmt.h"

#define TENANT_A    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TENANT_B    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define PER_TENANT  3000
#define N_ROWS      (2 * PER_TENANT)
#define DEADLINE_MS 20000
#define CDR_ALLOWED                                                                                \
    (P_SIP_DOMAIN | P_FROM | P_TO | P_TZ | P_DIRECTION | P_DISPOSITION | P_DID | P_EXT | P_STORE | \
     P_PAGE | P_PAGE_SIZE | P_CURSOR | P_FORMAT)
#define WHOLE_RANGE "from=2025-09-01&to=2025-11-01"

static const char *const tenants[2] = {TENANT_A, TENANT_B};
static const char *const domains[2] = {"a.example", "b.example"};
static const char *const stores[2][4] = {
    {"a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002",
     "a0000000-0000-4000-8000-000000000003", "a0000000-0000-4000-8000-000000000004"},
    {"b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002",
     "b0000000-0000-4000-8000-000000000003", "b0000000-0000-4000-8000-000000000004"},
};
static const char *const dispositions[4] = {"ANSWERED", "NO_ANSWER", "BUSY", "FAILED"};
static const char *const exts[5] = {"101", "102", "103", "104", "105"};
static const char *const dids[3] = {"+390200000001", "+390200000002", "+390200000003"};

/* One generated CDR, as the test knows it. */
typedef struct row {
    int tenant;
    char call_id[32];
    cdr_time start, answer, end; /* answer 0: none */
    const char *store;           /* NULL: none */
    const char *ext, *did, *direction, *disposition;
    char user_id[40]; /* "": none */
    char from_uri[64], to_uri[64];
    char recording[64]; /* "": none */
    int billsec;
    int qos; /* 0 none, 1 mos only, 2 all three */
    double mos, jitter, loss;
    int n; /* meta_json {"n": n} */
} row;

static row rows[N_ROWS + 16];
static int n_rows;
static itest_db db;
static pool_fixture pf;
static PGconn *owner;

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static cdr_time at(const char *iso)
{
    cdr_time t;
    char err[128];
    cr_assert(timefmt_parse(iso, strlen(iso), TIMEFMT_REQUIRE_OFFSET, &t, NULL, err, sizeof(err)) ==
                  0,
              "%s: %s", iso, err);
    return t;
}

static void make_row(row *r, int tenant, const char *call_id, cdr_time start, int n)
{
    memset(r, 0, sizeof(*r));
    r->tenant = tenant;
    snprintf(r->call_id, sizeof(r->call_id), "%s", call_id);
    r->start = start;
    uint32_t s = rnd() % 5;
    r->store = s < 4 ? stores[tenant][s] : NULL;
    uint32_t e = rnd() % 6;
    r->ext = e < 5 ? exts[e] : NULL;
    uint32_t d = rnd() % 4;
    r->did = d < 3 ? dids[d] : NULL;
    r->direction = rnd() % 2 ? "in" : "out";
    r->disposition = dispositions[rnd() % 4];
    if (rnd() % 3)
        snprintf(r->user_id, sizeof(r->user_id), "%c0000000-0000-4000-9000-%012u",
                 tenant ? 'b' : 'a', rnd() % 7);
    snprintf(r->from_uri, sizeof(r->from_uri), "sip:+39333%06u@%s", rnd() % 1000000,
             domains[tenant]);
    snprintf(r->to_uri, sizeof(r->to_uri), "sip:%u@%s", 100 + rnd() % 9, domains[tenant]);
    if (strcmp(r->disposition, "ANSWERED") == 0) {
        r->answer = start + 5 * TIMEFMT_US_PER_SEC;
        r->billsec = (int)(rnd() % 600);
        snprintf(r->recording, sizeof(r->recording), "https://rec.example/%s.wav", call_id);
    }
    r->end = start + (5 + r->billsec) * TIMEFMT_US_PER_SEC;
    r->qos = (int)(rnd() % 3);
    r->mos = 1.0 + (rnd() % 40) / 10.0;
    r->jitter = (rnd() % 500) / 10.0;
    r->loss = (rnd() % 100) / 10.0;
    r->n = n;
}

/* PER_TENANT rows per tenant between 2025-09-20 and 2025-10-31 (every tenth sharing the start
 * of the one before it, half with a fraction of a second), and for tenant A rows on the edges of
 * the Europe/Rome days used below, one with a comma and quotes in from_uri. */
static void generate(void)
{
    cdr_time lo = at("2025-09-20T00:00:00Z");
    cdr_time span_s = (at("2025-10-31T00:00:00Z") - lo) / TIMEFMT_US_PER_SEC;
    n_rows = 0;
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < PER_TENANT; i++) {
            char id[32];
            snprintf(id, sizeof(id), "c%c%06d", t ? 'b' : 'a', i);
            cdr_time start = lo + (cdr_time)(rnd() % span_s) * TIMEFMT_US_PER_SEC;
            if (i % 2)
                start += rnd() % 1000000;
            if (i % 10 == 9)
                start = rows[n_rows - 1].start;
            make_row(&rows[n_rows], t, id, start, n_rows);
            n_rows++;
        }
    }
    /* Tenant A's first rows moved onto the edges: from=2025-09-28 in Rome is 22:00Z the day
     * before (CEST), to=2025-10-26 in Rome ends at 23:00Z (CET, the day DST ended). */
    rows[0].start = at("2025-09-27T22:00:00Z");
    rows[1].start = at("2025-09-27T21:59:59.999999Z");
    rows[2].start = at("2025-10-26T22:59:59.500000Z");
    rows[3].start = at("2025-10-26T23:00:00Z");
    rows[4].start = at("2025-09-30T23:59:59.999999Z");
    rows[5].start = at("2025-10-01T00:00:00Z");
    /* Five rows sharing one start: the order among them is call_id, newest first. */
    for (int i = 7; i < 12; i++)
        rows[i].start = at("2025-10-10T10:10:10.123456Z");
    for (int i = 0; i < 12; i++) {
        if (rows[i].answer)
            rows[i].answer = rows[i].start + 5 * TIMEFMT_US_PER_SEC;
        rows[i].end = rows[i].start + (5 + rows[i].billsec) * TIMEFMT_US_PER_SEC;
    }
    snprintf(rows[6].from_uri, sizeof(rows[6].from_uri), "\"Rossi, Mario\" <sip:100@a.example>");
}

static void put_time(cdr_buf *b, cdr_time t)
{
    char s[40];
    cr_assert(timefmt_format_pg(t, s, sizeof(s)) > 0);
    cr_assert(cdr_buf_append_str(b, s) == 0);
}

static void put_text(cdr_buf *b, const char *s, bool last)
{
    cr_assert(cdr_buf_append_str(b, s && s[0] ? s : "\\N") == 0);
    cr_assert(cdr_buf_append_char(b, last ? '\n' : '\t') == 0);
}

/* Stores rows[from..to) as the owner: COPY into a temporary table (COPY into voip_cdr is
 * refused under its forced row-level security), then INSERT ... SELECT. */
static void copy_rows(int from, int to)
{
    PGresult *res = PQexec(owner, "CREATE TEMP TABLE IF NOT EXISTS load (LIKE voip_cdr "
                                  "INCLUDING DEFAULTS); TRUNCATE load");
    cr_assert(itest_ok(res), "%s", PQerrorMessage(owner));
    PQclear(res);
    cdr_buf b = {0};
    for (int i = from; i < to; i++) {
        const row *r = &rows[i];
        char v[64];
        put_text(&b, tenants[r->tenant], false);
        put_text(&b, r->call_id, false);
        put_time(&b, r->start);
        cr_assert(cdr_buf_append_char(&b, '\t') == 0);
        put_text(&b, r->store, false);
        put_text(&b, domains[r->tenant], false);
        put_text(&b, r->direction, false);
        put_text(&b, r->from_uri, false);
        put_text(&b, r->to_uri, false);
        put_text(&b, r->did, false);
        put_text(&b, r->ext, false);
        put_text(&b, r->user_id, false);
        if (r->answer) {
            put_time(&b, r->answer);
            cr_assert(cdr_buf_append_char(&b, '\t') == 0);
        } else {
            put_text(&b, NULL, false);
        }
        put_time(&b, r->end);
        cr_assert(cdr_buf_append_char(&b, '\t') == 0);
        snprintf(v, sizeof(v), "%d", r->billsec);
        put_text(&b, v, false);
        put_text(&b, r->disposition, false);
        put_text(&b, r->recording, false);
        snprintf(v, sizeof(v), "%.1f", r->mos);
        put_text(&b, r->qos ? v : NULL, false);
        snprintf(v, sizeof(v), "%.1f", r->jitter);
        put_text(&b, r->qos == 2 ? v : NULL, false);
        snprintf(v, sizeof(v), "%.1f", r->loss);
        put_text(&b, r->qos == 2 ? v : NULL, false);
        snprintf(v, sizeof(v), "{\"n\": %d}", r->n);
        put_text(&b, v, true);
    }
    fixture_copy_in(owner,
                    "COPY load (tenant_id, call_id, start_ts, store_id, sip_domain, direction, "
                    "from_uri, to_uri, did_e164, ext_number, user_id, answer_ts, end_ts, "
                    "billsec, disposition, recording_url, mos, jitter_ms, loss_pct, meta_json) "
                    "FROM STDIN",
                    b.data, b.len);
    cdr_buf_free(&b);
    res = PQexec(owner, "INSERT INTO voip_cdr SELECT * FROM load");
    cr_assert(itest_ok(res), "INSERT: %s", PQerrorMessage(owner));
    PQclear(res);
}

/* A migrated database with partitions for September to November 2025, the generated rows, and
 * a pool of two cdr_reader connections. */
static void setup(void)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&db, (const char *const[]){"migrate", NULL});
    fixture_ctl(&db, (const char *const[]){"partitions", "ensure", "--from", "2025-09", "--months",
                                           "3", NULL});
    owner = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(owner, "%s", err);
    generate();
    copy_rows(0, n_rows);
    /* Rows stored by COPY get their rollups as cdrctl gives them; /api/cdr's total reads them. */
    fixture_ctl(&db, (const char *const[]){"rollups", "rebuild", "--from", "2025-09-01", "--to",
                                           "2025-11-30", NULL});
    PQclear(PQexec(owner, "ANALYZE voip_cdr"));

    pool_fixture_create(&pf, &db);
    pool_fixture_open(&pf, 2, 10000, 0);
    pool_fixture_wait_ready(&pf, 2, DEADLINE_MS);
}

static void teardown(void)
{
    pool_fixture_destroy(&pf);
    PQfinish(owner);
    owner = NULL;
    itest_db_drop(&db);
}

TestSuite(search, .init = setup, .fini = teardown, .timeout = 300);

/* ---- running statements through the pool ------------------------------------------------ */

typedef struct answer {
    bool done;
    PGresult *res;
    char error[512];
} answer;

static void on_done(pg_job *job, const PGresult *res, const char *error, const char *sqlstate,
                    void *arg)
{
    answer *a = arg;
    (void)job;
    (void)sqlstate;
    a->done = true;
    if (res)
        a->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    snprintf(a->error, sizeof(a->error), "%s", error ? error : "");
}

static bool answered(void *arg)
{
    return ((answer *)arg)->done;
}

/* Runs 'st' as 'tenant' and returns its result (the caller PQclear()s it). */
static PGresult *run(const char *tenant, const sql_stmt *st)
{
    answer a = {0};
    pg_query q = {.tenant_id = tenant,
                  .sql = st->sql,
                  .n_params = st->n,
                  .values = st->pv,
                  .done = on_done,
                  .arg = &a};
    cr_assert(pg_pool_submit(pf.pool, &q), "submit refused");
    cr_assert(pool_fixture_run_until(&pf, answered, &a, DEADLINE_MS), "no answer");
    cr_assert(a.res, "query failed: %s", a.error);
    return a.res;
}

static query_params parse(const char *qs)
{
    query_params p;
    char param[64], err[256];
    cr_assert(params_parse(qs, CDR_ALLOWED, 0, &p, param, sizeof(param), err, sizeof(err)) == 0,
              "%s: %s", qs, err);
    return p;
}

/* The page answer for the query string 'qs' as 'tenant'. */
static json_t *page(const char *tenant, const char *qs)
{
    query_params p = parse(qs);
    sql_stmt st;
    char err[256];
    cr_assert(search_page_stmt(&p, &st, err, sizeof(err)) == 0, "%s: %s", qs, err);
    PGresult *res = run(tenant, &st);
    json_t *j = search_page_json(&p, res);
    PQclear(res);
    cr_assert(j, "%s: no answer", qs);
    return j;
}

/* ---- the oracle -------------------------------------------------------------------------- */

typedef struct spec {
    const char *qs; /* appended to sip_domain=a.example& */
    cdr_time lo, hi;
    const char *direction, *disposition, *did, *ext, *store;
} spec;

static bool matches(const row *r, int tenant, const spec *s)
{
    return r->tenant == tenant && r->start >= s->lo && r->start < s->hi &&
           (!s->direction || strcmp(r->direction, s->direction) == 0) &&
           (!s->disposition || strcmp(r->disposition, s->disposition) == 0) &&
           (!s->did || (r->did && strcmp(r->did, s->did) == 0)) &&
           (!s->ext || (r->ext && strcmp(r->ext, s->ext) == 0)) &&
           (!s->store || (r->store && strcmp(r->store, s->store) == 0));
}

static int newest_first(const void *x, const void *y)
{
    const row *a = *(const row *const *)x, *b = *(const row *const *)y;
    if (a->start != b->start)
        return a->start > b->start ? -1 : 1;
    return -strcmp(a->call_id, b->call_id);
}

/* The rows 'tenant' should see for 's', newest first; returns how many. */
static int expect_rows(int tenant, const spec *s, const row **out)
{
    int n = 0;
    for (int i = 0; i < n_rows; i++)
        if (matches(&rows[i], tenant, s))
            out[n++] = &rows[i];
    qsort(out, (size_t)n, sizeof(*out), newest_first);
    return n;
}

static void expect_str(json_t *o, const char *key, const char *want, const char *call_id)
{
    json_t *v = json_object_get(o, key);
    cr_assert(v, "%s: no %s", call_id, key);
    if (!want || !want[0])
        cr_expect(json_is_null(v), "%s: %s should be null", call_id, key);
    else
        cr_expect_str_eq(json_string_value(v) ? json_string_value(v) : "(not a string)", want,
                         "%s: %s", call_id, key);
}

static void expect_time(json_t *o, const char *key, cdr_time t, const char *call_id)
{
    char s[40] = "";
    if (t)
        cr_assert(timefmt_format_utc(t, s, sizeof(s)) > 0);
    expect_str(o, key, s, call_id);
}

static void expect_real(json_t *q, const char *key, bool present, double want, const char *id)
{
    json_t *v = json_object_get(q, key);
    if (!present) {
        cr_expect(json_is_null(v), "%s: qos.%s should be null", id, key);
        return;
    }
    cr_expect(json_is_number(v) && fabs(json_number_value(v) - want) < 1e-4, "%s: qos.%s", id, key);
}

/* The item against every field of the row it should be. */
static void expect_item(json_t *item, const row *r)
{
    const char *id = r->call_id;
    expect_str(item, "call_id", r->call_id, id);
    expect_str(item, "sip_domain", domains[r->tenant], id);
    expect_str(item, "tenant_id", tenants[r->tenant], id);
    expect_str(item, "store_id", r->store, id);
    expect_str(item, "user_id", r->user_id, id);
    expect_str(item, "direction", r->direction, id);
    expect_str(item, "from_uri", r->from_uri, id);
    expect_str(item, "to_uri", r->to_uri, id);
    expect_str(item, "did_e164", r->did, id);
    expect_str(item, "ext_number", r->ext, id);
    expect_time(item, "start_ts", r->start, id);
    expect_time(item, "answer_ts", r->answer, id);
    expect_time(item, "end_ts", r->end, id);
    cr_expect_eq(json_integer_value(json_object_get(item, "billsec")), r->billsec, "%s", id);
    expect_str(item, "disposition", r->disposition, id);
    expect_str(item, "recording_url", r->recording, id);
    json_t *q = json_object_get(item, "qos");
    if (r->qos == 0) {
        cr_expect(json_is_null(q), "%s: qos should be null", id);
    } else {
        cr_assert(json_is_object(q), "%s: qos", id);
        expect_real(q, "mos", true, r->mos, id);
        expect_real(q, "jitter_ms", r->qos == 2, r->jitter, id);
        expect_real(q, "loss_pct", r->qos == 2, r->loss, id);
    }
    json_t *meta = json_object_get(item, "meta_json");
    cr_expect(json_is_object(meta) &&
                  json_integer_value(json_object_get(meta, "n")) == (json_int_t)r->n,
              "%s: meta_json", id);
}

static void expect_page(json_t *j, const row *const *want, int n, const char *what)
{
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items), "%s: items", what);
    cr_assert_eq((int)json_array_size(items), n, "%s: %zu items, expected %d", what,
                 json_array_size(items), n);
    for (int i = 0; i < n; i++)
        expect_item(json_array_get(items, (size_t)i), want[i]);
}

static const row *want[N_ROWS + 16];

/* Page 1 and page 3 (offset) of 'page_size' for 's', items and total against the oracle. */
static void check_spec(const spec *s, int page_size)
{
    int n = expect_rows(0, s, want);
    cr_assert(n > 3 * page_size, "%s: only %d rows, the data set is too small", s->qs, n);
    for (int pg = 1; pg <= 3; pg += 2) {
        char qs[512];
        snprintf(qs, sizeof(qs), "sip_domain=a.example&page_size=%d&page=%d%s%s", page_size, pg,
                 s->qs[0] ? "&" : "", s->qs);
        json_t *j = page(TENANT_A, qs);
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), n, "%s: total %lld, want %d",
                     qs, (long long)json_integer_value(json_object_get(j, "total")), n);
        cr_expect_eq(json_integer_value(json_object_get(j, "page")), pg, "%s", qs);
        cr_expect_eq(json_integer_value(json_object_get(j, "page_size")), page_size, "%s", qs);
        cr_expect(json_is_string(json_object_get(j, "next_cursor")), "%s: next_cursor", qs);
        expect_page(j, want + (pg - 1) * page_size, page_size, qs);
        json_decref(j);
    }
}

static spec whole(void)
{
    return (spec){
        .qs = WHOLE_RANGE, .lo = at("2025-09-01T00:00:00Z"), .hi = at("2025-11-01T00:00:00Z")};
}

Test(search, no_filter_matches_oracle)
{
    spec s = whole();
    check_spec(&s, 50);
}

Test(search, each_filter_matches_oracle)
{
    spec base_spec = whole();
    spec s;

    s = base_spec;
    s.qs = WHOLE_RANGE "&direction=in";
    s.direction = "in";
    check_spec(&s, 40);

    s = base_spec;
    s.qs = WHOLE_RANGE "&disposition=BUSY";
    s.disposition = "BUSY";
    check_spec(&s, 40);

    s = base_spec;
    s.qs = WHOLE_RANGE "&did_e164=%2B390200000002";
    s.did = "+390200000002";
    check_spec(&s, 40);

    s = base_spec;
    s.qs = WHOLE_RANGE "&ext=103";
    s.ext = "103";
    check_spec(&s, 40);

    s = base_spec;
    s.qs = WHOLE_RANGE "&store_id=a0000000-0000-4000-8000-000000000002";
    s.store = stores[0][1];
    check_spec(&s, 40);

    s = base_spec;
    s.qs = WHOLE_RANGE "&store_id=a0000000-0000-4000-8000-000000000003&direction=out"
                       "&disposition=ANSWERED";
    s.store = stores[0][2];
    s.direction = "out";
    s.disposition = "ANSWERED";
    check_spec(&s, 10);
}

/* The total alone (page_size 1) for 'qs' against the oracle. */
static void check_total(const spec *s)
{
    char qs[512];
    snprintf(qs, sizeof(qs), "sip_domain=a.example&page_size=1&%s", s->qs);
    json_t *j = page(TENANT_A, qs);
    int n = expect_rows(0, s, want);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), n, "%s: total %lld, want %d", qs,
                 (long long)json_integer_value(json_object_get(j, "total")), n);
    json_decref(j);
}

/* Random ranges with edges off the hour (to the microsecond), ranges inside one hour, on the
 * hour and across the month boundary, under every filter combination the rollup answers and
 * those it cannot (DID, extension): the total always equals the oracle's count. */
Test(search, total_on_and_off_the_hour_matches_oracle)
{
    static const struct {
        const char *qs, *direction, *disposition, *did, *ext;
        int store; /* index into stores[0], -1: none */
    } filters[] = {
        {"", NULL, NULL, NULL, NULL, -1},
        {"&direction=in", "in", NULL, NULL, NULL, -1},
        {"&disposition=NO_ANSWER", NULL, "NO_ANSWER", NULL, NULL, -1},
        {"&disposition=FAILED&direction=out", "out", "FAILED", NULL, NULL, -1},
        {"&store_id=a0000000-0000-4000-8000-000000000002", NULL, NULL, NULL, NULL, 1},
        {"&store_id=a0000000-0000-4000-8000-000000000004&direction=in&disposition=ANSWERED", "in",
         "ANSWERED", NULL, NULL, 3},
        {"&did_e164=%2B390200000001", NULL, NULL, "+390200000001", NULL, -1},
        {"&ext=102&disposition=BUSY", NULL, "BUSY", NULL, "102", -1},
    };
    cdr_time base_t = at("2025-09-20T00:00:00Z");
    cdr_time span = at("2025-10-31T00:00:00Z") - base_t;
    for (int k = 0; k < 40; k++) {
        cdr_time lo = base_t + (cdr_time)(((uint64_t)rnd() << 20 | rnd()) % (uint64_t)span);
        cdr_time len;
        switch (k % 4) {
        case 0: /* inside one hour, or straddling one boundary */
            len = (cdr_time)(rnd() % 3600) * TIMEFMT_US_PER_SEC + rnd() % 1000000;
            break;
        case 1: /* whole hours */
            lo -= lo % (3600 * TIMEFMT_US_PER_SEC);
            len = (cdr_time)(1 + rnd() % 200) * 3600 * TIMEFMT_US_PER_SEC;
            break;
        default: /* days, edges anywhere */
            len = (cdr_time)(rnd() % (20 * 86400)) * TIMEFMT_US_PER_SEC + rnd() % 1000000;
            break;
        }
        if (k == 3) /* across the month boundary, edges off the hour */
            lo = at("2025-09-29T07:41:13.250001Z"), len = 3 * 86400 * TIMEFMT_US_PER_SEC + 17;
        char from[40], to[40];
        cr_assert(timefmt_format_utc(lo, from, sizeof(from)) > 0);
        cr_assert(timefmt_format_utc(lo + len, to, sizeof(to)) > 0);
        for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
            char qs[512];
            snprintf(qs, sizeof(qs), "from=%s&to=%s%s", from, to, filters[f].qs);
            spec s = {.qs = qs,
                      .lo = lo,
                      .hi = lo + len,
                      .direction = filters[f].direction,
                      .disposition = filters[f].disposition,
                      .did = filters[f].did,
                      .ext = filters[f].ext,
                      .store = filters[f].store >= 0 ? stores[0][filters[f].store] : NULL};
            check_total(&s);
        }
    }
}

/* Adds 'calls' to a bucket of the rollup 'table' ("store_day" or "store_hour") of tenant A's
 * first store, inbound, at 'key' (a day or an hour), behind the writer's back. */
static void bump_rollup(const char *table, const char *key_col, const char *key, int calls)
{
    char sql[1024], n[16];
    snprintf(n, sizeof(n), "%d", calls);
    snprintf(sql, sizeof(sql),
             "INSERT INTO voip_cdr_rollup_%s (tenant_id, store_id, %s, direction, calls) "
             "VALUES ('" TENANT_A "', 'a0000000-0000-4000-8000-000000000001', $1, 'in', $2) "
             "ON CONFLICT (tenant_id, store_id, %s, direction) "
             "DO UPDATE SET calls = voip_cdr_rollup_%s.calls + excluded.calls",
             table, key_col, key_col, table);
    const char *params[] = {key, n};
    PGresult *res = itest_query(owner, sql, 2, params);
    cr_assert(itest_ok(res), "%s", PQerrorMessage(owner));
    PQclear(res);
}

/* The total of 'qs' as cdr-query answers it. */
static long long total_of(const char *range_qs)
{
    char qs[512];
    snprintf(qs, sizeof(qs), "sip_domain=a.example&page_size=1&%s", range_qs);
    json_t *j = page(TENANT_A, qs);
    long long total = (long long)json_integer_value(json_object_get(j, "total"));
    json_decref(j);
    return total;
}

/* Where each part of a range is read: a whole UTC day from the daily rollup, the whole hours
 * around it from the hourly one, the rest from voip_cdr. A bucket changed behind the writer's
 * back moves the total of exactly the ranges that read it. */
Test(search, total_reads_days_hours_and_edges_where_they_are_whole)
{
    spec day = {.qs = "from=2025-10-09T21:00:00Z&to=2025-10-11T03:00:00Z",
                .lo = at("2025-10-09T21:00:00Z"),
                .hi = at("2025-10-11T03:00:00Z")};
    spec hours = {.qs = "from=2025-10-10T05:00:00Z&to=2025-10-10T20:00:00Z",
                  .lo = at("2025-10-10T05:00:00Z"),
                  .hi = at("2025-10-10T20:00:00Z")};
    spec edge = {.qs = "from=2025-10-10T10:00:00.5Z&to=2025-10-10T20:00:00Z",
                 .lo = at("2025-10-10T10:00:00.5Z"),
                 .hi = at("2025-10-10T20:00:00Z")};
    spec tail = {.qs = "from=2025-10-09T21:00:00Z&to=2025-10-10T00:00:00Z",
                 .lo = at("2025-10-09T21:00:00Z"),
                 .hi = at("2025-10-10T00:00:00Z")};
    check_total(&day);
    check_total(&hours);
    check_total(&edge);
    check_total(&tail);
    bump_rollup("store_day", "day", "2025-10-10", 1000);
    bump_rollup("store_hour", "hour", "2025-10-10T10:00:00Z", 100);
    bump_rollup("store_hour", "hour", "2025-10-09T22:00:00Z", 10);
    /* 2025-10-10 whole: its day row (not its hours); 21:00-24:00 the day before: its hours. */
    cr_expect_eq(total_of(day.qs), expect_rows(0, &day, want) + 1000 + 10,
                 "the whole day and the hours before it");
    /* No whole day: the hour 10:00 from the hourly rollup. */
    cr_expect_eq(total_of(hours.qs), expect_rows(0, &hours, want) + 100, "the whole hours");
    /* 10:00 only partly in the range: counted raw, neither bucket read. */
    cr_expect_eq(total_of(edge.qs), expect_rows(0, &edge, want), "the partial hour");
    cr_expect_eq(total_of(tail.qs), expect_rows(0, &tail, want) + 10, "hours before a day");
}

Test(search, date_only_range_in_rome_includes_the_to_day)
{
    /* 2025-09-28 .. 2025-10-26 in Rome: from 2025-09-27T22:00Z (CEST) to 2025-10-26T23:00Z
     * (CET), across the September/October boundary. */
    spec s = {.qs = "from=2025-09-28&to=2025-10-26&tz=Europe/Rome",
              .lo = at("2025-09-27T22:00:00Z"),
              .hi = at("2025-10-26T23:00:00Z")};
    check_spec(&s, 50);
    int n = expect_rows(0, &s, want);
    /* The edges: the last page holds the first instant of the range, the first page the last
     * instant of the to day, and the rows just outside are absent. */
    cr_assert_eq(want[0]->start, at("2025-10-26T22:59:59.5Z"));
    cr_assert_eq(want[n - 1]->start, at("2025-09-27T22:00:00Z"));
    json_t *j = page(TENANT_A, "sip_domain=a.example&page_size=1&from=2025-09-28&to=2025-10-26"
                               "&tz=Europe/Rome");
    expect_page(j, want, 1, "first of the Rome range");
    json_decref(j);

    spec u = {.qs = "from=2025-09-28&to=2025-10-26",
              .lo = at("2025-09-28T00:00:00Z"),
              .hi = at("2025-10-27T00:00:00Z")};
    check_spec(&u, 50);
}

Test(search, datetime_range_from_inclusive_to_exclusive)
{
    spec s = {.qs = "from=2025-09-29T10:30:00%2B02:00&to=2025-10-01T00:00:00Z&tz=Europe/Rome",
              .lo = at("2025-09-29T08:30:00Z"),
              .hi = at("2025-10-01T00:00:00Z")};
    check_spec(&s, 10);
    int n = expect_rows(0, &s, want);
    cr_assert_eq(want[0]->start, at("2025-09-30T23:59:59.999999Z"), "the last instant is in");
    (void)n;
    /* A month boundary crossed by a datetime range, the to instant being a row's start. */
    spec m = {.qs = "from=2025-09-30T12:00:00Z&to=2025-10-02T00:00:00.000000%2B00:00",
              .lo = at("2025-09-30T12:00:00Z"),
              .hi = at("2025-10-02T00:00:00Z")};
    check_spec(&m, 10);
}

/* Walks every page of 'qs' by cursor; returns the call ids in order (n in '*count'). Between
 * pages, 'between' runs when not NULL. */
static char (*walk(const char *qs, int page_size, int *count, void (*between)(int)))[32]
{
    char(*ids)[32] = calloc(N_ROWS + 1000, 32);
    cr_assert(ids);
    int n = 0;
    char cursor[CURSOR_MAX] = "";
    for (int pg = 0;; pg++) {
        char q[1024];
        snprintf(q, sizeof(q), "sip_domain=a.example&%s&page_size=%d%s%s", qs, page_size,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *j = page(TENANT_A, q);
        json_t *items = json_object_get(j, "items");
        for (size_t i = 0; i < json_array_size(items); i++) {
            cr_assert(n < N_ROWS + 1000);
            snprintf(ids[n++], 32, "%s",
                     json_string_value(json_object_get(json_array_get(items, i), "call_id")));
        }
        json_t *next = json_object_get(j, "next_cursor");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        cr_assert_eq(json_array_size(items), (size_t)page_size, "a full page before the last");
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(j);
        if (between)
            between(pg);
    }
    *count = n;
    return ids;
}

Test(search, cursor_walk_returns_every_row_once_in_order)
{
    spec s = whole();
    int n = expect_rows(0, &s, want);
    int got = 0;
    char(*ids)[32] = walk(WHOLE_RANGE, 97, &got, NULL);
    cr_assert_eq(got, n, "walked %d rows, expected %d", got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(ids[i], want[i]->call_id, "position %d", i);
    free(ids);

    /* A filtered walk too, whose last page is exactly full. */
    spec f = whole();
    f.ext = "101";
    n = expect_rows(0, &f, want);
    ids = walk(WHOLE_RANGE "&ext=101", n / 4 > 0 ? n / 4 : 1, &got, NULL);
    cr_assert_eq(got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(ids[i], want[i]->call_id, "position %d", i);
    free(ids);
}

Test(search, rows_sharing_a_start_page_by_call_id)
{
#define TIE_RANGE "from=2025-10-10T10:10:10Z&to=2025-10-10T10:10:11Z"
    spec s = {.qs = TIE_RANGE, .lo = at("2025-10-10T10:10:10Z"), .hi = at("2025-10-10T10:10:11Z")};
    int n = expect_rows(0, &s, want);
    cr_assert_geq(n, 5);
    int got = 0;
    char(*ids)[32] = walk(TIE_RANGE, 2, &got, NULL);
    cr_assert_eq(got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(ids[i], want[i]->call_id, "position %d", i);
    free(ids);
    for (int pg = 1; pg <= 3; pg++) {
        char qs[256];
        snprintf(qs, sizeof(qs), "sip_domain=a.example&" TIE_RANGE "&page_size=2&page=%d", pg);
        json_t *j = page(TENANT_A, qs);
        int k = n - (pg - 1) * 2 < 2 ? n - (pg - 1) * 2 : 2;
        expect_page(j, want + (pg - 1) * 2, k, qs);
        json_decref(j);
    }
}

/* New rows between pages: three newer than anything (the head) and one in the past. */
static void insert_some(int pg)
{
    for (int k = 0; k < 4; k++) {
        char id[32];
        snprintf(id, sizeof(id), "new%03d%d", pg, k);
        cdr_time start = k < 3 ? at("2025-10-31T12:00:00Z") + (cdr_time)(pg * 10 + k) * 1000000
                               : at("2025-09-21T00:00:00Z") + (cdr_time)pg * 1000000;
        /* A scratch slot past the generated rows: not part of the oracle. */
        make_row(&rows[N_ROWS + 15], 0, id, start, 100000 + pg * 10 + k);
        copy_rows(N_ROWS + 15, N_ROWS + 16);
    }
}

Test(search, cursor_walk_while_rows_arrive)
{
    spec s = whole();
    int n = expect_rows(0, &s, want);
    int got = 0;
    char(*ids)[32] = walk(WHOLE_RANGE, 150, &got, insert_some);
    /* Every row that existed at the start exactly once, in order; the ones that arrived at the
     * head never show up behind the cursor, those in the past may. */
    int k = 0;
    for (int i = 0; i < got; i++) {
        if (strncmp(ids[i], "new", 3) == 0) {
            cr_assert(strcmp(ids[i] + strlen(ids[i]) - 1, "3") == 0,
                      "a row inserted at the head appeared: %s", ids[i]);
            continue;
        }
        cr_assert(k < n, "more rows than existed");
        cr_assert_str_eq(ids[i], want[k]->call_id, "position %d", k);
        k++;
    }
    cr_assert_eq(k, n, "saw %d of the %d rows that existed", k, n);
    cr_assert(got > n, "the rows inserted in the past were not seen");
    free(ids);
}

Test(search, offset_page_two_equals_cursor_page_two)
{
    json_t *p1 = page(TENANT_A, "sip_domain=a.example&" WHOLE_RANGE "&page_size=25");
    const char *cur = json_string_value(json_object_get(p1, "next_cursor"));
    cr_assert(cur);
    char q[1024];
    snprintf(q, sizeof(q), "sip_domain=a.example&" WHOLE_RANGE "&page_size=25&cursor=%s", cur);
    json_t *byc = page(TENANT_A, q);
    json_t *byo = page(TENANT_A, "sip_domain=a.example&" WHOLE_RANGE "&page_size=25&page=2");
    cr_assert(json_equal(json_object_get(byc, "items"), json_object_get(byo, "items")),
              "cursor and offset disagree on page 2");
    cr_assert_eq(json_array_size(json_object_get(byo, "items")), 25);
    cr_assert_eq(json_integer_value(json_object_get(byc, "total")),
                 json_integer_value(json_object_get(byo, "total")));
    json_decref(p1);
    json_decref(byc);
    json_decref(byo);

    /* Past the end: no items, the total still there, no cursor. */
    json_t *end = page(TENANT_A, "sip_domain=a.example&" WHOLE_RANGE "&page_size=500&page=100");
    cr_expect_eq(json_array_size(json_object_get(end, "items")), 0);
    spec s = whole();
    cr_expect_eq(json_integer_value(json_object_get(end, "total")), expect_rows(0, &s, want));
    cr_expect(json_is_null(json_object_get(end, "next_cursor")));
    json_decref(end);
}

Test(search, tenant_isolation)
{
    /* Tenant A's token, tenant B's store: nothing. */
    json_t *j = page(TENANT_A, "sip_domain=a.example&" WHOLE_RANGE "&store_id=" /* B's */
                               "b0000000-0000-4000-8000-000000000001");
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "total")), 0);
    json_decref(j);

    /* Every row of an unfiltered page is A's, and the total is A's alone. */
    j = page(TENANT_A, "sip_domain=a.example&" WHOLE_RANGE "&page_size=500");
    json_t *items = json_object_get(j, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items, i), "tenant_id")),
                         TENANT_A);
    spec s = whole();
    cr_assert_eq(json_integer_value(json_object_get(j, "total")), expect_rows(0, &s, want));
    json_decref(j);

    /* B's call_id with A's token: not found; with B's: found. */
    sql_stmt st;
    char err[256];
    cr_assert(search_one_stmt("cb000042", &st, err, sizeof(err)) == 0, "%s", err);
    PGresult *res = run(TENANT_A, &st);
    cr_assert_null(search_one_json(res));
    PQclear(res);
    res = run(TENANT_B, &st);
    json_t *one = search_one_json(res);
    PQclear(res);
    cr_assert(one);
    expect_item(one, &rows[PER_TENANT + 42]);
    json_decref(one);
}

Test(search, one_is_the_most_recent_of_a_shared_call_id)
{
    row *r = &rows[N_ROWS];
    make_row(&r[0], 0, "shared-1", at("2025-10-02T10:00:00Z"), 900001);
    make_row(&r[1], 0, "shared-1", at("2025-10-05T10:00:00.25Z"), 900002);
    make_row(&r[2], 0, "shared-1", at("2025-10-03T10:00:00Z"), 900003);
    make_row(&r[3], 1, "shared-1", at("2025-10-20T10:00:00Z"), 900004); /* B's, newer */
    copy_rows(N_ROWS, N_ROWS + 4);
    sql_stmt st;
    char err[256];
    cr_assert(search_one_stmt("shared-1", &st, err, sizeof(err)) == 0, "%s", err);
    PGresult *res = run(TENANT_A, &st);
    json_t *one = search_one_json(res);
    PQclear(res);
    cr_assert(one);
    expect_item(one, &r[1]);
    json_decref(one);

    cr_assert(search_one_stmt("no-such-call", &st, err, sizeof(err)) == 0, "%s", err);
    res = run(TENANT_A, &st);
    cr_assert_null(search_one_json(res));
    PQclear(res);
}

Test(search, malformed_cursor_names_the_parameter)
{
    query_params p = parse("sip_domain=a.example&cursor=AAAA");
    sql_stmt st;
    char err[256] = "";
    cr_assert_eq(search_page_stmt(&p, &st, err, sizeof(err)), -1);
    cr_assert(strncmp(err, "cursor", 6) == 0, "%s", err);
}

Test(search, csv_header_rows_and_quoting)
{
    cdr_buf b = {0};
    cr_assert(search_csv_header(&b) == 0);
    cr_assert_str_eq(b.data, "call_id,sip_domain,tenant_id,store_id,user_id,direction,from_uri,"
                             "to_uri,did_e164,ext_number,start_ts,answer_ts,end_ts,billsec,"
                             "disposition,recording_url,mos,jitter_ms,loss_pct,meta_json\r\n");
    cdr_buf_reset(&b);

    query_params p = parse("sip_domain=a.example&" WHOLE_RANGE "&format=csv");
    sql_stmt st;
    char err[256];
    cr_assert(search_csv_stmt(&p, &st, err, sizeof(err)) == 0, "%s", err);
    PGresult *res = run(TENANT_A, &st);
    spec all = whole();
    int n_all = expect_rows(0, &all, want);
    cr_assert_eq(PQntuples(res), n_all, "every match, not a page");
    int special = -1;
    for (int i = 0; i < n_all; i++)
        if (strcmp(want[i]->call_id, rows[6].call_id) == 0)
            special = i;
    cr_assert(special >= 0);
    cr_assert(search_csv_row(res, special, &b) == 0);
    char start[40];
    cr_assert(timefmt_format_utc(rows[6].start, start, sizeof(start)) > 0);
    cr_assert(strstr(b.data, ",\"\"\"Rossi, Mario\"\" <sip:100@a.example>\","),
              "quoted from_uri missing: %s", b.data);
    cr_assert(strstr(b.data, start), "start_ts %s missing: %s", start, b.data);
    cr_assert(strncmp(b.data, "ca000006,a.example," TENANT_A ",", 20) == 0, "%s", b.data);
    cr_assert(strstr(b.data, ",\"{\"\"n\"\": 6}\"\r\n"), "meta_json quoted: %s", b.data);
    size_t len = strlen(b.data);
    cr_assert(len >= 2 && strcmp(b.data + len - 2, "\r\n") == 0);
    /* The rows are in the page order. */
    cr_assert_str_eq(PQgetvalue(res, 0, 0), want[0]->call_id);
    cr_assert_str_eq(PQgetvalue(res, n_all - 1, 0), want[n_all - 1]->call_id);
    PQclear(res);
    cdr_buf_free(&b);
}
