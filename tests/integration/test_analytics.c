/* test_analytics.c - the KPI statements against a real PostgreSQL, read as cdr_reader through
 * the pool: a generated two-tenant data set is stored, the rollups rebuilt, and every answer is
 * compared with the KPIs computed here from the generated rows (DESIGN.md's definitions), on
 * ranges with edges on and off the hour, shorter than an hour (all raw rows), date-only in
 * Europe/Rome, across a month boundary, and for tenant isolation. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "itest.h"
#include "params.h"
#include "pg_pool.h"

#define TENANT_A    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TENANT_B    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define DOMAIN_A    "a.example.it"
#define DOMAIN_B    "b.example.it"
#define N_ROWS      1500 /* per tenant */
#define N_STORES    3
#define N_EXTS      6
#define N_NUMBERS   25
#define DEADLINE_MS 20000
#define EPS         1e-6

/* One generated CDR. */
typedef struct row {
    int tenant;              /* 0 = A, 1 = B */
    long long start, answer; /* epoch seconds; answer 0 = none */
    int store;               /* -1 = none */
    int ext;                 /* -1 = none */
    bool in;
    int disp; /* 0 ANSWERED, 1 NO_ANSWER, 2 BUSY, 3 FAILED */
    int billsec;
    int number;
    double mos; /* 0 = none */
} row;

static const char *const disp_name[] = {"ANSWERED", "NO_ANSWER", "BUSY", "FAILED"};
static row rows[2 * N_ROWS];
static itest_db db;
static struct event_base *base;
static struct event *tick;
static pg_pool *pool;

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

static long long utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (long long)timegm(&tm);
}

static void store_uuid(int tenant, int s, char *buf, size_t len)
{
    snprintf(buf, len, "%c0000000-0000-4000-8000-00000000000%c", tenant ? 'b' : 'a', '1' + s % 9);
}

static void user_uuid(int tenant, int e, char *buf, size_t len)
{
    snprintf(buf, len, "%c1111111-0000-4000-8000-00000000000%c", tenant ? 'b' : 'a', '1' + e % 9);
}

static void ext_name(int e, char *buf, size_t len)
{
    snprintf(buf, len, "%d", 200 + e);
}

static void number(int n, char *buf, size_t len)
{
    snprintf(buf, len, "+39021234%04d", n);
}

