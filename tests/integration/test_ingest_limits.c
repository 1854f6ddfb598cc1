/* test_ingest_limits.c - cdr-ingest at its limits against a real Redis: bodies too large or
 * inflating too far, back-pressure and Redis outages, a thousand clients at once, clients that
 * vanish or stall, and a clean SIGTERM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>

#include "cdr_bodies.h"
#include "ingest_run.h"
#include "proc.h"

TestSuite(ingest_limits, .init = ingest_setup, .fini = ingest_teardown, .timeout = 30);

/* ------------------------------------------------------------------------------------------ */
/* Size limits */

Test(ingest_limits, body_over_max_body_is_413)
{
    const size_t size = 100 * 1024;
    char *body = malloc(size);
    cr_assert(body);
    memset(body, ' ', size);
    body[0] = '[';
    body[size - 1] = ']';
    http_response r;
    ingest_start((const char *const[]){"CDR_MAX_BODY=64k", NULL}, true);

    post(run.token, "application/json", NULL, body, size, &r);
    cr_assert_eq(r.status, 413, "100 KB with CDR_MAX_BODY=64k: expected 413, got %d: %s", r.status,
                 r.body);
    http_response_free(&r);

    /* The same bytes sent chunked, so that only counting them on the wire can refuse them. */
    cdr_buf chunked = {0};
    for (size_t off = 0; off < size; off += 8192) {
        size_t n = size - off < 8192 ? size - off : 8192;
        cr_assert(cdr_buf_printf(&chunked, "%zx\r\n", n) == 0 &&
                  cdr_buf_append(&chunked, body + off, n) == 0 &&
                  cdr_buf_append_str(&chunked, "\r\n") == 0);
    }
    cr_assert(cdr_buf_append_str(&chunked, "0\r\n\r\n") == 0);
    char auth[AUTH_MAX], err[256];
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, run.token, "application/json", NULL);
    h[nh++] = (http_header){"Transfer-Encoding", "chunked"};
    cr_assert(http_request(&run.conn, "POST", CDR_PATH, h, nh, chunked.data, chunked.len, &r, err,
                           sizeof(err)) == 0,
              "chunked POST: %s", err);
    cr_assert_eq(r.status, 413, "100 KB chunked: expected 413, got %d: %s", r.status, r.body);
    http_response_free(&r);
    cdr_buf_free(&chunked);
    free(body);

    cr_assert_eq(xlen(), 0);
    post_one("after-413", &r);
    expect_accepted(&r, 1);
    ingest_stop();
}

