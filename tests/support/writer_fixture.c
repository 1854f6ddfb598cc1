/* writer_fixture.c - one cdr-writer under test: its database, stream and process, entries, rows
 * and metrics. */
#include "writer_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cdr_codec.h"
#include "db_fixture.h"
#include "proc.h"
#include "redis_own.h"

#define LOCALHOST        "127.0.0.1"
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000
#define DRAIN_TIMEOUT_MS 15000

writer_fixture wfix;

static void exec_ok(const char *sql, int n, const char *const *params)
{
    PGresult *r = itest_query(wfix.pg, sql, n, params);
    cr_assert(itest_ok(r), "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

void writer_setup(void)
{
    char err[1024];
    const itest_env *env = redis_stack_env();
    snprintf(wfix.dir, sizeof(wfix.dir), "%s/writer-XXXXXX", env->dir);
    cr_assert(mkdtemp(wfix.dir), "mkdtemp %s: %s", wfix.dir, strerror(errno));
    snprintf(wfix.key, sizeof(wfix.key), "itest:writer:%d:%s", (int)getpid(),
             criterion_current_test->name);
    snprintf(wfix.dead_key, sizeof(wfix.dead_key), "%s:dead", wfix.key);
    snprintf(wfix.redis_url, sizeof(wfix.redis_url), "%s", env->redis_url);
    wfix.redis = redis_open(atoi(env->redis_port), NULL);
    cr_assert(itest_db_create(&wfix.db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&wfix.db, (const char *const[]){"migrate", NULL});
    wfix.pg = itest_db_connect(&wfix.db, NULL, err, sizeof(err));
    cr_assert(wfix.pg, "%s", err);
    exec_ok("SET TimeZone = 'UTC'", 0, NULL);
}

/* Cleans up after a test, also one that failed half-way (its assertions already said why). */
void writer_teardown(void)
{
    proc_kill(wfix.pid);
    if (wfix.redis && !wfix.redis->err) {
        redisReply *r = redisCommand(wfix.redis, "DEL %s %s", wfix.key, wfix.dead_key);
        freeReplyObject(r);
    }
    if (wfix.redis)
        redisFree(wfix.redis);
    PQfinish(wfix.pg);
    itest_db_drop(&wfix.db);
}

/* ------------------------------------------------------------------------------------------ */
/* cdr-writer */

const char *writer_log_tail(void)
{
    return proc_log_tail(wfix.log);
}

/* GET 'path' on the writer's listener: the status, or 0 when it does not answer. When 'body'
 * is not NULL the response is left there (http_response_free). */
int writer_get(const char *path, http_response *body)
{
    http_conn c;
    http_response r;
    char err[256];
    int status = 0;
    if (http_connect(&c, LOCALHOST, wfix.port, 1000, err, sizeof(err)) == 0 &&
        http_request(&c, "GET", path, NULL, 0, NULL, 0, &r, err, sizeof(err)) == 0) {
        status = r.status;
        if (body)
            *body = r;
        else
            http_response_free(&r);
    }
    http_close(&c);
    return status;
}

/* Starts cdr-writer on the test's database, Redis and stream key, batches flushed after 50 ms,
 * plus the "KEY=VALUE" strings of 'extra' (NULL-terminated or NULL), which come last and so
 * override. Waits for /readyz 200: Redis and PostgreSQL connected. */
void writer_start(const char *const *extra)
{
    char pg[ITEST_URL_MAX + 32], redis[ITEST_URL_MAX + 32], key[200], listen[64];
    char url[ITEST_URL_MAX];
    cr_assert(itest_db_url(&wfix.db, "cdr_writer", url, sizeof(url)) == 0);
    wfix.port = proc_free_port();
    snprintf(pg, sizeof(pg), "CDR_WRITER_PG_URL=%s", url);
    snprintf(redis, sizeof(redis), "CDR_REDIS_URL=%s", wfix.redis_url);
    snprintf(key, sizeof(key), "CDR_STREAM_KEY=%s", wfix.key);
    snprintf(listen, sizeof(listen), "CDR_WRITER_METRICS_LISTEN=%s:%d", LOCALHOST, wfix.port);
    const char *const defaults[] = {pg,
                                    redis,
                                    key,
                                    listen,
                                    "CDR_WRITER_CONSUMER=" WRITER_CONSUMER,
                                    "CDR_WRITER_FLUSH_MS=50",
                                    "CDR_LOG_LEVEL=info"};
    const char *env[32] = {NULL};
    int n = 0;
    for (size_t i = 0; i < CDR_ARRAY_LEN(defaults); i++)
        proc_env_set(env, &n, (int)CDR_ARRAY_LEN(env), defaults[i]);
    for (const char *const *e = extra; e && *e; e++)
        proc_env_set(env, &n, (int)CDR_ARRAY_LEN(env), *e);
    snprintf(wfix.log, sizeof(wfix.log), "%s/writer.log", wfix.dir);
    const char *argv[] = {CDR_BIN_DIR "/cdr-writer", NULL};
    wfix.pid = proc_spawn(argv, env, wfix.log);

    int64_t deadline = itest_now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int st = proc_wait_exit(wfix.pid, 0);
        if (st != -1) {
            char how[64];
            wfix.pid = 0;
            cr_assert_fail("cdr-writer ended (%s) while starting; its log:\n%s",
                           proc_status_text(st, how, sizeof(how)), writer_log_tail());
        }
        if (writer_get("/readyz", NULL) == 200)
            return;
        cr_assert(itest_now_ms() < deadline, "cdr-writer not ready within %d ms; its log:\n%s",
                  START_TIMEOUT_MS, writer_log_tail());
        itest_sleep_ms(20);
    }
}

/* Sends SIGTERM and asserts that cdr-writer exits with status 0 within 'timeout_ms'. */
void writer_stop_within(int timeout_ms)
{
    pid_t pid = wfix.pid;
    char how[64];
    cr_assert(pid > 0, "cdr-writer is not running");
    wfix.pid = 0;
    kill(pid, SIGTERM);
    int st = proc_wait_exit(pid, timeout_ms);
    if (st == -1) {
        proc_kill(pid);
        cr_assert_fail("cdr-writer did not exit within %d ms of SIGTERM; its log:\n%s", timeout_ms,
                       writer_log_tail());
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "cdr-writer ended with %s after SIGTERM instead of status 0; its log:\n%s",
              proc_status_text(st, how, sizeof(how)), writer_log_tail());
}

void writer_stop(void)
{
    writer_stop_within(STOP_TIMEOUT_MS);
}

/* The value of the series 'series' ("name" or "name{labels}") on /metrics. */
double writer_metric(const char *series)
{
    http_response r;
    cr_assert_eq(writer_get("/metrics", &r), 200, "GET /metrics; log:\n%s", writer_log_tail());
    size_t len = strlen(series);
    double v = -1;
    bool found = false;
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, len) == 0 && p[len] == ' ') {
            v = strtod(p + len + 1, NULL);
            found = true;
            break;
        }
    cr_assert(found, "no series %s on /metrics:\n%s", series, r.body);
    http_response_free(&r);
    return v;
}

