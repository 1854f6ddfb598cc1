/* router.c - cdr-query's HTTP routes. A request is checked in order (client address rate,
 * token, tenant rate, parameters, sip_domain), then becomes one PostgreSQL job on the pool;
 * its context lives from there until the job's answer is sent. */
#include "router.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include "analytics.h"
#include "buf.h"
#include "http_auth.h"
#include "http_health.h"
#include "http_reply.h"
#include "log.h"
#include "openapi.h"
#include "params.h"
#include "ratelimit.h"
#include "search.h"

#define CSV_CHUNK_BYTES   (64 * 1024)   /* rows gathered before they are handed to evhttp */
#define CSV_PAUSE_BYTES   (1024 * 1024) /* output waiting past which reading PostgreSQL pauses */
#define CSV_RESUME_BYTES  (256 * 1024)  /* ... and below which it resumes */
#define CSV_POLL_MS       5
#define SQLSTATE_BAD_ZONE "22023"

typedef enum endpoint {
    EP_CDR,
    EP_CDR_ONE,
    EP_SUMMARY,
    EP_BY_STORE,
    EP_BY_AGENT,
    EP_MISSED,
    EP_QOS,
    EP_OPENAPI,
    EP_OTHER,
    EP_COUNT
} endpoint;

static const char *const ep_names[EP_COUNT] = {
    "cdr", "cdr_one", "summary", "by_store", "by_agent", "missed", "qos", "openapi", "other",
};

#define BASE_PARAMS (P_SIP_DOMAIN | P_FROM | P_TO | P_TZ)
#define RANGE_REQ   (P_SIP_DOMAIN | P_FROM | P_TO)

/* What each endpoint accepts and requires. */
static const struct {
    unsigned allowed, required;
} ep_params[EP_COUNT] = {
    [EP_CDR] = {BASE_PARAMS | P_DIRECTION | P_DISPOSITION | P_DID | P_EXT | P_STORE | P_PAGE |
                    P_PAGE_SIZE | P_CURSOR | P_FORMAT,
                P_SIP_DOMAIN},
    [EP_CDR_ONE] = {BASE_PARAMS, P_SIP_DOMAIN},
    [EP_SUMMARY] = {BASE_PARAMS | P_STORE, RANGE_REQ},
    [EP_BY_STORE] = {BASE_PARAMS, RANGE_REQ},
    [EP_BY_AGENT] = {BASE_PARAMS | P_STORE, RANGE_REQ},
    [EP_MISSED] = {BASE_PARAMS | P_DID | P_STORE | P_ONLY_UNIQUE | P_PAGE | P_PAGE_SIZE, RANGE_REQ},
    [EP_QOS] = {BASE_PARAMS | P_GROUP_BY | P_BUCKET | P_STORE, RANGE_REQ},
};

struct router {
    struct event_base *base;
    long long export_timeout_ms; /* statement timeout of CSV exports */
    struct evhttp *http;
    pg_pool *pool;
    http_auth *auth;
    ratelimit *tenant_rl;
    ratelimit *ip_rl;
    const query_config *conf;
    metrics *metrics;
    http_health_ops health;
    int in_flight;
    int m_latency[EP_COUNT];
    int m_status[600];
    int m_status_other;
};

/* One request waiting for PostgreSQL. Owned by the router from submit until finish(). */
typedef struct qreq {
    router *r;
    struct evhttp_request *req;
    struct evhttp_connection *conn; /* NULL once the client has gone */
    pg_job *job;
    endpoint ep;
    int64_t t0_us;
    query_params p;
    char call_id[SQL_STMT_VALUE_MAX];
    bool csv_started; /* the CSV header went out with evhttp_send_reply_start */
    bool paused;
    cdr_buf chunk;
    struct event *poll; /* watches the output draining while the job is paused */
    struct event *gone; /* watches the client's socket for its end while the answer is due */
} qreq;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void observe(router *r, endpoint ep, int64_t t0_us)
{
    metrics_observe(r->metrics, 0, r->m_latency[ep], (double)(mono_us() - t0_us) / 1e6);
}