Test(ingest_limits, compression_bombs_are_413)
{
    const size_t chunk = 1 << 20;
    const int repeat = 100; /* 100 MB once inflated */
    void *zeros = calloc(1, chunk);
    cr_assert(zeros);
    ingest_start(NULL, true);
    const struct {
        codec c;
        const char *name;
    } bombs[] = {{ZSTD, "zstd"}, {GZIP, "gzip"}};
    for (size_t i = 0; i < CDR_ARRAY_LEN(bombs); i++) {
        cdr_buf z;
        http_response r;
        compress_into(bombs[i].c, zeros, chunk, repeat, &z);
        cr_assert_lt(z.len, 200 * 1024, "%s bomb of %zu bytes", bombs[i].name, z.len);
        post(run.token, "application/json", bombs[i].name, z.data, z.len, &r);
        cr_assert_eq(r.status, 413, "%s bomb (%zu bytes -> 100 MB): expected 413, got %d: %s",
                     bombs[i].name, z.len, r.status, r.body);
        expect_error_only(&r, 413);
        cdr_buf_free(&z);
        get("/healthz", &r);
        cr_assert_eq(r.status, 200, "after the %s bomb /healthz answered %d", bombs[i].name,
                     r.status);
        http_response_free(&r);
    }
    free(zeros);
    cr_assert_eq(xlen(), 0);
    http_response r;
    post_one("after-bombs", &r);
    expect_accepted(&r, 1);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Back-pressure and Redis outages */

/* Asserts 503 with Retry-After and the error shape. */
static void expect_503(http_response *r)
{
    cr_assert_eq(r->status, 503, "expected 503, got %d: %s", r->status, r->body);
    const char *ra = http_header_get(r, "Retry-After");
    cr_assert(ra && atoi(ra) >= 1, "503 without a Retry-After (got %s)", ra ? ra : "none");
    expect_error_only(r, 503);
}

Test(ingest_limits, unreachable_redis_is_503_and_not_ready)
{
    char url[64];
    http_response r;
    snprintf(url, sizeof(url), "CDR_REDIS_URL=redis://%s:%d", LOCALHOST, proc_free_port());
    ingest_start((const char *const[]){url, NULL}, false);
    get("/readyz", &r);
    cr_assert_eq(r.status, 503, "/readyz without Redis: %d", r.status);
    http_response_free(&r);
    post_one("no-redis", &r);
    expect_503(&r);
    get("/healthz", &r);
    cr_assert_eq(r.status, 200, "/healthz without Redis: %d", r.status);
    http_response_free(&r);
    ingest_stop();
}

Test(ingest_limits, backlog_over_bound_is_503_until_drained)
{
    for (int i = 0; i < 5; i++)
        redis_do(run.redis, "XADD %s * filler %d", run.key, i);
    http_response r;
    ingest_start((const char *const[]){"CDR_MAX_BACKLOG=5", NULL}, true);
    itest_sleep_ms(300); /* the backlog is polled */
    post_one("full", &r);
    expect_503(&r);
    cr_assert_eq(xlen(), 5, "a post over the backlog bound was stored");

    redis_do(run.redis, "XTRIM %s MAXLEN 0", run.key);
    int64_t trimmed = itest_now_ms();
    int status = 0;
    while (status != 202 && itest_now_ms() - trimmed < 1000) {
        itest_sleep_ms(50);
        post_one("drained", &r);
        status = r.status;
        http_response_free(&r);
    }
    cr_assert_eq(status, 202, "posts still refused (%d) 1 s after the stream was drained", status);
    cr_assert_eq(xlen(), 1);
    ingest_stop();
}

/* One client thread of the load test: single-CDR posts with distinct call_ids on one
 * keep-alive connection, each outcome with when it was sent and answered. */
typedef struct load_req {
    int64_t sent_ms, done_ms;
    int status; /* -1: no HTTP answer */
} load_req;

typedef struct loader {
    pthread_t th;
    int id;
    int port;
    const char *token;
    atomic_bool *stop;
    _Atomic int64_t *last_ok_sent; /* latest send time of a request answered 202 */
    load_req reqs[100000];
    int n;
} loader;

static void load_call_id(char *buf, size_t len, int thread, int seq)
{
    snprintf(buf, len, "load-%d-%d", thread, seq);
}

static void *load_main(void *arg)
{
    loader *l = arg;
    http_conn c = {.fd = -1, .port = l->port, .timeout_ms = 3000};
    char auth[AUTH_MAX], text[1024], id[64], err[256];
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, l->token, "application/json", NULL);
    snprintf(c.host, sizeof(c.host), "%s", LOCALHOST);
    while (!atomic_load(l->stop) && l->n < (int)CDR_ARRAY_LEN(l->reqs)) {
        load_req *q = &l->reqs[l->n];
        http_response r;
        load_call_id(id, sizeof(id), l->id, l->n);
        snprintf(text, sizeof(text), CDR_FMT, id);
        q->sent_ms = itest_now_ms();
        q->status =
            http_request(&c, "POST", CDR_PATH, h, nh, text, strlen(text), &r, err, sizeof(err)) == 0
                ? r.status
                : -1;
        q->done_ms = itest_now_ms();
        if (q->status >= 0)
            http_response_free(&r);
        if (q->status == 202) {
            int64_t prev = atomic_load(l->last_ok_sent);
            while (prev < q->sent_ms &&
                   !atomic_compare_exchange_weak(l->last_ok_sent, &prev, q->sent_ms)) {
            }
        }
        itest_sleep_ms(q->status == 202 ? 1 : 5);
        l->n++;
    }
    http_close(&c);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(ingest_limits, redis_killed_during_load_loses_no_acknowledged_cdr, .timeout = 40)
{
    enum { THREADS = 4 };
    atomic_bool stop = false;
    _Atomic int64_t last_ok_sent = 0;
    own_redis_start();
    ingest_start(NULL, true);

    loader *ls = calloc(THREADS, sizeof(*ls));
    cr_assert(ls);
    for (int i = 0; i < THREADS; i++) {
        ls[i].id = i;
        ls[i].port = run.port;
        ls[i].token = run.token;
        ls[i].stop = &stop;
        ls[i].last_ok_sent = &last_ok_sent;
        cr_assert(pthread_create(&ls[i].th, NULL, load_main, &ls[i]) == 0);
    }
    itest_sleep_ms(700);
    /* The outage starts once Redis is gone (the kill waits for it to exit): a post answered
     * between the signal and the exit was stored, and its 202 is right. */
    own_redis_kill();
    int64_t killed = itest_now_ms();
    itest_sleep_ms(300);
    http_response r;
    get("/readyz", &r);
    cr_assert_eq(r.status, 503, "/readyz with Redis killed: %d", r.status);
    http_response_free(&r);
    itest_sleep_ms(700);
    int64_t restarted = itest_now_ms();
    own_redis_start();
    int64_t up = itest_now_ms();
    while (atomic_load(&last_ok_sent) <= up && itest_now_ms() - up < 5000)
        itest_sleep_ms(20);
    itest_sleep_ms(200);
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(ls[i].th, NULL);

    /* Every call_id in the stream, sorted, with no call stored twice. */
    sdump d;
    stream_load(&d);
    int nids;
    char **ids = sdump_call_ids(&d, &nids);
    for (int i = 1; i < nids; i++)
        cr_assert(strcmp(ids[i - 1], ids[i]) != 0, "call_id %s stored twice", ids[i]);

    int ok_before = 0, in_outage = 0, ok_after = 0, lost = 0;
    char first_lost[64] = "";
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < ls[i].n; k++) {
            const load_req *q = &ls[i].reqs[k];
            if (q->status == 202) {
                char id[64], *key = id;
                load_call_id(id, sizeof(id), i, k);
                if (!bsearch(&key, ids, (size_t)nids, sizeof(*ids), cmp_str) && !lost++)
                    snprintf(first_lost, sizeof(first_lost), "%s", id);
                ok_before += q->done_ms < killed;
                ok_after += q->sent_ms > up;
            }
            if (q->sent_ms > killed && q->done_ms < restarted) {
                in_outage++;
                cr_assert_eq(q->status, 503,
                             "a post sent %lld ms after Redis was killed got %d instead of 503",
                             (long long)(q->sent_ms - killed), q->status);
            }
        }
    cr_assert_eq(lost, 0, "%d CDRs answered 202 are not in the stream (first: %s)", lost,
                 first_lost);
    cr_assert_gt(ok_before, 0, "no post succeeded before Redis was killed");
    cr_assert_gt(in_outage, 0, "no post was made while Redis was down");
    cr_assert_gt(ok_after, 0, "no post succeeded within 5 s of Redis coming back");
    free(ids);
    sdump_free(&d);
    free(ls);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Connections */

/* Raises this test's descriptor limit to at least 'n' plus a margin. */
static void need_descriptors(int n)
{
    struct rlimit rl;
    cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < (rlim_t)n + 200) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 8192 ? 8192 : rl.rlim_max;
        cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
    }
    cr_assert_geq(rl.rlim_cur, (rlim_t)n + 200,
                  "the descriptor limit (%llu) is too low for %d sockets",
                  (unsigned long long)rl.rlim_cur, n);
}

