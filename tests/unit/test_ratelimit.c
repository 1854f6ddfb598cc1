/* test_ratelimit.c - token buckets over simulated time: burst, refill, keys, bounded memory. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "ratelimit.h"

#define SEC INT64_C(1000000)

static ratelimit *r;

static void teardown(void)
{
    ratelimit_destroy(r);
    r = NULL;
}

TestSuite(ratelimit, .fini = teardown);

Test(ratelimit, refuses_bad_settings)
{
    cr_assert_null(ratelimit_create(0, 10));
    cr_assert_null(ratelimit_create(-1, 10));
    cr_assert_null(ratelimit_create(1, 0.5));
}

Test(ratelimit, burst_then_refusal_with_retry_after)
{
    r = ratelimit_create(2, 5); /* 2/s, 5 at once */
    int retry = -1;
    for (int i = 0; i < 5; i++)
        cr_assert(ratelimit_take(r, "t1", 1000 * SEC, &retry), "take %d", i);
    cr_assert(!ratelimit_take(r, "t1", 1000 * SEC, &retry));
    cr_assert_eq(retry, 1); /* half a second, rounded up */

    r = (ratelimit_destroy(r), ratelimit_create(0.1, 1)); /* one per 10 s */
    cr_assert(ratelimit_take(r, "t1", 0, &retry));
    cr_assert(!ratelimit_take(r, "t1", 0, &retry));
    cr_assert_eq(retry, 10);
    cr_assert(!ratelimit_take(r, "t1", 3 * SEC + SEC / 2, &retry));
    cr_assert_eq(retry, 7); /* 6.5 s to go */
    cr_assert(!ratelimit_take(r, "t1", 10 * SEC - 1, &retry));
    cr_assert_eq(retry, 1);
    cr_assert(ratelimit_take(r, "t1", 10 * SEC, &retry));
    /* A NULL retry_after is allowed. */
    cr_assert(!ratelimit_take(r, "t1", 10 * SEC, NULL));
}

Test(ratelimit, refill_over_time_capped_at_burst)
{
    r = ratelimit_create(10, 3);
    int retry;
    int64_t t = 5 * SEC;
    for (int i = 0; i < 3; i++)
        cr_assert(ratelimit_take(r, "k", t, &retry));
    cr_assert(!ratelimit_take(r, "k", t, &retry));
    /* 0.1 s brings one token back. */
    t += SEC / 10;
    cr_assert(ratelimit_take(r, "k", t, &retry));
    cr_assert(!ratelimit_take(r, "k", t, &retry));
    /* A long pause refills to the burst, not beyond. */
    t += 3600 * SEC;
    for (int i = 0; i < 3; i++)
        cr_assert(ratelimit_take(r, "k", t, &retry), "take %d", i);
    cr_assert(!ratelimit_take(r, "k", t, &retry));
    /* Steady use at the rate is never refused. */
    for (int i = 0; i < 1000; i++) {
        t += SEC / 10;
        cr_assert(ratelimit_take(r, "k", t, &retry), "tick %d", i);
    }
    /* Time going back does not mint tokens. */
    cr_assert(!ratelimit_take(r, "k", t, &retry));
    cr_assert(!ratelimit_take(r, "k", t - 10 * SEC, &retry));
}

Test(ratelimit, keys_are_independent)
{
    r = ratelimit_create(1, 2);
    int retry;
    cr_assert(ratelimit_take(r, "10.0.0.1", 0, &retry));
    cr_assert(ratelimit_take(r, "10.0.0.1", 0, &retry));
    cr_assert(!ratelimit_take(r, "10.0.0.1", 0, &retry));
    cr_assert(ratelimit_take(r, "10.0.0.2", 0, &retry));
    cr_assert(ratelimit_take(r, "10.0.0.2", 0, &retry));
    cr_assert(!ratelimit_take(r, "10.0.0.2", 0, &retry));
    /* Keys are copied: the caller's buffer may change. */
    char key[32];
    snprintf(key, sizeof(key), "tenant-a");
    cr_assert(ratelimit_take(r, key, 0, &retry));
    snprintf(key, sizeof(key), "tenant-b");
    cr_assert(ratelimit_take(r, key, 0, &retry));
    cr_assert(ratelimit_take(r, "tenant-a", 0, &retry));
    cr_assert(!ratelimit_take(r, "tenant-a", 0, &retry));
    cr_assert_eq(ratelimit_buckets(r), 4);
}

Test(ratelimit, many_keys_over_time_stay_bounded)
{
    r = ratelimit_create(1, 20); /* two tokens taken are back 2 s later */
    int retry;
    char key[32];
    size_t most = 0;
    /* 100,000 addresses, 1,000 a second, each seen twice: ~2,000 alive at any time. */
    for (int i = 0; i < 100000; i++) {
        int64_t t = (int64_t)i * SEC / 1000;
        snprintf(key, sizeof(key), "198.51.%d.%d", i / 256, i % 256);
        cr_assert(ratelimit_take(r, key, t, &retry));
        cr_assert(ratelimit_take(r, key, t, &retry));
        if (ratelimit_buckets(r) > most)
            most = ratelimit_buckets(r);
    }
    cr_assert_leq(most, 4000, "%zu buckets held", most);
    cr_assert_geq(ratelimit_buckets(r), 1000);
    /* Long after, one key's takes alone are enough for a sweep to clear everything else. */
    for (int i = 0; i < 1024; i++)
        (void)ratelimit_take(r, "late", 1000 * SEC, &retry);
    cr_assert_eq(ratelimit_buckets(r), 1);
}

Test(ratelimit, a_forgotten_bucket_was_full_anyway)
{
    r = ratelimit_create(1, 3);
    int retry;
    for (int i = 0; i < 3; i++)
        cr_assert(ratelimit_take(r, "old", 0, &retry));
    cr_assert(!ratelimit_take(r, "old", 0, &retry));
    /* Half refilled: it must be kept through a sweep, empty as it was. */
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert(ratelimit_take(r, key, SEC, &retry));
    }
    cr_assert(ratelimit_take(r, "old", SEC, &retry));
    cr_assert(!ratelimit_take(r, "old", SEC, &retry));
    cr_assert_eq(retry, 1);
    /* Full again after 3 s idle: swept, and it starts with the whole burst. */
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "j%d", i);
        cr_assert(ratelimit_take(r, key, 10 * SEC, &retry));
    }
    cr_assert_leq(ratelimit_buckets(r), 2000);
    for (int i = 0; i < 3; i++)
        cr_assert(ratelimit_take(r, "old", 10 * SEC, &retry));
    cr_assert(!ratelimit_take(r, "old", 10 * SEC, &retry));
}
