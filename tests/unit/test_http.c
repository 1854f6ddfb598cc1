/* test_http.c - reply shape, Bearer check and health routes against a real evhttp server. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "http_auth.h"
#include "http_health.h"
#include "http_reply.h"
#include "log.h"
#include "metrics.h"

#define TENANT       "0F8FAD5B-D9CB-469F-A165-70867728950E"
#define TENANT_LC    "0f8fad5b-d9cb-469f-a165-70867728950e"
#define DOMAIN       "pbx.Example.IT"
#define DOMAIN_LC    "pbx.example.it"
#define SECRET       "an-hs256-secret-of-more-than-32-bytes"
#define OTHER_SECRET "another-secret-also-longer-than-32-bytes"

/* The server: one event base driven from the test thread between client reads. Each test runs
 * in its own process, so the globals are the test's own. */
static struct event_base *base;
static struct evhttp *http;
static int port;
static void (*handler)(struct evhttp_request *req);

static auth_verifier *verifier;
static http_auth *auth;
static const char *want_scope;
static metrics *registry;

static void dispatch(struct evhttp_request *req, void *arg)
{
    (void)arg;
    handler(req);
}

static void setup(void)
{
    log_set_level(LOG_LEVEL_WARN);
    base = event_base_new();
    cr_assert_not_null(base);
    http = evhttp_new(base);
    cr_assert_not_null(http);
    evhttp_set_gencb(http, dispatch, NULL);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    cr_assert_not_null(s);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &sl), 0);
    port = ntohs(sin.sin_port);

    auth_config cfg = {.alg = AUTH_HS256, .secret = SECRET, .leeway_s = 0};
    char err[256];
    verifier = auth_verifier_create(&cfg, err, sizeof(err));
    cr_assert_not_null(verifier, "%s", err);
    auth = http_auth_create(verifier);
    cr_assert_not_null(auth);
    want_scope = AUTH_SCOPE_WRITE;
}

static void teardown(void)
{
    http_auth_destroy(auth);
    auth_verifier_destroy(verifier);
    metrics_destroy(registry);
    evhttp_free(http);
    event_base_free(base);
}

TestSuite(http, .init = setup, .fini = teardown);

/* What the client read: the whole response of a Connection: close request. */
typedef struct reply {
    int status;
    char *raw;
    const char *body;
    size_t body_len;
} reply;

static void reply_free(reply *r)
{
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

/* Sends one request over a fresh blocking socket and runs the server's loop until the server
 * closed the connection. 'headers' are extra header lines, each ending in "\r\n". */
static reply request(const char *method, const char *target, const char *headers)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The kernel completes the handshake into the listen backlog: no loop run needed yet. */
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "%s", strerror(errno));

    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n%s\r\n",
                     method, target, headers ? headers : "");
    cr_assert(n > 0 && (size_t)n < sizeof(req));
    cr_assert_eq(write(fd, req, (size_t)n), n);

    cdr_buf in;
    cdr_buf_init(&in, 0);
    time_t deadline = time(NULL) + 10;
    for (;;) {
        cr_assert_lt(time(NULL), deadline, "no answer in time");
        cr_assert_geq(event_base_loop(base, EVLOOP_NONBLOCK), 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5) <= 0)
            continue;
        char chunk[4096];
        ssize_t got = read(fd, chunk, sizeof(chunk));
        cr_assert_geq(got, 0, "%s", strerror(errno));
        if (got == 0)
            break;
        cr_assert_eq(cdr_buf_append(&in, chunk, (size_t)got), 0);
    }
    close(fd);

    reply r = {0};
    r.raw = cdr_buf_steal(&in);
    cr_assert_eq(sscanf(r.raw, "HTTP/1.1 %d ", &r.status), 1, "%s", r.raw);
    const char *sep = strstr(r.raw, "\r\n\r\n");
    cr_assert_not_null(sep, "%s", r.raw);
    r.body = sep + 4;
    r.body_len = strlen(r.body);
    return r;
}

/* The value of header 'name' (case-insensitive), copied into 'out'; false when absent. */
static bool header(const reply *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(r->raw, "\r\n"); p && p + 2 < r->body; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            snprintf(out, outlen, "%.*s", (int)(e - v), v);
            return true;
        }
    }
    return false;
}

static bool has_header(const reply *r, const char *name)
{
    char v[256];
    return header(r, name, v, sizeof(v));
}

