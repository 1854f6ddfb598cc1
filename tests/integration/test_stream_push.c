/* test_stream_push.c - stream_push against a real Redis: the entries it stores, the answers it
 * gives, losing and regaining Redis, the backlog bound, destroy with work in flight, AUTH. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "log.h"
#include "proc.h"
#include "redis_own.h"
#include "redis_url.h"
#include "stderr_capture.h"
#include "stream_push.h"

#define WAIT_MS 5000

/* The callbacks' view of a test. */
typedef struct tally {
    int fired, ok, failed;
    int fired_inside_push; /* must stay 0: never called from stream_push_entry() */
    int out_of_order;      /* entries answered out of queue order */
    int next_index;
    char last_error[256];
    /* With 'repush_sp', each callback tries another push and records the status here. */
    stream_push *repush_sp;
    int repush_status[4];
} tally;

typedef struct entry_arg {
    tally *t;
    int index;
} entry_arg;

static bool in_push;

/* The test's own redis-server, for the tests that kill, restart or reconfigure it. */
static redis_own own;

static void kill_own_redis(void)
{
    redis_own_kill(&own);
}

static void suite_init(void)
{
    /* Writing to a connection Redis closed must fail with EPIPE, as in the programs. */
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_LEVEL_INFO);
}

TestSuite(stream_push, .init = suite_init, .fini = kill_own_redis, .timeout = 60);

/* A key no other test (nor other run) uses. */
static void unique_key(char *buf, size_t len, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, len, "itest:stream_push:%d:%ld:%s", (int)getpid(), (long)ts.tv_nsec, what);
}

static redisContext *fixture_redis(void)
{
    return redis_open(atoi(redis_stack_env()->redis_port), NULL);
}

/* Starts, or after kill_own_redis() restarts, the test's own redis-server. */
static void own_redis_start(const char *password, bool unix_socket)
{
    redis_own_start(&own, redis_stack_env()->dir, password, unix_socket);
}

