/* writer_metrics.c - cdr-writer's metrics registry and its HTTP listener on its own thread. */
#include "writer_metrics.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errfmt.h"
#include "http_health.h"
#include "http_reply.h"
#include "log.h"
#include "metrics.h"

#define COMPONENT "writer"

struct writer_metrics {
    metrics *m;
    int ids[WM_N_COUNTERS];
    int batch_seconds;
    _Atomic long long lag_entries; /* -1: unknown */
    _Atomic long long lag_ms;      /* -1: unknown */
    atomic_bool redis_ok;
    atomic_bool pg_ok;

    struct event_base *base;
    struct evhttp *http;
    http_health_ops health;
    pthread_t thread;
    bool started;
};

static double lag_entries_gauge(void *arg)
{
    const writer_metrics *wm = arg;
    return (double)atomic_load_explicit(&wm->lag_entries, memory_order_relaxed);
}

static double lag_seconds_gauge(void *arg)
{
    const writer_metrics *wm = arg;
    long long ms = atomic_load_explicit(&wm->lag_ms, memory_order_relaxed);
    return ms < 0 ? -1.0 : (double)ms / 1000.0;
}

/* /readyz (listener thread). */
static bool ready(void *arg, char *why, size_t whylen)
{
    writer_metrics *wm = arg;
    bool redis = atomic_load(&wm->redis_ok), pg = atomic_load(&wm->pg_ok);
    if (!redis || !pg)
        snprintf(why, whylen, "%s%s%s not connected", redis ? "" : "Redis",
                 !redis && !pg ? " and " : "", pg ? "" : "PostgreSQL");
    return redis && pg;
}

static int register_metrics(writer_metrics *wm)
{
    static const struct {
        const char *name, *help, *labels;
    } counters[WM_N_COUNTERS] = {
        [WM_BATCHES] = {"cdr_writer_batches_total", "Batches committed and acknowledged", NULL},
        [WM_INSERTED] = {"cdr_writer_rows_inserted_total", "CDRs inserted into voip_cdr", NULL},
        [WM_DUPLICATES] = {"cdr_writer_duplicates_total",
                           "CDRs already stored, left out (redeliveries, retried posts)", NULL},
        [WM_REJECTS_INGEST] = {"cdr_writer_rejects_total", "Rows stored in voip_cdr_rejects",
                               "source=\"ingest\""},
        [WM_REJECTS_WRITER] = {"cdr_writer_rejects_total", "Rows stored in voip_cdr_rejects",
                               "source=\"writer\""},
        [WM_DEAD_LETTERS] = {"cdr_writer_dead_letters_total",
                             "Stream entries and rows moved to the dead-letter stream", NULL},
        [WM_PG_FAILURES] = {"cdr_writer_pg_failures_total",
                            "Attempts at a batch that PostgreSQL failed (retried)", NULL},
        [WM_REDIS_FAILURES] = {"cdr_writer_redis_failures_total",
                               "Redis commands or connections that failed (retried)", NULL},
    };
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    for (int i = 0; i < WM_N_COUNTERS; i++)
        if ((wm->ids[i] = metrics_counter(wm->m, counters[i].name, counters[i].help,
                                          counters[i].labels)) < 0)
            return -1;
    wm->batch_seconds = metrics_histogram(wm->m, "cdr_writer_batch_seconds",
                                          "Time to write and acknowledge a batch, retries included",
                                          NULL, bounds, (int)CDR_ARRAY_LEN(bounds));
    if (wm->batch_seconds < 0 ||
        metrics_gauge_fn(wm->m, "cdr_writer_stream_lag_entries",
                         "Stream entries not yet delivered to the group (-1: unknown)",
                         lag_entries_gauge, wm) < 0 ||
        metrics_gauge_fn(wm->m, "cdr_writer_stream_lag_seconds",
                         "Age of the oldest entry not yet delivered to the group (-1: unknown)",
                         lag_seconds_gauge, wm) < 0)
        return -1;
    return 0;
}

