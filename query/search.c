/* search.c - /api/cdr and /api/cdr/{call_id}: the statements and the answers.
 *
 * Every statement is static text; each value travels as a parameter. Row-level security limits
 * the rows to the tenant set for the transaction (app.tenant_id); the statements repeat that
 * tenant as their first condition so that the indexes leading with tenant_id serve them.
 *
 * The parameters of the page and CSV statements:
 *   $1 from (datetime, "YYYY-MM-DD hh:mm:ss.ffffff+00") or NULL
 *   $2 from (date-only, a day in $5) or NULL
 *   $3 to (datetime, exclusive) or NULL
 *   $4 to (date-only, that whole day in $5 included) or NULL
 *   $5 tz
 *   $6 direction, $7 disposition, $8 did_e164, $9 ext_number, $10 store_id: NULL = no filter
 * and for the page only:
 *   $11 rows to read (page_size + 1), $12 offset, $13/$14 the cursor's start_ts and call_id.
 * Without from and to the range is the 7 days up to now(); with only one of them, to defaults
 * to now() and from to 7 days before to.
 *
 * The page statement answers the exact total (the rows matching the filters and the range, cursor
 * and offset aside; see SQL_TOTAL_CTE) in every row; an empty page still has one row, whose call_id
 * is NULL, to carry it. */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "errfmt.h"
#include "pg_json.h"
#include "timefmt.h"

/* The tenant of the transaction, the one row-level security applies. */
#define SQL_TENANT "NULLIF(current_setting('app.tenant_id', true), '')::uuid"

#define SQL_HI "COALESCE($3::timestamptz, (($4::date + 1)::timestamp AT TIME ZONE $5::text), now())"
#define SQL_LO                                                                                     \
    "COALESCE($1::timestamptz, ($2::date::timestamp AT TIME ZONE $5::text), " SQL_HI               \
    " - interval '7 days')"

#define SQL_FILTERS                                                                                \
    "c.tenant_id = " SQL_TENANT " AND c.start_ts >= " SQL_LO " AND c.start_ts < " SQL_HI           \
    " AND ($6::text IS NULL OR c.direction = $6::text)"                                            \
    " AND ($7::text IS NULL OR c.disposition = $7::text)"                                          \
    " AND ($8::text IS NULL OR c.did_e164 = $8::text)"                                             \
    " AND ($9::text IS NULL OR c.ext_number = $9::text)"                                           \
    " AND ($10::uuid IS NULL OR c.store_id = $10::uuid)"

#define SQL_US(col) "(extract(epoch FROM c." col ") * 1000000)::int8 AS " col "_us"

/* The columns, in the order of the COL_ constants below. */
#define SQL_COLS                                                                                   \
    "c.call_id, c.sip_domain, c.tenant_id::text AS tenant_id, c.store_id::text AS store_id, "      \
    "c.user_id::text AS user_id, c.direction, c.from_uri, c.to_uri, c.did_e164, c.ext_number, "    \
    "" SQL_US("start_ts") ", " SQL_US("answer_ts") ", " SQL_US(                                    \
        "end_ts") ", "                                                                             \
                  "c.billsec, c.disposition, c.recording_url, c.mos, c.jitter_ms, c.loss_pct, "    \
                  "c.meta_json::text AS meta_json"

enum {
    COL_CALL_ID,
    COL_SIP_DOMAIN,
    COL_TENANT_ID,
    COL_STORE_ID,
    COL_USER_ID,
    COL_DIRECTION,
    COL_FROM_URI,
    COL_TO_URI,
    COL_DID,
    COL_EXT,
    COL_START,
    COL_ANSWER,
    COL_END,
    COL_BILLSEC,
    COL_DISPOSITION,
    COL_RECORDING,
    COL_MOS,
    COL_JITTER,
    COL_LOSS,
    COL_META,
    COL_TOTAL, /* page statement only */
};

