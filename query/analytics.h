/* analytics.h - the KPI endpoints: statements reading hourly rollups for the whole hours of a
 * range and raw rows for its edges, and their answers. */
#ifndef CDR_QUERY_ANALYTICS_H
#define CDR_QUERY_ANALYTICS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "compiler.h"
#include "params.h"
#include "sql_stmt.h"

typedef enum analytics_kind {
    ANALYTICS_SUMMARY,
    ANALYTICS_BY_STORE,
    ANALYTICS_BY_AGENT,
    ANALYTICS_MISSED,
    ANALYTICS_QOS,
} analytics_kind;

/* Builds the statement of 'kind' for 'p'. Returns 0, or -1 with 'err'. */
int analytics_stmt(analytics_kind kind, const query_params *p, sql_stmt *out, char *err,
                   size_t errlen) CDR_MUST_CHECK;

/* The answer of 'kind' from its statement's result, in the shapes of DESIGN.md. */
json_t *analytics_json(analytics_kind kind, const query_params *p, const PGresult *res);

#endif