/* Counts every answered request by status (evhttp's on-complete callback). */
static void on_request_complete(struct evhttp_request *req, void *arg)
{
    router *r = arg;
    int status = evhttp_request_get_response_code(req);
    int id = (status > 0 && status < 600) ? r->m_status[status] : -1;
    metrics_add(r->metrics, 0, id >= 0 ? id : r->m_status_other, 1);
}

/* ---- the end of a request ------------------------------------------------------------------ */

static void qreq_free(qreq *q)
{
    if (q->conn)
        evhttp_connection_set_closecb(q->conn, NULL, NULL);
    if (q->poll)
        event_free(q->poll);
    if (q->gone)
        event_free(q->gone);
    cdr_buf_free(&q->chunk);
    q->r->in_flight--;
    free(q);
}

/* The client went away before its answer: the query is canceled; its 'done' still comes,
 * answers into the void (evhttp then drops the connection) and frees the context. */
static void client_gone(qreq *q)
{
    if (q->gone) {
        event_free(q->gone);
        q->gone = NULL;
    }
    if (q->conn)
        evhttp_connection_set_closecb(q->conn, NULL, NULL);
    q->conn = NULL;
    if (q->job)
        pg_job_cancel(q->job);
}

/* evhttp's connection close callback: it noticed the end itself (a failed write). */
static void on_client_close(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    client_gone(arg);
}

/* evhttp stops reading a connection while its request is being answered, so it does not see
 * a client that closes meanwhile; this event watches the socket until the answer is done. An
 * end of stream or a reset means the client has gone (as a proxy treats a client that closes
 * early). Bytes mean a next request sent ahead: evhttp reads it after this answer, and the
 * watch stops. */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    qreq *q = arg;
    (void)what;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(q->gone, NULL);
        return;
    }
    client_gone(q);
}

/* Starts watching the client of 'q' for its end; without the watch (no memory) only evhttp's
 * close callback tells. */
static void watch_client(qreq *q)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(q->conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return;
    q->gone = event_new(q->r->base, fd, EV_READ, on_client_readable, q);
    if (q->gone && event_add(q->gone, NULL) != 0) {
        event_free(q->gone);
        q->gone = NULL;
    }
}

/* A failed job's answer: an unknown time zone is the client's 400; the rest is ours. */
static void reply_pg_error(struct evhttp_request *req, const char *error, const char *sqlstate)
{
    if (strcmp(sqlstate, SQLSTATE_BAD_ZONE) == 0 && strstr(error, "time zone")) {
        http_reply_error(req, 400, "tz: unknown time zone", NULL, 0);
    } else if (strcmp(error, "statement timeout") == 0) {
        http_reply_error(req, 503, "the query took too long: narrow the range or the filters", NULL,
                         0);
    } else if (strncmp(sqlstate, "22", 2) == 0) {
        http_reply_error(req, 400, error, NULL, 0);
    } else if (strcmp(error, "canceled") == 0) {
        /* Only a client that went away cancels: nobody reads this answer. */
        LOG_DEBUG("query", "query canceled: the client went away");
        http_reply_error(req, 503, "canceled", NULL, 0);
    } else {
        LOG_WARN("query", "query failed: %s%s%s", error, sqlstate[0] ? " SQLSTATE " : "", sqlstate);
        http_reply_error(req, 503, "the database could not answer: retry", NULL, 1);
    }
}

/* ---- CSV export ---------------------------------------------------------------------------- */

