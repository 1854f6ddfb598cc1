/* pg_util.h - cdrctl's blocking libpq helpers: connect, run, and one-line error messages. */
#ifndef CDR_PG_UTIL_H
#define CDR_PG_UTIL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "compiler.h"

/* Connects to 'url' (a postgresql:// URL or a "key=value" string) as application "cdrctl".
 * Server notices go to the debug log rather than straight to stderr.
 * Returns the connection (the caller PQfinish()es it), or NULL with the reason in 'err'
 * ("connection to PostgreSQL failed: ..."). */
PGconn *pgu_connect(const char *url, char *err, size_t errlen);

/* Runs 'sql', static text that may hold several statements, with PQexec.
 * Returns 0, or -1 with the server's message in 'err' (see pgu_error). */
int pgu_exec(PGconn *conn, const char *sql, char *err, size_t errlen) CDR_MUST_CHECK;

/* Runs 'sql' with the 'n' text parameters 'params' (a NULL element is SQL NULL).
 * Returns the result, which the caller PQclear()s, when the statement succeeded; NULL with the
 * server's message in 'err' otherwise. */
PGresult *pgu_query(PGconn *conn, const char *sql, int n, const char *const *params, char *err,
                    size_t errlen) CDR_MUST_CHECK;

/* Writes the error of 'res' as one line: the primary message, then "; " and the detail and
 * "; hint: " and the hint when the server sent them. Without a result (NULL) the connection's
 * message is used. */
void pgu_error(const PGconn *conn, const PGresult *res, char *err, size_t errlen);

#endif
