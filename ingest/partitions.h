/* partitions.h - the writer's monthly partitions of voip_cdr: the months known to be ready, the
 * months a batch needs, and the months kept ready ahead of the current one. */
#ifndef CDR_WRITER_PARTITIONS_H
#define CDR_WRITER_PARTITIONS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "compiler.h"
#include "writer_batch.h"

typedef struct partitions partitions;

/* Returns the set, empty, keeping 'months_ahead' months ready past the current one; NULL when
 * memory ran out. */
partitions *partitions_create(int months_ahead);
void partitions_destroy(partitions *p);

/* Makes ready, with cdr_ensure_month() in autocommit on 'conn', every UTC month that a CDR row
 * of 'b' not yet done starts in and that is not known ready; a month made ready is remembered.
 * start_ts is read as the first seven characters (YYYY-MM) of the row's start_ts column; a row
 * where they are no month is left to PostgreSQL, which refuses it.
 * A month PostgreSQL refuses to make (a date out of range, a table of that name that is no
 * partition) is logged and left out: its rows are refused and kept as rejects.
 * Returns 0; -1 with 'err' when PostgreSQL failed otherwise (the caller waits and calls again);
 * -2 with 'err' when the connection failed (the caller reconnects first). */
int partitions_prepare(partitions *p, PGconn *conn, const writer_batch *b, char *err,
                       size_t errlen) CDR_MUST_CHECK;

/* Makes the current UTC month and the months_ahead after it ready, the first time it is called
 * and then once per UTC day; at each new day the months known ready are also forgotten, so a
 * month removed since (retention) is looked at again when a row needs it. Returns 0 (also when
 * it is not due), or -1 / -2 with 'err' as partitions_prepare. */
int partitions_ahead(partitions *p, PGconn *conn, char *err, size_t errlen) CDR_MUST_CHECK;

#endif
