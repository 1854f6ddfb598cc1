/* loadgen.c - HTTP/1.1 keep-alive load generator for the benchmarks: closed loop (saturation) or
 * open loop at a fixed rate, a log-linear latency histogram, one key=value result line. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX      100000
#define THREADS_MAX    64
#define HEADERS_MAX    64
#define READ_BUF       65536
#define HEAD_MAX       32768      /* a response head longer than this is a protocol error */
#define LINE_MAX_BYTES 1024       /* chunk-size and trailer lines */
#define RETRY_NS       50000000LL /* wait before reconnecting after a failed connect */
#define EVENTS_MAX     256
#define NS             1000000000LL

/* Latency histogram, in microseconds: exact below HIST_SUB, then HIST_HALF buckets per power of
 * two (at most 1/64 = 1.6% wide), up to 2^(HIST_MSB_MAX+1) us (about 25 days). */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_HALF     (HIST_SUB / 2)
#define HIST_MSB_MAX  41
#define HIST_BUCKETS  (HIST_SUB + (HIST_MSB_MAX - HIST_SUB_BITS + 1) * HIST_HALF)

/* What one run is asked to do; set by main before any worker starts, read-only afterwards. */
typedef struct options {
    char host[256];
    char port[16];
    const char *path;
    struct sockaddr_storage addr;
    socklen_t addrlen;
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
    uint64_t max_us;
    double sum_us;
    uint64_t status[600]; /* by status code; [0] holds codes outside 100..599 */
    uint64_t hist[HIST_BUCKETS];
} stats;

typedef enum conn_state {
    C_RETRY,      /* no socket; connect again at retry_at */
    C_CONNECTING, /* non-blocking connect in progress */
    C_IDLE,       /* connected, no request outstanding (open loop only) */
    C_SENDING,    /* request partly written */
    C_WAITING,    /* request written, response not complete */
} conn_state;

typedef enum parse_state {
    P_HEAD,
    P_BODY,
    P_CHUNK_SIZE,
    P_CHUNK_DATA,
    P_CHUNK_END,
    P_TRAILER,
    P_UNTIL_CLOSE,
} parse_state;

struct worker;

typedef struct conn {
    struct worker *w;
    int fd;
    conn_state state;
    bool want_out;      /* EPOLLOUT is registered */
    size_t sent;        /* bytes of the request written */
    int64_t t_sched;    /* when the request was due (open loop) or sent (closed loop) */
    int64_t retry_at;   /* C_RETRY: when to connect again */
    parse_state ps;     /* response parser */
    int status;         /* status of the response being read */
    bool close_after;   /* the server closes after this response */
    uint64_t remaining; /* body or chunk bytes still to skip */
    char *buf;          /* unparsed bytes are buf[start..end) */
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
    "percentiles in ms (p50_ms p90_ms p99_ms p999_ms max_ms mean_ms), status_NNN counts,\n"
    "socket_errors, connect_errors, reconnects, all_ok (expected answers including warmup),\n"
    "and for an open loop target_rps and late (requests due but never sent).\n"
    "Exit status: 0, 1 on a usage or setup error, 3 when no response was received.\n";

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------- */
/* Histogram */

static size_t hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    if (msb > HIST_MSB_MAX) {
        msb = HIST_MSB_MAX;
        v = (2ULL << HIST_MSB_MAX) - 1;
    }
    int shift = msb - (HIST_SUB_BITS - 1);
    return HIST_SUB + (size_t)(msb - HIST_SUB_BITS) * HIST_HALF +
           (size_t)((v >> shift) - HIST_HALF);
}

/* The largest value that falls in bucket 'i': percentiles are reported on the safe side. */
static uint64_t hist_upper(size_t i)
{
    if (i < HIST_SUB)
        return i;
    size_t group = (i - HIST_SUB) / HIST_HALF, sub = (i - HIST_SUB) % HIST_HALF;
    int shift = (int)group + 1;
    return ((uint64_t)(sub + HIST_HALF) << shift) + ((1ULL << shift) - 1);
}

/* The value at percentile 'p' (0..100) in microseconds; 0 when nothing was recorded. */
static uint64_t hist_percentile(const stats *st, double p, uint64_t count)
{
    if (count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += st->hist[i];
        if (seen >= rank)
            return hist_upper(i) < st->max_us ? hist_upper(i) : st->max_us;
    }
    return st->max_us;
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
    c->fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&opt.addr, opt.addrlen) != 0 && errno != EINPROGRESS)
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
    c->ps = P_HEAD;
    c->state = C_SENDING;
    conn_write(c);
}

/* Records the response just completed on 'c' at 'now'. */
static void record(conn *c, int64_t now)
{
    stats *st = &c->w->st;
    bool ok = opt.expect ? c->status == opt.expect : c->status >= 200 && c->status < 300;
    if (ok)
        st->all_ok++;
    if (!in_window(now))
        return;
    st->requests++;
    if (ok)
        st->ok++;
    st->status[c->status >= 100 && c->status < 600 ? c->status : 0]++;
    uint64_t us = now > c->t_sched ? (uint64_t)(now - c->t_sched) / 1000 : 0;
    st->hist[hist_index(us)]++;
    st->sum_us += (double)us;
    if (us > st->max_us)
        st->max_us = us;
}