static void assert_header(const reply *r, const char *name, const char *want)
{
    char got[256];
    cr_assert(header(r, name, got, sizeof(got)), "no %s in:\n%s", name, r->raw);
    cr_assert_str_eq(got, want, "%s", name);
}

/* Parses the error shape and checks its status; returns the message (owned by 'root'). */
static const char *error_message(const reply *r, json_t **root)
{
    json_error_t jerr;
    *root = json_loads(r->body, 0, &jerr);
    cr_assert_not_null(*root, "%s: %s", jerr.text, r->body);
    json_t *e = json_object_get(*root, "error");
    cr_assert(json_is_object(e), "%s", r->body);
    cr_assert_eq(json_integer_value(json_object_get(e, "status")), r->status);
    cr_assert(json_is_array(json_object_get(e, "details")), "%s", r->body);
    const char *msg = json_string_value(json_object_get(e, "message"));
    cr_assert_not_null(msg, "%s", r->body);
    return msg;
}

/* Asserts that 'r' is 'status' with the error shape and, when 'message' is not NULL, that
 * message. */
static void assert_error(const reply *r, int status, const char *message)
{
    json_t *root;
    cr_assert_eq(r->status, status, "%s", r->raw);
    const char *got = error_message(r, &root);
    if (message)
        cr_assert_str_eq(got, message);
    json_decref(root);
}

static char *mint(const char *secret, const char *scope, int64_t now, int64_t ttl)
{
    char err[256];
    char *t = auth_mint(AUTH_HS256, (const unsigned char *)secret, strlen(secret), TENANT, DOMAIN,
                        scope, now, ttl, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(t, "%s", err);
    return t;
}

static reply with_token(const char *token)
{
    char h[4096];
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", token);
    return request("POST", "/api/voip/cdr", h);
}

/* ---- replies ---- */

static void h_json(struct evhttp_request *req)
{
    http_reply_json(req, 202, json_pack("{s:i}", "accepted", 3));
}

Test(http, reply_json_sends_compact_json)
{
    handler = h_json;
    reply r = request("POST", "/x", NULL);
    cr_assert_eq(r.status, 202);
    cr_assert(strncmp(r.raw, "HTTP/1.1 202 Accepted\r\n", 23) == 0, "%s", r.raw);
    assert_header(&r, "Content-Type", "application/json");
    cr_assert_str_eq(r.body, "{\"accepted\":3}");
    reply_free(&r);
}

static void h_reals(struct evhttp_request *req)
{
    /* 4.3 as PostgreSQL's real gives it, and an average with many digits */
    http_reply_json(req, 200, json_pack("[f, f, f]", strtod("4.3", NULL), 2.0 / 3.0, 0.1));
}

Test(http, reply_json_writes_reals_as_short_as_they_are_exact)
{
    handler = h_reals;
    reply r = request("GET", "/x", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "[4.3,0.666666666666667,0.1]");
    reply_free(&r);
}

static void h_empty(struct evhttp_request *req)
{
    http_reply_json(req, 204, NULL);
}

Test(http, reply_json_null_sends_no_body)
{
    handler = h_empty;
    reply r = request("GET", "/x", NULL);
    cr_assert_eq(r.status, 204);
    cr_assert_eq(r.body_len, 0);
    reply_free(&r);
}

static void h_error(struct evhttp_request *req)
{
    json_t *details = json_pack("[{s:i, s:s, s:s}]", "index", 2, "field", "start_ts", "message",
                                "not a timestamp");
    http_reply_error(req, 503, "redis unreachable", details, 1);
}

Test(http, reply_error_has_the_shape_and_retry_after)
{
    handler = h_error;
    reply r = request("POST", "/x", NULL);
    cr_assert_eq(r.status, 503);
    cr_assert(strncmp(r.raw, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0, "%s", r.raw);
    assert_header(&r, "Content-Type", "application/json");
    assert_header(&r, "Retry-After", "1");
    cr_assert_str_eq(r.body, "{\"error\":{\"status\":503,\"message\":\"redis unreachable\","
                             "\"details\":[{\"index\":2,\"field\":\"start_ts\","
                             "\"message\":\"not a timestamp\"}]}}");
    reply_free(&r);
}

static void h_error_plain(struct evhttp_request *req)
{
    http_reply_error(req, 404, NULL, NULL, 0);
}

Test(http, reply_error_defaults_message_and_details)
{
    handler = h_error_plain;
    reply r = request("GET", "/nowhere", NULL);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body,
                     "{\"error\":{\"status\":404,\"message\":\"Not Found\",\"details\":[]}}");
    cr_assert_not(has_header(&r, "Retry-After"));
    reply_free(&r);
}

static void h_bytes(struct evhttp_request *req)
{
    http_reply_bytes(req, 200, "text/csv", "a,b\n1,2\n", 8);
}

Test(http, reply_bytes_sends_them_as_given)
{
    handler = h_bytes;
    reply r = request("GET", "/x", NULL);
    cr_assert_eq(r.status, 200);
    assert_header(&r, "Content-Type", "text/csv");
    cr_assert_str_eq(r.body, "a,b\n1,2\n");
    reply_free(&r);
}

Test(http, reason_phrases)
{
    static const struct {
        int status;
        const char *reason;
    } known[] = {
        {200, "OK"},
        {202, "Accepted"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        cr_assert_str_eq(http_reason(known[i].status), known[i].reason);
    cr_assert_str_eq(http_reason(299), "Unknown");
}

/* ---- Bearer check ---- */

static void h_auth(struct evhttp_request *req)
{
    auth_claims c;
    memset(&c, 0xAA, sizeof(c)); /* must stay untouched on refusal */
    if (!http_auth_check(auth, req, want_scope, &c))
        return;
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s, s:I, s:b, s:b}", "tenant_id", c.tenant_id, "sip_domain",
                              c.sip_domain, "exp", (json_int_t)c.exp, "write", c.scope_write,
                              "read", c.scope_read));
}

