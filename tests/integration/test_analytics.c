/* test_analytics.c - the KPI statements against a real PostgreSQL, read as cdr_reader through
 * the pool: a generated two-tenant data set is stored, the rollups rebuilt, and every answer is
 * compared with the KPIs computed here from the generated rows (DESIGN.md's definitions), on
 * ranges with edges on and off the hour, shorter than an hour (all raw rows), date-only in
 * Europe/Rome, across a month boundary, over whole UTC months (the monthly extension rollup),
 * and for tenant isolation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "db_fixture.h"
#include "itest.h"
#include "params.h"
#include "pg_pool.h"
#include "pool_fixture.h"

#define TENANT_A     "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TENANT_B     "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define DOMAIN_A     "a.example.it"
#define DOMAIN_B     "b.example.it"
#define N_ROWS       1500 /* per tenant, 2025-09-28 20:00Z .. 2025-10-02 04:00Z */
#define N_MONTH_ROWS 900  /* both tenants, 2025-07-29 .. 2025-09-02 */
#define N_ALL        (2 * N_ROWS + N_MONTH_ROWS)
#define N_STORES     3
#define N_EXTS       6
#define N_NUMBERS    27 /* the last two only in the explicit callback rows */
#define N_DIDS       2
#define DEADLINE_MS  20000
#define EPS          1e-6

/* One generated CDR. */
typedef struct row {
    int tenant;              /* 0 = A, 1 = B */
    long long start, answer; /* epoch seconds; answer 0 = none */
    int store;               /* -1 = none */
    int ext;                 /* -1 = none */
    int user;                /* user_uuid's index; -1 = none */
    bool in;
    int disp; /* 0 ANSWERED, 1 NO_ANSWER, 2 BUSY, 3 FAILED */
    int billsec;
    int number;
    int did;       /* inbound only; -1 = none */
    double mos;    /* 0 = none */
    double jitter; /* < 0 = none */
    double loss;   /* < 0 = none */
} row;

static const char *const disp_name[] = {"ANSWERED", "NO_ANSWER", "BUSY", "FAILED"};
static row rows[N_ALL];
static itest_db db;
static pool_fixture pf;

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

static void did_name(int d, char *buf, size_t len)
{
    snprintf(buf, len, "+39020000001%d", d);
}

/* The user of extension 'ext' at 'start'. Each extension has its own user (the last one none),
 * except before 2025-09-01: extension 1 had user 7 and the last extension user 8, so that a
 * month's user is not the next month's, and extension 2 had user 6 until 2025-08-20 12:00Z, in
 * the middle of a month. */
static int user_of(int ext, long long start)
{
    bool before_september = start < utc(2025, 9, 1, 0, 0, 0);
    if (ext < 0)
        return -1;
    if (ext == 1 && before_september)
        return 7;
    if (ext == 2 && start < utc(2025, 8, 20, 12, 0, 0))
        return 6;
    if (ext == N_EXTS - 1)
        return before_september ? 8 : -1;
    return ext;
}

/* A random CDR of 'tenant' starting in [t0, t0 + span). */
static void random_row(row *r, int tenant, long long t0, long long span)
{
    *r = (row){.tenant = tenant, .start = t0 + rnd((unsigned)span)};
    r->store = (int)rnd(N_STORES + 1) - 1;
    r->ext = (int)rnd(N_EXTS + 1) - 1;
    r->user = user_of(r->ext, r->start);
    r->in = rnd(3) != 0;
    r->disp = rnd(2) ? 0 : 1 + (int)rnd(3);
    r->number = (int)rnd(N_NUMBERS - 2);
    if (r->disp == 0) {
        r->answer = r->start + rnd(40);
        r->billsec = (int)rnd(900);
    }
    r->mos = rnd(10) < 7 ? 1.0 + 0.25 * rnd(17) : 0;
    r->did = r->in ? (int)rnd(N_DIDS + 1) - 1 : -1;
    r->jitter = rnd(10) < 6 ? 0.5 * rnd(80) : -1;
    r->loss = rnd(10) < 5 ? 0.25 * rnd(20) : -1;
}

/* N_ROWS rows per tenant from 2025-09-28 20:00Z to 2025-10-02 04:00Z (80 hours, across a month
 * boundary), then N_MONTH_ROWS sparse ones from 2025-07-29 to 2025-09-02 (36 days holding the
 * whole UTC month of August, three quarters of them in tenant A), which the ranges of the
 * first set never reach. */
static void generate(void)
{
    for (int i = 0; i < 2 * N_ROWS; i++)
        random_row(&rows[i], i >= N_ROWS, utc(2025, 9, 28, 20, 0, 0), 80 * 3600);
    for (int i = 2 * N_ROWS; i < N_ALL; i++)
        random_row(&rows[i], rnd(4) == 0, utc(2025, 7, 29, 0, 0, 0), 36 * 86400);
    /* Explicit callback cases in tenant A, 2025-09-30 10:xx UTC: number N_NUMBERS-2 misses at
     * 10:20 and is called back (answered, outbound) at 10:40, so that call is no longer due;
     * number N_NUMBERS-1 misses at 10:15 and 10:30 and nobody answers it: both due. */
    const struct {
        int min, number, disp;
        bool in;
    } x[] = {{20, N_NUMBERS - 2, 1, true},
             {40, N_NUMBERS - 2, 0, false},
             {15, N_NUMBERS - 1, 2, true},
             {30, N_NUMBERS - 1, 3, true}};
    for (int k = 0; k < 4; k++) {
        row *r = &rows[N_ROWS - 4 + k];
        *r = (row){.tenant = 0,
                   .start = utc(2025, 9, 30, 10, x[k].min, 0),
                   .store = 0,
                   .ext = 1,
                   .user = 1,
                   .in = x[k].in,
                   .disp = x[k].disp,
                   .number = x[k].number,
                   .did = x[k].in ? 1 : -1,
                   .mos = 0,
                   .jitter = -1,
                   .loss = -1};
        if (x[k].disp == 0) {
            r->answer = r->start + 5;
            r->billsec = 60;
        }
    }
}

