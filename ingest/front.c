/* front.c - one ingest thread's HTTP server: routes and the lifecycle of a CDR post. */
#include "front.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "body.h"
#include "cdr_codec.h"
#include "http_auth.h"
#include "http_health.h"
#include "http_reply.h"
#include "json_arena.h"
#include "log.h"
#include "stream_push.h"

#define POST_PATH        "/api/voip/cdr"
#define RESUME_ACCEPT_MS 100

#define GROUP_MAX_BYTES  (1024 * 1024)     /* rows past which a group is stored at once */
#define JSON_ARENA_BYTES (4 * 1024 * 1024) /* a batch of ~500 CDRs parses inside it */

typedef struct post_ctx post_ctx;
typedef struct post_group post_group;

struct ingest_front {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *resume_accept; /* re-enables accepting after the descriptor limit was hit */
    struct event *flush_ev;      /* stores the open group once this loop iteration's posts are in */
    stream_push *push;
    http_auth *auth;
    http_health_ops health;
    const ingest_shared *shared;
    int shard;
    int in_flight;    /* posts waiting for their answer */
    post_group *open; /* the group this iteration's posts join; NULL when none */
    cdr_buf inflated; /* scratch of the request being read */
    cdr_buf packed;   /* scratch of the entry being queued (hiredis copies it) */
};

/* The front of the thread running the loop. evconnlistener_set_error_cb hands its callback
 * evhttp's argument, not ours, so the error callback finds its front here; set by
 * ingest_front_run() on the front's own thread. */
static _Thread_local ingest_front *thread_front;

/* One post waiting for its answer. Owned by its group from the moment it joins it until
 * post_finish(), the one place it is answered and freed. */
struct post_ctx {
    struct evhttp_request *req;
    struct evhttp_connection *conn; /* NULL once the client has gone */
    unsigned accepted;
    unsigned rejected;
    json_t *details;
    unsigned details_dropped;
    bool forbidden;
};

/* The posts read in one loop iteration: their rows are stored together, as one cdr entry and
 * one reject entry, so that Redis does one append for many posts (a group commit). Every post
 * is answered once both entries are answered. Owned by the front while open, then by the
 * stream_push callbacks of its entries; freed by group_done(). */
struct post_group {
    ingest_front *front;
    cdr_buf rows;
    cdr_buf rejects;
    unsigned n_rows;
    unsigned n_rejects;
    post_ctx **posts;
    size_t n_posts;
    size_t cap_posts;
    int pending; /* entries queued and not yet answered */
    bool failed; /* an entry was not stored: every post is answered 503 */
};

/* ---- replies ------------------------------------------------------------------------------- */

/* Counts every answered request by status once the answer has been written (evhttp's
 * on-complete callback: fires once per request that reached its client). */
static void on_request_complete(struct evhttp_request *req, void *arg)
{
    ingest_front *f = arg;
    const ingest_shared *sh = f->shared;
    int status = evhttp_request_get_response_code(req);
    int id = (status > 0 && status < 600) ? sh->m_status[status] : -1;
    metrics_add(sh->metrics, f->shard, id >= 0 ? id : sh->m_status_other, 1);
}

static void reply_accepted(struct evhttp_request *req, unsigned accepted)
{
    char body[48];
    int n = snprintf(body, sizeof(body), "{\"accepted\":%u}", accepted);
    http_reply_bytes(req, 202, "application/json", body, (size_t)n);
}

static void reply_unavailable(struct evhttp_request *req, const char *why)
{
    http_reply_error(req, 503, why, NULL, 1);
}

/* Answers a post some of whose items were refused: 403 when an item named another tenant,
 * else 400; the body lists the problems and says what was stored. Steals 'details'. */
static void reply_refused(struct evhttp_request *req, bool forbidden, unsigned accepted,
                          unsigned rejected, json_t *details, unsigned dropped)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%u of %u items refused%s", rejected, accepted + rejected,
             forbidden ? " (an item belongs to another tenant or SIP domain)" : "");
    json_t *body =
        json_pack("{s:{s:i, s:s, s:o}, s:I, s:I}", "error", "status", forbidden ? 403 : 400,
                  "message", msg, "details", details ? details : json_array(), "accepted",
                  (json_int_t)accepted, "rejected", (json_int_t)rejected);
    if (body && dropped)
        json_object_set_new(json_object_get(body, "error"), "details_omitted",
                            json_integer(dropped));
    if (!body) {
        http_reply_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    http_reply_json(req, forbidden ? 403 : 400, body);
}

/* ---- groups of posts ---------------------------------------------------------------------- */

