/* query_main.c - cdr-query: configuration, one event loop serving HTTP with a PostgreSQL pool,
 * and a clean stop on SIGTERM/SIGINT (stop accepting, finish what is in flight, exit 0). */
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_options.h"
#include "log.h"
#include "metrics.h"
#include "pg_pool.h"
#include "program.h"
#include "query_config.h"
#include "router.h"

#define DRAIN_POLL_MS  20
#define DRAIN_MAX_MS   15000
#define HTTP_TIMEOUT_S 60

typedef struct query_app {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sigterm, *sigint, *drain;
    router *router;
    int drain_left_ms;
} query_app;

/* Ends the loop once the requests in flight are answered or the drain time is up. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    query_app *app = arg;
    (void)fd;
    (void)what;
    app->drain_left_ms -= DRAIN_POLL_MS;
    if (router_in_flight(app->router) == 0 || app->drain_left_ms <= 0) {
        event_base_loopexit(app->base, NULL);
        return;
    }
    struct timeval tv = {0, DRAIN_POLL_MS * 1000};
    evtimer_add(app->drain, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    query_app *app = arg;
    (void)what;
    if (!app->bound)
        return;
    LOG_INFO("query", "%s: finishing the requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    evhttp_del_accept_socket(app->http, app->bound);
    app->bound = NULL;
    app->drain_left_ms = DRAIN_MAX_MS;
    struct timeval tv = {0, 0};
    evtimer_add(app->drain, &tv);
}

/* Splits "host:port" for evhttp_bind_socket_with_handle. Returns 0 or -1. */
static int split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= hostlen)
        return -1;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!end || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int main(int argc, char **argv)
{
    query_config conf = {0};
    query_app app = {0};
    auth_verifier *verifier = NULL;
    metrics *m = NULL;
    pg_pool *pool = NULL;
    int rc =
        program_start(&query_cfg_table, &conf, argc, argv, NULL, offsetof(query_config, log_level));
    if (rc != PROGRAM_CONTINUE)
        goto done;
    char err[512];
    verifier = auth_settings_verifier(&conf.auth, err, sizeof(err));
    if (!verifier) {
        fprintf(stderr, "cdr-query: %s\n", err);
        rc = PROGRAM_EXIT_USAGE;
        goto done;
    }
    char host[256];
    int port = 0;
    if (split_listen(conf.listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "cdr-query: CDR_QUERY_LISTEN: '%s' is not an address:port\n", conf.listen);
        rc = PROGRAM_EXIT_USAGE;
        goto done;
    }
    if (conf.check_config) {
        printf("cdr-query: configuration is valid\n");
        rc = 0;
        goto done;
    }

    rc = 1;
    signal(SIGPIPE, SIG_IGN);
    app.base = event_base_new();
    m = metrics_create(1);
    if (!app.base || !m) {
        LOG_ERROR("query", "out of memory");
        goto done;
    }
    pg_pool_config pc = {
        .conninfo = conf.pg_url,
        .size = (int)conf.pg_conns,
        .statement_timeout_ms = conf.statement_timeout_ms,
    };
    pool = pg_pool_create(app.base, &pc);
    app.http = evhttp_new(app.base);
    app.sigterm = evsignal_new(app.base, SIGTERM, on_signal, &app);
    app.sigint = evsignal_new(app.base, SIGINT, on_signal, &app);
    app.drain = evtimer_new(app.base, on_drain, &app);
    if (!pool || !app.http || !app.sigterm || !app.sigint || !app.drain) {
        LOG_ERROR("query", "out of memory");
        goto done;
    }
    app.router = router_create(app.base, app.http, pool, verifier, &conf, m, err, sizeof(err));
    if (!app.router) {
        LOG_ERROR("query", "%s", err);
        goto done;
    }
    evhttp_set_timeout(app.http, HTTP_TIMEOUT_S);
    evhttp_set_max_body_size(app.http, 64 * 1024);
    evhttp_set_max_headers_size(app.http, 64 * 1024);
    evhttp_set_allowed_methods(app.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    app.bound = evhttp_bind_socket_with_handle(app.http, host, (ev_uint16_t)port);
    if (!app.bound) {
        LOG_ERROR("query", "cannot listen on %s", conf.listen);
        goto done;
    }
    if (evsignal_add(app.sigterm, NULL) != 0 || evsignal_add(app.sigint, NULL) != 0) {
        LOG_ERROR("query", "cannot watch SIGTERM/SIGINT");
        goto done;
    }
    LOG_INFO("query", "listening on %s with %lld PostgreSQL connections", conf.listen,
             conf.pg_conns);
    if (event_base_dispatch(app.base) < 0) {
        LOG_ERROR("query", "event loop failed");
        goto done;
    }
    LOG_INFO("query", "stopped");
    rc = 0;
done:
    /* The pool first: jobs still running are answered while evhttp exists. */
    pg_pool_destroy(pool);
    router_destroy(app.router);
    if (app.http)
        evhttp_free(app.http);
    if (app.sigterm)
        event_free(app.sigterm);
    if (app.sigint)
        event_free(app.sigint);
    if (app.drain)
        event_free(app.drain);
    if (app.base)
        event_base_free(app.base);
    metrics_destroy(m);
    auth_verifier_destroy(verifier);
    cfg_free(&query_cfg_table, &conf);
    return rc;
}
