/* pg_batch.c - the writer's PostgreSQL session: COPY into temp tables, one statement for the
 * insert with dedup, the rollups, callback state, store names and rejects, and bisection of
 * refused rows.
 *
 * The session is blocking libpq on the writer's main thread, which does nothing else while a
 * batch is written; a PostgreSQL that stops answering is detected by TCP keepalives and
 * tcp_user_timeout (set at connect, overridable in the URL).
 *
 * Two writers never deadlock: each statement takes its row locks in key order (the INSERT into
 * voip_cdr by (tenant_id, call_id, start_ts), every upsert by its primary key), and the tables
 * are always visited in the same order. */
#include "pg_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdr_codec.h"
#include "copy_binary.h"
#include "errfmt.h"
#include "log.h"
#include "rollup_sql.h"
#include "timefmt.h"

#define COMPONENT  "writer"
#define COPY_CHUNK (256 * 1024) /* bytes handed to PQputCopyData at once, at most */
#define ERR_MAX    1024
#define WHERE_MAX  512
#define STAGE_CDR  "pg_temp.cdr_stage"
#define STAGE_REJ  "pg_temp.reject_stage"

/* Session temp tables: ON COMMIT DELETE ROWS empties them at every commit, so a batch never
 * sees the rows of the one before, and no other session ever sees them. */
static const char create_sql[] =
    "CREATE TEMP TABLE cdr_stage (LIKE public.voip_cdr_staging) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE reject_stage (LIKE public.voip_cdr_rejects_staging) ON COMMIT DELETE ROWS";

static const char copy_cdr_sql[] = "COPY " STAGE_CDR " (" CDR_CODEC_CDR_COLUMNS ") FROM STDIN";
static const char copy_cdr_binary_sql[] =
    "COPY " STAGE_CDR " (" CDR_CODEC_CDR_COLUMNS ") FROM STDIN " COPY_BINARY_OPTIONS;
static const char copy_rej_sql[] =
    "COPY " STAGE_REJ " (" CDR_CODEC_REJECT_COLUMNS ", entry_id, entry_seq) FROM STDIN";

/* What the writer sets of a voip_cdr row (the staging table has store_name besides). */
#define VOIP_CDR_COLUMNS                                                                           \
    "tenant_id, call_id, start_ts, store_id, sip_domain, direction, from_uri, to_uri, did_e164, "  \
    "ext_number, user_id, answer_ts, end_ts, billsec, disposition, recording_url, mos, "           \
    "jitter_ms, loss_pct, meta_json, ingested_at"

#define ROLLUP_ADD                                                                                 \
    "calls = r.calls + excluded.calls, answered = r.answered + excluded.answered, "                \
    "no_answer = r.no_answer + excluded.no_answer, busy = r.busy + excluded.busy, "                \
    "failed = r.failed + excluded.failed, billsec_sum = r.billsec_sum + excluded.billsec_sum, "    \
    "ring_sum_s = r.ring_sum_s + excluded.ring_sum_s, mos_sum = r.mos_sum + excluded.mos_sum, "    \
    "mos_n = r.mos_n + excluded.mos_n, jitter_sum = r.jitter_sum + excluded.jitter_sum, "          \
    "jitter_n = r.jitter_n + excluded.jitter_n, loss_sum = r.loss_sum + excluded.loss_sum, "       \
    "loss_n = r.loss_n + excluded.loss_n, poor_mos_n = r.poor_mos_n + excluded.poor_mos_n"

/* The extension rollups add the inbound calls not answered, and keep the user of the batch's
 * latest call when it has one. */
#define ROLLUP_EXT_ADD                                                                             \
    ROLLUP_ADD ", in_missed = r.in_missed + excluded.in_missed, "                                  \
               "user_id = coalesce(excluded.user_id, r.user_id)"

/* Step 4 of docs/writer.md after the COPY: everything below the INSERT into voip_cdr reads only
 * the rows it RETURNs, so a CDR already stored (a redelivery, a retry, a duplicate in the batch)
 * is counted nowhere. Store names are taken from every staged row: the latest name seen wins.
 * Only the stores of which some staged row carries a name other than the stored one are looked
 * at (usually none: a hashed anti-join, where finding each store's latest row sorts the whole
 * batch), and the upsert leaves out a store whose latest name is the stored one: it would lock
 * the row even without changing it, which would make a second writer wait for this one's COMMIT
 * (and write a WAL record per store).
 * Answers one row: CDRs inserted, ingest rejects stored, writer rejects stored. */
