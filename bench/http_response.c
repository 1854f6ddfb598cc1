/* http_response.c - the load generator's incremental HTTP/1.x response parser. */
#include "http_response.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_resp_start(http_resp *r, bool no_body)
{
    memset(r, 0, sizeof(*r));
    r->state = HTTP_RESP_S_HEAD;
    r->no_body = no_body;
}

bool http_resp_done_at_eof(const http_resp *r)
{
    return r->state == HTTP_RESP_S_UNTIL_CLOSE;
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

/* Parses the head at 'p' ('len' bytes, ending with the empty line): the status and how the body
 * is delimited, which sets the next state. Returns false when it is not an HTTP/1.x response. */
static bool parse_head(http_resp *r, const char *p, size_t len)
{
    if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[9]) ||
        !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]))
        return false;
    bool http10 = p[7] == '0', keep_alive = false, chunked = false, has_length = false;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    r->close_after = false;
    r->remaining = 0;
    const char *end = p + len, *line = memchr(p, '\n', len);
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
                r->remaining = strtoull(num, NULL, 10);
                has_length = true;
            } else if (name == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
                chunked = contains_ci(v, vlen, "chunked");
            } else if (name == 10 && strncasecmp(line, "connection", 10) == 0) {
                r->close_after = r->close_after || contains_ci(v, vlen, "close");
                keep_alive = keep_alive || contains_ci(v, vlen, "keep-alive");
            }
        }
        line = eol;
    }
    if (http10 && !keep_alive)
        r->close_after = true;
    if (r->status < 200) {
        r->state = HTTP_RESP_S_HEAD; /* an interim answer (100 Continue): the real one follows */
    } else if (r->status == 204 || r->status == 304 || r->no_body) {
        r->remaining = 0;
        r->state = HTTP_RESP_S_BODY;
    } else if (chunked) {
        r->state = HTTP_RESP_S_CHUNK_SIZE;
    } else if (has_length) {
        r->state = HTTP_RESP_S_BODY;
    } else {
        r->state = HTTP_RESP_S_UNTIL_CLOSE;
        r->close_after = true;
    }
    return true;
}

http_resp_result http_resp_parse(http_resp *r, const char *buf, size_t len, size_t *used)
{
    size_t pos = 0;
    http_resp_result res = HTTP_RESP_MORE;
    for (;;) {
        const char *p = buf + pos, *eol;
        size_t avail = len - pos;
        switch (r->state) {
        case HTTP_RESP_S_HEAD:
            eol = memmem(p, avail, "\r\n\r\n", 4);
            if (!eol) {
                res = avail >= HTTP_RESP_HEAD_MAX ? HTTP_RESP_ERROR : HTTP_RESP_MORE;
                goto done;
            }
            if (!parse_head(r, p, (size_t)(eol - p) + 4)) {
                res = HTTP_RESP_ERROR;
                goto done;
            }
            pos += (size_t)(eol - p) + 4;
            if (r->state == HTTP_RESP_S_BODY && r->remaining == 0) {
                res = HTTP_RESP_DONE;
                goto done;
            }
            break;
        case HTTP_RESP_S_BODY:
        case HTTP_RESP_S_CHUNK_DATA: {
            size_t take = avail < r->remaining ? avail : (size_t)r->remaining;
            pos += take;
            r->remaining -= take;
            if (r->remaining > 0)
                goto done;
            if (r->state == HTTP_RESP_S_BODY) {
                res = HTTP_RESP_DONE;
                goto done;
            }
            r->state = HTTP_RESP_S_CHUNK_END;
            break;
        }
        case HTTP_RESP_S_CHUNK_SIZE:
        case HTTP_RESP_S_TRAILER:
            eol = memmem(p, avail, "\r\n", 2);
            if (!eol) {
                res = avail >= HTTP_RESP_LINE_MAX ? HTTP_RESP_ERROR : HTTP_RESP_MORE;
                goto done;
            }
            pos += (size_t)(eol - p) + 2;
            if (r->state == HTTP_RESP_S_TRAILER) {
                if (eol == p) {
                    res = HTTP_RESP_DONE;
                    goto done;
                }
                break;
            }
            if (!isxdigit((unsigned char)*p)) {
                res = HTTP_RESP_ERROR;
                goto done;
            }
            r->remaining = strtoull(p, NULL, 16); /* stops at the CR or a chunk extension */
            r->state = r->remaining == 0 ? HTTP_RESP_S_TRAILER : HTTP_RESP_S_CHUNK_DATA;
            break;
        case HTTP_RESP_S_CHUNK_END:
            if (avail < 2)
                goto done;
            if (p[0] != '\r' || p[1] != '\n') {
                res = HTTP_RESP_ERROR;
                goto done;
            }
            pos += 2;
            r->state = HTTP_RESP_S_CHUNK_SIZE;
            break;
        case HTTP_RESP_S_UNTIL_CLOSE:
            pos = len;
            goto done;
        }
    }
done:
    *used = pos;
    return res;
}
