/* http_client.h - a small blocking HTTP/1.1 client for the integration tests: one TCP
 * connection per http_conn, keep-alive reuse, Content-Length and chunked bodies, timeouts. */
#ifndef CDR_HTTP_CLIENT_H
#define CDR_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 64

/* One request header; both strings are the caller's. */
typedef struct http_header {
    const char *name;
    const char *value;
} http_header;

/* A parsed response. Every string is owned by the response; free it with
 * http_response_free(). 'body' is NUL-terminated after 'body_len' bytes (it may also hold NUL
 * bytes of its own). */
typedef struct http_response {
    int status;
    char *head; /* the status line and header lines, names and values split in place */
    const char *names[HTTP_MAX_HEADERS];
    const char *values[HTTP_MAX_HEADERS];
    int nheaders;
    char *body;
    size_t body_len;
    bool keep_alive; /* false when the server said Connection: close or spoke HTTP/1.0 */
} http_response;

/* One client connection. Zero-initialise, or fill with http_connect(). 'fd' is -1 when the
 * connection is closed. Bytes the server sent past one response stay in 'rbuf' for the next. */
typedef struct http_conn {
    int fd;
    char host[256];
    int port;
    int timeout_ms; /* bound on connecting and on each send or read call */
    char *rbuf;
    size_t rlen, rcap;
} http_conn;

/* Connects to 'host':'port' (a name or a numeric address) within 'timeout_ms'. The socket is
 * non-blocking underneath; every call below waits at most the connection's timeout. Returns 0,
 * or -1 with the reason in 'err' (refused, timed out, unknown host). */
int http_connect(http_conn *c, const char *host, int port, int timeout_ms, char *err,
                 size_t errlen);

/* Closes the socket and frees the read buffer; 'c' may then be connected again. Does nothing
 * for a closed connection. */
void http_close(http_conn *c);

/* Sends raw bytes as they are (to build malformed or partial requests). Returns 0, or -1 with
 * the reason in 'err'. */
int http_send_raw(http_conn *c, const void *data, size_t len, char *err, size_t errlen);

/* Sends a request: 'method' 'path' HTTP/1.1, Host, the 'nheaders' headers of 'headers', and
 * with a non-NULL 'body' a Content-Length header (unless 'headers' carries Content-Length or
 * Transfer-Encoding) and the 'len' bytes of 'body'. When the server answers before the body is
 * all sent (an early 413, say), sending stops there and '*early' (if not NULL) is set: the
 * answer is then read with http_read_response(). Returns 0, or -1 with the reason in 'err'
 * (the connection is unusable then). */
int http_send(http_conn *c, const char *method, const char *path, const http_header *headers,
              int nheaders, const void *body, size_t len, bool *early, char *err, size_t errlen);

/* Reads one response (interim 1xx responses are skipped) into 'r'. The body is framed by
 * Content-Length, by chunked transfer coding, or by the end of the connection. When the server
 * does not keep the connection alive, it is closed after the response. Returns 0, or -1 with
 * the reason in 'err' (timeout, connection closed before a whole response, malformed
 * response); 'r' holds nothing to free then. */
int http_read_response(http_conn *c, http_response *r, char *err, size_t errlen);

/* http_send() then http_read_response(). A closed connection ('fd' -1), or a keep-alive one
 * the server has closed while it was idle, is connected again to its host and port first. A
 * GET or HEAD whose reused connection ends without any answer (the server closed it just as
 * the request went out) is sent once more on a new connection, as browsers do. When sending
 * fails, an answer the server sent before closing is still read and returned. Returns 0, or -1
 * with the reason in 'err'. */
int http_request(http_conn *c, const char *method, const char *path, const http_header *headers,
                 int nheaders, const void *body, size_t len, http_response *r, char *err,
                 size_t errlen);

/* Waits up to the connection's timeout for the server to close it (end of stream or reset),
 * discarding anything it sends before. Returns 1 when it closed, 0 on timeout, -1 with 'err'
 * on another error. */
int http_wait_closed(http_conn *c, char *err, size_t errlen);

/* The value of header 'name' (case-insensitive; the first one when repeated), or NULL. */
const char *http_header_get(const http_response *r, const char *name);

void http_response_free(http_response *r);

/* Opens 'n' connections to 'host':'port' at once (non-blocking connects, then one poll loop
 * until all are established, at most 'timeout_ms' in all) into 'conns', which holds 'n'
 * entries. Returns 0 with every connection open, or -1 with 'err' saying how many failed and
 * why; then none is left open. */
int http_connect_many(http_conn *conns, int n, const char *host, int port, int timeout_ms,
                      char *err, size_t errlen);

#endif