static void assert_401(const reply *r, const char *message)
{
    assert_error(r, 401, message);
    assert_header(r, "WWW-Authenticate", "Bearer");
}

/* Sends 'token' and asserts the 401 with 'message'. */
static void token_refused(const char *token, const char *message)
{
    reply r = with_token(token);
    assert_401(&r, message);
    reply_free(&r);
}

Test(http, auth_without_header_is_401)
{
    handler = h_auth;
    reply r = request("POST", "/api/voip/cdr", NULL);
    assert_401(&r, "no bearer token");
    reply_free(&r);
}

Test(http, auth_malformed_header_is_401)
{
    handler = h_auth;
    reply r = request("POST", "/api/voip/cdr", "Authorization: Basic dXNlcjpwYXNz\r\n");
    assert_401(&r, "malformed Authorization header");
    reply_free(&r);

    r = request("POST", "/api/voip/cdr", "Authorization: Bearer\r\n");
    assert_401(&r, "malformed Authorization header");
    reply_free(&r);
}

Test(http, auth_bad_token_is_401_and_not_echoed)
{
    handler = h_auth;
    char *t = mint(OTHER_SECRET, "cdr:write", time(NULL), 600);
    reply r = with_token(t);
    assert_401(&r, "bad signature");
    cr_assert_null(strstr(r.raw, t));
    reply_free(&r);

    token_refused("not.a.jwt", "malformed token");
    free(t);
}

Test(http, auth_expired_token_is_401)
{
    handler = h_auth;
    char *t = mint(SECRET, "cdr:write", time(NULL) - 3600, 60);
    token_refused(t, "token expired");
    free(t);
}

Test(http, auth_missing_scope_is_403)
{
    handler = h_auth;
    char *t = mint(SECRET, "cdr:read", time(NULL), 600);
    for (int i = 0; i < 2; i++) { /* the second answer comes from the cache: same refusal */
        reply r = with_token(t);
        assert_error(&r, 403, "token lacks scope cdr:write");
        cr_assert_not(has_header(&r, "WWW-Authenticate"));
        reply_free(&r);
    }
    free(t);

    want_scope = AUTH_SCOPE_READ;
    t = mint(SECRET, "cdr:write", time(NULL), 600);
    reply r = with_token(t);
    assert_error(&r, 403, "token lacks scope cdr:read");
    reply_free(&r);
    free(t);
}

