/* http_health.c - the /healthz, /readyz and /metrics routes every server has. */
#include "http_health.h"

#include <string.h>

#include "buf.h"
#include "http_reply.h"

#define TEXT_TYPE    "text/plain; charset=utf-8"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void reply_ready(struct evhttp_request *req, const http_health_ops *ops)
{
    char why[256] = "";

    if (ops && ops->ready && !ops->ready(ops->arg, why, sizeof(why))) {
        /* One second is enough for a balancer to try again once the store is back. */
        http_reply_error(req, 503, why[0] ? why : "not ready", NULL, 1);
        return;
    }
    http_reply_bytes(req, 200, TEXT_TYPE, "ready\n", 6);
}

static void reply_metrics(struct evhttp_request *req, const http_health_ops *ops)
{
    cdr_buf page;

    cdr_buf_init(&page, 0);
    if (ops && ops->metrics && metrics_render(ops->metrics, &page) != 0) {
        cdr_buf_free(&page);
        http_reply_error(req, 500, "metrics could not be rendered", NULL, 0);
        return;
    }
    http_reply_bytes(req, 200, METRICS_TYPE, page.data, page.len);
    cdr_buf_free(&page);
}

bool http_health_route(struct evhttp_request *req, const char *path, const http_health_ops *ops)
{
    enum { HEALTHZ, READYZ, METRICS } route;

    if (!path)
        return false;
    if (strcmp(path, "/healthz") == 0)
        route = HEALTHZ;
    else if (strcmp(path, "/readyz") == 0)
        route = READYZ;
    else if (strcmp(path, "/metrics") == 0)
        route = METRICS;
    else
        return false;

    /* HEAD is GET without the body (evhttp leaves the body out by itself). */
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        (void)evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        http_reply_error(req, 405, "method not allowed", NULL, 0);
        return true;
    }

    switch (route) {
    case HEALTHZ:
        http_reply_bytes(req, 200, TEXT_TYPE, "ok\n", 3);
        break;
    case READYZ:
        reply_ready(req, ops);
        break;
    case METRICS:
        reply_metrics(req, ops);
        break;
    }
    return true;
}