static const char batch_sql[] =
    "WITH ins AS ("
    "  INSERT INTO public.voip_cdr (" VOIP_CDR_COLUMNS ")"
    "  SELECT " VOIP_CDR_COLUMNS " FROM " STAGE_CDR " ORDER BY tenant_id, call_id, start_ts"
    "  ON CONFLICT DO NOTHING"
    "  RETURNING tenant_id, call_id, store_id, start_ts, answer_ts, direction, disposition,"
    "      billsec, ext_number, user_id, mos, jitter_ms, loss_pct, from_uri, to_uri"
    "), store_hour AS ("
    "  INSERT INTO public.voip_cdr_rollup_store_hour AS r (tenant_id, hour, store_id, "
    "direction, " ROLLUP_COLUMNS ")"
    "  SELECT " ROLLUP_STORE_HOUR_KEY ", " ROLLUP_MEASURES
    "    FROM ins GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (tenant_id, hour, store_id, direction) DO UPDATE SET " ROLLUP_ADD
    "), store_day AS ("
    "  INSERT INTO public.voip_cdr_rollup_store_day AS r (tenant_id, day, store_id, "
    "direction, " ROLLUP_COLUMNS ")"
    "  SELECT " ROLLUP_STORE_DAY_KEY ", " ROLLUP_MEASURES
    "    FROM ins GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (tenant_id, day, store_id, direction) DO UPDATE SET " ROLLUP_ADD
    "), ext (tenant_id, day, ext_number, " ROLLUP_EXT_COLUMNS ") AS MATERIALIZED ("
    "  SELECT " ROLLUP_EXT_DAY_KEY ", " ROLLUP_EXT_MEASURES
    "    FROM ins WHERE ext_number IS NOT NULL GROUP BY 1, 2, 3"
    "), ext_day AS ("
    "  INSERT INTO public.voip_cdr_rollup_ext_day AS r (tenant_id, day, ext_number, "
    "" ROLLUP_EXT_COLUMNS ")"
    "  SELECT * FROM ext ORDER BY 1, 2, 3"
    "  ON CONFLICT (tenant_id, day, ext_number) DO UPDATE SET " ROLLUP_EXT_ADD "), ext_month AS ("
    "  INSERT INTO public.voip_cdr_rollup_ext_month AS r (tenant_id, month, ext_number, "
    "" ROLLUP_EXT_COLUMNS ")"
    "  SELECT tenant_id, date_trunc('month', day)::date, ext_number, " ROLLUP_EXT_SUMS
    "    FROM ext GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "  ON CONFLICT (tenant_id, month, ext_number) DO UPDATE SET " ROLLUP_EXT_ADD "), callback AS ("
    "  INSERT INTO public.voip_callback_state AS c (tenant_id, number, last_answered_ts,"
    "      last_missed_ts)"
    "  SELECT " ROLLUP_CALLBACK_SELECT "    FROM ins WHERE " ROLLUP_CALLBACK_WHERE
    " GROUP BY 1, 2 ORDER BY 1, 2"
    "  " ROLLUP_CALLBACK_UPSERT "), stores AS ("
    "  INSERT INTO public.voip_stores AS s (tenant_id, store_id, name)"
    "  SELECT DISTINCT ON (tenant_id, store_id) tenant_id, store_id, store_name"
    "    FROM " STAGE_CDR "   WHERE store_name IS NOT NULL AND (tenant_id, store_id) IN ("
    "       SELECT tenant_id, store_id FROM " STAGE_CDR " n"
    "        WHERE tenant_id IS NOT NULL AND store_id IS NOT NULL AND store_name IS NOT NULL"
    "          AND NOT EXISTS (SELECT FROM public.voip_stores k WHERE k.tenant_id = n.tenant_id"
    "              AND k.store_id = n.store_id AND k.name = n.store_name))"
    "   ORDER BY tenant_id, store_id, ingested_at DESC, start_ts DESC"
    "  ON CONFLICT (tenant_id, store_id) DO UPDATE SET name = excluded.name, updated_at = now()"
    "   WHERE s.name IS DISTINCT FROM excluded.name"
    "), rejects AS ("
    "  INSERT INTO public.voip_cdr_rejects (" CDR_CODEC_REJECT_COLUMNS ", entry_id, entry_seq)"
    "  SELECT " CDR_CODEC_REJECT_COLUMNS ", entry_id, entry_seq"
    "    FROM " STAGE_REJ " ORDER BY entry_id, entry_seq"
    "  ON CONFLICT (entry_id, entry_seq) DO NOTHING"
    "  RETURNING source"
    ")"
    "SELECT (SELECT count(*) FROM ins),"
    "       (SELECT count(*) FROM rejects WHERE source = 'ingest'),"
    "       (SELECT count(*) FROM rejects WHERE source <> 'ingest')";

struct pg_batch {
    char *url;
    PGconn *conn;
    cdr_buf binary;        /* CDR rows in binary COPY form, a chunk at a time */
    cdr_buf fields;        /* the fields of the row being converted */
    char where[WHERE_MAX]; /* user@host:port/db, never the password */
    bool in_outage;
    bool ever_connected;
    bool binary_ok; /* the staging table's types are those copy_binary writes */
};

typedef enum tx_result {
    TX_OK,    /* committed, or nothing to do */
    TX_DATA,  /* a row was refused: rolled back, 'reason' says why */
    TX_RETRY, /* rolled back or the session is gone: 'err' says why */
    TX_TEXT,  /* a CDR row is not in a form copy_binary converts: rolled back, send it as text */
} tx_result;

/* Copies 'src' to 'dst' from 'at', turning each run of newlines and tabs into one space, so
 * that a multi-line server message becomes one line. Returns the new end. */
static size_t put_line(char *dst, size_t len, size_t at, const char *src)
{
    for (; src && *src && at + 1 < len; src++) {
        bool blank = *src == '\n' || *src == '\r' || *src == '\t';
        if (!blank)
            dst[at++] = *src;
        else if (at > 0 && dst[at - 1] != ' ')
            dst[at++] = ' ';
    }
    if (len > 0)
        dst[at < len ? at : len - 1] = '\0';
    return at;
}

void pg_error_text(const PGconn *conn, const PGresult *res, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!primary) {
        const char *msg = res ? PQresultErrorMessage(res) : NULL;
        if (!msg || !*msg)
            msg = conn ? PQerrorMessage(conn) : NULL;
        size_t at = put_line(buf, len, 0, msg && *msg ? msg : "unknown error");
        while (at > 0 && buf[at - 1] == ' ')
            buf[--at] = '\0';
        return;
    }
    size_t at = put_line(buf, len, 0, primary);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    if (detail) {
        at = put_line(buf, len, at, "; ");
        put_line(buf, len, at, detail);
    }
}

