/* test_schema.c - the schema against a real PostgreSQL: migrations, partitions, row-level
 * security and grants, and cdrctl's commands as an operator uses them. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "db_fixture.h"
#include "itest.h"
#include "oracle_sql.h"

#define TENANT_A "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TENANT_B "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define SECRET   "itest-secret-0123456789abcdef-0123456789"

static itest_db db;

static void drop_db(void)
{
    itest_db_drop(&db);
}

TestSuite(schema, .fini = drop_db, .timeout = 120);

/* Makes this test's database; with 'migrate' also runs `cdrctl migrate` on it. */
static void make_db(bool migrate)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    if (migrate)
        fixture_ctl(&db, (const char *const[]){"migrate", NULL});
}

static PGconn *connect_as(const char *role)
{
    char err[1024];
    PGconn *c = itest_db_connect(&db, role, err, sizeof(err));
    cr_assert(c, "%s", err);
    return c;
}

/* The sql/ folder of the source tree, in 'dir'. */
static void sql_dir(char *dir, size_t len)
{
    const char *self = __FILE__;
    const char *tail = strstr(self, "/tests/integration/");
    cr_assert(tail, "cannot locate the source tree from %s", self);
    snprintf(dir, len, "%.*s/sql", (int)(tail - self), self);
}

/* The migration files of the source tree, sorted, as cdrctl embeds them. */
static int sql_files(char names[][128], int max)
{
    char dir[1024];
    sql_dir(dir, sizeof(dir));
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0 && n < max)
            snprintf(names[n++], 128, "%.127s", de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    return n;
}

/* The text of the migration file 'name', which the caller frees. */
static char *sql_text(const char *name)
{
    char dir[1024], path[1200];
    sql_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%.127s", dir, name);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    cr_assert(len >= 0 && fseek(f, 0, SEEK_SET) == 0);
    char *text = malloc((size_t)len + 1);
    cr_assert(text && fread(text, 1, (size_t)len, f) == (size_t)len, "cannot read %s", path);
    text[len] = '\0';
    fclose(f);
    return text;
}

static void up_to_date_line(char *buf, size_t len, int n)
{
    snprintf(buf, len, "schema up to date (%d migration%s)\n", n, n == 1 ? "" : "s");
}

/* Runs `cdrctl migrate` with 'env' (NULL: none) and asserts that it applies the migrations
 * names[first..n-1], in order, and then says the schema is up to date with all 'n'. */
static void expect_migrate_applies(const char *const *env, char names[][128], int first, int n)
{
    char expect[8192] = "", line[256];
    itest_proc p;
    fixture_ctl_run(&db, (const char *const[]){"migrate", NULL}, env, &p);
    cr_assert_eq(p.status, 0, "migrate failed: %s", p.err);
    for (int i = first; i < n; i++) {
        snprintf(line, sizeof(line), "applied %.127s\n", names[i]);
        strcat(expect, line);
    }
    up_to_date_line(line, sizeof(line), n);
    strcat(expect, line);
    cr_expect_str_eq(p.out, expect);
    cr_expect_str_eq(p.err, "", "migrate wrote to stderr: %s", p.err);
    itest_proc_free(&p);
}

Test(schema, migrate_applies_every_file_once_then_nothing)
{
    char names[64][128];
    int n = sql_files(names, 64);
    cr_assert_gt(n, 0, "no migration files found");
    make_db(false);
    expect_migrate_applies(NULL, names, 0, n);

    PGconn *c = connect_as(NULL);
    cr_expect_eq(fixture_scalar(c, "SELECT count(*) FROM schema_migrations", 0, NULL), n);
    cr_expect_eq(fixture_scalar(c,
                                "SELECT count(*) FROM schema_migrations "
                                "WHERE checksum ~ '^[0-9a-f]{64}$'",
                                0, NULL),
                 n, "every checksum is a SHA-256 in hex");
    PGresult *before =
        itest_query(c, "SELECT max(applied_at)::text FROM schema_migrations", 0, NULL);
    cr_assert(itest_ok(before));

    expect_migrate_applies(NULL, names, n, n); /* a second migrate applies nothing */
    cr_expect_eq(fixture_scalar(c, "SELECT count(*) FROM schema_migrations", 0, NULL), n);
    PGresult *after =
        itest_query(c, "SELECT max(applied_at)::text FROM schema_migrations", 0, NULL);
    cr_assert(itest_ok(after));
    cr_expect_str_eq(PQgetvalue(after, 0, 0), PQgetvalue(before, 0, 0));
    PQclear(before);
    PQclear(after);
    PQfinish(c);
}

Test(schema, migrate_refuses_a_changed_migration)
{
    char names[64][128];
    int n = sql_files(names, 64);
    cr_assert_gt(n, 0);
    make_db(true);

    PGconn *c = connect_as(NULL);
    fixture_exec(c, "UPDATE schema_migrations SET checksum = $1 WHERE name = $2", 2,
                 (const char *const[]){"x", names[0]});
    PQfinish(c);

    itest_proc p;
    fixture_ctl_run(&db, (const char *const[]){"migrate", NULL}, NULL, &p);
    cr_expect_eq(p.status, 1);
    cr_expect(strstr(p.err, names[0]) != NULL, "the changed file is named: %s", p.err);
    cr_expect(strstr(p.err, "changed since it was applied") != NULL, "%s", p.err);
    cr_expect(strstr(p.out, "applied") == NULL, "nothing is applied: %s", p.out);
    itest_proc_free(&p);
}

