/* http_client.c - a small blocking HTTP/1.1 client for the integration tests. */
#include "http_client.h"
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX  (64 * 1024)
#define READ_SIZE 16384

/* Waits until 'fd' is ready for 'events' or 'deadline' (monotonic ms) passes. Returns the
 * revents, 0 on timeout, or -1 on a poll error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - itest_now_ms();
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, left > 0 ? (int)left : 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r;
        return p.revents;
    }
}

/* Resolves 'host':'port' for a TCP connection. Returns the list (freeaddrinfo) or NULL. */
static struct addrinfo *resolve(const char *host, int port, char *err, size_t errlen)
{
    char service[16];
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        cdr_errf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return NULL;
    }
    return ai;
}

/* Starts a non-blocking connect to 'ai'. Returns the socket (connected or in progress) or -1
 * with errno set. */
static int start_connect(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    /* A request goes out as head then body: without this, Nagle's algorithm holds the body
     * back until the server's delayed ACK of the head, some 40 ms per request. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* The outcome of a connect in progress on 'fd' once it is writable: 0 or an errno. */
static int connect_result(int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return errno;
    return soerr;
}

static void conn_init(http_conn *c, const char *host, int port, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    c->timeout_ms = timeout_ms;
}

int http_connect(http_conn *c, const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
    conn_init(c, host, port, timeout_ms);
    struct addrinfo *ai = resolve(host, port, err, errlen);
    if (!ai)
        return -1;
    int64_t deadline = itest_now_ms() + timeout_ms;
    int fd = start_connect(ai);
    int e = fd < 0 ? errno : 0;
    freeaddrinfo(ai);
    if (fd >= 0) {
        int ev = wait_fd(fd, POLLOUT, deadline);
        e = ev == 0 ? ETIMEDOUT : ev < 0 ? errno : connect_result(fd);
    }
    if (e != 0) {
        cdr_errf(err, errlen, "connect to %s:%d: %s", host, port, strerror(e));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

void http_close(http_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
}

/* Sends all 'len' bytes, or stops early when 'early' is not NULL and the server has something
 * to say (then '*early' is set). Returns 0, or -1 with 'err'. */
static int send_all(http_conn *c, const char *p, size_t len, bool *early, char *err, size_t errlen)
{
    int64_t deadline = itest_now_ms() + c->timeout_ms;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            cdr_errf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
        int ev = wait_fd(c->fd, early ? POLLOUT | POLLIN : POLLOUT, deadline);
        if (ev < 0) {
            cdr_errf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
        if (ev == 0) {
            cdr_errf(err, errlen, "send: timed out after %d ms", c->timeout_ms);
            return -1;
        }
        if (early && (ev & POLLIN)) {
            *early = true;
            return 0;
        }
    }
    return 0;
}

int http_send_raw(http_conn *c, const void *data, size_t len, char *err, size_t errlen)
{
    if (c->fd < 0) {
        cdr_errf(err, errlen, "connection is closed");
        return -1;
    }
    return send_all(c, data, len, NULL, err, errlen);
}

static bool has_header(const http_header *headers, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(headers[i].name, name) == 0)
            return true;
    return false;
}

int http_send(http_conn *c, const char *method, const char *path, const http_header *headers,
              int nheaders, const void *body, size_t len, bool *early, char *err, size_t errlen)
{
    if (early)
        *early = false;
    if (c->fd < 0) {
        cdr_errf(err, errlen, "connection is closed");
        return -1;
    }
    size_t cap = strlen(method) + strlen(path) + strlen(c->host) + 128;
    for (int i = 0; i < nheaders; i++)
        cap += strlen(headers[i].name) + strlen(headers[i].value) + 4;
    char *head = malloc(cap);
    if (!head) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = (size_t)snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", method, path,
                                c->host, c->port);
    for (int i = 0; i < nheaders; i++)
        n += (size_t)snprintf(head + n, cap - n, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (body && !has_header(headers, nheaders, "Content-Length") &&
        !has_header(headers, nheaders, "Transfer-Encoding"))
        n += (size_t)snprintf(head + n, cap - n, "Content-Length: %zu\r\n", len);
    n += (size_t)snprintf(head + n, cap - n, "\r\n");
    int rc = send_all(c, head, n, NULL, err, errlen);
    free(head);
    if (rc == 0 && body && len > 0)
        rc = send_all(c, body, len, early, err, errlen);
    return rc;
}

/* Reads more bytes into the connection's buffer. Returns the number read, 0 at the end of the
 * stream, or -1 with 'err' and errno (ETIMEDOUT, ECONNRESET, ...). */
static ssize_t fill(http_conn *c, int64_t deadline, char *err, size_t errlen)
{
    if (c->rcap - c->rlen < READ_SIZE + 1) {
        size_t cap = c->rcap ? c->rcap * 2 : READ_SIZE * 2;
        char *p = realloc(c->rbuf, cap);
        if (!p) {
            cdr_errf(err, errlen, "out of memory");
            return -1;
        }
        c->rbuf = p;
        c->rcap = cap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen - 1, 0);
        if (n >= 0) {
            c->rlen += (size_t)n;
            c->rbuf[c->rlen] = '\0';
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            cdr_errf(err, errlen, "recv: %s", strerror(e));
            errno = e;
            return -1;
        }
        int ev = wait_fd(c->fd, POLLIN, deadline);
        if (ev == 0) {
            cdr_errf(err, errlen, "no answer within %d ms", c->timeout_ms);
            errno = ETIMEDOUT;
            return -1;
        }
        if (ev < 0) {
            int e = errno;
            cdr_errf(err, errlen, "poll: %s", strerror(e));
            errno = e;
            return -1;
        }
    }
}

/* Makes sure the buffer holds at least 'n' bytes. Returns 0, or -1 with 'err'. */
static int need(http_conn *c, size_t n, int64_t deadline, char *err, size_t errlen)
{
    while (c->rlen < n) {
        ssize_t got = fill(c, deadline, err, errlen);
        if (got < 0)
            return -1;
        if (got == 0) {
            cdr_errf(err, errlen, "connection closed in the middle of a response");
            return -1;
        }
    }
    return 0;
}

/* Removes the first 'n' bytes of the buffer. */
static void consume(http_conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
    c->rbuf[c->rlen] = '\0';
}

/* Waits for a whole line in the buffer. Returns its length with the "\r\n" (or "\n"), or -1. */
static ssize_t need_line(http_conn *c, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        char *nl = c->rbuf ? memchr(c->rbuf, '\n', c->rlen) : NULL;
        if (nl)
            return nl - c->rbuf + 1;
        if (c->rlen > HEAD_MAX) {
            cdr_errf(err, errlen, "line longer than %d bytes", HEAD_MAX);
            return -1;
        }
        if (need(c, c->rlen + 1, deadline, err, errlen) != 0)
            return -1;
    }
}

