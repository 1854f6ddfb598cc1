/* http_request.h - the one request the load generator sends again and again: where it goes (the
 * URL split and resolved) and its bytes, head and body. */
#ifndef CDR_BENCH_HTTP_REQUEST_H
#define CDR_BENCH_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct http_target {
    char host[256];
    char port[16];
    const char *path; /* points into the URL it was parsed from */
    struct sockaddr_storage addr;
    socklen_t addrlen;
} http_target;

/* Splits 'url' (http://host[:port][/path], host a name, an IPv4 or a [IPv6] address) into 't'
 * and resolves the host (the first address wins). Returns 0, or -1 with 'err' filled when the
 * URL is not of that form or the host does not resolve. */
int http_target_parse(http_target *t, const char *url, char *err, size_t errlen);

/* Builds the request 'method' 't'->path HTTP/1.1 with a Host header (unless 'headers' has one),
 * the 'n_headers' 'headers' ("Name: value" each) and, when 'body' is not NULL or the method is
 * POST or PUT, a Content-Length header and the 'body_len' bytes of 'body'. Returns a malloc'd
 * buffer the caller frees, its length in '*len'; or NULL with 'err' filled when a header is
 * malformed or sets the body's length itself. */
char *http_request_build(const http_target *t, const char *method, const char *const *headers,
                         int n_headers, const char *body, size_t body_len, size_t *len, char *err,
                         size_t errlen);

/* Reads all of file 'path' into a malloc'd buffer the caller frees, its length in '*len'.
 * Returns NULL with 'err' filled when it cannot be read. */
char *http_read_file(const char *path, size_t *len, char *err, size_t errlen);

#endif
