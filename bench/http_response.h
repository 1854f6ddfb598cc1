/* http_response.h - the load generator's incremental HTTP/1.x response parser: the status, and
 * where the body ends (Content-Length, chunked, or the server's close). Bodies are skipped. */
#ifndef CDR_BENCH_HTTP_RESPONSE_H
#define CDR_BENCH_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_RESP_HEAD_MAX 32768 /* a response head longer than this is an error */
#define HTTP_RESP_LINE_MAX 1024  /* chunk-size and trailer lines likewise */

typedef enum http_resp_state {
    HTTP_RESP_S_HEAD,
    HTTP_RESP_S_BODY,
    HTTP_RESP_S_CHUNK_SIZE,
    HTTP_RESP_S_CHUNK_DATA,
    HTTP_RESP_S_CHUNK_END,
    HTTP_RESP_S_TRAILER,
    HTTP_RESP_S_UNTIL_CLOSE,
} http_resp_state;

typedef struct http_resp {
    http_resp_state state;
    bool no_body;       /* the request was HEAD: no response to it has a body */
    int status;         /* of the response being read, once its head is parsed */
    bool close_after;   /* the server closes the connection after this response */
    uint64_t remaining; /* body or chunk bytes still to skip */
} http_resp;

typedef enum http_resp_result {
    HTTP_RESP_MORE,  /* everything usable was consumed: more bytes are needed */
    HTTP_RESP_DONE,  /* a response is complete; the bytes after it were not consumed */
    HTTP_RESP_ERROR, /* not an HTTP/1.x response, or a head or line too long */
} http_resp_result;

/* Readies 'r' for the response to a new request; 'no_body' when that request is HEAD. */
void http_resp_start(http_resp *r, bool no_body);

/* Parses what it can of the 'len' bytes at 'p', and sets '*used' to how many it consumed. On
 * HTTP_RESP_MORE the bytes not consumed are the start of a head or line the caller must keep and
 * present again, followed by more; on HTTP_RESP_DONE 'r' holds the status and close_after. */
http_resp_result http_resp_parse(http_resp *r, const char *p, size_t len, size_t *used);

/* Whether the server's closing the connection completes the response being read (one whose
 * body has no length and runs until the close). */
bool http_resp_done_at_eof(const http_resp *r);

#endif