static void insert_rows(PGconn *c)
{
    static const char sql[] =
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, store_id, sip_domain, direction,"
        " from_uri, to_uri, ext_number, user_id, answer_ts, end_ts, billsec, disposition, mos,"
        " did_e164, jitter_ms, loss_pct)"
        " VALUES ($1, $2, to_timestamp($3::bigint), $4, $5, $6, $7, $8, $9, $10,"
        " to_timestamp($11::bigint), to_timestamp($12::bigint), $13::int, $14, $15::real, $16,"
        " $17::real, $18::real)";
    fixture_exec(c, "BEGIN", 0, NULL);
    for (int i = 0; i < N_ALL; i++) {
        const row *r = &rows[i];
        char call[32], start[24], store[40], ext[16], user[40], ans[24], end[24], bs[16], num[24],
            mos[16], did[24], jit[16], loss[16];
        snprintf(call, sizeof(call), "call-%d", i);
        snprintf(start, sizeof(start), "%lld", r->start);
        if (r->store >= 0)
            store_uuid(r->tenant, r->store, store, sizeof(store));
        if (r->ext >= 0)
            ext_name(r->ext, ext, sizeof(ext));
        if (r->user >= 0)
            user_uuid(r->tenant, r->user, user, sizeof(user));
        snprintf(ans, sizeof(ans), "%lld", r->answer);
        snprintf(end, sizeof(end), "%lld", (r->answer ? r->answer : r->start) + r->billsec + 3);
        snprintf(bs, sizeof(bs), "%d", r->billsec);
        number(r->number, num, sizeof(num));
        snprintf(mos, sizeof(mos), "%.2f", r->mos);
        if (r->did >= 0)
            did_name(r->did, did, sizeof(did));
        snprintf(jit, sizeof(jit), "%.2f", r->jitter);
        snprintf(loss, sizeof(loss), "%.2f", r->loss);
        const char *v[18] = {r->tenant ? TENANT_B : TENANT_A,
                             call,
                             start,
                             r->store >= 0 ? store : NULL,
                             r->tenant ? DOMAIN_B : DOMAIN_A,
                             r->in ? "in" : "out",
                             r->in ? num : "sip:200@pbx",
                             r->in ? (r->did >= 0 ? did : "+390200000000") : num,
                             r->ext >= 0 ? ext : NULL,
                             r->user >= 0 ? user : NULL,
                             r->answer ? ans : NULL,
                             end,
                             bs,
                             disp_name[r->disp],
                             r->mos > 0 ? mos : NULL,
                             r->did >= 0 ? did : NULL,
                             r->jitter >= 0 ? jit : NULL,
                             r->loss >= 0 ? loss : NULL};
        fixture_exec(c, sql, 18, v);
    }
    /* names for the first two stores of each tenant; the third stays unknown */
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 2; s++) {
            char id[40], name[32];
            store_uuid(t, s, id, sizeof(id));
            snprintf(name, sizeof(name), "Store %c%d", t ? 'B' : 'A', s + 1);
            const char *v[3] = {t ? TENANT_B : TENANT_A, id, name};
            fixture_exec(
                c, "INSERT INTO voip_stores (tenant_id, store_id, name) VALUES ($1, $2, $3)", 3, v);
        }
    fixture_exec(c, "COMMIT", 0, NULL);
}

static void setup(void)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&db, (const char *const[]){"migrate", NULL});
    fixture_ctl(&db, (const char *const[]){"partitions", "ensure", "--from", "2025-07", "--months",
                                           "4", NULL});
    PGconn *c = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(c, "%s", err);
    generate();
    insert_rows(c);
    PQfinish(c);
    fixture_ctl(&db, (const char *const[]){"rollups", "rebuild", "--from", "2025-07-29", "--to",
                                           "2025-10-02", NULL});
    pool_fixture_create(&pf, &db);
    pool_fixture_open(&pf, 1, 10000, 0);
}

