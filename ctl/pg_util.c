/* pg_util.c - cdrctl's blocking libpq helpers: connect, run, and one-line error messages. */
#include "pg_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* Copies 'src' to 'dst' (at most 'len' bytes with the NUL) from position 'at', folding runs of
 * newlines and tabs into one space and dropping trailing blanks, so that a multi-line libpq
 * message becomes one line. Returns the new end position. */
static size_t append_oneline(char *dst, size_t len, size_t at, const char *src)
{
    bool blank = false;
    for (; src && *src && at + 1 < len; src++) {
        char c = *src;
        if (c == '\n' || c == '\t' || c == '\r') {
            blank = true;
            continue;
        }
        if (blank && at > 0 && at + 2 < len)
            dst[at++] = ' ';
        blank = false;
        dst[at++] = c;
    }
    if (len > 0)
        dst[at < len ? at : len - 1] = '\0';
    return at;
}

void pgu_error(const PGconn *conn, const PGresult *res, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    err[0] = '\0';
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!primary) {
        const char *msg = res ? PQresultErrorMessage(res) : NULL;
        if (!msg || !*msg)
            msg = conn ? PQerrorMessage(conn) : NULL;
        if (!msg || !*msg)
            msg = "unknown error";
        append_oneline(err, errlen, 0, msg);
        return;
    }
    size_t at = append_oneline(err, errlen, 0, primary);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    if (detail) {
        at = append_oneline(err, errlen, at, "; ");
        at = append_oneline(err, errlen, at, detail);
    }
    if (hint) {
        at = append_oneline(err, errlen, at, "; hint: ");
        append_oneline(err, errlen, at, hint);
    }
}

/* libpq's default prints every NOTICE ("relation already exists, skipping") on stderr, where
 * it would read like a problem. */
static void quiet_notice(void *arg, const char *message)
{
    char line[512];
    append_oneline(line, sizeof(line), 0, message);
    LOG_DEBUG("cdrctl", "server: %s", line);
}

PGconn *pgu_connect(const char *url, char *err, size_t errlen)
{
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const values[] = {url, "cdrctl", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        snprintf(err, errlen, "connection to PostgreSQL failed: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[768];
        pgu_error(conn, NULL, msg, sizeof(msg));
        snprintf(err, errlen, "connection to PostgreSQL failed: %s", msg);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    return conn;
}

int pgu_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pgu_error(conn, res, err, errlen);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

PGresult *pgu_query(PGconn *conn, const char *sql, int n, const char *const *params, char *err,
                    size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pgu_error(conn, res, err, errlen);
        PQclear(res);
        return NULL;
    }
    return res;
}