pg_error_kind pg_error_classify(const PGconn *conn, const PGresult *res)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return PG_ERR_CONNECTION;
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* libpq's own failures (the server went away mid-result) carry no SQLSTATE. */
    if (!st || strlen(st) != 5)
        return PG_ERR_CONNECTION;
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
        strcmp(st, "57P03") == 0)
        return PG_ERR_CONNECTION;
    /* Data exceptions, integrity violations (CHECK, NOT NULL, no partition for the row) and
     * program limits (an index row too large): the fault of a row. */
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 || strncmp(st, "54", 2) == 0)
        return PG_ERR_DATA;
    return PG_ERR_OTHER;
}

/* "user@host:port/db" of 'url' for log lines, without the password. */
static void describe_url(const char *url, char *where, size_t len)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    const char *user = "", *host = "", *port = "", *db = "";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    snprintf(where, len, "%s%s%s%s%s/%s", user, *user ? "@" : "", *host ? host : "(socket)",
             *port ? ":" : "", port, db);
    PQconninfoFree(opts);
    PQfreemem(errmsg);
}

pg_batch *pg_batch_create(const char *url)
{
    pg_batch *pb = calloc(1, sizeof(*pb));
    if (!pb)
        return NULL;
    pb->url = strdup(url);
    if (!pb->url) {
        free(pb);
        return NULL;
    }
    describe_url(url, pb->where, sizeof(pb->where));
    return pb;
}

