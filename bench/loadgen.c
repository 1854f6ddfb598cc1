/* loadgen.c - HTTP/1.1 keep-alive load generator for the benchmarks: closed loop (saturation) or
 * open loop at a fixed rate, a log-linear latency histogram, one key=value result line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "http_request.h"
#include "http_response.h"
#include "latency_hist.h"

#define CONNS_MAX   100000
#define THREADS_MAX 64
#define HEADERS_MAX 64
#define READ_BUF    65536
#define RETRY_NS    50000000LL /* wait before reconnecting after a failed connect */
#define EVENTS_MAX  256
#define NS          1000000000LL

/* What one run is asked to do; set by main before any worker starts, read-only afterwards. */
typedef struct options {
    http_target target;
    const char *method;
    const char *headers[HEADERS_MAX];
    int n_headers;
    const char *body_file;
    char *body;
    size_t body_len;
    char *request; /* the whole request, head and body, sent again and again */
    size_t request_len;
    int connections;
    int threads;
    double duration_s;
    double warmup_s;
    double rate;       /* requests/s in total; 0 = closed loop */
    int expect;        /* the status counted as success; 0 = any 2xx */
    int64_t t_start;   /* CLOCK_MONOTONIC ns: connections open, open-loop schedule starts */
    int64_t t_measure; /* responses complete from here on are counted... */
    int64_t t_end;     /* ...until here, when the run stops */
} options;

static options opt;

typedef struct stats {
    uint64_t requests;       /* responses completed inside the window */
    uint64_t ok;             /* of which had the expected status */
    uint64_t all_ok;         /* expected-status responses over the whole run, warmup included */
    uint64_t socket_errors;  /* requests lost to a broken connection inside the window */
    uint64_t connect_errors; /* failed connection attempts, whole run */
    uint64_t reconnects;     /* connections reopened after the server closed one */
    uint64_t late;           /* open loop: requests due by the end but never sent */
    uint64_t status[600];    /* by status code; [0] holds codes outside 100..599 */
    lat_hist latency;        /* of the responses inside the window */
} stats;

typedef enum conn_state {
    C_RETRY,      /* no socket; connect again at retry_at */
    C_CONNECTING, /* non-blocking connect in progress */
    C_IDLE,       /* connected, no request outstanding (open loop only) */
    C_SENDING,    /* request partly written */
    C_WAITING,    /* request written, response not complete */
} conn_state;

struct worker;

typedef struct conn {
    struct worker *w;
    int fd;
    conn_state state;
    bool want_out;    /* EPOLLOUT is registered */
    size_t sent;      /* bytes of the request written */
    int64_t t_sched;  /* when the request was due (open loop) or sent (closed loop) */
    int64_t retry_at; /* C_RETRY: when to connect again */
    http_resp resp;   /* the response being read */
    char *buf;        /* unparsed bytes are buf[start..end) */
    size_t start, end;
} conn;

typedef struct worker {
    int id;
    pthread_t thread;
    int epfd;
    int tfd; /* open loop: timerfd armed for the next due request, else -1 */
    conn *conns;
    int n_conns;
    conn **idle; /* open loop: connections without a request (a stack) */
    int n_idle;
    int n_retry;        /* connections in C_RETRY */
    double interval_ns; /* open loop: time between two of this worker's requests */
    int64_t t0;         /* open loop: when request 0 of this worker is due */
    uint64_t next;      /* open loop: index of the next request to send */
    int64_t armed_for;  /* the timerfd's expiry, 0 when disarmed */
    char err[256];      /* first fatal error, reported by main */
    stats st;
} worker;

static const char usage_text[] =
    "usage: loadgen --url http://HOST:PORT/PATH [options]\n"
    "HTTP/1.1 keep-alive load: every connection sends the same request again and again.\n"
    "  --url URL            target (http only)\n"
    "  --connections C      open connections in total (default 64)\n"
    "  --threads T          threads, each driving its share of the connections (default 1)\n"
    "  --duration S         seconds measured (default 10)\n"
    "  --warmup S           seconds run before measuring (default 2)\n"
    "  --rate R             0: closed loop, each connection sends on the previous answer\n"
    "                       (saturation); R > 0: open loop at R requests/s in total, latency\n"
    "                       counted from each request's scheduled time (default 0)\n"
    "  --body FILE          request body, sent as is (method then defaults to POST)\n"
    "  --method M           request method (default GET, or POST with --body)\n"
    "  --header 'N: v'      extra request header, repeatable\n"
    "  --expect STATUS      the status counted as success; others are errors (default: any 2xx)\n"
    "Prints one line of key=value pairs: requests, ok, errors, seconds, rps, ok_rps, latency\n"
    "percentiles in ms (p50_ms p90_ms p95_ms p99_ms p999_ms max_ms mean_ms), status_NNN counts,\n"
    "socket_errors, connect_errors, reconnects, all_ok (expected answers including warmup),\n"
    "connections, threads, request_bytes, and for an open loop target_rps and late (requests\n"
    "due but never sent).\n"
    "Exit status: 0, 1 on a usage or setup error, 3 when no response was received.\n";

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------- */
/* Connections */

