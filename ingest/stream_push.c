/* stream_push.c - one thread's Redis connection: pipelined XADD, the backlog watch, reconnection.
 *
 * The connection goes through these steps: an attempt is started (redisAsyncConnect*, AUTH and
 * SELECT queued at once), the connect callback reports the socket up, the AUTH/SELECT replies
 * come back OK, and only then is the connection usable. Any failure on the way, or the loss of a
 * usable connection, drops the context and arms the retry timer (100 ms doubling to 2 s).
 *
 * Who frees the hiredis context: hiredis itself after the connect callback reported a failure
 * and after the disconnect callback returned; this file only from its own timers and from
 * stream_push_destroy(), never from inside a hiredis callback. Before freeing it this file sets
 * 'ac->data' to NULL and forgets 'sp->ac', so that the callbacks hiredis runs while freeing
 * (pending replies with NULL, the disconnect callback) see a context that is no longer theirs
 * and leave the stream_push alone.
 *
 * Writing to a connection Redis has closed raises SIGPIPE: the program ignores that signal. */
#include "stream_push.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define COMPONENT                  "stream"
#define DEFAULT_STREAM_KEY         "cdr:stream"
#define DEFAULT_POLL_MS            100
#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS             100
#define BACKOFF_MAX_MS             2000
#define REPLY_TIMEOUT_US           (5 * 1000000) /* a Redis silent this long is dropped */

struct stream_push {
    struct event_base *base;
    redis_target target;
    char *key;
    size_t key_len;
    long long max_backlog; /* <= 0: no bound */
    int poll_ms;
    int connect_timeout_ms;
    char where[320]; /* "host:port db N" or the socket path, for log lines (never the password) */

    redisAsyncContext *ac; /* the current attempt or connection; NULL between attempts */
    bool socket_up;        /* the connect callback reported success */
    int handshake_pending; /* AUTH / SELECT replies still awaited */
    bool handshake_failed; /* one of them answered an error: the context is being closed */
    bool usable;           /* socket up, AUTH and SELECT answered OK */
    bool losing;           /* usable, but hiredis is failing its pending replies: going down */
    bool ever_usable;
    bool in_outage; /* the failure was logged; the recovery will be */
    int backoff_ms; /* the wait before the next attempt */
    char failure[256];

    struct event *retry_timer;   /* starts the next attempt */
    struct event *connect_timer; /* gives up an attempt not usable within connect_timeout_ms */
    struct event *poll_timer;    /* asks XLEN every poll_ms */
    bool xlen_outstanding;
    int64_t xlen_sent_us; /* when the outstanding XLEN was queued */
    long long backlog;

    int user_cb_depth; /* user callbacks on the stack: destroying then would free under them */
};

/* One XADD in flight: owned by hiredis' callback list from the moment redisAsyncCommandArgv()
 * accepted it, freed by on_xadd() after the user's callback returned. */
typedef struct push_ctx {
    stream_push_cb cb;
    void *arg;
    int64_t queued_us;
} push_ctx;

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* Logs a failed attempt or a lost connection: one line per outage at WARN, the retries that
 * follow at DEBUG. */
static void log_failure(stream_push *sp, bool was_usable, const char *why)
{
    if (sp->in_outage) {
        LOG_DEBUG(COMPONENT, "%s: attempt failed: %s", sp->where, why);
        return;
    }
    sp->in_outage = true;
    if (was_usable)
        LOG_WARN(COMPONENT, "%s: connection lost: %s; reconnecting", sp->where, why);
    else
        LOG_WARN(COMPONENT, "%s: cannot connect: %s; retrying", sp->where, why);
}

/* What follows the end of an attempt or connection, once 'sp->ac' is forgotten. */
static void connection_gone(stream_push *sp, const char *why)
{
    bool was_usable = sp->usable;
    sp->ac = NULL;
    sp->socket_up = false;
    sp->handshake_pending = 0;
    sp->handshake_failed = false;
    sp->usable = false;
    sp->losing = false;
    sp->xlen_outstanding = false;
    sp->backlog = -1;
    evtimer_del(sp->connect_timer);
    log_failure(sp, was_usable, why);

    struct timeval tv = ms_to_tv(sp->backoff_ms);
    evtimer_add(sp->retry_timer, &tv);
    sp->backoff_ms = sp->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sp->backoff_ms * 2;
}

