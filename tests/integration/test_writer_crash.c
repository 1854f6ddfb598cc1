/* test_writer_crash.c - cdr-writer under failure, against a real PostgreSQL and Redis: killed
 * with SIGKILL again and again during a load, PostgreSQL stopped under it, two writers on one
 * consumer group, Redis lost and restarted from its append-only file. Each time every CDR lands
 * exactly once, and the rollups, the callback state and the store names equal a recomputation
 * from the stored CDRs (docs/writer.md, sql/001_schema.sql, sql/003_read_grains.sql,
 * sql/004_agent_grain.sql). */
#include <criterion/criterion.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cdr_codec.h"
#include "db_fixture.h"
#include "itest.h"
#include "oracle_sql.h"
#include "pg_stack.h"
#include "proc.h"
#include "redis_own.h"
#include "writer_run.h"

#define GROUP            "itest-writers"
#define N_TENANTS        5
#define ENTRY_MAX_ROWS   500
#define DUP_PER_MILLE    50 /* rows of an entry that repeat a CDR of an earlier entry */
#define DRAIN_TIMEOUT_MS 180000
#define US               TIMEFMT_US_PER_SEC
#define BASE_TS          INT64_C(1735689600) /* 2025-01-01T00:00:00Z */
#define SPAN_S           INT64_C(6480000)    /* 75 days: January to mid-March, three partitions */
#define N_MONTHS         3

/* ------------------------------------------------------------------------------------------ */
/* What one test runs (each Criterion test is a process of its own) */

static struct {
    char dir[1100];
    char key[160];
    char redis_url[ITEST_URL_MAX];
    redisContext *redis;
    redis_own own; /* a Redis of the test's own, for the Redis outage */
    itest_db db;
    char writer_pg_url[ITEST_URL_MAX];
    writer_run w[2];
    bool pg_down;
    uint64_t seed;
    json_t *meta;
} t;

/* splitmix64: a small seeded generator, so a failing run can be replayed from its seed. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static long rng_below(rng *r, long n)
{
    return (long)(rng_next(r) % (uint64_t)n);
}

static uint64_t pick_seed(void)
{
    const char *s = getenv("CDR_TEST_SEED");
    if (s && *s)
        return strtoull(s, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
}

/* Runs cdrctl migrate on the test's database as its owner. */
static void setup(void)
{
    char err[1024];
    const itest_env *env = redis_stack_env();
    snprintf(t.dir, sizeof(t.dir), "%s/wcrash-XXXXXX", env->dir);
    cr_assert(mkdtemp(t.dir), "mkdtemp %s: %s", t.dir, strerror(errno));
    snprintf(t.key, sizeof(t.key), "itest:wcrash:%d:%s", (int)getpid(),
             criterion_current_test->name);
    snprintf(t.redis_url, sizeof(t.redis_url), "%s", env->redis_url);
    t.redis = redis_open(atoi(env->redis_port), NULL);
    t.seed = pick_seed();
    fprintf(stderr, "writer_crash.%s: seed %" PRIu64 " (CDR_TEST_SEED=%" PRIu64 " replays it)\n",
            criterion_current_test->name, t.seed, t.seed);
    cr_assert(itest_db_create(&t.db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&t.db, (const char *const[]){"migrate", NULL});
    cr_assert(itest_db_url(&t.db, "cdr_writer", t.writer_pg_url, sizeof(t.writer_pg_url)) == 0);
    t.meta = json_pack("{s:s, s:s}", "hangup_cause", "NORMAL_CLEARING", "note", "a\ttab \\ here");
    cr_assert(t.meta);
}

/* Cleans up after a test, also one that failed half-way (its assertions already said why). */
static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        proc_kill(t.w[i].pid);
    if (t.pg_down)
        pg_stack_start();
    if (t.own.pid) {
        redis_own_kill(&t.own);
    } else if (t.redis && !t.redis->err) {
        redisReply *r = redisCommand(t.redis, "DEL %s %s:dead", t.key, t.key);
        freeReplyObject(r);
    }
    if (t.redis)
        redisFree(t.redis);
    itest_db_drop(&t.db);
    json_decref(t.meta);
}