static void assert_claims(const reply *r, int64_t exp)
{
    cr_assert_eq(r->status, 200, "%s", r->raw);
    json_t *root = json_loads(r->body, 0, NULL);
    cr_assert_not_null(root, "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(root, "tenant_id")), TENANT_LC);
    cr_assert_str_eq(json_string_value(json_object_get(root, "sip_domain")), DOMAIN_LC);
    cr_assert_eq(json_integer_value(json_object_get(root, "exp")), exp);
    cr_assert(json_is_true(json_object_get(root, "write")));
    cr_assert(json_is_false(json_object_get(root, "read")));
    json_decref(root);
}

Test(http, auth_valid_token_passes_claims_and_is_served_again)
{
    handler = h_auth;
    int64_t now = time(NULL);
    char *t = mint(SECRET, "cdr:write", now, 600);
    for (int i = 0; i < 3; i++) {
        reply r = with_token(t);
        assert_claims(&r, now + 600);
        reply_free(&r);
    }

    /* Same prefix as the cached token, another signature: the cache matches whole tokens. */
    size_t len = strlen(t);
    t[len - 2] = t[len - 2] == 'A' ? 'B' : 'A';
    token_refused(t, "bad signature");
    free(t);
}

Test(http, auth_cached_token_is_refused_once_expired)
{
    handler = h_auth;
    int64_t now = time(NULL);
    char *t = mint(SECRET, "cdr:write", now, 2);
    reply r = with_token(t);
    assert_claims(&r, now + 2);
    reply_free(&r);

    while (time(NULL) < now + 2) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    token_refused(t, "token expired");
    free(t);
}

Test(http, auth_more_tokens_than_the_cache_holds)
{
    handler = h_auth;
    int64_t now = time(NULL);
    enum { N = 40 };
    char *t[N];
    for (int i = 0; i < N; i++)
        t[i] = mint(SECRET, "cdr:write", now, 600 + i); /* distinct tokens */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            reply r = with_token(t[i]);
            assert_claims(&r, now + 600 + i);
            reply_free(&r);
        }
    }
    for (int i = 0; i < N; i++)
        free(t[i]);
}

/* ---- health routes ---- */

static bool ready_state;

static bool ready(void *arg, char *why, size_t whylen)
{
    (void)arg;
    if (!ready_state)
        snprintf(why, whylen, "redis connection down");
    return ready_state;
}

static http_health_ops health_ops;

static void h_health(struct evhttp_request *req)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (!http_health_route(req, path, &health_ops))
        http_reply_bytes(req, 418, "text/plain", "not a health route", 18);
}

Test(http, healthz_is_ok)
{
    handler = h_health;
    reply r = request("GET", "/healthz", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    char ct[128];
    cr_assert(header(&r, "Content-Type", ct, sizeof(ct)));
    cr_assert(strncmp(ct, "text/plain", 10) == 0, "%s", ct);
    reply_free(&r);
}

Test(http, readyz_follows_the_callback)
{
    handler = h_health;
    reply r = request("GET", "/readyz", NULL); /* no callback: ready */
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ready\n");
    reply_free(&r);

    health_ops.ready = ready;
    ready_state = true;
    r = request("GET", "/readyz", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ready\n");
    reply_free(&r);

    ready_state = false;
    r = request("GET", "/readyz", NULL);
    assert_error(&r, 503, "redis connection down");
    assert_header(&r, "Retry-After", "1");
    assert_header(&r, "Content-Type", "application/json");
    reply_free(&r);
}

Test(http, metrics_renders_the_registry)
{
    handler = h_health;
    registry = metrics_create(1);
    cr_assert_not_null(registry);
    int id = metrics_counter(registry, "cdr_ingest_requests_total", "Requests.", "status=\"202\"");
    cr_assert_geq(id, 0);
    metrics_add(registry, 0, id, 5);
    health_ops.metrics = registry;

    reply r = request("GET", "/metrics", NULL);
    cr_assert_eq(r.status, 200);
    char ct[128];
    cr_assert(header(&r, "Content-Type", ct, sizeof(ct)));
    cr_assert(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "%s", ct);
    cr_assert_str_eq(r.body, "# HELP cdr_ingest_requests_total Requests.\n"
                             "# TYPE cdr_ingest_requests_total counter\n"
                             "cdr_ingest_requests_total{status=\"202\"} 5\n");
    reply_free(&r);
}

Test(http, health_routes_refuse_other_methods)
{
    handler = h_health;
    static const char *paths[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        reply r = request("POST", paths[i], NULL);
        assert_error(&r, 405, NULL);
        assert_header(&r, "Allow", "GET, HEAD");
        reply_free(&r);
    }
}

Test(http, other_paths_are_left_alone)
{
    handler = h_health;
    static const char *targets[] = {"/", "/healthz/x", "/api/voip/cdr", "/metricsx"};
    for (size_t i = 0; i < 4; i++) {
        reply r = request("GET", targets[i], NULL);
        cr_assert_eq(r.status, 418, "%s", targets[i]);
        cr_assert_str_eq(r.body, "not a health route");
        reply_free(&r);
    }

    reply r = request("GET", "/healthz?verbose=1", NULL); /* the query is not the path */
    cr_assert_eq(r.status, 200);
    reply_free(&r);
}