/* ------------------------------------------------------------------------------------------ */
/* The stream */

/* XADD with the id 'id' ("*" for a new one) of an entry with the fields of docs/stream-format.md
 * ('rows' of 'len' bytes). The id Redis gave is left in 'out' (64 bytes) when not NULL. */
void stream_add(const char *id, const char *v, const char *kind, const char *n, const char *enc,
                const char *rows, size_t len, char *out)
{
    const char *argv[] = {"XADD", wfix.key, id,    "v", v,      "kind", kind,
                          "n",    n,        "enc", enc, "rows", rows};
    size_t argvlen[CDR_ARRAY_LEN(argv)];
    for (size_t k = 0; k < CDR_ARRAY_LEN(argv); k++)
        argvlen[k] = strlen(argv[k]);
    argvlen[CDR_ARRAY_LEN(argv) - 1] = len;
    redisReply *r = redisCommandArgv(wfix.redis, (int)CDR_ARRAY_LEN(argv), argv, argvlen);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD: %s",
              r ? (r->str ? r->str : "unexpected reply") : wfix.redis->errstr);
    if (out)
        snprintf(out, 64, "%s", r->str);
    freeReplyObject(r);
}

static int count_lines(const char *rows)
{
    int n = 0;
    for (const char *p = rows; (p = strchr(p, '\n')); p++)
        n++;
    return n;
}