static void teardown(void)
{
    pool_fixture_destroy(&pf);
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

static bool answered(void *arg)
{
    return ((answer *)arg)->done;
}

/* Runs 'kind' for the query string 'qs' as 'tenant' (the pool's tenant; 'stmt_tenant' is put
 * in the statement's tenant parameter when not NULL) and returns the answer. */
static json_t *ask_as(analytics_kind kind, const char *tenant, const char *stmt_tenant,
                      const char *qs)
{
    static query_params p;
    char param[64], err[256];
    cr_assert(params_parse(qs,
                           P_SIP_DOMAIN | P_FROM | P_TO | P_TZ | P_STORE | P_DID | P_ONLY_UNIQUE |
                               P_PAGE | P_PAGE_SIZE | P_GROUP_BY | P_BUCKET,
                           0, &p, param, sizeof(param), err, sizeof(err)) == 0,
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
    cr_assert(pg_pool_submit(pf.pool, &q));
    cr_assert(pool_fixture_run_until(&pf, answered, &a, DEADLINE_MS), "no answer for %s", qs);
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
    const row *user_row; /* the latest call with a user_id, NULL = none */
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
    if (r->user >= 0 && (!g->user_row || r->start > g->user_row->start))
        g->user_row = r;
}

static bool in_range(const row *r, int tenant, long long lo, long long hi, int store)
{
    return r->tenant == tenant && r->start >= lo && r->start < hi &&
           (store == -2 || r->store == store);
}

/* A missed inbound call of number n at t is due when no ANSWERED call with n started after t. */
static bool due(int tenant, int n, long long t)
{
    for (int i = 0; i < N_ALL; i++) {
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

static void expect_str(json_t *o, const char *key, const char *want, const char *ctx)
{
    json_t *v = json_object_get(o, key);
    cr_assert(v, "%s: %s missing", ctx, key);
    if (!want) {
        cr_expect(json_is_null(v), "%s: %s should be null", ctx, key);
        return;
    }
    cr_expect(json_is_string(v) && strcmp(json_string_value(v), want) == 0, "%s: %s = %s, want %s",
              ctx, key, json_is_string(v) ? json_string_value(v) : "?", want);
}

/* Checks the summary of tenant 't' over [lo, hi) and store 'store' (-2 = all, -1 = none). */
static void check_summary(int t, const char *qs, long long lo, long long hi, int store)
{
    agg g = {0};
    long long last_missed[N_NUMBERS];
    for (int n = 0; n < N_NUMBERS; n++)
        last_missed[n] = -1;
    for (int i = 0; i < N_ALL; i++) {
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
    for (int i = 0; i < N_ALL; i++)
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
    for (int i = 0; i < N_ALL; i++)
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
        const agg *a = &g[e];
        char user[40];
        if (a->user_row)
            user_uuid(t, a->user_row->user, user, sizeof(user));
        expect_str(it, "user_id", a->user_row ? user : NULL, ctx);
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

/* Where the KPIs come from: a whole UTC day from the daily store rollup, the whole hours
 * around it from the hourly one, the partial hours from voip_cdr. A bucket changed behind the
 * writer's back moves total_calls of exactly the ranges that read it. */
Test(analytics, summary_reads_days_hours_and_edges_where_they_are_whole)
{
    static const char *const qs[] = {
        /* 2025-09-30 whole, 21:00-24:00 of the 29th as hours */
        "sip_domain=" DOMAIN_A "&from=2025-09-29T21:00:00Z&to=2025-10-01T00:00:00Z",
        /* no whole day: hours only */
        "sip_domain=" DOMAIN_A "&from=2025-09-30T05:00:00Z&to=2025-09-30T20:00:00Z",
        /* 10:00 only partly in the range: raw */
        "sip_domain=" DOMAIN_A "&from=2025-09-30T10:00:00.5Z&to=2025-09-30T20:00:00Z",
    };
    long long before[3];
    for (int k = 0; k < 3; k++) {
        json_t *j = ask(ANALYTICS_SUMMARY, TENANT_A, qs[k]);
        before[k] = json_integer_value(json_object_get(j, "total_calls"));
        json_decref(j);
    }
    char err[512], store[40];
    store_uuid(0, 0, store, sizeof(store));
    PGconn *c = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(c, "%s", err);
    const char *const v[] = {TENANT_A, store};
    fixture_exec(
        c,
        "UPDATE voip_cdr_rollup_store_day SET calls = calls + 1000"
        " WHERE tenant_id = $1 AND store_id = $2 AND day = '2025-09-30' AND direction = 'in'",
        2, v);
    fixture_exec(c,
                 "UPDATE voip_cdr_rollup_store_hour SET calls = calls + 100"
                 " WHERE tenant_id = $1 AND store_id = $2 AND hour = '2025-09-30T10:00:00Z'"
                 " AND direction = 'in'",
                 2, v);
    fixture_exec(c,
                 "UPDATE voip_cdr_rollup_store_hour SET calls = calls + 10"
                 " WHERE tenant_id = $1 AND store_id = $2 AND hour = '2025-09-29T22:00:00Z'"
                 " AND direction = 'in'",
                 2, v);
    PQfinish(c);
    static const long long added[] = {1000 + 10, 100, 0};
    for (int k = 0; k < 3; k++) {
        json_t *j = ask(ANALYTICS_SUMMARY, TENANT_A, qs[k]);
        cr_expect_eq(json_integer_value(json_object_get(j, "total_calls")), before[k] + added[k],
                     "%s: total_calls moved by %lld, want %lld", qs[k],
                     json_integer_value(json_object_get(j, "total_calls")) - before[k], added[k]);
        json_decref(j);
    }
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

Test(analytics, missed_and_qos_need_a_range)
{
    query_params p;
    memset(&p, 0, sizeof(p));
    sql_stmt st;
    char err[128];
    cr_expect(analytics_stmt(ANALYTICS_MISSED, &p, &st, err, sizeof(err)) == -1);
    cr_expect(analytics_stmt(ANALYTICS_QOS, &p, &st, err, sizeof(err)) == -1);
}

/* ---- missed calls ---- */

static void call_name(int i, char *buf, size_t len)
{
    snprintf(buf, len, "call-%d", i);
}

static void utc_text(long long t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Newest first, then call_id descending. */
static int newest_first(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    if (rows[i].start != rows[j].start)
        return rows[i].start > rows[j].start ? -1 : 1;
    char ci[32], cj[32];
    call_name(i, ci, sizeof(ci));
    call_name(j, cj, sizeof(cj));
    return -strcmp(ci, cj);
}

static void expect_bool(json_t *o, const char *key, bool want, const char *ctx)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_boolean(v), "%s: %s is not a boolean", ctx, key);
    cr_expect_eq(json_is_true(v), want, "%s: %s should be %s", ctx, key, want ? "true" : "false");
}

/* The missed inbound calls of tenant t in [lo, hi) for store (-2 = all) and did (-2 = all),
 * newest first, into 'out'; returns how many. */
static int missed_rows(int t, long long lo, long long hi, int store, int did, int *out)
{
    int n = 0;
    for (int i = 0; i < N_ALL; i++) {
        const row *r = &rows[i];
        if (in_range(r, t, lo, hi, store) && r->in && r->disp != 0 && (did == -2 || r->did == did))
            out[n++] = i;
    }
    qsort(out, (size_t)n, sizeof(int), newest_first);
    return n;
}

static json_t *expect_page(json_t *j, const char *qs, long page, long size, long long total)
{
    expect_int(j, "page", page, qs);
    expect_int(j, "page_size", size, qs);
    expect_int(j, "total", total, qs);
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items), "%s: no items", qs);
    long long off = (page - 1) * size;
    long long want = total - off < 0 ? 0 : (total - off > size ? size : total - off);
    cr_assert_eq((long long)json_array_size(items), want, "%s: %zu items, want %lld", qs,
                 json_array_size(items), want);
    return items;
}

/* Checks /api/analytics/missed for 'qs' (which carries its own filters and paging). */
static void check_missed(int t, const char *qs, long long lo, long long hi, int store, int did,
                         long page, long size)
{
    static int m[N_ALL];
    int n = missed_rows(t, lo, hi, store, did, m);
    cr_assert(n > 0 || store != -2 || did != -2, "%s: no missed calls in range", qs);
    json_t *j = ask(ANALYTICS_MISSED, t ? TENANT_B : TENANT_A, qs);
    json_t *items = expect_page(j, qs, page, size, n);
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        int i = m[(page - 1) * size + (long)k];
        const row *r = &rows[i];
        char ctx[600], want[64];
        snprintf(ctx, sizeof(ctx), "%s item %zu", qs, k);
        call_name(i, want, sizeof(want));
        expect_str(it, "call_id", want, ctx);
        number(r->number, want, sizeof(want));
        expect_str(it, "from_uri", want, ctx);
        did_name(r->did, want, sizeof(want));
        expect_str(it, "did_e164", r->did >= 0 ? want : NULL, ctx);
        store_uuid(t, r->store, want, sizeof(want));
        expect_str(it, "store_id", r->store >= 0 ? want : NULL, ctx);
        ext_name(r->ext, want, sizeof(want));
        expect_str(it, "ext_number", r->ext >= 0 ? want : NULL, ctx);
        utc_text(r->start, want, sizeof(want));
        expect_str(it, "start_ts", want, ctx);
        expect_str(it, "disposition", disp_name[r->disp], ctx);
        expect_bool(it, "callback_due", due(t, r->number, r->start), ctx);
    }
    json_decref(j);
}

/* One caller of the only_unique answer: its missed calls, latest first. */
typedef struct caller {
    int number, attempts, first, last; /* first/last: row indices */
} caller;

static int latest_caller_first(const void *a, const void *b)
{
    const caller *x = a, *y = b;
    int c = newest_first(&x->last, &y->last);
    if (rows[x->last].start != rows[y->last].start)
        return c;
    return y->number - x->number; /* same instant: from_uri descending */
}

static void check_missed_unique(int t, const char *qs, long long lo, long long hi, int store,
                                int did, long page, long size)
{
    static int m[N_ALL];
    int n = missed_rows(t, lo, hi, store, did, m);
    caller c[N_NUMBERS];
    int nc = 0;
    for (int k = 0; k < n; k++) { /* newest first: the first seen is the latest */
        int i = m[k], f = -1;
        for (int q = 0; q < nc; q++)
            if (c[q].number == rows[i].number)
                f = q;
        if (f < 0) {
            c[nc] = (caller){.number = rows[i].number, .attempts = 0, .last = i};
            f = nc++;
        }
        c[f].attempts++;
        c[f].first = i;
    }
    qsort(c, (size_t)nc, sizeof(caller), latest_caller_first);
    json_t *j = ask(ANALYTICS_MISSED, t ? TENANT_B : TENANT_A, qs);
    json_t *items = expect_page(j, qs, page, size, nc);
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        const caller *e = &c[(page - 1) * size + (long)k];
        const row *r = &rows[e->last];
        char ctx[600], want[64];
        snprintf(ctx, sizeof(ctx), "%s caller %zu", qs, k);
        number(e->number, want, sizeof(want));
        expect_str(it, "from_uri", want, ctx);
        expect_int(it, "attempts", e->attempts, ctx);
        utc_text(rows[e->first].start, want, sizeof(want));
        expect_str(it, "first_ts", want, ctx);
        utc_text(r->start, want, sizeof(want));
        expect_str(it, "last_ts", want, ctx);
        call_name(e->last, want, sizeof(want));
        expect_str(it, "last_call_id", want, ctx);
        did_name(r->did, want, sizeof(want));
        expect_str(it, "did_e164", r->did >= 0 ? want : NULL, ctx);
        store_uuid(t, r->store, want, sizeof(want));
        expect_str(it, "store_id", r->store >= 0 ? want : NULL, ctx);
        expect_bool(it, "callback_due", due(t, e->number, r->start), ctx);
    }
    json_decref(j);
}

Test(analytics, missed_matches_the_oracle)
{
    make_ranges();
    char qs[600], id[40], did[24];
    const int rk[] = {1, 5};
    for (int q = 0; q < 2; q++) {
        const range *g = &ranges[rk[q]];
        check_missed(0, g->qs, g->lo, g->hi, -2, -2, 1, PARAMS_DEFAULT_PAGE_SIZE);
        snprintf(qs, sizeof(qs), "%s&page=2&page_size=7", g->qs);
        check_missed(0, qs, g->lo, g->hi, -2, -2, 2, 7);
        snprintf(qs, sizeof(qs), "%s&page=1000&page_size=7", g->qs);
        check_missed(0, qs, g->lo, g->hi, -2, -2, 1000, 7);
        store_uuid(0, 1, id, sizeof(id));
        did_name(0, did, sizeof(did));
        snprintf(qs, sizeof(qs), "%s&store_id=%s&page_size=500", g->qs, id);
        check_missed(0, qs, g->lo, g->hi, 1, -2, 1, 500);
        snprintf(qs, sizeof(qs), "%s&did_e164=%%2B%s&page_size=500", g->qs, did + 1);
        check_missed(0, qs, g->lo, g->hi, -2, 0, 1, 500);
        snprintf(qs, sizeof(qs), "%s&did_e164=%%2B%s&store_id=%s&page=2&page_size=3", g->qs,
                 did + 1, id);
        check_missed(0, qs, g->lo, g->hi, 1, 0, 2, 3);
    }
}

Test(analytics, missed_only_unique_matches_the_oracle)
{
    make_ranges();
    char qs[600], id[40], did[24];
    const int rk[] = {1, 5};
    for (int q = 0; q < 2; q++) {
        const range *g = &ranges[rk[q]];
        snprintf(qs, sizeof(qs), "%s&only_unique=true", g->qs);
        check_missed_unique(0, qs, g->lo, g->hi, -2, -2, 1, PARAMS_DEFAULT_PAGE_SIZE);
        snprintf(qs, sizeof(qs), "%s&only_unique=true&page=2&page_size=5", g->qs);
        check_missed_unique(0, qs, g->lo, g->hi, -2, -2, 2, 5);
        store_uuid(0, 2, id, sizeof(id));
        did_name(1, did, sizeof(did));
        snprintf(qs, sizeof(qs), "%s&only_unique=true&store_id=%s&did_e164=%%2B%s", g->qs, id,
                 did + 1);
        check_missed_unique(0, qs, g->lo, g->hi, 2, 1, 1, PARAMS_DEFAULT_PAGE_SIZE);
    }
}

/* The explicit callback rows: a missed call answered back later is not due, the others are. */
Test(analytics, missed_callback_due_true_and_false)
{
    const char *qs = "sip_domain=" DOMAIN_A "&from=2025-09-30T10:10:00Z&to=2025-09-30T10:50:00Z";
    int seen = 0;
    json_t *j = ask(ANALYTICS_MISSED, TENANT_A, qs);
    json_t *items = json_object_get(j, "items");
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        const char *id = json_string_value(json_object_get(it, "call_id"));
        char want[32];
        for (int x = N_ROWS - 4; x < N_ROWS; x++) {
            call_name(x, want, sizeof(want));
            if (id && strcmp(id, want) == 0) {
                cr_expect(rows[x].in && rows[x].disp != 0, "%s is not a missed call", id);
                expect_bool(it, "callback_due", x != N_ROWS - 4, want);
                seen++;
            }
        }
    }
    cr_expect_eq(seen, 3, "the explicit missed calls: %d of 3", seen);
    json_decref(j);
    j = ask(ANALYTICS_MISSED, TENANT_A,
            "sip_domain=" DOMAIN_A "&from=2025-09-30T10:10:00Z&to=2025-09-30T10:50:00Z"
            "&only_unique=true");
    items = json_object_get(j, "items");
    seen = 0;
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        const char *from = json_string_value(json_object_get(it, "from_uri"));
        for (int n = N_NUMBERS - 2; n < N_NUMBERS; n++) {
            char want[32];
            number(n, want, sizeof(want));
            if (from && strcmp(from, want) == 0) {
                expect_int(it, "attempts", n == N_NUMBERS - 2 ? 1 : 2, want);
                expect_bool(it, "callback_due", n == N_NUMBERS - 1, want);
                seen++;
            }
        }
    }
    cr_expect_eq(seen, 2, "the explicit callers: %d of 2", seen);
    json_decref(j);
    check_missed(0, qs, utc(2025, 9, 30, 10, 10, 0), utc(2025, 9, 30, 10, 50, 0), -2, -2, 1,
                 PARAMS_DEFAULT_PAGE_SIZE);
}

