/* test_ingest.c - cdr-ingest over HTTP against a real Redis: every answer of docs/ingest.md,
 * the exact stream entries written for a known input, back-pressure, Redis outages, many
 * clients at once, clients that vanish or stall, and a clean SIGTERM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "auth.h"
#include "buf.h"
#include "cdr_codec.h"
#include "http_client.h"
#include "itest.h"

#define SECRET       "itest-ingest-secret-0123456789abcdef"
#define OTHER_SECRET "another-secret-that-is-long-enough-0123"
#define TENANT_A     "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define DOMAIN_A     "tenanta.edvoip.it"
#define TENANT_B     "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define DOMAIN_B     "tenantb.edvoip.it"
#define CDR_PATH     "/api/voip/cdr"
#define LOCALHOST    "127.0.0.1"

#define HTTP_TIMEOUT_MS  5000
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  5000
#define MAX_ROWS_LEN     (256u << 20)

/* A valid CDR of tenant A: an answered inbound call; %s is its call_id. */
#define CDR_FMT                                                                                    \
    "{\"tenant_id\":\"" TENANT_A "\",\"sip_domain\":\"" DOMAIN_A "\",\"call_id\":\"%s\","          \
    "\"direction\":\"in\",\"from_uri\":\"sip:+393331234567@" DOMAIN_A "\","                        \
    "\"to_uri\":\"sip:100@" DOMAIN_A "\",\"start_ts\":\"2025-10-30T09:12:00Z\","                   \
    "\"answer_ts\":\"2025-10-30T09:12:05Z\",\"end_ts\":\"2025-10-30T09:14:13Z\","                  \
    "\"billsec\":128,\"disposition\":\"ANSWERED\"}"

/* Column positions in the rows of docs/stream-format.md. */
#define COL_CALL_ID     4
#define COL_INGESTED_AT 21
#define REJ_RECEIVED_AT 0
#define REJ_CALL_ID     3
#define REJ_RAW         6

static const char *const cdr_columns[CDR_CODEC_CDR_NCOLS] = {
    "tenant_id", "store_id", "store_name", "sip_domain",  "call_id",       "direction",
    "from_uri",  "to_uri",   "did_e164",   "ext_number",  "user_id",       "start_ts",
    "answer_ts", "end_ts",   "billsec",    "disposition", "recording_url", "mos",
    "jitter_ms", "loss_pct", "meta_json",  "ingested_at"};
static const char *const reject_columns[CDR_CODEC_REJECT_NCOLS] = {
    "received_at", "tenant_id", "sip_domain", "call_id", "source", "reason", "raw"};

/* One decoded row: its columns, NULL for \N. */
typedef struct srow {
    char *col[CDR_CODEC_CDR_NCOLS];
    int ncols;
} srow;

/* One decoded stream entry. */
typedef struct sentry {
    char kind[16];
    char enc[16];
    long n;
    srow *rows;
    int nrows;
} sentry;

/* Every entry of the test's stream, oldest first. */
typedef struct sdump {
    sentry *e;
    int n;
} sdump;

/* What one test runs: each test is a process of its own, so this is per test. */
typedef struct test_run {
    char dir[1100]; /* scratch directory of this test */
    char key[160];  /* the stream key of this test */
    char redis_url[ITEST_URL_MAX];
    int redis_port; /* the Redis cdr-ingest uses and 'redis' talks to */
    redisContext *redis;
    bool own;        /* the test runs a Redis of its own (one it may kill) */
    pid_t own_redis; /* that Redis while it runs, or 0 */
    pid_t ingest;    /* the running cdr-ingest, or 0 */
    int port;        /* its listen port */
    char log[1200];  /* its stderr */
    http_conn conn;  /* a keep-alive connection to it */
    char *token;     /* cdr:write for tenant A */
} test_run;

static test_run run;

/* ------------------------------------------------------------------------------------------ */
/* Time, ports, processes */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A loopback TCP port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts 'argv' (looked up in PATH) with 'envp' (NULL: ours), stdout and stderr appended to
 * 'log', stdin from /dev/null. Returns its pid. */
static pid_t spawn(char *const argv[], char *const envp[], const char *log)
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
        execvpe(argv[0], argv, envp ? envp : environ);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits up to 'timeout_ms' for 'pid' to end. Returns its wait status, or -1 when it still
 * runs. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return 0;
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(10);
    }
}

static void kill_and_reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* The last part of cdr-ingest's stderr, for assertion messages. */
static const char *log_tail(void)
{
    static char buf[2048];
    buf[0] = '\0';
    FILE *f = fopen(run.log, "r");
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

/* ------------------------------------------------------------------------------------------ */
/* Redis */

static void redis_connect(void)
{
    if (run.redis)
        redisFree(run.redis);
    struct timeval tv = {2, 0};
    run.redis = redisConnectWithTimeout(LOCALHOST, run.redis_port, tv);
    cr_assert(run.redis && !run.redis->err, "cannot connect to Redis on port %d: %s",
              run.redis_port, run.redis ? run.redis->errstr : "out of memory");
    redisSetTimeout(run.redis, tv);
}

/* Runs a command on the test's Redis and returns its reply (freeReplyObject), never an
 * error. */
static redisReply *redis_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(run.redis, fmt, ap);
    va_end(ap);
    cr_assert(r, "Redis: %s", run.redis->errstr);
    cr_assert(r->type != REDIS_REPLY_ERROR, "Redis: %s", r->str);
    return r;
}

static long long xlen(void)
{
    redisReply *r = redis_cmd("XLEN %s", run.key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Starts (or, after a kill, restarts on the same port and directory) a Redis of this test's
 * own, with an fsync per append so that a SIGKILL loses nothing it acknowledged, and points
 * the test at it. */
static void own_redis_start(void)
{
    char dir[1200], log[1300], port[16];
    snprintf(dir, sizeof(dir), "%s/redis", run.dir);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    if (!run.own) {
        run.own = true;
        run.redis_port = free_port();
    }
    snprintf(port, sizeof(port), "%d", run.redis_port);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    LOCALHOST,
                    "--dir",
                    dir,
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                    NULL};
    run.own_redis = spawn(argv, NULL, log);
    snprintf(run.redis_url, sizeof(run.redis_url), "redis://%s:%d", LOCALHOST, run.redis_port);

    int64_t deadline = now_ms() + START_TIMEOUT_MS;
    for (;;) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout(LOCALHOST, run.redis_port, tv);
        redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
        bool up = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (up)
            break;
        cr_assert(wait_exit(run.own_redis, 0) == -1, "redis-server exited; see %s", log);
        cr_assert(now_ms() < deadline, "redis-server did not answer within %d ms; see %s",
                  START_TIMEOUT_MS, log);
        sleep_ms(20);
    }
    redis_connect();
}

/* SIGKILLs this test's own Redis: what it did not write to its append-only file is lost. */
static void own_redis_kill(void)
{
    kill_and_reap(run.own_redis);
    run.own_redis = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* cdr-ingest */

/* Adds or replaces "KEY=VALUE" 'kv' in the NULL-terminated 'env' of 'n' entries. */
static void env_set(const char **env, int *n, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (int i = 0; i < *n; i++)
        if (strncmp(env[i], kv, klen + 1) == 0) {
            env[i] = kv;
            return;
        }
    env[(*n)++] = kv;
    env[*n] = NULL;
}

/* Waits until GET 'path' answers 200, failing when cdr-ingest exits or 'deadline' passes. */
static void wait_for_200(const char *path, int64_t deadline)
{
    char err[256] = "";
    int last = 0;
    for (;;) {
        int st = wait_exit(run.ingest, 0);
        if (st != -1) {
            run.ingest = 0;
            cr_assert_fail("cdr-ingest ended (%s %d) before %s answered 200; its log:\n%s",
                           WIFEXITED(st) ? "exit status" : "signal",
                           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), path, log_tail());
        }
        http_conn c;
        http_response r;
        if (http_connect(&c, LOCALHOST, run.port, 500, err, sizeof(err)) == 0 &&
            http_request(&c, "GET", path, NULL, 0, NULL, 0, &r, err, sizeof(err)) == 0) {
            last = r.status;
            http_response_free(&r);
        }
        http_close(&c);
        if (last == 200)
            return;
        cr_assert(now_ms() < deadline, "GET %s: no 200 within %d ms (last status %d, %s); log:\n%s",
                  path, START_TIMEOUT_MS, last, err, log_tail());
        sleep_ms(20);
    }
}

