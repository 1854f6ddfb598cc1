/* ingest_run.h - cdr-ingest under test: one test's Redis, stream key and running cdr-ingest,
 * requests to it, and expectations on its answers. Each Criterion test is a process of its own,
 * so the one 'run' below belongs to one test. Failures end the test through Criterion's
 * assertions. */
#ifndef CDR_INGEST_RUN_H
#define CDR_INGEST_RUN_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http_client.h"
#include "itest.h"
#include "redis_own.h"
#include "stream_dump.h"

#define CDR_PATH  "/api/voip/cdr"
#define LOCALHOST "127.0.0.1"

#define HTTP_TIMEOUT_MS 5000

#define MAX_POST_HEADERS 4
#define AUTH_MAX         2048

/* What one test runs. */
typedef struct test_run {
    char dir[1100]; /* scratch directory of this test */
    char key[160];  /* the stream key of this test */
    char redis_url[ITEST_URL_MAX];
    int redis_port; /* the Redis cdr-ingest uses and 'redis' talks to */
    redisContext *redis;
    redis_own own;  /* a Redis of the test's own (one it may kill), after own_redis_start() */
    pid_t ingest;   /* the running cdr-ingest, or 0 */
    int port;       /* its listen port */
    char log[1200]; /* its stderr */
    http_conn conn; /* a keep-alive connection to it */
    char *token;    /* cdr:write for tenant A */
} test_run;

extern test_run run;

/* The suite's .init and .fini: a scratch directory, a stream key named after the test on the
 * stack's Redis, tenant A's token; then killing what still runs and deleting the key. */
void ingest_setup(void);
void ingest_teardown(void);

/* Starts (or, after own_redis_kill(), restarts) a Redis of this test's own and points the test
 * at it; cdr-ingest started afterwards uses it. */
void own_redis_start(void);

/* SIGKILLs this test's own Redis. */
void own_redis_kill(void);

/* The length of the test's stream. */
long long xlen(void);

/* Reads and decodes every entry of the test's stream (sdump_free). */
void stream_load(sdump *d);

/* The last part of cdr-ingest's stderr, for assertion messages. */
const char *log_tail(void);

/* Starts cdr-ingest with a fresh environment: a free port, the test's Redis and stream key, two
 * threads, warn logging, then the "KEY=VALUE" strings of 'extra' (NULL-terminated or NULL),
 * which override. Waits for GET /healthz 200 and, when 'ready', GET /readyz 200 (Redis
 * connected), and opens run.conn. */
void ingest_start(const char *const *extra, bool ready);

/* Sends SIGTERM and asserts that cdr-ingest exits with status 0 within 5 s. Every test ends
 * with it. */
void ingest_stop(void);

/* Fills 'h' (MAX_POST_HEADERS entries) with the headers of a request and returns how many:
 * Authorization from 'token' (NULL: none; a value with a space, "Basic ...", is sent as it is,
 * anything else as "Bearer <token>"; the value is kept in 'auth' of AUTH_MAX bytes), then
 * Content-Type 'ctype' and Content-Encoding 'cenc' when not NULL. */
int request_headers(http_header *h, char *auth, const char *token, const char *ctype,
                    const char *cenc);

/* Sends 'method' 'path' on run.conn with the headers of request_headers() and 'body' (NULL:
 * none), and reads the answer into 'r' (http_response_free). */
void request(const char *method, const char *path, const char *token, const char *ctype,
             const char *cenc, const void *body, size_t len, http_response *r);

/* POSTs 'body' to CDR_PATH. */
void post(const char *token, const char *ctype, const char *cenc, const void *body, size_t len,
          http_response *r);

/* POSTs 'doc' as application/json with tenant A's cdr:write token. */
void post_json(const json_t *doc, http_response *r);

/* POSTs one valid CDR with 'call_id'. */
void post_one(const char *call_id, http_response *r);

void get(const char *path, http_response *r);

/* Asserts 202 {"accepted": n} and frees 'r'. */
void expect_accepted(http_response *r, long long n);

/* Asserts that 'r' is 'status' with the error shape {"error": {"status", "message",
 * "details": [...]}} and returns the parsed body (json_decref). */
json_t *expect_error(const http_response *r, int status);

/* Asserts the error shape with 'status', then frees it and 'r'. */
void expect_error_only(http_response *r, int status);

#endif
