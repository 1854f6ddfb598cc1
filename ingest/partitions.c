/* partitions.c - the writer's monthly partitions: months known ready, cdr_ensure_month() for the
 * others a batch needs, and the months ahead once a day. */
#include "partitions.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errfmt.h"
#include "log.h"
#include "pg_batch.h"
#include "timefmt.h"

#define COMPONENT    "writer"
#define START_TS_COL 11 /* start_ts in CDR_CODEC_CDR_COLUMNS */

struct partitions {
    int months_ahead;
    int *known; /* months known ready (year * 12 + month - 1), sorted */
    int n_known, cap_known;
    int64_t ahead_day; /* UTC day of the last partitions_ahead() that did its work, or -1 */
};

partitions *partitions_create(int months_ahead)
{
    partitions *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->months_ahead = months_ahead;
    p->ahead_day = -1;
    return p;
}

void partitions_destroy(partitions *p)
{
    if (!p)
        return;
    free(p->known);
    free(p);
}

/* The position of 'm' in the sorted set, or of where it would go; '*found' says which. */
static int find(const partitions *p, int m, bool *found)
{
    int lo = 0, hi = p->n_known;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->known[mid] < m)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < p->n_known && p->known[lo] == m;
    return lo;
}

static void remember(partitions *p, int m)
{
    bool found;
    int at = find(p, m, &found);
    if (found)
        return;
    if (p->n_known == p->cap_known) {
        int cap = p->cap_known ? p->cap_known * 2 : 16;
        int *k = realloc(p->known, (size_t)cap * sizeof(*k));
        if (!k)
            return; /* not remembered: asked again next time, which is harmless */
        p->known = k;
        p->cap_known = cap;
    }
    memmove(p->known + at + 1, p->known + at, (size_t)(p->n_known - at) * sizeof(*p->known));
    p->known[at] = m;
    p->n_known++;
}

static bool is_known(const partitions *p, int m)
{
    bool found;
    (void)find(p, m, &found);
    return found;
}

/* Makes month 'm' ready. Returns 0 (ready, or refused by PostgreSQL for a reason that is the
 * month's own: then logged, and remembered so that it is not asked again today), -1 when
 * PostgreSQL failed otherwise, -2 when the connection failed; 'err' says why. */
static int ensure_month(partitions *p, PGconn *conn, int m, char *err, size_t errlen)
{
    char first_day[32];
    snprintf(first_day, sizeof(first_day), "%04d-%02d-01", m / 12, m % 12 + 1);
    const char *params[1] = {first_day};
    PGresult *r = PQexecParams(conn, "SELECT public.cdr_ensure_month($1::date)", 1, NULL, params,
                               NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        LOG_DEBUG(COMPONENT, "partition %s ready", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "?");
        PQclear(r);
        remember(p, m);
        return 0;
    }
    char why[1024];
    pg_error_text(conn, r, why, sizeof(why));
    pg_error_kind kind = pg_error_classify(conn, r);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool raised = st && strncmp(st, "P0", 2) == 0; /* cdr_ensure_month's own RAISE */
    PQclear(r);
    if (kind == PG_ERR_DATA || (kind == PG_ERR_OTHER && raised)) {
        LOG_WARN(COMPONENT, "cannot prepare the partition for %.7s: %s; its rows are refused",
                 first_day, why);
        remember(p, m);
        return 0;
    }
    cdr_errf(err, errlen, "cdr_ensure_month(%s): %s", first_day, why);
    return kind == PG_ERR_CONNECTION ? -2 : -1;
}

/* The month of the raw start_ts column of 'row' ("YYYY-MM..."), or -1 when it is none. */
static int row_month(const char *row, size_t len)
{
    const char *s = row, *end = row + len;
    for (int i = 0; i < START_TS_COL; i++) {
        const char *tab = memchr(s, '\t', (size_t)(end - s));
        if (!tab)
            return -1;
        s = tab + 1;
    }
    if (end - s < 7 || s[4] != '-')
        return -1;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    if (year < 1 || month < 1 || month > 12)
        return -1;
    return year * 12 + month - 1;
}

int partitions_prepare(partitions *p, PGconn *conn, const writer_batch *b, char *err, size_t errlen)
{
    int last = -1; /* rows of a batch mostly share a month: skip the lookup for a repeat */
    for (int i = 0; i < b->n_rows; i++) {
        const wb_row *row = &b->rows[i];
        if (row->done || row->table != WB_CDR)
            continue;
        int m = row_month(b->text.data + row->off, row->len - 1);
        if (m < 0 || m == last)
            continue;
        last = m;
        if (is_known(p, m))
            continue;
        int rc = ensure_month(p, conn, m, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int partitions_ahead(partitions *p, PGconn *conn, char *err, size_t errlen)
{
    int64_t day = (int64_t)time(NULL) / 86400;
    if (day == p->ahead_day)
        return 0;
    p->n_known = 0;
    int y;
    unsigned mo, d;
    timefmt_civil_from_days(day, &y, &mo, &d);
    int first = y * 12 + (int)mo - 1;
    for (int m = first; m <= first + p->months_ahead; m++) {
        int rc = ensure_month(p, conn, m, err, errlen);
        if (rc != 0)
            return rc;
    }
    p->ahead_day = day;
    return 0;
}
