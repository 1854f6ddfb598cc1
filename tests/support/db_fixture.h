/* db_fixture.h - cdrctl on a test's database: `cdrctl ARGS` run with CDR_PG_URL naming the
 * database (itest.h's itest_db), either asserted to succeed or with its status and output left
 * to the test. Failures end the test through Criterion's assertions. */
#ifndef CDR_DB_FIXTURE_H
#define CDR_DB_FIXTURE_H

#include <stddef.h>

#include "itest.h"

/* How long one cdrctl may run before it is killed: a rollup rebuild over a million CDRs fits. */
#define FIXTURE_CTL_TIMEOUT_S 300

/* Runs `cdrctl ARGS` ('args' NULL-terminated) with CDR_PG_URL set to the owner's URL of 'db'
 * (not set when 'db' is NULL or not created: its URL empty), then the "KEY=VALUE" strings of
 * 'env' (NULL-terminated, at most 14; NULL for none), and waits for it. Asserts only that it
 * could be run; its status and output are left in 'p', which the caller frees with
 * itest_proc_free. */
void fixture_ctl_run(const itest_db *db, const char *const *args, const char *const *env,
                     itest_proc *p);

/* Runs `cdrctl ARGS` on 'db' (fixture_ctl_run without 'env') and asserts that it exits 0; the
 * message names the command and holds its stderr. */
void fixture_ctl(const itest_db *db, const char *const *args);

/* The one bigint 'sql' returns on 'c' (itest_scalar, 'n' text parameters), asserted to be
 * there; the message names the statement. */
long long fixture_scalar(PGconn *c, const char *sql, int n, const char *const *params);

/* Runs 'sql' on 'c' ('n' text parameters) and asserts that it succeeds. */
void fixture_exec(PGconn *c, const char *sql, int n, const char *const *params);

/* Runs 'copy_sql' (a COPY ... FROM STDIN) on 'c', sends it the 'len' bytes of 'data' and
 * asserts that the COPY succeeds. */
void fixture_copy_in(PGconn *c, const char *copy_sql, const char *data, size_t len);

#endif