void pg_batch_destroy(pg_batch *pb)
{
    if (!pb)
        return;
    PQfinish(pb->conn);
    cdr_buf_free(&pb->binary);
    cdr_buf_free(&pb->fields);
    free(pb->url);
    free(pb);
}

bool pg_batch_connected(const pg_batch *pb)
{
    return pb->conn != NULL;
}

PGconn *pg_batch_conn(pg_batch *pb)
{
    return pb->conn;
}

/* Logs a failure of the session: one line per outage, the retries that follow at DEBUG. */
static void log_failure(pg_batch *pb, bool was_connected, const char *why)
{
    if (pb->in_outage) {
        LOG_DEBUG(COMPONENT, "postgresql %s: %s", pb->where, why);
        return;
    }
    pb->in_outage = true;
    if (was_connected)
        LOG_WARN(COMPONENT, "postgresql %s: connection lost: %s; reconnecting", pb->where, why);
    else
        LOG_WARN(COMPONENT, "postgresql %s: cannot connect: %s; retrying", pb->where, why);
}

void pg_batch_lost(pg_batch *pb, const char *why)
{
    bool was = pb->conn != NULL;
    PQfinish(pb->conn);
    pb->conn = NULL;
    log_failure(pb, was, why);
}

int pg_batch_check(pg_batch *pb)
{
    if (!pb->conn)
        return -1;
    PGresult *r = PQexec(pb->conn, "");
    if (PQresultStatus(r) == PGRES_EMPTY_QUERY) {
        PQclear(r);
        return 0;
    }
    char why[ERR_MAX];
    pg_error_text(pb->conn, r, why, sizeof(why));
    PQclear(r);
    pg_batch_lost(pb, why);
    return -1;
}

/* The types of the staging table's CDR columns, in CDR_CODEC_CDR_COLUMNS order. */
static const char stage_types_sql[] =
    "SELECT format_type(a.atttypid, a.atttypmod)"
    "  FROM unnest(string_to_array(replace($1, ' ', ''), ',')) WITH ORDINALITY c (name, i)"
    "  LEFT JOIN pg_attribute a ON a.attrelid = '" STAGE_CDR "'::regclass AND a.attname = c.name"
    "       AND NOT a.attisdropped"
    " ORDER BY c.i";

/* Whether the staging table of 'conn' has, column by column, the types copy_binary writes. A
 * table changed by a migration this writer does not know gets the rows as text instead. */
static bool stage_takes_binary(PGconn *conn, const char *where)
{
    const char *params[1] = {CDR_CODEC_CDR_COLUMNS};
    PGresult *r = PQexecParams(conn, stage_types_sql, 1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == CDR_CODEC_CDR_NCOLS;
    if (!ok) {
        char why[ERR_MAX];
        pg_error_text(conn, r, why, sizeof(why));
        LOG_WARN(COMPONENT,
                 "postgresql %s: cannot read the staging table's types (%s): CDR rows "
                 "are sent as text",
                 where, why);
    }
    for (int i = 0; ok && i < CDR_CODEC_CDR_NCOLS; i++) {
        const char *got = PQgetisnull(r, i, 0) ? "(none)" : PQgetvalue(r, i, 0);
        if (strcmp(got, copy_binary_cdr_type(i)) != 0) {
            LOG_WARN(COMPONENT,
                     "postgresql %s: staging column %d is %s, not %s: CDR rows are sent as text",
                     where, i + 1, got, copy_binary_cdr_type(i));
            ok = false;
        }
    }
    PQclear(r);
    return ok;
}

/* Server notices (none are expected) go to the debug log, not straight to stderr. */
static void quiet_notice(void *arg, const char *message)
{
    char line[512];
    put_line(line, sizeof(line), 0, message);
    LOG_DEBUG(COMPONENT, "postgresql: %s", line);
}

int pg_batch_connect(pg_batch *pb, char *err, size_t errlen)
{
    if (pb->conn)
        return 0;
    /* Listed before dbname, so that the URL may override each of them. */
    const char *const keys[] = {"fallback_application_name",
                                "connect_timeout",
                                "keepalives",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "dbname",
                                NULL};
    const char *const values[] = {"cdr-writer", "5", "1", "10", "5", "3", "60000", pb->url, NULL};
    char why[ERR_MAX];
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        pg_error_text(conn, NULL, why, sizeof(why));
        PQfinish(conn);
        cdr_errf(err, errlen, "%s", conn ? why : "out of memory");
        log_failure(pb, false, err);
        return -1;
    }
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    PGresult *r = PQexec(conn, create_sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_error_text(conn, r, why, sizeof(why));
        PQclear(r);
        PQfinish(conn);
        cdr_errf(err, errlen, "cannot create the staging tables: %s", why);
        log_failure(pb, false, err);
        return -1;
    }
    PQclear(r);
    pb->binary_ok = stage_takes_binary(conn, pb->where);
    pb->conn = conn;
    if (pb->in_outage)
        LOG_INFO(COMPONENT, "postgresql %s: connection is back", pb->where);
    else if (!pb->ever_connected)
        LOG_INFO(COMPONENT, "postgresql %s: connected", pb->where);
    pb->in_outage = false;
    pb->ever_connected = true;
    return 0;
}

