/* query_run.h - cdr-query under test: started on a free port against a test database as
 * cdr_reader, waited for until /readyz answers 200, stopped with SIGTERM (exit 0 asserted).
 * Failures end the test through Criterion's assertions. */
#ifndef CDR_QUERY_RUN_H
#define CDR_QUERY_RUN_H

#include <sys/types.h>

#include "itest.h"

/* One running cdr-query. */
typedef struct query_run {
    pid_t pid;      /* 0 when not running */
    int port;       /* its listen port on 127.0.0.1 */
    char log[1200]; /* its stderr and stdout */
} query_run;

/* Starts cdr-query for 'db' with: a free port, the reader role, two PostgreSQL connections,
 * the test JWT secret (cdr_bodies.h), rate limits too high to matter and warn logging; then
 * the "KEY=VALUE" strings of 'extra' (NULL-terminated or NULL), which override. Waits at most
 * 20 s for GET /readyz 200. */
void query_run_start(query_run *q, const itest_db *db, const char *const *extra);

/* SIGTERM; asserts that cdr-query exits with status 0 within 10 s. */
void query_run_stop(query_run *q);

/* SIGKILL, for teardown after a failure; does nothing when not running. */
void query_run_kill(query_run *q);

/* VmRSS or VmHWM ('field', "VmRSS" / "VmHWM") of the running cdr-query in KiB; -1 when
 * unreadable. */
long query_run_kib(const query_run *q, const char *field);

#endif