/* Case-insensitive search for 'needle' in the 'n' bytes at 'hay'. */
static bool contains_ci(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (strncasecmp(hay + i, needle, k) == 0)
            return true;
    }
    return false;
}

/* Parses the response head at 'p' ('len' bytes, ending with the empty line): the status and how
 * the body is delimited. Returns 0, or -1 when it is not an HTTP/1.x response. */
static int parse_head(conn *c, const char *p, size_t len)
{
    if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[9]) ||
        !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]))
        return -1;
    bool http10 = p[7] == '0', keep_alive = false, chunked = false, has_length = false;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    c->close_after = false;
    const char *line = memchr(p, '\n', len);
    const char *end = p + len;
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t name = (size_t)(colon - line), vlen = (size_t)(eol - colon - 1);
            const char *v = colon + 1;
            if (name == 14 && strncasecmp(line, "content-length", 14) == 0) {
                char num[32];
                size_t k = vlen < sizeof(num) - 1 ? vlen : sizeof(num) - 1;
                memcpy(num, v, k);
                num[k] = '\0';
                char *stop;
                c->remaining = strtoull(num, &stop, 10);
                has_length = true;
            } else if (name == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
                chunked = contains_ci(v, vlen, "chunked");
            } else if (name == 10 && strncasecmp(line, "connection", 10) == 0) {
                if (contains_ci(v, vlen, "close"))
                    c->close_after = true;
                if (contains_ci(v, vlen, "keep-alive"))
                    keep_alive = true;
            }
        }
        line = eol;
    }
    if (http10 && !keep_alive)
        c->close_after = true;
    if (c->status < 200) {
        c->ps = P_HEAD; /* an interim answer (100 Continue): the real one follows */
    } else if (c->status == 204 || c->status == 304 || strcmp(opt.method, "HEAD") == 0) {
        c->remaining = 0;
        c->ps = P_BODY;
    } else if (chunked) {
        c->ps = P_CHUNK_SIZE;
    } else if (has_length) {
        c->ps = P_BODY;
    } else {
        c->ps = P_UNTIL_CLOSE;
        c->close_after = true;
    }
    return 0;
}

/* Consumes what can be parsed of buf[start..end). Returns 1 when a response is complete, 0 when
 * more bytes are needed, -1 on a protocol error. */
static int parse(conn *c)
{
    for (;;) {
        char *p = c->buf + c->start;
        size_t avail = c->end - c->start;
        char *eol;
        switch (c->ps) {
        case P_HEAD:
            eol = memmem(p, avail, "\r\n\r\n", 4);
            if (!eol)
                return avail >= HEAD_MAX ? -1 : 0;
            if (parse_head(c, p, (size_t)(eol - p) + 4) != 0)
                return -1;
            c->start += (size_t)(eol - p) + 4;
            if (c->ps == P_BODY && c->remaining == 0)
                return 1;
            break;
        case P_BODY:
        case P_CHUNK_DATA: {
            size_t take = avail < c->remaining ? avail : (size_t)c->remaining;
            c->start += take;
            c->remaining -= take;
            if (c->remaining > 0)
                return 0;
            if (c->ps == P_BODY)
                return 1;
            c->ps = P_CHUNK_END;
            break;
        }
        case P_CHUNK_SIZE:
        case P_TRAILER:
            eol = memmem(p, avail, "\r\n", 2);
            if (!eol)
                return avail >= LINE_MAX_BYTES ? -1 : 0;
            c->start += (size_t)(eol - p) + 2;
            if (c->ps == P_TRAILER) {
                if (eol == p)
                    return 1;
                break;
            }
            if (!isxdigit((unsigned char)*p))
                return -1;
            c->remaining = strtoull(p, NULL, 16); /* stops at CR or a chunk extension */
            c->ps = c->remaining == 0 ? P_TRAILER : P_CHUNK_DATA;
            break;
        case P_CHUNK_END:
            if (avail < 2)
                return 0;
            if (p[0] != '\r' || p[1] != '\n')
                return -1;
            c->start += 2;
            c->ps = P_CHUNK_SIZE;
            break;
        case P_UNTIL_CLOSE:
            c->start = c->end;
            return 0;
        }
    }
}