TestSuite(writer_crash, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------------------------------ */
/* The CDRs: CDR number 'i' is always the same call, so a duplicate is the same row again */

typedef struct gen_cdr {
    cdr_record r;
    char call_id[48], customer[24], did[24], ext[8], store_name[16], url[64];
} gen_cdr;

static cdr_str slice(const char *s)
{
    return (cdr_str){s, strlen(s)};
}

/* Fills 'g' with CDR number 'i': five tenants; four stores each plus calls of no store; six
 * extensions per store, each with one user; customers that call many times; every disposition;
 * QoS on most answered calls; start times over three UTC months. The QoS values are multiples
 * of 1/4, which real and double precision hold exactly, so sums do not depend on their order. */
static void make_cdr(long i, gen_cdr *g)
{
    memset(g, 0, sizeof(*g));
    cdr_record *r = &g->r;
    int tn = (int)(i % N_TENANTS) + 1;
    int s = (int)(i / N_TENANTS % 5); /* 0-3 a store; 4 none */
    int e = (int)(i / 25 % 7);        /* 0-5 an extension of the store; 6 none */
    bool store = s < 4, ext = store && e < 6;
    snprintf(r->tenant_id, sizeof(r->tenant_id), "a0000000-0000-4000-8000-%012d", tn);
    snprintf(r->sip_domain, sizeof(r->sip_domain), "t%d.example.it", tn);
    /* Every tenth call reuses the call_id of the call five before (same tenant) at another
     * start: a distinct key all the same. */
    snprintf(g->call_id, sizeof(g->call_id), "call-%07ld@pbx", i % 10 == 9 ? i - 5 : i);
    r->call_id = slice(g->call_id);
    if (store) {
        snprintf(r->store_id, sizeof(r->store_id), "b0000000-0000-4000-8000-0000000000%c%c",
                 '0' + tn, '1' + s);
        snprintf(g->store_name, sizeof(g->store_name), "Store %d%d", tn, s + 1);
        r->store_name = slice(g->store_name);
    }
    if (ext) {
        snprintf(g->ext, sizeof(g->ext), "%d%02d", s + 1, e);
        r->ext_number = slice(g->ext);
        snprintf(r->user_id, sizeof(r->user_id), "c0000000-0000-4000-8000-%012d",
                 tn * 100 + (s + 1) * 10 + e);
    }
    snprintf(g->customer, sizeof(g->customer), "+3933%07ld", i * 31 % 2000);
    r->direction = i % 3 == 1 ? CDR_DIR_OUT : CDR_DIR_IN;
    if (r->direction == CDR_DIR_IN) {
        snprintf(g->did, sizeof(g->did), "+3906123450%d%d", tn, store ? s + 1 : 0);
        r->from_uri = slice(g->customer);
        r->to_uri = slice(ext ? g->ext : g->did);
        r->did_e164 = slice(g->did);
    } else {
        r->from_uri = slice(ext ? g->ext : "+390699900000");
        r->to_uri = slice(g->customer);
    }
    r->start_ts = (BASE_TS + i * 7919 % SPAN_S) * US + (i % 3 == 0 ? 250000 : 0);
    static const cdr_disposition disp[10] = {
        CDR_DISP_ANSWERED, CDR_DISP_ANSWERED, CDR_DISP_ANSWERED,  CDR_DISP_ANSWERED,
        CDR_DISP_ANSWERED, CDR_DISP_ANSWERED, CDR_DISP_NO_ANSWER, CDR_DISP_NO_ANSWER,
        CDR_DISP_BUSY,     CDR_DISP_FAILED};
    r->disposition = disp[i % 10];
    if (r->disposition == CDR_DISP_ANSWERED) {
        r->has_answer = true;
        r->answer_ts = r->start_ts + (1 + i % 29) * US;
        r->billsec = (int32_t)(i * 13 % 600);
        r->end_ts = r->answer_ts + r->billsec * US;
        if (i % 4 != 0) {
            r->has_mos = r->has_jitter = true;
            r->mos = 1.0 + 0.25 * (double)(i / 3 % 17);
            r->jitter_ms = 0.5 * (double)(i % 61);
            r->has_loss = i % 8 != 1;
            r->loss_pct = r->has_loss ? 0.25 * (double)(i % 41) : 0;
        }
        if (i % 5 == 0) {
            snprintf(g->url, sizeof(g->url), "https://rec.example.it/%ld.wav", i);
            r->recording_url = slice(g->url);
        }
    } else {
        r->end_ts = r->start_ts + (1 + i % 40) * US;
    }
    r->meta = i % 7 == 0 ? t.meta : NULL;
}

/* A load appended to the test's stream, and what PostgreSQL must hold once it is drained. */
typedef struct load {
    rng rng;
    long total;   /* distinct CDRs to append */
    long next;    /* CDRs 0 .. next-1 are appended */
    long rows;    /* rows appended, duplicates included */
    long dups;    /* rows that repeat an earlier CDR */
    long entries; /* stream entries appended */
    long long billsec_sum, answered, with_mos;
    char last_id[64]; /* the id of the last entry appended */
    cdr_buf buf, zbuf;
} load;

static void load_init(load *l, long total)
{
    memset(l, 0, sizeof(*l));
    l->rng.s = t.seed;
    l->total = total;
}

static void load_free(load *l)
{
    cdr_buf_free(&l->buf);
    cdr_buf_free(&l->zbuf);
}

/* Appends one entry of 1..ENTRY_MAX_ROWS rows: new CDRs, and about one row in twenty the same
 * row as a CDR of an earlier entry, as a client that retries sends it. One entry in three is
 * zstd-framed. */
static void load_entry(load *l)
{
    long first = l->next; /* CDRs below this one are in earlier entries */
    long want = 1 + rng_below(&l->rng, ENTRY_MAX_ROWS);
    int n = 0;
    cdr_time now = timefmt_now();
    gen_cdr g;
    cdr_buf_reset(&l->buf);
    while (n < want) {
        long i;
        bool fresh = false;
        if (first > 0 && rng_below(&l->rng, 1000) < DUP_PER_MILLE) {
            i = rng_below(&l->rng, first);
            l->dups++;
        } else if (l->next < l->total) {
            i = l->next++;
            fresh = true;
        } else {
            break;
        }
        make_cdr(i, &g);
        if (fresh) {
            l->billsec_sum += g.r.billsec;
            l->answered += g.r.disposition == CDR_DISP_ANSWERED;
            l->with_mos += g.r.has_mos;
        }
        cr_assert(cdr_codec_append_cdr(&l->buf, &g.r, now) == 0, "out of memory");
        n++;
    }
    if (n == 0)
        return;
    const char *enc = CDR_CODEC_ENC_PLAIN, *rows = l->buf.data;
    size_t len = l->buf.len;
    if (l->entries % 3 == 2) {
        cdr_buf_reset(&l->zbuf);
        cr_assert(cdr_codec_compress(rows, len, &l->zbuf) == 0, "zstd failed");
        enc = CDR_CODEC_ENC_ZSTD;
        rows = l->zbuf.data;
        len = l->zbuf.len;
    }
    char nbuf[16];
    snprintf(nbuf, sizeof(nbuf), "%d", n);
    const char *argv[] = {
        "XADD", t.key, "*",    "v", CDR_CODEC_VERSION, "kind", CDR_CODEC_KIND_CDR, "n", nbuf,
        "enc",  enc,   "rows", rows};
    size_t argvlen[CDR_ARRAY_LEN(argv)];
    for (size_t k = 0; k < CDR_ARRAY_LEN(argv); k++)
        argvlen[k] = strlen(argv[k]);
    argvlen[CDR_ARRAY_LEN(argv) - 1] = len;
    redisReply *r = redisCommandArgv(t.redis, (int)CDR_ARRAY_LEN(argv), argv, argvlen);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD: %s",
              r ? (r->str ? r->str : "unexpected reply") : t.redis->errstr);
    snprintf(l->last_id, sizeof(l->last_id), "%s", r->str);
    freeReplyObject(r);
    l->rows += n;
    l->entries++;
}