/* Opens 'n' connections and sends one valid CDR "<prefix>-<i>" on each. */
static http_conn *post_on_many(int n, const char *prefix)
{
    http_conn *conns = calloc((size_t)n, sizeof(*conns));
    char err[256], auth[AUTH_MAX], text[1024], id[32];
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, run.token, "application/json", NULL);
    cr_assert(conns);
    cr_assert(http_connect_many(conns, n, LOCALHOST, run.port, 10000, err, sizeof(err)) == 0, "%s",
              err);
    for (int i = 0; i < n; i++) {
        conns[i].timeout_ms = 15000;
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        snprintf(text, sizeof(text), CDR_FMT, id);
        cr_assert(http_send(&conns[i], "POST", CDR_PATH, h, nh, text, strlen(text), NULL, err,
                            sizeof(err)) == 0,
                  "connection %d: %s", i, err);
    }
    return conns;
}

/* Reads the answer of connection 'i' and closes it. Returns its status, -1 when unreadable. */
static int read_and_close(http_conn *c, char *err, size_t errlen)
{
    http_response r;
    int status = http_read_response(c, &r, err, errlen) == 0 ? r.status : -1;
    if (status >= 0)
        http_response_free(&r);
    http_close(c);
    return status;
}

/* Asserts that the stream holds exactly 'n' CDRs, among them "<prefix>-<i>" for sampled i. */
static void expect_stream_rows(int n, const char *prefix)
{
    char id[32];
    sdump d;
    stream_load(&d);
    long rows = sdump_rows(&d, "cdr");
    cr_assert_eq(rows, n, "the stream holds %ld CDRs after %d accepted posts", rows, n);
    for (int i = 0; i < n; i += 97) {
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        (void)sdump_row(&d, "cdr", id);
    }
    sdump_free(&d);
}

