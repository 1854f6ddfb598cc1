/* test_pg_pool.c - cdr-query's PostgreSQL pool against a real PostgreSQL: queueing beyond the
 * pool's size, row-level security per job, errors, statement timeout, cancel, single-row
 * reading with backpressure, session settings, reconnection, the queue limit and shutdown. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_fixture.h"
#include "itest.h"
#include "pg_pool.h"
#include "pool_fixture.h"

#define TENANT_A    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TENANT_B    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define DEADLINE_MS 10000

static itest_db db;
static pool_fixture pf; /* each test opens the pool it needs */
static bool in_submit;  /* 'done' must never fire while pg_pool_submit runs */

/* A migrated database of its own and the fixture's loop, which wakes at least every 20 ms, so
 * that the waits below see their deadlines. */
static void setup(void)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&db, (const char *const[]){"migrate", NULL});
    pool_fixture_create(&pf, &db);
}

static void teardown(void)
{
    pool_fixture_destroy(&pf);
    itest_db_drop(&db);
}

TestSuite(pg_pool, .init = setup, .fini = teardown, .timeout = 120);

/* What one job's 'done' saw. */
typedef struct outcome {
    int calls;
    bool ok;
    char error[512];
    char sqlstate[8];
    char value[256]; /* first column of the first row, or "" */
    int rows;
    int64_t at_ms;
} outcome;

static void on_done(pg_job *job, const PGresult *res, const char *error, const char *sqlstate,
                    void *arg)
{
    outcome *o = arg;
    (void)job;
    cr_assert(!in_submit, "'done' fired inside pg_pool_submit");
    o->calls++;
    o->at_ms = itest_now_ms();
    o->ok = error == NULL;
    snprintf(o->error, sizeof(o->error), "%s", error ? error : "");
    snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", sqlstate ? sqlstate : "(null)");
    if (res) {
        o->rows = PQntuples(res);
        if (o->rows > 0 && PQnfields(res) > 0)
            snprintf(o->value, sizeof(o->value), "%s", PQgetvalue(res, 0, 0));
    }
}

static bool done_once(void *arg)
{
    return ((outcome *)arg)->calls > 0;
}

static bool prepare_next; /* the next submit asks for its statement to be prepared */

static pg_job *submit(const char *tenant, const char *sql, int n, const char *const *values,
                      outcome *o)
{
    pg_query q = {.tenant_id = tenant,
                  .sql = sql,
                  .n_params = n,
                  .values = values,
                  .done = on_done,
                  .arg = o,
                  .prepare = prepare_next};
    in_submit = true;
    pg_job *j = pg_pool_submit(pf.pool, &q);
    in_submit = false;
    return j;
}

/* Runs one job to its end and returns its outcome. */
static outcome run_job(const char *tenant, const char *sql, int n, const char *const *values)
{
    outcome o = {0};
    cr_assert(submit(tenant, sql, n, values, &o), "submit refused: %s", sql);
    cr_assert(pool_fixture_run_until(&pf, done_once, &o, DEADLINE_MS), "no answer to %s", sql);
    cr_assert_eq(o.calls, 1);
    return o;
}

static PGconn *owner_conn(void)
{
    char err[1024];
    PGconn *c = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(c, "%s", err);
    return c;
}

typedef struct many {
    outcome o[50];
} many;

static bool all_done(void *arg)
{
    many *m = arg;
    for (int i = 0; i < 50; i++)
        if (!m->o[i].calls)
            return false;
    return true;
}

Test(pg_pool, two_connections_answer_fifty_concurrent_jobs)
{
    static many m;
    memset(&m, 0, sizeof(m));
    pool_fixture_open(&pf, 2, 5000, 0);
    char vals[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(vals[i], sizeof(vals[i]), "%d", i);
        const char *v[1] = {vals[i]};
        cr_assert(submit(TENANT_A, "SELECT ($1::int * 2)::text", 1, v, &m.o[i]));
    }
    cr_assert(pool_fixture_run_until(&pf, all_done, &m, DEADLINE_MS), "not every job answered");
    for (int i = 0; i < 50; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i * 2);
        cr_expect_eq(m.o[i].calls, 1, "job %d: done fired %d times", i, m.o[i].calls);
        cr_expect(m.o[i].ok, "job %d: %s", i, m.o[i].error);
        cr_expect_str_eq(m.o[i].value, want, "job %d", i);
    }
    pool_fixture_wait_ready(&pf, 2, DEADLINE_MS);
}