/* The event loop of a test, with a 10 ms tick so that a wait never blocks on an idle base. */
typedef struct loop {
    struct event_base *base;
    struct event *tick;
} loop;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static loop loop_new(void)
{
    loop l;
    l.base = event_base_new();
    cr_assert(l.base);
    l.tick = event_new(l.base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    cr_assert(l.tick && event_add(l.tick, &tv) == 0);
    return l;
}

static void loop_free(loop *l)
{
    event_free(l->tick);
    event_base_free(l->base);
}

/* Drives 'l' until 'cond' holds or 'ms' passed; 'reached' says which. */
#define RUN_UNTIL(l, cond, ms, reached)                                                            \
    do {                                                                                           \
        int64_t deadline_ = itest_now_ms() + (ms);                                                 \
        (reached) = true;                                                                          \
        while (!(cond)) {                                                                          \
            if (itest_now_ms() >= deadline_) {                                                     \
                (reached) = false;                                                                 \
                break;                                                                             \
            }                                                                                      \
            event_base_loop((l)->base, EVLOOP_ONCE);                                               \
        }                                                                                          \
    } while (0)

static void run_for(loop *l, int ms)
{
    bool reached;
    RUN_UNTIL(l, false, ms, reached);
    (void)reached;
}

static stream_push *make_push(loop *l, const char *url, const char *key, long long max_backlog)
{
    stream_push_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char err[256];
    cr_assert_eq(redis_url_parse(url, &cfg.target, err, sizeof(err)), 0, "%s: %s", url, err);
    cfg.stream_key = key;
    cfg.max_backlog = max_backlog;
    cfg.backlog_poll_ms = 20;
    cfg.connect_timeout_ms = 1000;
    stream_push *sp = stream_push_create(l->base, &cfg);
    cr_assert(sp);
    return sp;
}

static void wait_connected(loop *l, stream_push *sp)
{
    bool reached;
    RUN_UNTIL(l, stream_push_connected(sp), WAIT_MS, reached);
    cr_assert(reached, "stream_push did not connect");
}

static void count_cb(const stream_push_result *res, void *arg)
{
    entry_arg *ea = arg;
    tally *t = ea->t;
    t->fired++;
    if (in_push)
        t->fired_inside_push++;
    if (ea->index != t->next_index)
        t->out_of_order++;
    t->next_index = ea->index + 1;
    if (res->ok) {
        t->ok++;
    } else {
        t->failed++;
        snprintf(t->last_error, sizeof(t->last_error), "%s", res->error ? res->error : "(null)");
    }
    cr_assert_geq(res->rtt_us, 0);
    if (t->repush_sp && (size_t)(t->fired - 1) < CDR_ARRAY_LEN(t->repush_status)) {
        in_push = true;
        /* The status of a push from inside a callback; a queued one lands in a spare tally. */
        static tally spare;
        static entry_arg spare_arg = {&spare, 0};
        spare_arg.index = spare.next_index;
        t->repush_status[t->fired - 1] =
            (int)stream_push_entry(t->repush_sp, "cdr", 1, "copy", "x", 1, count_cb, &spare_arg);
        in_push = false;
    }
}

static stream_push_status push(stream_push *sp, const void *payload, size_t len, entry_arg *ea)
{
    in_push = true;
    stream_push_status st = stream_push_entry(sp, "cdr", 3, "copy", payload, len, count_cb, ea);
    in_push = false;
    return st;
}

/* A stream_push of 'url' and 'key' that has connected. */
static stream_push *connected_push(loop *l, const char *url, const char *key, long long max_backlog)
{
    stream_push *sp = make_push(l, url, key, max_backlog);
    wait_connected(l, sp);
    return sp;
}

/* Queues 'n' entries of 'payload', answered into 't' through 'args' (of 'n' entries, which
 * must live until every callback fired). */
static void queue(stream_push *sp, tally *t, entry_arg *args, int n, const void *payload,
                  size_t len)
{
    for (int i = 0; i < n; i++) {
        args[i] = (entry_arg){t, i};
        cr_assert_eq(push(sp, payload, len, &args[i]), PUSH_QUEUED, "entry %d", i);
    }
}

/* Drives 'l' until 'n' callbacks of 't' have fired, at most WAIT_MS. */
static void wait_answers(loop *l, const tally *t, int n)
{
    bool reached;
    RUN_UNTIL(l, t->fired == n, WAIT_MS, reached);
    cr_assert(reached, "%d of %d callbacks fired", t->fired, n);
}

/* Pushes one entry of 'payload' and asserts that Redis stored it. */
static void push_stored(loop *l, stream_push *sp, const void *payload, size_t len)
{
    tally t = {0};
    entry_arg ea = {&t, 0};
    cr_assert_eq(push(sp, payload, len, &ea), PUSH_QUEUED);
    wait_answers(l, &t, 1);
    cr_assert_eq(t.ok, 1, "push failed: %s", t.last_error);
}

/* Checks that 'entry' (one element of an XRANGE reply) holds exactly the fields of one pushed
 * entry: v 1 kind 'kind' n 'n' enc 'enc' rows 'payload'. */
static void assert_entry(const redisReply *entry, const char *kind, const char *n, const char *enc,
                         const void *payload, size_t len)
{
    cr_assert_eq(entry->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(entry->elements, 2);
    const redisReply *f = entry->element[1];
    cr_assert_eq(f->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(f->elements, 10, "the entry has %zu fields and values, not 10", f->elements);
    const char *want[10] = {"v", "1", "kind", kind, "n", n, "enc", enc, "rows", payload};
    size_t want_len[10] = {1, 1, 4, strlen(kind), 1, strlen(n), 3, strlen(enc), 4, len};
    for (size_t i = 0; i < 10; i++) {
        cr_assert_eq(f->element[i]->type, REDIS_REPLY_STRING);
        cr_assert_eq(f->element[i]->len, want_len[i], "field %zu: length %zu, expected %zu", i,
                     f->element[i]->len, want_len[i]);
        cr_assert_eq(memcmp(f->element[i]->str, want[i], want_len[i]), 0, "field %zu differs", i);
    }
}

static char fixture_url[ITEST_URL_MAX];

static const char *fixture(void)
{
    snprintf(fixture_url, sizeof(fixture_url), "redis://127.0.0.1:%s",
             redis_stack_env()->redis_port);
    return fixture_url;
}

static const char *own_url(const char *userinfo, const char *path)
{
    static char url[256];
    snprintf(url, sizeof(url), "redis://%s%s127.0.0.1:%d%s", userinfo ? userinfo : "",
             userinfo ? "@" : "", own.port, path ? path : "");
    return url;
}

/* A payload with the bytes that must survive unchanged: NUL, tab, newline, backslash. */
static const char binary_payload[] = "row\t1\\N\n\0after-nul\tx\r\n\xff\xfe";
#define BINARY_LEN (sizeof(binary_payload) - 1)

Test(stream_push, one_entry_is_stored_with_exact_fields_and_bytes)
{
    char key[128];
    unique_key(key, sizeof(key), "one");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000);

    tally t = {0};
    entry_arg ea = {&t, 0};
    cr_assert_eq(push(sp, binary_payload, BINARY_LEN, &ea), PUSH_QUEUED);
    cr_assert_eq(t.fired, 0, "the callback fired before the loop ran");
    wait_answers(&l, &t, 1);
    cr_assert_eq(t.ok, 1, "push failed: %s", t.last_error);
    cr_assert_eq(t.fired_inside_push, 0);

    redisContext *c = fixture_redis();
    redisReply *r = redis_cmd(c, "XRANGE %s - +", key);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1);
    assert_entry(r->element[0], "cdr", "3", "copy", binary_payload, BINARY_LEN);
    freeReplyObject(r);
    redis_do(c, "DEL %s", key);
    redisFree(c);

    stream_push_destroy(sp);
    cr_assert_eq(t.fired, 1, "destroy fired a callback again");
    loop_free(&l);
}

Test(stream_push, a_thousand_entries_pipelined_from_one_iteration_all_succeed_in_order)
{
    enum { N = 1000 };
    char key[128];
    unique_key(key, sizeof(key), "thousand");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000000);

    tally t = {0};
    static entry_arg args[N];
    static char payloads[N][32];
    static size_t lens[N];
    for (int i = 0; i < N; i++) {
        args[i] = (entry_arg){&t, i};
        int n = snprintf(payloads[i], sizeof(payloads[i]), "p%d\t", i);
        payloads[i][n] = '\0'; /* a NUL inside the payload */
        payloads[i][n + 1] = '\n';
        lens[i] = (size_t)n + 2;
        cr_assert_eq(push(sp, payloads[i], lens[i], &args[i]), PUSH_QUEUED, "entry %d", i);
    }
    wait_answers(&l, &t, N);
    cr_assert_eq(t.ok, N, "%d failed, last: %s", t.failed, t.last_error);
    cr_assert_eq(t.out_of_order, 0);
    cr_assert_eq(t.fired_inside_push, 0);

    redisContext *c = fixture_redis();
    cr_assert_eq(redis_xlen(c, key), N);
    redisReply *r = redis_cmd(c, "XRANGE %s - +", key);
    cr_assert_eq(r->elements, N);
    for (int i = 0; i < N; i++)
        assert_entry(r->element[i], "cdr", "3", "copy", payloads[i], lens[i]);
    freeReplyObject(r);
    redis_do(c, "DEL %s", key);
    redisFree(c);

    run_for(&l, 100);
    cr_assert_geq(stream_push_backlog(sp), 0, "the backlog watch never answered");
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, reject_entries_carry_their_kind_and_encoding)
{
    char key[128];
    unique_key(key, sizeof(key), "kinds");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000);

    tally t = {0};
    entry_arg a0 = {&t, 0}, a1 = {&t, 1};
    cr_assert_eq(
        stream_push_entry(sp, "reject", 12, "copy+zstd", "\x28\xb5\x2f\xfd", 4, count_cb, &a0),
        PUSH_QUEUED);
    cr_assert_eq(stream_push_entry(sp, "cdr", 0, "copy", NULL, 0, count_cb, &a1), PUSH_QUEUED);
    wait_answers(&l, &t, 2);
    cr_assert_eq(t.ok, 2, "%s", t.last_error);

    redisContext *c = fixture_redis();
    redisReply *r = redis_cmd(c, "XRANGE %s - +", key);
    cr_assert_eq(r->elements, 2);
    assert_entry(r->element[0], "reject", "12", "copy+zstd", "\x28\xb5\x2f\xfd", 4);
    assert_entry(r->element[1], "cdr", "0", "copy", "", 0);
    freeReplyObject(r);
    redis_do(c, "DEL %s", key);
    redisFree(c);
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, redis_error_reply_is_reported_with_its_text)
{
    char key[128];
    unique_key(key, sizeof(key), "wrongtype");
    redisContext *c = fixture_redis();
    redis_do(c, "SET %s x", key);

    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000);
    run_for(&l, 100);
    cr_assert_eq(stream_push_backlog(sp), -1, "a string key has no stream length");

    tally t = {0};
    entry_arg ea = {&t, 0};
    cr_assert_eq(push(sp, "row\n", 4, &ea), PUSH_QUEUED);
    wait_answers(&l, &t, 1);
    cr_assert_eq(t.ok, 0);
    cr_assert(strstr(t.last_error, "WRONGTYPE"), "error: %s", t.last_error);
    cr_assert(stream_push_connected(sp), "an error reply is not a lost connection");

    redis_do(c, "DEL %s", key);
    redisFree(c);
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, db_from_the_url_is_selected)
{
    char key[128];
    unique_key(key, sizeof(key), "db3");
    char url[ITEST_URL_MAX + 8];
    snprintf(url, sizeof(url), "%s/3", fixture());
    loop l = loop_new();
    stream_push *sp = connected_push(&l, url, key, 1000);
    push_stored(&l, sp, "r\n", 2);

    redisContext *c = fixture_redis();
    cr_assert_eq(redis_xlen(c, key), 0, "the entry went to db 0");
    redis_do(c, "SELECT 3");
    cr_assert_eq(redis_xlen(c, key), 1);
    redis_do(c, "DEL %s", key);
    redisFree(c);
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, unavailable_before_the_connection_is_up)
{
    char key[128];
    unique_key(key, sizeof(key), "early");
    loop l = loop_new();
    stream_push *sp = make_push(&l, fixture(), key, 1000);
    cr_assert_not(stream_push_connected(sp));
    cr_assert_eq(stream_push_backlog(sp), -1);

    tally t = {0};
    entry_arg ea = {&t, 0};
    cr_assert_eq(push(sp, "r\n", 2, &ea), PUSH_UNAVAILABLE);
    wait_connected(&l, sp);
    cr_assert_eq(t.fired, 0, "a refused push fired its callback");
    stream_push_destroy(sp);
    cr_assert_eq(t.fired, 0);
    loop_free(&l);
}

