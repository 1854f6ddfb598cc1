/* partitions.h - making the monthly partitions of voip_cdr ahead of the rows that need them. */
#ifndef CDR_PARTITIONS_H
#define CDR_PARTITIONS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "compiler.h"

#define PARTITIONS_MONTHS_MAX 240

/* Makes (unless they exist) the partitions of the 'months' UTC months from 'from_month'
 * ("YYYY-MM") through the database's cdr_ensure_months(), and prints each partition's name on
 * its own line of 'out', in month order, whether it was made now or before.
 * Returns 0, or -1 with the server's message in 'err'. */
int partitions_ensure(PGconn *conn, const char *from_month, int months, FILE *out, char *err,
                      size_t errlen) CDR_MUST_CHECK;

/* Checks that 's' is a month "YYYY-MM" (year 2000-9999, month 01-12). */
bool partitions_month_valid(const char *s);

#endif