Test(schema, migrate_names_an_unreachable_database)
{
    itest_proc p;
    fixture_ctl_run(
        &db, (const char *const[]){"migrate", NULL},
        (const char *const[]){"CDR_PG_URL=postgresql://nobody@127.0.0.1:1/nothing", NULL}, &p);
    cr_expect_eq(p.status, 1);
    cr_expect(strstr(p.err, "connection to PostgreSQL failed") != NULL, "%s", p.err);
    itest_proc_free(&p);
}

static const char insert_cdr_sql[] =
    "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, sip_domain, direction, from_uri, "
    "to_uri, end_ts, billsec, disposition) "
    "VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $3::timestamptz + interval '1 minute', 0, "
    "$8)";

/* Inserts a missed inbound call of 'tenant' as 'conn''s role. Returns the result unchecked. */
static PGresult *insert_cdr(PGconn *conn, const char *tenant, const char *call_id,
                            const char *start)
{
    const char *params[] = {tenant, call_id,      start,       "tenant.example.it",
                            "in",   "+390612345", "+39069876", "NO_ANSWER"};
    return itest_query(conn, insert_cdr_sql, 8, params);
}

Test(schema, partitions_are_made_by_utc_month_on_demand)
{
    make_db(true);
    PGconn *w = connect_as("cdr_writer");
    /* 2025-10-31T23:30:00-02:00 is 2025-11-01T01:30:00Z: November in UTC. */
    const char *nov = "2025-10-31T23:30:00-02:00";

    PGresult *res = insert_cdr(w, TENANT_A, "call-nov", nov);
    cr_assert(!itest_ok(res), "a row without its month's partition is refused");
    cr_expect_str_eq(itest_sqlstate(res), "23514");
    cr_expect(strstr(PQresultErrorMessage(res), "no partition of relation \"voip_cdr\"") != NULL,
              "%s", PQresultErrorMessage(res));
    PQclear(res);

    /* A session two hours behind UTC must still get UTC month bounds. */
    const char *const args[] = {"partitions", "ensure", "--from", "2025-11", "--months", "1", NULL};
    const char *const env[] = {"PGTZ=America/Noronha", NULL};
    for (int round = 0; round < 2; round++) {
        itest_proc p;
        fixture_ctl_run(&db, args, env, &p);
        cr_expect_eq(p.status, 0, "round %d: %s", round, p.err);
        cr_expect_str_eq(p.out, "voip_cdr_2025_11\n", "round %d", round);
        itest_proc_free(&p);
    }
    cr_expect_eq(
        fixture_scalar(w, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'voip_cdr'::regclass",
                       0, NULL),
        1, "ensuring twice makes one partition");

    res = insert_cdr(w, TENANT_A, "call-nov", nov);
    cr_assert(itest_ok(res), "%s", PQresultErrorMessage(res));
    PQclear(res);
    res = itest_query(w, "SELECT tableoid::regclass::text FROM voip_cdr WHERE call_id = $1", 1,
                      (const char *const[]){"call-nov"});
    cr_assert(itest_ok(res) && PQntuples(res) == 1, "%s", PQresultErrorMessage(res));
    cr_expect_str_eq(PQgetvalue(res, 0, 0), "voip_cdr_2025_11");
    PQclear(res);

    /* 2025-11-30T23:30:00-02:00 is already December in UTC, which has no partition yet. */
    res = insert_cdr(w, TENANT_A, "call-dec", "2025-11-30T23:30:00-02:00");
    cr_expect(!itest_ok(res), "December belongs to the next partition");
    cr_expect_str_eq(itest_sqlstate(res), "23514");
    PQclear(res);

    /* The writer prepares a month itself; the partition still belongs to the schema owner. */
    res =
        itest_query(w, "SELECT cdr_ensure_month($1::date)", 1, (const char *const[]){"2025-12-15"});
    cr_assert(itest_ok(res), "%s", PQresultErrorMessage(res));
    cr_expect_str_eq(PQgetvalue(res, 0, 0), "voip_cdr_2025_12");
    PQclear(res);
    res = insert_cdr(w, TENANT_A, "call-dec", "2025-11-30T23:30:00-02:00");
    cr_expect(itest_ok(res), "%s", PQresultErrorMessage(res));
    PQclear(res);
    res = itest_query(w,
                      "SELECT pg_get_userbyid(relowner)::text FROM pg_class "
                      "WHERE oid = 'voip_cdr_2025_12'::regclass",
                      0, NULL);
    cr_assert(itest_ok(res), "%s", PQresultErrorMessage(res));
    cr_expect_str_eq(PQgetvalue(res, 0, 0), db.owner);
    PQclear(res);
    PQfinish(w);
}