static bool put(PGconn *conn, const char *p, size_t len)
{
    return PQputCopyData(conn, p, (int)len) == 1;
}

/* Sends the CDR rows of [lo, hi) of 'b' not done in binary COPY form, a chunk at a time.
 * Returns false when a row could not be sent, with '*as_text' set when the cause is a row not
 * in a form copy_binary converts. */
static bool send_binary(pg_batch *pb, const writer_batch *b, int lo, int hi, bool *as_text)
{
    cdr_buf *out = &pb->binary;
    cdr_buf_reset(out);
    if (copy_binary_header(out) != 0)
        return false;
    for (int i = lo; i < hi; i++) {
        const wb_row *row = &b->rows[i];
        if (row->done || row->table != WB_CDR)
            continue;
        copy_binary_result c =
            copy_binary_cdr_row(out, b->text.data + row->off, row->len - 1, &pb->fields);
        if (c == COPY_BINARY_TEXT) {
            LOG_DEBUG(COMPONENT,
                      "entry %s row %d is not in the form cdr-ingest writes: its rows "
                      "go to PostgreSQL as text",
                      b->entries[row->entry].id, row->seq);
            *as_text = true;
            return false;
        }
        if (c != COPY_BINARY_OK)
            return false;
        if (out->len >= COPY_CHUNK) {
            if (!put(pb->conn, out->data, out->len))
                return false;
            cdr_buf_reset(out);
        }
    }
    return copy_binary_trailer(out) == 0 && put(pb->conn, out->data, out->len);
}

/* Sends the rows of [lo, hi) of 'b' bound for 'table' and not done as the batch holds them, in
 * COPY text form. Consecutive rows lie back to back in the batch's text: they go in chunks, not
 * row by row. Returns false when a chunk could not be sent. */
static bool send_text(PGconn *conn, const writer_batch *b, int lo, int hi, wb_table table)
{
    size_t start = 0, len = 0;
    for (int i = lo; i < hi; i++) {
        const wb_row *row = &b->rows[i];
        if (row->done || row->table != table)
            continue;
        if (len > 0 && row->off == start + len && len + row->len <= COPY_CHUNK) {
            len += row->len;
            continue;
        }
        if (len > 0 && !put(conn, b->text.data + start, len))
            return false;
        start = row->off;
        len = row->len;
    }
    return len == 0 || put(conn, b->text.data + start, len);
}

/* COPYs the rows of [lo, hi) of 'b' bound for 'table' and not done ('expect' of them) with
 * 'sql', in binary form when 'binary' (CDR rows only: send_binary). Returns 0; 1 when a row is not
 * in a form copy_binary converts (the COPY failed: the transaction must be rolled back); or -1 with
 * the failed result in '*failed' (may be NULL), or with '*short_copy' set and 'reason' filled
 * when PostgreSQL stored fewer rows than were sent (a text row that reads as the end-of-data
 * marker "\." would silently end the COPY). */