static void conn_connect(conn *c, int64_t now);
static void conn_send(conn *c, int64_t t_sched);

static bool in_window(int64_t t)
{
    return t >= opt.t_measure && t < opt.t_end;
}

static void set_events(conn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = out;
}

static void idle_remove(worker *w, conn *c)
{
    for (int i = 0; i < w->n_idle; i++) {
        if (w->idle[i] == c) {
            w->idle[i] = w->idle[--w->n_idle];
            return;
        }
    }
}

/* Closes the socket of 'c' and opens a new one at once ('retry_ns' 0) or later. A request that
 * was outstanding is lost: counted as a socket error when 'lost'. */
static void conn_reset(conn *c, bool lost, int64_t retry_ns)
{
    worker *w = c->w;
    int64_t now = now_ns();
    if (lost && in_window(now))
        w->st.socket_errors++;
    if (c->state == C_IDLE)
        idle_remove(w, c);
    if (c->fd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->start = c->end = 0;
    if (retry_ns > 0) {
        c->state = C_RETRY;
        c->retry_at = now + retry_ns;
        w->n_retry++;
        return;
    }
    conn_connect(c, now);
}

static void conn_connect(conn *c, int64_t now)
{
    worker *w = c->w;
    int one = 1;
    c->want_out = true;
    c->fd = socket(opt.target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&opt.target.addr, opt.target.addrlen) != 0 &&
        errno != EINPROGRESS)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto fail;
    c->state = C_CONNECTING;
    return;
fail:
    w->st.connect_errors++;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_RETRY;
    c->retry_at = now + RETRY_NS;
    w->n_retry++;
}

/* Open loop: how many of the worker's requests are due at 'now'. */
static uint64_t due_count(const worker *w, int64_t now)
{
    if (now < w->t0)
        return 0;
    return (uint64_t)((double)(now - w->t0) / w->interval_ns) + 1;
}

static int64_t due_time(const worker *w, uint64_t index)
{
    return w->t0 + (int64_t)((double)index * w->interval_ns);
}

/* 'c' has no request outstanding: closed loop sends the next one at once; open loop sends the
 * oldest overdue one, or parks the connection until the next one is due. */
static void conn_ready(conn *c, int64_t now)
{
    worker *w = c->w;
    if (opt.rate <= 0) {
        conn_send(c, now);
        return;
    }
    if (w->next < due_count(w, now)) {
        conn_send(c, due_time(w, w->next++));
        return;
    }
    c->state = C_IDLE;
    w->idle[w->n_idle++] = c;
}

static void conn_write(conn *c)
{
    while (c->sent < opt.request_len) {
        ssize_t n = send(c->fd, opt.request + c->sent, opt.request_len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out)
                set_events(c, true);
            return;
        } else {
            conn_reset(c, true, 0);
            return;
        }
    }
    if (c->want_out)
        set_events(c, false);
    if (c->state == C_SENDING)
        c->state = C_WAITING;
}

static void conn_send(conn *c, int64_t t_sched)
{
    c->t_sched = t_sched;
    c->sent = 0;
    http_resp_start(&c->resp, strcmp(opt.method, "HEAD") == 0);
    c->state = C_SENDING;
    conn_write(c);
}

/* Records the response just completed on 'c' at 'now'. */
static void record(conn *c, int64_t now)
{
    stats *st = &c->w->st;
    int status = c->resp.status;
    bool ok = opt.expect ? status == opt.expect : status >= 200 && status < 300;
    if (ok)
        st->all_ok++;
    if (!in_window(now))
        return;
    st->requests++;
    if (ok)
        st->ok++;
    st->status[status >= 100 && status < 600 ? status : 0]++;
    lat_hist_record(&st->latency, now > c->t_sched ? (uint64_t)(now - c->t_sched) / 1000 : 0);
}