static size_t output_pending(const qreq *q)
{
    struct bufferevent *bev = q->conn ? evhttp_connection_get_bufferevent(q->conn) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void csv_start(qreq *q)
{
    if (q->csv_started)
        return;
    q->csv_started = true;
    struct evkeyvalq *h = evhttp_request_get_output_headers(q->req);
    evhttp_add_header(h, "Content-Type", "text/csv; charset=utf-8");
    evhttp_add_header(h, "Content-Disposition", "attachment; filename=\"cdr.csv\"");
    evhttp_send_reply_start(q->req, 200, "OK");
    if (search_csv_header(&q->chunk) != 0)
        LOG_WARN("query", "out of memory for the CSV header");
}

/* Hands the gathered rows to evhttp (a no-op once the client has gone). */
static void csv_flush(qreq *q)
{
    if (!q->chunk.len)
        return;
    if (q->conn) {
        struct evbuffer *b = evbuffer_new();
        if (b && evbuffer_add(b, q->chunk.data, q->chunk.len) == 0)
            evhttp_send_reply_chunk(q->req, b);
        if (b)
            evbuffer_free(b);
    }
    cdr_buf_reset(&q->chunk);
}

/* While paused, looks whether the client has taken enough of the output (timer callback). */
static void on_csv_poll(evutil_socket_t fd, short what, void *arg)
{
    qreq *q = arg;
    (void)fd;
    (void)what;
    if (!q->paused)
        return;
    if (q->conn && output_pending(q) > CSV_RESUME_BYTES) {
        struct timeval tv = {0, CSV_POLL_MS * 1000};
        evtimer_add(q->poll, &tv);
        return;
    }
    q->paused = false;
    pg_job_resume(q->job);
}

/* One exported row (single-row mode). Pauses reading while the client lags behind. */
static int on_csv_row(pg_job *job, const PGresult *res, void *arg)
{
    qreq *q = arg;
    (void)job;
    if (!q->conn)
        return -1;
    csv_start(q);
    for (int i = 0; i < PQntuples(res); i++)
        if (search_csv_row(res, i, &q->chunk) != 0)
            return -1;
    if (q->chunk.len < CSV_CHUNK_BYTES)
        return 0;
    csv_flush(q);
    if (output_pending(q) <= CSV_PAUSE_BYTES)
        return 0;
    if (!q->poll && !(q->poll = evtimer_new(q->r->base, on_csv_poll, q)))
        return 0;
    q->paused = true;
    struct timeval tv = {0, CSV_POLL_MS * 1000};
    evtimer_add(q->poll, &tv);
    return 1;
}

static void on_csv_done(pg_job *job, const PGresult *res, const char *error, const char *sqlstate,
                        void *arg)
{
    qreq *q = arg;
    (void)job;
    (void)res;
    q->job = NULL;
    if (!q->csv_started) {
        if (error)
            reply_pg_error(q->req, error, sqlstate);
        else
            csv_start(q);
    }
    if (q->csv_started && error) {
        /* The header and part of the rows are out: the only way left to say that the rest is
         * missing is to end the connection without the last chunk, which every HTTP client
         * reports as an incomplete transfer. */
        struct evhttp_connection *conn = q->conn;
        if (strcmp(error, "canceled") != 0)
            LOG_WARN("query", "CSV export cut short: %s", error);
        if (conn) {
            evhttp_connection_set_closecb(conn, NULL, NULL);
            q->conn = NULL;
            observe(q->r, q->ep, q->t0_us);
            qreq_free(q);
            evhttp_connection_free(conn);
            return;
        }
        evhttp_send_reply_end(q->req);
    } else if (q->csv_started) {
        csv_flush(q);
        if (q->conn)
            evhttp_connection_set_closecb(q->conn, NULL, NULL);
        q->conn = NULL;
        evhttp_send_reply_end(q->req);
    }
    observe(q->r, q->ep, q->t0_us);
    qreq_free(q);
}

/* ---- JSON answers -------------------------------------------------------------------------- */

static analytics_kind kind_of(endpoint ep)
{
    switch (ep) {
    case EP_BY_STORE:
        return ANALYTICS_BY_STORE;
    case EP_BY_AGENT:
        return ANALYTICS_BY_AGENT;
    case EP_MISSED:
        return ANALYTICS_MISSED;
    case EP_QOS:
        return ANALYTICS_QOS;
    default:
        return ANALYTICS_SUMMARY;
    }
}

static void on_json_done(pg_job *job, const PGresult *res, const char *error, const char *sqlstate,
                         void *arg)
{
    qreq *q = arg;
    (void)job;
    q->job = NULL;
    if (q->conn)
        evhttp_connection_set_closecb(q->conn, NULL, NULL);
    q->conn = NULL;
    if (error) {
        reply_pg_error(q->req, error, sqlstate);
    } else {
        json_t *body = NULL;
        if (q->ep == EP_CDR)
            body = search_page_json(&q->p, res);
        else if (q->ep == EP_CDR_ONE)
            body = search_one_json(res);
        else
            body = analytics_json(kind_of(q->ep), &q->p, res);
        if (body)
            http_reply_json(q->req, 200, body);
        else if (q->ep == EP_CDR_ONE)
            http_reply_error(q->req, 404, "no CDR with this call_id", NULL, 0);
        else
            http_reply_error(q->req, 500, "cannot build the answer", NULL, 0);
    }
    observe(q->r, q->ep, q->t0_us);
    qreq_free(q);
}

/* ---- a request ----------------------------------------------------------------------------- */

static bool wants_csv(struct evhttp_request *req, const query_params *p)
{
    if (p->csv)
        return true;
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    return accept && strstr(accept, "text/csv") != NULL;
}

/* Builds the endpoint's statement into 's'. Returns 0, or the HTTP status already answered. */
static int build_stmt(struct evhttp_request *req, qreq *q, const char *tenant, bool csv,
                      sql_stmt *s)
{
    char err[256] = "";
    int rc = 0;
    memset(s, 0, sizeof(*s));
    switch (q->ep) {
    case EP_CDR:
        rc = csv ? search_csv_stmt(&q->p, s, err, sizeof(err))
                 : search_page_stmt(&q->p, s, err, sizeof(err));
        break;
    case EP_CDR_ONE:
        rc = search_one_stmt(q->call_id, s, err, sizeof(err));
        if (rc != 0) {
            http_reply_error(req, 404, "no CDR with this call_id", NULL, 0);
            return 404;
        }
        break;
    default:
        rc = analytics_stmt(kind_of(q->ep), &q->p, s, err, sizeof(err));
        if (rc != 0 && (q->ep == EP_MISSED || q->ep == EP_QOS)) {
            http_reply_error(req, 501, "not available yet", NULL, 0);
            return 501;
        }
        /* $1 of the analytics statements is the tenant. */
        if (rc == 0 && s->n > 0) {
            snprintf(s->values[0], sizeof(s->values[0]), "%s", tenant);
            s->pv[0] = s->values[0];
        }
        break;
    }
    if (rc != 0) {
        http_reply_error(req, 400, err[0] ? err : "bad parameters", NULL, 0);
        return 400;
    }
    return 0;
}

static void handle_api(router *r, struct evhttp_request *req, endpoint ep, const char *call_id)
{
    int64_t t0 = mono_us();
    int retry = 0;
    const char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn)
        evhttp_connection_get_peer(conn, (char **)&peer, &port);
    if (peer && !ratelimit_take(r->ip_rl, peer, t0, &retry)) {
        http_reply_error(req, 429, "too many requests from this address", NULL, retry);
        goto answered;
    }
    auth_claims claims;
    if (!http_auth_check(r->auth, req, AUTH_SCOPE_READ, &claims))
        goto answered;
    if (!ratelimit_take(r->tenant_rl, claims.tenant_id, t0, &retry)) {
        http_reply_error(req, 429, "too many requests for this tenant", NULL, retry);
        goto answered;
    }

    qreq *q = calloc(1, sizeof(*q));
    if (!q) {
        http_reply_error(req, 503, "out of memory: retry", NULL, 1);
        goto answered;
    }
    q->r = r;
    q->req = req;
    q->ep = ep;
    q->t0_us = t0;
    r->in_flight++;
    char param[64] = "", err[256] = "";
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    if (params_parse(uri ? evhttp_uri_get_query(uri) : NULL, ep_params[ep].allowed,
                     ep_params[ep].required, &q->p, param, sizeof(param), err, sizeof(err)) != 0) {
        json_t *details = json_pack("[{s:s}]", "parameter", param);
        http_reply_error(req, 400, err, details, 0);
        goto free_answered;
    }
    if (strcmp(q->p.sip_domain, claims.sip_domain) != 0) {
        http_reply_error(req, 403, "sip_domain: not the token's SIP domain",
                         json_pack("[{s:s}]", "parameter", "sip_domain"), 0);
        goto free_answered;
    }
    if (call_id)
        snprintf(q->call_id, sizeof(q->call_id), "%s", call_id);
    bool csv = ep == EP_CDR && wants_csv(req, &q->p);
    sql_stmt stmt;
    if (build_stmt(req, q, claims.tenant_id, csv, &stmt) != 0)
        goto free_answered;

    pg_query pq = {
        .tenant_id = claims.tenant_id,
        .sql = stmt.sql,
        .n_params = stmt.n,
        .values = stmt.pv,
        .on_row = csv ? on_csv_row : NULL,
        .done = csv ? on_csv_done : on_json_done,
        .arg = q,
        .timeout_ms = csv ? r->export_timeout_ms : 0,
        .prepare = stmt.prepare,
    };
    q->job = pg_pool_submit(r->pool, &pq);
    if (!q->job) {
        http_reply_error(req, 503, "the database is not reachable or busy: retry", NULL, 1);
        goto free_answered;
    }
    q->conn = conn;
    if (conn) {
        evhttp_connection_set_closecb(conn, on_client_close, q);
        watch_client(q);
    }
    return;

free_answered:
    qreq_free(q);
answered:
    observe(r, ep, t0);
}

