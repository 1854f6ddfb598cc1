/* front.h - one ingest thread's HTTP server: routes and the lifecycle of a CDR post. */
#ifndef CDR_INGEST_FRONT_H
#define CDR_INGEST_FRONT_H

#include <event2/event.h>
#include <stddef.h>

#include "auth.h"
#include "ingest_config.h"
#include "metrics.h"
#include "redis_url.h"

/* What every thread's front shares, read-only once the threads run. */
typedef struct ingest_shared {
    const ingest_config *conf;
    const auth_verifier *verifier;
    redis_target redis;
    metrics *metrics;
    int m_status[600]; /* counter id per HTTP status, -1 when not registered */
    int m_status_other;
    int m_accepted;
    int m_rejected;
    int m_redis_rtt;
} ingest_shared;

typedef struct ingest_front ingest_front;

/* Creates a thread's server on 'base': an evhttp accepting on the listening socket 'listen_fd'
 * (taken over: closed by destroy), and a Redis connection. 'shard' is the thread's metrics
 * shard. Returns NULL with the reason in 'err'. */
ingest_front *ingest_front_create(struct event_base *base, int listen_fd, int shard,
                                  const ingest_shared *shared, char *err, size_t errlen);

/* Runs the front's event loop on the calling thread until the loop is told to exit. Returns
 * event_base_dispatch's result. */
int ingest_front_run(ingest_front *f);

/* Stops accepting new connections; requests in flight go on. */
void ingest_front_stop_accepting(ingest_front *f);

/* Requests waiting for Redis' answer. */
int ingest_front_in_flight(const ingest_front *f);

/* The stream length this thread saw at its last poll, or -1. */
long long ingest_front_backlog(const ingest_front *f);

/* Closes the Redis connection (answering what is still in flight with 503), then the server. */
void ingest_front_destroy(ingest_front *f);

#endif
