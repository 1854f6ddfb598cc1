/* redis_own.h - Redis for the integration tests: the stack's Redis, synchronous commands that
 * must succeed, and a redis-server of a test's own, which it may stop, kill and restart. Like
 * proc.h, these end the calling test through Criterion's assertions when something fails. */
#ifndef CDR_REDIS_OWN_H
#define CDR_REDIS_OWN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

#include "itest.h"

#define REDIS_OWN_HOST "127.0.0.1"

/* The test stack's settings, which must name a Redis and a directory. */
const itest_env *redis_stack_env(void);

/* Connects to the Redis on REDIS_OWN_HOST:'port' (2 s bounds on connecting and on each
 * command), authenticated with 'password' when it is not NULL. Free with redisFree(). */
redisContext *redis_open(int port, const char *password);

/* Runs a command and returns its reply (freeReplyObject), which is never NULL nor an error. */
redisReply *redis_cmd(redisContext *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs a command whose answer only has to be no error. */
void redis_do(redisContext *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The length of the stream 'key' (0 when there is none). */
long long redis_xlen(redisContext *c, const char *key);

/* A redis-server of the test's own. Zero-initialise; the first redis_own_start() fills it. */
typedef struct redis_own {
    pid_t pid;       /* while it runs, or 0 */
    int port;        /* chosen by the first start, kept by the next ones */
    char dir[1100];  /* its directory: append-only file, log, socket */
    char sock[1200]; /* its unix socket, when asked for one */
    char url[64];    /* redis://REDIS_OWN_HOST:port */
} redis_own;

/* Starts the redis-server of 'r', or starts it again after redis_own_kill() on the same port and
 * directory, where it reloads its append-only file. The first start makes 'r->dir' below
 * 'parent' and picks a free port. Every write is on disk before Redis answers it, so a SIGKILL
 * loses nothing Redis acknowledged. 'password' (NULL: none) becomes requirepass; with
 * 'unix_socket' it also listens on 'r->sock' (and the test is skipped when that path is too
 * long for a socket). Returns once Redis answers PING, even with NOAUTH. */
void redis_own_start(redis_own *r, const char *parent, const char *password, bool unix_socket);

/* SIGKILLs the redis-server of 'r': what it did not write to its append-only file is lost.
 * Does nothing when it is not running. */
void redis_own_kill(redis_own *r);

#endif