/* ---- routing ------------------------------------------------------------------------------- */

static bool health_ready(void *arg, char *why, size_t whylen)
{
    router *r = arg;
    if (pg_pool_ready(r->pool) > 0)
        return true;
    snprintf(why, whylen, "no PostgreSQL connection is ready");
    return false;
}

static const struct {
    const char *path;
    endpoint ep;
} analytics_routes[] = {
    {"/api/analytics/summary", EP_SUMMARY},   {"/api/analytics/by-store", EP_BY_STORE},
    {"/api/analytics/by-agent", EP_BY_AGENT}, {"/api/analytics/missed", EP_MISSED},
    {"/api/analytics/qos", EP_QOS},
};

/* GET /api/cdr/{call_id}: the rest of the path, percent-decoded. */
static void handle_one(router *r, struct evhttp_request *req, const char *raw)
{
    size_t len = 0;
    char *id = strchr(raw, '/') ? NULL : evhttp_uridecode(raw, 0, &len);
    if (!id || !len || len != strlen(id)) {
        free(id);
        http_reply_error(req, 404, "no such resource", NULL, 0);
        return;
    }
    handle_api(r, req, EP_CDR_ONE, id);
    free(id);
}

/* Answers go out as soon as they are written: with Nagle's algorithm on, the last segment of
 * an answer written in several pieces (any body over libevent's 16 KiB write unit) waits for
 * the client's delayed ACK, about 40 ms on Linux, on every keep-alive request. Set for each
 * request, since evhttp hands over no accepted socket; the call costs a microsecond. */