Test(stream_push, nothing_listening_keeps_it_unavailable_and_logs_once)
{
    int port = proc_free_port();
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    loop l = loop_new();
    stderr_capture_start();
    stream_push *sp = make_push(&l, url, "k", 1000);
    run_for(&l, 1500); /* several attempts: 100, 200, 400, 800 ms */
    tally t = {0};
    entry_arg ea = {&t, 0};
    stream_push_status st = push(sp, "r\n", 2, &ea);
    bool connected = stream_push_connected(sp);
    stream_push_destroy(sp);
    const char *log = stderr_capture_end();
    cr_assert_eq(st, PUSH_UNAVAILABLE);
    cr_assert_not(connected);
    cr_assert_eq(t.fired, 0);
    cr_assert_eq(count_substr(log, "cannot connect"), 1, "log:\n%s", log);
    cr_assert(strstr(log, "stream:"), "log lines name the component:\n%s", log);
    loop_free(&l);
}

Test(stream_push, entries_in_flight_when_redis_is_killed_all_fail)
{
    enum { N = 300 };
    own_redis_start(NULL, false);
    loop l = loop_new();
    stderr_capture_start();
    stream_push *sp = connected_push(&l, own_url(NULL, NULL), "cdr:stream", 1000000);
    run_for(&l, 50); /* the backlog is known */
    long long backlog_before = stream_push_backlog(sp);

    tally t = {0};
    t.repush_sp = sp; /* a push from the failing callbacks is refused at once */
    static entry_arg args[N];
    queue(sp, &t, args, N, binary_payload, BINARY_LEN);
    kill_own_redis();
    bool reached;
    RUN_UNTIL(&l, t.fired == N, WAIT_MS, reached);
    int fired = t.fired;
    run_for(&l, 300); /* a few failed attempts */
    bool connected = stream_push_connected(sp);
    long long backlog_after = stream_push_backlog(sp);
    tally t2 = {0};
    entry_arg ea = {&t2, 0};
    stream_push_status st = push(sp, "r\n", 2, &ea);
    stream_push_destroy(sp);
    const char *log = stderr_capture_end();

    cr_assert(reached, "%d of %d callbacks fired", fired, N);
    cr_assert_eq(t.failed, N, "%d succeeded with Redis dead", t.ok);
    cr_assert_str_eq(t.last_error, "redis connection lost");
    cr_assert_eq(t.out_of_order, 0);
    cr_assert_eq(t.fired, N, "a callback fired twice");
    for (size_t i = 0; i < CDR_ARRAY_LEN(t.repush_status); i++)
        cr_assert_eq(t.repush_status[i], PUSH_UNAVAILABLE, "push %zu from a callback", i);
    cr_assert_eq(backlog_before, 0);
    cr_assert_not(connected);
    cr_assert_eq(backlog_after, -1);
    cr_assert_eq(st, PUSH_UNAVAILABLE);
    cr_assert_eq(t2.fired, 0);
    cr_assert_eq(count_substr(log, "connection lost"), 1, "log:\n%s", log);
    cr_assert_eq(count_substr(log, "cannot connect"), 0, "log:\n%s", log);
    loop_free(&l);
}