/* Appends what is due by now of a load spread evenly over 'load_ms' from 't0'. */
static void load_pace(load *l, int64_t t0, int load_ms)
{
    int64_t elapsed = itest_now_ms() - t0;
    long target = elapsed >= load_ms ? l->total : (long)(l->total * elapsed / load_ms);
    while (l->next < target)
        load_entry(l);
}

/* ------------------------------------------------------------------------------------------ */
/* cdr-writer */

/* Starts cdr-writer in 'w' as consumer 'consumer' of GROUP on the test's stream and database,
 * with CDR_WRITER_CLAIM_IDLE_MS 'claim_idle_ms' unless it is 0. Does not wait for it. */
static void writer_spawn(writer_run *w, const char *consumer, int claim_idle_ms)
{
    char redis[ITEST_URL_MAX + 16], key[200], cons[300], pg[ITEST_URL_MAX + 24], claim[64];
    char log[1200];
    snprintf(redis, sizeof(redis), "CDR_REDIS_URL=%s", t.redis_url);
    snprintf(key, sizeof(key), "CDR_STREAM_KEY=%s", t.key);
    snprintf(cons, sizeof(cons), "CDR_WRITER_CONSUMER=%s", consumer);
    snprintf(pg, sizeof(pg), "CDR_WRITER_PG_URL=%s", t.writer_pg_url);
    snprintf(claim, sizeof(claim), "CDR_WRITER_CLAIM_IDLE_MS=%d", claim_idle_ms);
    snprintf(log, sizeof(log), "%s/writer-%d.log", t.dir, (int)(w - t.w));
    const char *env[] = {redis,
                         key,
                         cons,
                         pg,
                         "CDR_WRITER_GROUP=" GROUP,
                         "CDR_WRITER_BATCH=2000",
                         "CDR_WRITER_FLUSH_MS=100",
                         "CDR_LOG_LEVEL=info",
                         claim_idle_ms ? claim : NULL,
                         NULL};
    writer_run_spawn(w, log, consumer, env);
}

