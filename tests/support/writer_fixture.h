/* writer_fixture.h - one cdr-writer under test: a migrated database and a stream key of the
 * test's own on the stack's PostgreSQL and Redis, the program of build/bin running on them,
 * stream entries appended, the stream drained, rows and metrics read back. Each Criterion test
 * is a process of its own, so the one 'wfix' below belongs to one test. Failures end the test
 * through Criterion's assertions. */
#ifndef CDR_WRITER_FIXTURE_H
#define CDR_WRITER_FIXTURE_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <sys/types.h>

#include "http_client.h"
#include "itest.h"

#define WRITER_GROUP    "cdr-writers" /* CDR_WRITER_GROUP's default */
#define WRITER_CONSUMER "itest-writer"

/* What one test runs. */
typedef struct writer_fixture {
    char dir[1100];     /* scratch directory of this test */
    char key[160];      /* the stream key of this test */
    char dead_key[170]; /* its dead-letter stream */
    char redis_url[ITEST_URL_MAX];
    redisContext *redis;
    itest_db db;    /* migrated */
    PGconn *pg;     /* the database's owner, TimeZone UTC */
    pid_t pid;      /* the writer while it runs, or 0 */
    int port;       /* its metrics listener */
    char log[1200]; /* its output */
} writer_fixture;

extern writer_fixture wfix;

/* The suite's .init and .fini: a scratch directory, a stream key named after the test on the
 * stack's Redis, a database migrated with cdrctl; then killing the writer if it still runs,
 * deleting the keys and dropping the database. */
void writer_setup(void);
void writer_teardown(void);

/* Starts cdr-writer on the test's database (as cdr_writer), Redis and stream key, as consumer
 * WRITER_CONSUMER, batches flushed after 50 ms, info logging, a free metrics port, then the
 * "KEY=VALUE" strings of 'extra' (NULL-terminated or NULL), which override. Waits for /readyz
 * 200: Redis and PostgreSQL connected. */
void writer_start(const char *const *extra);

/* Sends SIGTERM and asserts that cdr-writer exits with status 0 within 'timeout_ms'. */
void writer_stop_within(int timeout_ms);

/* writer_stop_within() ten seconds. */
void writer_stop(void);

/* The last part of the writer's output, for assertion messages. */
const char *writer_log_tail(void);

/* GET 'path' on the writer's listener: the status, or 0 when it does not answer. With 'body'
 * not NULL the response is left there (http_response_free). */
int writer_get(const char *path, http_response *body);

/* The value of the series 'series' ("name" or "name{labels}") on /metrics, which must be there. */
double writer_metric(const char *series);

/* XADD with the id 'id' ("*" for a new one) of an entry with the fields of
 * docs/stream-format.md, 'rows' being 'len' bytes. The id Redis gave goes to 'out' (64 bytes)
 * when it is not NULL. */
void stream_add(const char *id, const char *v, const char *kind, const char *n, const char *enc,
                const char *rows, size_t len, char *out);

/* Appends a version 1 entry of 'kind' holding the NUL-terminated COPY text 'rows', plain or
 * zstd-framed; its id goes to 'id' (64 bytes, or NULL). */
void stream_add_rows(const char *kind, const char *rows, char *id);
void stream_add_rows_zstd(const char *kind, const char *rows, char *id);

/* Entries pending in WRITER_GROUP. */
long long stream_pending(void);

/* Waits until the writer acknowledged and deleted every entry: the stream is empty and nothing
 * is pending. */
void stream_drain(void);

/* Runs 'sql' on wfix.pg: one bigint value. */
long long pg_scalar(const char *sql, int n, const char *const *params);

/* Runs 'sql' on wfix.pg, asserting one row (PQclear). */
PGresult *pg_one_row(const char *sql, int n, const char *const *params);

/* Asserts that the 'n' columns of row 0 of 'r' are the texts 'want' (NULL: SQL NULL); 'what'
 * names the row in messages. */
void expect_pg_row(const PGresult *r, const char *const *want, int n, const char *what);

#endif
