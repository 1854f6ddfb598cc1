/* pg_pool.c - cdr-query's PostgreSQL pool: non-blocking connections as state machines on the
 * event loop, a FIFO of waiting jobs, each job one pipelined read-only transaction. */
#include "pg_pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define COMP              "pg_pool"
#define DEFAULT_MAX_QUEUE 1024
#define BACKOFF_FIRST_MS  100
#define BACKOFF_MAX_MS    5000
#define ERROR_MAX         512
#define SQLSTATE_CANCELED "57014"
#define SQLSTATE_LEN      5

/* Sent once per connection before it serves; parameters rather than SQL text for the value.
 * work_mem: the largest sort a read makes (a month of a large tenant's extension rollup, some
 * 30,000 rows) stays in memory instead of spilling to a temporary file. */
#define SETUP_SQL                                                                                  \
    "SELECT set_config('jit', 'off', false), set_config('statement_timeout', $1, false),"          \
    " set_config('work_mem', '32MB', false)"
/* The tenant for row-level security and the statement timeout of the job, for its
 * transaction only. */
#define TENANT_SQL                                                                                 \
    "SELECT set_config('app.tenant_id', $1, true), set_config('statement_timeout', $2, true)"

typedef enum conn_state {
    CONN_DOWN,       /* closed; the retry timer reopens it */
    CONN_CONNECTING, /* PQconnectPoll driven by socket events */
    CONN_SETUP,      /* the session settings sent, their answer awaited */
    CONN_IDLE,       /* serving, no job */
    CONN_BUSY,       /* a job's pipeline sent, its results being read */
    CONN_ROLLBACK,   /* a failed job left a transaction open; ROLLBACK sent */
} conn_state;

/* The statements of a job's pipeline, in the order their results arrive. */
typedef enum job_step {
    STEP_PREPARE, /* only when the job's statement is prepared on this connection first */
    STEP_BEGIN,
    STEP_TENANT,
    STEP_QUERY,
    STEP_COMMIT,
    STEP_SYNC,
} job_step;

typedef enum job_state {
    JOB_QUEUED,   /* in the pool's queue */
    JOB_RUNNING,  /* on a connection */
    JOB_FINISHED, /* outcome known; in the delivery list until 'done' has run */
} job_state;

typedef struct pg_conn pg_conn;

struct pg_job {
    pg_pool *pool;
    pg_job *prev, *next; /* the queue (both) or the delivery list (next only) */
    job_state state;
    pg_conn *conn; /* while running */
    char *tenant;
    char timeout_text[32]; /* statement_timeout of its transaction, in ms */
    char *sql;
    const char *plan_key; /* pg_query's 'sql' when prepared ('prepare'), else NULL */
    int n_params;
    char **values;
    pg_row_fn on_row;
    pg_done_fn done;
    void *arg;
    bool canceled; /* pg_job_cancel or the row callback asked; reported as "canceled" */
    bool paused;   /* the row callback asked to stop reading */
    bool failed;   /* 'error' holds the first failure */
    PGresult *res; /* the query's whole result, owned until delivery */
    char error[ERROR_MAX];
    char sqlstate[SQLSTATE_LEN + 1];
};

struct pg_conn {
    pg_pool *pool;
    int id;
    PGconn *pg;
    conn_state state;
    struct event *rev, *wev; /* on PQsocket; reassigned when the socket changes */
    struct event *retry;     /* reopens a closed connection */
    int fd;
    bool rarmed, warmed;
    bool failed_unready; /* an attempt failed and this connection never served */
    int backoff_ms;
    pg_job *job;
    job_step step;
    /* The statements prepared on this session (their pg_query 'sql' pointers), named "p<i>"
     * after their index; a PREPARE in the running pipeline (step STEP_PREPARE) is for index
     * 'n_prepared'. Forgotten when the session is lost. */
    const char *prepared[PG_POOL_PREPARED_MAX];
    int n_prepared;
};

