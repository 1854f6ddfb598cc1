/* ratelimit.c - token buckets in an open-addressing table that forgets buckets full again. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define MIN_CAP     16   /* slots; a power of two */
#define SWEEP_EVERY 1024 /* takes between sweeps, so that idle keys leave without new ones */

typedef struct bucket {
    char *key; /* owned; NULL = free slot */
    uint64_t hash;
    double tokens;
    int64_t last_us; /* when 'tokens' was right */
} bucket;

struct ratelimit {
    double rate; /* tokens per microsecond */
    double burst;
    bucket *slots;
    size_t cap; /* a power of two */
    size_t count;
    unsigned takes; /* since the last sweep */
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* The slot holding 'key', or the free slot where it belongs. The table is never full. */
static bucket *find(bucket *slots, size_t cap, const char *key, uint64_t hash)
{
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].key && (slots[i].hash != hash || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool is_full_again(const ratelimit *r, const bucket *b, int64_t now_us)
{
    return b->tokens + (double)(now_us - b->last_us) * r->rate >= r->burst;
}

/* Moves every bucket not yet full again into a table sized for them at most a quarter full,
 * freeing the others. Returns -1, keeping the old table, when out of memory. */
static int rebuild(ratelimit *r, int64_t now_us, size_t extra)
{
    size_t live = extra;
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i].key && !is_full_again(r, &r->slots[i], now_us))
            live++;
    size_t cap = MIN_CAP;
    while (cap < live * 4)
        cap *= 2;
    bucket *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < r->cap; i++) {
        bucket *b = &r->slots[i];
        if (!b->key)
            continue;
        if (is_full_again(r, b, now_us))
            free(b->key);
        else
            *find(slots, cap, b->key, b->hash) = *b;
    }
    free(r->slots);
    r->slots = slots;
    r->cap = cap;
    r->count = live - extra;
    r->takes = 0;
    return 0;
}

ratelimit *ratelimit_create(double rate, double burst)
{
    if (!(rate > 0) || !(burst >= 1))
        return NULL;
    ratelimit *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->rate = rate / 1e6;
    r->burst = burst;
    r->cap = MIN_CAP;
    r->slots = calloc(r->cap, sizeof(*r->slots));
    if (!r->slots) {
        free(r);
        return NULL;
    }
    return r;
}

void ratelimit_destroy(ratelimit *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->slots && i < r->cap; i++)
        free(r->slots[i].key);
    free(r->slots);
    free(r);
}

size_t ratelimit_buckets(const ratelimit *r)
{
    return r->count;
}

bool ratelimit_take(ratelimit *r, const char *key, int64_t now_us, int *retry_after_s)
{
    /* A failed sweep keeps the old table, which is still correct, only larger. */
    if (++r->takes >= SWEEP_EVERY)
        (void)rebuild(r, now_us, 0);

    uint64_t hash = hash_key(key);
    bucket *b = find(r->slots, r->cap, key, hash);
    if (!b->key) {
        if ((r->count + 1) * 2 > r->cap) {
            if (rebuild(r, now_us, 1) != 0)
                return true; /* out of memory: fail open rather than refuse every client */
            b = find(r->slots, r->cap, key, hash);
        }
        char *copy = strdup(key);
        if (!copy)
            return true;
        *b = (bucket){.key = copy, .hash = hash, .tokens = r->burst, .last_us = now_us};
        r->count++;
    }

    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * r->rate;
        if (b->tokens > r->burst)
            b->tokens = r->burst;
        b->last_us = now_us;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return true;
    }
    if (retry_after_s) {
        /* Whole microseconds first, so that rounding never claims a second more than needed. */
        double need = (1 - b->tokens) / r->rate;
        int64_t us = need < 86400e6 ? (int64_t)need : INT64_C(86400000000);
        if ((double)us < need)
            us++;
        int64_t s = (us + 999999) / 1000000;
        *retry_after_s = s < 1 ? 1 : (int)s;
    }
    return false;
}