/* Starts cdr-ingest with a fresh environment: a free port, the test's Redis and stream key, two
 * threads, warn logging, then the "KEY=VALUE" strings of 'extra' (NULL-terminated or NULL),
 * which override. Waits for GET /healthz 200 and, when 'ready', GET /readyz 200 (Redis
 * connected), and opens run.conn. */
static void ingest_start(const char *const *extra, bool ready)
{
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    char listen_kv[64], redis[ITEST_URL_MAX + 16], key[200], passed[CDR_ARRAY_LEN(pass)][1024];
    const char *env[40];
    int n = 0;
    env[0] = NULL;

    run.port = free_port();
    snprintf(listen_kv, sizeof(listen_kv), "CDR_INGEST_LISTEN=%s:%d", LOCALHOST, run.port);
    snprintf(redis, sizeof(redis), "CDR_REDIS_URL=%s", run.redis_url);
    snprintf(key, sizeof(key), "CDR_STREAM_KEY=%s", run.key);
    const char *defaults[] = {
        listen_kv,           redis, key, "CDR_INGEST_THREADS=2", "CDR_JWT_SECRET=" SECRET,
        "CDR_LOG_LEVEL=warn"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(defaults); i++)
        env_set(env, &n, defaults[i]);
    for (size_t i = 0; i < CDR_ARRAY_LEN(pass); i++) {
        const char *v = getenv(pass[i]);
        if (v) {
            snprintf(passed[i], sizeof(passed[i]), "%s=%s", pass[i], v);
            env_set(env, &n, passed[i]);
        }
    }
    for (const char *const *e = extra; e && *e; e++) {
        cr_assert(n + 1 < (int)CDR_ARRAY_LEN(env));
        env_set(env, &n, *e);
    }

    snprintf(run.log, sizeof(run.log), "%s/ingest.log", run.dir);
    char *argv[] = {CDR_BIN_DIR "/cdr-ingest", NULL};
    run.ingest = spawn(argv, (char *const *)env, run.log);

    int64_t deadline = now_ms() + START_TIMEOUT_MS;
    wait_for_200("/healthz", deadline);
    if (ready)
        wait_for_200("/readyz", deadline);
    char err[256];
    cr_assert(http_connect(&run.conn, LOCALHOST, run.port, HTTP_TIMEOUT_MS, err, sizeof(err)) == 0,
              "%s", err);
}

/* Sends SIGTERM and asserts that cdr-ingest exits with status 0 within 5 s. Every test ends
 * with it. */
static void ingest_stop(void)
{
    pid_t pid = run.ingest;
    cr_assert(pid > 0, "cdr-ingest is not running");
    http_close(&run.conn);
    run.ingest = 0;
    kill(pid, SIGTERM);
    int st = wait_exit(pid, STOP_TIMEOUT_MS);
    if (st == -1) {
        kill_and_reap(pid);
        cr_assert_fail("cdr-ingest did not exit within %d ms of SIGTERM; log:\n%s", STOP_TIMEOUT_MS,
                       log_tail());
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "cdr-ingest ended with %s %d after SIGTERM instead of exit status 0; log:\n%s",
              WIFEXITED(st) ? "exit status" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), log_tail());
}

/* ------------------------------------------------------------------------------------------ */
/* Tokens */

static char *mint(const char *tenant, const char *domain, const char *scope, int64_t issued,
                  int64_t ttl_s, const char *secret)
{
    char err[256];
    char *tok = auth_mint(AUTH_HS256, (const unsigned char *)secret, strlen(secret), tenant, domain,
                          scope, issued, ttl_s, NULL, NULL, err, sizeof(err));
    cr_assert(tok, "auth_mint: %s", err);
    return tok;
}

static void b64url(const char *in, char *out, size_t outlen)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen(in), o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        v |= i + 1 < len ? (unsigned char)in[i + 1] << 8 : 0;
        v |= i + 2 < len ? (unsigned char)in[i + 2] : 0;
        size_t chars = i + 2 < len ? 4 : i + 1 < len ? 3 : 2;
        for (size_t k = 0; k < chars; k++) {
            cr_assert(o + 1 < outlen);
            out[o++] = a[(v >> (18 - 6 * k)) & 63];
        }
    }
    out[o] = '\0';
}

/* A token with header alg "none" and no signature, claiming tenant A and cdr:write. */
static void unsigned_token(char *out, size_t len)
{
    char claims[512], h[128], p[1024];
    snprintf(claims, sizeof(claims),
             "{\"tenant_id\":\"%s\",\"sip_domain\":\"%s\",\"scope\":\"cdr:write\",\"exp\":%lld}",
             TENANT_A, DOMAIN_A, (long long)time(NULL) + 3600);
    b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", h, sizeof(h));
    b64url(claims, p, sizeof(p));
    int n = snprintf(out, len, "%s.%s.", h, p);
    cr_assert(n > 0 && (size_t)n < len);
}

/* ------------------------------------------------------------------------------------------ */
/* Bodies */

static json_t *cdr_obj(const char *call_id)
{
    char text[1024];
    snprintf(text, sizeof(text), CDR_FMT, call_id);
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert(j, "CDR_FMT: %s", e.text);
    return j;
}

/* An array of 'n' valid CDRs with call_ids "'prefix'-0" ... */
static json_t *cdr_batch(const char *prefix, int n)
{
    json_t *a = json_array();
    char id[128];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        json_array_append_new(a, cdr_obj(id));
    }
    return a;
}

static char *dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert(s);
    return s;
}

/* The items of 'a' as NDJSON: one compact object per line. */
static char *ndjson(const json_t *a)
{
    cdr_buf b = {0};
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item)
    {
        char *s = dump(item);
        cr_assert(cdr_buf_printf(&b, "%s\n", s) == 0);
        free(s);
    }
    return cdr_buf_steal(&b);
}

typedef enum codec { GZIP, ZSTD } codec;

/* Compresses 'repeat' copies of the 'len' bytes of 'in' as one gzip member or zstd frame,
 * streaming (so that a 100 MB bomb never exists uncompressed). */