static void no_delay(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* evhttp's generic callback: every request, once read; answered by exactly one path below. */
static void on_request(struct evhttp_request *req, void *arg)
{
    router *r = arg;
    evhttp_request_set_on_complete_cb(req, on_request_complete, r);
    no_delay(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    if (http_health_route(req, path, &r->health))
        return;
    if (strncmp(path, "/api/", 5) != 0) {
        http_reply_error(req, 404, "no such resource", NULL, 0);
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        http_reply_error(req, 405, "the read API answers GET only", NULL, 0);
        return;
    }
    if (strcmp(path, "/api/openapi.json") == 0) {
        int64_t t0 = mono_us();
        size_t len = 0;
        const char *doc = openapi_document(&len);
        http_reply_bytes(req, 200, "application/json", doc, len);
        observe(r, EP_OPENAPI, t0);
        return;
    }
    if (strcmp(path, "/api/cdr") == 0) {
        handle_api(r, req, EP_CDR, NULL);
        return;
    }
    if (strncmp(path, "/api/cdr/", 9) == 0) {
        handle_one(r, req, path + 9);
        return;
    }
    for (size_t i = 0; i < sizeof(analytics_routes) / sizeof(analytics_routes[0]); i++) {
        if (strcmp(path, analytics_routes[i].path) == 0) {
            handle_api(r, req, analytics_routes[i].ep, NULL);
            return;
        }
    }
    http_reply_error(req, 404, "no such resource", NULL, 0);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static double in_flight_gauge(void *arg)
{
    return (double)((router *)arg)->in_flight;
}

static double buckets_gauge(void *arg)
{
    router *r = arg;
    return (double)(ratelimit_buckets(r->tenant_rl) + ratelimit_buckets(r->ip_rl));
}

static double pool_ready_gauge(void *arg)
{
    return (double)pg_pool_ready(((router *)arg)->pool);
}

static int register_metrics(router *r, metrics *m)
{
    static const int statuses[] = {200, 304, 400, 401, 403, 404, 405, 429, 500, 501, 503};
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
    const char *req_help = "Requests answered, by HTTP status";
    for (size_t i = 0; i < sizeof(r->m_status) / sizeof(r->m_status[0]); i++)
        r->m_status[i] = -1;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char label[32];
        snprintf(label, sizeof(label), "status=\"%d\"", statuses[i]);
        if ((r->m_status[statuses[i]] =
                 metrics_counter(m, "cdr_query_requests_total", req_help, label)) < 0)
            return -1;
    }
    r->m_status_other =
        metrics_counter(m, "cdr_query_requests_total", req_help, "status=\"other\"");
    if (r->m_status_other < 0)
        return -1;
    for (int i = 0; i < EP_COUNT; i++) {
        char label[48];
        snprintf(label, sizeof(label), "endpoint=\"%s\"", ep_names[i]);
        if ((r->m_latency[i] = metrics_histogram(
                 m, "cdr_query_request_duration_seconds",
                 "Time from a request's arrival to its answer (a CSV export: to its end)", label,
                 bounds, (int)(sizeof(bounds) / sizeof(bounds[0])))) < 0)
            return -1;
    }
    if (metrics_gauge_fn(m, "cdr_query_in_flight", "Requests waiting for PostgreSQL",
                         in_flight_gauge, r) < 0 ||
        metrics_gauge_fn(m, "cdr_query_ratelimit_buckets", "Rate limit buckets held", buckets_gauge,
                         r) < 0 ||
        metrics_gauge_fn(m, "cdr_query_pg_ready", "PostgreSQL connections serving",
                         pool_ready_gauge, r) < 0)
        return -1;
    return 0;
}

router *router_create(struct event_base *base, struct evhttp *http, pg_pool *pool,
                      const auth_verifier *verifier, const query_config *conf, metrics *m,
                      char *err, size_t errlen)
{
    router *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->base = base;
    r->http = http;
    r->pool = pool;
    r->conf = conf;
    r->metrics = m;
    r->auth = http_auth_create(verifier);
    r->export_timeout_ms = conf->export_timeout_ms;
    r->tenant_rl = ratelimit_create((double)conf->tenant_rate, (double)conf->tenant_burst);
    r->ip_rl = ratelimit_create((double)conf->ip_rate, (double)conf->ip_burst);
    r->health = (http_health_ops){.ready = health_ready, .arg = r, .metrics = m};
    if (!r->auth || !r->tenant_rl || !r->ip_rl || register_metrics(r, m) != 0) {
        snprintf(err, errlen, "out of memory");
        router_destroy(r);
        return NULL;
    }
    evhttp_set_gencb(http, on_request, r);
    return r;
}

int router_in_flight(const router *r)
{
    return r->in_flight;
}

void router_destroy(router *r)
{
    if (!r)
        return;
    if (r->http)
        evhttp_set_gencb(r->http, NULL, NULL);
    http_auth_destroy(r->auth);
    ratelimit_destroy(r->tenant_rl);
    ratelimit_destroy(r->ip_rl);
    free(r);
}