static int copy_rows(pg_batch *pb, const writer_batch *b, int lo, int hi, wb_table table,
                     bool binary, long long expect, PGresult **failed, bool *short_copy,
                     char *reason, size_t rlen)
{
    PGconn *conn = pb->conn;
    const char *sql =
        table == WB_CDR ? (binary ? copy_cdr_binary_sql : copy_cdr_sql) : copy_rej_sql;
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        *failed = r;
        return -1;
    }
    PQclear(r);
    bool as_text = false;
    bool ok = binary ? send_binary(pb, b, lo, hi, &as_text) : send_text(conn, b, lo, hi, table);
    (void)PQputCopyEnd(conn, ok        ? NULL
                             : as_text ? "a row goes as text instead"
                                       : "the writer could not send every row");
    r = PQgetResult(conn);
    for (PGresult *more; (more = PQgetResult(conn));)
        PQclear(more);
    /* PostgreSQL could not read the binary data (not expected: the types are checked at
     * connect): the rows go as text rather than the session being dropped and the batch
     * retried the same way for ever. */
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (binary && !as_text && state &&
        (strcmp(state, "08P01") == 0 || strcmp(state, "22P03") == 0) &&
        PQstatus(conn) == CONNECTION_OK) {
        char why[ERR_MAX];
        pg_error_text(conn, r, why, sizeof(why));
        LOG_WARN(COMPONENT, "binary COPY refused (%s): the rows go as text", why);
        as_text = true;
    }
    if (as_text && PQstatus(conn) == CONNECTION_OK) {
        PQclear(r);
        return 1;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return -1;
    }
    long long stored = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if (stored != expect) {
        *short_copy = true;
        snprintf(reason, rlen, "COPY stored %lld of %lld rows: a row reads as the end of the data",
                 stored, expect);
        return -1;
    }
    return 0;
}

/* Runs 'sql' and keeps its result in '*out' when it did not end with 'want'. */
static bool run(PGconn *conn, const char *sql, ExecStatusType want, PGresult **out)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != want) {
        *out = r;
        return false;
    }
    *out = r;
    return true;
}

/* ROLLBACK of the transaction in progress. False when that failed: the session is dropped and
 * 'err' says why. */
static bool rollback(pg_batch *pb, char *err, size_t errlen)
{
    PGresult *r = PQexec(pb->conn, "ROLLBACK");
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        return true;
    }
    char why[ERR_MAX];
    pg_error_text(pb->conn, r, why, sizeof(why));
    PQclear(r);
    cdr_errf(err, errlen, "%s", why);
    pg_batch_lost(pb, why);
    return false;
}

/* Writes the rows of [lo, hi) not done yet in one transaction, the CDR rows in binary COPY
 * form when 'binary'. */
static tx_result run_tx_as(pg_batch *pb, writer_batch *b, int lo, int hi, bool binary,
                           pg_batch_result *res, char *reason, size_t rlen, char *err,
                           size_t errlen)
{
    long long n_cdr = 0, n_rej = 0;
    for (int i = lo; i < hi; i++) {
        if (b->rows[i].done)
            continue;
        if (b->rows[i].table == WB_CDR)
            n_cdr++;
        else
            n_rej++;
    }
    if (n_cdr + n_rej == 0)
        return TX_OK;

    PGconn *conn = pb->conn;
    PGresult *r = NULL;
    bool short_copy = false;
    if (!run(conn, "BEGIN", PGRES_COMMAND_OK, &r))
        goto fail;
    PQclear(r);
    r = NULL;
    if (n_cdr > 0) {
        int c = copy_rows(pb, b, lo, hi, WB_CDR, binary, n_cdr, &r, &short_copy, reason, rlen);
        if (c == 1)
            return rollback(pb, err, errlen) ? TX_TEXT : TX_RETRY;
        if (c != 0)
            goto fail;
    }
    if (n_rej > 0 &&
        copy_rows(pb, b, lo, hi, WB_REJECT, false, n_rej, &r, &short_copy, reason, rlen) != 0)
        goto fail;
    if (!run(conn, batch_sql, PGRES_TUPLES_OK, &r))
        goto fail;
    if (PQntuples(r) != 1 || PQnfields(r) != 3) {
        PQclear(r);
        r = NULL;
        cdr_errf(reason, rlen, "unexpected answer to the batch statement");
        goto other;
    }
    long long inserted = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    long long rej_ingest = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    long long rej_writer = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    r = NULL;
    if (!run(conn, "COMMIT", PGRES_COMMAND_OK, &r))
        goto fail;
    /* COMMIT of a transaction that failed unnoticed answers ROLLBACK. */
    if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        PQclear(r);
        r = NULL;
        cdr_errf(reason, rlen, "the transaction was rolled back");
        goto other;
    }
    PQclear(r);

    for (int i = lo; i < hi; i++)
        b->rows[i].done = true;
    res->inserted += inserted;
    res->duplicates += n_cdr - inserted;
    res->rejects_ingest += rej_ingest;
    res->rejects_writer += rej_writer;
    res->transactions++;
    return TX_OK;

