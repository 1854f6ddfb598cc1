/* migrate.h - applying the SQL migrations, each once, in name order, checksummed. */
#ifndef CDR_MIGRATE_H
#define CDR_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

#include "compiler.h"
#include "migrations.h"

#define MIGRATE_CHECKSUM_LEN 64 /* SHA-256 in lower-case hex */

/* Writes the SHA-256 of 'sql' in lower-case hex to 'hex' (MIGRATE_CHECKSUM_LEN + 1 bytes).
 * Returns 0, or -1 when the digest could not be computed. */
int migrate_checksum(const char *sql, char *hex) CDR_MUST_CHECK;

/* Brings the database of 'conn' up to the 'n' migrations 'm' (sorted by name). Creates
 * schema_migrations when missing and holds a session advisory lock meanwhile, so that two
 * runs at once apply each migration once. Each pending migration runs in its own transaction
 * together with its schema_migrations row; "applied NAME" is printed on 'out' after its
 * COMMIT, and "schema up to date (N migrations)" at the end.
 * Returns 0, or -1 with 'err' naming the migration and the problem:
 *   - an applied migration whose text changed ("migration X changed since it was applied");
 *   - an applied migration this program does not carry (a newer cdrctl applied it);
 *   - a pending migration that sorts before one already applied;
 *   - a migration PostgreSQL refused (its message, with the line of the file), in which case
 *     that migration's transaction is rolled back and the ones before it stay applied;
 *   - a lost connection. */
int migrate_run(PGconn *conn, const struct migration *m, int n, FILE *out, char *err,
                size_t errlen) CDR_MUST_CHECK;

#endif