/* Goes on with the load 'l' of 'load_ms' begun at 't0' for 'ms' milliseconds, asserting
 * meanwhile that the started writers keep running. */
static void load_for(load *l, int64_t t0, int load_ms, int ms)
{
    int64_t end = itest_now_ms() + ms;
    while (itest_now_ms() < end) {
        load_pace(l, t0, load_ms);
        for (int i = 0; i < 2; i++)
            if (t.w[i].pid)
                writer_run_alive(&t.w[i]);
        itest_sleep_ms(10);
    }
}

/* Goes on with the load 'l' of 'load_ms' begun at 't0' until it is all appended. */
static void load_rest(load *l, int64_t t0, int load_ms)
{
    int64_t left = t0 + load_ms - itest_now_ms();
    load_for(l, t0, load_ms, left > 0 ? (int)left : 0);
    load_pace(l, t0, load_ms);
    cr_assert_eq(l->next, l->total);
}

/* ------------------------------------------------------------------------------------------ */
/* The consumer group and what PostgreSQL holds */

/* Compares stream ids "ms-seq". */
static int id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

/* The group's pending count and last delivered id (XINFO GROUPS). Returns false while the
 * group does not exist. */
static bool group_state(long long *pending, char *last, size_t lastlen)
{
    bool found = false;
    redisReply *r = redis_cmd(t.redis, "XINFO GROUPS %s", t.key);
    for (size_t i = 0; i < r->elements && !found; i++) {
        const redisReply *g = r->element[i];
        const char *name = "", *id = "";
        long long n = 0;
        for (size_t k = 0; k + 1 < g->elements; k += 2) {
            const char *f = g->element[k]->str;
            const redisReply *v = g->element[k + 1];
            if (strcmp(f, "name") == 0)
                name = v->str;
            else if (strcmp(f, "pending") == 0)
                n = v->integer;
            else if (strcmp(f, "last-delivered-id") == 0)
                id = v->str;
        }
        if ((found = strcmp(name, GROUP) == 0)) {
            *pending = n;
            snprintf(last, lastlen, "%s", id);
        }
    }
    freeReplyObject(r);
    return found;
}

/* How many entries of the stream were delivered to the group and are still there, yet are no
 * longer pending: acknowledged and not deleted. The first one's id goes to 'example'. */