Test(stream_push, entries_partly_sent_when_redis_is_killed_are_all_answered)
{
    enum { N = 2000 };
    own_redis_start(NULL, false);
    loop l = loop_new();
    stream_push *sp = connected_push(&l, own_url(NULL, NULL), "cdr:stream", 1000000);

    tally t = {0};
    static entry_arg args[N];
    queue(sp, &t, args, N, binary_payload, BINARY_LEN);
    event_base_loop(l.base, EVLOOP_ONCE); /* some or all written */
    kill_own_redis();
    wait_answers(&l, &t, N);
    /* Replies Redis sent before dying are still read: some or all may succeed. */
    cr_assert_eq(t.ok + t.failed, N);
    if (t.failed > 0)
        cr_assert_str_eq(t.last_error, "redis connection lost");
    cr_assert_eq(t.out_of_order, 0);
    run_for(&l, 50);
    cr_assert_eq(t.fired, N);
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, reconnects_after_redis_restarts_and_logs_once_each_way)
{
    own_redis_start(NULL, false);
    int port = own.port;
    loop l = loop_new();
    stderr_capture_start();
    stream_push *sp = connected_push(&l, own_url(NULL, NULL), "cdr:stream", 1000000);

    push_stored(&l, sp, "before\n", 7);

    kill_own_redis();
    bool reached;
    RUN_UNTIL(&l, !stream_push_connected(sp), WAIT_MS, reached);
    cr_assert(reached, "the loss went unnoticed");
    run_for(&l, 800); /* a few failed attempts while Redis is away */
    tally t_down = {0};
    entry_arg ad = {&t_down, 0};
    cr_assert_eq(push(sp, "down\n", 5, &ad), PUSH_UNAVAILABLE);

    own_redis_start(NULL, false);
    int64_t restarted = itest_now_ms();
    RUN_UNTIL(&l, stream_push_connected(sp), 3500, reached);
    cr_assert(reached, "not reconnected within 3.5 s of the restart");
    int64_t took = itest_now_ms() - restarted;

    push_stored(&l, sp, "after\n", 6);
    stream_push_destroy(sp);
    const char *log = stderr_capture_end();

    cr_assert_leq(took, 3000, "reconnection took %lld ms", (long long)took);
    cr_assert_eq(count_substr(log, "connection lost"), 1, "log:\n%s", log);
    cr_assert_eq(count_substr(log, "connection is back"), 1, "log:\n%s", log);
    cr_assert_eq(count_substr(log, "cannot connect"), 0, "log:\n%s", log);
    cr_assert_eq(t_down.fired, 0);

    redisContext *c = redis_open(port, NULL);
    cr_assert_geq(redis_xlen(c, "cdr:stream"), 1);
    redisFree(c);
    loop_free(&l);
}

