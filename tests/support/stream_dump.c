/* stream_dump.c - a Redis Stream read back and decoded, and expectations on its rows. */
#include "stream_dump.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

#define MAX_ROWS_LEN (256u << 20)

static const char *const cdr_columns[CDR_CODEC_CDR_NCOLS] = {
    "tenant_id", "store_id", "store_name", "sip_domain",  "call_id",       "direction",
    "from_uri",  "to_uri",   "did_e164",   "ext_number",  "user_id",       "start_ts",
    "answer_ts", "end_ts",   "billsec",    "disposition", "recording_url", "mos",
    "jitter_ms", "loss_pct", "meta_json",  "ingested_at"};
static const char *const reject_columns[CDR_CODEC_REJECT_NCOLS] = {
    "received_at", "tenant_id", "sip_domain", "call_id", "source", "reason", "raw"};

static bool is_cdr(const char *kind)
{
    return strcmp(kind, CDR_CODEC_KIND_CDR) == 0;
}

static const char *entry_field(const redisReply *fields, const char *name, size_t *len)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) {
            if (len)
                *len = fields->element[i + 1]->len;
            return fields->element[i + 1]->str;
        }
    return NULL;
}

/* Decodes one XRANGE element into 'e', asserting the format of docs/stream-format.md. */
static void entry_decode(const redisReply *x, sentry *e)
{
    cr_assert(x->type == REDIS_REPLY_ARRAY && x->elements == 2);
    const char *id = x->element[0]->str;
    const redisReply *f = x->element[1];
    const char *v = entry_field(f, "v", NULL), *kind = entry_field(f, "kind", NULL),
               *n = entry_field(f, "n", NULL), *enc = entry_field(f, "enc", NULL);
    size_t payload_len = 0;
    const char *payload = entry_field(f, "rows", &payload_len);
    cr_assert(v && kind && n && enc && payload, "entry %s lacks one of v, kind, n, enc, rows", id);
    cr_assert_str_eq(v, "1", "entry %s: v", id);
    cr_assert(is_cdr(kind) || strcmp(kind, CDR_CODEC_KIND_REJECT) == 0, "entry %s: kind %s", id,
              kind);
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    snprintf(e->enc, sizeof(e->enc), "%s", enc);
    e->n = strtol(n, NULL, 10);
    int ncols = is_cdr(kind) ? CDR_CODEC_CDR_NCOLS : CDR_CODEC_REJECT_NCOLS;

    cdr_buf scratch = {0}, split = {0};
    const char *rows;
    size_t rows_len;
    char err[256];
    cr_assert(cdr_codec_open(v, enc, payload, payload_len, MAX_ROWS_LEN, &scratch, &rows, &rows_len,
                             err, sizeof(err)) == 0,
              "entry %s: %s", id, err);
    e->rows = calloc((size_t)e->n + 1, sizeof(*e->rows));
    cr_assert(e->rows);
    for (const char *p = rows, *end = rows + rows_len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        cr_assert(nl, "entry %s: the last row does not end with a newline", id);
        cr_assert(e->nrows < e->n, "entry %s holds more rows than n=%ld", id, e->n);
        const char *cols[CDR_CODEC_CDR_NCOLS + 1];
        int got = cdr_codec_split_row(p, (size_t)(nl - p), &split, cols, ncols + 1);
        cr_assert_eq(got, ncols, "entry %s row %d: %d columns instead of %d", id, e->nrows, got,
                     ncols);
        srow *row = &e->rows[e->nrows++];
        row->ncols = got;
        for (int i = 0; i < got; i++)
            row->col[i] = cols[i] ? strdup(cols[i]) : NULL;
        p = nl + 1;
    }
    cr_assert_eq(e->nrows, e->n, "entry %s: n=%ld but %d rows", id, e->n, e->nrows);
    cdr_buf_free(&scratch);
    cdr_buf_free(&split);
}