/* The client went away before its answer (evhttp's connection close callback; fires at most
 * once, before evhttp frees the connection). The request itself stays ours: evhttp detaches an
 * unanswered request instead of freeing it, and answering it later just frees it. */
static void on_client_close(struct evhttp_connection *conn, void *arg)
{
    post_ctx *p = arg;
    p->conn = NULL;
}

/* Answers and frees 'p': 503 when its group was not stored, else what its items deserve. */
static void post_finish(ingest_front *f, post_ctx *p, bool failed)
{
    const ingest_shared *sh = f->shared;
    if (p->conn)
        evhttp_connection_set_closecb(p->conn, NULL, NULL);
    if (failed) {
        reply_unavailable(p->req, "the CDRs could not be stored in the stream: retry");
        json_decref(p->details);
    } else {
        metrics_add(sh->metrics, f->shard, sh->m_accepted, p->accepted);
        metrics_add(sh->metrics, f->shard, sh->m_rejected, p->rejected);
        if (p->rejected)
            reply_refused(p->req, p->forbidden, p->accepted, p->rejected, p->details,
                          p->details_dropped);
        else
            reply_accepted(p->req, p->accepted);
    }
    f->in_flight--;
    free(p);
}

/* Answers every post of 'g' and frees it. */
static void group_done(post_group *g)
{
    for (size_t i = 0; i < g->n_posts; i++)
        post_finish(g->front, g->posts[i], g->failed);
    free(g->posts);
    cdr_buf_free(&g->rows);
    cdr_buf_free(&g->rejects);
    free(g);
}

/* Redis answered one of a group's entries (stream_push_cb: once per queued entry, on this
 * thread's loop). */
static void on_entry_stored(const stream_push_result *res, void *arg)
{
    post_group *g = arg;
    ingest_front *f = g->front;
    metrics_observe(f->shared->metrics, f->shard, f->shared->m_redis_rtt,
                    (double)res->rtt_us / 1e6);
    if (!res->ok) {
        g->failed = true;
        LOG_WARN("ingest", "append not stored: %s", res->error ? res->error : "unknown error");
    }
    if (--g->pending == 0)
        group_done(g);
}

/* Queues one entry of 'n' rows held in 'rows', zstd-compressed when they reach the configured
 * size. Returns the stream_push status. */
static stream_push_status queue_entry(ingest_front *f, post_group *g, const char *kind, unsigned n,
                                      const cdr_buf *rows)
{
    const char *enc = CDR_CODEC_ENC_PLAIN;
    const char *payload = rows->data;
    size_t len = rows->len;
    long long min = f->shared->conf->compress_min;
    if (min > 0 && len >= (size_t)min) {
        cdr_buf_reset(&f->packed);
        if (cdr_codec_compress(rows->data, rows->len, &f->packed) == 0) {
            enc = CDR_CODEC_ENC_ZSTD;
            payload = f->packed.data;
            len = f->packed.len;
        }
    }
    stream_push_status st =
        stream_push_entry(f->push, kind, n, enc, payload, len, on_entry_stored, g);
    if (st == PUSH_QUEUED)
        g->pending++;
    return st;
}

/* Closes the open group and queues its entries. A refusal of the first entry answers every
 * post at once (503); a refusal of the reject entry after the rows were queued fails the group
 * once the rows' answer is in: the clients' retries are deduplicated downstream. */
static void group_flush(ingest_front *f)
{
    post_group *g = f->open;
    if (!g)
        return;
    f->open = NULL;
    stream_push_status st = PUSH_QUEUED;
    if (g->n_rows)
        st = queue_entry(f, g, CDR_CODEC_KIND_CDR, g->n_rows, &g->rows);
    if (st == PUSH_QUEUED && g->n_rejects)
        st = queue_entry(f, g, CDR_CODEC_KIND_REJECT, g->n_rejects, &g->rejects);
    if (st != PUSH_QUEUED)
        g->failed = true;
    if (g->pending == 0)
        group_done(g);
}

/* The loop has run every callback that was ready with this one (event callback, this
 * thread): the posts read meanwhile are in the open group. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    group_flush(arg);
}

/* The group this iteration's posts join, opened (and its flush scheduled) when there is none.
 * Returns NULL when memory ran out. */
static post_group *open_group(ingest_front *f)
{
    if (f->open)
        return f->open;
    post_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->front = f;
    f->open = g;
    event_active(f->flush_ev, EV_TIMEOUT, 0);
    return g;
}