Test(stream_push, backlog_watch_refuses_past_the_bound_and_accepts_after_trim)
{
    enum { MAX = 5 };
    char key[128];
    unique_key(key, sizeof(key), "backlog");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, MAX);
    bool reached;
    RUN_UNTIL(&l, stream_push_backlog(sp) == 0, WAIT_MS, reached);
    cr_assert(reached, "backlog %lld, expected 0 for a missing stream", stream_push_backlog(sp));

    tally t = {0};
    static entry_arg args[MAX + 1];
    queue(sp, &t, args, MAX, "r\n", 2);
    wait_answers(&l, &t, MAX);
    cr_assert_eq(t.ok, MAX, "%s", t.last_error);

    RUN_UNTIL(&l, stream_push_backlog(sp) >= MAX, 1000, reached);
    cr_assert(reached, "backlog %lld after %d entries", stream_push_backlog(sp), MAX);
    args[MAX] = (entry_arg){&t, MAX};
    cr_assert_eq(push(sp, "r\n", 2, &args[MAX]), PUSH_BACKLOG_FULL);

    redisContext *c = fixture_redis();
    redis_do(c, "XTRIM %s MAXLEN 0", key);
    RUN_UNTIL(&l, stream_push_backlog(sp) < MAX, 1000, reached);
    cr_assert(reached, "the trim was not seen");
    cr_assert_eq(push(sp, "r\n", 2, &args[MAX]), PUSH_QUEUED);
    wait_answers(&l, &t, MAX + 1);
    cr_assert_eq(t.ok, MAX + 1, "%s", t.last_error);
    cr_assert_eq(redis_xlen(c, key), 1);
    redis_do(c, "DEL %s", key);
    redisFree(c);
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, destroy_with_entries_in_flight_fires_every_callback)
{
    enum { N = 500 };
    char key[128];
    unique_key(key, sizeof(key), "destroy");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000000);

    tally t = {0};
    t.repush_sp = sp; /* pushing again from the callbacks, as a request handler might */
    static entry_arg args[N];
    queue(sp, &t, args, N, binary_payload, BINARY_LEN);
    stream_push_destroy(sp);
    cr_assert_eq(t.fired, N, "%d of %d callbacks fired before destroy returned", t.fired, N);
    cr_assert_eq(t.failed, N);
    cr_assert_str_eq(t.last_error, "redis connection lost");
    cr_assert_eq(t.out_of_order, 0);
    for (size_t i = 0; i < CDR_ARRAY_LEN(t.repush_status); i++)
        cr_assert_eq(t.repush_status[i], PUSH_UNAVAILABLE, "push %zu from a callback", i);
    loop_free(&l);
}