fail:;
    pg_error_kind kind = short_copy ? PG_ERR_DATA : pg_error_classify(conn, r);
    if (!short_copy)
        pg_error_text(conn, r, reason, rlen);
    PQclear(r);
    if (kind == PG_ERR_CONNECTION) {
        cdr_errf(err, errlen, "%s", reason);
        pg_batch_lost(pb, reason);
        return TX_RETRY;
    }
    if (!rollback(pb, err, errlen))
        return TX_RETRY;
    if (kind == PG_ERR_DATA)
        return TX_DATA;
    cdr_errf(err, errlen, "%s", reason);
    return TX_RETRY;

other:
    r = PQexec(conn, "ROLLBACK");
    PQclear(r);
    cdr_errf(err, errlen, "%s", reason);
    return TX_RETRY;
}

/* Writes the rows of [lo, hi) not done yet in one transaction: the CDR rows in binary COPY
 * form, or as text when one of them is not in a form copy_binary converts. */
static tx_result run_tx(pg_batch *pb, writer_batch *b, int lo, int hi, pg_batch_result *res,
                        char *reason, size_t rlen, char *err, size_t errlen)
{
    tx_result t = run_tx_as(pb, b, lo, hi, pb->binary_ok, res, reason, rlen, err, errlen);
    return t == TX_TEXT ? run_tx_as(pb, b, lo, hi, false, res, reason, rlen, err, errlen) : t;
}

/* Writes [lo, hi), halving it on a refused row until that row stands alone. */
static tx_result write_range(pg_batch *pb, writer_batch *b, int lo, int hi, pg_batch_result *res,
                             char *err, size_t errlen)
{
    char reason[ERR_MAX];
    tx_result t = run_tx(pb, b, lo, hi, res, reason, sizeof(reason), err, errlen);
    if (t != TX_DATA)
        return t;
    if (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        t = write_range(pb, b, lo, mid, res, err, errlen);
        return t == TX_OK ? write_range(pb, b, mid, hi, res, err, errlen) : t;
    }
    wb_row *row = &b->rows[lo];
    const char *id = b->entries[row->entry].id;
    if (!row->refused) {
        LOG_DEBUG(COMPONENT, "entry %s row %d refused: %s", id, row->seq, reason);
        if (writer_batch_refuse(b, lo, reason, timefmt_now()) == 0)
            return write_range(pb, b, lo, hi, res, err, errlen);
        cdr_errf(reason, sizeof(reason), "out of memory for a reject row");
    }
    /* Even the reject row was refused: only the dead-letter stream is left. */
    LOG_ERROR(COMPONENT, "entry %s row %d cannot be stored: %s; it goes to the dead letters", id,
              row->seq, reason);
    if (writer_batch_lose(b, lo, reason) != 0) {
        cdr_errf(err, errlen, "out of memory");
        return TX_RETRY;
    }
    res->lost++;
    return TX_OK;
}

int pg_batch_write(pg_batch *pb, writer_batch *b, pg_batch_result *res, char *err, size_t errlen)
{
    if (!pb->conn) {
        cdr_errf(err, errlen, "not connected");
        return -1;
    }
    return write_range(pb, b, 0, b->n_rows, res, err, errlen) == TX_OK ? 0 : -1;
}
