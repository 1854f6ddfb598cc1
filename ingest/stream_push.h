/* stream_push.h - one thread's Redis connection: pipelined XADD of stream entries, the backlog
 * watch, reconnection. */
#ifndef CDR_STREAM_PUSH_H
#define CDR_STREAM_PUSH_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "redis_url.h"

typedef struct stream_push_config {
    redis_target target;
    const char *stream_key; /* copied */
    long long max_backlog;  /* entries in the stream past which pushes are refused */
    int backlog_poll_ms;    /* how often XLEN is asked (default 100 when 0) */
    int connect_timeout_ms; /* default 1000 when 0 */
} stream_push_config;

typedef struct stream_push_result {
    bool ok;           /* Redis stored the entry (XADD answered with an id) */
    const char *error; /* when !ok: "redis connection lost", the Redis error text, ... */
    int64_t rtt_us;    /* from the command being queued to its answer */
} stream_push_result;

/* Fires exactly once for every entry stream_push_entry() accepted, on the thread of the
 * stream_push's event_base, never from inside stream_push_entry() itself: with ok when Redis
 * answered with an entry id, with !ok when it answered an error or the connection was lost
 * before an answer (the entry may or may not be in the stream then). 'res' lives only during
 * the call. 'arg' is the caller's, untouched. The callback may call stream_push_entry() again
 * but must not destroy the stream_push. */
typedef void (*stream_push_cb)(const stream_push_result *res, void *arg);

typedef struct stream_push stream_push;

/* Creates the connection owner on 'base' and starts connecting (asynchronously; failures are
 * retried with backoff from 100 ms to 2 s, logged once per outage). Returns NULL only when
 * memory ran out. */
stream_push *stream_push_create(struct event_base *base, const stream_push_config *cfg);

/* Closes the connection. Pending entries' callbacks fire with !ok before it returns. */
void stream_push_destroy(stream_push *sp);

typedef enum stream_push_status {
    PUSH_QUEUED = 0,       /* accepted: 'cb' will fire */
    PUSH_UNAVAILABLE = 1,  /* not connected to Redis now: 'cb' will not fire -> 503 */
    PUSH_BACKLOG_FULL = 2, /* the stream holds max_backlog entries or more -> 503 */
} stream_push_status;

/* Queues XADD <key> * v 1 kind <kind> n <n_rows> enc <enc> rows <payload> on the connection
 * (pipelined behind whatever is in flight; hiredis copies the payload, the caller keeps it).
 * Returns PUSH_QUEUED, or a refusal without queuing anything. */
stream_push_status stream_push_entry(stream_push *sp, const char *kind, unsigned n_rows,
                                     const char *enc, const void *payload, size_t len,
                                     stream_push_cb cb, void *arg) CDR_MUST_CHECK;

/* True while connected (and authenticated, db selected). */
bool stream_push_connected(const stream_push *sp);

/* The stream's length at the last poll, or -1 when not known yet. */
long long stream_push_backlog(const stream_push *sp);

#endif
