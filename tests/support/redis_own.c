/* redis_own.c - Redis for the integration tests: the stack's, synchronous commands, our own. */
#include "redis_own.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proc.h"

#define START_TIMEOUT_MS 10000

const itest_env *redis_stack_env(void)
{
    char err[1024];
    const itest_env *e = itest_env_load(err, sizeof(err));
    cr_assert(e, "%s", err);
    cr_assert(e->redis_port[0] && e->dir[0],
              "the test stack's env file names no Redis or directory");
    return e;
}

redisContext *redis_open(int port, const char *password)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(REDIS_OWN_HOST, port, tv);
    cr_assert(c && !c->err, "cannot connect to Redis on port %d: %s", port,
              c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    if (password) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        cr_assert(r && r->type == REDIS_REPLY_STATUS, "AUTH failed on port %d", port);
        freeReplyObject(r);
    }
    return c;
}

/* The reply of the command 'fmt' 'ap' on 'c', asserting that it is neither missing nor an
 * error. */
static redisReply *command(redisContext *c, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(c, fmt, ap);
    cr_assert(r, "%s: %s", fmt, c->errstr);
    cr_assert(r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    return r;
}

redisReply *redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = command(c, fmt, ap);
    va_end(ap);
    return r;
}

void redis_do(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    freeReplyObject(command(c, fmt, ap));
    va_end(ap);
}

long long redis_xlen(redisContext *c, const char *key)
{
    redisReply *r = redis_cmd(c, "XLEN %s", key);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "XLEN %s: reply type %d", key, r->type);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* True when something on 'port' answers PING at all (NOAUTH counts). */
static bool answers_ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout(REDIS_OWN_HOST, port, tv);
    redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
    bool up = r != NULL;
    freeReplyObject(r);
    redisFree(c);
    return up;
}

void redis_own_start(redis_own *r, const char *parent, const char *password, bool unix_socket)
{
    if (!r->dir[0]) {
        snprintf(r->dir, sizeof(r->dir), "%s/redis.XXXXXX", parent);
        cr_assert(mkdtemp(r->dir), "mkdtemp %s: %s", r->dir, strerror(errno));
        r->port = proc_free_port();
        snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
        snprintf(r->url, sizeof(r->url), "redis://%s:%d", REDIS_OWN_HOST, r->port);
    }
    if (unix_socket && strlen(r->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        cr_skip_test("socket path %s is too long for a unix socket", r->sock);

    char port[16], log[1300];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    const char *argv[24] = {
        "redis-server", "--port",      port, "--bind",       REDIS_OWN_HOST, "--dir",
        r->dir,         "--save",      "",   "--appendonly", "yes",          "--appendfsync",
        "always",       "--daemonize", "no"};
    int n = 15;
    if (password) {
        argv[n++] = "--requirepass";
        argv[n++] = password;
    }
    if (unix_socket) {
        argv[n++] = "--unixsocket";
        argv[n++] = r->sock;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
    }
    argv[n] = NULL;
    r->pid = proc_spawn(argv, NULL, log);

    int64_t deadline = itest_now_ms() + START_TIMEOUT_MS;
    while (!answers_ping(r->port)) {
        cr_assert(proc_wait_exit(r->pid, 0) == -1, "redis-server exited; its log:\n%s",
                  proc_log_tail(log));
        cr_assert(itest_now_ms() < deadline, "redis-server did not answer within %d ms; see %s",
                  START_TIMEOUT_MS, log);
        itest_sleep_ms(20);
    }
}

void redis_own_kill(redis_own *r)
{
    proc_kill(r->pid);
    r->pid = 0;
}