static void compress_into(codec c, const void *in, size_t len, int repeat, cdr_buf *out)
{
    unsigned char tmp[65536];
    cdr_buf_init(out, 0);
    if (c == ZSTD) {
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        cr_assert(cc);
        for (int pass = 0; pass <= repeat; pass++) {
            bool last = pass == repeat;
            ZSTD_inBuffer ib = {in, last ? 0 : len, 0};
            size_t left;
            do {
                ZSTD_outBuffer ob = {tmp, sizeof(tmp), 0};
                left = ZSTD_compressStream2(cc, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
                cr_assert(!ZSTD_isError(left), "zstd: %s", ZSTD_getErrorName(left));
                cr_assert(cdr_buf_append(out, tmp, ob.pos) == 0);
            } while (ib.pos < ib.size || (last && left != 0));
        }
        ZSTD_freeCCtx(cc);
        return;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    cr_assert(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    for (int pass = 0; pass <= repeat; pass++) {
        bool last = pass == repeat;
        zs.next_in = (Bytef *)in;
        zs.avail_in = last ? 0 : (uInt)len;
        int rc;
        do {
            zs.next_out = tmp;
            zs.avail_out = sizeof(tmp);
            rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
            cr_assert(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, "deflate: %d", rc);
            cr_assert(cdr_buf_append(out, tmp, sizeof(tmp) - zs.avail_out) == 0);
        } while (zs.avail_in > 0 || zs.avail_out == 0 || (last && rc != Z_STREAM_END));
    }
    deflateEnd(&zs);
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP */

#define MAX_POST_HEADERS 4
#define AUTH_MAX         2048

/* Fills 'h' (MAX_POST_HEADERS entries) with the headers of a request and returns how many:
 * Authorization from 'token' (NULL: none; a value with a space, "Basic ...", is sent as it is,
 * anything else as "Bearer <token>"; the value is kept in 'auth' of AUTH_MAX bytes), then
 * Content-Type 'ctype' and Content-Encoding 'cenc' when not NULL. */
static int request_headers(http_header *h, char *auth, const char *token, const char *ctype,
                           const char *cenc)
{
    int n = 0;
    if (token) {
        snprintf(auth, AUTH_MAX, "%s%s", strchr(token, ' ') ? "" : "Bearer ", token);
        h[n++] = (http_header){"Authorization", auth};
    }
    if (ctype)
        h[n++] = (http_header){"Content-Type", ctype};
    if (cenc)
        h[n++] = (http_header){"Content-Encoding", cenc};
    return n;
}

/* Sends 'method' 'path' on run.conn with the headers of request_headers() and 'body' (NULL:
 * none). */
static void request(const char *method, const char *path, const char *token, const char *ctype,
                    const char *cenc, const void *body, size_t len, http_response *r)
{
    char auth[AUTH_MAX], err[256];
    http_header h[MAX_POST_HEADERS];
    int n = request_headers(h, auth, token, ctype, cenc);
    cr_assert(http_request(&run.conn, method, path, h, n, body, len, r, err, sizeof(err)) == 0,
              "%s %s: %s; log:\n%s", method, path, err, log_tail());
}

static void post(const char *token, const char *ctype, const char *cenc, const void *body,
                 size_t len, http_response *r)
{
    request("POST", CDR_PATH, token, ctype, cenc, body, len, r);
}

/* POSTs 'doc' as application/json with tenant A's cdr:write token. */
static void post_json(const json_t *doc, http_response *r)
{
    char *s = dump(doc);
    post(run.token, "application/json", NULL, s, strlen(s), r);
    free(s);
}

/* POSTs one valid CDR with 'call_id'. */
static void post_one(const char *call_id, http_response *r)
{
    char text[1024];
    snprintf(text, sizeof(text), CDR_FMT, call_id);
    post(run.token, "application/json", NULL, text, strlen(text), r);
}

static void get(const char *path, http_response *r)
{
    request("GET", path, NULL, NULL, NULL, NULL, 0, r);
}

static json_t *body_json(const http_response *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    cr_assert(j, "status %d: body is not JSON (%s): %.400s", r->status, e.text, r->body);
    return j;
}

/* Asserts 202 {"accepted": n} and frees 'r'. */
static void expect_accepted(http_response *r, long long n)
{
    cr_assert_eq(r->status, 202, "expected 202, got %d: %.600s", r->status, r->body);
    json_t *j = body_json(r);
    json_t *acc = json_object_get(j, "accepted");
    cr_assert(json_is_integer(acc) && json_integer_value(acc) == n,
              "expected {\"accepted\": %lld}, got %.600s", n, r->body);
    json_decref(j);
    http_response_free(r);
}

/* Asserts that 'r' is 'status' with the error shape {"error": {"status", "message",
 * "details": [...]}} and returns the parsed body (json_decref). */
static json_t *expect_error(const http_response *r, int status)
{
    cr_assert_eq(r->status, status, "expected %d, got %d: %.600s", status, r->status, r->body);
    const char *ct = http_header_get(r, "Content-Type");
    cr_assert(ct && strncasecmp(ct, "application/json", 16) == 0,
              "a %d error should be application/json, is %s", status, ct ? ct : "(none)");
    json_t *j = body_json(r);
    json_t *e = json_object_get(j, "error");
    cr_assert(json_is_object(e), "no \"error\" object: %.600s", r->body);
    cr_assert(json_integer_value(json_object_get(e, "status")) == status,
              "error.status is not %d: %.600s", status, r->body);
    const char *msg = json_string_value(json_object_get(e, "message"));
    cr_assert(msg && *msg, "error.message missing or empty: %.600s", r->body);
    cr_assert(json_is_array(json_object_get(e, "details")), "error.details is not an array: %.600s",
              r->body);
    return j;
}

/* Asserts the error shape with 'status', then frees it and 'r'. */
static void expect_error_only(http_response *r, int status)
{
    json_decref(expect_error(r, status));
    http_response_free(r);
}

/* The integer count 'name' ("accepted", "rejected") of an error body, at the top level or
 * inside "error". */
static long long error_count(const json_t *j, const char *name)
{
    json_t *v = json_object_get(j, name);
    if (!v)
        v = json_object_get(json_object_get(j, "error"), name);
    cr_assert(json_is_integer(v), "no integer \"%s\" count in the error body", name);
    return json_integer_value(v);
}

/* Asserts that error.details holds exactly one problem of item 'index' with 'call_id', 'field'
 * and 'message'. */
static void expect_detail(const json_t *j, int index, const char *call_id, const char *field,
                          const char *message)
{
    json_t *details = json_object_get(json_object_get(j, "error"), "details");
    size_t i;
    json_t *d;
    int found = 0;
    json_array_foreach(details, i, d)
    {
        if (json_integer_value(json_object_get(d, "index")) != index ||
            !json_is_integer(json_object_get(d, "index")))
            continue;
        const char *f = json_string_value(json_object_get(d, "field"));
        if (!f || strcmp(f, field) != 0)
            continue;
        found++;
        cr_assert_str_eq(json_string_value(json_object_get(d, "call_id")), call_id,
                         "detail of item %d names the wrong call_id", index);
        const char *m = json_string_value(json_object_get(d, "message"));
        cr_assert(m && strcmp(m, message) == 0, "item %d %s: expected message \"%s\", got \"%s\"",
                  index, field, message, m ? m : "(none)");
    }
    char *s = dump(details);
    cr_assert_eq(found, 1, "expected one detail {index %d, field %s}, details are %s", index, field,
                 s);
    free(s);
}

static void expect_details_count(const json_t *j, size_t n)
{
    json_t *details = json_object_get(json_object_get(j, "error"), "details");
    char *s = dump(details);
    cr_assert_eq(json_array_size(details), n, "expected %zu details, got %s", n, s);
    free(s);
}

/* The value of the series 'series' (name with labels, as written) in Prometheus text, or -1
 * when absent. */
static double metric(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return -1;
}

/* True when Prometheus text 'text' has a sample of metric 'name' (with or without labels). */
static bool has_series(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '{'))
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* The stream */

static const char *entry_field(const redisReply *fields, const char *name, size_t *len)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) {
            if (len)
                *len = fields->element[i + 1]->len;
            return fields->element[i + 1]->str;
        }
    return NULL;
}

/* Decodes one XRANGE element into 'e', asserting the format of docs/stream-format.md. */
static void entry_decode(const redisReply *x, sentry *e)
{
    cr_assert(x->type == REDIS_REPLY_ARRAY && x->elements == 2);
    const char *id = x->element[0]->str;
    const redisReply *f = x->element[1];
    const char *v = entry_field(f, "v", NULL), *kind = entry_field(f, "kind", NULL),
               *n = entry_field(f, "n", NULL), *enc = entry_field(f, "enc", NULL);
    size_t payload_len = 0;
    const char *payload = entry_field(f, "rows", &payload_len);
    cr_assert(v && kind && n && enc && payload, "entry %s lacks one of v, kind, n, enc, rows", id);
    cr_assert_str_eq(v, "1", "entry %s: v", id);
    cr_assert(strcmp(kind, "cdr") == 0 || strcmp(kind, "reject") == 0, "entry %s: kind %s", id,
              kind);
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    snprintf(e->enc, sizeof(e->enc), "%s", enc);
    e->n = strtol(n, NULL, 10);
    int ncols = strcmp(kind, "cdr") == 0 ? CDR_CODEC_CDR_NCOLS : CDR_CODEC_REJECT_NCOLS;

    cdr_buf scratch = {0}, split = {0};
    const char *rows;
    size_t rows_len;
    char err[256];
    cr_assert(cdr_codec_open(v, enc, payload, payload_len, MAX_ROWS_LEN, &scratch, &rows, &rows_len,
                             err, sizeof(err)) == 0,
              "entry %s: %s", id, err);
    e->rows = calloc((size_t)e->n + 1, sizeof(*e->rows));
    cr_assert(e->rows);
    for (const char *p = rows, *end = rows + rows_len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        cr_assert(nl, "entry %s: the last row does not end with a newline", id);
        cr_assert(e->nrows < e->n, "entry %s holds more rows than n=%ld", id, e->n);
        const char *cols[CDR_CODEC_CDR_NCOLS + 1];
        int got = cdr_codec_split_row(p, (size_t)(nl - p), &split, cols, ncols + 1);
        cr_assert_eq(got, ncols, "entry %s row %d: %d columns instead of %d", id, e->nrows, got,
                     ncols);
        srow *row = &e->rows[e->nrows++];
        row->ncols = got;
        for (int i = 0; i < got; i++)
            row->col[i] = cols[i] ? strdup(cols[i]) : NULL;
        p = nl + 1;
    }
    cr_assert_eq(e->nrows, e->n, "entry %s: n=%ld but %d rows", id, e->n, e->nrows);
    cdr_buf_free(&scratch);
    cdr_buf_free(&split);
}

/* Reads and decodes every entry of the test's stream. */
static void stream_load(sdump *d)
{
    memset(d, 0, sizeof(*d));
    redisReply *r = redis_cmd("XRANGE %s - +", run.key);
    cr_assert(r->type == REDIS_REPLY_ARRAY);
    d->e = calloc(r->elements + 1, sizeof(*d->e));
    cr_assert(d->e);
    for (size_t i = 0; i < r->elements; i++)
        entry_decode(r->element[i], &d->e[d->n++]);
    freeReplyObject(r);
}

static void stream_free(sdump *d)
{
    for (int i = 0; i < d->n; i++) {
        for (int k = 0; k < d->e[i].nrows; k++)
            for (int c = 0; c < d->e[i].rows[k].ncols; c++)
                free(d->e[i].rows[k].col[c]);
        free(d->e[i].rows);
    }
    free(d->e);
    memset(d, 0, sizeof(*d));
}

/* The only entry of 'kind', asserting there is exactly one. */
static const sentry *only_entry(const sdump *d, const char *kind)
{
    const sentry *found = NULL;
    int n = 0;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->e[i].kind, kind) == 0) {
            found = &d->e[i];
            n++;
        }
    cr_assert_eq(n, 1, "expected exactly one %s entry, the stream has %d (of %d entries)", kind, n,
                 d->n);
    return found;
}

