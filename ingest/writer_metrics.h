/* writer_metrics.h - cdr-writer's metrics and its small HTTP listener (/healthz, /readyz,
 * /metrics) on a thread and event loop of its own. */
#ifndef CDR_WRITER_METRICS_H
#define CDR_WRITER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* The counters of docs/writer.md, and a few more for operators. */
typedef enum wm_counter {
    WM_BATCHES,        /* cdr_writer_batches_total: batches committed and acknowledged */
    WM_INSERTED,       /* cdr_writer_rows_inserted_total: CDRs new to voip_cdr */
    WM_DUPLICATES,     /* cdr_writer_duplicates_total: CDRs voip_cdr already held */
    WM_REJECTS_INGEST, /* cdr_writer_rejects_total{source="ingest"}: ingest's rejects stored */
    WM_REJECTS_WRITER, /* cdr_writer_rejects_total{source="writer"}: rows PostgreSQL refused */
    WM_DEAD_LETTERS,   /* cdr_writer_dead_letters_total: entries and rows moved to <key>:dead */
    WM_PG_FAILURES,    /* cdr_writer_pg_failures_total: batch attempts PostgreSQL failed */
    WM_REDIS_FAILURES, /* cdr_writer_redis_failures_total: Redis commands that failed */
    WM_N_COUNTERS
} wm_counter;

typedef struct writer_metrics writer_metrics;

/* Registers the metrics, binds 'listen' (host:port) and starts the listener's thread. Returns
 * the object, or NULL with 'err' (the address does not parse or cannot be bound, memory). */
writer_metrics *writer_metrics_start(const char *listen, char *err, size_t errlen);

/* Stops the listener's thread and frees everything. Accepts NULL. */
void writer_metrics_stop(writer_metrics *wm);

/* The updates below are for the writer's main thread only; the listener reads them. */
void writer_metrics_add(writer_metrics *wm, wm_counter c, uint64_t by);
void writer_metrics_batch_seconds(writer_metrics *wm, double seconds);
/* The stream's lag: entries not yet delivered to the group, and the age of the oldest; -1 for
 * both while unknown. */
void writer_metrics_lag(writer_metrics *wm, long long entries, double seconds);
/* Whether Redis and PostgreSQL are connected: /readyz answers 200 only when both are. */
void writer_metrics_ready(writer_metrics *wm, bool redis, bool pg);

uint64_t writer_metrics_value(const writer_metrics *wm, wm_counter c);

#endif