/* A response is complete on 'c': record it and go on with the next request. */
static void conn_complete(conn *c, int64_t now)
{
    record(c, now);
    bool still_sending = c->state == C_SENDING;
    c->start = c->end = 0; /* nothing is pipelined: anything further is noise */
    if (c->resp.close_after || still_sending) {
        c->w->st.reconnects++;
        conn_reset(c, false, 0);
        return;
    }
    conn_ready(c, now);
}

static void conn_readable(conn *c)
{
    for (;;) {
        if (c->start == c->end) {
            c->start = c->end = 0;
        } else if (c->end == READ_BUF && c->start > 0) {
            memmove(c->buf, c->buf + c->start, c->end - c->start);
            c->end -= c->start;
            c->start = 0;
        }
        size_t room = READ_BUF - c->end;
        if (room == 0) { /* cannot happen: the parser refuses heads and lines this long */
            conn_reset(c, true, 0);
            return;
        }
        ssize_t n = read(c->fd, c->buf + c->end, room);
        if (n > 0) {
            c->end += (size_t)n;
            if (c->state != C_SENDING && c->state != C_WAITING) {
                conn_reset(c, false, 0); /* bytes nobody asked for */
                return;
            }
            size_t used;
            http_resp_result r =
                http_resp_parse(&c->resp, c->buf + c->start, c->end - c->start, &used);
            c->start += used;
            if (r == HTTP_RESP_ERROR) {
                conn_reset(c, true, 0);
                return;
            }
            if (r == HTTP_RESP_DONE) {
                conn_complete(c, now_ns());
                return;
            }
            if ((size_t)n < room)
                return;
        } else if (n == 0) {
            bool busy = c->state == C_SENDING || c->state == C_WAITING;
            if (busy && http_resp_done_at_eof(&c->resp)) {
                conn_complete(c, now_ns());
                return;
            }
            c->w->st.reconnects++;
            conn_reset(c, busy, 0);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            conn_reset(c, c->state == C_SENDING || c->state == C_WAITING, 0);
            return;
        }
    }
}

static void conn_event(conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 ||
            (events & (EPOLLERR | EPOLLHUP))) {
            c->w->st.connect_errors++;
            conn_reset(c, false, RETRY_NS);
            return;
        }
        set_events(c, false);
        conn_ready(c, now_ns());
        return;
    }
    if ((events & EPOLLOUT) && c->state == C_SENDING)
        conn_write(c);
    /* A write that failed reconnected 'c': the events were the old socket's. */
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state != C_CONNECTING &&
        c->state != C_RETRY)
        conn_readable(c);
}

/* ------------------------------------------------------------------------------------------- */
/* Workers */

/* Open loop: sends every due request there is an idle connection for, then arms the timer for
 * the next one if a connection is waiting for it. */
static void dispatch_due(worker *w, int64_t now)
{
    uint64_t due = due_count(w, now);
    while (w->next < due && w->n_idle > 0) {
        conn *c = w->idle[--w->n_idle];
        conn_send(c, due_time(w, w->next++));
    }
    int64_t at = w->n_idle > 0 ? due_time(w, w->next) : 0;
    if (at != w->armed_for) {
        struct itimerspec its = {0};
        its.it_value.tv_sec = at / NS;
        its.it_value.tv_nsec = at % NS;
        timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
        w->armed_for = at;
    }
}