Test(analytics, missed_is_per_tenant)
{
    long long lo = utc(2025, 9, 29, 3, 17, 45), hi = utc(2025, 10, 1, 19, 42, 10);
    const char *qs = "sip_domain=" DOMAIN_B "&from=2025-09-29T03:17:45Z&to=2025-10-01T19:42:10Z";
    check_missed(1, qs, lo, hi, -2, -2, 1, PARAMS_DEFAULT_PAGE_SIZE);
    char uq[300];
    snprintf(uq, sizeof(uq), "%s&only_unique=true", qs);
    check_missed_unique(1, uq, lo, hi, -2, -2, 1, PARAMS_DEFAULT_PAGE_SIZE);
    /* A's store in B's request: nothing */
    char id[40], sq[300];
    store_uuid(0, 0, id, sizeof(id));
    snprintf(sq, sizeof(sq), "%s&store_id=%s", qs, id);
    json_t *j = ask(ANALYTICS_MISSED, TENANT_B, sq);
    expect_page(j, sq, 1, PARAMS_DEFAULT_PAGE_SIZE, 0);
    json_decref(j);
    /* the statement naming B inside A's transaction: row-level security leaves nothing */
    j = ask_as(ANALYTICS_MISSED, TENANT_A, TENANT_B, qs);
    expect_page(j, qs, 1, PARAMS_DEFAULT_PAGE_SIZE, 0);
    json_decref(j);
    j = ask_as(ANALYTICS_QOS, TENANT_A, TENANT_B, qs);
    cr_expect_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
}