static void exec_ok(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *res = itest_query(c, sql, n, params);
    cr_assert(itest_ok(res), "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

static void ctl(const char *const *args)
{
    char err[1024];
    char url_var[ITEST_URL_MAX + 16];
    snprintf(url_var, sizeof(url_var), "CDR_PG_URL=%s", db.url);
    itest_proc p;
    cr_assert(itest_run("cdrctl", args, (const char *const[]){url_var, NULL}, 120, &p, err,
                        sizeof(err)) == 0,
              "%s", err);
    cr_assert_eq(p.status, 0, "cdrctl %s %s: %s", args[0], args[1] ? args[1] : "", p.err);
    itest_proc_free(&p);
}

/* Rows from 2025-09-28 20:00Z to 2025-10-02 04:00Z (80 hours, across a month boundary). */
static void generate(void)
{
    long long t0 = utc(2025, 9, 28, 20, 0, 0);
    for (int i = 0; i < 2 * N_ROWS; i++) {
        row *r = &rows[i];
        r->tenant = i >= N_ROWS;
        r->start = t0 + rnd(80 * 3600);
        r->store = (int)rnd(N_STORES + 1) - 1;
        r->ext = (int)rnd(N_EXTS + 1) - 1;
        r->in = rnd(3) != 0;
        r->disp = rnd(2) ? 0 : 1 + (int)rnd(3);
        r->number = (int)rnd(N_NUMBERS);
        if (r->disp == 0) {
            r->answer = r->start + rnd(40);
            r->billsec = (int)rnd(900);
        }
        r->mos = rnd(10) < 7 ? 1.0 + 0.25 * rnd(17) : 0;
    }
}

static void insert_rows(PGconn *c)
{
    static const char sql[] =
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, store_id, sip_domain, direction,"
        " from_uri, to_uri, ext_number, user_id, answer_ts, end_ts, billsec, disposition, mos)"
        " VALUES ($1, $2, to_timestamp($3::bigint), $4, $5, $6, $7, $8, $9, $10,"
        " to_timestamp($11::bigint), to_timestamp($12::bigint), $13::int, $14, $15::real)";
    exec_ok(c, "BEGIN", 0, NULL);
    for (int i = 0; i < 2 * N_ROWS; i++) {
        const row *r = &rows[i];
        char call[32], start[24], store[40], ext[16], user[40], ans[24], end[24], bs[16], num[24],
            mos[16];
        snprintf(call, sizeof(call), "call-%d", i);
        snprintf(start, sizeof(start), "%lld", r->start);
        if (r->store >= 0)
            store_uuid(r->tenant, r->store, store, sizeof(store));
        if (r->ext >= 0) {
            ext_name(r->ext, ext, sizeof(ext));
            user_uuid(r->tenant, r->ext, user, sizeof(user));
        }
        snprintf(ans, sizeof(ans), "%lld", r->answer);
        snprintf(end, sizeof(end), "%lld", (r->answer ? r->answer : r->start) + r->billsec + 3);
        snprintf(bs, sizeof(bs), "%d", r->billsec);
        number(r->number, num, sizeof(num));
        snprintf(mos, sizeof(mos), "%.2f", r->mos);
        /* the last extension has no user_id */
        bool has_user = r->ext >= 0 && r->ext != N_EXTS - 1;
        const char *v[15] = {r->tenant ? TENANT_B : TENANT_A,
                             call,
                             start,
                             r->store >= 0 ? store : NULL,
                             r->tenant ? DOMAIN_B : DOMAIN_A,
                             r->in ? "in" : "out",
                             r->in ? num : "sip:200@pbx",
                             r->in ? "+390200000000" : num,
                             r->ext >= 0 ? ext : NULL,
                             has_user ? user : NULL,
                             r->answer ? ans : NULL,
                             end,
                             bs,
                             disp_name[r->disp],
                             r->mos > 0 ? mos : NULL};
        exec_ok(c, sql, 15, v);
    }
    /* names for the first two stores of each tenant; the third stays unknown */
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 2; s++) {
            char id[40], name[32];
            store_uuid(t, s, id, sizeof(id));
            snprintf(name, sizeof(name), "Store %c%d", t ? 'B' : 'A', s + 1);
            const char *v[3] = {t ? TENANT_B : TENANT_A, id, name};
            exec_ok(c, "INSERT INTO voip_stores (tenant_id, store_id, name) VALUES ($1, $2, $3)", 3,
                    v);
        }
    exec_ok(c, "COMMIT", 0, NULL);
}

static void setup(void)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    ctl((const char *const[]){"migrate", NULL});
    ctl((const char *const[]){"partitions", "ensure", "--from", "2025-09", "--months", "2", NULL});
    PGconn *c = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(c, "%s", err);
    generate();
    insert_rows(c);
    PQfinish(c);
    ctl((const char *const[]){"rollups", "rebuild", "--from", "2025-09-28", "--to", "2025-10-02",
                              NULL});
    char reader_url[ITEST_URL_MAX];
    cr_assert(itest_db_url(&db, "cdr_reader", reader_url, sizeof(reader_url)) == 0);
    base = event_base_new();
    cr_assert(base);
    tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);
    pg_pool_config cfg = {.conninfo = reader_url, .size = 1, .statement_timeout_ms = 10000};
    pool = pg_pool_create(base, &cfg);
    cr_assert(pool);
}

static void teardown(void)
{
    pg_pool_destroy(pool);
    pool = NULL;
    if (tick)
        event_free(tick);
    tick = NULL;
    if (base)
        event_base_free(base);
    base = NULL;
    itest_db_drop(&db);
}

TestSuite(analytics, .init = setup, .fini = teardown, .timeout = 300);

/* What a job answered: the JSON of analytics_json, or the error. */
typedef struct answer {
    bool done;
    char error[512];
    json_t *json;
    analytics_kind kind;
    const query_params *p;
} answer;

static void on_done(pg_job *job, const PGresult *res, const char *error, const char *sqlstate,
                    void *arg)
{
    answer *a = arg;
    (void)job;
    (void)sqlstate;
    a->done = true;
    if (error)
        snprintf(a->error, sizeof(a->error), "%s", error);
    else
        a->json = analytics_json(a->kind, a->p, res);
}