/* Appends 'n' bytes of the buffer to the response body and consumes them. */
static int take_body(http_conn *c, http_response *r, size_t n, char *err, size_t errlen)
{
    char *p = realloc(r->body, r->body_len + n + 1);
    if (!p) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    r->body = p;
    memcpy(r->body + r->body_len, c->rbuf, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    consume(c, n);
    return 0;
}

/* True when the comma-separated header value 'v' lists 'token' (case-insensitive). */
static bool has_token(const char *v, const char *token)
{
    size_t len = strlen(token);
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n == len && strncasecmp(v, token, len) == 0)
            return true;
        v += strcspn(v, ",");
    }
    return false;
}

/* Reads the status line and headers into 'r'. Returns 0, -2 when the connection ended (closed
 * or reset) before any byte of an answer, or -1 with 'err' for anything else. */
static int read_head(http_conn *c, http_response *r, int64_t deadline, char *err, size_t errlen)
{
    char *end;
    size_t sep = 4;
    for (;;) {
        end = c->rbuf ? strstr(c->rbuf, "\r\n\r\n") : NULL;
        if (!end && c->rbuf && (end = strstr(c->rbuf, "\n\n")) != NULL)
            sep = 2;
        if (end)
            break;
        if (c->rlen > HEAD_MAX) {
            cdr_errf(err, errlen, "response head longer than %d bytes", HEAD_MAX);
            return -1;
        }
        ssize_t got = fill(c, deadline, err, errlen);
        if (got < 0)
            return c->rlen == 0 && errno == ECONNRESET ? -2 : -1;
        if (got == 0) {
            cdr_errf(err, errlen,
                     c->rlen ? "connection closed in the middle of a response head"
                             : "connection closed without an answer");
            return c->rlen ? -1 : -2;
        }
    }
    size_t head_len = (size_t)(end - c->rbuf);
    r->head = malloc(head_len + 1);
    if (!r->head) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(r->head, c->rbuf, head_len);
    r->head[head_len] = '\0';
    consume(c, head_len + sep);

    char *save = NULL;
    char *line = strtok_r(r->head, "\r\n", &save);
    int minor = 0;
    if (!line || sscanf(line, "HTTP/1.%d %d", &minor, &r->status) != 2 || r->status < 100 ||
        r->status > 999) {
        cdr_errf(err, errlen, "malformed status line: %.80s", line ? line : "");
        return -1;
    }
    r->keep_alive = minor >= 1;
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        if (!colon || r->nheaders == HTTP_MAX_HEADERS)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        v += strspn(v, " \t");
        for (char *t = v + strlen(v); t > v && (t[-1] == ' ' || t[-1] == '\t');)
            *--t = '\0';
        r->names[r->nheaders] = line;
        r->values[r->nheaders] = v;
        r->nheaders++;
    }
    const char *conn = http_header_get(r, "Connection");
    if (has_token(conn, "close"))
        r->keep_alive = false;
    else if (has_token(conn, "keep-alive"))
        r->keep_alive = true;
    return 0;
}