static int group_add_post(post_group *g, post_ctx *p)
{
    if (g->n_posts == g->cap_posts) {
        size_t cap = g->cap_posts ? g->cap_posts * 2 : 8;
        post_ctx **posts = realloc(g->posts, cap * sizeof(*posts));
        if (!posts)
            return -1;
        g->posts = posts;
        g->cap_posts = cap;
    }
    g->posts[g->n_posts++] = p;
    return 0;
}

/* ---- POST /api/voip/cdr -------------------------------------------------------------------- */

/* Reads, inflates and splits the body into 'b'. Returns 0, or -1 after answering the request. */
static int read_items(ingest_front *f, struct evhttp_request *req, ingest_batch *b)
{
    char err[256];
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    body_format fmt;
    body_encoding enc;
    if (body_content_type(evhttp_find_header(h, "Content-Type"), &fmt, err, sizeof(err)) != 0 ||
        body_content_encoding(evhttp_find_header(h, "Content-Encoding"), &enc, err, sizeof(err)) !=
            0) {
        http_reply_error(req, 415, err, NULL, 0);
        return -1;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    size_t limit = (size_t)f->shared->conf->max_body;
    if (len > limit) {
        http_reply_error(req, 413, "body exceeds CDR_MAX_BODY", NULL, 0);
        return -1;
    }
    const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (enc != BODY_ENC_IDENTITY) {
        switch (body_inflate(enc, data, len, limit, &f->inflated, err, sizeof(err))) {
        case BODY_OK:
            break;
        case BODY_TOO_LARGE:
            http_reply_error(req, 413, err, NULL, 0);
            return -1;
        default:
            http_reply_error(req, 400, err, NULL, 0);
            return -1;
        }
        data = f->inflated.data ? f->inflated.data : "";
        len = f->inflated.len;
    }

    int n = body_for_each_item(fmt, data, len, ingest_batch_item, b, err, sizeof(err));
    if (b->out_of_memory) {
        reply_unavailable(req, "out of memory while reading the body: retry");
        return -1;
    }
    if (n < 0) {
        http_reply_error(req, 400, err, NULL, 0);
        return -1;
    }
    if (n == 0) {
        http_reply_error(req, 400, "body holds no CDR", NULL, 0);
        return -1;
    }
    return 0;
}

/* Whether the stream takes appends now; answers 503 and returns false when not. */
static bool stream_accepting(ingest_front *f, struct evhttp_request *req)
{
    long long backlog = stream_push_backlog(f->push);
    if (!stream_push_connected(f->push)) {
        reply_unavailable(req, "Redis is not reachable: retry later");
        return false;
    }
    if (backlog >= f->shared->conf->max_backlog) {
        reply_unavailable(req,
                          "the stream backlog is over its bound (CDR_MAX_BACKLOG): retry later");
        return false;
    }
    return true;
}

static void handle_post(ingest_front *f, struct evhttp_request *req)
{
    auth_claims claims;
    if (!http_auth_check(f->auth, req, AUTH_SCOPE_WRITE, &claims))
        return;
    if (!stream_accepting(f, req))
        return;
    post_group *g = open_group(f);
    post_ctx *p = calloc(1, sizeof(*p));
    if (!g || !p) {
        free(p);
        reply_unavailable(req, "out of memory: retry");
        return;
    }

    ingest_batch b;
    ingest_batch_init(&b, &claims, timefmt_now(), &g->rows, &g->rejects);
    bool refused = read_items(f, req, &b) != 0; /* answered already */
    json_arena_reset();                         /* the body's JSON values are all released by now */
    if (refused || group_add_post(g, p) != 0) {
        ingest_batch_undo(&b);
        ingest_batch_free(&b);
        free(p);
        if (!refused)
            reply_unavailable(req, "out of memory: retry");
        return;
    }
    p->req = req;
    p->accepted = b.n_rows;
    p->rejected = b.n_rejects;
    p->details = b.details;
    p->details_dropped = b.details_dropped;
    p->forbidden = b.forbidden;
    b.details = NULL;
    ingest_batch_free(&b);
    g->n_rows += p->accepted;
    g->n_rejects += p->rejected;
    p->conn = evhttp_request_get_connection(req);
    if (p->conn)
        evhttp_connection_set_closecb(p->conn, on_client_close, p);
    f->in_flight++;
    if (g->rows.len + g->rejects.len >= GROUP_MAX_BYTES)
        group_flush(f);
}

/* ---- routing ------------------------------------------------------------------------------- */

static bool health_ready(void *arg, char *why, size_t whylen)
{
    ingest_front *f = arg;
    if (stream_push_connected(f->push))
        return true;
    snprintf(why, whylen, "Redis is not reachable");
    return false;
}

/* evhttp's generic callback: every request of this thread's server, once its headers and body
 * are read. The request is answered by exactly one path below. */
static void on_request(struct evhttp_request *req, void *arg)
{
    ingest_front *f = arg;
    evhttp_request_set_on_complete_cb(req, on_request_complete, f);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";

    if (strcmp(path, POST_PATH) == 0) {
        if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
            handle_post(f, req);
        } else {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
            http_reply_error(req, 405, "use POST on " POST_PATH, NULL, 0);
        }
        return;
    }
    if (http_health_route(req, path, &f->health))
        return;
    http_reply_error(req, 404, "no such resource", NULL, 0);
}

