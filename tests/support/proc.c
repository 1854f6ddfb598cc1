/* proc.c - processes and ports for the integration tests. */
#include "proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

int proc_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname: %s",
              strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

pid_t proc_spawn(const char *const *argv, const char *const *envp, const char *log)
{
    extern char **environ;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        if (in >= 0)
            dup2(in, STDIN_FILENO);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execvpe(argv[0], (char *const *)argv, envp ? (char *const *)envp : environ);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int proc_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = itest_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return 0;
        if (itest_now_ms() >= deadline)
            return -1;
        itest_sleep_ms(10);
    }
}

void proc_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

const char *proc_status_text(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
    else
        snprintf(buf, len, "signal %d", WTERMSIG(st));
    return buf;
}

const char *proc_log_tail(const char *path)
{
    static char buf[2048];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return "(no log)";
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

void proc_env_set(const char **env, int *n, int max, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (int i = 0; i < *n; i++)
        if (strncmp(env[i], kv, klen + 1) == 0) {
            env[i] = kv;
            return;
        }
    cr_assert(*n + 1 < max, "too many environment settings");
    env[(*n)++] = kv;
    env[*n] = NULL;
}
