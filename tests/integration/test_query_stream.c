/* test_query_stream.c - cdr-query's long answers over HTTP: a CSV export of a million rows read
 * by a client that stalls, then reads at full speed (every row once, in order, the server's
 * memory bounded throughout), and the query of a client that disconnects being canceled in
 * PostgreSQL, both while rows stream and while the query waits on a lock. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cdr_bodies.h"
#include "db_fixture.h"
#include "http_client.h"
#include "itest.h"
#include "query_run.h"

#define MILLION     1000000
#define B_ROWS      1000
#define RANGE       "from=2025-10-01&to=2025-10-31"
#define CSV_PATH    "/api/cdr?sip_domain=" DOMAIN_A "&" RANGE "&format=csv"
#define SUMMARY     "/api/analytics/summary?sip_domain=" DOMAIN_A "&" RANGE
#define WAIT_MS     20000
#define RSS_MAX_KIB (48 * 1024) /* growth allowed over the idle server's VmRSS */

static itest_db db;
static PGconn *owner;
static query_run query;
static char *token;

/* 'n' CDRs of one tenant from 2025-10-01, 2 s apart, call_ids PREFIX1..PREFIXn (so newest first
 * is PREFIXn down to PREFIX1), every third answered. */
static void insert_rows(const char *tenant, const char *domain, const char *prefix, int n)
{
    char count[16];
    snprintf(count, sizeof(count), "%d", n);
    const char *params[] = {tenant, domain, prefix, count};
    PGresult *res = itest_query(
        owner,
        "INSERT INTO voip_cdr (tenant_id, call_id, start_ts, sip_domain, direction, from_uri, "
        "to_uri, ext_number, answer_ts, end_ts, billsec, disposition, meta_json) "
        "SELECT $1::uuid, $3 || i, ts, $2, 'in', 'sip:+39333' || lpad((i % 5000)::text, 6, '0') "
        "|| '@' || $2, 'sip:100@' || $2, '10' || (i % 7), "
        "CASE WHEN i % 3 = 0 THEN ts + interval '4 s' END, ts + interval '64 s', "
        "CASE WHEN i % 3 = 0 THEN 60 ELSE 0 END, "
        "CASE WHEN i % 3 = 0 THEN 'ANSWERED' ELSE 'NO_ANSWER' END, '{\"queue\": \"vendite\"}' "
        "FROM generate_series(1, $4::int) i, "
        "LATERAL (SELECT timestamptz '2025-10-01 00:00:00+00' + i * interval '2 s' AS ts) t",
        4, params);
    cr_assert(itest_ok(res), "INSERT: %s", PQerrorMessage(owner));
    PQclear(res);
}

static void setup_db(int a_rows)
{
    char err[1024];
    cr_assert(itest_db_create(&db, err, sizeof(err)) == 0, "%s", err);
    fixture_ctl(&db, (const char *const[]){"migrate", NULL});
    fixture_ctl(&db, (const char *const[]){"partitions", "ensure", "--from", "2025-09", "--months",
                                           "3", NULL});
    owner = itest_db_connect(&db, NULL, err, sizeof(err));
    cr_assert(owner, "%s", err);
    insert_rows(TENANT_A, DOMAIN_A, "a-", a_rows);
    insert_rows(TENANT_B, DOMAIN_B, "b-", B_ROWS);
    fixture_ctl(&db, (const char *const[]){"rollups", "rebuild", "--from", "2025-10-01", "--to",
                                           "2025-10-31", NULL});
    PQclear(PQexec(owner, "VACUUM ANALYZE voip_cdr"));
    token = mint(TENANT_A, DOMAIN_A, "cdr:read", (int64_t)time(NULL), 3600, SECRET);
}

static void setup_million(void)
{
    setup_db(MILLION);
}

static void setup_small(void)
{
    setup_db(2000);
}

static void teardown(void)
{
    query_run_kill(&query);
    free(token);
    token = NULL;
    PQfinish(owner);
    owner = NULL;
    itest_db_drop(&db);
}

/* ---- a raw client: the test decides when it reads ----------------------------------------- */

/* A connection with a small receive buffer, so that a client that stops reading is felt by
 * the server at once; reads time out after 20 s. */
static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    int rcvbuf = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)query.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %m");
    return fd;
}

static void raw_get(int fd, const char *path)
{
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", path,
                     token);
    cr_assert(n > 0 && (size_t)n < sizeof(req));
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n, "send: %m");
}