/* The listener could not accept (evconnlistener error callback, this thread). At the
 * descriptor limit - the bound on connections - accepting pauses for a moment instead of
 * spinning on a connection the kernel keeps offering. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    ingest_front *f = thread_front;
    int e = EVUTIL_SOCKET_ERROR();
    if (f && (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)) {
        evconnlistener_disable(lev);
        struct timeval tv = {0, RESUME_ACCEPT_MS * 1000};
        evtimer_add(f->resume_accept, &tv);
        LOG_WARN("ingest", "connection limit reached: pausing accept for %d ms", RESUME_ACCEPT_MS);
    } else {
        LOG_WARN("ingest", "accept failed: %s", strerror(e));
    }
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    ingest_front *f = arg;
    if (f->bound)
        evconnlistener_enable(evhttp_bound_socket_get_listener(f->bound));
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

ingest_front *ingest_front_create(struct event_base *base, int listen_fd, int shard,
                                  const ingest_shared *shared, char *err, size_t errlen)
{
    const ingest_config *conf = shared->conf;
    ingest_front *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        evutil_closesocket(listen_fd);
        return NULL;
    }
    f->base = base;
    f->shared = shared;
    f->shard = shard;
    f->health = (http_health_ops){.ready = health_ready, .arg = f, .metrics = shared->metrics};

    stream_push_config pc = {
        .target = shared->redis,
        .stream_key = conf->stream_key,
        .max_backlog = conf->max_backlog,
    };
    f->http = evhttp_new(base);
    f->resume_accept = evtimer_new(base, on_resume_accept, f);
    f->flush_ev = event_new(base, -1, 0, on_flush, f);
    f->push = stream_push_create(base, &pc);
    f->auth = http_auth_create(shared->verifier);
    if (!f->http || !f->resume_accept || !f->flush_ev || !f->push || !f->auth) {
        snprintf(err, errlen, "out of memory");
        evutil_closesocket(listen_fd);
        goto fail;
    }
    evhttp_set_gencb(f->http, on_request, f);
    evhttp_set_timeout(f->http, (int)conf->timeout_s);
    evhttp_set_max_body_size(f->http, (ev_ssize_t)conf->max_body);
    evhttp_set_max_headers_size(f->http, 64 * 1024);
    evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    f->bound = evhttp_accept_socket_with_handle(f->http, listen_fd);
    if (!f->bound) {
        snprintf(err, errlen, "cannot accept on the listening socket");
        evutil_closesocket(listen_fd);
        goto fail;
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(f->bound), on_accept_error);
    return f;
fail:
    ingest_front_destroy(f);
    return NULL;
}

int ingest_front_run(ingest_front *f)
{
    thread_front = f;
    if (json_arena_thread_init(JSON_ARENA_BYTES) != 0)
        LOG_WARN("ingest", "no JSON arena (out of memory): parsing with malloc");
    int rc = event_base_dispatch(f->base);
    thread_front = NULL;
    if (json_arena_thread_init(0) != 0)
        LOG_WARN("ingest", "cannot release the JSON arena");
    return rc;
}

void ingest_front_stop_accepting(ingest_front *f)
{
    if (f->bound) {
        evhttp_del_accept_socket(f->http, f->bound);
        f->bound = NULL;
    }
}

int ingest_front_in_flight(const ingest_front *f)
{
    return f->in_flight;
}

long long ingest_front_backlog(const ingest_front *f)
{
    return f->push ? stream_push_backlog(f->push) : -1;
}

void ingest_front_destroy(ingest_front *f)
{
    if (!f)
        return;
    /* The open group is stored (or refused) and Redis closed first: every post is answered
     * while evhttp still exists. */
    if (f->push)
        group_flush(f);
    stream_push_destroy(f->push);
    if (f->http)
        evhttp_free(f->http);
    if (f->resume_accept)
        event_free(f->resume_accept);
    if (f->flush_ev)
        event_free(f->flush_ev);
    http_auth_destroy(f->auth);
    cdr_buf_free(&f->inflated);
    cdr_buf_free(&f->packed);
    free(f);
}