struct pg_pool {
    struct event_base *base;
    char *conninfo;
    char timeout_text[32];
    int size;
    int max_queue;
    pg_conn *conns;
    int ready;
    bool ever_ready;
    bool closing;
    pg_job *qhead, *qtail; /* waiting for a connection, oldest first */
    int queued;
    pg_job *dhead, *dtail; /* finished, 'done' not yet called */
    struct event *deliver; /* runs the delivery list on the loop */
};

static void conn_event_cb(evutil_socket_t fd, short what, void *arg);
static void conn_open(pg_conn *c);
static void pool_dispatch(pg_pool *p);

/* ---------------------------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------------------------- */

static void job_free(pg_job *j)
{
    if (!j)
        return;
    if (j->values) {
        for (int i = 0; i < j->n_params; i++)
            free(j->values[i]);
        free(j->values);
    }
    PQclear(j->res);
    free(j->tenant);
    free(j->sql);
    free(j);
}

/* Records why 'j' failed; the first reason stands unless 'force' (the connection is gone, the
 * pool shuts down: those say more than a message that was cut short). */
static void job_fail(pg_job *j, const char *error, const char *sqlstate, bool force)
{
    if (j->failed && !force)
        return;
    j->failed = true;
    snprintf(j->error, sizeof(j->error), "%s", error);
    snprintf(j->sqlstate, sizeof(j->sqlstate), "%s", sqlstate ? sqlstate : "");
}

/* Records PostgreSQL's error in 'res': its primary message and SQLSTATE; a cancel we did not
 * ask for is the statement timeout. */
static void job_fail_result(pg_job *j, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!state)
        state = "";
    if (strcmp(state, SQLSTATE_CANCELED) == 0 && !j->canceled) {
        job_fail(j, "statement timeout", state, false);
        return;
    }
    if (!msg || !*msg)
        msg = PQresultErrorMessage(res);
    if (!msg || !*msg)
        msg = "query failed";
    job_fail(j, msg, state, false);
}

static void queue_unlink(pg_pool *p, pg_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        p->qhead = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        p->qtail = j->prev;
    j->prev = j->next = NULL;
    p->queued--;
}

/* Moves 'j' (off the queue or its connection already) to the delivery list; its 'done' runs
 * from the loop, so never under the stack of whoever finished it. */
static void job_finish(pg_job *j)
{
    pg_pool *p = j->pool;
    j->state = JOB_FINISHED;
    j->conn = NULL;
    j->next = NULL;
    if (p->dtail)
        p->dtail->next = j;
    else
        p->dhead = j;
    p->dtail = j;
    if (p->deliver)
        event_active(p->deliver, EV_TIMEOUT, 0);
}

/* Calls 'done' for every finished job, oldest first, and frees each after its call. Jobs
 * finished by those callbacks are delivered in the same run. */