Test(ingest_limits, thousand_concurrent_connections_are_all_served)
{
    enum { N = 1000 };
    need_descriptors(N);
    ingest_start(NULL, true);
    http_conn *conns = post_on_many(N, "conc");
    int accepted = 0, first_bad = -1, first_status = 0;
    char err[256], first_err[256] = "";
    for (int i = 0; i < N; i++) {
        int status = read_and_close(&conns[i], err, sizeof(err));
        accepted += status == 202;
        if (status != 202 && first_bad < 0) {
            first_bad = i;
            first_status = status;
            snprintf(first_err, sizeof(first_err), "%s", status < 0 ? err : "");
        }
    }
    free(conns);
    cr_assert_eq(accepted, N, "%d of %d answered 202; connection %d got %d (%s)", accepted, N,
                 first_bad, first_status, first_err);
    expect_stream_rows(N, "conc");
    ingest_stop();
}

/* CDR_INGEST_MAX_CONNECTIONS bounds the connections cdr-ingest holds: past it, clients wait in
 * the kernel's queue (they are neither refused nor served) until others close, and the server
 * keeps running. */
Test(ingest_limits, connections_past_the_bound_wait_until_others_close, .timeout = 60)
{
    enum { N = 600 };
    need_descriptors(N);
    const char *extra[] = {"CDR_INGEST_MAX_CONNECTIONS=40", NULL};
    ingest_start(extra, true);
    http_conn *conns = post_on_many(N, "bound");
    itest_sleep_ms(2000);

    bool *done = calloc(N, sizeof(*done));
    struct pollfd *pfd = calloc(N, sizeof(*pfd));
    cr_assert(done && pfd);
    char err[256];
    int answered = 0, answered_first = -1, rounds = 0;
    int64_t deadline = itest_now_ms() + 30000;
    while (answered < N && itest_now_ms() < deadline) {
        for (int i = 0; i < N; i++)
            pfd[i] = (struct pollfd){.fd = done[i] ? -1 : conns[i].fd, .events = POLLIN};
        cr_assert_geq(poll(pfd, N, rounds ? 200 : 0), 0);
        for (int i = 0; i < N; i++) {
            if (done[i] || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int status = read_and_close(&conns[i], err, sizeof(err));
            cr_assert_eq(status, 202, "connection %d: %d (%s)", i, status, err);
            done[i] = true;
            answered++;
        }
        if (rounds++ == 0)
            answered_first = answered;
    }
    free(done);
    free(pfd);
    free(conns);
    /* The descriptor limit is the bound plus a reserve for Redis, listeners and logs. */
    cr_assert_gt(answered_first, 0, "nobody was served");
    cr_assert_lt(answered_first, N - 100,
                 "%d of %d connections were served at once: the bound did not hold", answered_first,
                 N);
    cr_assert_eq(answered, N, "%d of %d posts answered once the first clients closed", answered, N);
    expect_stream_rows(N, "bound");
    ingest_stop();
}

Test(ingest_limits, client_gone_before_answer_still_stores_once)
{
    char err[256], auth[AUTH_MAX], text[1024];
    http_conn c;
    http_response r;
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, run.token, "application/json", NULL);
    ingest_start(NULL, true);
    snprintf(text, sizeof(text), CDR_FMT, "gone-1");
    cr_assert(http_connect(&c, LOCALHOST, run.port, HTTP_TIMEOUT_MS, err, sizeof(err)) == 0);
    cr_assert(http_send(&c, "POST", CDR_PATH, h, nh, text, strlen(text), NULL, err, sizeof(err)) ==
              0);
    http_close(&c);

    get("/healthz", &r);
    cr_assert_eq(r.status, 200, "after a client vanished /healthz answered %d", r.status);
    http_response_free(&r);
    post_one("after-gone", &r);
    expect_accepted(&r, 1);

    sdump d;
    int found = 0;
    for (int64_t deadline = itest_now_ms() + 2000;; itest_sleep_ms(50)) {
        stream_load(&d);
        found = sdump_count_call(&d, "cdr", "gone-1", NULL);
        sdump_free(&d);
        if (found > 0 || itest_now_ms() >= deadline)
            break;
    }
    cr_assert_eq(found, 1, "the CDR of the vanished client is stored %d times", found);
    ingest_stop();
}

