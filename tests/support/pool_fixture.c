/* pool_fixture.c - see pool_fixture.h. */
#include "pool_fixture.h"

#include <criterion/criterion.h>
#include <string.h>

#define TICK_US 20000

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void pool_fixture_create(pool_fixture *f, const itest_db *db)
{
    memset(f, 0, sizeof(*f));
    cr_assert(itest_db_url(db, "cdr_reader", f->reader_url, sizeof(f->reader_url)) == 0);
    f->base = event_base_new();
    cr_assert(f->base);
    f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    cr_assert(f->tick);
    struct timeval tv = {0, TICK_US};
    event_add(f->tick, &tv);
}

void pool_fixture_open(pool_fixture *f, int size, long long statement_timeout_ms, int max_queue)
{
    pg_pool_config cfg = {.conninfo = f->reader_url,
                          .size = size,
                          .statement_timeout_ms = statement_timeout_ms,
                          .max_queue = max_queue};
    f->pool = pg_pool_create(f->base, &cfg);
    cr_assert(f->pool);
}

bool pool_fixture_run_until(pool_fixture *f, bool (*cond)(void *), void *arg, int ms)
{
    int64_t end = itest_now_ms() + ms;
    while (!cond(arg)) {
        if (itest_now_ms() > end)
            return false;
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    return true;
}

/* The argument of ready(): the pool and the number of connections wanted. */
typedef struct ready_arg {
    const pg_pool *pool;
    int n;
} ready_arg;

static bool ready(void *arg)
{
    const ready_arg *r = arg;
    return pg_pool_ready(r->pool) == r->n;
}

void pool_fixture_wait_ready(pool_fixture *f, int n, int ms)
{
    ready_arg r = {f->pool, n};
    cr_assert(pool_fixture_run_until(f, ready, &r, ms), "%d connections ready of %d",
              pg_pool_ready(f->pool), n);
}

void pool_fixture_destroy(pool_fixture *f)
{
    pg_pool_destroy(f->pool);
    if (f->tick)
        event_free(f->tick);
    if (f->base)
        event_base_free(f->base);
    memset(f, 0, sizeof(*f));
}