static long long acked_in_stream(char *example, size_t len)
{
    long long pending, n = 0;
    char last[64];
    if (!group_state(&pending, last, sizeof(last)))
        return 0;
    redisReply *s = redis_cmd(t.redis, "XRANGE %s - %s", t.key, last);
    redisReply *p = redis_cmd(t.redis, "XPENDING %s %s - + 1000000", t.key, GROUP);
    size_t j = 0;
    for (size_t i = 0; i < s->elements; i++) {
        const char *id = s->element[i]->element[0]->str;
        while (j < p->elements && id_cmp(p->element[j]->element[0]->str, id) < 0)
            j++;
        if ((j == p->elements || id_cmp(p->element[j]->element[0]->str, id) != 0) && n++ == 0)
            snprintf(example, len, "%s", id);
    }
    freeReplyObject(s);
    freeReplyObject(p);
    return n;
}

static long long group_pending(void)
{
    long long pending = 0;
    char last[64];
    return group_state(&pending, last, sizeof(last)) ? pending : 0;
}

/* Waits until every entry of 'l' was delivered to the group and none is pending any more,
 * while the running writers keep running. */
static void wait_drained(const load *l)
{
    int64_t deadline = itest_now_ms() + DRAIN_TIMEOUT_MS;
    for (;;) {
        long long pending = -1;
        char last[64] = "0-0";
        bool found = group_state(&pending, last, sizeof(last));
        if (found && pending == 0 && id_cmp(last, l->last_id) >= 0)
            return;
        for (int i = 0; i < 2; i++)
            if (t.w[i].pid)
                writer_run_alive(&t.w[i]);
        cr_assert(itest_now_ms() < deadline,
                  "not drained after %d s: group %s, %lld pending, last delivered %s, last "
                  "appended %s, XLEN %lld; seed %" PRIu64 "; writer log:\n%s",
                  DRAIN_TIMEOUT_MS / 1000, found ? "present" : "missing", pending, last, l->last_id,
                  redis_xlen(t.redis, t.key), t.seed, proc_log_tail(t.w[0].log));
        itest_sleep_ms(100);
    }
}

static long long scalar(PGconn *c, const char *sql)
{
    char err[1024];
    long long v = -1;
    cr_assert(itest_scalar(c, sql, 0, NULL, &v, err, sizeof(err)) == 0, "%s: %s", sql, err);
    return v;
}

/* Expects the bigint that 'sql' returns to be 'want'; 'what' says what it counts. */
static void expect_scalar(PGconn *c, const char *sql, long long want, const char *what)
{
    long long got = scalar(c, sql);
    cr_expect_eq(got, want, "%s: %lld, expected %lld (seed %" PRIu64 ")", what, got, want, t.seed);
}

/* Expects the rows of query 'stored' (the table 'what' as the writer kept it) and of query
 * 'recomputed' (the same from voip_cdr) to be the same, compared with EXCEPT ALL both ways. */
static void expect_same(PGconn *c, const char *what, const char *recomputed, const char *stored)
{
    const char *const pair[2][2] = {{recomputed, stored}, {stored, recomputed}};
    static const char *const says[2] = {"rows of the recomputation from voip_cdr are missing",
                                        "rows are there that the recomputation does not give"};
    for (int k = 0; k < 2; k++) {
        char sql[8192];
        int len = snprintf(sql, sizeof(sql),
                           "SELECT count(*) OVER (), d::text FROM ((%s) EXCEPT ALL (%s)) d LIMIT 3",
                           pair[k][0], pair[k][1]);
        cr_assert(len > 0 && (size_t)len < sizeof(sql), "%s: the comparison does not fit", what);
        PGresult *res = itest_query(c, sql, 0, NULL);
        cr_assert(itest_ok(res), "%s: %s", what, PQresultErrorMessage(res));
        int n = PQntuples(res);
        cr_expect_eq(n, 0, "%s: %s %s, e.g.\n%s\n%s\n%s\n(seed %" PRIu64 ")", what,
                     n ? PQgetvalue(res, 0, 0) : "0", says[k], n > 0 ? PQgetvalue(res, 0, 1) : "",
                     n > 1 ? PQgetvalue(res, 1, 1) : "", n > 2 ? PQgetvalue(res, 2, 1) : "",
                     t.seed);
        PQclear(res);
    }
}

/* The rollup 'table', its rows keyed by the columns 'key' and holding the measures then the
 * columns 'extra' (with a leading comma, or ""), against 'oracle', its recomputation from
 * voip_cdr under the same column names. */
