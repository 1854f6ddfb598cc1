/* writer_run.h - cdr-writer processes under test: started with a chosen environment and a
 * metrics port of their own, their output appended to one log over restarts, waited for, killed
 * or stopped, their HTTP routes and metrics read, their CPU time. Failures end the calling test
 * through Criterion's assertions. */
#ifndef CDR_WRITER_RUN_H
#define CDR_WRITER_RUN_H

#include <stdbool.h>
#include <sys/types.h>

/* One writer of a test. Zero-initialise. */
typedef struct writer_run {
    pid_t pid;      /* while it runs, or 0 */
    int port;       /* its metrics listener, chosen at each start */
    int starts;     /* how many times it was started */
    char log[1200]; /* its output, every start appended */
} writer_run;

/* Starts build/bin/cdr-writer as 'w' with the "KEY=VALUE" strings of 'env' (NULL-terminated, at
 * most 26 of them) plus CDR_WRITER_METRICS_LISTEN on a free loopback port and the sanitizers'
 * options of the test's environment. Its output goes to the file 'log', after a line naming the
 * start and the consumer name 'consumer'. Does not wait: see writer_run_ready(). */
void writer_run_spawn(writer_run *w, const char *log, const char *consumer, const char *const *env);

/* Asserts that 'w' still runs (it never exits by itself). */
void writer_run_alive(writer_run *w);

/* GET 'path' on the metrics listener of 'w': the status, or -1 when it does not answer. With
 * 'body' not NULL, the body goes there (free()). */
int writer_run_get(const writer_run *w, const char *path, char **body);

/* Waits (10 s at most) until 'w' answers GET /healthz with 200, asserting that it runs. */
void writer_run_ready(writer_run *w);

/* SIGKILLs 'w', asserting first that it was running. */
void writer_run_kill(writer_run *w);

/* Waits for 'w' to serve, sends SIGTERM, and expects exit status 0 within 30 s (it is killed
 * otherwise). */
void writer_run_stop(writer_run *w);

/* The value of the metric 'name' in the Prometheus text 'text', summed over its label sets and
 * rounded, or -1 when it is not there. */
long long writer_run_metric(const char *text, const char *name);

/* The CPU time, user and system, that the process 'pid' used so far, in seconds. */
double writer_run_cpu_s(pid_t pid);

#endif