/* A response is complete on 'c': record it and go on with the next request. */
static void conn_complete(conn *c, int64_t now)
{
    record(c, now);
    bool still_sending = c->state == C_SENDING;
    c->start = c->end = 0; /* nothing is pipelined: anything further is noise */
    if (c->close_after || still_sending) {
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
        ssize_t n = read(c->fd, c->buf + c->end, room);
        if (n > 0) {
            c->end += (size_t)n;
            if (c->state != C_SENDING && c->state != C_WAITING) {
                conn_reset(c, false, 0); /* bytes nobody asked for */
                return;
            }
            int r = parse(c);
            if (r < 0) {
                conn_reset(c, true, 0);
                return;
            }
            if (r > 0) {
                conn_complete(c, now_ns());
                return;
            }
            if ((size_t)n < room)
                return;
        } else if (n == 0) {
            bool busy = c->state == C_SENDING || c->state == C_WAITING;
            if (busy && c->ps == P_UNTIL_CLOSE) {
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
/* Setup and report */

/* Splits 'url' (http://host[:port][/path]) into opt.host, opt.port, opt.path and resolves it.
 * Returns 0 or -1 with 'err' filled. */
static int parse_url(const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "--url must start with http://");
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/'), *hend;
    const char *stop = slash ? slash : h + strlen(h);
    const char *port = NULL;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(stop - h));
        if (!hend) {
            snprintf(err, errlen, "--url: unterminated [address]");
            return -1;
        }
        h++;
        port = hend[1] == ':' ? hend + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', (size_t)(stop - h));
        hend = colon ? colon : stop;
        port = colon ? colon + 1 : NULL;
    }
    size_t hlen = (size_t)(hend - h), plen = port ? (size_t)(stop - port) : 0;
    if (hlen == 0 || hlen >= sizeof(opt.host) || plen >= sizeof(opt.port) || (port && plen == 0)) {
        snprintf(err, errlen, "--url: bad host or port in %s", url);
        return -1;
    }
    memcpy(opt.host, h, hlen);
    opt.host[hlen] = '\0';
    if (port) {
        memcpy(opt.port, port, plen);
        opt.port[plen] = '\0';
    } else {
        strcpy(opt.port, "80");
    }
    opt.path = slash ? slash : "/";

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s:%s: %s", opt.host, opt.port, gai_strerror(rc));
        return -1;
    }
    memcpy(&opt.addr, res->ai_addr, res->ai_addrlen);
    opt.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Reads all of 'path' into opt.body. Returns 0 or -1 with 'err' filled. */
static int read_body(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    opt.body = malloc((size_t)sb.st_size + 1);
    if (!opt.body) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    opt.body_len = fread(opt.body, 1, (size_t)sb.st_size, f);
    if (ferror(f) || opt.body_len != (size_t)sb.st_size) {
        snprintf(err, errlen, "cannot read %s", path);
        goto fail;
    }
    fclose(f);
    return 0;
fail:
    if (f)
        fclose(f);
    return -1;
}

static bool header_named(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

/* Builds opt.request from the options. Returns 0 or -1 with 'err' filled. */
static int build_request(char *err, size_t errlen)
{
    bool has_host = false;
    size_t cap = opt.body_len + strlen(opt.method) + strlen(opt.path) + strlen(opt.host) + 256;
    for (int i = 0; i < opt.n_headers; i++) {
        const char *h = opt.headers[i];
        if (!strchr(h, ':') || strpbrk(h, "\r\n")) {
            snprintf(err, errlen, "--header '%s': expected 'Name: value'", h);
            return -1;
        }
        if (header_named(h, "content-length") || header_named(h, "transfer-encoding")) {
            snprintf(err, errlen, "--header '%s': the body's length is set by loadgen", h);
            return -1;
        }
        has_host = has_host || header_named(h, "host");
        cap += strlen(h) + 2;
    }
    opt.request = malloc(cap);
    if (!opt.request) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *p = opt.request;
    p += sprintf(p, "%s %s HTTP/1.1\r\n", opt.method, opt.path);
    if (!has_host) {
        bool v6 = strchr(opt.host, ':') != NULL;
        p += sprintf(p, "Host: %s%s%s:%s\r\n", v6 ? "[" : "", opt.host, v6 ? "]" : "", opt.port);
    }
    for (int i = 0; i < opt.n_headers; i++)
        p += sprintf(p, "%s\r\n", opt.headers[i]);
    if (opt.body || strcmp(opt.method, "POST") == 0 || strcmp(opt.method, "PUT") == 0)
        p += sprintf(p, "Content-Length: %zu\r\n", opt.body_len);
    p += sprintf(p, "\r\n");
    if (opt.body_len > 0)
        memcpy(p, opt.body, opt.body_len);
    opt.request_len = (size_t)(p - opt.request) + opt.body_len;
    return 0;
}

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
    } pct[] = {{"p50_ms", 50}, {"p90_ms", 90}, {"p99_ms", 99}, {"p999_ms", 99.9}};
    for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
        printf(" %s=%.3f", pct[i].key, (double)hist_percentile(st, pct[i].p, st->requests) / 1e3);
    printf(" max_ms=%.3f mean_ms=%.3f", (double)st->max_us / 1e3,
           st->requests ? st->sum_us / (double)st->requests / 1e3 : 0.0);
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
    if (parse_url(url, err, sizeof(err)) != 0 ||
        (opt.body_file && read_body(opt.body_file, err, sizeof(err)) != 0) ||
        build_request(err, sizeof(err)) != 0)
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
        total->sum_us += s->sum_us;
        total->max_us = s->max_us > total->max_us ? s->max_us : total->max_us;
        for (size_t k = 0; k < 600; k++)
            total->status[k] += s->status[k];
        for (size_t k = 0; k < HIST_BUCKETS; k++)
            total->hist[k] += s->hist[k];
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
