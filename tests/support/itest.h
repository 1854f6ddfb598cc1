/* itest.h - integration test helpers: the private stack's settings, throw-away databases,
 * running the programs of build/bin with a chosen environment, a clock and error detail. */
#ifndef CDR_ITEST_H
#define CDR_ITEST_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "errfmt.h"
#include <stdint.h>

#define ITEST_URL_MAX  512
#define ITEST_NAME_MAX 64

/* The settings tests/support/teststack writes to the env file (CDR_TEST_ENV_FILE, a compile
 * definition; a variable of the same name in the environment takes precedence). */
typedef struct itest_env {
    char pg_admin_url[ITEST_URL_MAX]; /* superuser, database "postgres", trust auth */
    char pg_host[256];
    char pg_port[16];
    char redis_url[ITEST_URL_MAX];
    char redis_port[16];
    char dir[1024]; /* the stack's temporary directory */
} itest_env;

/* Reads the env file once per process (lines KEY=VALUE; blank lines, "#" comments, an
 * "export " prefix and quotes around the value are allowed). Returns the settings, or NULL
 * with 'err' naming the file and what is missing. */
const itest_env *itest_env_load(char *err, size_t errlen);

/* A database made for one test, owned by a role made for it (LOGIN CREATEROLE), both with
 * unique names. Zero-initialise before use. */
typedef struct itest_db {
    char name[ITEST_NAME_MAX];
    char owner[ITEST_NAME_MAX];
    char url[ITEST_URL_MAX]; /* postgresql://OWNER@HOST:PORT/NAME */
} itest_db;

/* Creates the role and the database. Returns 0, or -1 with the reason in 'err' (the stack is
 * not running, the admin URL is refused, ...). */
int itest_db_create(itest_db *db, char *err, size_t errlen);

/* Drops the database (closing its sessions) and its owner. Does nothing for a zeroed or
 * already dropped 'db'; failures are printed on stderr, since a leftover database harms no
 * other test. */
void itest_db_drop(itest_db *db);

/* Writes the URL of 'db' for 'role' (NULL: the owner) to 'buf'. Returns 0, or -1 when 'len'
 * is too small. */
int itest_db_url(const itest_db *db, const char *role, char *buf, size_t len);

/* Connects to 'db' as 'role' (NULL: the owner); notices are not printed. Returns the
 * connection, or NULL with the reason in 'err'. */
PGconn *itest_db_connect(const itest_db *db, const char *role, char *err, size_t errlen);

/* Runs 'sql' with the 'n' text parameters 'params' and returns the result whatever its status
 * (never NULL unless memory ran out); the caller checks it and PQclear()s it. */
PGresult *itest_query(PGconn *conn, const char *sql, int n, const char *const *params);

/* True when 'res' succeeded (PGRES_COMMAND_OK or PGRES_TUPLES_OK). */
bool itest_ok(const PGresult *res);

/* The SQLSTATE of a failed 'res' ("42501"), or "" when there is none. */
const char *itest_sqlstate(const PGresult *res);

/* Runs 'sql' (parameters as itest_query) that returns one row with one bigint column and
 * stores it in '*out'. Returns 0, or -1 with the server's message in 'err'. */
int itest_scalar(PGconn *conn, const char *sql, int n, const char *const *params, long long *out,
                 char *err, size_t errlen);

/* What a finished program left behind. */
typedef struct itest_proc {
    int status; /* exit status; 128 + signal number when a signal ended it */
    char *out;  /* all of its stdout, NUL-terminated */
    char *err;  /* all of its stderr, NUL-terminated */
} itest_proc;

/* Runs the program 'name' of the build's bin directory (CDR_BIN_DIR) with the arguments 'args'
 * (NULL-terminated; the program name is not among them) and waits for it, at most 'timeout_s'
 * seconds (then it is killed and its status is 128 + SIGKILL). Its environment is the test's
 * without any CDR_* or PG* variable, plus the "KEY=VALUE" strings of 'env' (NULL-terminated;
 * NULL for none). Returns 0 with 'p' filled (free with itest_proc_free), or -1 with 'err' set
 * when it could not be started or its output not collected. */
int itest_run(const char *name, const char *const *args, const char *const *env, int timeout_s,
              itest_proc *p, char *err, size_t errlen);

void itest_proc_free(itest_proc *p);

/* Milliseconds on the monotonic clock, for deadlines and durations. */
int64_t itest_now_ms(void);

/* Sleeps 'ms' milliseconds, resuming after a signal. */
void itest_sleep_ms(int ms);

#endif