/* Reads a chunked body into 'r'. Returns 0, or -1 with 'err'. */
static int read_chunked(http_conn *c, http_response *r, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        ssize_t ll = need_line(c, deadline, err, errlen);
        if (ll < 0)
            return -1;
        char *endp;
        unsigned long long size = strtoull(c->rbuf, &endp, 16);
        if (endp == c->rbuf) {
            cdr_errf(err, errlen, "malformed chunk size line");
            return -1;
        }
        consume(c, (size_t)ll);
        if (size == 0)
            break;
        if (need(c, (size_t)size + 2, deadline, err, errlen) != 0 ||
            take_body(c, r, (size_t)size, err, errlen) != 0)
            return -1;
        consume(c, c->rbuf[0] == '\r' ? 2 : 1);
    }
    for (;;) { /* trailers, up to the empty line */
        ssize_t ll = need_line(c, deadline, err, errlen);
        if (ll < 0)
            return -1;
        bool empty = c->rbuf[0] == '\r' || c->rbuf[0] == '\n';
        consume(c, (size_t)ll);
        if (empty)
            return 0;
    }
}

/* Reads the body that follows the head of 'r'. Returns 0, or -1 with 'err'. */
static int read_body(http_conn *c, http_response *r, int64_t deadline, char *err, size_t errlen)
{
    const char *te = http_header_get(r, "Transfer-Encoding");
    const char *cl = http_header_get(r, "Content-Length");
    if (has_token(te, "chunked"))
        return read_chunked(c, r, deadline, err, errlen);
    if (cl) {
        char *endp;
        unsigned long long n = strtoull(cl, &endp, 10);
        if (endp == cl) {
            cdr_errf(err, errlen, "malformed Content-Length: %s", cl);
            return -1;
        }
        if (need(c, (size_t)n, deadline, err, errlen) != 0)
            return -1;
        return take_body(c, r, (size_t)n, err, errlen);
    }
    if (r->status == 204 || r->status == 304)
        return 0;
    r->keep_alive = false; /* the body ends with the connection */
    for (;;) {
        ssize_t got = fill(c, deadline, err, errlen);
        if (got < 0)
            return -1;
        if (got == 0)
            return take_body(c, r, c->rlen, err, errlen);
    }
}

/* http_read_response(), also telling in '*silent' whether the connection ended before any
 * byte of an answer arrived. */