Test(ingest_limits, stalled_client_is_disconnected)
{
    static const char half[] = "POST " CDR_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty";
    char err[256] = "";
    http_conn c;
    http_response r;
    ingest_start((const char *const[]){"CDR_INGEST_TIMEOUT_S=1", NULL}, true);
    cr_assert(http_connect(&c, LOCALHOST, run.port, 4000, err, sizeof(err)) == 0, "%s", err);
    cr_assert(http_send_raw(&c, half, strlen(half), err, sizeof(err)) == 0, "%s", err);
    int64_t t0 = itest_now_ms();
    int closed = http_wait_closed(&c, err, sizeof(err));
    int64_t waited = itest_now_ms() - t0;
    http_close(&c);
    cr_assert_eq(closed, 1, "the server kept a stalled connection open for %lld ms (%s)",
                 (long long)waited, err);
    cr_assert_geq(waited, 500,
                  "the stalled connection was closed after %lld ms, before its timeout",
                  (long long)waited);
    get("/healthz", &r);
    cr_assert_eq(r.status, 200);
    http_response_free(&r);
    ingest_stop();
}

Test(ingest_limits, sigterm_exits_0_with_an_idle_keep_alive_connection)
{
    http_response r;
    ingest_start(NULL, true);
    get("/healthz", &r);
    cr_assert(r.keep_alive, "the server closed a keep-alive connection after /healthz");
    http_response_free(&r);
    http_conn idle = run.conn; /* keep it open across the stop */
    run.conn.fd = -1;
    run.conn.rbuf = NULL;
    ingest_stop();
    char err[256];
    http_conn c;
    cr_assert(http_connect(&c, LOCALHOST, run.port, 500, err, sizeof(err)) != 0,
              "something still listens on port %d after exit", run.port);
    http_close(&idle);
}
