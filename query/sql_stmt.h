/* sql_stmt.h - a statement and its text parameters, built per request and handed to pg_pool. */
#ifndef CDR_QUERY_SQL_STMT_H
#define CDR_QUERY_SQL_STMT_H

#include <stdbool.h>

#define SQL_STMT_MAX_PARAMS 24
#define SQL_STMT_VALUE_MAX  400

/* 'sql' is static text (never built from values); the values go as parameters $1..$n.
 * 'prepare': the values do not change its plan (they reach the query through a CTE the planner
 * does not look into), so that it may be prepared once per connection (pg_query 'prepare'). */
typedef struct sql_stmt {
    const char *sql;
    bool prepare;
    int n;
    char values[SQL_STMT_MAX_PARAMS][SQL_STMT_VALUE_MAX];
    const char *pv[SQL_STMT_MAX_PARAMS]; /* pv[i] = values[i], or NULL for SQL NULL */
} sql_stmt;

#endif