/* Every request (listener thread). */
static void on_request(struct evhttp_request *req, void *arg)
{
    writer_metrics *wm = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (http_health_route(req, path, &wm->health))
        return;
    http_reply_error(req, 404, "no such resource", NULL, 0);
}

/* A listening socket on 'addr' (host:port). Returns it, or -1 with 'err'. */
static evutil_socket_t open_listener(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
        cdr_errf(err, errlen, "CDR_WRITER_METRICS_LISTEN: '%s' is not an address:port", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 64) != 0) {
        cdr_errf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void *listener_main(void *arg)
{
    writer_metrics *wm = arg;
    if (event_base_dispatch(wm->base) < 0)
        LOG_ERROR(COMPONENT, "metrics listener: event loop failed");
    return NULL;
}

writer_metrics *writer_metrics_start(const char *listen, char *err, size_t errlen)
{
    writer_metrics *wm = calloc(1, sizeof(*wm));
    if (!wm) {
        cdr_errf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&wm->lag_entries, -1);
    atomic_init(&wm->lag_ms, -1);
    atomic_init(&wm->redis_ok, false);
    atomic_init(&wm->pg_ok, false);
    wm->m = metrics_create(1);
    if (!wm->m || register_metrics(wm) != 0) {
        cdr_errf(err, errlen, "out of memory");
        goto fail;
    }
    /* The main thread ends the listener's loop: the base must be made thread-safe. */
    if (evthread_use_pthreads() != 0) {
        cdr_errf(err, errlen, "libevent has no thread support");
        goto fail;
    }
    wm->base = event_base_new();
    wm->http = wm->base ? evhttp_new(wm->base) : NULL;
    if (!wm->http) {
        cdr_errf(err, errlen, "out of memory");
        goto fail;
    }
    evutil_socket_t fd = open_listener(listen, err, errlen);
    if (fd < 0)
        goto fail;
    if (!evhttp_accept_socket_with_handle(wm->http, fd)) {
        close(fd);
        cdr_errf(err, errlen, "cannot accept on %s", listen);
        goto fail;
    }
    evhttp_set_gencb(wm->http, on_request, wm);
    wm->health.ready = ready;
    wm->health.arg = wm;
    wm->health.metrics = wm->m;

    /* Signals are for the main thread, whose sleeps they cut short. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&wm->thread, NULL, listener_main, wm);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        cdr_errf(err, errlen, "cannot start the metrics thread: %s", strerror(rc));
        goto fail;
    }
    wm->started = true;
    return wm;
fail:
    writer_metrics_stop(wm);
    return NULL;
}

void writer_metrics_stop(writer_metrics *wm)
{
    if (!wm)
        return;
    if (wm->started) {
        event_base_loopexit(wm->base, NULL);
        pthread_join(wm->thread, NULL);
    }
    if (wm->http)
        evhttp_free(wm->http);
    if (wm->base)
        event_base_free(wm->base);
    metrics_destroy(wm->m);
    free(wm);
}

void writer_metrics_add(writer_metrics *wm, wm_counter c, uint64_t by)
{
    if (by)
        metrics_add(wm->m, 0, wm->ids[c], by);
}

void writer_metrics_batch_seconds(writer_metrics *wm, double seconds)
{
    metrics_observe(wm->m, 0, wm->batch_seconds, seconds);
}

void writer_metrics_lag(writer_metrics *wm, long long entries, double seconds)
{
    atomic_store_explicit(&wm->lag_entries, entries, memory_order_relaxed);
    atomic_store_explicit(&wm->lag_ms, seconds < 0 ? -1 : (long long)(seconds * 1000.0),
                          memory_order_relaxed);
}

void writer_metrics_ready(writer_metrics *wm, bool redis, bool pg)
{
    atomic_store(&wm->redis_ok, redis);
    atomic_store(&wm->pg_ok, pg);
}

uint64_t writer_metrics_value(const writer_metrics *wm, wm_counter c)
{
    return metrics_counter_value(wm->m, wm->ids[c]);
}
