/* itest.c - integration test helpers: stack settings, throw-away databases, running programs,
 * a clock. */
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CDR_TEST_ENV_FILE
#error "CDR_TEST_ENV_FILE must name the env file the test stack writes"
#endif
#ifndef CDR_BIN_DIR
#error "CDR_BIN_DIR must name the directory holding the built programs"
#endif

extern char **environ;

/* Copies 'n' bytes of 's' into 'dst' of 'len' bytes. Returns false when they do not fit. */
static bool copy_value(char *dst, size_t len, const char *s, size_t n)
{
    if (n >= len)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* Applies one "KEY=VALUE" line to 'e'; unknown keys are ignored (the file serves every test). */
static void env_line(itest_env *e, char *line)
{
    char *p = line + strspn(line, " \t");
    if (*p == '#' || *p == '\0')
        return;
    if (strncmp(p, "export ", 7) == 0)
        p += 7;
    char *eq = strchr(p, '=');
    if (!eq)
        return;
    *eq = '\0';
    char *v = eq + 1;
    size_t n = strcspn(v, "\r\n");
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v++;
        n -= 2;
    }
    static const struct {
        const char *key;
        size_t off, len;
    } keys[] = {
        {"CDR_TEST_PG_ADMIN_URL", offsetof(itest_env, pg_admin_url), ITEST_URL_MAX},
        {"CDR_TEST_PG_HOST", offsetof(itest_env, pg_host), sizeof(((itest_env *)0)->pg_host)},
        {"CDR_TEST_PG_PORT", offsetof(itest_env, pg_port), sizeof(((itest_env *)0)->pg_port)},
        {"CDR_TEST_REDIS_URL", offsetof(itest_env, redis_url), ITEST_URL_MAX},
        {"CDR_TEST_REDIS_PORT", offsetof(itest_env, redis_port),
         sizeof(((itest_env *)0)->redis_port)},
        {"CDR_TEST_DIR", offsetof(itest_env, dir), sizeof(((itest_env *)0)->dir)},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(p, keys[i].key) == 0)
            (void)copy_value((char *)e + keys[i].off, keys[i].len, v, n);
}