static void expect_rollup(PGconn *c, const char *table, const char *key, const char *extra,
                          const char *oracle)
{
    char recomputed[4096], stored[1024];
    int n = snprintf(recomputed, sizeof(recomputed),
                     "SELECT %s, " ORACLE_MEASURE_COLUMNS "%s FROM (%s) AS o", key, extra, oracle);
    cr_assert(n > 0 && (size_t)n < sizeof(recomputed), "%s: the recomputation does not fit", table);
    n = snprintf(stored, sizeof(stored), "SELECT %s, " ORACLE_MEASURE_COLUMNS "%s FROM %s", key,
                 extra, table);
    cr_assert(n > 0 && (size_t)n < sizeof(stored), "%s: the query does not fit", table);
    expect_same(c, table, recomputed, stored);
}

/* Asserts what a user of the database sees once the load 'l' is drained: each distinct CDR
 * once, none refused, and every table kept from them equal to its recomputation. */
static void expect_exactly_once(const load *l)
{
    char err[1024];
    PGconn *c = itest_db_connect(&t.db, NULL, err, sizeof(err));
    cr_assert(c, "%s", err);
    fprintf(stderr,
            "writer_crash: %ld distinct CDRs appended in %ld rows (%ld duplicates), %ld "
            "entries\n",
            l->next, l->rows, l->dups, l->entries);
    expect_scalar(c, "SELECT count(*) FROM voip_cdr", l->next, "CDRs stored");
    expect_scalar(c,
                  "SELECT count(*) FROM (SELECT 1 FROM voip_cdr "
                  "GROUP BY tenant_id, call_id, start_ts HAVING count(*) > 1) d",
                  0, "keys stored twice");
    expect_scalar(c, "SELECT COALESCE(sum(billsec), 0) FROM voip_cdr", l->billsec_sum,
                  "billsec of the CDRs stored");
    expect_scalar(c, "SELECT count(*) FROM voip_cdr WHERE disposition = 'ANSWERED'", l->answered,
                  "answered CDRs stored");
    expect_scalar(c, "SELECT count(mos) FROM voip_cdr", l->with_mos, "CDRs with MOS stored");
    expect_scalar(c, "SELECT count(DISTINCT tableoid) FROM voip_cdr", N_MONTHS,
                  "monthly partitions holding the CDRs");
    expect_scalar(c, "SELECT count(*) FROM voip_cdr_staging", 0, "rows left in voip_cdr_staging");
    PGresult *rej =
        itest_query(c, "SELECT count(*) OVER (), reason FROM voip_cdr_rejects LIMIT 1", 0, NULL);
    cr_assert(itest_ok(rej), "%s", PQresultErrorMessage(rej));
    cr_expect_eq(PQntuples(rej), 0, "%s valid CDRs were refused, e.g.: %s",
                 PQntuples(rej) ? PQgetvalue(rej, 0, 0) : "",
                 PQntuples(rej) ? PQgetvalue(rej, 0, 1) : "");
    PQclear(rej);
    char dead[200];
    snprintf(dead, sizeof(dead), "%s:dead", t.key);
    cr_expect_eq(redis_xlen(t.redis, dead), 0, "valid entries went to the dead-letter stream");

    expect_rollup(c, "voip_cdr_rollup_store_hour", "tenant_id, hour, store_id, direction", "",
                  ORACLE_STORE_HOUR("true"));
    expect_rollup(c, "voip_cdr_rollup_store_day", "tenant_id, day, store_id, direction", "",
                  ORACLE_STORE_DAY("true"));
    /* Each extension has one user, so its latest is the same whatever order batches came in. */
    expect_rollup(c, "voip_cdr_rollup_ext_day", "tenant_id, day, ext_number",
                  ", in_missed, user_id", ORACLE_EXT_DAY("true"));
    expect_rollup(c, "voip_cdr_rollup_ext_month", "tenant_id, month, ext_number",
                  ", in_missed, user_id", ORACLE_EXT_MONTH("true"));
    expect_same(c, "voip_callback_state", ORACLE_CALLBACK_STATE("true"),
                "SELECT " ORACLE_CALLBACK_COLUMNS " FROM voip_callback_state");
    expect_same(c, "voip_stores",
                "SELECT DISTINCT tenant_id, store_id, 'Store ' || right(store_id::text, 2) "
                "FROM voip_cdr WHERE store_id IS NOT NULL",
                "SELECT tenant_id, store_id, name FROM voip_stores");
    PQfinish(c);
}

