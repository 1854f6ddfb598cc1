/* pg_json.h - values of a libpq result as JSON for the read API's answers: one column of one
 * row as text, time, real or boolean (SQL NULL as JSON null), numbers for arithmetic, and the
 * rows of a result as a JSON array of items. Shared by /api/cdr and the analytics. */
#ifndef CDR_QUERY_PG_JSON_H
#define CDR_QUERY_PG_JSON_H

#include <jansson.h>
#include <libpq-fe.h>

/* The column as a bigint or a double; 0 for NULL. */
long long pg_ll(const PGresult *res, int row, int col);
double pg_d(const PGresult *res, int row, int col);

/* New JSON values (the caller owns them) of the column; null for SQL NULL. pg_json_time reads
 * epoch microseconds and writes UTC ISO 8601 (null when out of range); pg_json_bool is false
 * for NULL. */
json_t *pg_json_text(const PGresult *res, int row, int col);
json_t *pg_json_time(const PGresult *res, int row, int col);
json_t *pg_json_real(const PGresult *res, int row, int col);
json_t *pg_json_bool(const PGresult *res, int row, int col);

/* Builds one item from row 'row' of 'res'; NULL when memory ran out. */
typedef json_t *(*pg_json_row_fn)(const PGresult *res, int row, const void *arg);

/* Every row of 'res' as an item made by 'fn' (with 'arg'), in order, as a new array; rows
 * whose column 'skip_null_col' is NULL are left out (-1: none is). NULL when memory ran out. */
json_t *pg_json_items(const PGresult *res, int skip_null_col, pg_json_row_fn fn, const void *arg);

#endif