const itest_env *itest_env_load(char *err, size_t errlen)
{
    static itest_env env;
    static bool loaded;
    if (loaded)
        return &env;

    const char *path = getenv("CDR_TEST_ENV_FILE");
    if (!path || !*path)
        path = CDR_TEST_ENV_FILE;
    FILE *f = fopen(path, "r");
    if (!f) {
        cdr_errf(err, errlen, "cannot open the test stack's env file %s: %s (is the stack up?)",
                 path, strerror(errno));
        return NULL;
    }
    itest_env e;
    memset(&e, 0, sizeof(e));
    char line[2048];
    while (fgets(line, sizeof(line), f))
        env_line(&e, line);
    fclose(f);
    if (!e.pg_admin_url[0] || !e.pg_host[0] || !e.pg_port[0]) {
        cdr_errf(err, errlen,
                 "%s lacks CDR_TEST_PG_ADMIN_URL, CDR_TEST_PG_HOST or CDR_TEST_PG_PORT", path);
        return NULL;
    }
    env = e;
    loaded = true;
    return &env;
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_url(const char *url, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(url);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        cdr_errf(err, errlen, "cannot connect to %s: %s", url,
                 c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

/* Runs static or identifier-quoted DDL 'sql' (DDL takes no parameters: object names are
 * quoted with PQescapeIdentifier). Returns 0, or -1 with the server's message in 'err'. */
static int exec_ddl(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(c, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        cdr_errf(err, errlen, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

/* The quoted identifiers of 'db' on 'c', to be PQfreemem()'d. */
static bool quote_names(PGconn *c, const itest_db *db, char **name, char **owner)
{
    *name = PQescapeIdentifier(c, db->name, strlen(db->name));
    *owner = PQescapeIdentifier(c, db->owner, strlen(db->owner));
    return *name && *owner;
}

int itest_db_create(itest_db *db, char *err, size_t errlen)
{
    static unsigned counter;
    const itest_env *e = itest_env_load(err, errlen);
    if (!e)
        return -1;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned tag = (unsigned)(ts.tv_nsec ^ (ts.tv_sec << 8)) & 0xffffffu;
    memset(db, 0, sizeof(*db));
    snprintf(db->name, sizeof(db->name), "cdrt_%d_%u_%06x", (int)getpid(), counter, tag);
    snprintf(db->owner, sizeof(db->owner), "cdrt_owner_%d_%u_%06x", (int)getpid(), counter, tag);
    counter++;

    PGconn *c = connect_url(e->pg_admin_url, err, errlen);
    if (!c) {
        memset(db, 0, sizeof(*db));
        return -1;
    }
    char *name = NULL, *owner = NULL;
    char sql[512];
    int rc = -1;
    if (!quote_names(c, db, &name, &owner)) {
        cdr_errf(err, errlen, "cannot quote a name: %s", PQerrorMessage(c));
        goto done;
    }
    snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN CREATEROLE", owner);
    if (exec_ddl(c, sql, err, errlen) != 0)
        goto done;
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER %s", name, owner);
    if (exec_ddl(c, sql, err, errlen) != 0)
        goto done;
    if (itest_db_url(db, NULL, db->url, sizeof(db->url)) != 0) {
        cdr_errf(err, errlen, "database URL too long");
        goto done;
    }
    rc = 0;
done:
    PQfreemem(name);
    PQfreemem(owner);
    PQfinish(c);
    if (rc != 0)
        itest_db_drop(db);
    return rc;
}

void itest_db_drop(itest_db *db)
{
    char err[1024];
    char sql[512];
    char *name = NULL, *owner = NULL;
    if (!db || !db->owner[0])
        return;
    const itest_env *e = itest_env_load(err, sizeof(err));
    PGconn *c = e ? connect_url(e->pg_admin_url, err, sizeof(err)) : NULL;
    if (!c) {
        fprintf(stderr, "itest: cannot drop %s: %s\n", db->name, err);
        return;
    }
    if (quote_names(c, db, &name, &owner)) {
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        if (exec_ddl(c, sql, err, sizeof(err)) != 0)
            fprintf(stderr, "itest: %s\n", err);
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", owner);
        if (exec_ddl(c, sql, err, sizeof(err)) != 0)
            fprintf(stderr, "itest: %s\n", err);
    }
    PQfreemem(name);
    PQfreemem(owner);
    PQfinish(c);
    memset(db, 0, sizeof(*db));
}

int itest_db_url(const itest_db *db, const char *role, char *buf, size_t len)
{
    const itest_env *e = itest_env_load(NULL, 0);
    if (!e)
        return -1;
    int n = snprintf(buf, len, "postgresql://%s@%s:%s/%s", role ? role : db->owner, e->pg_host,
                     e->pg_port, db->name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

PGconn *itest_db_connect(const itest_db *db, const char *role, char *err, size_t errlen)
{
    char url[ITEST_URL_MAX];
    if (itest_db_url(db, role, url, sizeof(url)) != 0) {
        cdr_errf(err, errlen, "no URL for database %s", db->name);
        return NULL;
    }
    return connect_url(url, err, errlen);
}

PGresult *itest_query(PGconn *conn, const char *sql, int n, const char *const *params)
{
    return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

bool itest_ok(const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

const char *itest_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

int itest_scalar(PGconn *conn, const char *sql, int n, const char *const *params, long long *out,
                 char *err, size_t errlen)
{
    int rc = -1;
    PGresult *res = itest_query(conn, sql, n, params);
    if (!itest_ok(res)) {
        cdr_errf(err, errlen, "%s", res ? PQresultErrorMessage(res) : "out of memory");
    } else if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
        cdr_errf(err, errlen, "expected one value, got %d rows of %d columns", PQntuples(res),
                 PQnfields(res));
    } else {
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* A growable NUL-terminated capture buffer. */
typedef struct capture {
    char *data;
    size_t len, cap;
} capture;

static int capture_read(capture *c, int fd)
{
    if (c->cap - c->len < 4097) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        char *p = realloc(c->data, cap);
        if (!p)
            return -1;
        c->data = p;
        c->cap = cap;
    }
    ssize_t n = read(fd, c->data + c->len, c->cap - c->len - 1);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    c->len += (size_t)n;
    c->data[c->len] = '\0';
    return n == 0 ? 0 : 1;
}

/* The child's environment: ours minus CDR_* and PG* variables, plus 'extra'. */
static char **child_env(const char *const *extra)
{
    size_t n = 0, k = 0;
    for (char **e = environ; *e; e++)
        n++;
    for (const char *const *x = extra; x && *x; x++)
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "CDR_", 4) != 0 && strncmp(*e, "PG", 2) != 0)
            env[k++] = *e;
    for (const char *const *x = extra; x && *x; x++)
        env[k++] = (char *)*x;
    env[k] = NULL;
    return env;
}

int itest_run(const char *name, const char *const *args, const char *const *env, int timeout_s,
              itest_proc *p, char *err, size_t errlen)
{
    char path[1024];
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    char **argv = NULL;
    char **envp = NULL;
    capture out = {0}, errc = {0};
    size_t nargs = 0;
    int rc = -1;

    memset(p, 0, sizeof(*p));
    snprintf(path, sizeof(path), "%s/%s", CDR_BIN_DIR, name);
    for (const char *const *a = args; a && *a; a++)
        nargs++;
    argv = calloc(nargs + 2, sizeof(*argv));
    envp = child_env(env);
    if (!argv || !envp) {
        cdr_errf(err, errlen, "out of memory");
        goto done;
    }
    argv[0] = path;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];

    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        cdr_errf(err, errlen, "pipe: %s", strerror(errno));
        goto done;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cdr_errf(err, errlen, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        execve(path, argv, envp);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;

    int64_t deadline = itest_now_ms() + (int64_t)timeout_s * 1000;
    bool out_open = true, err_open = true, killed = false;
    while (out_open || err_open) {
        struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
        fds[0].fd = out_open ? out_pipe[0] : -1;
        fds[1].fd = err_open ? err_pipe[0] : -1;
        int r = poll(fds, 2, 100);
        if (r < 0 && errno != EINTR) {
            cdr_errf(err, errlen, "poll: %s", strerror(errno));
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            goto done;
        }
        for (int i = 0; r > 0 && i < 2; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int got = capture_read(i == 0 ? &out : &errc, i == 0 ? out_pipe[0] : err_pipe[0]);
            if (got <= 0)
                *(i == 0 ? &out_open : &err_open) = false;
        }
        if (!killed && itest_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    p->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    p->out = out.data ? out.data : strdup("");
    p->err = errc.data ? errc.data : strdup("");
    out.data = errc.data = NULL;
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    free(out.data);
    free(errc.data);
    free(argv);
    free(envp);
    return rc;
}

void itest_proc_free(itest_proc *p)
{
    if (!p)
        return;
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

int64_t itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void itest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