/* ---- QoS ---- */

typedef struct qagg {
    char key[48];
    long long calls, mos_n, jit_n, loss_n, poor;
    double mos, jit, loss;
} qagg;

enum { Q_DAY, Q_HOUR, Q_STORE, Q_AGENT };

/* The group key of r; false when r belongs to no group. 'tz_off' is the zone's offset in
 * seconds (constant over the data: Europe/Rome is +02:00 until 2025-10-26). */
static bool qos_key(int by, int t, const row *r, long tz_off, char *buf, size_t len)
{
    struct tm tm;
    time_t tt;
    switch (by) {
    case Q_DAY:
        tt = (time_t)(r->start + tz_off);
        gmtime_r(&tt, &tm);
        strftime(buf, len, "%Y-%m-%d", &tm);
        return true;
    case Q_HOUR:
        tt = (time_t)r->start;
        gmtime_r(&tt, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:00:00Z", &tm);
        return true;
    case Q_STORE:
        if (r->store < 0)
            snprintf(buf, len, "-");
        else
            store_uuid(t, r->store, buf, len);
        return true;
    default:
        if (r->ext < 0)
            return false;
        ext_name(r->ext, buf, len);
        return true;
    }
}

static void check_qos(int t, const char *qs, long long lo, long long hi, int store, int by,
                      long tz_off)
{
    static qagg g[200];
    int ng = 0;
    for (int i = 0; i < N_ALL; i++) {
        const row *r = &rows[i];
        char key[48];
        if (!in_range(r, t, lo, hi, store) || !qos_key(by, t, r, tz_off, key, sizeof(key)))
            continue;
        int f = -1;
        for (int q = 0; q < ng; q++)
            if (strcmp(g[q].key, key) == 0)
                f = q;
        if (f < 0) {
            cr_assert(ng < 200);
            memset(&g[ng], 0, sizeof(g[ng]));
            snprintf(g[ng].key, sizeof(g[ng].key), "%s", key);
            f = ng++;
        }
        qagg *a = &g[f];
        a->calls++;
        if (r->mos > 0) {
            a->mos += r->mos;
            a->mos_n++;
            a->poor += r->mos < 3.6;
        }
        if (r->jitter >= 0) {
            a->jit += r->jitter;
            a->jit_n++;
        }
        if (r->loss >= 0) {
            a->loss += r->loss;
            a->loss_n++;
        }
    }
    cr_assert(ng > 0, "%s: no groups", qs);
    const char *name = by == Q_STORE ? "store_id" : by == Q_AGENT ? "ext_number" : "period";
    json_t *j = ask(ANALYTICS_QOS, t ? TENANT_B : TENANT_A, qs);
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items), "%s: no items", qs);
    cr_assert_eq(json_array_size(items), (size_t)ng, "%s: %zu groups, want %d", qs,
                 json_array_size(items), ng);
    const char *prev_key = NULL;
    long long prev_calls = -1;
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        json_t *kv = json_object_get(it, name);
        cr_assert(kv, "%s: item %zu has no %s", qs, k, name);
        const char *key = json_is_null(kv) ? "-" : json_string_value(kv);
        cr_assert(key, "%s: item %zu: %s is not a string", qs, k, name);
        cr_assert(by == Q_STORE || strcmp(key, "-") != 0, "%s: null %s", qs, name);
        int f = -1;
        for (int q = 0; q < ng; q++)
            if (strcmp(g[q].key, key) == 0)
                f = q;
        cr_assert(f >= 0, "%s: unexpected %s %s", qs, name, key);
        const qagg *a = &g[f];
        char ctx[600];
        snprintf(ctx, sizeof(ctx), "%s %s %s", qs, name, key);
        expect_int(it, "calls", a->calls, ctx);
        expect_num(it, "avg_mos", a->mos_n > 0, a->mos / (double)a->mos_n, ctx);
        expect_num(it, "avg_jitter_ms", a->jit_n > 0, a->jit / (double)a->jit_n, ctx);
        expect_num(it, "avg_loss_pct", a->loss_n > 0, a->loss / (double)a->loss_n, ctx);
        expect_int(it, "poor_calls", a->poor, ctx);
        if (by == Q_DAY || by == Q_HOUR)
            cr_expect(!prev_key || strcmp(prev_key, key) < 0, "%s: periods out of order", ctx);
        else
            cr_expect(prev_calls < 0 || a->calls <= prev_calls, "%s: not by calls", ctx);
        prev_key = key;
        prev_calls = a->calls;
    }
    json_decref(j);
}

