/* latency_hist.c - the load generator's log-linear latency histogram. */
#include "latency_hist.h"

#include <math.h>
#include <stddef.h>

/* Values below LAT_HIST_SUB have a bucket each; above, every power of two is split into
 * LAT_HIST_HALF buckets by the LAT_HIST_SUB_BITS - 1 bits below its most significant one. */
static size_t bucket_of(uint64_t v)
{
    if (v < LAT_HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    if (msb > LAT_HIST_MSB_MAX) {
        msb = LAT_HIST_MSB_MAX;
        v = (2ULL << LAT_HIST_MSB_MAX) - 1;
    }
    int shift = msb - (LAT_HIST_SUB_BITS - 1);
    return LAT_HIST_SUB + (size_t)(msb - LAT_HIST_SUB_BITS) * LAT_HIST_HALF +
           (size_t)((v >> shift) - LAT_HIST_HALF);
}

/* The largest value that falls in bucket 'i'. */
static uint64_t bucket_upper(size_t i)
{
    if (i < LAT_HIST_SUB)
        return i;
    size_t group = (i - LAT_HIST_SUB) / LAT_HIST_HALF, sub = (i - LAT_HIST_SUB) % LAT_HIST_HALF;
    int shift = (int)group + 1;
    return ((uint64_t)(sub + LAT_HIST_HALF) << shift) + ((1ULL << shift) - 1);
}

void lat_hist_record(lat_hist *h, uint64_t us)
{
    h->buckets[bucket_of(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

void lat_hist_merge(lat_hist *into, const lat_hist *from)
{
    for (size_t i = 0; i < LAT_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

uint64_t lat_hist_percentile(const lat_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LAT_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return bucket_upper(i) < h->max_us ? bucket_upper(i) : h->max_us;
    }
    return h->max_us;
}

double lat_hist_mean(const lat_hist *h)
{
    return h->count ? h->sum_us / (double)h->count : 0.0;
}
