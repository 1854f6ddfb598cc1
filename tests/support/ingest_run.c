/* ingest_run.c - cdr-ingest under test: its Redis and stream, its process, requests, answers. */
#include "ingest_run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cdr_bodies.h"
#include "compiler.h"
#include "proc.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  5000

test_run run;

/* ------------------------------------------------------------------------------------------ */
/* Redis and the suite */

static void redis_connect(void)
{
    if (run.redis)
        redisFree(run.redis);
    run.redis = redis_open(run.redis_port, NULL);
}

void ingest_setup(void)
{
    const itest_env *env = redis_stack_env();
    snprintf(run.dir, sizeof(run.dir), "%s/ingest-XXXXXX", env->dir);
    cr_assert(mkdtemp(run.dir), "mkdtemp %s: %s", run.dir, strerror(errno));
    snprintf(run.key, sizeof(run.key), "itest:ingest:%d:%s", (int)getpid(),
             criterion_current_test->name);
    run.redis_port = atoi(env->redis_port);
    snprintf(run.redis_url, sizeof(run.redis_url), "%s", env->redis_url);
    run.conn.fd = -1;
    redis_connect();
    run.token = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_WRITE, time(NULL), 3600, SECRET);
}

/* Cleans up after a test, also one that failed half-way (its assertions already said why). */
void ingest_teardown(void)
{
    http_close(&run.conn);
    proc_kill(run.ingest);
    if (run.own.port)
        own_redis_kill();
    else if (run.redis && !run.redis->err) {
        redisReply *r = redisCommand(run.redis, "DEL %s", run.key);
        if (r)
            freeReplyObject(r);
    }
    if (run.redis)
        redisFree(run.redis);
    free(run.token);
}

void own_redis_start(void)
{
    redis_own_start(&run.own, run.dir, NULL, false);
    run.redis_port = run.own.port;
    snprintf(run.redis_url, sizeof(run.redis_url), "%s", run.own.url);
    redis_connect();
}

void own_redis_kill(void)
{
    redis_own_kill(&run.own);
}

long long xlen(void)
{
    return redis_xlen(run.redis, run.key);
}

void stream_load(sdump *d)
{
    sdump_load(d, run.redis, run.key);
}

/* ------------------------------------------------------------------------------------------ */
/* cdr-ingest */

const char *log_tail(void)
{
    return proc_log_tail(run.log);
}

/* Waits until GET 'path' answers 200, failing when cdr-ingest exits or 'deadline' passes. */
static void wait_for_200(const char *path, int64_t deadline)
{
    char err[256] = "";
    int last = 0;
    for (;;) {
        int st = proc_wait_exit(run.ingest, 0);
        if (st != -1) {
            char how[64];
            run.ingest = 0;
            cr_assert_fail("cdr-ingest ended (%s) before %s answered 200; its log:\n%s",
                           proc_status_text(st, how, sizeof(how)), path, log_tail());
        }
        http_conn c;
        http_response r;
        if (http_connect(&c, LOCALHOST, run.port, 500, err, sizeof(err)) == 0 &&
            http_request(&c, "GET", path, NULL, 0, NULL, 0, &r, err, sizeof(err)) == 0) {
            last = r.status;
            http_response_free(&r);
        }
        http_close(&c);
        if (last == 200)
            return;
        cr_assert(itest_now_ms() < deadline,
                  "GET %s: no 200 within %d ms (last status %d, %s); log:\n%s", path,
                  START_TIMEOUT_MS, last, err, log_tail());
        itest_sleep_ms(20);
    }
}

void ingest_start(const char *const *extra, bool ready)
{
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    char listen_kv[64], redis[ITEST_URL_MAX + 16], key[200], passed[CDR_ARRAY_LEN(pass)][1024];
    const char *env[40];
    int n = 0;
    env[0] = NULL;

    run.port = proc_free_port();
    snprintf(listen_kv, sizeof(listen_kv), "CDR_INGEST_LISTEN=%s:%d", LOCALHOST, run.port);
    snprintf(redis, sizeof(redis), "CDR_REDIS_URL=%s", run.redis_url);
    snprintf(key, sizeof(key), "CDR_STREAM_KEY=%s", run.key);
    const char *defaults[] = {
        listen_kv,           redis, key, "CDR_INGEST_THREADS=2", "CDR_JWT_SECRET=" SECRET,
        "CDR_LOG_LEVEL=warn"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(defaults); i++)
        proc_env_set(env, &n, (int)CDR_ARRAY_LEN(env), defaults[i]);
    for (size_t i = 0; i < CDR_ARRAY_LEN(pass); i++) {
        const char *v = getenv(pass[i]);
        if (v) {
            snprintf(passed[i], sizeof(passed[i]), "%s=%s", pass[i], v);
            proc_env_set(env, &n, (int)CDR_ARRAY_LEN(env), passed[i]);
        }
    }
    for (const char *const *e = extra; e && *e; e++)
        proc_env_set(env, &n, (int)CDR_ARRAY_LEN(env), *e);

    snprintf(run.log, sizeof(run.log), "%s/ingest.log", run.dir);
    const char *argv[] = {CDR_BIN_DIR "/cdr-ingest", NULL};
    run.ingest = proc_spawn(argv, env, run.log);

    int64_t deadline = itest_now_ms() + START_TIMEOUT_MS;
    wait_for_200("/healthz", deadline);
    if (ready)
        wait_for_200("/readyz", deadline);
    char err[256];
    cr_assert(http_connect(&run.conn, LOCALHOST, run.port, HTTP_TIMEOUT_MS, err, sizeof(err)) == 0,
              "%s", err);
}