/* Runs 'kind' for the query string 'qs' as 'tenant' (the pool's tenant; 'stmt_tenant' is put
 * in the statement's tenant parameter when not NULL) and returns the answer. */
static json_t *ask_as(analytics_kind kind, const char *tenant, const char *stmt_tenant,
                      const char *qs)
{
    static query_params p;
    char param[64], err[256];
    cr_assert(params_parse(qs, P_SIP_DOMAIN | P_FROM | P_TO | P_TZ | P_STORE, 0, &p, param,
                           sizeof(param), err, sizeof(err)) == 0,
              "%s: %s", qs, err);
    static sql_stmt st;
    cr_assert(analytics_stmt(kind, &p, &st, err, sizeof(err)) == 0, "%s", err);
    if (stmt_tenant) {
        snprintf(st.values[0], sizeof(st.values[0]), "%s", stmt_tenant);
        st.pv[0] = st.values[0];
    }
    answer a = {.kind = kind, .p = &p};
    pg_query q = {.tenant_id = tenant,
                  .sql = st.sql,
                  .n_params = st.n,
                  .values = st.pv,
                  .done = on_done,
                  .arg = &a};
    cr_assert(pg_pool_submit(pool, &q));
    int64_t end = itest_now_ms() + DEADLINE_MS;
    while (!a.done && itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    cr_assert(a.done, "no answer for %s", qs);
    cr_assert(!a.error[0], "%s: %s", qs, a.error);
    cr_assert(a.json, "no JSON for %s", qs);
    return a.json;
}

static json_t *ask(analytics_kind kind, const char *tenant, const char *qs)
{
    return ask_as(kind, tenant, NULL, qs);
}

/* The oracle's measures of a set of rows. */
typedef struct agg {
    long long total, in_calls, in_ans, out_calls, out_ans, ans, billsec, ring, mos_n;
    double mos_sum;
    long long user_ts;
    int user_ext; /* the extension whose user_id was seen last, -1 = none */
} agg;

static void add(agg *g, const row *r)
{
    g->total++;
    if (r->in) {
        g->in_calls++;
        g->in_ans += r->disp == 0;
    } else {
        g->out_calls++;
        g->out_ans += r->disp == 0;
    }
    if (r->disp == 0) {
        g->ans++;
        g->billsec += r->billsec;
        g->ring += r->answer - r->start;
    }
    if (r->mos > 0) {
        g->mos_sum += r->mos;
        g->mos_n++;
    }
}

static bool in_range(const row *r, int tenant, long long lo, long long hi, int store)
{
    return r->tenant == tenant && r->start >= lo && r->start < hi &&
           (store == -2 || r->store == store);
}

/* A missed inbound call of number n at t is due when no ANSWERED call with n started after t. */
static bool due(int tenant, int n, long long t)
{
    for (int i = 0; i < 2 * N_ROWS; i++) {
        const row *r = &rows[i];
        if (r->tenant == tenant && r->disp == 0 && r->number == n && r->start > t)
            return false;
    }
    return true;
}

static void expect_num(json_t *o, const char *key, bool present, double want, const char *ctx)
{
    json_t *v = json_object_get(o, key);
    cr_assert(v, "%s: %s missing", ctx, key);
    if (!present) {
        cr_expect(json_is_null(v), "%s: %s should be null", ctx, key);
        return;
    }
    cr_assert(json_is_number(v), "%s: %s is not a number", ctx, key);
    double got = json_number_value(v);
    cr_expect(fabs(got - want) <= EPS * (1 + fabs(want)), "%s: %s = %.9f, want %.9f", ctx, key, got,
              want);
}

static void expect_int(json_t *o, const char *key, long long want, const char *ctx)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s: %s is not an integer", ctx, key);
    cr_expect_eq(json_integer_value(v), want, "%s: %s = %lld, want %lld", ctx, key,
                 (long long)json_integer_value(v), want);
}

