/* pg_json.c - see pg_json.h. */
#include "pg_json.h"

#include <stdlib.h>

#include "timefmt.h"

long long pg_ll(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

double pg_d(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return strtod(PQgetvalue(res, row, col), NULL);
}

json_t *pg_json_text(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_string(PQgetvalue(res, row, col));
}

json_t *pg_json_time(const PGresult *res, int row, int col)
{
    char buf[40];
    if (PQgetisnull(res, row, col) ||
        timefmt_format_utc((cdr_time)pg_ll(res, row, col), buf, sizeof(buf)) == 0)
        return json_null();
    return json_string(buf);
}

json_t *pg_json_real(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_real(pg_d(res, row, col));
}

json_t *pg_json_bool(const PGresult *res, int row, int col)
{
    return json_boolean(!PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't');
}

json_t *pg_json_items(const PGresult *res, int skip_null_col, pg_json_row_fn fn, const void *arg)
{
    json_t *items = json_array();
    if (!items)
        return NULL;
    for (int i = 0; i < PQntuples(res); i++) {
        if (skip_null_col >= 0 && PQgetisnull(res, i, skip_null_col))
            continue;
        json_t *it = fn(res, i, arg);
        if (!it || json_array_append_new(items, it) != 0) {
            json_decref(items);
            return NULL;
        }
    }
    return items;
}
