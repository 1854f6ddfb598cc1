/* http_reply.c - JSON replies, the error shape and the reason phrases of both servers. */
#include "http_reply.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#define JSON_TYPE "application/json"

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Unknown";
}

/* Sends what the output buffer holds with 'status' and, when not NULL, 'content_type'. When
 * the header cannot be added (memory ran out) the body goes too and a bare 500 is sent. This
 * is the one place a request is answered. */
static void finish(struct evhttp_request *req, int status, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    evhttp_remove_header(h, "Content-Type");
    if (content_type && evhttp_add_header(h, "Content-Type", content_type) != 0) {
        evbuffer_drain(out, evbuffer_get_length(out));
        status = 500;
    }
    evhttp_send_reply(req, status, http_reason(status), NULL);
}

static int dump_cb(const char *data, size_t size, void *arg)
{
    return evbuffer_add(arg, data, size) == 0 ? 0 : -1;
}

/* Serialises 'j' (borrowed) straight into the request's output buffer. Returns 0, or -1 with
 * the buffer emptied again. Reals with 15 significant digits, the most a double holds for any
 * decimal: a MOS stored as 4.3 is written 4.3, not 4.2999999999999998. */
static int dump_json(struct evhttp_request *req, const json_t *j)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    size_t before = evbuffer_get_length(out);

    if (json_dump_callback(j, dump_cb, out,
                           JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) == 0)
        return 0;
    evbuffer_drain(out, evbuffer_get_length(out) - before);
    return -1;
}

void http_reply_json(struct evhttp_request *req, int status, json_t *body)
{
    if (!body) {
        finish(req, status, NULL);
        return;
    }
    int rc = dump_json(req, body);
    json_decref(body);
    if (rc != 0) {
        http_reply_error(req, 500, "reply could not be serialised", NULL, 0);
        return;
    }
    finish(req, status, JSON_TYPE);
}

/* Builds the error object; steals 'details' (NULL: an empty array). Returns NULL when memory
 * ran out. A message that is not valid UTF-8 is replaced by the reason phrase. */
static json_t *error_body(int status, const char *message, json_t *details)
{
    json_t *msg = json_string(message ? message : http_reason(status));
    if (!msg)
        msg = json_string(http_reason(status));

    /* json_object_set_new() takes its value even when it fails (or the object is NULL), so
     * every path below releases everything exactly once. */
    json_t *err = json_object();
    int rc = 0;
    rc |= json_object_set_new(err, "status", json_integer(status));
    rc |= json_object_set_new(err, "message", msg);
    rc |= json_object_set_new(err, "details", details ? details : json_array());
    json_t *root = json_object();
    rc |= json_object_set_new(root, "error", err);
    if (rc != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

void http_reply_error(struct evhttp_request *req, int status, const char *message, json_t *details,
                      int retry_after_s)
{
    json_t *body = error_body(status, message, details);

    if (!body || dump_json(req, body) != 0) {
        /* Keep the status (a 503 must stay retryable) with a body that needs no allocation. */
        char fixed[128];
        int n = snprintf(fixed, sizeof(fixed),
                         "{\"error\":{\"status\":%d,\"message\":\"%s\",\"details\":[]}}", status,
                         http_reason(status));
        if (evbuffer_add(evhttp_request_get_output_buffer(req), fixed, (size_t)n) != 0)
            status = 500;
    }
    json_decref(body);

    if (retry_after_s > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", retry_after_s);
        /* Best effort: without the header a client falls back to its own back-off. */
        (void)evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
    }
    finish(req, status, JSON_TYPE);
}

void http_reply_bytes(struct evhttp_request *req, int status, const char *content_type,
                      const char *data, size_t len)
{
    if (len > 0 && evbuffer_add(evhttp_request_get_output_buffer(req), data, len) != 0) {
        http_reply_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    finish(req, status, content_type);
}