/* Checks the summary of tenant 't' over [lo, hi) and store 'store' (-2 = all, -1 = none). */
static void check_summary(int t, const char *qs, long long lo, long long hi, int store)
{
    agg g = {0};
    long long last_missed[N_NUMBERS];
    for (int n = 0; n < N_NUMBERS; n++)
        last_missed[n] = -1;
    for (int i = 0; i < 2 * N_ROWS; i++) {
        const row *r = &rows[i];
        if (!in_range(r, t, lo, hi, store))
            continue;
        add(&g, r);
        if (r->in && r->disp != 0 && r->start > last_missed[r->number])
            last_missed[r->number] = r->start;
    }
    long long dues = 0;
    for (int n = 0; n < N_NUMBERS; n++)
        if (last_missed[n] >= 0 && due(t, n, last_missed[n]))
            dues++;
    json_t *j = ask(ANALYTICS_SUMMARY, t ? TENANT_B : TENANT_A, qs);
    cr_assert(g.total > 0 || store != -2, "%s: the range holds no rows", qs);
    expect_int(j, "total_calls", g.total, qs);
    expect_num(j, "answered_rate", g.in_calls > 0, (double)g.in_ans / (double)g.in_calls, qs);
    expect_num(j, "asr", g.out_calls > 0, (double)g.out_ans / (double)g.out_calls, qs);
    expect_num(j, "avg_handle_time_sec", g.ans > 0, (double)g.billsec / (double)g.ans, qs);
    expect_num(j, "avg_ring_time_sec", g.ans > 0, (double)g.ring / (double)g.ans, qs);
    expect_int(j, "missed_calls", g.in_calls - g.in_ans, qs);
    expect_int(j, "callbacks_due", dues, qs);
    json_decref(j);
}

static void check_by_store(int t, const char *qs, long long lo, long long hi)
{
    agg g[N_STORES + 1];
    memset(g, 0, sizeof(g));
    for (int i = 0; i < 2 * N_ROWS; i++)
        if (in_range(&rows[i], t, lo, hi, -2))
            add(&g[rows[i].store + 1], &rows[i]);
    int groups = 0;
    for (int s = 0; s <= N_STORES; s++)
        groups += g[s].total > 0;
    json_t *j = ask(ANALYTICS_BY_STORE, t ? TENANT_B : TENANT_A, qs);
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items), "%s: no items", qs);
    cr_assert_eq(json_array_size(items), (size_t)groups, "%s: %zu stores, want %d", qs,
                 json_array_size(items), groups);
    long long prev = -1;
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        json_t *id = json_object_get(it, "store_id");
        int s = -1;
        if (!json_is_null(id)) {
            for (int c = 0; c < N_STORES; c++) {
                char u[40];
                store_uuid(t, c, u, sizeof(u));
                if (json_is_string(id) && strcmp(json_string_value(id), u) == 0)
                    s = c;
            }
            cr_assert(s >= 0, "%s: store %s is not the tenant's", qs, json_string_value(id));
        }
        char ctx[300];
        snprintf(ctx, sizeof(ctx), "%s store %d", qs, s);
        json_t *name = json_object_get(it, "store_name");
        if (s == 0 || s == 1) {
            char want[32];
            snprintf(want, sizeof(want), "Store %c%d", t ? 'B' : 'A', s + 1);
            cr_expect(json_is_string(name) && strcmp(json_string_value(name), want) == 0,
                      "%s: store_name", ctx);
        } else {
            cr_expect(json_is_null(name), "%s: store_name should be null", ctx);
        }
        const agg *a = &g[s + 1];
        expect_int(it, "total", a->total, ctx);
        expect_int(it, "answered", a->ans, ctx);
        expect_int(it, "missed", a->in_calls - a->in_ans, ctx);
        expect_num(it, "aht", a->ans > 0, (double)a->billsec / (double)a->ans, ctx);
        expect_num(it, "asr", a->out_calls > 0, (double)a->out_ans / (double)a->out_calls, ctx);
        long long total = json_integer_value(json_object_get(it, "total"));
        cr_expect(prev < 0 || total <= prev, "%s: not ordered by total", ctx);
        prev = total;
    }
    json_decref(j);
}

