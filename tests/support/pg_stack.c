/* pg_stack.c - the test stack's PostgreSQL stopped and started again by a test. */
#include "pg_stack.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

/* How long pg_ctl waits for the server to stop or start, in seconds. */
#define PG_CTL_WAIT_S "60"

/* What pg_ctl needs of the stack, from its env file. */
typedef struct pg_stack {
    char data[1024]; /* CDR_TEST_PG_DATA */
    char bin[1024];  /* CDR_TEST_PG_BIN */
    char dir[1024];  /* CDR_TEST_DIR: teststack logs PostgreSQL to postgresql.log there */
} pg_stack;

/* Copies the value of the line "'key'=VALUE" of 'line' into 'dst' when the line is that key. */
static void take(const char *line, const char *key, char *dst, size_t len)
{
    size_t klen = strlen(key);
    if (strncmp(line, key, klen) != 0 || line[klen] != '=')
        return;
    const char *v = line + klen + 1;
    snprintf(dst, len, "%.*s", (int)strcspn(v, "\r\n"), v);
}

static void stack_load(pg_stack *s)
{
    const char *path = getenv("CDR_TEST_ENV_FILE");
    if (!path || !*path)
        path = CDR_TEST_ENV_FILE;
    memset(s, 0, sizeof(*s));
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open the test stack's env file %s: %s", path, strerror(errno));
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        take(line, "CDR_TEST_PG_DATA", s->data, sizeof(s->data));
        take(line, "CDR_TEST_PG_BIN", s->bin, sizeof(s->bin));
        take(line, "CDR_TEST_DIR", s->dir, sizeof(s->dir));
    }
    fclose(f);
    cr_assert(s->data[0] && s->bin[0] && s->dir[0],
              "%s lacks CDR_TEST_PG_DATA, CDR_TEST_PG_BIN or CDR_TEST_DIR", path);
}

/* Runs pg_ctl with 'args' (NULL-terminated) as the user that owns the cluster (postgres when we
 * are root, as teststack does), from / so that a working directory that user cannot enter does
 * not matter, and asserts that it succeeds. */
static void pg_ctl(const pg_stack *s, const char *const *args)
{
    char prog[1100], log[1100];
    snprintf(prog, sizeof(prog), "%s/pg_ctl", s->bin);
    snprintf(log, sizeof(log), "%s/pg_ctl.out", s->dir);
    const char *argv[24] = {"/bin/sh", "-c", "cd / && exec \"$@\"", "sh"};
    int n = 4;
    if (geteuid() == 0) {
        argv[n++] = "runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    argv[n++] = prog;
    for (const char *const *a = args; *a; a++) {
        cr_assert(n + 1 < (int)(sizeof(argv) / sizeof(argv[0])));
        argv[n++] = *a;
    }
    argv[n] = NULL;
    pid_t pid = proc_spawn(argv, NULL, log);
    int st = proc_wait_exit(pid, (atoi(PG_CTL_WAIT_S) + 10) * 1000);
    if (st == -1)
        proc_kill(pid);
    char how[64];
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "pg_ctl %s failed (%s):\n%s",
              args[0], st == -1 ? "timed out" : proc_status_text(st, how, sizeof(how)),
              proc_log_tail(log));
}

void pg_stack_stop(void)
{
    pg_stack s;
    stack_load(&s);
    pg_ctl(&s, (const char *const[]){"stop", "-D", s.data, "-m", "fast", "-w", "-t", PG_CTL_WAIT_S,
                                     NULL});
}

void pg_stack_start(void)
{
    pg_stack s;
    char log[1100];
    stack_load(&s);
    snprintf(log, sizeof(log), "%s/postgresql.log", s.dir);
    pg_ctl(&s, (const char *const[]){"start", "-D", s.data, "-l", log, "-w", "-t", PG_CTL_WAIT_S,
                                     NULL});
}
