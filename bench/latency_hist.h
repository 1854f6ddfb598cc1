/* latency_hist.h - the load generator's latency histogram: log-linear buckets in microseconds
 * (exact below 128 us, then at most 1/64 wide), mergeable across threads. */
#ifndef CDR_BENCH_LATENCY_HIST_H
#define CDR_BENCH_LATENCY_HIST_H

#include <stdint.h>

#define LAT_HIST_SUB_BITS 7
#define LAT_HIST_SUB      (1 << LAT_HIST_SUB_BITS)
#define LAT_HIST_HALF     (LAT_HIST_SUB / 2)
#define LAT_HIST_MSB_MAX  41 /* values up to 2^42 us (about 50 days); larger ones are clamped */
#define LAT_HIST_BUCKETS  (LAT_HIST_SUB + (LAT_HIST_MSB_MAX - LAT_HIST_SUB_BITS + 1) * LAT_HIST_HALF)

typedef struct lat_hist {
    uint64_t count;
    uint64_t max_us; /* exact */
    double sum_us;
    uint64_t buckets[LAT_HIST_BUCKETS];
} lat_hist;

/* Adds one latency of 'us' microseconds to 'h' (zeroed before first use). */
void lat_hist_record(lat_hist *h, uint64_t us);

/* Adds every value recorded in 'from' to 'into'. */
void lat_hist_merge(lat_hist *into, const lat_hist *from);

/* The value at percentile 'p' (0..100] in microseconds: the upper edge of its bucket, never
 * above the exact maximum, so that percentiles err on the slow side; 0 when 'h' is empty. */
uint64_t lat_hist_percentile(const lat_hist *h, double p);

/* The mean in microseconds; 0 when 'h' is empty. */
double lat_hist_mean(const lat_hist *h);

#endif