/* ------------------------------------------------------------------------------------------ */
/* The tests */

#define LOAD1_CDRS 200000
#define LOAD1_MS   20000

/* One writer, killed with SIGKILL 10 to 20 times at random moments of a 200,000-CDR load and
 * started again each time: every other time under the same consumer name, the others under a
 * new one, so that the dead consumer's entries are left for XAUTOCLAIM. */
Test(writer_crash, sigkill_during_load_loses_and_doubles_nothing, .timeout = 320)
{
    load l;
    load_init(&l, LOAD1_CDRS);
    rng sched = {t.seed ^ UINT64_C(0x5bd1e9955bd1e995)};
    int kills = 10 + (int)rng_below(&sched, 11);
    char consumer[32] = "writer-a";
    writer_run *w = &t.w[0];
    writer_spawn(w, consumer, 500);
    writer_run_ready(w);

    int64_t t0 = itest_now_ms(), next_kill = t0 + 200 + rng_below(&sched, 2000);
    int done = 0;
    while (done < kills || l.next < l.total) {
        load_pace(&l, t0, LOAD1_MS);
        if (done < kills && itest_now_ms() >= next_kill) {
            writer_run_kill(w);
            done++;
            if (done % 2)
                snprintf(consumer, sizeof(consumer), "writer-k%d", done);
            else
                snprintf(consumer, sizeof(consumer), "writer-a");
            fprintf(stderr,
                    "writer_crash: kill %d of %d at %lld ms, %ld CDRs appended; back as %s\n", done,
                    kills, (long long)(itest_now_ms() - t0), l.next, consumer);
            writer_spawn(w, consumer, 500);
            next_kill = itest_now_ms() + 200 + rng_below(&sched, 2000);
        }
        itest_sleep_ms(5);
    }
    wait_drained(&l);
    writer_run_stop(w);
    expect_exactly_once(&l);
    load_free(&l);
}

#define LOAD2_CDRS 60000
#define LOAD2_MS   40000
#define OUTAGE_MS  30000

/* PostgreSQL stopped for 30 s while CDRs keep coming: the writer stays up without spinning,
 * acknowledges and deletes nothing meanwhile, and stores everything once PostgreSQL is back. */
Test(writer_crash, postgresql_outage_holds_the_backlog_in_redis, .timeout = 200)
{
    load l;
    load_init(&l, LOAD2_CDRS);
    writer_run *w = &t.w[0];
    writer_spawn(w, "writer-a", 0);
    writer_run_ready(w);
    int64_t t0 = itest_now_ms();
    load_for(&l, t0, LOAD2_MS, 4000);

    pg_stack_stop();
    t.pg_down = true;
    /* A batch committed just before the stop may still be acknowledged. */
    load_for(&l, t0, LOAD2_MS, 1000);
    long long xlen = redis_xlen(t.redis, t.key), pending = group_pending();
    double cpu0 = writer_run_cpu_s(w->pid);
    int64_t down = itest_now_ms();
    while (itest_now_ms() - down < OUTAGE_MS) {
        load_for(&l, t0, LOAD2_MS, 100);
        long long x = redis_xlen(t.redis, t.key), p = group_pending();
        cr_assert_geq(x, xlen,
                      "XLEN fell from %lld to %lld with PostgreSQL down: entries were "
                      "deleted that could not have been stored",
                      xlen, x);
        cr_assert_geq(p, pending,
                      "the pending count fell from %lld to %lld with PostgreSQL down: "
                      "entries were acknowledged that could not have been stored",
                      pending, p);
        char id[64] = "";
        long long acked = acked_in_stream(id, sizeof(id));
        cr_assert_eq(acked, 0,
                     "with PostgreSQL down, %lld entries delivered to the writer are "
                     "no longer pending but still in the stream (e.g. %s): acknowledged before "
                     "they could be stored",
                     acked, id);
        xlen = x;
        pending = p;
    }
    double cpu_s = writer_run_cpu_s(w->pid) - cpu0;
    int ready = writer_run_get(w, "/readyz", NULL);
    pg_stack_start();
    t.pg_down = false;
    cr_expect_lt(cpu_s, 2.0, "cdr-writer used %.2f s of CPU in %d s without PostgreSQL", cpu_s,
                 OUTAGE_MS / 1000);
    cr_expect_neq(ready, 200, "/readyz answers 200 with PostgreSQL down");
    fprintf(stderr,
            "writer_crash: %.2f s CPU during the outage, %lld entries in the stream, "
            "%lld pending\n",
            cpu_s, xlen, pending);

    load_rest(&l, t0, LOAD2_MS);
    wait_drained(&l);
    cr_expect_eq(writer_run_get(w, "/readyz", NULL), 200, "/readyz once PostgreSQL is back");
    writer_run_stop(w);
    expect_exactly_once(&l);
    load_free(&l);
}