/* The filters without the range, for the total's raw edges. */
#define SQL_EDGE_FILTERS                                                                           \
    "c.tenant_id = " SQL_TENANT " AND ($6::text IS NULL OR c.direction = $6::text)"                \
    " AND ($7::text IS NULL OR c.disposition = $7::text)"                                          \
    " AND ($8::text IS NULL OR c.did_e164 = $8::text)"                                             \
    " AND ($9::text IS NULL OR c.ext_number = $9::text)"                                           \
    " AND ($10::uuid IS NULL OR c.store_id = $10::uuid)"

/* The total: lo..hi is the range; h0 = the first UTC hour boundary at or after lo, h1 = the last
 * one at or before hi. The whole hours [h0, h1) are summed from the rollups (they keep tenant,
 * store, direction and a count per disposition): their whole UTC days [s0, s1) from the daily
 * store rollup, the other hours from the hourly one (without a whole day s0 = s1 = h1). The
 * rest, [lo, min(h0, hi)) and [max(h0, h1), hi), is counted in voip_cdr. The rollups know
 * neither DID nor extension: with either filter h0 = h1 = s0 = s1 = hi and every row is
 * counted raw, through the index of that filter. The writer updates the rollups in the
 * transaction that inserts the rows, so all agree in any snapshot. */
#define SQL_NO_ROLLUP "($8::text IS NOT NULL OR $9::text IS NOT NULL)"
#define SQL_ROLLUP_COUNT                                                                           \
    "coalesce(sum(CASE WHEN $7::text IS NULL THEN s.calls"                                         \
    " WHEN $7::text = 'ANSWERED' THEN s.answered WHEN $7::text = 'NO_ANSWER' THEN s.no_answer"     \
    " WHEN $7::text = 'BUSY' THEN s.busy WHEN $7::text = 'FAILED' THEN s.failed END), 0)"
#define SQL_ROLLUP_FILTERS                                                                         \
    "s.tenant_id = " SQL_TENANT " AND ($6::text IS NULL OR s.direction = $6::text)"                \
    " AND ($10::uuid IS NULL OR s.store_id = $10::uuid)"
#define SQL_TOTAL_CTE                                                                              \
    "r AS (SELECT " SQL_LO " AS lo, " SQL_HI " AS hi), "                                           \
    "b0 AS (SELECT lo, hi,"                                                                        \
    " CASE WHEN " SQL_NO_ROLLUP " THEN hi"                                                         \
    "  WHEN date_trunc('hour', lo, 'UTC') = lo THEN lo"                                            \
    "  ELSE date_trunc('hour', lo, 'UTC') + interval '1 hour' END AS h0,"                          \
    " CASE WHEN " SQL_NO_ROLLUP " THEN hi ELSE date_trunc('hour', hi, 'UTC') END AS h1,"           \
    " CASE WHEN date_trunc('day', lo, 'UTC') = lo THEN lo"                                         \
    "  ELSE date_trunc('day', lo, 'UTC') + interval '24 hours' END AS u0,"                         \
    " date_trunc('day', hi, 'UTC') AS u1 FROM r), "                                                \
    "b AS (SELECT lo, hi, h0, h1,"                                                                 \
    " CASE WHEN NOT " SQL_NO_ROLLUP " AND u0 < u1 THEN u0 ELSE h1 END AS s0,"                      \
    " CASE WHEN NOT " SQL_NO_ROLLUP " AND u0 < u1 THEN u1 ELSE h1 END AS s1 FROM b0), "            \
    "t AS (SELECT"                                                                                 \
    " (SELECT " SQL_ROLLUP_COUNT " FROM b JOIN voip_cdr_rollup_store_day s"                        \
    "   ON s.day >= (b.s0 AT TIME ZONE 'UTC')::date AND s.day < (b.s1 AT TIME ZONE 'UTC')::date"   \
    "  WHERE " SQL_ROLLUP_FILTERS ")"                                                              \
    " + (SELECT " SQL_ROLLUP_COUNT " FROM b JOIN voip_cdr_rollup_store_hour s"                     \
    "   ON s.hour >= b.h0 AND s.hour < least(b.s0, b.h1) WHERE " SQL_ROLLUP_FILTERS ")"            \
    " + (SELECT " SQL_ROLLUP_COUNT " FROM b JOIN voip_cdr_rollup_store_hour s"                     \
    "   ON s.hour >= greatest(b.s1, b.h0) AND s.hour < b.h1 WHERE " SQL_ROLLUP_FILTERS ")"         \
    " + (SELECT count(*) FROM b JOIN voip_cdr c"                                                   \
    "   ON c.start_ts >= b.lo AND c.start_ts < least(b.h0, b.hi) WHERE " SQL_EDGE_FILTERS ")"      \
    " + (SELECT count(*) FROM b JOIN voip_cdr c"                                                   \
    "   ON c.start_ts >= greatest(b.h0, b.h1) AND c.start_ts < b.hi WHERE " SQL_EDGE_FILTERS ")"   \
    " AS total), "

