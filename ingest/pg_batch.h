/* pg_batch.h - the writer's PostgreSQL session: a batch's rows through COPY into session temp
 * tables, then one statement that inserts them with dedup, updates the rollups, callback state,
 * store names and rejects, in one transaction; refused rows found by bisection. */
#ifndef CDR_PG_BATCH_H
#define CDR_PG_BATCH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"
#include "writer_batch.h"

/* How a failed statement is handled. */
typedef enum pg_error_kind {
    PG_ERR_DATA,       /* a row's fault (SQLSTATE classes 22, 23, 54): split the batch */
    PG_ERR_CONNECTION, /* the session is gone (class 08, 57P01-57P03, no SQLSTATE): reconnect */
    PG_ERR_OTHER,      /* anything else (permissions, a missing table, resources, deadlock):
                          the batch waits and is tried again, nothing is acknowledged */
} pg_error_kind;

/* The kind of the failure of 'res' (NULL: no result at all) on 'conn'. */
pg_error_kind pg_error_classify(const PGconn *conn, const PGresult *res);

/* Writes the error of 'res' (or of 'conn' when 'res' is NULL or holds no primary message) as
 * one line: the primary message, then "; " and the detail when there is one. */
void pg_error_text(const PGconn *conn, const PGresult *res, char *buf, size_t len);

typedef struct pg_batch pg_batch;

/* Returns the session, not connected yet, for 'url' (a postgresql:// URL or "key=value" string,
 * copied), or NULL when memory ran out. */
pg_batch *pg_batch_create(const char *url);
void pg_batch_destroy(pg_batch *pb);

/* Connects unless connected, as application "cdr-writer" with TCP keepalives (the URL may
 * override both), and creates the session's temp tables. Returns 0, or -1 with 'err' (the
 * caller waits and tries again). Outages are logged once, recoveries once. */
int pg_batch_connect(pg_batch *pb, char *err, size_t errlen) CDR_MUST_CHECK;

bool pg_batch_connected(const pg_batch *pb);

/* The open connection, for other work in autocommit between batches (partitions), or NULL. */
PGconn *pg_batch_conn(pg_batch *pb);

/* Checks that the idle session still answers (an empty query), so that an outage shows while
 * there is nothing to write. Returns 0, or -1 with the session closed. */
int pg_batch_check(pg_batch *pb) CDR_MUST_CHECK;

/* Marks the session lost after a connection failure seen by another user of pg_batch_conn(). */
void pg_batch_lost(pg_batch *pb, const char *why);

typedef struct pg_batch_result {
    long long inserted;       /* CDRs new to voip_cdr */
    long long duplicates;     /* CDRs voip_cdr already held (or held twice in the batch) */
    long long rejects_ingest; /* reject rows of ingest newly stored */
    long long rejects_writer; /* rows PostgreSQL refused, newly stored as rejects */
    long long lost;           /* rows that could not be stored at all (see writer_batch_lose) */
    int transactions;         /* committed */
} pg_batch_result;

/* Writes every row of 'b' not yet committed: in one transaction when PostgreSQL takes them all;
 * when it refuses one (PG_ERR_DATA), the rows are split in halves, each in its own transaction,
 * until the refused rows stand alone, and each of those is stored as a reject row of source
 * "writer" instead (writer_batch_refuse); a reject row that is refused in turn is lost
 * (writer_batch_lose). Committed rows are marked done in 'b', and counted into '*res' (which the
 * caller zeroes once per batch).
 * Returns 0 when every row is done, or -1 with 'err' when the connection failed (the session is
 * closed) or PostgreSQL failed otherwise: the caller waits and calls again with the same batch;
 * rows committed before are not written again, and a commit whose answer was lost is
 * deduplicated. */
int pg_batch_write(pg_batch *pb, writer_batch *b, pg_batch_result *res, char *err,
                   size_t errlen) CDR_MUST_CHECK;

#endif