static void pool_deliver(pg_pool *p)
{
    while (p->dhead) {
        pg_job *j = p->dhead;
        p->dhead = j->next;
        if (!p->dhead)
            p->dtail = NULL;
        if (j->canceled)
            j->done(j, NULL, "canceled", "", j->arg);
        else if (j->failed)
            j->done(j, NULL, j->error, j->sqlstate, j->arg);
        else
            j->done(j, j->on_row ? NULL : j->res, NULL, "", j->arg);
        job_free(j);
    }
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_deliver(arg);
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------------- */

static bool conn_serving(const pg_conn *c)
{
    return c->state == CONN_IDLE || c->state == CONN_BUSY || c->state == CONN_ROLLBACK;
}

/* Watches the connection's socket for reading and/or writing. With 'rearm' (while connecting,
 * when libpq may have closed the socket and opened another under the same number) the events
 * are deleted and added again so that the loop learns of the new socket. */
static void conn_arm(pg_conn *c, bool rd, bool wr, bool rearm)
{
    int fd = c->pg ? PQsocket(c->pg) : -1;
    if (fd != c->fd || rearm) {
        event_del(c->rev);
        event_del(c->wev);
        c->rarmed = c->warmed = false;
        if (fd != c->fd) {
            event_assign(c->rev, c->pool->base, fd, EV_READ | EV_PERSIST, conn_event_cb, c);
            event_assign(c->wev, c->pool->base, fd, EV_WRITE | EV_PERSIST, conn_event_cb, c);
            c->fd = fd;
        }
    }
    if (fd < 0)
        rd = wr = false;
    if (rd != c->rarmed) {
        if (rd)
            event_add(c->rev, NULL);
        else
            event_del(c->rev);
        c->rarmed = rd;
    }
    if (wr != c->warmed) {
        if (wr)
            event_add(c->wev, NULL);
        else
            event_del(c->wev);
        c->warmed = wr;
    }
}

/* Closes the session (if any) and stops watching it; the state becomes CONN_DOWN. */
static void conn_close(pg_conn *c)
{
    if (conn_serving(c))
        c->pool->ready--;
    conn_arm(c, false, false, false);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = CONN_DOWN;
}

static void conn_schedule_retry(pg_conn *c)
{
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* The session failed ('why' says how): its job fails with "connection lost", the connection
 * closes and reopens after the backoff. */
static void conn_lost(pg_conn *c, const char *why)
{
    pg_job *j = c->job;
    bool served = conn_serving(c);
    if (served)
        LOG_WARN(COMP, "conn %d: connection lost: %s", c->id, why);
    else
        LOG_WARN(COMP, "conn %d: cannot connect: %s", c->id, why);
    if (!c->pool->ever_ready && !served)
        c->failed_unready = true;
    conn_close(c);
    c->job = NULL;
    if (j) {
        job_fail(j, "connection lost", "", true);
        job_finish(j);
    }
    if (!c->pool->closing)
        conn_schedule_retry(c);
}

/* The session's error text without its trailing newline. */
static const char *conn_error(const pg_conn *c, char *buf, size_t len)
{
    const char *m = c->pg ? PQerrorMessage(c->pg) : "";
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(buf, len, "%.*s", (int)n, n ? m : "no detail");
    return buf;
}

/* Sends what libpq holds: writing is watched while some remains. Returns 0, or -1 with the
 * connection lost. */
static int conn_flush(pg_conn *c)
{
    char msg[ERROR_MAX];
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return -1;
    }
    bool rd = !(c->job && c->job->paused);
    conn_arm(c, rd, r == 1, false);
    return 0;
}

static void notice_cb(void *arg, const char *message)
{
    pg_conn *c = arg;
    LOG_DEBUG(COMP, "conn %d: %.*s", c->id, (int)strcspn(message, "\n"), message);
}

/* The session is open: applies the settings every session serves with. */
static void conn_setup(pg_conn *c)
{
    char msg[ERROR_MAX];
    const char *params[1] = {c->pool->timeout_text};
    PQsetNoticeProcessor(c->pg, notice_cb, c);
    c->n_prepared = 0;
    if (PQsetnonblocking(c->pg, 1) != 0 ||
        !PQsendQueryParams(c->pg, SETUP_SQL, 1, NULL, params, NULL, NULL, 0)) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    c->state = CONN_SETUP;
    (void)conn_flush(c);
}

/* Advances PQconnectPoll after a socket event (or at the start, as if writable). */
static void conn_poll(pg_conn *c)
{
    char msg[ERROR_MAX];
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        conn_arm(c, true, false, true);
        break;
    case PGRES_POLLING_WRITING:
        conn_arm(c, false, true, true);
        break;
    case PGRES_POLLING_OK:
        conn_arm(c, false, false, true);
        conn_setup(c);
        break;
    default:
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        break;
    }
}