Test(pg_pool, a_job_sees_only_its_tenants_rows_and_the_tenant_does_not_leak)
{
    PGconn *c = owner_conn();
    PGresult *r = itest_query(c,
                              "INSERT INTO voip_stores (tenant_id, store_id, name) VALUES "
                              "('" TENANT_A "', gen_random_uuid(), 'a-one'),"
                              "('" TENANT_A "', gen_random_uuid(), 'a-two'),"
                              "('" TENANT_B "', gen_random_uuid(), 'b-one')",
                              0, NULL);
    cr_assert(itest_ok(r), "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);

    pool_fixture_open(&pf, 1, 5000, 0);
    const char *sql = "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM voip_stores";
    outcome a = run_job(TENANT_A, sql, 0, NULL);
    cr_assert(a.ok, "%s", a.error);
    cr_expect_str_eq(a.value, "a-one,a-two");
    outcome b = run_job(TENANT_B, sql, 0, NULL);
    cr_assert(b.ok, "%s", b.error);
    cr_expect_str_eq(b.value, "b-one", "tenant B after A on the same connection");
    /* Outside a job's transaction the session names no tenant. */
    outcome none = run_job("", sql, 0, NULL);
    cr_assert(none.ok, "%s", none.error);
    cr_expect_str_eq(none.value, "");
}

Test(pg_pool, an_sql_error_fails_the_job_and_the_connection_serves_on)
{
    pool_fixture_open(&pf, 1, 5000, 0);
    outcome e = run_job(TENANT_A, "SELECT 1 / 0", 0, NULL);
    cr_expect(!e.ok);
    cr_expect_str_eq(e.error, "division by zero");
    cr_expect_str_eq(e.sqlstate, "22012");
    outcome w = run_job(TENANT_A, "SELECT count(*) FROM no_such_table", 0, NULL);
    cr_expect_str_eq(w.sqlstate, "42P01");
    outcome n = run_job(TENANT_A, "SELECT 'next'", 0, NULL);
    cr_expect(n.ok, "%s", n.error);
    cr_expect_str_eq(n.value, "next");
    cr_expect_str_eq(n.sqlstate, "");
    cr_expect_eq(pg_pool_ready(pf.pool), 1);
}

/* Runs 'sql' as a job that asks for its statement to be prepared. */
static outcome run_prepared(const char *tenant, const char *sql, int n, const char *const *values)
{
    prepare_next = true;
    outcome o = run_job(tenant, sql, n, values);
    prepare_next = false;
    return o;
}

static const char prepared_sql[] =
    "SELECT $1::int * 10 + (SELECT count(*) FROM pg_prepared_statements"
    " WHERE statement LIKE 'SELECT $1::int * 10%')";
static const char prepared_bad_sql[] = "SELECT count(*) FROM no_such_table WHERE $1::int > 0";
static const char listed_sql[] =
    "SELECT string_agg(name || ':' || generic_plans || '/' || custom_plans, ',' ORDER BY name)"
    " FROM pg_prepared_statements";

Test(pg_pool, a_prepared_statement_is_prepared_once_per_connection_and_its_plan_kept)
{
    pool_fixture_open(&pf, 1, 5000, 0);
    char v[8][4];
    for (int i = 0; i < 8; i++) {
        snprintf(v[i], sizeof(v[i]), "%d", i);
        const char *values[1] = {v[i]};
        outcome o = run_prepared(TENANT_A, prepared_sql, 1, values);
        cr_assert(o.ok, "run %d: %s", i, o.error);
        /* the value is its own, and the statement is prepared (once) from the first run on */
        char want[8];
        snprintf(want, sizeof(want), "%d", i * 10 + 1);
        cr_expect_str_eq(o.value, want, "run %d", i);
    }
    /* the same session: one statement, executed 8 times, its generic plan used at last */
    outcome l = run_job(TENANT_A, listed_sql, 0, NULL);
    cr_assert(l.ok, "%s", l.error);
    cr_expect(strncmp(l.value, "p0:", 3) == 0 && strchr(l.value, ',') == NULL, "%s", l.value);
    long generic = strtol(l.value + 3, NULL, 10);
    long custom = strtol(strchr(l.value, '/') + 1, NULL, 10);
    cr_expect_eq(generic + custom, 8, "%s", l.value);
    cr_expect_gt(generic, 0, "%s", l.value);

    /* a statement PostgreSQL cannot prepare fails its job, is not taken as prepared, and the
     * connection serves on, also for the statement prepared before */
    const char *one[1] = {"1"};
    for (int i = 0; i < 2; i++) {
        outcome e = run_prepared(TENANT_A, prepared_bad_sql, 1, one);
        cr_expect(!e.ok, "round %d", i);
        cr_expect_str_eq(e.sqlstate, "42P01", "round %d", i);
    }
    outcome again = run_prepared(TENANT_A, prepared_sql, 1, one);
    cr_expect(again.ok, "%s", again.error);
    cr_expect_str_eq(again.value, "11");
    outcome after = run_job(TENANT_A, listed_sql, 0, NULL);
    cr_expect(strncmp(after.value, "p0:", 3) == 0 && strchr(after.value, ',') == NULL, "%s",
              after.value);
    cr_expect_eq(pg_pool_ready(pf.pool), 1);
}

Test(pg_pool, a_statement_timeout_is_reported_as_such)
{
    pool_fixture_open(&pf, 1, 100, 0);
    int64_t t0 = itest_now_ms();
    outcome o = run_job(TENANT_A, "SELECT pg_sleep(1)", 0, NULL);
    cr_expect(!o.ok);
    cr_expect_str_eq(o.error, "statement timeout");
    cr_expect_str_eq(o.sqlstate, "57014");
    cr_expect_lt(o.at_ms - t0, 900);
    outcome n = run_job(TENANT_A, "SELECT 'after'", 0, NULL);
    cr_expect(n.ok, "%s", n.error);
}

Test(pg_pool, cancel_ends_a_running_query_and_drops_a_queued_one)
{
    pool_fixture_open(&pf, 1, 0, 0);
    pool_fixture_wait_ready(&pf, 1, DEADLINE_MS);
    outcome run = {0}, queued = {0};
    pg_job *rj = submit(TENANT_A, "SELECT pg_sleep(5)", 0, NULL, &run);
    pg_job *qj = submit(TENANT_A, "SELECT 1", 0, NULL, &queued);
    cr_assert(rj && qj);
    pg_job_cancel(qj);
    cr_expect_eq(queued.calls, 0, "'done' fired inside pg_job_cancel");
    cr_assert(pool_fixture_run_until(&pf, done_once, &queued, 1000));
    cr_expect_str_eq(queued.error, "canceled");

    itest_sleep_ms(200); /* let PostgreSQL start sleeping */
    event_base_loop(pf.base, EVLOOP_NONBLOCK);
    int64_t t0 = itest_now_ms();
    pg_job_cancel(rj);
    cr_assert(pool_fixture_run_until(&pf, done_once, &run, 3000));
    cr_expect_str_eq(run.error, "canceled");
    cr_expect_lt(run.at_ms - t0, 1000, "cancel took %lld ms", (long long)(run.at_ms - t0));
    outcome n = run_job(TENANT_A, "SELECT 'after'", 0, NULL);
    cr_expect(n.ok, "%s", n.error);
    cr_expect_str_eq(n.value, "after");
}

/* The single-row job below: checks order, pauses every 1,000 rows, resumes from a timer. */
typedef struct stream {
    outcome o;
    long long next;
    int pauses;
    pg_job *job;
    struct event *resume;
} stream;

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    stream *s = arg;
    (void)fd;
    (void)what;
    pg_job_resume(s->job);
}

