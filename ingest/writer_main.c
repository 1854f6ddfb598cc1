/* writer_main.c - cdr-writer: configuration, signals, and the loop: read a batch from the stream,
 * make its partitions ready, write it in one transaction, acknowledge it (docs/writer.md). */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "partitions.h"
#include "pg_batch.h"
#include "program.h"
#include "redis_url.h"
#include "stream_read.h"
#include "writer_batch.h"
#include "writer_config.h"
#include "writer_metrics.h"

#define COMPONENT      "writer"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STOP_GRACE_MS  5000 /* after SIGTERM, how long the batch in hand may wait out an outage */
#define POLL_MS        1000 /* lag and an idle PostgreSQL session are looked at this often */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    stop_requested = sig;
}

typedef struct writer_app {
    writer_config conf;
    redis_target redis;
    char consumer[320];
    writer_metrics *wm;
    stream_read *sr;
    pg_batch *pb;
    partitions *parts;
    writer_batch batch;
    int backoff_ms;        /* the next wait after a failure */
    int64_t stop_deadline; /* when a stop was seen during a wait: the end of its grace */
    int64_t next_poll_ms;
    bool ahead_failing; /* the months ahead could not be prepared: logged once */
} writer_app;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void publish_ready(writer_app *a)
{
    writer_metrics_ready(a->wm, stream_read_connected(a->sr), pg_batch_connected(a->pb));
}

/* Waits after a failure, 100 ms doubling to 5 s, cut short by a signal. Returns false when a
 * stop was requested and its grace is over: the caller gives up the work in hand. */
static bool wait_retry(writer_app *a)
{
    publish_ready(a);
    int ms = a->backoff_ms;
    a->backoff_ms = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
    if (stop_requested) {
        if (a->stop_deadline == 0)
            a->stop_deadline = now_ms() + STOP_GRACE_MS;
        int64_t left = a->stop_deadline - now_ms();
        if (left <= 0)
            return false;
        if (ms > left)
            ms = (int)left;
    }
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR on a signal: the caller looks at the flag */
    return true;
}

/* Connects to Redis and PostgreSQL when they are not, and keeps the months ahead ready.
 * Returns false after a failure (waited for already). */
static bool ensure_connected(writer_app *a)
{
    char err[1024];
    if (stream_read_connect(a->sr, err, sizeof(err)) != 0) {
        writer_metrics_add(a->wm, WM_REDIS_FAILURES, 1);
        if (!stop_requested)
            (void)wait_retry(a);
        return false;
    }
    int rc = pg_batch_connect(a->pb, err, sizeof(err)); /* logs its outages itself */
    if (rc == 0) {
        rc = partitions_ahead(a->parts, pg_batch_conn(a->pb), err, sizeof(err));
        if (rc == -1 && !a->ahead_failing)
            LOG_WARN(COMPONENT, "cannot prepare the months ahead: %s; retrying", err);
        else if (rc == -2)
            pg_batch_lost(a->pb, err);
        a->ahead_failing = rc == -1;
    }
    if (rc != 0) {
        writer_metrics_add(a->wm, WM_PG_FAILURES, 1);
        if (!stop_requested)
            (void)wait_retry(a);
        return false;
    }
    a->backoff_ms = BACKOFF_MIN_MS;
    publish_ready(a);
    return true;
}

/* Every POLL_MS: the stream's lag, and whether an idle PostgreSQL session still answers. */
static void poll_state(writer_app *a)
{
    char err[512];
    if (now_ms() < a->next_poll_ms || !stream_read_connected(a->sr))
        return;
    a->next_poll_ms = now_ms() + POLL_MS;
    long long entries;
    double seconds;
    if (stream_read_lag(a->sr, &entries, &seconds, err, sizeof(err)) == 0) {
        writer_metrics_lag(a->wm, entries, seconds);
    } else {
        LOG_DEBUG(COMPONENT, "lag: %s", err);
        writer_metrics_lag(a->wm, -1, -1);
    }
    if (pg_batch_connected(a->pb) && pg_batch_check(a->pb) != 0)
        writer_metrics_add(a->wm, WM_PG_FAILURES, 1);
    publish_ready(a);
}

