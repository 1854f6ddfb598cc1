/* migrate.c - `cdrctl migrate`: applies the embedded SQL migrations, each once, checksummed. */
#include "migrate.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pg_util.h"

/* Session advisory lock held while migrating: "cdr_migr" read as a big-endian int64. */
#define MIGRATE_LOCK_KEY "7161975061609015154"

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
                                       " name text PRIMARY KEY,"
                                       " checksum text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";

int migrate_checksum(const char *sql, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(sql, strlen(sql), md, &len, EVP_sha256(), NULL) != 1 ||
        len * 2 != MIGRATE_CHECKSUM_LEN)
        return -1;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xf];
    }
    hex[MIGRATE_CHECKSUM_LEN] = '\0';
    return 0;
}

/* The 1-based line of 'sql' holding the 1-based character 'pos' (PostgreSQL counts characters,
 * not bytes: UTF-8 continuation bytes are skipped). */
static int line_of(const char *sql, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        if (++chars >= pos)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

/* Runs one migration and records it, in one transaction. Returns 0, or -1 with 'err' set and
 * the transaction rolled back. */
static int apply_one(PGconn *conn, const struct migration *m, const char *checksum, char *err,
                     size_t errlen)
{
    char msg[1024];
    const char *params[2] = {m->name, checksum};
    PGresult *res = NULL;

    if (pgu_exec(conn, "BEGIN", msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "migration %s: cannot begin: %s", m->name, msg);
        return -1;
    }
    res = PQexec(conn, m->sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        pgu_error(conn, res, msg, sizeof(msg));
        const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        if (pos)
            snprintf(err, errlen, "migration %s failed at line %d: %s", m->name,
                     line_of(m->sql, strtol(pos, NULL, 10)), msg);
        else
            snprintf(err, errlen, "migration %s failed: %s", m->name, msg);
        goto fail;
    }
    PQclear(res);
    res = NULL;
    /* A COMMIT or ROLLBACK inside the file would split it from its record. */
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        snprintf(err, errlen,
                 "migration %s ends the transaction itself (COMMIT or ROLLBACK in "
                 "the file); remove it",
                 m->name);
        goto fail;
    }
    res = pgu_query(conn, "INSERT INTO public.schema_migrations (name, checksum) VALUES ($1, $2)",
                    2, params, msg, sizeof(msg));
    if (!res) {
        snprintf(err, errlen, "migration %s: cannot record it: %s", m->name, msg);
        goto fail;
    }
    PQclear(res);
    if (pgu_exec(conn, "COMMIT", msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "migration %s: commit failed: %s", m->name, msg);
        return -1;
    }
    return 0;
fail:
    PQclear(res);
    if (pgu_exec(conn, "ROLLBACK", msg, sizeof(msg)) != 0) {
        /* The connection is gone; the server rolls back by itself. */
    }
    return -1;
}

/* The recorded checksum of 'name' in 'applied' (rows of name, checksum), or NULL. */
static const char *recorded_checksum(const PGresult *applied, const char *name)
{
    for (int r = 0; r < PQntuples(applied); r++)
        if (strcmp(PQgetvalue(applied, r, 0), name) == 0)
            return PQgetvalue(applied, r, 1);
    return NULL;
}

static bool carried(const struct migration *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].name, name) == 0)
            return true;
    return false;
}

int migrate_run(PGconn *conn, const struct migration *m, int n, FILE *out, char *err, size_t errlen)
{
    char msg[1024];
    const char *lock_params[1] = {MIGRATE_LOCK_KEY};
    PGresult *applied = NULL;
    PGresult *res = NULL;
    bool locked = false;
    int rc = -1;

    res = pgu_query(conn, "SELECT pg_advisory_lock($1::bigint)", 1, lock_params, msg, sizeof(msg));
    if (!res) {
        snprintf(err, errlen, "cannot take the migration lock: %s", msg);
        goto done;
    }
    PQclear(res);
    res = NULL;
    locked = true;

    if (pgu_exec(conn, create_table_sql, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "cannot create schema_migrations: %s", msg);
        goto done;
    }
    applied = pgu_query(conn, "SELECT name, checksum FROM public.schema_migrations ORDER BY name",
                        0, NULL, msg, sizeof(msg));
    if (!applied) {
        snprintf(err, errlen, "cannot read schema_migrations: %s", msg);
        goto done;
    }

    /* Everything applied must still be what this program carries, before anything new runs. */
    const char *last_applied = NULL;
    for (int r = 0; r < PQntuples(applied); r++) {
        const char *name = PQgetvalue(applied, r, 0);
        if (!carried(m, n, name)) {
            snprintf(err, errlen,
                     "migration %s is applied but unknown to this cdrctl (it was built from an "
                     "older tree)",
                     name);
            goto done;
        }
        last_applied = name;
    }
    for (int i = 0; i < n; i++) {
        char sum[MIGRATE_CHECKSUM_LEN + 1];
        if (migrate_checksum(m[i].sql, sum) != 0) {
            snprintf(err, errlen, "migration %s: cannot compute its SHA-256", m[i].name);
            goto done;
        }
        const char *was = recorded_checksum(applied, m[i].name);
        if (was) {
            if (strcmp(was, sum) != 0) {
                snprintf(err, errlen,
                         "migration %s changed since it was applied (checksum %.12s applied, "
                         "%.12s now); add a new migration instead of editing it",
                         m[i].name, was, sum);
                goto done;
            }
            continue;
        }
        if (last_applied && strcmp(m[i].name, last_applied) < 0) {
            snprintf(err, errlen,
                     "migration %s sorts before %s, which is already applied; give it a later "
                     "number",
                     m[i].name, last_applied);
            goto done;
        }
    }

    for (int i = 0; i < n; i++) {
        char sum[MIGRATE_CHECKSUM_LEN + 1];
        if (recorded_checksum(applied, m[i].name))
            continue;
        if (migrate_checksum(m[i].sql, sum) != 0 || apply_one(conn, &m[i], sum, err, errlen) != 0)
            goto done;
        fprintf(out, "applied %s\n", m[i].name);
        fflush(out);
    }
    fprintf(out, "schema up to date (%d migration%s)\n", n, n == 1 ? "" : "s");
    rc = 0;
done:
    PQclear(applied);
    if (locked) {
        /* Closing the session releases the lock too; this only matters to a reused one. */
        res = pgu_query(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, lock_params, msg,
                        sizeof(msg));
        PQclear(res);
    }
    return rc;
}

int ctl_migrate_main(const ctl_config *conf, int argc, char **argv)
{
    static const cfg_table table = {
        .program = "cdrctl migrate",
        .summary = "Applies the SQL migrations built into cdrctl that the database lacks, in "
                   "name order.",
        .usage = "[--help]",
    };
    char err[1024];
    int rc = ctl_parse_flags(&table, NULL, argc, argv);
    if (rc != CTL_CONTINUE)
        return rc;

    PGconn *conn = pgu_connect(conf->pg_url, err, sizeof(err));
    if (!conn) {
        ctl_error("migrate: %s", err);
        return CTL_EXIT_FAILURE;
    }
    rc = CTL_EXIT_OK;
    if (migrate_run(conn, cdr_migrations, cdr_migration_count, stdout, err, sizeof(err)) != 0) {
        ctl_error("migrate: %s", err);
        rc = CTL_EXIT_FAILURE;
    }
    PQfinish(conn);
    return rc;
}