Test(stream_push, destroy_after_entries_were_sent_answers_each_once)
{
    enum { N = 500 };
    char key[128];
    unique_key(key, sizeof(key), "destroy2");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000000);

    tally t = {0};
    static entry_arg args[N];
    queue(sp, &t, args, N, "r\n", 2);
    event_base_loop(l.base, EVLOOP_ONCE);
    stream_push_destroy(sp);
    cr_assert_eq(t.fired, N);
    cr_assert_eq(t.ok + t.failed, N);
    run_for(&l, 50);
    cr_assert_eq(t.fired, N);
    redisContext *c = fixture_redis();
    redis_do(c, "DEL %s", key);
    redisFree(c);
    loop_free(&l);
}

Test(stream_push, destroy_while_connecting_or_waiting_to_retry)
{
    loop l = loop_new();
    stream_push *sp = make_push(&l, fixture(), "k", 10);
    stream_push_destroy(sp); /* the connect has not completed */

    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", proc_free_port());
    stderr_capture_start();
    sp = make_push(&l, url, "k", 10);
    run_for(&l, 150); /* refused, retry armed */
    stream_push_destroy(sp);
    (void)stderr_capture_end();
    run_for(&l, 300); /* no timer of the destroyed object may fire */
    loop_free(&l);
}

Test(stream_push, callbacks_may_push_again)
{
    char key[128];
    unique_key(key, sizeof(key), "chain");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, fixture(), key, 1000000);

    tally t = {0};
    t.repush_sp = sp;
    entry_arg ea = {&t, 0};
    cr_assert_eq(push(sp, "r\n", 2, &ea), PUSH_QUEUED);
    wait_answers(&l, &t, 1);
    cr_assert_eq(t.repush_status[0], PUSH_QUEUED);
    redisContext *c = fixture_redis();
    bool reached;
    RUN_UNTIL(&l, redis_xlen(c, key) == 2, WAIT_MS, reached);
    cr_assert(reached);
    redis_do(c, "DEL %s", key);
    redisFree(c);
    stream_push_destroy(sp);
    loop_free(&l);
}

Test(stream_push, auth_with_the_right_password_connects)
{
    own_redis_start("s3cret:with@chars", false);
    char key[128];
    unique_key(key, sizeof(key), "auth");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, own_url(":s3cret%3Awith%40chars", "/2"), key, 1000);
    push_stored(&l, sp, "r\n", 2);
    stream_push_destroy(sp);

    /* The same with a user name (Redis' "default" user holds requirepass). */
    sp = connected_push(&l, own_url("default:s3cret%3Awith%40chars", NULL), key, 1000);
    stream_push_destroy(sp);

    redisContext *c = redis_open(own.port, "s3cret:with@chars");
    redis_do(c, "SELECT 2");
    cr_assert_eq(redis_xlen(c, key), 1);
    redisFree(c);
    loop_free(&l);
}

