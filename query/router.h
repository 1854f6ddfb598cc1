/* router.h - cdr-query's HTTP routes: authentication, rate limits, parameters, one PostgreSQL
 * job per request, and the answers. */
#ifndef CDR_QUERY_ROUTER_H
#define CDR_QUERY_ROUTER_H

#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>

#include "auth.h"
#include "metrics.h"
#include "pg_pool.h"
#include "query_config.h"

typedef struct router router;

/* Registers its metrics in 'm' (shard 0: cdr-query runs one loop thread) and becomes the
 * generic callback of 'http'. Everything is borrowed and must outlive the router. Returns
 * NULL with 'err' when memory ran out. */
router *router_create(struct event_base *base, struct evhttp *http, pg_pool *pool,
                      const auth_verifier *verifier, const query_config *conf, metrics *m,
                      char *err, size_t errlen);

/* Requests received and not yet answered (for the drain on SIGTERM). */
int router_in_flight(const router *r);

/* Frees the router; every request must be answered by then (destroy the pool first). */
void router_destroy(router *r);

#endif