/* A chunked CSV body, decoded as it arrives, split into lines. */
typedef struct csv_reader {
    char in[256 * 1024]; /* received, not yet decoded: in[0..len) */
    size_t len;
    bool head_done;
    int status;
    bool chunked;
    long long chunk_left; /* data bytes left in the current chunk; -1: a size line is next */
    bool ended;           /* the last (zero) chunk arrived */
    char line[8192];      /* the line being assembled */
    size_t line_len;
    long long lines;
    char first[64], last[64]; /* the first 63 bytes of the first and last data lines */
    char header[512];
    long long foreign; /* data lines not of tenant A */
    long long bytes;   /* body bytes */
} csv_reader;

static void csv_line(csv_reader *c)
{
    c->line[c->line_len] = '\0';
    if (c->lines == 0)
        snprintf(c->header, sizeof(c->header), "%.511s", c->line);
    else {
        if (c->lines == 1)
            snprintf(c->first, sizeof(c->first), "%.63s", c->line);
        snprintf(c->last, sizeof(c->last), "%.63s", c->line);
        if (strncmp(c->line, "a-", 2) != 0)
            c->foreign++;
    }
    c->lines++;
    c->line_len = 0;
}

static void csv_data(csv_reader *c, const char *p, size_t n)
{
    c->bytes += (long long)n;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (c->line_len > 0 && c->line[c->line_len - 1] == '\r')
                c->line_len--;
            csv_line(c);
            continue;
        }
        cr_assert(c->line_len < sizeof(c->line) - 1, "a CSV line longer than 8 KiB");
        c->line[c->line_len++] = p[i];
    }
}

/* Decodes what 'in' holds; leaves an incomplete head, size line or trailer for later. */
static void csv_decode(csv_reader *c)
{
    size_t off = 0;
    if (!c->head_done) {
        char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!end)
            return;
        *end = '\0';
        cr_assert(sscanf(c->in, "HTTP/1.1 %d", &c->status) == 1, "status line: %.80s", c->in);
        cr_assert_eq(c->status, 200, "%s", c->in);
        c->chunked = strcasestr(c->in, "transfer-encoding: chunked") != NULL;
        cr_assert(c->chunked, "not chunked: %s", c->in);
        cr_assert(strcasestr(c->in, "content-type: text/csv"), "%s", c->in);
        c->head_done = true;
        c->chunk_left = -1;
        off = (size_t)(end - c->in) + 4;
    }
    while (off < c->len && !c->ended) {
        if (c->chunk_left < 0) {
            char *eol = memmem(c->in + off, c->len - off, "\r\n", 2);
            if (!eol)
                break;
            c->chunk_left = strtoll(c->in + off, NULL, 16);
            off = (size_t)(eol - c->in) + 2;
            if (c->chunk_left == 0)
                c->ended = true; /* the trailer's CRLF may follow; nothing else matters */
            continue;
        }
        if (c->chunk_left == 0) { /* the CRLF after a chunk's data */
            if (c->len - off < 2)
                break;
            cr_assert(c->in[off] == '\r' && c->in[off + 1] == '\n', "chunk not closed by CRLF");
            off += 2;
            c->chunk_left = -1;
            continue;
        }
        size_t take = c->len - off;
        if ((long long)take > c->chunk_left)
            take = (size_t)c->chunk_left;
        csv_data(c, c->in + off, take);
        c->chunk_left -= (long long)take;
        off += take;
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
}

/* Reads at most 'max' bytes (0: until the body ends) and decodes them. */
static void csv_read(csv_reader *c, int fd, long long max)
{
    long long got = 0;
    while (!c->ended && (max == 0 || got < max)) {
        cr_assert(c->len < sizeof(c->in), "undecodable input");
        ssize_t n = recv(fd, c->in + c->len, sizeof(c->in) - c->len, 0);
        cr_assert(n > 0, "the export ended early after %lld lines: %s", c->lines,
                  n == 0 ? "connection closed" : "read timed out");
        c->len += (size_t)n;
        got += n;
        csv_decode(c);
    }
}

/* Reads until the body ends or the server closes the connection; returns whether the body
 * ended with its last chunk. */
static bool csv_drain(csv_reader *c, int fd)
{
    while (!c->ended) {
        cr_assert(c->len < sizeof(c->in), "undecodable input");
        ssize_t n = recv(fd, c->in + c->len, sizeof(c->in) - c->len, 0);
        if (n <= 0)
            return false;
        c->len += (size_t)n;
        csv_decode(c);
    }
    return true;
}

/* ---- PostgreSQL's side -------------------------------------------------------------------- */