static void conn_open(pg_conn *c)
{
    char msg[ERROR_MAX];
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {c->pool->conninfo, "cdr-query", NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    c->state = CONN_CONNECTING;
    if (!c->pg) {
        conn_lost(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    conn_arm(c, false, true, true);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_open(arg);
}

/* The connection serves: takes the next queued job, if any. */
static void conn_set_idle(pg_conn *c)
{
    c->state = CONN_IDLE;
    c->job = NULL;
    conn_arm(c, true, false, false);
    pool_dispatch(c->pool);
}

/* The name under which 'c' has prepared the statement of 'j' ("p<i>" in 'name'), preparing it
 * first (PQsendPrepare, before the transaction: a prepared statement outlives its rollback) when
 * 'c' has not yet and has room; NULL when the statement is sent unprepared. */
static const char *conn_prepared_name(pg_conn *c, const pg_job *j, char *name, size_t len)
{
    if (!j->plan_key)
        return NULL;
    int i = 0;
    while (i < c->n_prepared && c->prepared[i] != j->plan_key)
        i++;
    if (i == PG_POOL_PREPARED_MAX)
        return NULL;
    snprintf(name, len, "p%d", i);
    if (i < c->n_prepared)
        return name;
    if (!PQsendPrepare(c->pg, name, j->sql, j->n_params, NULL))
        return NULL;
    c->step = STEP_PREPARE;
    return name;
}

/* Sends the whole pipeline of 'j' on idle 'c'. A failure to send means the session is broken:
 * the job fails with the connection. */
static void conn_start(pg_conn *c, pg_job *j)
{
    char msg[ERROR_MAX], name[16];
    PGconn *pg = c->pg;
    const char *tenant[2] = {j->tenant, j->timeout_text};
    const char *const *values = (const char *const *)j->values;
    c->job = j;
    c->state = CONN_BUSY;
    c->step = STEP_BEGIN;
    j->state = JOB_RUNNING;
    j->conn = c;
    if (!PQenterPipelineMode(pg)) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    const char *prepared = conn_prepared_name(c, j, name, sizeof(name));
    if (!PQsendQueryParams(pg, "BEGIN READ ONLY", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryParams(pg, TENANT_SQL, 2, NULL, tenant, NULL, NULL, 0) ||
        !(prepared ? PQsendQueryPrepared(pg, prepared, j->n_params, values, NULL, NULL, 0)
                   : PQsendQueryParams(pg, j->sql, j->n_params, NULL, values, NULL, NULL, 0)) ||
        !PQsendQueryParams(pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(pg)) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    (void)conn_flush(c);
}

/* The sync that ends a job's pipeline arrived: the job is done; a transaction the failure left
 * open is rolled back before the connection serves again. */
static void conn_job_synced(pg_conn *c)
{
    char msg[ERROR_MAX];
    pg_job *j = c->job;
    c->job = NULL;
    j->paused = false;
    job_finish(j);
    if (!PQexitPipelineMode(c->pg)) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
        conn_set_idle(c);
        return;
    }
    if (!PQsendQueryParams(c->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0)) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    c->state = CONN_ROLLBACK;
    (void)conn_flush(c);
}

/* One result of a job's pipeline. Returns false when the caller must stop reading: the job
 * paused, or the connection changed state. */
static bool conn_job_result(pg_conn *c, PGresult *res)
{
    pg_job *j = c->job;
    if (!res) {
        if (c->step < STEP_SYNC)
            c->step++;
        /* In a pipeline, single-row mode applies to the query at the head of the queue: it is
         * set once the results before it are all read, before the first of its own. */
        if (c->step == STEP_QUERY && j->on_row && !PQsetSingleRowMode(c->pg))
            job_fail(j, "cannot read row by row", "", false);
        return true;
    }
    ExecStatusType st = PQresultStatus(res);
    switch (st) {
    case PGRES_PIPELINE_SYNC:
        PQclear(res);
        conn_job_synced(c);
        return false;
    case PGRES_PIPELINE_ABORTED:
        if (!j->failed)
            job_fail(j, "transaction aborted", "", false);
        break;
    case PGRES_FATAL_ERROR:
        job_fail_result(j, res);
        break;
    case PGRES_SINGLE_TUPLE:
        if (c->step == STEP_QUERY && j->on_row && !j->canceled && !j->failed) {
            int r = j->on_row(j, res, j->arg);
            if (r < 0)
                pg_job_cancel(j);
            else if (r > 0 && !j->canceled)
                j->paused = true;
        }
        break;
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        if (c->step == STEP_PREPARE)
            c->prepared[c->n_prepared++] = j->plan_key;
        if (c->step == STEP_QUERY && !j->on_row) {
            PQclear(j->res);
            j->res = res;
            return true;
        }
        break;
    default:
        if (!j->failed)
            job_fail(j, PQresStatus(st), "", false);
        break;
    }
    PQclear(res);
    return true;
}

/* Reads every result libpq has parsed, as far as the state allows. */
static void conn_read(pg_conn *c)
{
    char msg[ERROR_MAX];
    for (;;) {
        if (c->state == CONN_BUSY && c->job->paused) {
            conn_arm(c, false, c->warmed, false);
            return;
        }
        if (PQisBusy(c->pg))
            break;
        PGresult *res = PQgetResult(c->pg);
        switch (c->state) {
        case CONN_BUSY:
            if (!conn_job_result(c, res))
                return;
            break;
        case CONN_SETUP:
        case CONN_ROLLBACK:
            if (res) {
                bool ok = PQresultStatus(res) == PGRES_TUPLES_OK ||
                          PQresultStatus(res) == PGRES_COMMAND_OK;
                if (!ok)
                    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
                PQclear(res);
                if (!ok) {
                    msg[strcspn(msg, "\n")] = '\0';
                    conn_lost(c, msg);
                    return;
                }
                break;
            }
            if (c->state == CONN_SETUP) {
                c->pool->ready++;
                c->pool->ever_ready = true;
                c->backoff_ms = BACKOFF_FIRST_MS;
                LOG_DEBUG(COMP, "conn %d: ready", c->id);
            }
            conn_set_idle(c);
            return;
        default: /* idle: nothing is expected; notices and errors are read and dropped */
            PQclear(res);
            if (!res)
                goto out;
            break;
        }
    }
out:
    if (PQstatus(c->pg) == CONNECTION_BAD)
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
}

static void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
    pg_conn *c = arg;
    char msg[ERROR_MAX];
    (void)fd;
    if (!c->pg)
        return;
    if (c->state == CONN_CONNECTING) {
        conn_poll(c);
        return;
    }
    if ((what & EV_WRITE) && conn_flush(c) < 0)
        return;
    if (!(what & EV_READ))
        return;
    if (c->state == CONN_BUSY && c->job->paused)
        return;
    if (!PQconsumeInput(c->pg)) {
        conn_lost(c, conn_error(c, msg, sizeof(msg)));
        return;
    }
    conn_read(c);
}

/* ---------------------------------------------------------------------------------------------
 * The pool
 * ------------------------------------------------------------------------------------------- */

static void pool_dispatch(pg_pool *p)
{
    for (int i = 0; i < p->size && p->qhead; i++) {
        pg_conn *c = &p->conns[i];
        if (c->state == CONN_IDLE) {
            pg_job *j = p->qhead;
            queue_unlink(p, j);
            conn_start(c, j);
        }
    }
}

pg_pool *pg_pool_create(struct event_base *base, const pg_pool_config *cfg)
{
    pg_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->base = base;
    p->size = cfg->size > 0 ? cfg->size : 1;
    p->max_queue = cfg->max_queue > 0 ? cfg->max_queue : DEFAULT_MAX_QUEUE;
    snprintf(p->timeout_text, sizeof(p->timeout_text), "%lld",
             cfg->statement_timeout_ms > 0 ? cfg->statement_timeout_ms : 0);
    p->conninfo = strdup(cfg->conninfo ? cfg->conninfo : "");
    p->conns = calloc((size_t)p->size, sizeof(*p->conns));
    p->deliver = event_new(base, -1, 0, deliver_cb, p);
    if (!p->conninfo || !p->conns || !p->deliver)
        goto fail;
    for (int i = 0; i < p->size; i++) {
        pg_conn *c = &p->conns[i];
        c->pool = p;
        c->id = i;
        c->fd = -1;
        c->backoff_ms = BACKOFF_FIRST_MS;
        c->rev = event_new(base, -1, EV_READ | EV_PERSIST, conn_event_cb, c);
        c->wev = event_new(base, -1, EV_WRITE | EV_PERSIST, conn_event_cb, c);
        c->retry = evtimer_new(base, retry_cb, c);
        if (!c->rev || !c->wev || !c->retry)
            goto fail;
    }
    for (int i = 0; i < p->size; i++)
        conn_open(&p->conns[i]);
    return p;
fail:
    pg_pool_destroy(p);
    return NULL;
}

void pg_pool_destroy(pg_pool *p)
{
    if (!p)
        return;
    p->closing = true;
    while (p->qhead) {
        pg_job *j = p->qhead;
        queue_unlink(p, j);
        job_fail(j, "shutting down", "", true);
        job_finish(j);
    }
    for (int i = 0; p->conns && i < p->size; i++) {
        pg_conn *c = &p->conns[i];
        pg_job *j = c->job;
        c->job = NULL;
        if (c->rev && c->wev)
            conn_close(c);
        if (j) {
            job_fail(j, "shutting down", "", true);
            job_finish(j);
        }
    }
    pool_deliver(p);
    for (int i = 0; p->conns && i < p->size; i++) {
        pg_conn *c = &p->conns[i];
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->retry)
            event_free(c->retry);
    }
    if (p->deliver)
        event_free(p->deliver);
    free(p->conns);
    free(p->conninfo);
    free(p);
}

int pg_pool_ready(const pg_pool *p)
{
    return p->ready;
}

/* True when no connection ever served and every one has failed at least once: PostgreSQL is
 * out of reach (or refuses us) since start, and a job would only wait. */
static bool pool_unreachable(const pg_pool *p)
{
    if (p->ever_ready)
        return false;
    for (int i = 0; i < p->size; i++)
        if (!p->conns[i].failed_unready)
            return false;
    return true;
}

pg_job *pg_pool_submit(pg_pool *p, const pg_query *q)
{
    if (p->closing || p->queued >= p->max_queue || pool_unreachable(p) || !q->done || !q->sql ||
        q->n_params < 0)
        return NULL;
    pg_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->pool = p;
    j->tenant = strdup(q->tenant_id ? q->tenant_id : "");
    if (q->timeout_ms > 0)
        snprintf(j->timeout_text, sizeof(j->timeout_text), "%lld", q->timeout_ms);
    else
        snprintf(j->timeout_text, sizeof(j->timeout_text), "%s", p->timeout_text);
    j->sql = strdup(q->sql);
    j->plan_key = q->prepare && !q->on_row ? q->sql : NULL;
    j->n_params = q->n_params;
    j->on_row = q->on_row;
    j->done = q->done;
    j->arg = q->arg;
    if (!j->tenant || !j->sql)
        goto fail;
    if (q->n_params > 0) {
        j->values = calloc((size_t)q->n_params, sizeof(*j->values));
        if (!j->values)
            goto fail;
        for (int i = 0; i < q->n_params; i++) {
            if (q->values[i] && !(j->values[i] = strdup(q->values[i])))
                goto fail;
        }
    }
    j->state = JOB_QUEUED;
    j->prev = p->qtail;
    if (p->qtail)
        p->qtail->next = j;
    else
        p->qhead = j;
    p->qtail = j;
    p->queued++;
    pool_dispatch(p);
    return j;
fail:
    job_free(j);
    return NULL;
}

void pg_job_cancel(pg_job *j)
{
    if (!j || j->state == JOB_FINISHED || j->canceled)
        return;
    j->canceled = true;
    if (j->state == JOB_QUEUED) {
        queue_unlink(j->pool, j);
        job_finish(j);
        return;
    }
    pg_conn *c = j->conn;
    char errbuf[256];
    PGcancel *cancel = PQgetCancel(c->pg);
    if (!cancel || !PQcancel(cancel, errbuf, sizeof(errbuf)))
        LOG_WARN(COMP, "conn %d: cannot cancel: %s", c->id, cancel ? errbuf : "out of memory");
    PQfreeCancel(cancel);
    /* A paused job reads on, dropping rows, until PostgreSQL ends it. */
    pg_job_resume(j);
}

void pg_job_resume(pg_job *j)
{
    if (!j || j->state != JOB_RUNNING || !j->paused)
        return;
    pg_conn *c = j->conn;
    j->paused = false;
    conn_arm(c, true, c->warmed, false);
    /* Rows libpq already holds raise no socket event: read them from the loop. */
    event_active(c->rev, EV_READ, 0);
}