static int count_entries(const sdump *d, const char *kind)
{
    int n = 0;
    for (int i = 0; i < d->n; i++)
        n += strcmp(d->e[i].kind, kind) == 0;
    return n;
}

/* Rows of 'kind' whose call_id is 'call_id'; the last one found in '*row' when not NULL. */
static int count_call(const sdump *d, const char *kind, const char *call_id, const srow **row)
{
    int col = strcmp(kind, "cdr") == 0 ? COL_CALL_ID : REJ_CALL_ID, n = 0;
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->e[i].kind, kind) != 0)
            continue;
        for (int k = 0; k < d->e[i].nrows; k++) {
            const char *c = d->e[i].rows[k].col[col];
            if (c && strcmp(c, call_id) == 0) {
                n++;
                if (row)
                    *row = &d->e[i].rows[k];
            }
        }
    }
    return n;
}

/* The single row of 'kind' for 'call_id'. */
static const srow *row_of(const sdump *d, const char *kind, const char *call_id)
{
    const srow *row = NULL;
    int n = count_call(d, kind, call_id, &row);
    cr_assert_eq(n, 1, "expected one %s row for call_id %s, found %d", kind, call_id, n);
    return row;
}

/* Asserts that 'ts' is a stream timestamp ("2025-10-30 09:12:05[.ffffff]+00") within two
 * minutes of now. */
static void expect_recent(const char *ts, const char *what)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    cr_assert(ts, "%s is NULL", what);
    cr_assert(sscanf(ts, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) == 6 &&
                  used == 19,
              "%s is not a timestamp: %s", what, ts);
    const char *rest = ts + used;
    if (*rest == '.') {
        cr_assert(strspn(rest + 1, "0123456789") == 6, "%s: fraction of %s", what, ts);
        rest += 7;
    }
    cr_assert_str_eq(rest, "+00", "%s is not in UTC: %s", what, ts);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    long long diff = (long long)timegm(&tm) - (long long)time(NULL);
    cr_assert(diff > -120 && diff < 120, "%s %s is not the time of ingest", what, ts);
}

/* Compares columns of 'row' with 'want' ('n' values; NULL means \N). */
static void expect_cols(const srow *row, const char *const *want, const char *const *names,
                        int from, int to)
{
    for (int i = from; i < to; i++) {
        if (!want[i])
            cr_assert_null(row->col[i], "column %s: expected \\N, got \"%s\"", names[i],
                           row->col[i]);
        else
            cr_assert(row->col[i] && strcmp(row->col[i], want[i]) == 0,
                      "column %s: expected \"%s\", got \"%s\"", names[i], want[i],
                      row->col[i] ? row->col[i] : "\\N");
    }
}

/* Asserts the reject row for 'call_id': tenant A's caller, source ingest, 'reason' and the
 * item as it was sent. */
static void expect_reject(const sdump *d, const char *call_id, const char *reason,
                          const json_t *item)
{
    const srow *row = row_of(d, "reject", call_id);
    const char *want[CDR_CODEC_REJECT_NCOLS] = {NULL,     TENANT_A, DOMAIN_A, call_id,
                                                "ingest", reason,   NULL};
    expect_recent(row->col[REJ_RECEIVED_AT], "received_at");
    expect_cols(row, want, reject_columns, 1, REJ_RAW);
    json_error_t e;
    json_t *raw = row->col[REJ_RAW] ? json_loads(row->col[REJ_RAW], 0, &e) : NULL;
    cr_assert(raw && json_equal(raw, item), "raw of %s is not the item sent: %s", call_id,
              row->col[REJ_RAW] ? row->col[REJ_RAW] : "\\N");
    json_decref(raw);
}

/* Asserts the stream holds one cdr entry with exactly the call_ids "'prefix'-0" ... in order,
 * and nothing else. */
static void expect_one_cdr_entry(const char *prefix, int n, const char *enc)
{
    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 1, "expected one entry, the stream has %d", d.n);
    const sentry *e = only_entry(&d, "cdr");
    cr_assert_eq(e->n, n);
    cr_assert_str_eq(e->enc, enc);
    for (int i = 0; i < n; i++) {
        char id[128];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert_str_eq(e->rows[i].col[COL_CALL_ID], id, "row %d", i);
    }
    stream_free(&d);
}

/* ------------------------------------------------------------------------------------------ */
/* The suite */

static void setup(void)
{
    char err[1024];
    const itest_env *env = itest_env_load(err, sizeof(err));
    cr_assert(env, "%s", err);
    cr_assert(env->redis_port[0] && env->dir[0], "the env file names no Redis or directory");
    snprintf(run.dir, sizeof(run.dir), "%s/ingest-XXXXXX", env->dir);
    cr_assert(mkdtemp(run.dir), "mkdtemp %s: %s", run.dir, strerror(errno));
    snprintf(run.key, sizeof(run.key), "itest:ingest:%d:%s", (int)getpid(),
             criterion_current_test->name);
    run.redis_port = atoi(env->redis_port);
    snprintf(run.redis_url, sizeof(run.redis_url), "%s", env->redis_url);
    run.conn.fd = -1;
    redis_connect();
    run.token = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_WRITE, time(NULL), 3600, SECRET);
}

/* Cleans up after a test, also one that failed half-way (its assertions already said why). */
static void teardown(void)
{
    http_close(&run.conn);
    kill_and_reap(run.ingest);
    if (run.own)
        own_redis_kill();
    else if (run.redis && !run.redis->err) {
        redisReply *r = redisCommand(run.redis, "DEL %s", run.key);
        if (r)
            freeReplyObject(r);
    }
    if (run.redis)
        redisFree(run.redis);
    free(run.token);
}

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 30);

/* ------------------------------------------------------------------------------------------ */
/* Accepted CDRs and the exact rows written */

