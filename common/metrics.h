/* metrics.h - counters, gauges and histograms sharded per thread, rendered as Prometheus text. */
#ifndef CDR_METRICS_H
#define CDR_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "compiler.h"

/* A registry. Metrics are registered at start-up (before threads run); afterwards each thread
 * updates its own shard without locks or shared cache lines, and a render sums the shards with
 * relaxed atomic loads, so a render may run on any thread at any time. */
typedef struct metrics metrics;

metrics *metrics_create(int n_shards);
void metrics_destroy(metrics *m);

/* Registers a counter. 'name' is the Prometheus family ("cdr_ingest_requests_total"),
 * 'labels' NULL or the label set without braces ("status=\"202\""): a family registered
 * several times with different labels renders as one family. Returns an id >= 0, or -1 when
 * memory ran out or the registry is full. */
int metrics_counter(metrics *m, const char *name, const char *help,
                    const char *labels) CDR_MUST_CHECK;

/* Registers a gauge whose value 'fn(arg)' is read at render time (from the rendering thread). */
int metrics_gauge_fn(metrics *m, const char *name, const char *help, double (*fn)(void *arg),
                     void *arg) CDR_MUST_CHECK;

/* Registers a histogram with 'n' increasing upper bounds (seconds, say); +Inf is implicit. */
int metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                      const double *bounds, int n) CDR_MUST_CHECK;

/* Adds 'by' to counter 'id' in 'shard' (the calling thread's index, 0..n_shards-1). */
void metrics_add(metrics *m, int shard, int id, uint64_t by);
/* Records one observation of 'v' in histogram 'id'. */
void metrics_observe(metrics *m, int shard, int id, double v);

/* Appends every metric in Prometheus text exposition format 0.0.4. Returns 0 or -1. */
int metrics_render(const metrics *m, cdr_buf *out) CDR_MUST_CHECK;

/* Sum of counter 'id' over the shards (for tests and logs). */
uint64_t metrics_counter_value(const metrics *m, int id);

#endif