Test(analytics, qos_matches_the_oracle)
{
    make_ranges();
    char qs[600], id[40];
    /* edges off the hour, UTC */
    const range *g = &ranges[1];
    snprintf(qs, sizeof(qs), "%s&group_by=period&bucket=hour", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_HOUR, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=period&bucket=day", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_DAY, 0);
    check_qos(0, g->qs, g->lo, g->hi, -2, Q_DAY, 0); /* the defaults: period, day */
    snprintf(qs, sizeof(qs), "%s&group_by=store", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_STORE, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=agent", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_AGENT, 0);
    store_uuid(0, 1, id, sizeof(id));
    snprintf(qs, sizeof(qs), "%s&group_by=agent&store_id=%s", g->qs, id);
    check_qos(0, qs, g->lo, g->hi, 1, Q_AGENT, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=period&bucket=hour&store_id=%s", g->qs, id);
    check_qos(0, qs, g->lo, g->hi, 1, Q_HOUR, 0);
    /* date-only days of Europe/Rome: day buckets in Rome, hours in UTC */
    g = &ranges[5];
    snprintf(qs, sizeof(qs), "%s&group_by=period&bucket=day", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_DAY, 2 * 3600);
    snprintf(qs, sizeof(qs), "%s&group_by=period&bucket=hour", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_HOUR, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=store", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_STORE, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=agent", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_AGENT, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=store&store_id=%s", g->qs, id);
    check_qos(0, qs, g->lo, g->hi, 1, Q_STORE, 0);
    /* whole UTC days: the daily store rollup */
    g = &ranges[6];
    snprintf(qs, sizeof(qs), "%s&group_by=period&bucket=day", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_DAY, 0);
    snprintf(qs, sizeof(qs), "%s&group_by=store", g->qs);
    check_qos(0, qs, g->lo, g->hi, -2, Q_STORE, 0);
    /* days of a zone whose offset is not whole hours (+05:30): no hourly bucket lies in one
     * local day, so every call is read raw */
    snprintf(qs, sizeof(qs),
             "sip_domain=" DOMAIN_A "&from=2025-09-30&to=2025-10-01&tz=Asia/Kolkata"
             "&group_by=period&bucket=day");
    check_qos(0, qs, utc(2025, 9, 29, 18, 30, 0), utc(2025, 10, 1, 18, 30, 0), -2, Q_DAY,
              5 * 3600 + 1800);
    /* tenant B */
    long long lo = utc(2025, 9, 29, 3, 17, 45), hi = utc(2025, 10, 1, 19, 42, 10);
    check_qos(1,
              "sip_domain=" DOMAIN_B
              "&from=2025-09-29T03:17:45Z&to=2025-10-01T19:42:10Z&group_by=store",
              lo, hi, -2, Q_STORE, 0);
}

/* ---- whole UTC months: the monthly extension rollup ---- */

/* Ranges over the second data set, each holding whole UTC days of the extension rollup, most
 * of them whole UTC months too, with edges on and off the hour, in UTC, an offset and
 * Europe/Rome (UTC+2 over the data). */
static range month_ranges[9];

static void make_month_ranges(void)
{
    int k = 0;
    /* exactly one whole UTC month */
    month_ranges[k++] = (range){"sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-31&tz=UTC",
                                utc(2025, 8, 1, 0, 0, 0), utc(2025, 9, 1, 0, 0, 0)};
    /* partial days off the hour, whole days Jul 30-31, August, the whole day Sep 1 */
    month_ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-07-29T13:47:12Z&to=2025-09-02T17:05:31Z",
                utc(2025, 7, 29, 13, 47, 12), utc(2025, 9, 2, 17, 5, 31)};
    /* two whole months, July holding only its last three days */
    month_ranges[k++] = (range){"sip_domain=" DOMAIN_A "&from=2025-07-01&to=2025-08-31",
                                utc(2025, 7, 1, 0, 0, 0), utc(2025, 9, 1, 0, 0, 0)};
    /* two whole months, September with the first data set, edges at midnight */
    month_ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-08-01T00:00:00Z&to=2025-10-01T00:00:00Z",
                utc(2025, 8, 1, 0, 0, 0), utc(2025, 10, 1, 0, 0, 0)};
    /* two whole months between a partial day and a whole one, and a partial one and nothing */
    month_ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-07-30T06:10:00Z&to=2025-10-01T19:42:10Z",
                utc(2025, 7, 30, 6, 10, 0), utc(2025, 10, 1, 19, 42, 10)};
    /* August in +02:00, off the hour: 2025-07-31T22:30Z .. 2025-08-31T23:00Z, no whole month */
    month_ranges[k++] = (range){"sip_domain=" DOMAIN_A
                                "&from=2025-08-01T00:30:00%2B02:00&to=2025-09-01T01:00:00%2B02:00",
                                utc(2025, 7, 31, 22, 30, 0), utc(2025, 8, 31, 23, 0, 0)};
    /* August of Europe/Rome: 2025-07-31T22:00Z .. 2025-08-31T22:00Z, days only */
    month_ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-31&tz=Europe/Rome",
                utc(2025, 7, 31, 22, 0, 0), utc(2025, 8, 31, 22, 0, 0)};
    /* Rome's Jul 31 .. Sep 1: the UTC month of August, partial days on both sides */
    month_ranges[k++] =
        (range){"sip_domain=" DOMAIN_A "&from=2025-07-31&to=2025-09-01&tz=Europe/Rome",
                utc(2025, 7, 30, 22, 0, 0), utc(2025, 9, 1, 22, 0, 0)};
    /* every day of August but the last: days only */
    month_ranges[k++] = (range){"sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-30",
                                utc(2025, 8, 1, 0, 0, 0), utc(2025, 8, 31, 0, 0, 0)};
}