/* One attempt at writing the batch in hand. Returns 0, or -1 with 'err'. */
static int write_once(writer_app *a, pg_batch_result *res, char *err, size_t errlen)
{
    if (pg_batch_connect(a->pb, err, errlen) != 0)
        return -1;
    int rc = partitions_prepare(a->parts, pg_batch_conn(a->pb), &a->batch, err, errlen);
    if (rc == -2)
        pg_batch_lost(a->pb, err);
    if (rc != 0)
        return -1;
    return pg_batch_write(a->pb, &a->batch, res, err, errlen);
}

/* Writes the batch in hand, then acknowledges it, each retried until it succeeds. Returns false
 * when a stop request's grace ran out first: the entries stay pending in the group. */
static bool finish_batch(writer_app *a)
{
    char err[1024];
    int64_t t0 = now_ms();
    int64_t next_touch = t0 + a->conf.claim_idle_ms / 2;
    pg_batch_result res = {0};
    bool failing = false;
    while (write_once(a, &res, err, sizeof(err)) != 0) {
        writer_metrics_add(a->wm, WM_PG_FAILURES, 1);
        if (!failing && pg_batch_connected(a->pb))
            LOG_WARN(COMPONENT, "cannot write a batch of %d entries: %s; retrying",
                     a->batch.n_entries, err);
        failing = true;
        /* Kept long by an outage, the batch would look abandoned to the other writers. */
        if (now_ms() >= next_touch && stream_read_connect(a->sr, err, sizeof(err)) == 0 &&
            stream_read_touch(a->sr, &a->batch, err, sizeof(err)) == 0)
            next_touch = now_ms() + a->conf.claim_idle_ms / 2;
        if (!wait_retry(a))
            return false;
    }
    if (failing)
        LOG_INFO(COMPONENT, "batch of %d entries written after %lld ms of retries",
                 a->batch.n_entries, (long long)(now_ms() - t0));
    a->backoff_ms = BACKOFF_MIN_MS;
    publish_ready(a);

    while (stream_read_connect(a->sr, err, sizeof(err)) != 0 ||
           stream_read_ack(a->sr, &a->batch, err, sizeof(err)) != 0) {
        writer_metrics_add(a->wm, WM_REDIS_FAILURES, 1);
        if (!wait_retry(a))
            return false;
    }
    a->backoff_ms = BACKOFF_MIN_MS;

    double seconds = (double)(now_ms() - t0) / 1000.0;
    writer_metrics_add(a->wm, WM_BATCHES, 1);
    writer_metrics_add(a->wm, WM_INSERTED, (uint64_t)res.inserted);
    writer_metrics_add(a->wm, WM_DUPLICATES, (uint64_t)res.duplicates);
    writer_metrics_add(a->wm, WM_REJECTS_INGEST, (uint64_t)res.rejects_ingest);
    writer_metrics_add(a->wm, WM_REJECTS_WRITER, (uint64_t)res.rejects_writer);
    writer_metrics_add(a->wm, WM_DEAD_LETTERS, (uint64_t)res.lost);
    writer_metrics_batch_seconds(a->wm, seconds);
    if (res.rejects_writer > 0)
        LOG_INFO(COMPONENT, "%lld rows refused by PostgreSQL kept in voip_cdr_rejects",
                 res.rejects_writer);
    LOG_DEBUG(COMPONENT,
              "batch: %d entries, %lld rows: %lld inserted, %lld duplicates, %lld rejects, "
              "%d transactions, %.3f s",
              a->batch.n_entries, writer_batch_rows(&a->batch), res.inserted, res.duplicates,
              res.rejects_ingest + res.rejects_writer, res.transactions, seconds);
    return true;
}