static int on_row(pg_job *job, const PGresult *res, void *arg)
{
    stream *s = arg;
    cr_assert_eq(PQntuples(res), 1);
    long long v = atoll(PQgetvalue(res, 0, 0));
    cr_assert_eq(v, s->next, "row %lld arrived where %lld was due", v, s->next);
    s->next++;
    if (v % 1000 == 0) {
        s->job = job;
        s->pauses++;
        struct timeval tv = {0, 1000};
        evtimer_add(s->resume, &tv);
        return 1;
    }
    return 0;
}

static void stream_done(pg_job *job, const PGresult *res, const char *error, const char *sqlstate,
                        void *arg)
{
    stream *s = arg;
    cr_expect(res == NULL, "a single-row job ends without a result");
    on_done(job, res, error, sqlstate, &s->o);
}

Test(pg_pool, single_row_mode_streams_rows_in_order_with_pauses)
{
    pool_fixture_open(&pf, 1, 0, 0);
    stream s = {.next = 1};
    s.resume = evtimer_new(pf.base, resume_cb, &s);
    pg_query q = {.tenant_id = TENANT_A,
                  .sql = "SELECT g FROM generate_series(1, $1::int) g",
                  .n_params = 1,
                  .values = (const char *const[]){"100000"},
                  .on_row = on_row,
                  .done = stream_done,
                  .arg = &s};
    cr_assert(pg_pool_submit(pf.pool, &q));
    cr_assert(pool_fixture_run_until(&pf, done_once, &s.o, 60000));
    cr_expect(s.o.ok, "%s", s.o.error);
    cr_expect_eq(s.next, 100001, "rows delivered: %lld", s.next - 1);
    cr_expect_eq(s.pauses, 100);
    event_free(s.resume);
}