void ingest_stop(void)
{
    pid_t pid = run.ingest;
    char how[64];
    cr_assert(pid > 0, "cdr-ingest is not running");
    http_close(&run.conn);
    run.ingest = 0;
    kill(pid, SIGTERM);
    int st = proc_wait_exit(pid, STOP_TIMEOUT_MS);
    if (st == -1) {
        proc_kill(pid);
        cr_assert_fail("cdr-ingest did not exit within %d ms of SIGTERM; log:\n%s", STOP_TIMEOUT_MS,
                       log_tail());
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "cdr-ingest ended with %s after SIGTERM instead of exit status 0; log:\n%s",
              proc_status_text(st, how, sizeof(how)), log_tail());
}

/* ------------------------------------------------------------------------------------------ */
/* Requests */

int request_headers(http_header *h, char *auth, const char *token, const char *ctype,
                    const char *cenc)
{
    int n = 0;
    if (token) {
        snprintf(auth, AUTH_MAX, "%s%s", strchr(token, ' ') ? "" : "Bearer ", token);
        h[n++] = (http_header){"Authorization", auth};
    }
    if (ctype)
        h[n++] = (http_header){"Content-Type", ctype};
    if (cenc)
        h[n++] = (http_header){"Content-Encoding", cenc};
    return n;
}

void request(const char *method, const char *path, const char *token, const char *ctype,
             const char *cenc, const void *body, size_t len, http_response *r)
{
    char auth[AUTH_MAX], err[256];
    http_header h[MAX_POST_HEADERS];
    int n = request_headers(h, auth, token, ctype, cenc);
    cr_assert(http_request(&run.conn, method, path, h, n, body, len, r, err, sizeof(err)) == 0,
              "%s %s: %s; log:\n%s", method, path, err, log_tail());
}

void post(const char *token, const char *ctype, const char *cenc, const void *body, size_t len,
          http_response *r)
{
    request("POST", CDR_PATH, token, ctype, cenc, body, len, r);
}

void post_json(const json_t *doc, http_response *r)
{
    char *s = dump(doc);
    post(run.token, "application/json", NULL, s, strlen(s), r);
    free(s);
}

void post_one(const char *call_id, http_response *r)
{
    char text[1024];
    snprintf(text, sizeof(text), CDR_FMT, call_id);
    post(run.token, "application/json", NULL, text, strlen(text), r);
}

void get(const char *path, http_response *r)
{
    request("GET", path, NULL, NULL, NULL, NULL, 0, r);
}

/* ------------------------------------------------------------------------------------------ */
/* Answers */

static json_t *body_json(const http_response *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    cr_assert(j, "status %d: body is not JSON (%s): %.400s", r->status, e.text, r->body);
    return j;
}

void expect_accepted(http_response *r, long long n)
{
    cr_assert_eq(r->status, 202, "expected 202, got %d: %.600s", r->status, r->body);
    json_t *j = body_json(r);
    json_t *acc = json_object_get(j, "accepted");
    cr_assert(json_is_integer(acc) && json_integer_value(acc) == n,
              "expected {\"accepted\": %lld}, got %.600s", n, r->body);
    json_decref(j);
    http_response_free(r);
}

json_t *expect_error(const http_response *r, int status)
{
    cr_assert_eq(r->status, status, "expected %d, got %d: %.600s", status, r->status, r->body);
    const char *ct = http_header_get(r, "Content-Type");
    cr_assert(ct && strncasecmp(ct, "application/json", 16) == 0,
              "a %d error should be application/json, is %s", status, ct ? ct : "(none)");
    json_t *j = body_json(r);
    json_t *e = json_object_get(j, "error");
    cr_assert(json_is_object(e), "no \"error\" object: %.600s", r->body);
    cr_assert(json_integer_value(json_object_get(e, "status")) == status,
              "error.status is not %d: %.600s", status, r->body);
    const char *msg = json_string_value(json_object_get(e, "message"));
    cr_assert(msg && *msg, "error.message missing or empty: %.600s", r->body);
    cr_assert(json_is_array(json_object_get(e, "details")), "error.details is not an array: %.600s",
              r->body);
    return j;
}

void expect_error_only(http_response *r, int status)
{
    json_decref(expect_error(r, status));
    http_response_free(r);
}