static void check_by_agent(int t, const char *qs, long long lo, long long hi, int store)
{
    agg g[N_EXTS];
    memset(g, 0, sizeof(g));
    for (int i = 0; i < 2 * N_ROWS; i++)
        if (rows[i].ext >= 0 && in_range(&rows[i], t, lo, hi, store))
            add(&g[rows[i].ext], &rows[i]);
    int groups = 0;
    for (int e = 0; e < N_EXTS; e++)
        groups += g[e].total > 0;
    json_t *j = ask(ANALYTICS_BY_AGENT, t ? TENANT_B : TENANT_A, qs);
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items), "%s: no items", qs);
    cr_assert_eq(json_array_size(items), (size_t)groups, "%s: %zu agents, want %d", qs,
                 json_array_size(items), groups);
    long long prev = -1;
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        json_t *ext = json_object_get(it, "ext_number");
        cr_assert(json_is_string(ext), "%s: ext_number", qs);
        int e = atoi(json_string_value(ext)) - 200;
        cr_assert(e >= 0 && e < N_EXTS, "%s: unknown ext %s", qs, json_string_value(ext));
        char ctx[300];
        snprintf(ctx, sizeof(ctx), "%s ext %d", qs, e);
        json_t *user = json_object_get(it, "user_id");
        if (e == N_EXTS - 1) {
            cr_expect(json_is_null(user), "%s: user_id should be null", ctx);
        } else {
            char want[40];
            user_uuid(t, e, want, sizeof(want));
            cr_expect(json_is_string(user) && strcmp(json_string_value(user), want) == 0,
                      "%s: user_id", ctx);
        }
        const agg *a = &g[e];
        expect_int(it, "total", a->total, ctx);
        expect_int(it, "answered", a->ans, ctx);
        expect_int(it, "missed", a->in_calls - a->in_ans, ctx);
        expect_num(it, "aht", a->ans > 0, (double)a->billsec / (double)a->ans, ctx);
        expect_num(it, "avg_mos", a->mos_n > 0, a->mos_sum / (double)a->mos_n, ctx);
        long long total = json_integer_value(json_object_get(it, "total"));
        cr_expect(prev < 0 || total <= prev, "%s: not ordered by total", ctx);
        prev = total;
    }
    json_decref(j);
}

/* The ranges: each query string with the instants it stands for. */
typedef struct range {
    const char *qs;
    long long lo, hi;
} range;

static range ranges[7];

static void make_ranges(void)
{
    int k = 0;
    /* edges on the hour: rollup only */
    ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-09-29T00:00:00Z&to=2025-10-01T06:00:00Z",
                utc(2025, 9, 29, 0, 0, 0), utc(2025, 10, 1, 6, 0, 0)};
    /* edges off the hour, across the month boundary: mostly rollup */
    ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-09-29T03:17:45Z&to=2025-10-01T19:42:10Z",
                utc(2025, 9, 29, 3, 17, 45), utc(2025, 10, 1, 19, 42, 10)};
    /* inside one hour: raw only */
    ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-09-30T10:05:00Z&to=2025-09-30T10:55:30Z",
                utc(2025, 9, 30, 10, 5, 0), utc(2025, 9, 30, 10, 55, 30)};
    /* under an hour across an hour boundary: raw only */
    ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-09-30T23:20:00Z&to=2025-10-01T00:40:00Z",
                utc(2025, 9, 30, 23, 20, 0), utc(2025, 10, 1, 0, 40, 0)};
    /* an offset, not UTC, crossing the month boundary */
    ranges[k++] = (range){"sip_domain=" DOMAIN_A
                          "&from=2025-09-30T15:30:00%2B02:00&to=2025-10-01T10:10:00%2B02:00",
                          utc(2025, 9, 30, 13, 30, 0), utc(2025, 10, 1, 8, 10, 0)};
    /* date-only days of Europe/Rome (UTC+2): 2025-09-30 00:00+02 .. 2025-10-02 00:00+02 */
    ranges[k++] = (range){"sip_domain=" DOMAIN_A "&from=2025-09-30&to=2025-10-01&tz=Europe/Rome",
                          utc(2025, 9, 29, 22, 0, 0), utc(2025, 10, 1, 22, 0, 0)};
    /* date-only UTC days: whole days of the extension rollup */
    ranges[k++] = (range){"sip_domain=" DOMAIN_A "&from=2025-09-29&to=2025-09-30",
                          utc(2025, 9, 29, 0, 0, 0), utc(2025, 10, 1, 0, 0, 0)};
}