/* One tenant table: how a test row is written (parameters: tenant, key) and counted. */
typedef struct tenant_table {
    const char *name;
    const char *insert; /* $1 tenant_id, $2 a key making the row unique */
    bool uuid_key;      /* the key is a UUID, else "prefix" and a number */
    const char *prefix;
    const char *count;        /* every visible row */
    const char *count_other;  /* visible rows whose tenant_id differs from $1 */
    const char *count_tenant; /* visible rows whose tenant_id is $1 */
} tenant_table;

#define COUNTS(t)                                                                                  \
    "SELECT count(*) FROM " t, "SELECT count(*) FROM " t " WHERE tenant_id <> $1::uuid",           \
        "SELECT count(*) FROM " t " WHERE tenant_id = $1::uuid"

static const tenant_table tenant_tables[] = {
    {"voip_cdr",
     "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, sip_domain, direction, from_uri, "
     "to_uri, end_ts, billsec, disposition) VALUES ($1, $2, '2025-11-10 10:00:00+00', "
     "'tenant.example.it', 'in', '+390612345', '+39069876', '2025-11-10 10:01:00+00', 0, "
     "'NO_ANSWER')",
     false, "call-", COUNTS("voip_cdr")},
    {"voip_cdr_rollup_store_hour",
     "INSERT INTO voip_cdr_rollup_store_hour (tenant_id, store_id, hour, direction, calls) "
     "VALUES ($1, $2::uuid, '2025-11-10 10:00:00+00', 'in', 1)",
     true, NULL, COUNTS("voip_cdr_rollup_store_hour")},
    {"voip_cdr_rollup_store_day",
     "INSERT INTO voip_cdr_rollup_store_day (tenant_id, day, store_id, direction, calls) "
     "VALUES ($1, '2025-11-10', $2::uuid, 'in', 1)",
     true, NULL, COUNTS("voip_cdr_rollup_store_day")},
    {"voip_cdr_rollup_ext_day",
     "INSERT INTO voip_cdr_rollup_ext_day (tenant_id, day, ext_number, calls) "
     "VALUES ($1, '2025-11-10', $2, 1)",
     false, "10", COUNTS("voip_cdr_rollup_ext_day")},
    {"voip_cdr_rollup_ext_month",
     "INSERT INTO voip_cdr_rollup_ext_month (tenant_id, month, ext_number, calls) "
     "VALUES ($1, '2025-11-01', $2, 1)",
     false, "10", COUNTS("voip_cdr_rollup_ext_month")},
    {"voip_callback_state",
     "INSERT INTO voip_callback_state (tenant_id, number, last_answered_ts) "
     "VALUES ($1, $2, '2025-11-10 10:00:00+00')",
     false, "+3906000", COUNTS("voip_callback_state")},
    {"voip_stores",
     "INSERT INTO voip_stores (tenant_id, store_id, name) VALUES ($1, $2::uuid, 'Store')", true,
     NULL, COUNTS("voip_stores")},
    {"voip_cdr_rejects",
     "INSERT INTO voip_cdr_rejects (received_at, tenant_id, call_id, source, reason, raw) "
     "VALUES (now(), $1, $2, 'ingest', 'billsec: expected an integer', '{}')",
     false, "rejected-", COUNTS("voip_cdr_rejects")},
};

/* Tenant A gets two rows in every tenant table, tenant B one. */
static void write_tenant_rows(void)
{
    fixture_ctl(&db, (const char *const[]){"partitions", "ensure", "--from", "2025-11", "--months",
                                           "1", NULL});

    PGconn *w = connect_as("cdr_writer");
    for (size_t t = 0; t < CDR_ARRAY_LEN(tenant_tables); t++) {
        const tenant_table *tt = &tenant_tables[t];
        for (int i = 0; i < 3; i++) {
            char key[64];
            if (tt->uuid_key)
                snprintf(key, sizeof(key), "00000000-0000-4000-8000-%012d", i);
            else
                snprintf(key, sizeof(key), "%s%d", tt->prefix, i);
            fixture_exec(w, tt->insert, 2, (const char *const[]){i < 2 ? TENANT_A : TENANT_B, key});
        }
    }
    PQfinish(w);
}

/* Runs 'sql' with 'param' inside a transaction where app.tenant_id is 'tenant'. */
static long long count_as_tenant(PGconn *r, const char *tenant, const char *sql, const char *param)
{
    fixture_exec(r, "BEGIN", 0, NULL);
    fixture_exec(r, "SELECT set_config($1, $2, true)", 2,
                 (const char *const[]){"app.tenant_id", tenant});
    long long v = fixture_scalar(r, sql, param ? 1 : 0, (const char *const[]){param});
    fixture_exec(r, "COMMIT", 0, NULL);
    return v;
}

