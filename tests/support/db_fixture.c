/* db_fixture.c - see db_fixture.h. */
#include "db_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>

#define ENV_MAX 16 /* CDR_PG_URL, up to 14 of the caller's, the terminating NULL */

void fixture_ctl_run(const itest_db *db, const char *const *args, const char *const *env,
                     itest_proc *p)
{
    char err[1024];
    char url_var[ITEST_URL_MAX + 16];
    const char *full_env[ENV_MAX];
    size_t n = 0;
    if (db && db->url[0]) {
        snprintf(url_var, sizeof(url_var), "CDR_PG_URL=%s", db->url);
        full_env[n++] = url_var;
    }
    for (const char *const *e = env; e && *e; e++) {
        cr_assert(n + 1 < ENV_MAX, "cdrctl %s: more than %d environment strings", args[0],
                  ENV_MAX - 2);
        full_env[n++] = *e;
    }
    full_env[n] = NULL;
    cr_assert(itest_run("cdrctl", args, full_env, FIXTURE_CTL_TIMEOUT_S, p, err, sizeof(err)) == 0,
              "%s", err);
}

void fixture_ctl(const itest_db *db, const char *const *args)
{
    itest_proc p;
    fixture_ctl_run(db, args, NULL, &p);
    cr_assert_eq(p.status, 0, "cdrctl %s%s%s: %s", args[0], args[1] ? " " : "",
                 args[1] ? args[1] : "", p.err);
    itest_proc_free(&p);
}

long long fixture_scalar(PGconn *c, const char *sql, int n, const char *const *params)
{
    char err[1024];
    long long v = -1;
    cr_assert(itest_scalar(c, sql, n, params, &v, err, sizeof(err)) == 0, "%s: %s", sql, err);
    return v;
}

void fixture_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *res = itest_query(c, sql, n, params);
    cr_assert(itest_ok(res), "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

void fixture_copy_in(PGconn *c, const char *copy_sql, const char *data, size_t len)
{
    PGresult *res = PQexec(c, copy_sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COPY_IN, "%s: %s", copy_sql, PQerrorMessage(c));
    PQclear(res);
    cr_assert_eq(PQputCopyData(c, data, (int)len), 1, "%s", PQerrorMessage(c));
    cr_assert_eq(PQputCopyEnd(c, NULL), 1, "%s", PQerrorMessage(c));
    res = PQgetResult(c);
    cr_assert(itest_ok(res), "%s: %s", copy_sql, PQresultErrorMessage(res));
    PQclear(res);
    while ((res = PQgetResult(c)))
        PQclear(res);
}