Test(analytics, by_agent_matches_the_oracle_over_whole_months)
{
    make_month_ranges();
    for (size_t k = 0; k < sizeof(month_ranges) / sizeof(month_ranges[0]); k++)
        check_by_agent(0, month_ranges[k].qs, month_ranges[k].lo, month_ranges[k].hi, -2);
    /* with a store: every row raw */
    char qs[512], id[40];
    store_uuid(0, 1, id, sizeof(id));
    const int rk[] = {0, 1, 3};
    for (int q = 0; q < 3; q++) {
        const range *g = &month_ranges[rk[q]];
        snprintf(qs, sizeof(qs), "%s&store_id=%s", g->qs, id);
        check_by_agent(0, qs, g->lo, g->hi, 1);
    }
    /* tenant B's own months */
    check_by_agent(1, "sip_domain=" DOMAIN_B "&from=2025-08-01&to=2025-08-31",
                   utc(2025, 8, 1, 0, 0, 0), utc(2025, 9, 1, 0, 0, 0), -2);
    check_by_agent(1, "sip_domain=" DOMAIN_B "&from=2025-07-29T13:47:12Z&to=2025-10-01T19:42:10Z",
                   utc(2025, 7, 29, 13, 47, 12), utc(2025, 10, 1, 19, 42, 10), -2);
}

Test(analytics, qos_by_agent_matches_the_oracle_over_whole_months)
{
    make_month_ranges();
    char qs[600], id[40];
    for (size_t k = 0; k < sizeof(month_ranges) / sizeof(month_ranges[0]); k++) {
        const range *g = &month_ranges[k];
        snprintf(qs, sizeof(qs), "%s&group_by=agent", g->qs);
        check_qos(0, qs, g->lo, g->hi, -2, Q_AGENT, 0);
    }
    store_uuid(0, 2, id, sizeof(id));
    const int rk[] = {0, 1, 3};
    for (int q = 0; q < 3; q++) {
        const range *g = &month_ranges[rk[q]];
        snprintf(qs, sizeof(qs), "%s&group_by=agent&store_id=%s", g->qs, id);
        check_qos(0, qs, g->lo, g->hi, 2, Q_AGENT, 0);
    }
    check_qos(1, "sip_domain=" DOMAIN_B "&from=2025-08-01&to=2025-08-31&group_by=agent",
              utc(2025, 8, 1, 0, 0, 0), utc(2025, 9, 1, 0, 0, 0), -2, Q_AGENT, 0);
}

/* Expects extension 'e' in tenant A's by-agent answer for 'qs' with user_uuid's 'user' as its
 * user_id (-1: null). */
static void expect_agent_user(const char *qs, int e, int user)
{
    char ext[16], want[40], ctx[600];
    ext_name(e, ext, sizeof(ext));
    snprintf(ctx, sizeof(ctx), "%s ext %s", qs, ext);
    if (user >= 0)
        user_uuid(0, user, want, sizeof(want));
    json_t *j = ask(ANALYTICS_BY_AGENT, TENANT_A, qs);
    json_t *items = json_object_get(j, "items");
    json_t *found = NULL;
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        const char *x = json_string_value(json_object_get(it, "ext_number"));
        if (x && strcmp(x, ext) == 0)
            found = it;
    }
    cr_assert(found, "%s: not in the answer", ctx);
    expect_str(found, "user_id", user >= 0 ? want : NULL, ctx);
    json_decref(j);
}

/* user_of's changes, read through the months and days that hold them: the user of the latest
 * call with one in the range wins, a later month without a user does not hide it. */