Test(ingest, one_cdr_becomes_one_exact_copy_row)
{
    static const char body[] =
        "{\"tenant_id\":\"6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B\","
        "\"store_id\":\"11111111-2222-4333-8444-555555555555\",\"store_name\":\"Roma Centro\","
        "\"sip_domain\":\"tenantA.edvoip.it\",\"call_id\":\"a1b2c3d4@pbx-1\","
        "\"direction\":\"inbound\","
        "\"from_uri\":\"sip:+393331234567@tenantA.edvoip.it;user=phone\","
        "\"to_uri\":\"sip:100@tenantA.edvoip.it\",\"did_e164\":\"+39061234567\","
        "\"ext_number\":\"100\",\"user_id\":\"ABCDEF01-2345-4678-89AB-CDEF01234567\","
        "\"start_ts\":\"2025-10-30T10:12:00+01:00\",\"answer_ts\":\"2025-10-30T09:12:05Z\","
        "\"end_ts\":\"2025-10-30T09:14:13.25Z\",\"billsec\":128,\"disposition\":\"answered\","
        "\"recording_url\":\"https://rec.edvoip.it/a1b2c3d4.wav\","
        "\"qos\":{\"mos\":4.1,\"jitter_ms\":12.5,\"loss_pct\":0.2},"
        "\"meta_json\":{\"hangup_cause\":\"NORMAL_CLEARING\",\"note\":\"l1\\nl2\\tx\"},"
        "\"unknown_member\":true}";
    static const char *const want[CDR_CODEC_CDR_NCOLS] = {
        TENANT_A,                                                          /* tenant_id */
        "11111111-2222-4333-8444-555555555555",                            /* store_id */
        "Roma Centro",                                                     /* store_name */
        DOMAIN_A,                                                          /* sip_domain */
        "a1b2c3d4@pbx-1",                                                  /* call_id */
        "in",                                                              /* direction */
        "+393331234567",                                                   /* from_uri */
        "100",                                                             /* to_uri */
        "+39061234567",                                                    /* did_e164 */
        "100",                                                             /* ext_number */
        "abcdef01-2345-4678-89ab-cdef01234567",                            /* user_id */
        "2025-10-30 09:12:00+00",                                          /* start_ts */
        "2025-10-30 09:12:05+00",                                          /* answer_ts */
        "2025-10-30 09:14:13.250000+00",                                   /* end_ts */
        "128",                                                             /* billsec */
        "ANSWERED",                                                        /* disposition */
        "https://rec.edvoip.it/a1b2c3d4.wav",                              /* recording_url */
        "4.1",                                                             /* mos */
        "12.5",                                                            /* jitter_ms */
        "0.2",                                                             /* loss_pct */
        "{\"hangup_cause\":\"NORMAL_CLEARING\",\"note\":\"l1\\nl2\\tx\"}", /* meta_json */
    };
    http_response r;
    ingest_start(NULL, true);
    post(run.token, "application/json", NULL, body, strlen(body), &r);
    expect_accepted(&r, 1);

    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 1, "expected exactly one entry, the stream has %d", d.n);
    const sentry *e = only_entry(&d, "cdr");
    cr_assert_eq(e->n, 1);
    cr_assert_str_eq(e->enc, "copy");
    expect_cols(&e->rows[0], want, cdr_columns, 0, COL_INGESTED_AT);
    expect_recent(e->rows[0].col[COL_INGESTED_AT], "ingested_at");
    stream_free(&d);
    ingest_stop();
}

Test(ingest, missing_tenant_and_domain_come_from_the_token)
{
    static const char body[] = "{\"call_id\":\"minimal-1\",\"direction\":\"OUT\","
                               "\"from_uri\":\"tel:+39061234567;phone-context=+39\","
                               "\"to_uri\":\"SIPS:alice@example.it\","
                               "\"start_ts\":\"2025-10-30 11:12:05+02\","
                               "\"end_ts\":\"2025-10-30T09:12:35Z\",\"billsec\":0,"
                               "\"disposition\":\"no answer\",\"qos\":null}";
    static const char *const want[CDR_CODEC_CDR_NCOLS] = {
        TENANT_A,                 /* tenant_id */
        NULL,                     /* store_id */
        NULL,                     /* store_name */
        DOMAIN_A,                 /* sip_domain */
        "minimal-1",              /* call_id */
        "out",                    /* direction */
        "+39061234567",           /* from_uri */
        "alice",                  /* to_uri */
        NULL,                     /* did_e164 */
        NULL,                     /* ext_number */
        NULL,                     /* user_id */
        "2025-10-30 09:12:05+00", /* start_ts */
        NULL,                     /* answer_ts */
        "2025-10-30 09:12:35+00", /* end_ts */
        "0",                      /* billsec */
        "NO_ANSWER",              /* disposition */
        NULL,                     /* recording_url */
        NULL,                     /* mos */
        NULL,                     /* jitter_ms */
        NULL,                     /* loss_pct */
        NULL,                     /* meta_json */
    };
    http_response r;
    ingest_start(NULL, true);
    post(run.token, NULL, NULL, body, strlen(body), &r); /* no Content-Type: JSON */
    expect_accepted(&r, 1);

    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 1);
    expect_cols(row_of(&d, "cdr", "minimal-1"), want, cdr_columns, 0, COL_INGESTED_AT);
    stream_free(&d);
    ingest_stop();
}

Test(ingest, json_array_is_one_entry)
{
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("arr", 3);
    post_json(a, &r);
    json_decref(a);
    expect_accepted(&r, 3);
    expect_one_cdr_entry("arr", 3, "copy");
    ingest_stop();
}

Test(ingest, ndjson_is_one_entry)
{
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("nd", 3);
    char *body = ndjson(a);
    json_decref(a);
    post(run.token, "application/x-ndjson", NULL, body, strlen(body), &r);
    free(body);
    expect_accepted(&r, 3);
    expect_one_cdr_entry("nd", 3, "copy");
    ingest_stop();
}

Test(ingest, large_batch_is_one_zstd_entry)
{
    http_response r;
    ingest_start((const char *const[]){"CDR_INGEST_COMPRESS_MIN=1k", NULL}, true);
    json_t *a = cdr_batch("big", 50);
    post_json(a, &r);
    json_decref(a);
    expect_accepted(&r, 50);
    expect_one_cdr_entry("big", 50, "copy+zstd");
    ingest_stop();
}