static int stop_at_first_row(pg_job *job, const PGresult *res, void *arg)
{
    (void)job;
    (void)res;
    ((stream *)arg)->next++;
    return -1;
}

Test(pg_pool, a_row_callback_can_cancel_its_job)
{
    pool_fixture_open(&pf, 1, 0, 0);
    stream s = {.next = 0};
    pg_query q = {.tenant_id = TENANT_A,
                  .sql = "SELECT g FROM generate_series(1, 2000000) g",
                  .on_row = stop_at_first_row,
                  .done = stream_done,
                  .arg = &s};
    cr_assert(pg_pool_submit(pf.pool, &q));
    cr_assert(pool_fixture_run_until(&pf, done_once, &s.o, 5000));
    cr_expect_str_eq(s.o.error, "canceled");
    cr_expect_eq(s.next, 1, "rows after the cancel reached the callback");
    outcome n = run_job(TENANT_A, "SELECT 'after'", 0, NULL);
    cr_expect(n.ok, "%s", n.error);
}

Test(pg_pool, sessions_run_without_jit_and_with_the_statement_timeout)
{
    pool_fixture_open(&pf, 1, 1500, 0);
    outcome j = run_job(TENANT_A, "SHOW jit", 0, NULL);
    cr_assert(j.ok, "%s", j.error);
    cr_expect_str_eq(j.value, "off");
    outcome t = run_job(TENANT_A, "SHOW statement_timeout", 0, NULL);
    cr_expect_str_eq(t.value, "1500ms");
    outcome ro = run_job(TENANT_A, "CREATE TEMP TABLE t (x int)", 0, NULL);
    cr_expect_str_eq(ro.sqlstate, "25006", "a job's transaction is read only");
}

static void terminate(const char *pid)
{
    char err[1024];
    const itest_env *e = itest_env_load(err, sizeof(err));
    cr_assert(e, "%s", err);
    PGconn *admin = PQconnectdb(e->pg_admin_url);
    cr_assert(PQstatus(admin) == CONNECTION_OK, "%s", PQerrorMessage(admin));
    PGresult *r =
        itest_query(admin, "SELECT pg_terminate_backend($1::int)", 1, (const char *const[]){pid});
    cr_assert(itest_ok(r), "%s", PQresultErrorMessage(r));
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(admin);
}

