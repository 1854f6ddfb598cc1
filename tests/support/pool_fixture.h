/* pool_fixture.h - cdr-query's PostgreSQL pool (query/pg_pool.c) under test: an event loop that
 * wakes at least every 20 ms, so that waits see their deadlines; a pool of cdr_reader
 * connections to a test database on it; the loop run until a condition holds. Each Criterion
 * test is a process of its own, so one fixture belongs to one test. Failures end the test
 * through Criterion's assertions. */
#ifndef CDR_POOL_FIXTURE_H
#define CDR_POOL_FIXTURE_H

#include <event2/event.h>
#include <stdbool.h>

#include "itest.h"
#include "pg_pool.h"

/* One loop and its pool; everything in it is owned by the fixture. */
typedef struct pool_fixture {
    struct event_base *base;
    struct event *tick;             /* persistent, every 20 ms */
    pg_pool *pool;                  /* NULL until pool_fixture_open */
    char reader_url[ITEST_URL_MAX]; /* the database's URL as cdr_reader */
} pool_fixture;

/* Makes the loop with its tick and the reader URL of 'db'; no pool yet. */
void pool_fixture_create(pool_fixture *f, const itest_db *db);

/* Creates the pool on the loop: 'size' connections as cdr_reader, 'statement_timeout_ms' (0:
 * none), 'max_queue' (0: the pool's default). Does not wait for the connections. */
void pool_fixture_open(pool_fixture *f, int size, long long statement_timeout_ms, int max_queue);

/* Runs the loop until 'cond(arg)' holds or 'ms' passed; returns whether it holds. */
bool pool_fixture_run_until(pool_fixture *f, bool (*cond)(void *), void *arg, int ms);

/* Runs the loop until 'n' connections of the pool serve, asserting that they do within 'ms'. */
void pool_fixture_wait_ready(pool_fixture *f, int n, int ms);

/* Destroys the pool (its jobs' 'done' fire with "shutting down"), the tick and the loop, and
 * zeroes 'f'. For teardown, also after a setup that failed half-way: what was never made, or
 * was already destroyed and set to NULL, is skipped. */
void pool_fixture_destroy(pool_fixture *f);

#endif