static void retry_due(worker *w, int64_t now)
{
    for (int i = 0; i < w->n_conns && w->n_retry > 0; i++) {
        conn *c = &w->conns[i];
        if (c->state == C_RETRY && c->retry_at <= now) {
            w->n_retry--;
            conn_connect(c, now);
        }
    }
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    struct epoll_event events[EVENTS_MAX];
    if (w->tfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev);
    }
    int64_t now = now_ns();
    for (int i = 0; i < w->n_conns; i++)
        conn_connect(&w->conns[i], now);
    for (;;) {
        now = now_ns();
        if (now >= opt.t_end)
            break;
        if (w->n_retry > 0)
            retry_due(w, now);
        if (w->tfd >= 0)
            dispatch_due(w, now);
        int64_t wait_ns = opt.t_end - now;
        if (w->n_retry > 0 && wait_ns > RETRY_NS / 5)
            wait_ns = RETRY_NS / 5;
        int timeout = (int)((wait_ns + 999999) / 1000000);
        int n = epoll_wait(w->epfd, events, EVENTS_MAX, timeout);
        if (n < 0 && errno != EINTR) {
            snprintf(w->err, sizeof(w->err), "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                uint64_t ticks;
                if (read(w->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                    snprintf(w->err, sizeof(w->err), "timerfd: %s", strerror(errno));
                w->armed_for = 0;
                continue;
            }
            conn_event(events[i].data.ptr, events[i].events);
        }
    }
    if (w->tfd >= 0) {
        uint64_t due = due_count(w, opt.t_end);
        w->st.late = due > w->next ? due - w->next : 0;
    }
    return NULL;
}

static void worker_free(worker *w)
{
    for (int i = 0; w->conns && i < w->n_conns; i++) {
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
        free(w->conns[i].buf);
    }
    free(w->conns);
    free(w->idle);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->tfd >= 0)
        close(w->tfd);
}