Test(schema, reader_sees_only_the_tenant_it_names)
{
    make_db(true);
    write_tenant_rows();
    PGconn *owner = connect_as(NULL);
    PGconn *r = connect_as("cdr_reader");

    for (size_t t = 0; t < CDR_ARRAY_LEN(tenant_tables); t++) {
        const tenant_table *tt = &tenant_tables[t];
        cr_expect_eq(fixture_scalar(owner, tt->count, 0, NULL), 3, "%s: the owner sees every row",
                     tt->name);
        cr_expect_eq(fixture_scalar(r, tt->count, 0, NULL), 0, "%s: no tenant set, no rows",
                     tt->name);

        cr_expect_eq(count_as_tenant(r, TENANT_A, tt->count, NULL), 2, "%s: A sees its rows",
                     tt->name);
        cr_expect_eq(count_as_tenant(r, TENANT_A, tt->count_other, TENANT_A), 0,
                     "%s: A sees no one else's", tt->name);
        cr_expect_eq(count_as_tenant(r, TENANT_A, tt->count_tenant, TENANT_B), 0,
                     "%s: asking for B under A's setting returns nothing", tt->name);
        cr_expect_eq(count_as_tenant(r, TENANT_B, tt->count, NULL), 1, "%s: B sees its row",
                     tt->name);

        /* The setting was local to each transaction. */
        cr_expect_eq(fixture_scalar(r, tt->count, 0, NULL), 0, "%s: after COMMIT, no rows again",
                     tt->name);
    }
    PQfinish(r);
    PQfinish(owner);
}

/* Every table of public with a tenant_id, but the partitions of voip_cdr (read through it, no
 * grants of their own) and the writer's unlogged staging tables (no reader grants), is in
 * tenant_tables and has row-level security enabled and forced. */
Test(schema, every_tenant_table_forces_row_level_security)
{
    make_db(true);
    PGconn *c = connect_as(NULL);
    PGresult *res = itest_query(c,
                                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity"
                                "  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
                                " WHERE a.attname = 'tenant_id' AND NOT a.attisdropped"
                                "   AND c.relnamespace = 'public'::regnamespace"
                                "   AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                                "   AND c.relpersistence = 'p'",
                                0, NULL);
    cr_assert(itest_ok(res), "%s", PQresultErrorMessage(res));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0);
        bool listed = false;
        for (size_t t = 0; t < CDR_ARRAY_LEN(tenant_tables); t++)
            listed = listed || strcmp(tenant_tables[t].name, name) == 0;
        cr_expect(listed, "%s has a tenant_id but is not in tenant_tables", name);
        cr_expect_str_eq(PQgetvalue(res, i, 1), "t", "%s: row-level security enabled", name);
        cr_expect_str_eq(PQgetvalue(res, i, 2), "t", "%s: row-level security forced", name);
    }
    cr_expect_eq(PQntuples(res), (int)CDR_ARRAY_LEN(tenant_tables),
                 "tenant_tables names a table that is not there");
    PQclear(res);
    PQfinish(c);
}

Test(schema, reader_cannot_write_or_go_around_the_policies)
{
    make_db(true);
    write_tenant_rows();
    PGconn *r = connect_as("cdr_reader");

    PGresult *res = insert_cdr(r, TENANT_A, "call-reader", "2025-11-10T10:00:00Z");
    cr_expect(!itest_ok(res), "the reader cannot insert");
    cr_expect_str_eq(itest_sqlstate(res), "42501", "%s", PQresultErrorMessage(res));
    PQclear(res);

    static const char *const denied[] = {
        "SELECT count(*) FROM voip_cdr_2025_11", /* a partition, read around the parent */
        "SELECT count(*) FROM voip_cdr_staging",
        "SELECT cdr_ensure_month('2030-01-01')",
        "UPDATE voip_stores SET name = 'x'",
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(denied); i++) {
        res = itest_query(r, denied[i], 0, NULL);
        cr_expect(!itest_ok(res), "%s is refused", denied[i]);
        cr_expect_str_eq(itest_sqlstate(res), "42501", "%s: %s", denied[i],
                         PQresultErrorMessage(res));
        PQclear(res);
    }
    PQfinish(r);
}

/* Runs cdrctl with 'args' and 'env', checks that it printed one token and nothing else, and
 * verifies it with the test secret (and 'issuer'): the claims land in 'claims', the time of
 * verification in 'now'. */
static void mint_and_verify(const char *const *args, const char *const *env, const char *issuer,
                            auth_claims *claims, long long *now)
{
    itest_proc p;
    fixture_ctl_run(&db, args, env, &p);
    cr_assert_eq(p.status, 0, "cdrctl token: %s", p.err);
    size_t len = strlen(p.out);
    cr_assert(len > 1 && p.out[len - 1] == '\n', "one line: '%s'", p.out);
    p.out[len - 1] = '\0';
    cr_assert(strchr(p.out, '\n') == NULL, "a single line");

    char err[512];
    auth_config cfg = {.alg = AUTH_HS256, .secret = SECRET, .issuer = issuer};
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    cr_assert(v, "%s", err);
    *now = (long long)time(NULL);
    cr_expect_eq(auth_verify(v, p.out, *now, claims, err, sizeof(err)), AUTH_OK, "%s", err);
    auth_verifier_destroy(v);
    itest_proc_free(&p);
}