static const char page_sql[] =
    "WITH " SQL_TOTAL_CTE "p AS (SELECT " SQL_COLS " FROM voip_cdr c WHERE " SQL_FILTERS
    " AND ($13::timestamptz IS NULL OR (c.start_ts, c.call_id) < ($13::timestamptz, $14::text))"
    " ORDER BY c.start_ts DESC, c.call_id DESC LIMIT $11::int8 OFFSET $12::int8) "
    "SELECT p.*, t.total FROM t LEFT JOIN p ON true ORDER BY p.start_ts_us DESC, p.call_id DESC";

static const char csv_sql[] = "SELECT " SQL_COLS " FROM voip_cdr c WHERE " SQL_FILTERS
                              " ORDER BY c.start_ts DESC, c.call_id DESC";

static const char one_sql[] = "SELECT " SQL_COLS " FROM voip_cdr c WHERE c.tenant_id = " SQL_TENANT
                              " AND c.call_id = $1::text ORDER BY c.start_ts DESC LIMIT 1";

static void stmt_set(sql_stmt *s, int i, const char *v)
{
    if (!v) {
        s->pv[i] = NULL;
        return;
    }
    snprintf(s->values[i], sizeof(s->values[i]), "%s", v);
    s->pv[i] = s->values[i];
}

/* $1..$10, shared by the page and CSV statements. */
static void filters_set(const query_params *p, sql_stmt *s)
{
    stmt_set(s, 0, p->has_from && !p->from_is_date ? p->from : NULL);
    stmt_set(s, 1, p->has_from && p->from_is_date ? p->from : NULL);
    stmt_set(s, 2, p->has_to && !p->to_is_date ? p->to : NULL);
    stmt_set(s, 3, p->has_to && p->to_is_date ? p->to : NULL);
    stmt_set(s, 4, p->tz[0] ? p->tz : "UTC");
    stmt_set(s, 5, p->direction);
    stmt_set(s, 6, p->disposition);
    stmt_set(s, 7, p->did_e164[0] ? p->did_e164 : NULL);
    stmt_set(s, 8, p->ext[0] ? p->ext : NULL);
    stmt_set(s, 9, p->store_id[0] ? p->store_id : NULL);
}

static long page_size_of(const query_params *p)
{
    return p->page_size > 0 ? p->page_size : PARAMS_DEFAULT_PAGE_SIZE;
}

int search_page_stmt(const query_params *p, sql_stmt *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->sql = page_sql;
    out->n = 14;
    filters_set(p, out);
    long size = page_size_of(p);
    long page = p->page > 0 ? p->page : 1;
    snprintf(out->values[10], sizeof(out->values[10]), "%ld", size + 1);
    out->pv[10] = out->values[10];
    if (p->cursor[0]) {
        cursor_pos pos;
        char why[256] = "";
        if (cursor_decode(p->cursor, &pos, why, sizeof(why)) != 0) {
            if (strncmp(why, "cursor", 6) == 0)
                cdr_errf(err, errlen, "%s", why);
            else
                cdr_errf(err, errlen, "cursor: %s", why);
            return -1;
        }
        stmt_set(out, 11, "0");
        if (timefmt_format_pg(pos.start_ts, out->values[12], sizeof(out->values[12])) == 0) {
            cdr_errf(err, errlen, "cursor: time out of range");
            return -1;
        }
        out->pv[12] = out->values[12];
        stmt_set(out, 13, pos.call_id);
    } else {
        snprintf(out->values[11], sizeof(out->values[11]), "%lld",
                 (long long)(page - 1) * (long long)size);
        out->pv[11] = out->values[11];
        stmt_set(out, 12, NULL);
        stmt_set(out, 13, NULL);
    }
    return 0;
}

