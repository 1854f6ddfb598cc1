/* search.h - /api/cdr and /api/cdr/{call_id}: the statements and the answers. */
#ifndef CDR_QUERY_SEARCH_H
#define CDR_QUERY_SEARCH_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"
#include "compiler.h"
#include "params.h"
#include "sql_stmt.h"

/* The page statement: rows newest first (start_ts DESC, call_id DESC) matching the filters of
 * 'p' in its range, page_size + 1 rows (the extra one says whether a next page exists), at the
 * cursor position when p->cursor is set, else at OFFSET (page - 1) * page_size, plus the exact
 * total in every row (or a separate statement, your choice, documented). Returns 0, or -1 with
 * 'err' naming the parameter (a malformed cursor). */
int search_page_stmt(const query_params *p, sql_stmt *out, char *err, size_t errlen) CDR_MUST_CHECK;

/* The answer of a page: {"items": [...], "page", "page_size", "total", "next_cursor"}. */
json_t *search_page_json(const query_params *p, const PGresult *res);

/* The statement for /api/cdr/{call_id}: the most recent CDR with that call_id. */
int search_one_stmt(const char *call_id, sql_stmt *out, char *err, size_t errlen) CDR_MUST_CHECK;
/* One CDR object, or NULL when 'res' has no row (-> 404). */
json_t *search_one_json(const PGresult *res);

/* CSV export: the statement for every matching row (no paging), and the header / one row. */
int search_csv_stmt(const query_params *p, sql_stmt *out, char *err, size_t errlen) CDR_MUST_CHECK;
int search_csv_header(cdr_buf *out) CDR_MUST_CHECK;
int search_csv_row(const PGresult *res, int row, cdr_buf *out) CDR_MUST_CHECK;

#endif