Test(schema, token_is_accepted_by_the_verifier)
{
    auth_claims c = {0};
    long long now;
    mint_and_verify((const char *const[]){"token", "--tenant-id",
                                          "AAAAAAAA-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "--sip-domain",
                                          "TenantA.example.it", "--scope", "cdr:read cdr:write",
                                          NULL},
                    (const char *const[]){"CDR_JWT_SECRET=" SECRET, NULL}, NULL, &c, &now);
    cr_expect_str_eq(c.tenant_id, TENANT_A);
    cr_expect_str_eq(c.sip_domain, "tenanta.example.it");
    cr_expect(c.scope_read && c.scope_write);
    cr_expect(c.exp >= now + 3600 - 5 && c.exp <= now + 3600, "exp %lld, now %lld",
              (long long)c.exp, now);

    memset(&c, 0, sizeof(c));
    mint_and_verify(
        (const char *const[]){"token", "--tenant-id", TENANT_B, "--sip-domain",
                              "tenantb.example.it", "--scope", "cdr:read", "--ttl", "60", NULL},
        (const char *const[]){"CDR_JWT_SECRET=" SECRET, "CDR_JWT_ISSUER=cdrflow-test", NULL},
        "cdrflow-test", &c, &now);
    cr_expect_str_eq(c.tenant_id, TENANT_B);
    cr_expect(c.scope_read && !c.scope_write);
    cr_expect(c.exp >= now + 60 - 5 && c.exp <= now + 60, "exp %lld, now %lld", (long long)c.exp,
              now);
}

Test(schema, token_refuses_a_bad_tenant_id)
{
    itest_proc p;
    fixture_ctl_run(&db,
                    (const char *const[]){"token", "--tenant-id", "not-a-uuid", "--sip-domain",
                                          "tenanta.example.it", "--scope", "cdr:read", NULL},
                    (const char *const[]){"CDR_JWT_SECRET=" SECRET, NULL}, &p);
    cr_expect_eq(p.status, 2);
    cr_expect(strstr(p.err, "--tenant-id") != NULL, "%s", p.err);
    cr_expect_str_eq(p.out, "", "no token printed");
    itest_proc_free(&p);
}

Test(schema, help_lists_settings_and_commands)
{
    itest_proc p;
    fixture_ctl_run(&db, (const char *const[]){"--help", NULL}, NULL, &p);
    cr_expect_eq(p.status, 0);
    const char *want[] = {"CDR_PG_URL", "CDR_JWT_SECRET", "migrate", "partitions", "token"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(want); i++)
        cr_expect(strstr(p.out, want[i]) != NULL, "--help mentions %s", want[i]);
    itest_proc_free(&p);

    fixture_ctl_run(&db, (const char *const[]){"token", "--help", NULL}, NULL, &p);
    cr_expect_eq(p.status, 0);
    cr_expect(strstr(p.out, "--tenant-id") != NULL, "%s", p.out);
    itest_proc_free(&p);

    fixture_ctl_run(&db, (const char *const[]){"frobnicate", NULL}, NULL, &p);
    cr_expect_eq(p.status, 2);
    cr_expect(strstr(p.err, "frobnicate") != NULL, "%s", p.err);
    itest_proc_free(&p);
}

/* The migration that adds the daily store rollup and reorders the rollup keys, and the one that
 * folds the directions of the extension rollup into one row and adds the monthly one. */
#define READ_GRAINS "003_read_grains.sql"
#define AGENT_GRAIN "004_agent_grain.sql"

/* Makes this test's database as cdrctl migrate would have left it before the migration 'name'
 * was written: the migrations of sql/ before it applied and recorded. 'names' (64) gets the
 * migration files, '*n' their number and '*index' that of 'name'. Returns the owner's
 * connection. */
