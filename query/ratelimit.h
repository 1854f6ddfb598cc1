/* ratelimit.h - token buckets per tenant and per client address, for one loop thread. */
#ifndef CDR_QUERY_RATELIMIT_H
#define CDR_QUERY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

/* 'rate' tokens per second refill a bucket of 'burst' tokens; keys are strings (a tenant UUID,
 * an address). Buckets idle long enough to be full again are forgotten, so memory is bounded by
 * the keys active in the last burst/rate seconds. Returns NULL when out of memory, or when 'rate'
 * is not above 0 or 'burst' is under 1. */
ratelimit *ratelimit_create(double rate, double burst);
void ratelimit_destroy(ratelimit *r);

/* Takes one token from the bucket of 'key' at time 'now_us' (monotonic microseconds). Returns
 * true when allowed; false when empty, with '*retry_after_s' the whole seconds until a token
 * is back (at least 1). Out of memory, the request is allowed: the limiter fails open. */
bool ratelimit_take(ratelimit *r, const char *key, int64_t now_us, int *retry_after_s);

/* The buckets held now, full-again ones not yet swept included (a gauge for /metrics). */
size_t ratelimit_buckets(const ratelimit *r);

#endif