Test(stream_push, wrong_password_keeps_it_unconnected)
{
    own_redis_start("right", false);
    loop l = loop_new();
    stderr_capture_start();
    stream_push *sp = make_push(&l, own_url(":wrong", "/1"), "k", 1000);
    run_for(&l, 1500);
    bool connected = stream_push_connected(sp);
    tally t = {0};
    entry_arg ea = {&t, 0};
    stream_push_status st = push(sp, "r\n", 2, &ea);
    long long backlog = stream_push_backlog(sp);
    stream_push_destroy(sp);

    /* No password at all: Redis refuses the commands (NOAUTH), so SELECT fails. */
    sp = make_push(&l, own_url(NULL, "/1"), "k", 1000);
    run_for(&l, 500);
    bool connected_nopass = stream_push_connected(sp);
    stream_push_destroy(sp);
    const char *log = stderr_capture_end();

    cr_assert_not(connected);
    cr_assert_not(connected_nopass);
    cr_assert_eq(st, PUSH_UNAVAILABLE);
    cr_assert_eq(backlog, -1);
    cr_assert_eq(t.fired, 0);
    cr_assert_eq(count_substr(log, "cannot connect"), 2, "one line per stream_push:\n%s", log);
    cr_assert(strstr(log, "AUTH: WRONGPASS"), "log:\n%s", log);
    cr_assert(strstr(log, "SELECT: NOAUTH"), "log:\n%s", log);
    cr_assert_null(strstr(log, "wrong"), "the password appears in the log:\n%s", log);
    loop_free(&l);
}

Test(stream_push, unix_socket_with_db)
{
    own_redis_start(NULL, true);
    char url[1300];
    snprintf(url, sizeof(url), "unix://%s?db=4", own.sock);
    char key[128];
    unique_key(key, sizeof(key), "unix");
    loop l = loop_new();
    stream_push *sp = connected_push(&l, url, key, 1000);
    push_stored(&l, sp, binary_payload, BINARY_LEN);
    stream_push_destroy(sp);

    redisContext *c = redis_open(own.port, NULL);
    redis_do(c, "SELECT 4");
    cr_assert_eq(redis_xlen(c, key), 1);
    redisFree(c);
    loop_free(&l);
}

Test(stream_push, redis_that_never_answers_the_handshake_times_out_and_is_retried)
{
    own_redis_start("pw", false);
    cr_assert_eq(kill(own.pid, SIGSTOP), 0);
    loop l = loop_new();
    stderr_capture_start();
    stream_push *sp = make_push(&l, own_url(":pw", NULL), "k", 1000);
    run_for(&l, 1500); /* connect_timeout_ms is 1000 */
    bool connected_stopped = stream_push_connected(sp);
    kill(own.pid, SIGCONT);
    bool reached;
    RUN_UNTIL(&l, stream_push_connected(sp), WAIT_MS, reached);
    stream_push_destroy(sp);
    const char *log = stderr_capture_end();

    cr_assert_not(connected_stopped);
    cr_assert(reached, "not connected once Redis answers again");
    cr_assert_eq(count_substr(log, "cannot connect: no answer to AUTH/SELECT within 1000 ms"), 1,
                 "log:\n%s", log);
    cr_assert_eq(count_substr(log, "connection is back"), 1, "log:\n%s", log);
    loop_free(&l);
}

Test(stream_push, redis_that_stops_answering_fails_the_entries_in_flight)
{
    own_redis_start(NULL, false);
    loop l = loop_new();
    stderr_capture_start();
    stream_push *sp = connected_push(&l, own_url(NULL, NULL), "k", 1000000);
    cr_assert_eq(kill(own.pid, SIGSTOP), 0);
    tally t = {0};
    static entry_arg args[10];
    queue(sp, &t, args, 10, "x", 1);
    bool reached;
    RUN_UNTIL(&l, t.fired == 10, 8000, reached);
    bool connected = stream_push_connected(sp);
    kill(own.pid, SIGCONT);
    stream_push_destroy(sp);
    const char *log = stderr_capture_end();

    cr_assert(reached, "%d of 10 posts answered while Redis was silent", t.fired);
    cr_assert_eq(t.failed, 10);
    cr_assert_not(connected);
    cr_assert_eq(count_substr(log, "no reply from Redis for 5 s"), 1, "log:\n%s", log);
    loop_free(&l);
}