/* Reads and writes batches until a stop is requested. Returns the exit status. */
static int run(writer_app *a)
{
    char err[1024];
    a->backoff_ms = BACKOFF_MIN_MS;
    while (!stop_requested) {
        poll_state(a);
        if (!ensure_connected(a))
            continue;
        int dead = 0;
        stream_read_result rr = stream_read_fill(a->sr, &a->batch, a->conf.batch, &stop_requested,
                                                 &dead, err, sizeof(err));
        writer_metrics_add(a->wm, WM_DEAD_LETTERS, (uint64_t)dead);
        if (rr == SR_NO_MEMORY) {
            LOG_ERROR(COMPONENT, "%s", err);
            return 1;
        }
        if (rr == SR_LOST)
            writer_metrics_add(a->wm, WM_REDIS_FAILURES, 1);
        if (a->batch.n_entries > 0 && !finish_batch(a)) {
            LOG_WARN(COMPONENT,
                     "stopping with %d entries not acknowledged: they stay pending, and another "
                     "writer claims them after %lld ms",
                     a->batch.n_entries, a->conf.claim_idle_ms);
            return 0;
        }
        writer_batch_reset(&a->batch);
        if (rr == SR_LOST)
            (void)wait_retry(a);
    }
    return 0;
}

int main(int argc, char **argv)
{
    writer_app app;
    memset(&app, 0, sizeof(app));
    char err[512];
    int rc = program_start(&writer_cfg_table, &app.conf, argc, argv, NULL,
                           offsetof(writer_config, log_level));
    if (rc != PROGRAM_CONTINUE)
        goto done;
    rc = PROGRAM_EXIT_USAGE;
    if (redis_url_parse(app.conf.redis_url, &app.redis, err, sizeof(err)) != 0) {
        fprintf(stderr, "cdr-writer: CDR_REDIS_URL: %s\n", err);
        goto done;
    }
    if (app.conf.consumer && app.conf.consumer[0]) {
        snprintf(app.consumer, sizeof(app.consumer), "%s", app.conf.consumer);
    } else {
        char host[256] = "writer";
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "writer");
        host[sizeof(host) - 1] = '\0';
        snprintf(app.consumer, sizeof(app.consumer), "%s-%ld", host, (long)getpid());
    }
    if (app.conf.check_config) {
        printf("cdr-writer: configuration is valid\n");
        rc = 0;
        goto done;
    }

    rc = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    stream_read_config src = {
        .target = app.redis,
        .key = app.conf.stream_key,
        .group = app.conf.group,
        .consumer = app.consumer,
        .flush_ms = (int)app.conf.flush_ms,
        .claim_idle_ms = (int)app.conf.claim_idle_ms,
    };
    writer_batch_init(&app.batch, (size_t)app.conf.max_entry);
    app.wm = writer_metrics_start(app.conf.metrics_listen, err, sizeof(err));
    if (!app.wm) {
        LOG_ERROR(COMPONENT, "%s", err);
        goto done;
    }
    app.sr = stream_read_create(&src);
    app.pb = pg_batch_create(app.conf.pg_url);
    app.parts = partitions_create((int)app.conf.months_ahead);
    if (!app.sr || !app.pb || !app.parts) {
        LOG_ERROR(COMPONENT, "out of memory");
        goto done;
    }
    LOG_INFO(COMPONENT,
             "consumer %s of group %s on stream %s (redis %s), batches of %lld rows or %lld ms; "
             "metrics on %s",
             app.consumer, app.conf.group, app.conf.stream_key, stream_read_where(app.sr),
             app.conf.batch, app.conf.flush_ms, app.conf.metrics_listen);
    rc = run(&app);
    if (stop_requested)
        LOG_INFO(COMPONENT, "%s received", stop_requested == SIGINT ? "SIGINT" : "SIGTERM");
    stream_read_leave(app.sr);
    LOG_INFO(COMPONENT, "stopped");
done:
    writer_metrics_stop(app.wm);
    partitions_destroy(app.parts);
    pg_batch_destroy(app.pb);
    stream_read_destroy(app.sr);
    writer_batch_free(&app.batch);
    cfg_free(&writer_cfg_table, &app.conf);
    return rc;
}