static PGconn *db_before(const char *name, char names[][128], int *n, int *index)
{
    *n = sql_files(names, 64);
    make_db(false);
    PGconn *c = connect_as(NULL);
    fixture_exec(c,
                 "CREATE TABLE schema_migrations (name text PRIMARY KEY, checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL);
    int before = 0;
    while (before < *n && strcmp(names[before], name) < 0) {
        char *sql = sql_text(names[before]);
        fixture_exec(c, "BEGIN", 0, NULL);
        PGresult *res = PQexec(c, sql);
        cr_assert(itest_ok(res), "%s: %s", names[before], PQresultErrorMessage(res));
        PQclear(res);
        fixture_exec(c,
                     "INSERT INTO schema_migrations (name, checksum)"
                     " VALUES ($1, encode(sha256(convert_to($2, 'UTF8')), 'hex'))",
                     2, (const char *const[]){names[before], sql});
        fixture_exec(c, "COMMIT", 0, NULL);
        free(sql);
        before++;
    }
    cr_assert(before < *n && strcmp(names[before], name) == 0, "%s is not in sql/", name);
    *index = before;
    return c;
}

/* The definition of the primary key index of 'table'. */
static void expect_pkey(PGconn *c, const char *table, const char *def)
{
    PGresult *res = itest_query(c,
                                "SELECT pg_get_indexdef(conindid) FROM pg_constraint"
                                " WHERE conrelid = $1::regclass AND contype = 'p'",
                                1, (const char *const[]){table});
    cr_assert(itest_ok(res), "%s: %s", table, PQresultErrorMessage(res));
    cr_assert_eq(PQntuples(res), 1, "%s has one primary key", table);
    cr_expect_str_eq(PQgetvalue(res, 0, 0), def, "the primary key of %s", table);
    PQclear(res);
}

/* Expects the row-level security policies and the grants of 'table' to be those of 'model'. */
static void expect_policies_and_grants_of(PGconn *c, const char *table, const char *model)
{
    const char *const pair[2] = {table, model};
    cr_expect_eq(fixture_scalar(c,
                                "SELECT count(*) FROM ("
                                " (SELECT policyname, permissive, roles, cmd, qual, with_check"
                                "    FROM pg_policies WHERE tablename = $1"
                                "  EXCEPT ALL"
                                "  SELECT policyname, permissive, roles, cmd, qual, with_check"
                                "    FROM pg_policies WHERE tablename = $2)"
                                " UNION ALL"
                                " (SELECT policyname, permissive, roles, cmd, qual, with_check"
                                "    FROM pg_policies WHERE tablename = $2"
                                "  EXCEPT ALL"
                                "  SELECT policyname, permissive, roles, cmd, qual, with_check"
                                "    FROM pg_policies WHERE tablename = $1)) d",
                                2, pair),
                 0, "the policies of %s differ from those of %s", table, model);
    cr_expect_eq(
        fixture_scalar(c,
                       "SELECT count(*) FROM unnest(ARRAY['cdr_reader', 'cdr_writer', 'public'])"
                       "    AS r(role),"
                       "  unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',"
                       "               'REFERENCES', 'TRIGGER']) AS p(priv)"
                       " WHERE has_table_privilege(role, $1::text, priv)"
                       "    <> has_table_privilege(role, $2::text, priv)",
                       2, pair),
        0, "the grants of %s differ from those of %s", table, model);
}

/* A database migrated up to the one before READ_GRAINS, with store-hour rows on both sides of
 * a UTC midnight and partitions with CDRs, then `cdrctl migrate` in a session two hours behind
 * UTC: the daily rollup holds the hourly one summed per UTC day, the rollup keys lead with the
 * tenant and the time, the DID index leaves out the calls without a DID on every partition, and
 * the new table has the policies and grants of the hourly one. */
Test(schema, read_grains_backfills_store_days_and_reorders_the_keys)
{
    char names[64][128];
    int n, before;
    PGconn *c = db_before(READ_GRAINS, names, &n, &before);

    /* 2 tenants x 3 stores (the first: none) x 2 directions x 12 hours, 20:00 to 07:00 UTC. */
    fixture_exec(
        c,
        "INSERT INTO voip_cdr_rollup_store_hour (tenant_id, store_id, hour, direction, calls,"
        "    answered, no_answer, busy, failed, billsec_sum, ring_sum_s, mos_sum, mos_n,"
        "    jitter_sum, jitter_n, loss_sum, loss_n, poor_mos_n)"
        " SELECT (ARRAY['" TENANT_A "', '" TENANT_B "'])[1 + g % 2]::uuid,"
        "   ('00000000-0000-' || CASE WHEN g / 2 % 3 = 0 THEN '0000-0000' ELSE '4000-8000' END"
        "    || '-00000000000' || (g / 2 % 3))::uuid,"
        "   timestamptz '2025-10-30 20:00:00+00' + make_interval(hours => g / 12),"
        "   (ARRAY['in', 'out'])[1 + g / 6 % 2], 10 + g, g % 7, g % 5, g % 3, g % 2, 60 * g,"
        "   g * 0.25, g * 3.5, g % 4, g * 0.125, g % 6, g * 0.0625, g % 8, g % 3"
        " FROM generate_series(0, 143) AS g",
        0, NULL);
    fixture_exec(c, "SELECT cdr_ensure_months('2025-10-01', 2)", 0, NULL);
    fixture_exec(
        c,
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, sip_domain, direction, from_uri,"
        "    to_uri, did_e164, end_ts, billsec, disposition)"
        " SELECT '" TENANT_A "', 'call-' || g, ts, 'tenant.example.it',"
        "   CASE WHEN g % 2 = 0 THEN 'in' ELSE 'out' END, '+390612345', '+39069876',"
        "   CASE WHEN g % 2 = 0 THEN '+39069876' END, ts + interval '1 minute', 0, 'NO_ANSWER'"
        " FROM generate_series(1, 40) AS g,"
        "      LATERAL (SELECT timestamptz '2025-10-20 00:00:00+00'"
        "                      + make_interval(days => g) AS ts) AS t",
        0, NULL);

    expect_migrate_applies((const char *const[]){"PGTZ=America/Noronha", NULL}, names, before, n);

    cr_expect_eq(
        fixture_scalar(
            c, ORACLE_DIFFER(ORACLE_STORE_HOURS_BY_DAY("true"), ORACLE_STORE_ROWS("day")), 0, NULL),
        0, "the store-day rollup differs from the store-hour one summed per UTC day");
    cr_expect_eq(fixture_scalar(c, "SELECT count(*) FROM voip_cdr_rollup_store_day", 0, NULL), 24,
                 "2 tenants x 3 stores x 2 directions x 2 days");
    cr_expect_eq(fixture_scalar(c,
                                "SELECT calls FROM voip_cdr_rollup_store_day WHERE tenant_id = $1"
                                " AND day = '2025-10-30' AND direction = 'in'"
                                " AND store_id = '00000000-0000-0000-0000-000000000000'",
                                1, (const char *const[]){TENANT_A}),
                 (10 + 0) + (10 + 12) + (10 + 24) + (10 + 36),
                 "the hours 20:00 to 23:00: g = 0, 12, 24, 36");
    cr_expect_eq(fixture_scalar(c, "SELECT count(*) FROM voip_cdr_rollup_store_hour", 0, NULL), 144,
                 "the store-hour rows are kept");

    expect_pkey(c, "voip_cdr_rollup_store_hour",
                "CREATE UNIQUE INDEX voip_cdr_rollup_store_hour_pkey ON "
                "public.voip_cdr_rollup_store_hour USING btree (tenant_id, hour, store_id, "
                "direction)");
    expect_pkey(c, "voip_cdr_rollup_store_day",
                "CREATE UNIQUE INDEX voip_cdr_rollup_store_day_pkey ON "
                "public.voip_cdr_rollup_store_day USING btree (tenant_id, day, store_id, "
                "direction)");

    /* The DID index, on voip_cdr, on the partitions it had, and on one made after. */
    fixture_exec(c, "SELECT cdr_ensure_month('2025-12-01')", 0, NULL);
    PGresult *res = itest_query(
        c, "SELECT pg_get_indexdef('voip_cdr_tenant_did_start_idx'::regclass)", 0, NULL);
    cr_assert(itest_ok(res), "%s", PQresultErrorMessage(res));
    cr_expect_str_eq(PQgetvalue(res, 0, 0),
                     "CREATE INDEX voip_cdr_tenant_did_start_idx ON ONLY public.voip_cdr USING "
                     "btree (tenant_id, did_e164, start_ts DESC) WHERE (did_e164 IS NOT NULL)");
    PQclear(res);
    cr_expect_eq(
        fixture_scalar(c,
                       "SELECT count(*) FROM pg_inherits h JOIN pg_index i"
                       "    ON i.indexrelid = h.inhrelid"
                       " WHERE h.inhparent = 'voip_cdr_tenant_did_start_idx'::regclass"
                       "   AND pg_get_expr(i.indpred, i.indrelid) = '(did_e164 IS NOT NULL)'"
                       "   AND i.indisvalid",
                       0, NULL),
        3, "the DID index of each of the 3 partitions is partial");
    cr_expect_eq(fixture_scalar(c,
                                "SELECT count(*) FROM pg_inherits"
                                " WHERE inhparent = 'voip_cdr_tenant_did_start_idx'::regclass",
                                0, NULL),
                 3);
    cr_expect_eq(
        fixture_scalar(c, "SELECT count(*) FROM voip_cdr WHERE did_e164 = '+39069876'", 0, NULL),
        20);

    expect_policies_and_grants_of(c, "voip_cdr_rollup_store_day", "voip_cdr_rollup_store_hour");
    PQfinish(c);
}

/* A database migrated up to the one before AGENT_GRAIN, with CDRs of three UTC months (calls
 * just before and at a UTC month's start, two calls of one extension at the same instant) and
 * extension-day rows that do not match them, then `cdrctl migrate` in a session two hours
 * behind UTC: both extension rollups hold what the CDRs give, whatever was there before, keyed
 * by tenant, time and extension, and with the policies and grants of the other rollups. */
Test(schema, agent_grain_recomputes_extension_days_and_months)
{
    char names[64][128];
    int n, before;
    PGconn *c = db_before(AGENT_GRAIN, names, &n, &before);

    fixture_exec(c, "SELECT cdr_ensure_months('2025-09-01', 3)", 0, NULL);
    /* Two tenants, stores and none, both directions, every disposition, four extensions and
     * none, users and none, QoS in multiples of 1/4, from 2025-09-25 to 2025-11-24. */
    fixture_exec(
        c,
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, store_id, sip_domain, direction,"
        "    from_uri, to_uri, ext_number, user_id, answer_ts, end_ts, billsec, disposition,"
        "    mos, jitter_ms, loss_pct)"
        " SELECT (ARRAY['" TENANT_A "', '" TENANT_B "'])[1 + g % 2]::uuid, 'call-' || g, ts,"
        "   CASE WHEN g % 3 = 0 THEN NULL"
        "        ELSE ('00000000-0000-4000-8000-00000000000' || (g % 3))::uuid END,"
        "   'tenant.example.it', CASE WHEN g % 5 < 3 THEN 'in' ELSE 'out' END, '+390612345',"
        "   '+39069876', CASE WHEN g % 9 = 0 THEN NULL ELSE '1' || (g % 4) END,"
        "   CASE WHEN g % 4 = 0 THEN NULL"
        "        ELSE ('11111111-0000-4000-8000-00000000000' || (g % 7))::uuid END,"
        "   CASE WHEN disp = 'ANSWERED' THEN ts + make_interval(secs => g % 20 + 0.5) END,"
        "   ts + interval '10 minutes', CASE WHEN disp = 'ANSWERED' THEN g % 300 ELSE 0 END,"
        "   disp, (CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN 3.6 WHEN 2 THEN 3.5 ELSE 4.25"
        "          END)::real,"
        "   CASE WHEN g % 6 = 0 THEN NULL ELSE (g % 20) * 0.25 END,"
        "   CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 9) * 0.5 END"
        " FROM (SELECT g, timestamptz '2025-09-25 00:00:00+00'"
        "                   + make_interval(secs => g * 21599.75) AS ts,"
        "          (ARRAY['ANSWERED', 'NO_ANSWER', 'ANSWERED', 'BUSY', 'FAILED'])"
        "              [1 + g / 2 % 5] AS disp"
        "        FROM generate_series(1, 240) AS g) AS s",
        0, NULL);
    /* Extension 10 of tenant A: a missed call just before October and one at its start, and
     * October's last two calls at the same instant, the later call_id's user being the latest. */
    fixture_exec(
        c,
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, sip_domain, direction, from_uri,"
        "    to_uri, ext_number, user_id, end_ts, billsec, disposition)"
        " SELECT '" TENANT_A "', call_id, ts, 'tenant.example.it', direction, '+390612345',"
        "   '+39069876', '10', user_id, ts + interval '1 minute', 0, disposition"
        " FROM (VALUES"
        "   ('edge-1', timestamptz '2025-09-30 23:59:59.75+00', 'in',"
        "    '22222222-0000-4000-8000-000000000001'::uuid, 'NO_ANSWER'),"
        "   ('edge-2', '2025-10-01 00:00:00+00', 'in',"
        "    '22222222-0000-4000-8000-000000000002', 'BUSY'),"
        "   ('same-instant-b', '2025-10-31 23:59:59.999999+00', 'out',"
        "    '22222222-0000-4000-8000-00000000000b', 'FAILED'),"
        "   ('same-instant-a', '2025-10-31 23:59:59.999999+00', 'out',"
        "    '22222222-0000-4000-8000-00000000000a', 'FAILED'))"
        "   AS v(call_id, ts, direction, user_id, disposition)",
        0, NULL);
    /* Rows the old table held that the CDRs do not give. */
    fixture_exec(
        c,
        "INSERT INTO voip_cdr_rollup_ext_day (tenant_id, day, ext_number, direction, calls)"
        " VALUES ('" TENANT_A "', '2025-10-05', '99', 'in', 5),"
        "        ('" TENANT_A "', '2025-10-01', '10', 'out', 1000)",
        0, NULL);

    expect_migrate_applies((const char *const[]){"PGTZ=America/Noronha", NULL}, names, before, n);

    cr_expect_eq(
        fixture_scalar(c, ORACLE_DIFFER(ORACLE_EXT_ROWS("day"), ORACLE_EXT_DAY("true")), 0, NULL),
        0, "the extension-day rollup differs from the recomputation");
    cr_expect_eq(fixture_scalar(
                     c, ORACLE_DIFFER(ORACLE_EXT_ROWS("month"), ORACLE_EXT_MONTH("true")), 0, NULL),
                 0, "the extension-month rollup differs from the recomputation");
    cr_expect_eq(
        fixture_scalar(c, "SELECT count(DISTINCT month) FROM voip_cdr_rollup_ext_month", 0, NULL),
        3, "September to November");
    /* The user of extension 10's latest call in September and in October. */
    PGresult *res = itest_query(c,
                                "SELECT string_agg(month || ' ' || user_id, ', ' ORDER BY month)"
                                " FROM voip_cdr_rollup_ext_month"
                                " WHERE tenant_id = $1 AND ext_number = '10'"
                                "   AND month IN ('2025-09-01', '2025-10-01')",
                                1, (const char *const[]){TENANT_A});
    cr_assert(itest_ok(res), "%s", PQresultErrorMessage(res));
    cr_expect_str_eq(PQgetvalue(res, 0, 0), "2025-09-01 22222222-0000-4000-8000-000000000001, "
                                            "2025-10-01 22222222-0000-4000-8000-00000000000b");
    PQclear(res);

    expect_pkey(c, "voip_cdr_rollup_ext_day",
                "CREATE UNIQUE INDEX voip_cdr_rollup_ext_day_pkey ON "
                "public.voip_cdr_rollup_ext_day USING btree (tenant_id, day, ext_number)");
    expect_pkey(c, "voip_cdr_rollup_ext_month",
                "CREATE UNIQUE INDEX voip_cdr_rollup_ext_month_pkey ON "
                "public.voip_cdr_rollup_ext_month USING btree (tenant_id, month, ext_number)");
    res = itest_query(c,
                      "INSERT INTO voip_cdr_rollup_ext_month (tenant_id, month, ext_number)"
                      " VALUES ($1, '2025-10-02', '10')",
                      1, (const char *const[]){TENANT_B});
    cr_expect(!itest_ok(res), "a month that is not a first day is refused");
    cr_expect_str_eq(itest_sqlstate(res), "23514", "%s", PQresultErrorMessage(res));
    PQclear(res);
    expect_policies_and_grants_of(c, "voip_cdr_rollup_ext_day", "voip_cdr_rollup_store_hour");
    expect_policies_and_grants_of(c, "voip_cdr_rollup_ext_month", "voip_cdr_rollup_store_hour");
    PQfinish(c);
}