/* Relation locks held or awaited by the reader role's sessions: a query of cdr-query in
 * progress (a reader session between queries holds none). */
static long long reader_locks(bool waiting_only)
{
    long long n = -1;
    char err[512];
    cr_assert(itest_scalar(owner,
                           waiting_only ? "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                                          "USING (pid) WHERE a.usename = 'cdr_reader' "
                                          "AND l.locktype = 'relation' AND NOT l.granted"
                                        : "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                                          "USING (pid) WHERE a.usename = 'cdr_reader' "
                                          "AND l.locktype = 'relation'",
                           0, NULL, &n, err, sizeof(err)) == 0,
              "%s", err);
    return n;
}

/* Waits up to WAIT_MS for reader_locks(waiting_only) to be (want_zero ? 0 : > 0). */
static bool locks_become(bool waiting_only, bool want_zero)
{
    int64_t end = itest_now_ms() + WAIT_MS;
    for (;;) {
        long long n = reader_locks(waiting_only);
        if (want_zero ? n == 0 : n > 0)
            return true;
        if (itest_now_ms() > end)
            return false;
        itest_sleep_ms(50);
    }
}

static int get_status(const char *path)
{
    http_conn c = {.fd = -1};
    http_response r;
    char err[256], auth[4096];
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    http_header h = {"Authorization", auth};
    cr_assert(http_connect(&c, "127.0.0.1", query.port, WAIT_MS, err, sizeof(err)) == 0, "%s", err);
    cr_assert(http_request(&c, "GET", path, &h, 1, NULL, 0, &r, err, sizeof(err)) == 0, "%s", err);
    int status = r.status;
    http_response_free(&r);
    http_close(&c);
    return status;
}

/* ---- the million-row export --------------------------------------------------------------- */

TestSuite(query_stream, .init = setup_million, .fini = teardown, .timeout = 900);

Test(query_stream, csv_export_of_a_million_rows_in_bounded_memory)
{
    query_run_start(&query, &db, NULL);
    cr_assert_eq(get_status(SUMMARY), 200);
    long rss0 = query_run_kib(&query, "VmRSS");
    cr_assert(rss0 > 0);

    csv_reader *c = calloc(1, sizeof(*c));
    cr_assert(c);
    int fd = raw_connect();
    raw_get(fd, CSV_PATH);
    /* A client that takes 1 MiB, then nothing for 3 s: the server holds its rows back. */
    csv_read(c, fd, 1024 * 1024);
    cr_assert(c->lines > 1000, "only %lld lines in the first MiB", c->lines);
    long stalled_max = 0;
    for (int i = 0; i < 30; i++) {
        long kib = query_run_kib(&query, "VmRSS");
        if (kib > stalled_max)
            stalled_max = kib;
        itest_sleep_ms(100);
    }
    cr_expect(reader_locks(false) > 0, "the export's query should still be open while paused");
    /* Then everything, at full speed. */
    long max = stalled_max;
    while (!c->ended) {
        csv_read(c, fd, 16 * 1024 * 1024);
        long kib = query_run_kib(&query, "VmRSS");
        if (kib > max)
            max = kib;
    }
    close(fd);
    long hwm = query_run_kib(&query, "VmHWM");
    cr_log_info("CSV of %lld lines, %lld bytes; cdr-query VmRSS idle %ld KiB, stalled max %ld "
                "KiB, max %ld KiB, VmHWM %ld KiB",
                c->lines, c->bytes, rss0, stalled_max, max, hwm);

    cr_assert_eq(c->lines, MILLION + 1LL, "%lld lines for a header and %d rows", c->lines, MILLION);
    cr_assert(strncmp(c->header, "call_id,sip_domain,tenant_id,", 29) == 0, "header: %s",
              c->header);
    cr_assert(strncmp(c->first, "a-1000000,", 10) == 0, "first row (newest): %s", c->first);
    cr_assert(strncmp(c->last, "a-1,", 4) == 0, "last row (oldest): %s", c->last);
    cr_assert_eq(c->foreign, 0, "%lld rows of another tenant", c->foreign);
    cr_assert(c->bytes > 100LL * 1024 * 1024, "%lld bytes: the export is smaller than assumed",
              c->bytes);
    cr_assert_lt(stalled_max - rss0, RSS_MAX_KIB, "VmRSS grew by %ld KiB while the client stalled",
                 stalled_max - rss0);
    cr_assert_lt(hwm - rss0, RSS_MAX_KIB,
                 "VmHWM %ld KiB: grew by %ld KiB over the idle %ld KiB for a %lld-byte export", hwm,
                 hwm - rss0, rss0, c->bytes);
    cr_assert(locks_become(false, true), "the export's transaction stayed open after its end");
    free(c);

    /* An export whose client goes away in the middle: its query is canceled at once. */
    c = calloc(1, sizeof(*c));
    cr_assert(c);
    fd = raw_connect();
    raw_get(fd, CSV_PATH);
    csv_read(c, fd, 512 * 1024);
    cr_assert(!c->ended);
    cr_assert(locks_become(false, false), "no query of the export in PostgreSQL");
    close(fd);
    cr_assert(locks_become(false, true), "the export's query went on after the client left");
    free(c);
    cr_assert_eq(get_status(SUMMARY), 200, "cdr-query serves on after the canceled export");
    query_run_stop(&query);

    /* An export that outlives its statement timeout (a client that stalls for longer): the
     * rows already sent stay sent, and the connection ends without the last chunk, so that
     * the client knows the file is incomplete. */
    query_run_start(&query, &db, (const char *const[]){"CDR_QUERY_EXPORT_TIMEOUT_MS=1000", NULL});
    c = calloc(1, sizeof(*c));
    cr_assert(c);
    fd = raw_connect();
    raw_get(fd, CSV_PATH);
    csv_read(c, fd, 256 * 1024);
    itest_sleep_ms(2500);
    cr_assert(!csv_drain(c, fd), "a cut-short export ended like a whole one");
    cr_assert(c->lines > 1 && c->lines < MILLION + 1LL, "%lld lines", c->lines);
    close(fd);
    free(c);
    cr_assert(locks_become(false, true));
    cr_assert_eq(get_status(SUMMARY), 200, "cdr-query serves on after the cut-short export");
    query_run_stop(&query);
}