/* Appends an entry of 'kind' holding 'rows' (plain COPY text); its id goes to 'id' (64 bytes,
 * or NULL). */
void stream_add_rows(const char *kind, const char *rows, char *id)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", count_lines(rows));
    stream_add("*", CDR_CODEC_VERSION, kind, n, CDR_CODEC_ENC_PLAIN, rows, strlen(rows), id);
}

/* The same, zstd-framed. */
void stream_add_rows_zstd(const char *kind, const char *rows, char *id)
{
    char n[16];
    cdr_buf z = {0};
    snprintf(n, sizeof(n), "%d", count_lines(rows));
    cr_assert(cdr_codec_compress(rows, strlen(rows), &z) == 0);
    stream_add("*", CDR_CODEC_VERSION, kind, n, CDR_CODEC_ENC_ZSTD, z.data, z.len, id);
    cdr_buf_free(&z);
}

long long stream_pending(void)
{
    redisReply *r = redis_cmd(wfix.redis, "XPENDING %s %s", wfix.key, WRITER_GROUP);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                  r->element[0]->type == REDIS_REPLY_INTEGER,
              "XPENDING: unexpected reply");
    long long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* Waits until the writer acknowledged and deleted every entry: the stream is empty and nothing
 * is pending in the group. */
void stream_drain(void)
{
    int64_t deadline = itest_now_ms() + DRAIN_TIMEOUT_MS;
    for (;;) {
        if (redis_xlen(wfix.redis, wfix.key) == 0 && stream_pending() == 0)
            return;
        cr_assert(itest_now_ms() < deadline,
                  "stream not drained within %d ms: XLEN %lld, pending %lld; log:\n%s",
                  DRAIN_TIMEOUT_MS, redis_xlen(wfix.redis, wfix.key), stream_pending(),
                  writer_log_tail());
        itest_sleep_ms(20);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* PostgreSQL */

long long pg_scalar(const char *sql, int n, const char *const *params)
{
    char err[1024];
    long long v = -1;
    cr_assert(itest_scalar(wfix.pg, sql, n, params, &v, err, sizeof(err)) == 0, "%s: %s", sql, err);
    return v;
}

/* The one row of 'sql' as its columns' text, NULL for a SQL NULL (PQclear). */
PGresult *pg_one_row(const char *sql, int n, const char *const *params)
{
    PGresult *r = itest_query(wfix.pg, sql, n, params);
    cr_assert(itest_ok(r), "%s: %s", sql, PQresultErrorMessage(r));
    cr_assert_eq(PQntuples(r), 1, "%s: %d rows instead of one", sql, PQntuples(r));
    return r;
}

/* Asserts that the columns of row 0 of 'r' are 'want' (NULL: SQL NULL). */
void expect_pg_row(const PGresult *r, const char *const *want, int n, const char *what)
{
    cr_assert_eq(PQnfields(r), n, "%s: %d columns", what, PQnfields(r));
    for (int i = 0; i < n; i++) {
        const char *got = PQgetisnull(r, 0, i) ? NULL : PQgetvalue(r, 0, i);
        if (!want[i])
            cr_expect(got == NULL, "%s.%s: expected NULL, got '%s'", what, PQfname(r, i), got);
        else
            cr_expect(got && strcmp(got, want[i]) == 0, "%s.%s: expected '%s', got '%s'", what,
                      PQfname(r, i), want[i], got ? got : "NULL");
    }
}
