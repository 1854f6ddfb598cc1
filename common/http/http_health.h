/* http_health.h - the /healthz, /readyz and /metrics routes every server has. */
#ifndef CDR_HTTP_HEALTH_H
#define CDR_HTTP_HEALTH_H

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

typedef struct http_health_ops {
    /* Whether the program can do its work now (its store is reachable). On false, 'why' says
     * what is missing. Called on the request's thread. May be NULL: always ready. */
    bool (*ready)(void *arg, char *why, size_t whylen);
    void *arg;
    const metrics *metrics; /* rendered at /metrics; may be NULL */
} http_health_ops;

/* Answers GET /healthz (200 "ok": the process runs), GET /readyz (200, or 503 with the reason)
 * and GET /metrics (Prometheus text) and returns true; returns false without touching 'req'
 * for any other path. Another method on those paths gets 405. */
bool http_health_route(struct evhttp_request *req, const char *path, const http_health_ops *ops);

#endif