/* ---- a query waiting on a lock ------------------------------------------------------------ */

TestSuite(query_cancel, .init = setup_small, .fini = teardown, .timeout = 300);

Test(query_cancel, client_gone_cancels_a_waiting_query)
{
    /* A statement timeout far away: only the disconnect may end the query. */
    query_run_start(&query, &db,
                    (const char *const[]){"CDR_QUERY_STATEMENT_TIMEOUT_MS=600000", NULL});
    cr_assert_eq(get_status(SUMMARY), 200);
    PGresult *res = PQexec(owner, "BEGIN; LOCK TABLE voip_cdr_rollup_store_hour "
                                  "IN ACCESS EXCLUSIVE MODE");
    cr_assert(itest_ok(res), "%s", PQerrorMessage(owner));
    PQclear(res);

    /* A client that waits: the query waits on the lock as long as the client does. */
    int stay = raw_connect();
    raw_get(stay, SUMMARY);
    cr_assert(locks_become(true, false), "the summary's query does not wait on the lock");
    itest_sleep_ms(1500);
    cr_assert_eq(reader_locks(true), 1, "the waiting query ended without a reason");

    /* A second client that leaves: its query is canceled while the first one still waits. */
    int gone = raw_connect();
    raw_get(gone, SUMMARY);
    int64_t end = itest_now_ms() + WAIT_MS;
    while (reader_locks(true) < 2) {
        cr_assert(itest_now_ms() < end, "the second query does not wait on the lock");
        itest_sleep_ms(50);
    }
    close(gone);
    end = itest_now_ms() + WAIT_MS;
    while (reader_locks(true) != 1) {
        cr_assert(itest_now_ms() < end, "the query of the client that left still waits");
        itest_sleep_ms(50);
    }

    /* The lock released: the client that waited gets its answer. */
    res = PQexec(owner, "COMMIT");
    cr_assert(itest_ok(res), "%s", PQerrorMessage(owner));
    PQclear(res);
    char buf[8192];
    size_t got = 0;
    while (got < sizeof(buf) - 1 && !memmem(buf, got, "total_calls", 11)) {
        ssize_t n = recv(stay, buf + got, sizeof(buf) - 1 - got, 0);
        cr_assert(n > 0, "no whole answer after the lock was released");
        got += (size_t)n;
    }
    buf[got] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%.200s", buf);
    cr_assert(strstr(buf, "\"total_calls\": 2000") || strstr(buf, "\"total_calls\":2000"), "%.400s",
              buf);
    close(stay);
    cr_assert(locks_become(false, true));
    cr_assert_eq(get_status(SUMMARY), 200, "cdr-query serves on after the cancel");
    query_run_stop(&query);
}