Test(analytics, by_agent_user_is_that_of_the_latest_call_with_one)
{
    const char *aug = "sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-31";
    const char *jul_aug = "sip_domain=" DOMAIN_A "&from=2025-07-01&to=2025-08-31";
    const char *aug_sep = "sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-09-30";
    const char *aug_1_15 = "sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-15";
    const char *sep_days =
        "sip_domain=" DOMAIN_A "&from=2025-08-31T12:00:00Z&to=2025-09-02T00:00:00Z";
    /* extension 1: user 7 until August, its own from September */
    expect_agent_user(aug, 1, 7);
    expect_agent_user(jul_aug, 1, 7);
    expect_agent_user(aug_sep, 1, 1);
    expect_agent_user(sep_days, 1, 1);
    /* extension 2: user 6 until 2025-08-20 12:00Z inside August */
    expect_agent_user(aug, 2, 2);
    expect_agent_user(aug_1_15, 2, 6);
    /* the last extension: user 8 until August, none from September */
    expect_agent_user(aug, N_EXTS - 1, 8);
    expect_agent_user(aug_sep, N_EXTS - 1, 8);
    /* an extension whose user never changed */
    expect_agent_user(aug_sep, 3, 3);
}

/* The total (by-agent) or calls (QoS by agent) of extension 'ext' in tenant A's answer for
 * 'qs'; 0 when it is not there. */
static long long agent_calls(analytics_kind kind, const char *qs, const char *ext)
{
    json_t *j = ask(kind, TENANT_A, qs);
    json_t *items = json_object_get(j, "items");
    cr_assert(json_is_array(items), "%s: no items", qs);
    long long n = 0;
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *it = json_array_get(items, k);
        const char *x = json_string_value(json_object_get(it, "ext_number"));
        if (x && strcmp(x, ext) == 0)
            n = json_integer_value(json_object_get(it, kind == ANALYTICS_QOS ? "calls" : "total"));
    }
    json_decref(j);
    return n;
}

/* Runs 'sql' (parameters as itest_query) and asserts that it changed exactly one row. */
static void update_one(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *res = itest_query(c, sql, n, params);
    cr_assert(itest_ok(res), "%s: %s", sql, PQresultErrorMessage(res));
    cr_assert_str_eq(PQcmdTuples(res), "1", "%s %s: %s rows", sql, params[n - 1], PQcmdTuples(res));
    PQclear(res);
}

/* Where by-agent and QoS by agent read an extension: a whole UTC month from the monthly
 * rollup, the whole UTC days around it from the daily one, the partial days from voip_cdr,
 * and with a store filter every call from voip_cdr. Rollup rows changed behind the writer's
 * back move the calls of exactly the ranges that read them, until a rebuild puts them back. */
Test(analytics, by_agent_reads_months_days_and_edges_where_they_are_whole)
{
    char store[40], with_store[300];
    store_uuid(0, 0, store, sizeof(store));
    snprintf(with_store, sizeof(with_store),
             "sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-31&store_id=%s", store);
    const struct {
        const char *qs;
        long long added;
    } c[] = {
        /* August whole */
        {"sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-31", 1000},
        /* August's days but the last: the daily rollup */
        {"sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-08-30", 10},
        /* whole days Jul 30-31, August, whole day Sep 1 */
        {"sip_domain=" DOMAIN_A "&from=2025-07-29T13:47:12Z&to=2025-09-02T17:05:31Z",
         100 + 1000 + 10000},
        /* Jul 31 partial (raw), August whole */
        {"sip_domain=" DOMAIN_A "&from=2025-07-31T00:00:01Z&to=2025-09-01T00:00:00Z", 1000},
        /* Jul 31 whole, Aug 1-30 whole days, Aug 31 partial (raw) */
        {"sip_domain=" DOMAIN_A "&from=2025-07-31T00:00:00Z&to=2025-08-31T23:59:59Z", 100 + 10},
        /* August and September whole: Sep 1 from September's row */
        {"sip_domain=" DOMAIN_A "&from=2025-08-01&to=2025-09-30", 1000},
        /* Rome's Jul 31 .. Aug 31: UTC days Jul 31 .. Aug 30, no whole UTC month */
        {"sip_domain=" DOMAIN_A "&from=2025-07-31&to=2025-08-31&tz=Europe/Rome", 100 + 10},
        /* a store: voip_cdr only */
        {with_store, 0},
    };
    enum { N_CASES = sizeof(c) / sizeof(c[0]) };
    static const analytics_kind kinds[] = {ANALYTICS_BY_AGENT, ANALYTICS_QOS};
    char qs[2][N_CASES][400];
    long long before[2][N_CASES];
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < N_CASES; k++) {
            snprintf(qs[q][k], sizeof(qs[q][k]), "%s%s", c[k].qs, q ? "&group_by=agent" : "");
            before[q][k] = agent_calls(kinds[q], qs[q][k], "201");
            cr_assert(before[q][k] > 0, "%s: extension 201 has no calls", qs[q][k]);
        }
    char err[512];
    PGconn *conn = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(conn, "%s", err);
    update_one(conn,
               "UPDATE voip_cdr_rollup_ext_month SET calls = calls + 1000"
               " WHERE tenant_id = $1 AND ext_number = '201' AND month = $2::date",
               2, (const char *const[]){TENANT_A, "2025-08-01"});
    static const struct {
        const char *day;
        int calls;
    } days[] = {{"2025-07-31", 100}, {"2025-08-15", 10}, {"2025-09-01", 10000}};
    for (int d = 0; d < 3; d++) {
        char calls[16];
        snprintf(calls, sizeof(calls), "%d", days[d].calls);
        update_one(conn,
                   "UPDATE voip_cdr_rollup_ext_day SET calls = calls + $2::bigint"
                   " WHERE tenant_id = $1 AND ext_number = '201' AND day = $3::date",
                   3, (const char *const[]){TENANT_A, calls, days[d].day});
    }
    PQfinish(conn);
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < N_CASES; k++) {
            long long now = agent_calls(kinds[q], qs[q][k], "201");
            cr_expect_eq(now, before[q][k] + c[k].added, "%s: calls moved by %lld, want %lld",
                         qs[q][k], now - before[q][k], c[k].added);
        }
    /* the rebuild recomputes the days and the months they touch whole */
    fixture_ctl(&db, (const char *const[]){"rollups", "rebuild", "--from", "2025-07-31", "--to",
                                           "2025-09-01", NULL});
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < N_CASES; k++)
            cr_expect_eq(agent_calls(kinds[q], qs[q][k], "201"), before[q][k],
                         "%s: not restored by the rebuild", qs[q][k]);
}