#define LOAD3_CDRS 50000
#define LOAD3_MS   8000

/* Whether the file 'path' mentions a deadlock (PostgreSQL's message or its SQLSTATE). */
static bool mentions_deadlock(const char *path)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: %s", path, strerror(errno));
    while (!found && fgets(line, sizeof(line), f))
        found = strcasestr(line, "deadlock") || strstr(line, "40P01");
    fclose(f);
    return found;
}

/* Two writers on the same stream and group at once, whose batches share rollup rows and
 * duplicate keys: no deadlock, both take a share, every CDR once. */
Test(writer_crash, two_writers_share_one_group, .timeout = 150)
{
    load l;
    load_init(&l, LOAD3_CDRS);
    writer_spawn(&t.w[0], "writer-a", 0);
    writer_spawn(&t.w[1], "writer-b", 0);
    writer_run_ready(&t.w[0]);
    writer_run_ready(&t.w[1]);
    load_rest(&l, itest_now_ms(), LOAD3_MS);
    wait_drained(&l);

    long long inserted[2];
    for (int i = 0; i < 2; i++) {
        char *body = NULL;
        int status = writer_run_get(&t.w[i], "/metrics", &body);
        cr_assert_eq(status, 200, "GET /metrics of writer %d: %d", i, status);
        inserted[i] = writer_run_metric(body, "cdr_writer_rows_inserted_total");
        free(body);
    }
    writer_run_stop(&t.w[0]);
    writer_run_stop(&t.w[1]);
    for (int i = 0; i < 2; i++) {
        cr_expect(!mentions_deadlock(t.w[i].log), "writer %d logged a deadlock:\n%s", i,
                  proc_log_tail(t.w[i].log));
        cr_expect_gt(inserted[i], 0, "writer %d inserted %lld rows", i, inserted[i]);
    }
    cr_expect_eq(inserted[0] + inserted[1], l.next,
                 "the writers counted %lld + %lld rows inserted for %ld distinct CDRs", inserted[0],
                 inserted[1], l.next);
    expect_exactly_once(&l);
    load_free(&l);
}

#define LOAD4_CDRS 50000
#define LOAD4_MS   10000
#define REDIS_DOWN 5000

/* The writer's Redis killed mid-load and started again 5 s later from its append-only file:
 * the writer reconnects on its own and everything lands once. */
Test(writer_crash, redis_outage_then_restart_from_its_aof, .timeout = 150)
{
    redis_own_start(&t.own, t.dir, NULL, false);
    redisFree(t.redis);
    t.redis = redis_open(t.own.port, NULL);
    snprintf(t.redis_url, sizeof(t.redis_url), "%s", t.own.url);

    load l;
    load_init(&l, LOAD4_CDRS);
    writer_run *w = &t.w[0];
    writer_spawn(w, "writer-a", 1000);
    writer_run_ready(w);
    int64_t t0 = itest_now_ms();
    load_for(&l, t0, LOAD4_MS, LOAD4_MS * 2 / 5);

    redis_own_kill(&t.own);
    redisFree(t.redis);
    t.redis = NULL;
    int64_t down = itest_now_ms();
    while (itest_now_ms() - down < REDIS_DOWN) {
        writer_run_alive(w);
        itest_sleep_ms(100);
    }
    redis_own_start(&t.own, t.dir, NULL, false);
    t.redis = redis_open(t.own.port, NULL);
    t0 += itest_now_ms() - down; /* the load goes on where it stopped */

    load_rest(&l, t0, LOAD4_MS);
    wait_drained(&l);
    writer_run_stop(w);
    expect_exactly_once(&l);
    load_free(&l);
}