Test(ingest, compressed_bodies_are_accepted)
{
    http_response r;
    cdr_buf z;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("zst", 2), *b = cdr_batch("gz", 2);
    char *body = dump(a);
    compress_into(ZSTD, body, strlen(body), 1, &z);
    post(run.token, "application/json", "zstd", z.data, z.len, &r);
    expect_accepted(&r, 2);
    free(body);
    cdr_buf_free(&z);

    body = ndjson(b);
    compress_into(GZIP, body, strlen(body), 1, &z);
    post(run.token, "application/x-ndjson", "gzip", z.data, z.len, &r);
    expect_accepted(&r, 2);
    free(body);
    cdr_buf_free(&z);
    json_decref(a);
    json_decref(b);

    sdump d;
    stream_load(&d);
    cr_assert_eq(count_entries(&d, "cdr"), 2);
    const char *ids[] = {"zst-0", "zst-1", "gz-0", "gz-1"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(ids); i++)
        (void)row_of(&d, "cdr", ids[i]);
    stream_free(&d);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Refused items */

Test(ingest, bad_items_are_400_and_kept_as_rejects_while_good_ones_queue)
{
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("mix", 5);
    json_object_set_new(json_array_get(a, 1), "billsec", json_integer(99));
    json_object_set_new(json_array_get(a, 3), "direction", json_string("sideways"));
    post_json(a, &r);

    json_t *j = expect_error(&r, 400);
    expect_details_count(j, 2);
    expect_detail(j, 1, "mix-1", "billsec", "billsec 99 does not match end_ts - answer_ts = 128 s");
    expect_detail(j, 3, "mix-3", "direction", "must be one of in, out");
    cr_assert_eq(error_count(j, "accepted"), 3);
    cr_assert_eq(error_count(j, "rejected"), 2);
    json_decref(j);
    http_response_free(&r);

    sdump d;
    stream_load(&d);
    cr_assert_eq(d.n, 2, "expected a cdr and a reject entry, the stream has %d entries", d.n);
    cr_assert_eq(only_entry(&d, "cdr")->n, 3);
    cr_assert_eq(only_entry(&d, "reject")->n, 2);
    for (int i = 0; i < 5; i += 2) {
        char id[16];
        snprintf(id, sizeof(id), "mix-%d", i);
        (void)row_of(&d, "cdr", id);
    }
    expect_reject(&d, "mix-1", "billsec: billsec 99 does not match end_ts - answer_ts = 128 s",
                  json_array_get(a, 1));
    expect_reject(&d, "mix-3", "direction: must be one of in, out", json_array_get(a, 3));
    cr_assert_eq(count_call(&d, "cdr", "mix-1", NULL) + count_call(&d, "cdr", "mix-3", NULL), 0);
    stream_free(&d);
    json_decref(a);
    ingest_stop();
}

Test(ingest, another_tenant_or_domain_is_403_and_kept_as_reject)
{
    http_response r;
    ingest_start(NULL, true);
    json_t *a = cdr_batch("ten", 3);
    json_object_set_new(json_array_get(a, 1), "tenant_id", json_string(TENANT_B));
    json_object_set_new(json_array_get(a, 2), "sip_domain", json_string(DOMAIN_B));
    post_json(a, &r);

    json_t *j = expect_error(&r, 403);
    expect_details_count(j, 2);
    expect_detail(j, 1, "ten-1", "tenant_id", "tenant_id differs from the token's tenant");
    expect_detail(j, 2, "ten-2", "sip_domain", "sip_domain differs from the token's domain");
    cr_assert_eq(error_count(j, "accepted"), 1);
    cr_assert_eq(error_count(j, "rejected"), 2);
    json_decref(j);
    http_response_free(&r);

    sdump d;
    stream_load(&d);
    cr_assert_eq(only_entry(&d, "cdr")->n, 1);
    (void)row_of(&d, "cdr", "ten-0");
    cr_assert_eq(only_entry(&d, "reject")->n, 2);
    expect_reject(&d, "ten-1", "tenant_id: tenant_id differs from the token's tenant",
                  json_array_get(a, 1));
    expect_reject(&d, "ten-2", "sip_domain: sip_domain differs from the token's domain",
                  json_array_get(a, 2));
    stream_free(&d);

    /* A single item of tenant B: 403, and no cdr row at all. */
    json_t *b = cdr_obj("ten-b");
    json_object_set_new(b, "tenant_id", json_string(TENANT_B));
    post_json(b, &r);
    j = expect_error(&r, 403);
    cr_assert_eq(error_count(j, "accepted"), 0);
    json_decref(j);
    http_response_free(&r);
    stream_load(&d);
    cr_assert_eq(count_call(&d, "cdr", "ten-b", NULL), 0, "tenant B's CDR reached a cdr entry");
    cr_assert_eq(count_call(&d, "reject", "ten-b", NULL), 1);
    stream_free(&d);
    json_decref(b);
    json_decref(a);
    ingest_stop();
}

Test(ingest, bad_tokens_are_401_and_store_nothing)
{
    char none[1024];
    char *expired = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_WRITE, time(NULL) - 7200, 60, SECRET);
    char *foreign = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_WRITE, time(NULL), 3600, OTHER_SECRET);
    unsigned_token(none, sizeof(none));
    const struct {
        const char *what;
        const char *authorization; /* as request_headers() takes it; NULL: no header */
    } cases[] = {
        {"no Authorization header", NULL},        {"not a JWT", "Bearer not.a.jwt"},
        {"another scheme", "Basic dXNlcjpwYXNz"}, {"expired", expired},
        {"signed with another secret", foreign},  {"alg none", none},
    };
    ingest_start(NULL, true);
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        char text[1024];
        http_response r;
        snprintf(text, sizeof(text), CDR_FMT, "unauth");
        post(cases[i].authorization, "application/json", NULL, text, strlen(text), &r);
        cr_assert_eq(r.status, 401, "%s: expected 401, got %d: %s", cases[i].what, r.status,
                     r.body);
        const char *www = http_header_get(&r, "WWW-Authenticate");
        cr_assert(www && strncasecmp(www, "Bearer", 6) == 0, "%s: WWW-Authenticate is %s",
                  cases[i].what, www ? www : "missing");
        expect_error_only(&r, 401);
    }
    cr_assert_eq(xlen(), 0, "a refused token stored something");
    free(expired);
    free(foreign);
    ingest_stop();
}

Test(ingest, read_only_token_is_403)
{
    char text[1024];
    http_response r;
    char *reader = mint(TENANT_A, DOMAIN_A, AUTH_SCOPE_READ, time(NULL), 3600, SECRET);
    ingest_start(NULL, true);
    snprintf(text, sizeof(text), CDR_FMT, "reader");
    post(reader, "application/json", NULL, text, strlen(text), &r);
    expect_error_only(&r, 403);
    cr_assert_eq(xlen(), 0);
    free(reader);
    ingest_stop();
}

Test(ingest, malformed_bodies_are_400_and_store_nothing)
{
    static const char corrupt[] = "\x1f\x8b\x08\x00garbage that is not deflate";
    const struct {
        const char *what, *ctype, *cenc, *body;
        size_t len;
    } cases[] = {
        {"truncated JSON", "application/json", NULL, "{\"call_id\": ", 0},
        {"not JSON", "application/json", NULL, "call_id=1", 0},
        {"empty array", "application/json", NULL, "[]", 0},
        {"a JSON scalar", "application/json", NULL, "42", 0},
        {"empty body", "application/json", NULL, "", 0},
        {"NDJSON of blank lines", "application/x-ndjson", NULL, "\n\n", 0},
        {"corrupt gzip", "application/json", "gzip", corrupt, sizeof(corrupt) - 1},
    };
    ingest_start(NULL, true);
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        http_response r;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);
        post(run.token, cases[i].ctype, cases[i].cenc, cases[i].body, len, &r);
        cr_assert_eq(r.status, 400, "%s: expected 400, got %d: %s", cases[i].what, r.status,
                     r.body);
        expect_error_only(&r, 400);
    }
    cr_assert_eq(xlen(), 0, "a malformed body stored something");
    ingest_stop();
}

Test(ingest, unknown_type_or_encoding_is_415)
{
    char text[1024];
    http_response r;
    snprintf(text, sizeof(text), CDR_FMT, "media");
    ingest_start(NULL, true);
    post(run.token, "text/plain", NULL, text, strlen(text), &r);
    expect_error_only(&r, 415);
    post(run.token, "application/json", "br", text, strlen(text), &r);
    expect_error_only(&r, 415);
    cr_assert_eq(xlen(), 0);
    ingest_stop();
}

Test(ingest, unknown_path_is_404_and_wrong_method_405)
{
    http_response r;
    ingest_start(NULL, true);
    request("GET", "/nope", run.token, NULL, NULL, NULL, 0, &r);
    expect_error_only(&r, 404);
    request("POST", "/api/voip/cdrs", run.token, "application/json", NULL, "{}", 2, &r);
    expect_error_only(&r, 404);
    request("GET", CDR_PATH, run.token, NULL, NULL, NULL, 0, &r);
    expect_error_only(&r, 405);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Size limits */

Test(ingest, body_over_max_body_is_413)
{
    const size_t size = 100 * 1024;
    char *body = malloc(size);
    cr_assert(body);
    memset(body, ' ', size);
    body[0] = '[';
    body[size - 1] = ']';
    http_response r;
    ingest_start((const char *const[]){"CDR_MAX_BODY=64k", NULL}, true);

    post(run.token, "application/json", NULL, body, size, &r);
    cr_assert_eq(r.status, 413, "100 KB with CDR_MAX_BODY=64k: expected 413, got %d: %s", r.status,
                 r.body);
    http_response_free(&r);

    /* The same bytes sent chunked, so that only counting them on the wire can refuse them. */
    cdr_buf chunked = {0};
    for (size_t off = 0; off < size; off += 8192) {
        size_t n = size - off < 8192 ? size - off : 8192;
        cr_assert(cdr_buf_printf(&chunked, "%zx\r\n", n) == 0 &&
                  cdr_buf_append(&chunked, body + off, n) == 0 &&
                  cdr_buf_append_str(&chunked, "\r\n") == 0);
    }
    cr_assert(cdr_buf_append_str(&chunked, "0\r\n\r\n") == 0);
    char auth[AUTH_MAX], err[256];
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, run.token, "application/json", NULL);
    h[nh++] = (http_header){"Transfer-Encoding", "chunked"};
    cr_assert(http_request(&run.conn, "POST", CDR_PATH, h, nh, chunked.data, chunked.len, &r, err,
                           sizeof(err)) == 0,
              "chunked POST: %s", err);
    cr_assert_eq(r.status, 413, "100 KB chunked: expected 413, got %d: %s", r.status, r.body);
    http_response_free(&r);
    cdr_buf_free(&chunked);
    free(body);

    cr_assert_eq(xlen(), 0);
    post_one("after-413", &r);
    expect_accepted(&r, 1);
    ingest_stop();
}

