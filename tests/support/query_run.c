/* query_run.c - see query_run.h. */
#include "query_run.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cdr_bodies.h"
#include "http_client.h"
#include "proc.h"

#define ENV_MAX 32

void query_run_start(query_run *q, const itest_db *db, const char *const *extra)
{
    char listen[64], pg[ITEST_URL_MAX + 32], reader[ITEST_URL_MAX], err[256];
    cr_assert(itest_db_url(db, "cdr_reader", reader, sizeof(reader)) == 0);
    memset(q, 0, sizeof(*q));
    q->port = proc_free_port();
    snprintf(listen, sizeof(listen), "CDR_QUERY_LISTEN=127.0.0.1:%d", q->port);
    snprintf(pg, sizeof(pg), "CDR_QUERY_PG_URL=%s", reader);
    const char *const defaults[] = {listen,
                                    pg,
                                    "CDR_QUERY_TENANT_BURST=100000",
                                    "CDR_QUERY_TENANT_RATE=100000",
                                    "CDR_QUERY_IP_BURST=100000",
                                    "CDR_QUERY_IP_RATE=100000",
                                    "CDR_QUERY_PG_CONNS=2",
                                    "CDR_JWT_SECRET=" SECRET,
                                    "CDR_LOG_LEVEL=warn"};
    const char *env[ENV_MAX] = {NULL};
    int n = 0;
    /* The test's settings override the defaults. */
    for (size_t i = 0; i < CDR_ARRAY_LEN(defaults); i++)
        proc_env_set(env, &n, ENV_MAX, defaults[i]);
    for (int i = 0; extra && extra[i]; i++)
        proc_env_set(env, &n, ENV_MAX, extra[i]);
    char dir[] = "/tmp/qrunXXXXXX";
    cr_assert(mkdtemp(dir));
    snprintf(q->log, sizeof(q->log), "%s/query.log", dir);
    const char *argv[] = {CDR_BIN_DIR "/cdr-query", NULL};
    q->pid = proc_spawn(argv, env, q->log);
    int64_t deadline = itest_now_ms() + 20000;
    for (;;) {
        cr_assert(proc_wait_exit(q->pid, 0) == -1, "cdr-query ended; log:\n%s",
                  proc_log_tail(q->log));
        http_conn c = {.fd = -1};
        http_response r;
        int status = 0;
        if (http_connect(&c, "127.0.0.1", q->port, 500, err, sizeof(err)) == 0 &&
            http_request(&c, "GET", "/readyz", NULL, 0, NULL, 0, &r, err, sizeof(err)) == 0) {
            status = r.status;
            http_response_free(&r);
        }
        http_close(&c);
        if (status == 200)
            return;
        cr_assert(itest_now_ms() < deadline, "no /readyz 200; log:\n%s", proc_log_tail(q->log));
        itest_sleep_ms(50);
    }
}

void query_run_stop(query_run *q)
{
    if (q->pid <= 0)
        return;
    kill(q->pid, SIGTERM);
    int st = proc_wait_exit(q->pid, 10000);
    pid_t pid = q->pid;
    q->pid = 0;
    if (st == -1)
        proc_kill(pid);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "cdr-query did not exit 0 on SIGTERM; log:\n%s", proc_log_tail(q->log));
}

void query_run_kill(query_run *q)
{
    if (q->pid > 0)
        proc_kill(q->pid);
    q->pid = 0;
}

long query_run_kib(const query_run *q, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)q->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    size_t flen = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}