/* Drops the current context from outside any hiredis callback: pending replies fire with NULL
 * (user callbacks with !ok), then the retry is armed. */
static void abandon_attempt(stream_push *sp, const char *why)
{
    redisAsyncContext *ac = sp->ac;
    sp->ac = NULL; /* pushes tried from the callbacks below are refused */
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    connection_gone(sp, why);
}

static void on_xlen(redisAsyncContext *ac, void *r, void *privdata)
{
    stream_push *sp = privdata;
    redisReply *reply = r;
    if (sp->ac != ac)
        return; /* an abandoned context being freed */
    sp->xlen_outstanding = false;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_INTEGER) {
        sp->backlog = reply->integer;
    } else {
        /* The key holds something else than a stream: XADD will say so to each request. */
        sp->backlog = -1;
        LOG_DEBUG(COMPONENT, "%s: XLEN %s: %s", sp->where, sp->key,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

/* Sends XLEN unless one is already on its way or the connection is not usable. */
static void poll_backlog(stream_push *sp)
{
    if (!stream_push_connected(sp) || sp->xlen_outstanding)
        return;
    const char *argv[2] = {"XLEN", sp->key};
    size_t argvlen[2] = {4, sp->key_len};
    if (redisAsyncCommandArgv(sp->ac, on_xlen, sp, 2, argv, argvlen) == REDIS_OK) {
        sp->xlen_outstanding = true;
        sp->xlen_sent_us = monotonic_us();
    }
}

/* Polls the backlog, and watches for a Redis that accepted commands but stopped answering:
 * replies come in order, so an XLEN unanswered for REPLY_TIMEOUT_US means everything queued
 * before it is stuck too. Dropping the connection answers those posts (503) instead of leaving
 * their clients waiting, and starts a new attempt. */
static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    stream_push *sp = arg;
    if (sp->ac && sp->xlen_outstanding && monotonic_us() - sp->xlen_sent_us > REPLY_TIMEOUT_US) {
        abandon_attempt(sp, "no reply from Redis for 5 s");
        return;
    }
    poll_backlog(sp);
}

static void become_usable(stream_push *sp)
{
    sp->usable = true;
    sp->backoff_ms = BACKOFF_MIN_MS;
    evtimer_del(sp->connect_timer);
    if (sp->in_outage)
        LOG_INFO(COMPONENT, "%s: connection is back", sp->where);
    else if (!sp->ever_usable)
        LOG_INFO(COMPONENT, "%s: connected", sp->where);
    sp->in_outage = false;
    sp->ever_usable = true;
    poll_backlog(sp);
}

/* The reply to AUTH or SELECT ('what'). An error ends the attempt: the context is closed once
 * the replies already asked for have come (hiredis' redisAsyncDisconnect), which brings
 * on_disconnect(). */
static void handshake_reply(redisAsyncContext *ac, redisReply *reply, stream_push *sp,
                            const char *what)
{
    if (sp->ac != ac || !reply)
        return; /* abandoned, or being lost: on_disconnect() follows */
    sp->handshake_pending--;
    bool ok = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0;
    if (!ok && !sp->handshake_failed) {
        sp->handshake_failed = true;
        snprintf(sp->failure, sizeof(sp->failure), "%s: %s", what,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        redisAsyncDisconnect(ac);
        return;
    }
    if (sp->handshake_pending == 0 && sp->socket_up && !sp->handshake_failed)
        become_usable(sp);
}

static void on_auth(redisAsyncContext *ac, void *r, void *privdata)
{
    handshake_reply(ac, r, privdata, "AUTH");
}

static void on_select(redisAsyncContext *ac, void *r, void *privdata)
{
    handshake_reply(ac, r, privdata, "SELECT");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    stream_push *sp = ac->data;
    if (!sp || sp->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns; the AUTH/SELECT callbacks it runs then
         * find it abandoned. */
        connection_gone(sp, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    sp->socket_up = true;
    if (sp->handshake_pending == 0)
        become_usable(sp);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    stream_push *sp = ac->data;
    if (!sp || sp->ac != ac)
        return; /* freed by this file, which already did what follows */
    const char *why;
    if (sp->handshake_failed)
        why = sp->failure;
    else if (status != REDIS_OK && ac->errstr[0])
        why = ac->errstr;
    else
        why = "connection closed";
    /* hiredis frees the context when this returns. */
    connection_gone(sp, why);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    stream_push *sp = arg;
    if (sp->usable || !sp->ac)
        return;
    snprintf(sp->failure, sizeof(sp->failure), "%s within %d ms",
             sp->socket_up ? "no answer to AUTH/SELECT" : "no connection", sp->connect_timeout_ms);
    abandon_attempt(sp, sp->failure);
}

/* Queues AUTH and SELECT on the new context as configured. Returns false when hiredis refused. */
static bool queue_handshake(stream_push *sp, redisAsyncContext *ac)
{
    const redis_target *t = &sp->target;
    if (t->password[0]) {
        const char *argv[3] = {"AUTH", t->user, t->password};
        size_t argvlen[3] = {4, strlen(t->user), strlen(t->password)};
        int argc = 3;
        if (!t->user[0]) {
            argv[1] = t->password;
            argvlen[1] = argvlen[2];
            argc = 2;
        }
        if (redisAsyncCommandArgv(ac, on_auth, sp, argc, argv, argvlen) != REDIS_OK)
            return false;
        sp->handshake_pending++;
    }
    if (t->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", t->db);
        const char *argv[2] = {"SELECT", db};
        size_t argvlen[2] = {6, strlen(db)};
        if (redisAsyncCommandArgv(ac, on_select, sp, 2, argv, argvlen) != REDIS_OK)
            return false;
        sp->handshake_pending++;
    }
    return true;
}

/* Starts one connection attempt; a failure arms the retry. */
static void start_attempt(stream_push *sp)
{
    const redis_target *t = &sp->target;
    redisAsyncContext *ac =
        t->unix_path[0] ? redisAsyncConnectUnix(t->unix_path) : redisAsyncConnect(t->host, t->port);
    if (!ac) {
        connection_gone(sp, "out of memory");
        return;
    }
    if (ac->err) {
        char why[256];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        connection_gone(sp, why);
        return;
    }
    ac->data = sp;
    sp->ac = ac;
    sp->socket_up = false;
    sp->handshake_pending = 0;
    sp->handshake_failed = false;
    if (redisLibeventAttach(ac, sp->base) != REDIS_OK ||
        redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK ||
        !queue_handshake(sp, ac)) {
        abandon_attempt(sp, "cannot set up the connection");
        return;
    }
    struct timeval tv = ms_to_tv(sp->connect_timeout_ms);
    evtimer_add(sp->connect_timer, &tv);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    start_attempt(arg);
}

stream_push *stream_push_create(struct event_base *base, const stream_push_config *cfg)
{
    stream_push *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return NULL;
    sp->base = base;
    sp->target = cfg->target;
    sp->key = strdup(cfg->stream_key ? cfg->stream_key : DEFAULT_STREAM_KEY);
    sp->max_backlog = cfg->max_backlog;
    sp->poll_ms = cfg->backlog_poll_ms > 0 ? cfg->backlog_poll_ms : DEFAULT_POLL_MS;
    sp->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    sp->backoff_ms = BACKOFF_MIN_MS;
    sp->backlog = -1;

    const redis_target *t = &sp->target;
    if (t->unix_path[0])
        snprintf(sp->where, sizeof(sp->where), "%s", t->unix_path);
    else
        snprintf(sp->where, sizeof(sp->where), strchr(t->host, ':') ? "[%s]:%d" : "%s:%d", t->host,
                 t->port);
    if (t->db != 0) {
        size_t n = strlen(sp->where);
        snprintf(sp->where + n, sizeof(sp->where) - n, " db %d", t->db);
    }

    sp->retry_timer = evtimer_new(base, on_retry_timer, sp);
    sp->connect_timer = evtimer_new(base, on_connect_timeout, sp);
    sp->poll_timer = event_new(base, -1, EV_PERSIST, on_poll_timer, sp);
    if (!sp->key || !sp->retry_timer || !sp->connect_timer || !sp->poll_timer) {
        stream_push_destroy(sp);
        return NULL;
    }
    sp->key_len = strlen(sp->key);
    struct timeval tv = ms_to_tv(sp->poll_ms);
    if (event_add(sp->poll_timer, &tv) != 0) {
        stream_push_destroy(sp);
        return NULL;
    }
    start_attempt(sp);
    return sp;
}

void stream_push_destroy(stream_push *sp)
{
    if (!sp)
        return;
    if (sp->user_cb_depth > 0) {
        /* Freeing now would pull the connection from under the hiredis callback running the
         * user's one; the contract forbids it, and going on would corrupt memory. */
        LOG_ERROR(COMPONENT, "%s: stream_push_destroy() called from a push callback", sp->where);
        abort();
    }
    if (sp->retry_timer)
        event_free(sp->retry_timer);
    if (sp->connect_timer)
        event_free(sp->connect_timer);
    if (sp->poll_timer)
        event_free(sp->poll_timer);
    sp->retry_timer = sp->connect_timer = sp->poll_timer = NULL;

    redisAsyncContext *ac = sp->ac;
    sp->ac = NULL;
    sp->usable = false;
    if (ac) {
        /* Runs every pending callback with NULL now: the users' ones see !ok (and a push they
         * attempt from there is refused), the disconnect callback sees no stream_push. */
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    free(sp->key);
    free(sp);
}

static void on_xadd(redisAsyncContext *ac, void *r, void *privdata)
{
    push_ctx *ctx = privdata;
    redisReply *reply = r;
    stream_push *sp = ac->data; /* NULL when the context is being freed by this file */
    stream_push_result res = {.ok = false, .error = NULL, .rtt_us = 0};

    res.rtt_us = monotonic_us() - ctx->queued_us;
    if (!reply) {
        res.error = "redis connection lost";
        /* Further pushes from the user's callback are refused at once. */
        if (sp && sp->ac == ac)
            sp->losing = true;
    } else if (reply->type == REDIS_REPLY_STRING) {
        res.ok = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        res.error = reply->str;
    } else {
        res.error = "unexpected reply to XADD";
    }

    stream_push_cb cb = ctx->cb;
    void *arg = ctx->arg;
    free(ctx);
    if (sp)
        sp->user_cb_depth++;
    cb(&res, arg);
    if (sp)
        sp->user_cb_depth--;
}

stream_push_status stream_push_entry(stream_push *sp, const char *kind, unsigned n_rows,
                                     const char *enc, const void *payload, size_t len,
                                     stream_push_cb cb, void *arg)
{
    if (!stream_push_connected(sp))
        return PUSH_UNAVAILABLE;
    if (sp->max_backlog > 0 && sp->backlog >= sp->max_backlog)
        return PUSH_BACKLOG_FULL;

    push_ctx *ctx = malloc(sizeof(*ctx));
    if (!ctx)
        return PUSH_UNAVAILABLE;
    ctx->cb = cb;
    ctx->arg = arg;
    ctx->queued_us = monotonic_us();

    char n[16];
    snprintf(n, sizeof(n), "%u", n_rows);
    /* One field and its value per line, as in docs/stream-format.md. Every argument is text
     * but the last, the rows, which may hold any byte. */
    /* clang-format off */
    const char *argv[] = {
        "XADD", sp->key, "*",
        "v",    "1",
        "kind", kind,
        "n",    n,
        "enc",  enc,
        "rows", payload ? payload : "",
    };
    /* clang-format on */
    size_t argvlen[CDR_ARRAY_LEN(argv)];
    for (size_t i = 0; i + 1 < CDR_ARRAY_LEN(argv); i++)
        argvlen[i] = strlen(argv[i]);
    argvlen[CDR_ARRAY_LEN(argv) - 1] = payload ? len : 0;
    if (redisAsyncCommandArgv(sp->ac, on_xadd, ctx, (int)CDR_ARRAY_LEN(argv), argv, argvlen) !=
        REDIS_OK) {
        free(ctx);
        return PUSH_UNAVAILABLE;
    }
    return PUSH_QUEUED;
}

bool stream_push_connected(const stream_push *sp)
{
    return sp->usable && !sp->losing && sp->ac != NULL;
}

long long stream_push_backlog(const stream_push *sp)
{
    return sp->backlog;
}
