/* proc.h - processes and ports for the integration tests: a free loopback port, a program run
 * in the background with its output in a log, waiting for its end, killing it. Unlike itest.h,
 * these end the calling test through Criterion's assertions when the system refuses (no
 * socket, no fork). */
#ifndef CDR_PROC_H
#define CDR_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* A loopback TCP port nobody listens on right now. */
int proc_free_port(void);

/* Starts 'argv' (NULL-terminated; argv[0] is looked up in PATH unless it holds a slash) with
 * the environment 'envp' (NULL-terminated; NULL: the test's own), stdout and stderr appended
 * to the file 'log', stdin from /dev/null, no signal blocked and SIGPIPE at its default.
 * Returns its pid; when it cannot be executed it exits with status 127 after saying why in
 * 'log'. */
pid_t proc_spawn(const char *const *argv, const char *const *envp, const char *log);

/* Waits up to 'timeout_ms' (0: only looks) for 'pid' to end. Returns its wait status, or -1
 * while it still runs. A 'pid' that is not our child any more counts as ended with status 0. */
int proc_wait_exit(pid_t pid, int timeout_ms);

/* SIGKILLs 'pid' and reaps it. Does nothing for a 'pid' of 0 or less. */
void proc_kill(pid_t pid);

/* Writes how a process ended, from its wait status 'st', to 'buf' ("exit status 1",
 * "signal 9") and returns 'buf'. */
const char *proc_status_text(int st, char *buf, size_t len);

/* Adds "KEY=VALUE" 'kv' to the environment 'env' of '*n' entries, or replaces the entry of the
 * same KEY, so that a later setting overrides an earlier one; keeps 'env' NULL-terminated.
 * 'max' is the capacity of 'env', its NULL included. */
void proc_env_set(const char **env, int *n, int max, const char *kv);

/* The last 2 KB or so of the file 'path' (a static buffer, valid until the next call), or
 * "(no log)" when it cannot be read: a log's end for an assertion message. */
const char *proc_log_tail(const char *path);

#endif