Test(ingest, compression_bombs_are_413)
{
    const size_t chunk = 1 << 20;
    const int repeat = 100; /* 100 MB once inflated */
    void *zeros = calloc(1, chunk);
    cr_assert(zeros);
    ingest_start(NULL, true);
    const struct {
        codec c;
        const char *name;
    } bombs[] = {{ZSTD, "zstd"}, {GZIP, "gzip"}};
    for (size_t i = 0; i < CDR_ARRAY_LEN(bombs); i++) {
        cdr_buf z;
        http_response r;
        compress_into(bombs[i].c, zeros, chunk, repeat, &z);
        cr_assert_lt(z.len, 200 * 1024, "%s bomb of %zu bytes", bombs[i].name, z.len);
        post(run.token, "application/json", bombs[i].name, z.data, z.len, &r);
        cr_assert_eq(r.status, 413, "%s bomb (%zu bytes -> 100 MB): expected 413, got %d: %s",
                     bombs[i].name, z.len, r.status, r.body);
        expect_error_only(&r, 413);
        cdr_buf_free(&z);
        get("/healthz", &r);
        cr_assert_eq(r.status, 200, "after the %s bomb /healthz answered %d", bombs[i].name,
                     r.status);
        http_response_free(&r);
    }
    free(zeros);
    cr_assert_eq(xlen(), 0);
    http_response r;
    post_one("after-bombs", &r);
    expect_accepted(&r, 1);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Back-pressure and Redis outages */

/* Asserts 503 with Retry-After and the error shape. */
static void expect_503(http_response *r)
{
    cr_assert_eq(r->status, 503, "expected 503, got %d: %s", r->status, r->body);
    const char *ra = http_header_get(r, "Retry-After");
    cr_assert(ra && atoi(ra) >= 1, "503 without a Retry-After (got %s)", ra ? ra : "none");
    expect_error_only(r, 503);
}

Test(ingest, unreachable_redis_is_503_and_not_ready)
{
    char url[64];
    http_response r;
    snprintf(url, sizeof(url), "CDR_REDIS_URL=redis://%s:%d", LOCALHOST, free_port());
    ingest_start((const char *const[]){url, NULL}, false);
    get("/readyz", &r);
    cr_assert_eq(r.status, 503, "/readyz without Redis: %d", r.status);
    http_response_free(&r);
    post_one("no-redis", &r);
    expect_503(&r);
    get("/healthz", &r);
    cr_assert_eq(r.status, 200, "/healthz without Redis: %d", r.status);
    http_response_free(&r);
    ingest_stop();
}

Test(ingest, backlog_over_bound_is_503_until_drained)
{
    for (int i = 0; i < 5; i++)
        freeReplyObject(redis_cmd("XADD %s * filler %d", run.key, i));
    http_response r;
    ingest_start((const char *const[]){"CDR_MAX_BACKLOG=5", NULL}, true);
    sleep_ms(300); /* the backlog is polled */
    post_one("full", &r);
    expect_503(&r);
    cr_assert_eq(xlen(), 5, "a post over the backlog bound was stored");

    freeReplyObject(redis_cmd("XTRIM %s MAXLEN 0", run.key));
    int64_t trimmed = now_ms();
    int status = 0;
    while (status != 202 && now_ms() - trimmed < 1000) {
        sleep_ms(50);
        post_one("drained", &r);
        status = r.status;
        http_response_free(&r);
    }
    cr_assert_eq(status, 202, "posts still refused (%d) 1 s after the stream was drained", status);
    cr_assert_eq(xlen(), 1);
    ingest_stop();
}

/* One client thread of the load test: single-CDR posts with distinct call_ids on one
 * keep-alive connection, each outcome with when it was sent and answered. */
typedef struct load_req {
    int64_t sent_ms, done_ms;
    int status; /* -1: no HTTP answer */
} load_req;

typedef struct loader {
    pthread_t th;
    int id;
    int port;
    const char *token;
    atomic_bool *stop;
    _Atomic int64_t *last_ok_sent; /* latest send time of a request answered 202 */
    load_req reqs[100000];
    int n;
} loader;

static void load_call_id(char *buf, size_t len, int thread, int seq)
{
    snprintf(buf, len, "load-%d-%d", thread, seq);
}

static void *load_main(void *arg)
{
    loader *l = arg;
    http_conn c = {.fd = -1, .port = l->port, .timeout_ms = 3000};
    char auth[AUTH_MAX], text[1024], id[64], err[256];
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, l->token, "application/json", NULL);
    snprintf(c.host, sizeof(c.host), "%s", LOCALHOST);
    while (!atomic_load(l->stop) && l->n < (int)CDR_ARRAY_LEN(l->reqs)) {
        load_req *q = &l->reqs[l->n];
        http_response r;
        load_call_id(id, sizeof(id), l->id, l->n);
        snprintf(text, sizeof(text), CDR_FMT, id);
        q->sent_ms = now_ms();
        q->status =
            http_request(&c, "POST", CDR_PATH, h, nh, text, strlen(text), &r, err, sizeof(err)) == 0
                ? r.status
                : -1;
        q->done_ms = now_ms();
        if (q->status >= 0)
            http_response_free(&r);
        if (q->status == 202) {
            int64_t prev = atomic_load(l->last_ok_sent);
            while (prev < q->sent_ms &&
                   !atomic_compare_exchange_weak(l->last_ok_sent, &prev, q->sent_ms)) {
            }
        }
        sleep_ms(q->status == 202 ? 1 : 5);
        l->n++;
    }
    http_close(&c);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(ingest, redis_killed_during_load_loses_no_acknowledged_cdr, .timeout = 40)
{
    enum { THREADS = 4 };
    atomic_bool stop = false;
    _Atomic int64_t last_ok_sent = 0;
    own_redis_start();
    ingest_start(NULL, true);

    loader *ls = calloc(THREADS, sizeof(*ls));
    cr_assert(ls);
    for (int i = 0; i < THREADS; i++) {
        ls[i].id = i;
        ls[i].port = run.port;
        ls[i].token = run.token;
        ls[i].stop = &stop;
        ls[i].last_ok_sent = &last_ok_sent;
        cr_assert(pthread_create(&ls[i].th, NULL, load_main, &ls[i]) == 0);
    }
    sleep_ms(700);
    int64_t killed = now_ms();
    own_redis_kill();
    sleep_ms(300);
    http_response r;
    get("/readyz", &r);
    cr_assert_eq(r.status, 503, "/readyz with Redis killed: %d", r.status);
    http_response_free(&r);
    sleep_ms(700);
    int64_t restarted = now_ms();
    own_redis_start();
    int64_t up = now_ms();
    while (atomic_load(&last_ok_sent) <= up && now_ms() - up < 5000)
        sleep_ms(20);
    sleep_ms(200);
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(ls[i].th, NULL);

    /* Every call_id in the stream, sorted, with no call stored twice. */
    sdump d;
    stream_load(&d);
    int nids = 0;
    for (int i = 0; i < d.n; i++)
        nids += strcmp(d.e[i].kind, "cdr") == 0 ? d.e[i].nrows : 0;
    char **ids = calloc((size_t)nids + 1, sizeof(*ids));
    cr_assert(ids);
    nids = 0;
    for (int i = 0; i < d.n; i++)
        for (int k = 0; strcmp(d.e[i].kind, "cdr") == 0 && k < d.e[i].nrows; k++)
            ids[nids++] = d.e[i].rows[k].col[COL_CALL_ID];
    qsort(ids, (size_t)nids, sizeof(*ids), cmp_str);
    for (int i = 1; i < nids; i++)
        cr_assert(strcmp(ids[i - 1], ids[i]) != 0, "call_id %s stored twice", ids[i]);

    int ok_before = 0, in_outage = 0, ok_after = 0, lost = 0;
    char first_lost[64] = "";
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < ls[i].n; k++) {
            const load_req *q = &ls[i].reqs[k];
            if (q->status == 202) {
                char id[64], *key = id;
                load_call_id(id, sizeof(id), i, k);
                if (!bsearch(&key, ids, (size_t)nids, sizeof(*ids), cmp_str) && !lost++)
                    snprintf(first_lost, sizeof(first_lost), "%s", id);
                ok_before += q->done_ms < killed;
                ok_after += q->sent_ms > up;
            }
            if (q->sent_ms > killed && q->done_ms < restarted) {
                in_outage++;
                cr_assert_eq(q->status, 503,
                             "a post sent %lld ms after Redis was killed got %d instead of 503",
                             (long long)(q->sent_ms - killed), q->status);
            }
        }
    cr_assert_eq(lost, 0, "%d CDRs answered 202 are not in the stream (first: %s)", lost,
                 first_lost);
    cr_assert_gt(ok_before, 0, "no post succeeded before Redis was killed");
    cr_assert_gt(in_outage, 0, "no post was made while Redis was down");
    cr_assert_gt(ok_after, 0, "no post succeeded within 5 s of Redis coming back");
    free(ids);
    stream_free(&d);
    free(ls);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Health and metrics */

Test(ingest, health_readiness_and_metrics)
{
    http_response r;
    ingest_start(NULL, true);
    get("/healthz", &r);
    cr_assert_eq(r.status, 200);
    http_response_free(&r);
    get("/readyz", &r);
    cr_assert_eq(r.status, 200, "/readyz with Redis up: %d %s", r.status, r.body);
    http_response_free(&r);

    char id[32];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "met-%d", i);
        post_one(id, &r);
        expect_accepted(&r, 1);
    }
    json_t *a = cdr_batch("metb", 3);
    json_object_set_new(json_array_get(a, 2), "disposition", json_string("MAYBE"));
    post_json(a, &r);
    json_decref(a);
    expect_error_only(&r, 400);

    /* Counters may be bumped just after the answer is sent: give them a moment. */
    double ok = -1, acc = -1, rej = -1;
    int64_t deadline = now_ms() + 1000;
    do {
        get("/metrics", &r);
        cr_assert_eq(r.status, 200);
        ok = metric(r.body, "cdr_ingest_requests_total{status=\"202\"}");
        acc = metric(r.body, "cdr_ingest_cdrs_accepted_total");
        rej = metric(r.body, "cdr_ingest_cdrs_rejected_total");
        if (ok == 3 && acc == 5 && rej == 1)
            break;
        http_response_free(&r);
        sleep_ms(50);
    } while (now_ms() < deadline);
    const char *ct = http_header_get(&r, "Content-Type");
    cr_assert(ct && strncmp(ct, "text/plain", 10) == 0, "/metrics Content-Type %s",
              ct ? ct : "none");
    cr_assert_eq(ok, 3, "requests_total{status=\"202\"} is %g after three 202s:\n%s", ok, r.body);
    cr_assert_eq(metric(r.body, "cdr_ingest_requests_total{status=\"400\"}"), 1, "%s", r.body);
    cr_assert_eq(acc, 5, "cdrs_accepted_total is %g, expected 5:\n%s", acc, r.body);
    cr_assert_eq(rej, 1, "cdrs_rejected_total is %g, expected 1:\n%s", rej, r.body);
    cr_assert(has_series(r.body, "cdr_ingest_redis_rtt_seconds_bucket"),
              "no cdr_ingest_redis_rtt_seconds histogram:\n%s", r.body);
    cr_assert(has_series(r.body, "cdr_ingest_stream_backlog"), "no cdr_ingest_stream_backlog:\n%s",
              r.body);
    http_response_free(&r);
    ingest_stop();
}

