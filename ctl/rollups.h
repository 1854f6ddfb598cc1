/* rollups.h - recomputing the rollups and the callback state of a range of days from voip_cdr. */
#ifndef CDR_ROLLUPS_H
#define CDR_ROLLUPS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

#define ROLLUPS_DAYS_MAX 400 /* days a rebuild may span, both ends included */

/* What a rebuild did. */
typedef struct rollups_result {
    long long store_hour_rows; /* voip_cdr_rollup_store_hour rows written */
    long long store_day_rows;  /* voip_cdr_rollup_store_day rows written */
    long long ext_day_rows;    /* voip_cdr_rollup_ext_day rows written */
    long long ext_month_rows;  /* voip_cdr_rollup_ext_month rows written */
    long long cdrs;            /* voip_cdr rows of the range they were computed from */
    long long callback_moved;  /* voip_callback_state rows made or moved forward */
} rollups_result;

/* Recomputes, in one transaction on 'conn' (no transaction open), the rollups of the UTC days
 * 'from'..'to' ("YYYY-MM-DD", both included, checked by the caller): deletes the store-hour
 * rows of hours [from 00:00Z, to+1 00:00Z), the store-day and extension-day rows of days
 * [from, to] and the extension-month rows of every UTC month that range touches, then inserts
 * them again from the voip_cdr rows whose start_ts lies in those hours, days and months, and moves
 * voip_callback_state forward (never back) to the latest answered call of the range.
 * Waits for a rebuild already running, and holds writers' rollup updates until it commits.
 * Returns 0 with '*res' filled, or -1 with 'err' naming the step that failed and the server's
 * message; the transaction is then rolled back and nothing changed. */
int rollups_rebuild(PGconn *conn, const char *from, const char *to, rollups_result *res, char *err,
                    size_t errlen) CDR_MUST_CHECK;

/* Parses 's' as a day "YYYY-MM-DD" (year 2000-9999, a day that exists in the calendar) and
 * stores in '*days' its number of days since 1970-01-01. Returns false when it is not one. */
bool rollups_day_parse(const char *s, long *days);

#endif