static int read_response(http_conn *c, http_response *r, bool *silent, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    *silent = false;
    if (c->fd < 0) {
        cdr_errf(err, errlen, "connection is closed");
        return -1;
    }
    int64_t deadline = itest_now_ms() + c->timeout_ms;
    for (;;) {
        int rc = read_head(c, r, deadline, err, errlen);
        if (rc != 0) {
            *silent = rc == -2;
            goto fail;
        }
        if (r->status >= 200)
            break;
        http_response_free(r); /* an interim 100 Continue */
    }
    if (read_body(c, r, deadline, err, errlen) != 0)
        goto fail;
    if (!r->body) {
        r->body = calloc(1, 1);
        if (!r->body) {
            cdr_errf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (!r->keep_alive)
        http_close(c);
    return 0;
fail:
    http_response_free(r);
    http_close(c);
    return -1;
}

int http_read_response(http_conn *c, http_response *r, char *err, size_t errlen)
{
    bool silent;
    return read_response(c, r, &silent, err, errlen);
}

/* True when the server has closed an idle keep-alive connection (end of stream or reset). */
static bool closed_by_peer(http_conn *c)
{
    if (c->rlen > 0)
        return false;
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

int http_request(http_conn *c, const char *method, const char *path, const http_header *headers,
                 int nheaders, const void *body, size_t len, http_response *r, char *err,
                 size_t errlen)
{
    bool idempotent = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    memset(r, 0, sizeof(*r));
    if (c->fd >= 0 && closed_by_peer(c))
        http_close(c);
    for (int attempt = 0;; attempt++) {
        bool reused = c->fd >= 0, silent = false;
        if (!reused) {
            char host[sizeof(c->host)];
            snprintf(host, sizeof(host), "%s", c->host);
            if (http_connect(c, host, c->port, c->timeout_ms, err, errlen) != 0)
                return -1;
        }
        char send_err[256] = "";
        bool early = false;
        int sent = http_send(c, method, path, headers, nheaders, body, len, &early, send_err,
                             sizeof(send_err));
        /* Even when sending failed (the server refused the body and closed), its answer may
         * be waiting: it is what the caller wants to see. */
        if (read_response(c, r, &silent, err, errlen) == 0)
            return 0;
        /* A keep-alive connection the server closed just as the request went out: the
         * server never saw it, and an idempotent request may be sent again. */
        if (reused && silent && idempotent && attempt == 0)
            continue;
        if (sent != 0)
            cdr_errf(err, errlen, "%s", send_err);
        return -1;
    }
}

int http_wait_closed(http_conn *c, char *err, size_t errlen)
{
    if (c->fd < 0)
        return 1;
    int64_t deadline = itest_now_ms() + c->timeout_ms;
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return 1;
        if (n > 0 || errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            cdr_errf(err, errlen, "recv: %s", strerror(errno));
            return -1;
        }
        int ev = wait_fd(c->fd, POLLIN, deadline);
        if (ev == 0)
            return 0;
        if (ev < 0) {
            cdr_errf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

const char *http_header_get(const http_response *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

void http_response_free(http_response *r)
{
    if (!r)
        return;
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int http_connect_many(http_conn *conns, int n, const char *host, int port, int timeout_ms,
                      char *err, size_t errlen)
{
    for (int i = 0; i < n; i++)
        conn_init(&conns[i], host, port, timeout_ms);
    struct addrinfo *ai = resolve(host, port, err, errlen);
    if (!ai)
        return -1;
    struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
    int failed = 0, first_errno = 0, pending = 0;
    if (!pfd) {
        freeaddrinfo(ai);
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        conns[i].fd = start_connect(ai);
        if (conns[i].fd < 0) {
            failed++;
            first_errno = first_errno ? first_errno : errno;
        }
        pfd[i].fd = conns[i].fd;
        pfd[i].events = POLLOUT;
        pending += conns[i].fd >= 0;
    }
    freeaddrinfo(ai);

    int64_t deadline = itest_now_ms() + timeout_ms;
    while (pending > 0 && failed == 0) {
        int64_t left = deadline - itest_now_ms();
        if (left <= 0) {
            failed += pending;
            first_errno = first_errno ? first_errno : ETIMEDOUT;
            break;
        }
        int r = poll(pfd, (nfds_t)n, (int)left);
        if (r < 0 && errno != EINTR) {
            failed += pending;
            first_errno = first_errno ? first_errno : errno;
            break;
        }
        for (int i = 0; r > 0 && i < n; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            int e = connect_result(pfd[i].fd);
            if (e != 0) {
                failed++;
                first_errno = first_errno ? first_errno : e;
            }
            pfd[i].fd = -1; /* poll skips it from now on */
            pending--;
        }
    }
    free(pfd);
    if (failed == 0)
        return 0;
    cdr_errf(err, errlen, "%d of %d connections to %s:%d failed, first: %s", failed, n, host, port,
             strerror(first_errno));
    for (int i = 0; i < n; i++)
        http_close(&conns[i]);
    return -1;
}