int search_csv_stmt(const query_params *p, sql_stmt *out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    memset(out, 0, sizeof(*out));
    out->sql = csv_sql;
    out->n = 10;
    filters_set(p, out);
    return 0;
}

int search_one_stmt(const char *call_id, sql_stmt *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!call_id || !call_id[0] || strlen(call_id) >= SQL_STMT_VALUE_MAX) {
        cdr_errf(err, errlen, "call_id: empty or too long");
        return -1;
    }
    out->sql = one_sql;
    out->n = 1;
    stmt_set(out, 0, call_id);
    return 0;
}

/* ---- answers ------------------------------------------------------------------------------ */

static json_t *cdr_object(const PGresult *res, int row)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *qos;
    if (PQgetisnull(res, row, COL_MOS) && PQgetisnull(res, row, COL_JITTER) &&
        PQgetisnull(res, row, COL_LOSS)) {
        qos = json_null();
    } else {
        qos = json_object();
        if (qos) {
            json_object_set_new(qos, "mos", pg_json_real(res, row, COL_MOS));
            json_object_set_new(qos, "jitter_ms", pg_json_real(res, row, COL_JITTER));
            json_object_set_new(qos, "loss_pct", pg_json_real(res, row, COL_LOSS));
        }
    }
    json_t *meta = NULL;
    if (!PQgetisnull(res, row, COL_META))
        meta = json_loads(PQgetvalue(res, row, COL_META), JSON_DECODE_ANY, NULL);
    if (!meta)
        meta = json_null();

    int fail = 0;
    fail |= json_object_set_new(o, "call_id", pg_json_text(res, row, COL_CALL_ID));
    fail |= json_object_set_new(o, "sip_domain", pg_json_text(res, row, COL_SIP_DOMAIN));
    fail |= json_object_set_new(o, "tenant_id", pg_json_text(res, row, COL_TENANT_ID));
    fail |= json_object_set_new(o, "store_id", pg_json_text(res, row, COL_STORE_ID));
    fail |= json_object_set_new(o, "user_id", pg_json_text(res, row, COL_USER_ID));
    fail |= json_object_set_new(o, "direction", pg_json_text(res, row, COL_DIRECTION));
    fail |= json_object_set_new(o, "from_uri", pg_json_text(res, row, COL_FROM_URI));
    fail |= json_object_set_new(o, "to_uri", pg_json_text(res, row, COL_TO_URI));
    fail |= json_object_set_new(o, "did_e164", pg_json_text(res, row, COL_DID));
    fail |= json_object_set_new(o, "ext_number", pg_json_text(res, row, COL_EXT));
    fail |= json_object_set_new(o, "start_ts", pg_json_time(res, row, COL_START));
    fail |= json_object_set_new(o, "answer_ts", pg_json_time(res, row, COL_ANSWER));
    fail |= json_object_set_new(o, "end_ts", pg_json_time(res, row, COL_END));
    fail |= json_object_set_new(o, "billsec",
                                json_integer(strtoll(PQgetvalue(res, row, COL_BILLSEC), NULL, 10)));
    fail |= json_object_set_new(o, "disposition", pg_json_text(res, row, COL_DISPOSITION));
    fail |= json_object_set_new(o, "recording_url", pg_json_text(res, row, COL_RECORDING));
    fail |= json_object_set_new(o, "qos", qos);
    fail |= json_object_set_new(o, "meta_json", meta);
    if (fail) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *search_page_json(const query_params *p, const PGresult *res)
{
    long size = page_size_of(p);
    int n = res ? PQntuples(res) : 0;
    long long total = 0;
    if (n > 0 && !PQgetisnull(res, 0, COL_TOTAL))
        total = strtoll(PQgetvalue(res, 0, COL_TOTAL), NULL, 10);

    json_t *items = json_array();
    json_t *out = json_object();
    if (!items || !out)
        goto fail;
    int shown = 0;
    int last = -1;
    bool more = false;
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, COL_CALL_ID))
            continue; /* the row that carries only the total of an empty page */
        if (shown == size) {
            more = true;
            break;
        }
        json_t *item = cdr_object(res, i);
        if (!item || json_array_append_new(items, item) != 0)
            goto fail;
        shown++;
        last = i;
    }
    json_t *next = json_null();
    if (more && last >= 0) {
        cursor_pos pos;
        char text[CURSOR_MAX];
        pos.start_ts = strtoll(PQgetvalue(res, last, COL_START), NULL, 10);
        snprintf(pos.call_id, sizeof(pos.call_id), "%s", PQgetvalue(res, last, COL_CALL_ID));
        if (cursor_encode(&pos, text, sizeof(text)) == 0)
            next = json_string(text);
    }
    if (json_object_set_new(out, "items", items) != 0) {
        items = NULL;
        json_decref(next);
        goto fail;
    }
    items = NULL;
    if (json_object_set_new(out, "page", json_integer(p->page > 0 ? p->page : 1)) != 0 ||
        json_object_set_new(out, "page_size", json_integer(size)) != 0 ||
        json_object_set_new(out, "total", json_integer(total)) != 0 ||
        json_object_set_new(out, "next_cursor", next) != 0)
        goto fail;
    return out;
