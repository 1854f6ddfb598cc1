/* ingest_main.c - cdr-ingest: configuration, listening sockets, one event loop per thread,
 * and a clean stop on SIGTERM/SIGINT. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth_options.h"
#include "front.h"
#include "ingest_config.h"
#include "json_arena.h"
#include "log.h"
#include "program.h"

#define DRAIN_POLL_MS 20
#define DRAIN_MAX_MS  5000
#define FD_RESERVE    256 /* descriptors beyond client connections: Redis, logs, listeners */

/* One thread: its loop, its front, and the events the main thread uses to stop it. */
typedef struct worker {
    pthread_t thread;
    bool started;
    struct event_base *base;
    ingest_front *front;
    struct event *stop_ev;  /* activated by the main thread on SIGTERM/SIGINT */
    struct event *drain_ev; /* polls until the posts in flight are answered */
    int drain_left_ms;
} worker;

typedef struct ingest_app {
    ingest_config conf;
    auth_verifier *verifier;
    ingest_shared shared;
    worker *workers;
    int n_workers;
} ingest_app;

static double backlog_gauge(void *arg)
{
    const ingest_app *app = arg;
    long long max = -1;
    for (int i = 0; i < app->n_workers; i++) {
        long long b = app->workers[i].front ? ingest_front_backlog(app->workers[i].front) : -1;
        if (b > max)
            max = b;
    }
    return (double)max;
}

static int register_metrics(ingest_shared *sh, metrics *m, ingest_app *app)
{
    static const int statuses[] = {200, 202, 400, 401, 403, 404, 405, 413, 415, 500, 503};
    static const double rtt_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
    const char *req_help = "Requests answered, by HTTP status";
    for (size_t i = 0; i < CDR_ARRAY_LEN(sh->m_status); i++)
        sh->m_status[i] = -1;
    for (size_t i = 0; i < CDR_ARRAY_LEN(statuses); i++) {
        char label[32];
        snprintf(label, sizeof(label), "status=\"%d\"", statuses[i]);
        if ((sh->m_status[statuses[i]] =
                 metrics_counter(m, "cdr_ingest_requests_total", req_help, label)) < 0)
            return -1;
    }
    sh->m_status_other =
        metrics_counter(m, "cdr_ingest_requests_total", req_help, "status=\"other\"");
    sh->m_accepted =
        metrics_counter(m, "cdr_ingest_cdrs_accepted_total", "CDRs stored in the stream", NULL);
    sh->m_rejected = metrics_counter(m, "cdr_ingest_cdrs_rejected_total",
                                     "Items refused and stored as rejects", NULL);
    sh->m_redis_rtt = metrics_histogram(m, "cdr_ingest_redis_rtt_seconds",
                                        "Time from queuing an append to Redis' answer", NULL,
                                        rtt_bounds, (int)CDR_ARRAY_LEN(rtt_bounds));
    int g =
        metrics_gauge_fn(m, "cdr_ingest_stream_backlog",
                         "Stream entries waiting for the writers (last poll)", backlog_gauge, app);
    if (sh->m_status_other < 0 || sh->m_accepted < 0 || sh->m_rejected < 0 || sh->m_redis_rtt < 0 ||
        g < 0)
        return -1;
    return 0;
}

/* Raises the descriptor limit to what CDR_INGEST_MAX_CONNECTIONS needs; past that limit accept
 * fails and the fronts pause accepting, which is what bounds the connections. */
static void set_fd_limit(long long max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)max_conns + FD_RESERVE;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
        LOG_WARN("ingest", "descriptor limit %llu allows fewer connections than %lld",
                 (unsigned long long)rl.rlim_max, max_conns);
        want = rl.rlim_max;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        LOG_WARN("ingest", "cannot set the descriptor limit: %s", strerror(errno));
}

/* A listening socket of its own for each thread (SO_REUSEPORT: the kernel spreads the
 * connections). Returns the descriptor, or -1 with 'err' filled. */