static bool pool_empty(void *arg)
{
    (void)arg;
    return pg_pool_ready(pf.pool) == 0;
}

Test(pg_pool, a_terminated_backend_is_replaced)
{
    pool_fixture_open(&pf, 1, 0, 0);
    outcome p1 = run_job(TENANT_A, "SELECT pg_backend_pid()::text", 0, NULL);
    cr_assert(p1.ok, "%s", p1.error);

    /* An idle connection cut by the server. */
    terminate(p1.value);
    cr_assert(pool_fixture_run_until(&pf, pool_empty, NULL, DEADLINE_MS),
              "the loss went unnoticed");
    pool_fixture_wait_ready(&pf, 1, DEADLINE_MS);
    outcome p2 = run_job(TENANT_A, "SELECT pg_backend_pid()::text", 0, NULL);
    cr_assert(p2.ok, "%s", p2.error);
    cr_expect_str_neq(p2.value, p1.value);

    /* A connection cut while its job runs. */
    outcome sleeping = {0};
    cr_assert(submit(TENANT_A, "SELECT pg_sleep(5)", 0, NULL, &sleeping));
    itest_sleep_ms(200);
    event_base_loop(pf.base, EVLOOP_NONBLOCK);
    terminate(p2.value);
    cr_assert(pool_fixture_run_until(&pf, done_once, &sleeping, 3000));
    cr_expect_str_eq(sleeping.error, "connection lost");
    pool_fixture_wait_ready(&pf, 1, DEADLINE_MS);
    outcome p3 = run_job(TENANT_A, "SELECT 'again'", 0, NULL);
    cr_expect(p3.ok, "%s", p3.error);
    cr_expect_str_eq(p3.value, "again");
}

typedef struct four {
    outcome o[4];
} four;

static bool four_done(void *arg)
{
    four *f = arg;
    for (int i = 0; i < 4; i++)
        if (!f->o[i].calls)
            return false;
    return true;
}

Test(pg_pool, submit_past_the_queue_limit_is_refused)
{
    pool_fixture_open(&pf, 1, 0, 3);
    pool_fixture_wait_ready(&pf, 1, DEADLINE_MS);
    four f = {0};
    outcome extra = {0};
    cr_assert(submit(TENANT_A, "SELECT pg_sleep(0.2)", 0, NULL, &f.o[0]), "runs at once");
    for (int i = 1; i < 4; i++)
        cr_assert(submit(TENANT_A, "SELECT 1", 0, NULL, &f.o[i]), "queued %d", i);
    cr_expect_null(submit(TENANT_A, "SELECT 1", 0, NULL, &extra));
    cr_assert(pool_fixture_run_until(&pf, four_done, &f, DEADLINE_MS));
    for (int i = 0; i < 4; i++)
        cr_expect(f.o[i].ok, "job %d: %s", i, f.o[i].error);
    cr_expect_eq(extra.calls, 0);
}

Test(pg_pool, destroy_fails_every_job_once)
{
    pool_fixture_open(&pf, 1, 0, 0);
    pool_fixture_wait_ready(&pf, 1, DEADLINE_MS);
    four f = {0};
    cr_assert(submit(TENANT_A, "SELECT pg_sleep(5)", 0, NULL, &f.o[0]));
    for (int i = 1; i < 4; i++)
        cr_assert(submit(TENANT_A, "SELECT 1", 0, NULL, &f.o[i]));
    event_base_loop(pf.base, EVLOOP_NONBLOCK);
    pg_pool_destroy(pf.pool);
    pf.pool = NULL;
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(f.o[i].calls, 1, "job %d: done fired %d times", i, f.o[i].calls);
        cr_expect_str_eq(f.o[i].error, "shutting down", "job %d", i);
    }
    /* Nothing fires later. */
    event_base_loop(pf.base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(f.o[i].calls, 1);
}
