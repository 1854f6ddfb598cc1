/* stream_read.h - the writer's side of the Redis Stream: the consumer group, batches of entries
 * (its own pending ones, claimed ones, new ones), acknowledgement, dead letters, lag. */
#ifndef CDR_STREAM_READ_H
#define CDR_STREAM_READ_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"
#include "redis_url.h"
#include "writer_batch.h"

typedef struct stream_read_config {
    redis_target target;
    const char *key;      /* the stream; dead letters go to "<key>:dead" (copied) */
    const char *group;    /* copied */
    const char *consumer; /* copied */
    int flush_ms;         /* longest wait for a batch to fill */
    int claim_idle_ms;    /* entries pending this long are claimed, every claim_idle_ms / 2 */
} stream_read_config;

/* One synchronous hiredis connection, used by one thread. Every command is bounded by a timeout
 * (connecting: 2 s; a command: flush_ms + 5 s, since XREADGROUP blocks up to flush_ms). A lost
 * connection, or an error answer, closes it: stream_read_connect() makes a new one. Outages are
 * logged once, recoveries once. */
typedef struct stream_read stream_read;

/* Returns the reader, not connected yet, or NULL when memory ran out. */
stream_read *stream_read_create(const stream_read_config *cfg);
void stream_read_destroy(stream_read *sr);

/* Connects unless connected: AUTH and SELECT as the target says, then XGROUP CREATE key group 0
 * MKSTREAM (a group that exists is fine). Returns 0, or -1 with 'err' saying why (the caller
 * waits and tries again). */
int stream_read_connect(stream_read *sr, char *err, size_t errlen) CDR_MUST_CHECK;

bool stream_read_connected(const stream_read *sr);

/* "host:port" or the socket path, and " db N": where Redis is, for log lines. */
const char *stream_read_where(const stream_read *sr);

typedef enum stream_read_result {
    SR_OK = 0,   /* the batch is filled, possibly empty (nothing came within flush_ms) */
    SR_LOST = 1, /* the connection failed or Redis answered an error; 'err' says which. The
                    entries read before are in the batch, to be written and acknowledged */
    SR_NO_MEMORY = 2,
} stream_read_result;

/* Fills the empty batch 'b' with up to 'max_rows' rows: first this consumer's own pending
 * entries (left by an earlier run under the same name, or by a read whose answer was lost with
 * a connection), when claim_idle_ms / 2 has passed the
 * entries other consumers left idle for claim_idle_ms (XAUTOCLAIM), then new ones (XREADGROUP
 * >), until 'max_rows' rows are read or flush_ms has passed since the first entry; at once when
 * '*stop' becomes true. An entry that cannot be decoded is moved to the dead-letter stream with
 * the reason and acknowledged, and counted in '*dead'; a pending entry whose content was deleted
 * is acknowledged. */
stream_read_result stream_read_fill(stream_read *sr, writer_batch *b, long long max_rows,
                                    const volatile sig_atomic_t *stop, int *dead, char *err,
                                    size_t errlen) CDR_MUST_CHECK;

/* Acknowledges and deletes every entry of 'b' (XACK, XDEL), after adding its lost rows to the
 * dead-letter stream, all in one MULTI/EXEC. Returns 0, or -1 with 'err' (the caller reconnects
 * and tries again: the batch is committed, acknowledging it twice is harmless). */
int stream_read_ack(stream_read *sr, const writer_batch *b, char *err,
                    size_t errlen) CDR_MUST_CHECK;

/* Resets the idle time of the entries of 'b' (XCLAIM ... JUSTID to this consumer), so that a
 * batch kept long by an outage is not claimed by another writer meanwhile. Returns 0 or -1. */
int stream_read_touch(stream_read *sr, const writer_batch *b, char *err,
                      size_t errlen) CDR_MUST_CHECK;

/* The entries not yet delivered to the group and the age in seconds of the oldest of them.
 * Returns 0, or -1 with 'err'. */
int stream_read_lag(stream_read *sr, long long *entries, double *seconds, char *err,
                    size_t errlen) CDR_MUST_CHECK;

/* Removes this consumer from the group when no entry is pending for it (a clean stop), so that
 * consumer names of past runs do not pile up. Failures are only logged. */
void stream_read_leave(stream_read *sr);

#endif
