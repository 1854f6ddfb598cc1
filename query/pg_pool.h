/* pg_pool.h - a pool of non-blocking libpq connections driven by the event loop; each request is
 * one pipelined transaction that sets the tenant for row-level security. */
#ifndef CDR_QUERY_PG_POOL_H
#define CDR_QUERY_PG_POOL_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

typedef struct pg_pool_config {
    const char *conninfo; /* the reader role's connection string */
    int size;             /* connections kept open */
    long long statement_timeout_ms;
    int max_queue; /* requests waiting for a connection past which
                      pg_pool_submit refuses (0: 1024) */
} pg_pool_config;

/* Statements a connection keeps prepared (pg_query 'prepare'); past that many, the others are
 * sent unprepared. */
#define PG_POOL_PREPARED_MAX 16

typedef struct pg_pool pg_pool;
typedef struct pg_job pg_job;

/* Every connection is opened with PQconnectStartParams, set non-blocking, and on success sets
 * jit = off, work_mem = 32MB and statement_timeout = 'statement_timeout_ms' (0: none) for the
 * session, with set_config, before it serves. A connection lost is reopened with backoff (100 ms
 * doubling to 5 s). 'conninfo' is copied. Returns NULL only when memory ran out. */
pg_pool *pg_pool_create(struct event_base *base, const pg_pool_config *cfg);
/* Fails every job still queued or running (their 'done' fire, inside this call, with the error
 * "shutting down" - or "canceled" for a job canceled before), closes all. Not to be called from
 * inside a callback of the pool. */
void pg_pool_destroy(pg_pool *p);

/* Connections that are open and serving. */
int pg_pool_ready(const pg_pool *p);

/* Called for each row of the query's result in single-row mode (only for jobs submitted with
 * 'on_row'), on the loop thread. 'res' lives only during the call. Return 0 to go on, 1 to
 * pause (the job stops reading from PostgreSQL until pg_job_resume), -1 to cancel the job. */
typedef int (*pg_row_fn)(pg_job *job, const PGresult *res, void *arg);

/* Called once per submitted job, on the loop thread, never from inside pg_pool_submit: with the
 * query's result (all rows; NULL for a single-row job once its rows are done) and 'error' NULL
 * on success, or 'res' NULL and 'error' the reason (PostgreSQL's message, "canceled",
 * "statement timeout", "connection lost", "shutting down"). 'sqlstate' is the five-character
 * code when PostgreSQL answered an error, else "". 'res' lives only during the call. */
typedef void (*pg_done_fn)(pg_job *job, const PGresult *res, const char *error,
                           const char *sqlstate, void *arg);

typedef struct pg_query {
    const char *tenant_id; /* set with set_config('app.tenant_id', $1, true) first, together
                              with the job's statement timeout */
    const char *sql;       /* one statement, parameters $1..$n */
    int n_params;
    const char *const *values; /* text values (NULL = SQL NULL); copied at submit */
    pg_row_fn on_row;          /* NULL: whole result to 'done' */
    long long timeout_ms;      /* statement timeout of this job; 0: the pool's */
    /* Prepare 'sql' once per connection and execute it prepared from then on, so that
     * PostgreSQL can keep its plan (its generic plan, once that costs no more than planning
     * for the values): for statements whose plan the values do not change. 'sql' must then be
     * a text that stays the same at the same address for the pool's life (a static string):
     * the address identifies it. Ignored with 'on_row'. */
    bool prepare;
    pg_done_fn done;
    void *arg;
} pg_query;

/* Queues the query: BEGIN READ ONLY; set_config; the query; COMMIT — pipelined on a free
 * connection (or the next one to become free); a job that fails leaves its connection serving
 * (its transaction rolled back). Returns the job, valid until its 'done' has returned; or NULL
 * when 'max_queue' jobs already wait, when no connection ever opened and each has failed at
 * least once (PostgreSQL out of reach since start), when the pool is shutting down or memory
 * ran out ('done' does not fire then). */
pg_job *pg_pool_submit(pg_pool *p, const pg_query *q) CDR_MUST_CHECK;

/* Cancels a job (the client went away): a running query gets PQcancel (a short blocking round
 * trip), a queued one is dropped; 'done' still fires once, with error "canceled", from the loop
 * (never inside this call). Does nothing for a job already finished whose 'done' is pending. */
void pg_job_cancel(pg_job *job);

/* Resumes a single-row job paused by its row callback. */
void pg_job_resume(pg_job *job);

#endif