static int open_listener(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
        snprintf(err, errlen, "CDR_INGEST_LISTEN: '%s' is not an address:port", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Polls until the thread's posts in flight are answered or the drain time is up, then ends
 * the loop (event callback, worker thread). */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    w->drain_left_ms -= DRAIN_POLL_MS;
    if (ingest_front_in_flight(w->front) == 0 || w->drain_left_ms <= 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv = {0, DRAIN_POLL_MS * 1000};
    evtimer_add(w->drain_ev, &tv);
}

/* The main thread asked this one to stop (event callback, worker thread). */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    ingest_front_stop_accepting(w->front);
    w->drain_left_ms = DRAIN_MAX_MS;
    struct timeval tv = {0, 0};
    evtimer_add(w->drain_ev, &tv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (ingest_front_run(w->front) < 0)
        LOG_ERROR("ingest", "event loop failed");
    return NULL;
}

static int start_workers(ingest_app *app)
{
    char err[512];
    for (int i = 0; i < app->n_workers; i++) {
        worker *w = &app->workers[i];
        int fd = open_listener(app->conf.listen, err, sizeof(err));
        if (fd < 0)
            goto fail;
        w->base = event_base_new();
        w->stop_ev = w->base ? event_new(w->base, -1, 0, on_stop, w) : NULL;
        w->drain_ev = w->base ? evtimer_new(w->base, on_drain, w) : NULL;
        if (!w->base || !w->stop_ev || !w->drain_ev) {
            close(fd);
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
        w->front = ingest_front_create(w->base, fd, i, &app->shared, err, sizeof(err));
        if (!w->front)
            goto fail;
    }
    for (int i = 0; i < app->n_workers; i++) {
        worker *w = &app->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, sizeof(err), "cannot start thread %d", i);
            goto fail;
        }
        w->started = true;
    }
    return 0;
fail:
    LOG_ERROR("ingest", "%s", err);
    return -1;
}

static void stop_workers(ingest_app *app)
{
    for (int i = 0; i < app->n_workers; i++)
        if (app->workers[i].started)
            event_active(app->workers[i].stop_ev, EV_TIMEOUT, 0);
    for (int i = 0; i < app->n_workers; i++)
        if (app->workers[i].started)
            pthread_join(app->workers[i].thread, NULL);
    for (int i = 0; i < app->n_workers; i++) {
        worker *w = &app->workers[i];
        ingest_front_destroy(w->front);
        w->front = NULL;
        if (w->stop_ev)
            event_free(w->stop_ev);
        if (w->drain_ev)
            event_free(w->drain_ev);
        if (w->base)
            event_base_free(w->base);
    }
}

/* Blocks until SIGTERM or SIGINT; the worker threads never see them (blocked before they
 * start). */
static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

int main(int argc, char **argv)
{
    ingest_app app;
    memset(&app, 0, sizeof(app));
    char err[512];
    int rc = program_start(&ingest_cfg_table, &app.conf, argc, argv, NULL,
                           offsetof(ingest_config, log_level));
    if (rc != PROGRAM_CONTINUE)
        goto done;
    rc = PROGRAM_EXIT_USAGE;
    app.verifier = auth_settings_verifier(&app.conf.auth, err, sizeof(err));
    if (!app.verifier) {
        fprintf(stderr, "cdr-ingest: %s\n", err);
        goto done;
    }
    if (redis_url_parse(app.conf.redis_url, &app.shared.redis, err, sizeof(err)) != 0) {
        fprintf(stderr, "cdr-ingest: CDR_REDIS_URL: %s\n", err);
        goto done;
    }
    if (app.conf.check_config) {
        printf("cdr-ingest: configuration is valid\n");
        rc = 0;
        goto done;
    }

    rc = 1;
    app.n_workers =
        app.conf.threads > 0 ? (int)app.conf.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (app.n_workers < 1)
        app.n_workers = 1;
    app.workers = calloc((size_t)app.n_workers, sizeof(*app.workers));
    app.shared.conf = &app.conf;
    app.shared.verifier = app.verifier;
    app.shared.metrics = metrics_create(app.n_workers);
    if (!app.workers || !app.shared.metrics ||
        register_metrics(&app.shared, app.shared.metrics, &app) != 0) {
        LOG_ERROR("ingest", "out of memory");
        goto done;
    }
    set_fd_limit(app.conf.max_conns);
    if (json_arena_install() != 0) {
        LOG_ERROR("ingest", "cannot install the JSON allocator");
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        LOG_ERROR("ingest", "libevent has no thread support");
        goto done;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (start_workers(&app) != 0) {
        stop_workers(&app);
        goto done;
    }
    LOG_INFO("ingest", "listening on %s with %d threads, stream %s", app.conf.listen, app.n_workers,
             app.conf.stream_key);
    int sig = wait_for_signal(&set);
    LOG_INFO("ingest", "%s: finishing the posts in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop_workers(&app);
    LOG_INFO("ingest", "stopped");
    rc = 0;
done:
    free(app.workers);
    metrics_destroy(app.shared.metrics);
    auth_verifier_destroy(app.verifier);
    cfg_free(&ingest_cfg_table, &app.conf);
    return rc;
}