/* Prepares worker 'id' with 'n' connections. Returns 0, or -1 with 'err' filled. */
static int worker_init(worker *w, int id, int n, char *err, size_t errlen)
{
    w->id = id;
    w->n_conns = n;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->tfd = -1;
    w->conns = calloc((size_t)n, sizeof(*w->conns));
    w->idle = calloc((size_t)n, sizeof(*w->idle));
    if (w->epfd < 0 || !w->conns || !w->idle) {
        snprintf(err, errlen, "cannot set up a worker: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        w->conns[i].w = w;
        w->conns[i].fd = -1;
        w->conns[i].buf = malloc(READ_BUF);
        if (!w->conns[i].buf) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (opt.rate > 0) {
        w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (w->tfd < 0) {
            snprintf(err, errlen, "timerfd_create: %s", strerror(errno));
            return -1;
        }
        /* Each worker takes the share of the rate its connections carry; the workers' schedules
         * are interleaved rather than all due at the same instants. */
        double rate = opt.rate * n / opt.connections;
        w->interval_ns = (double)NS / rate;
        w->t0 = opt.t_start + (int64_t)(w->interval_ns * id / opt.threads);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Options and report */

static int parse_number(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "loadgen: %s must be a number in %g..%g\n", flag, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static void report(const stats *st, int64_t window_ns)
{
    double secs = (double)window_ns / NS;
    uint64_t errors = st->requests - st->ok + st->socket_errors;
    printf("requests=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f rps=%.1f"
           " ok_rps=%.1f",
           st->requests, st->ok, errors, secs, (double)st->requests / secs, (double)st->ok / secs);
    static const struct {
        const char *key;
        double p;
    } pct[] = {{"p50_ms", 50}, {"p90_ms", 90}, {"p95_ms", 95}, {"p99_ms", 99}, {"p999_ms", 99.9}};
    for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
        printf(" %s=%.3f", pct[i].key, (double)lat_hist_percentile(&st->latency, pct[i].p) / 1e3);
    printf(" max_ms=%.3f mean_ms=%.3f", (double)st->latency.max_us / 1e3,
           lat_hist_mean(&st->latency) / 1e3);
    for (int s = 0; s < 600; s++) {
        if (st->status[s] > 0)
            printf(" status_%03d=%" PRIu64, s, st->status[s]);
    }
    printf(" socket_errors=%" PRIu64 " connect_errors=%" PRIu64 " reconnects=%" PRIu64
           " all_ok=%" PRIu64 " connections=%d threads=%d request_bytes=%zu",
           st->socket_errors, st->connect_errors, st->reconnects, st->all_ok, opt.connections,
           opt.threads, opt.request_len);
    if (opt.rate > 0)
        printf(" target_rps=%.1f late=%" PRIu64, opt.rate, st->late);
    printf("\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},     {"connections", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'}, {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},  {"rate", required_argument, NULL, 'r'},
        {"body", required_argument, NULL, 'b'},    {"method", required_argument, NULL, 'm'},
        {"header", required_argument, NULL, 'H'},  {"expect", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    double conns = 64, threads = 1, expect = 0;
    char err[512] = "";
    int c, rc = 1;
    worker *workers = NULL;

    opt.duration_s = 10;
    opt.warmup_s = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'c':
            if (parse_number("--connections", optarg, 1, CONNS_MAX, &conns) != 0)
                return 1;
            break;
        case 't':
            if (parse_number("--threads", optarg, 1, THREADS_MAX, &threads) != 0)
                return 1;
            break;
        case 'd':
            if (parse_number("--duration", optarg, 0.01, 86400, &opt.duration_s) != 0)
                return 1;
            break;
        case 'w':
            if (parse_number("--warmup", optarg, 0, 86400, &opt.warmup_s) != 0)
                return 1;
            break;
        case 'r':
            if (parse_number("--rate", optarg, 0, 1e8, &opt.rate) != 0)
                return 1;
            break;
        case 'b':
            opt.body_file = optarg;
            break;
        case 'm':
            opt.method = optarg;
            break;
        case 'H':
            if (opt.n_headers == HEADERS_MAX) {
                fprintf(stderr, "loadgen: at most %d --header\n", HEADERS_MAX);
                return 1;
            }
            opt.headers[opt.n_headers++] = optarg;
            break;
        case 'e':
            if (parse_number("--expect", optarg, 100, 599, &expect) != 0)
                return 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 1;
        }
    }
    if (optind != argc || !url) {
        fputs(usage_text, stderr);
        return 1;
    }
    opt.connections = (int)conns;
    opt.threads = (int)threads;
    opt.expect = (int)expect;
    if (opt.threads > opt.connections) {
        fprintf(stderr, "loadgen: --threads must not exceed --connections\n");
        return 1;
    }
    if (!opt.method)
        opt.method = opt.body_file ? "POST" : "GET";
    if (http_target_parse(&opt.target, url, err, sizeof(err)) != 0)
        goto done;
    if (opt.body_file &&
        !(opt.body = http_read_file(opt.body_file, &opt.body_len, err, sizeof(err))))
        goto done;
    opt.request = http_request_build(&opt.target, opt.method, opt.headers, opt.n_headers, opt.body,
                                     opt.body_len, &opt.request_len, err, sizeof(err));
    if (!opt.request)
        goto done;
    signal(SIGPIPE, SIG_IGN);

    workers = calloc((size_t)opt.threads, sizeof(*workers));
    if (!workers) {
        snprintf(err, sizeof(err), "out of memory");
        goto done;
    }
    for (int i = 0; i < opt.threads; i++)
        workers[i].epfd = workers[i].tfd = -1;
    opt.t_start = now_ns();
    opt.t_measure = opt.t_start + (int64_t)(opt.warmup_s * NS);
    opt.t_end = opt.t_measure + (int64_t)(opt.duration_s * NS);
    for (int i = 0; i < opt.threads; i++) {
        int n = opt.connections / opt.threads + (i < opt.connections % opt.threads);
        if (worker_init(&workers[i], i, n, err, sizeof(err)) != 0)
            goto done;
    }
    int started = 0;
    for (; started < opt.threads; started++) {
        if (pthread_create(&workers[started].thread, NULL, worker_run, &workers[started]) != 0) {
            snprintf(err, sizeof(err), "cannot start a thread");
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    if (started < opt.threads)
        goto done;

    stats *total = calloc(1, sizeof(*total));
    if (!total) {
        snprintf(err, sizeof(err), "out of memory");
        goto done;
    }
    for (int i = 0; i < opt.threads; i++) {
        const stats *s = &workers[i].st;
        if (workers[i].err[0] && !err[0])
            snprintf(err, sizeof(err), "%s", workers[i].err);
        total->requests += s->requests;
        total->ok += s->ok;
        total->all_ok += s->all_ok;
        total->socket_errors += s->socket_errors;
        total->connect_errors += s->connect_errors;
        total->reconnects += s->reconnects;
        total->late += s->late;
        for (size_t k = 0; k < 600; k++)
            total->status[k] += s->status[k];
        lat_hist_merge(&total->latency, &s->latency);
    }
    report(total, opt.t_end - opt.t_measure);
    rc = err[0] ? 1 : total->requests == 0 ? 3 : 0;
    if (total->requests == 0 && !err[0])
        fprintf(stderr, "loadgen: no response received (%" PRIu64 " failed connects)\n",
                total->connect_errors);
    free(total);
done:
    if (err[0])
        fprintf(stderr, "loadgen: %s\n", err);
    for (int i = 0; workers && i < opt.threads; i++)
        worker_free(&workers[i]);
    free(workers);
    free(opt.body);
    free(opt.request);
    return rc;
}