/* ------------------------------------------------------------------------------------------ */
/* Connections */

Test(ingest, thousand_concurrent_connections_are_all_served)
{
    enum { N = 1000 };
    struct rlimit rl;
    cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < N + 200) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 8192 ? 8192 : rl.rlim_max;
        cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
    }
    cr_assert_geq(rl.rlim_cur, N + 200, "the descriptor limit (%llu) is too low for %d sockets",
                  (unsigned long long)rl.rlim_cur, N);
    ingest_start(NULL, true);

    http_conn *conns = calloc(N, sizeof(*conns));
    char err[256], auth[AUTH_MAX], text[1024], id[32];
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, run.token, "application/json", NULL);
    cr_assert(conns);
    cr_assert(http_connect_many(conns, N, LOCALHOST, run.port, 10000, err, sizeof(err)) == 0, "%s",
              err);
    for (int i = 0; i < N; i++) {
        conns[i].timeout_ms = 15000;
        snprintf(id, sizeof(id), "conc-%d", i);
        snprintf(text, sizeof(text), CDR_FMT, id);
        cr_assert(http_send(&conns[i], "POST", CDR_PATH, h, nh, text, strlen(text), NULL, err,
                            sizeof(err)) == 0,
                  "connection %d: %s", i, err);
    }
    int accepted = 0, first_bad = -1, first_status = 0;
    char first_err[256] = "";
    for (int i = 0; i < N; i++) {
        http_response r;
        int status = http_read_response(&conns[i], &r, err, sizeof(err)) == 0 ? r.status : -1;
        if (status >= 0)
            http_response_free(&r);
        accepted += status == 202;
        if (status != 202 && first_bad < 0) {
            first_bad = i;
            first_status = status;
            snprintf(first_err, sizeof(first_err), "%s", status < 0 ? err : "");
        }
        http_close(&conns[i]);
    }
    free(conns);
    cr_assert_eq(accepted, N, "%d of %d answered 202; connection %d got %d (%s)", accepted, N,
                 first_bad, first_status, first_err);

    sdump d;
    stream_load(&d);
    long rows = 0;
    for (int i = 0; i < d.n; i++)
        rows += strcmp(d.e[i].kind, "cdr") == 0 ? d.e[i].n : 0;
    cr_assert_eq(rows, N, "the stream holds %ld CDRs after %d accepted posts", rows, N);
    for (int i = 0; i < N; i += 97) {
        snprintf(id, sizeof(id), "conc-%d", i);
        (void)row_of(&d, "cdr", id);
    }
    stream_free(&d);
    ingest_stop();
}

Test(ingest, client_gone_before_answer_still_stores_once)
{
    char err[256], auth[AUTH_MAX], text[1024];
    http_conn c;
    http_response r;
    http_header h[MAX_POST_HEADERS];
    int nh = request_headers(h, auth, run.token, "application/json", NULL);
    ingest_start(NULL, true);
    snprintf(text, sizeof(text), CDR_FMT, "gone-1");
    cr_assert(http_connect(&c, LOCALHOST, run.port, HTTP_TIMEOUT_MS, err, sizeof(err)) == 0);
    cr_assert(http_send(&c, "POST", CDR_PATH, h, nh, text, strlen(text), NULL, err, sizeof(err)) ==
              0);
    http_close(&c);

    get("/healthz", &r);
    cr_assert_eq(r.status, 200, "after a client vanished /healthz answered %d", r.status);
    http_response_free(&r);
    post_one("after-gone", &r);
    expect_accepted(&r, 1);

    sdump d;
    int found = 0;
    for (int64_t deadline = now_ms() + 2000;; sleep_ms(50)) {
        stream_load(&d);
        found = count_call(&d, "cdr", "gone-1", NULL);
        stream_free(&d);
        if (found > 0 || now_ms() >= deadline)
            break;
    }
    cr_assert_eq(found, 1, "the CDR of the vanished client is stored %d times", found);
    ingest_stop();
}

Test(ingest, stalled_client_is_disconnected)
{
    static const char half[] = "POST " CDR_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty";
    char err[256] = "";
    http_conn c;
    http_response r;
    ingest_start((const char *const[]){"CDR_INGEST_TIMEOUT_S=1", NULL}, true);
    cr_assert(http_connect(&c, LOCALHOST, run.port, 4000, err, sizeof(err)) == 0, "%s", err);
    cr_assert(http_send_raw(&c, half, strlen(half), err, sizeof(err)) == 0, "%s", err);
    int64_t t0 = now_ms();
    int closed = http_wait_closed(&c, err, sizeof(err));
    int64_t waited = now_ms() - t0;
    http_close(&c);
    cr_assert_eq(closed, 1, "the server kept a stalled connection open for %lld ms (%s)",
                 (long long)waited, err);
    cr_assert_geq(waited, 500,
                  "the stalled connection was closed after %lld ms, before its timeout",
                  (long long)waited);
    get("/healthz", &r);
    cr_assert_eq(r.status, 200);
    http_response_free(&r);
    ingest_stop();
}

Test(ingest, sigterm_exits_0_with_an_idle_keep_alive_connection)
{
    http_response r;
    ingest_start(NULL, true);
    get("/healthz", &r);
    cr_assert(r.keep_alive, "the server closed a keep-alive connection after /healthz");
    http_response_free(&r);
    http_conn idle = run.conn; /* keep it open across the stop */
    run.conn.fd = -1;
    run.conn.rbuf = NULL;
    ingest_stop();
    char err[256];
    http_conn c;
    cr_assert(http_connect(&c, LOCALHOST, run.port, 500, err, sizeof(err)) != 0,
              "something still listens on port %d after exit", run.port);
    http_close(&idle);
}