fail:
    json_decref(items);
    json_decref(out);
    return NULL;
}

json_t *search_one_json(const PGresult *res)
{
    if (!res || PQntuples(res) < 1 || PQgetisnull(res, 0, COL_CALL_ID))
        return NULL;
    return cdr_object(res, 0);
}

/* ---- CSV (RFC 4180) ----------------------------------------------------------------------- */

static const char *const csv_columns[] = {
    "call_id",     "sip_domain",    "tenant_id",  "store_id",  "user_id",   "direction", "from_uri",
    "to_uri",      "did_e164",      "ext_number", "start_ts",  "answer_ts", "end_ts",    "billsec",
    "disposition", "recording_url", "mos",        "jitter_ms", "loss_pct",  "meta_json",
};

/* One field, quoted when it holds a comma, a double quote, CR or LF (quotes doubled). */
static int csv_field(cdr_buf *out, const char *v)
{
    if (strpbrk(v, ",\"\r\n") == NULL)
        return cdr_buf_append_str(out, v);
    if (cdr_buf_append_char(out, '"') != 0)
        return -1;
    for (const char *s = v; *s; s++) {
        if (*s == '"' && cdr_buf_append_char(out, '"') != 0)
            return -1;
        if (cdr_buf_append_char(out, *s) != 0)
            return -1;
    }
    return cdr_buf_append_char(out, '"');
}

int search_csv_header(cdr_buf *out)
{
    size_t n = sizeof(csv_columns) / sizeof(csv_columns[0]);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && cdr_buf_append_char(out, ',') != 0)
            return -1;
        if (cdr_buf_append_str(out, csv_columns[i]) != 0)
            return -1;
    }
    return cdr_buf_append_str(out, "\r\n");
}

int search_csv_row(const PGresult *res, int row, cdr_buf *out)
{
    size_t start = out->len;
    for (int col = COL_CALL_ID; col <= COL_META; col++) {
        if (col > 0 && cdr_buf_append_char(out, ',') != 0)
            goto fail;
        if (PQgetisnull(res, row, col))
            continue;
        const char *v = PQgetvalue(res, row, col);
        char buf[40];
        if (col == COL_START || col == COL_ANSWER || col == COL_END) {
            if (timefmt_format_utc(strtoll(v, NULL, 10), buf, sizeof(buf)) == 0)
                goto fail;
            v = buf;
        }
        if (csv_field(out, v) != 0)
            goto fail;
    }
    if (cdr_buf_append_str(out, "\r\n") != 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return -1;
}