void sdump_load(sdump *d, redisContext *c, const char *key)
{
    memset(d, 0, sizeof(*d));
    redisReply *r = redisCommand(c, "XRANGE %s - +", key);
    cr_assert(r, "XRANGE %s: %s", key, c->errstr);
    cr_assert(r->type == REDIS_REPLY_ARRAY, "XRANGE %s: %s", key,
              r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
    d->e = calloc(r->elements + 1, sizeof(*d->e));
    cr_assert(d->e);
    for (size_t i = 0; i < r->elements; i++)
        entry_decode(r->element[i], &d->e[d->n++]);
    freeReplyObject(r);
}

void sdump_free(sdump *d)
{
    for (int i = 0; i < d->n; i++) {
        for (int k = 0; k < d->e[i].nrows; k++)
            for (int c = 0; c < d->e[i].rows[k].ncols; c++)
                free(d->e[i].rows[k].col[c]);
        free(d->e[i].rows);
    }
    free(d->e);
    memset(d, 0, sizeof(*d));
}

const sentry *sdump_only(const sdump *d, const char *kind)
{
    const sentry *found = NULL;
    int n = 0;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->e[i].kind, kind) == 0) {
            found = &d->e[i];
            n++;
        }
    cr_assert_eq(n, 1, "expected exactly one %s entry, the stream has %d (of %d entries)", kind, n,
                 d->n);
    return found;
}

int sdump_entries(const sdump *d, const char *kind)
{
    int n = 0;
    for (int i = 0; i < d->n; i++)
        n += strcmp(d->e[i].kind, kind) == 0;
    return n;
}

long sdump_rows(const sdump *d, const char *kind)
{
    long n = 0;
    for (int i = 0; i < d->n; i++)
        n += strcmp(d->e[i].kind, kind) == 0 ? d->e[i].nrows : 0;
    return n;
}

int sdump_count_call(const sdump *d, const char *kind, const char *call_id, const srow **row)
{
    int col = is_cdr(kind) ? COL_CALL_ID : REJ_CALL_ID, n = 0;
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->e[i].kind, kind) != 0)
            continue;
        for (int k = 0; k < d->e[i].nrows; k++) {
            const char *c = d->e[i].rows[k].col[col];
            if (c && strcmp(c, call_id) == 0) {
                n++;
                if (row)
                    *row = &d->e[i].rows[k];
            }
        }
    }
    return n;
}

const srow *sdump_row(const sdump *d, const char *kind, const char *call_id)
{
    const srow *row = NULL;
    int n = sdump_count_call(d, kind, call_id, &row);
    cr_assert_eq(n, 1, "expected one %s row for call_id %s, found %d", kind, call_id, n);
    return row;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **sdump_call_ids(const sdump *d, int *n)
{
    char **ids = calloc((size_t)sdump_rows(d, CDR_CODEC_KIND_CDR) + 1, sizeof(*ids));
    cr_assert(ids);
    *n = 0;
    for (int i = 0; i < d->n; i++)
        for (int k = 0; is_cdr(d->e[i].kind) && k < d->e[i].nrows; k++)
            ids[(*n)++] = d->e[i].rows[k].col[COL_CALL_ID];
    qsort(ids, (size_t)*n, sizeof(*ids), cmp_str);
    return ids;
}

void expect_recent(const char *ts, const char *what)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    cr_assert(ts, "%s is NULL", what);
    cr_assert(sscanf(ts, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) == 6 &&
                  used == 19,
              "%s is not a timestamp: %s", what, ts);
    const char *rest = ts + used;
    if (*rest == '.') {
        cr_assert(strspn(rest + 1, "0123456789") == 6, "%s: fraction of %s", what, ts);
        rest += 7;
    }
    cr_assert_str_eq(rest, "+00", "%s is not in UTC: %s", what, ts);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    long long diff = (long long)timegm(&tm) - (long long)time(NULL);
    cr_assert(diff > -120 && diff < 120, "%s %s is not the time of ingest", what, ts);
}

void expect_cols(const srow *row, const char *kind, const char *const *want, int from, int to)
{
    const char *const *names = is_cdr(kind) ? cdr_columns : reject_columns;
    for (int i = from; i < to; i++) {
        if (!want[i])
            cr_assert_null(row->col[i], "column %s: expected \\N, got \"%s\"", names[i],
                           row->col[i]);
        else
            cr_assert(row->col[i] && strcmp(row->col[i], want[i]) == 0,
                      "column %s: expected \"%s\", got \"%s\"", names[i], want[i],
                      row->col[i] ? row->col[i] : "\\N");
    }
}