Test(analytics, summary_matches_the_oracle_on_every_range)
{
    make_ranges();
    for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++)
        check_summary(0, ranges[k].qs, ranges[k].lo, ranges[k].hi, -2);
}

Test(analytics, summary_with_a_store_matches_the_oracle)
{
    make_ranges();
    char qs[512], id[40];
    store_uuid(0, 1, id, sizeof(id));
    for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
        snprintf(qs, sizeof(qs), "%s&store_id=%s", ranges[k].qs, id);
        check_summary(0, qs, ranges[k].lo, ranges[k].hi, 1);
    }
}

Test(analytics, by_store_matches_the_oracle)
{
    make_ranges();
    for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++)
        check_by_store(0, ranges[k].qs, ranges[k].lo, ranges[k].hi);
}

Test(analytics, by_agent_matches_the_oracle)
{
    make_ranges();
    for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++)
        check_by_agent(0, ranges[k].qs, ranges[k].lo, ranges[k].hi, -2);
    char qs[512], id[40];
    store_uuid(0, 2, id, sizeof(id));
    snprintf(qs, sizeof(qs), "%s&store_id=%s", ranges[1].qs, id);
    check_by_agent(0, qs, ranges[1].lo, ranges[1].hi, 2);
}

Test(analytics, tenant_b_gets_its_own_answers)
{
    long long lo = utc(2025, 9, 29, 3, 17, 45), hi = utc(2025, 10, 1, 19, 42, 10);
    const char *qs = "sip_domain=" DOMAIN_B "&from=2025-09-29T03:17:45Z&to=2025-10-01T19:42:10Z";
    check_summary(1, qs, lo, hi, -2);
    check_by_store(1, qs, lo, hi);
    check_by_agent(1, qs, lo, hi, -2);
}

Test(analytics, a_tenant_never_counts_another_tenants_rows)
{
    char qs[512], id[40];
    store_uuid(1, 0, id, sizeof(id));
    /* tenant A asking for a store of B: nothing */
    snprintf(qs, sizeof(qs), "sip_domain=" DOMAIN_A "&from=2025-09-28&to=2025-10-02&store_id=%s",
             id);
    json_t *j = ask(ANALYTICS_SUMMARY, TENANT_A, qs);
    expect_int(j, "total_calls", 0, qs);
    expect_num(j, "answered_rate", false, 0, qs);
    expect_num(j, "asr", false, 0, qs);
    expect_num(j, "avg_handle_time_sec", false, 0, qs);
    expect_num(j, "avg_ring_time_sec", false, 0, qs);
    expect_int(j, "missed_calls", 0, qs);
    expect_int(j, "callbacks_due", 0, qs);
    json_decref(j);
    j = ask(ANALYTICS_BY_AGENT, TENANT_A, qs);
    cr_expect_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    /* the whole data set: A's statement counts exactly A's rows */
    const char *all = "sip_domain=" DOMAIN_A "&from=2025-09-28&to=2025-10-02";
    long long lo = utc(2025, 9, 28, 0, 0, 0), hi = utc(2025, 10, 3, 0, 0, 0);
    check_summary(0, all, lo, hi, -2);
    j = ask(ANALYTICS_SUMMARY, TENANT_A, all);
    expect_int(j, "total_calls", N_ROWS, all);
    json_decref(j);
    /* the statement's tenant set to A explicitly: the same answer */
    j = ask_as(ANALYTICS_SUMMARY, TENANT_A, TENANT_A, all);
    expect_int(j, "total_calls", N_ROWS, all);
    json_decref(j);
    /* the statement naming B inside A's transaction: row-level security leaves nothing */
    j = ask_as(ANALYTICS_SUMMARY, TENANT_A, TENANT_B, all);
    expect_int(j, "total_calls", 0, all);
    json_decref(j);
    j = ask_as(ANALYTICS_BY_STORE, TENANT_A, TENANT_B, all);
    cr_expect_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
}

Test(analytics, missed_and_qos_are_refused_not_half_done)
{
    query_params p;
    memset(&p, 0, sizeof(p));
    sql_stmt st;
    char err[128];
    cr_expect(analytics_stmt(ANALYTICS_MISSED, &p, &st, err, sizeof(err)) == -1);
    cr_expect(analytics_stmt(ANALYTICS_QOS, &p, &st, err, sizeof(err)) == -1);
}
