/* writer_run.c - cdr-writer processes under test: start, wait, kill, stop, HTTP, metrics, CPU. */
#include "writer_run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_client.h"
#include "itest.h"
#include "proc.h"

#define LOCALHOST        "127.0.0.1"
#define MAX_ENV          32
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  30000

void writer_run_spawn(writer_run *w, const char *log, const char *consumer, const char *const *env)
{
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    char listen[64], passed[CDR_ARRAY_LEN(pass)][1024];
    const char *full[MAX_ENV];
    int n = 0;
    for (; env && env[n]; n++) {
        cr_assert(n < MAX_ENV - 5, "too many settings");
        full[n] = env[n];
    }
    w->port = proc_free_port();
    snprintf(listen, sizeof(listen), "CDR_WRITER_METRICS_LISTEN=%s:%d", LOCALHOST, w->port);
    full[n++] = listen;
    for (size_t i = 0; i < CDR_ARRAY_LEN(pass); i++) {
        const char *v = getenv(pass[i]);
        if (v) {
            snprintf(passed[i], sizeof(passed[i]), "%s=%s", pass[i], v);
            full[n++] = passed[i];
        }
    }
    full[n] = NULL;
    snprintf(w->log, sizeof(w->log), "%s", log);
    FILE *f = fopen(w->log, "a");
    cr_assert(f, "%s: %s", w->log, strerror(errno));
    fprintf(f, "--- start %d as consumer %s\n", ++w->starts, consumer);
    fclose(f);
    const char *argv[] = {CDR_BIN_DIR "/cdr-writer", NULL};
    w->pid = proc_spawn(argv, full, w->log);
}

void writer_run_alive(writer_run *w)
{
    char how[64];
    int st = proc_wait_exit(w->pid, 0);
    if (st != -1) {
        w->pid = 0;
        cr_assert_fail("cdr-writer ended by itself (%s); its log:\n%s",
                       proc_status_text(st, how, sizeof(how)), proc_log_tail(w->log));
    }
}

int writer_run_get(const writer_run *w, const char *path, char **body)
{
    char err[256];
    http_conn c = {.fd = -1};
    http_response r;
    int status = -1;
    if (http_connect(&c, LOCALHOST, w->port, 2000, err, sizeof(err)) == 0 &&
        http_request(&c, "GET", path, NULL, 0, NULL, 0, &r, err, sizeof(err)) == 0) {
        status = r.status;
        if (body)
            *body = strdup(r.body ? r.body : "");
        http_response_free(&r);
    }
    http_close(&c);
    return status;
}

void writer_run_ready(writer_run *w)
{
    int64_t deadline = itest_now_ms() + START_TIMEOUT_MS;
    while (writer_run_get(w, "/healthz", NULL) != 200) {
        writer_run_alive(w);
        cr_assert(itest_now_ms() < deadline, "cdr-writer did not serve /healthz within %d ms:\n%s",
                  START_TIMEOUT_MS, proc_log_tail(w->log));
        itest_sleep_ms(20);
    }
}

void writer_run_kill(writer_run *w)
{
    writer_run_alive(w);
    proc_kill(w->pid);
    w->pid = 0;
}

void writer_run_stop(writer_run *w)
{
    char how[64];
    writer_run_ready(w);
    kill(w->pid, SIGTERM);
    int st = proc_wait_exit(w->pid, STOP_TIMEOUT_MS);
    if (st == -1)
        proc_kill(w->pid);
    w->pid = 0;
    cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "cdr-writer ended with %s after SIGTERM instead of exit status 0; its log:\n%s",
              st == -1 ? "nothing" : proc_status_text(st, how, sizeof(how)), proc_log_tail(w->log));
}

long long writer_run_metric(const char *text, const char *name)
{
    size_t len = strlen(name);
    long long sum = -1;
    for (const char *p = text; p && *p;) {
        if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '{')) {
            const char *v = p[len] == '{' ? strchr(p + len, '}') : p + len;
            if (v)
                sum = (sum < 0 ? 0 : sum) + (long long)(strtod(v + 1, NULL) + 0.5);
        }
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return sum;
}

double writer_run_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    /* The fields after the command name, which is in parentheses and may hold anything. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    cr_assert(
        p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2,
        "cannot read %s", path);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
