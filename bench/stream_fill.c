/* stream_fill.c - appends COPY rows read from stdin to a Redis Stream as cdr entries of
 * docs/stream-format.md (N rows per entry, zstd-framed as cdr-ingest stores large entries), for
 * the writer benchmark's backlog. */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cdr_codec.h"
#include "redis_url.h"

/* Commands sent before their answers are read: enough to keep Redis busy, few enough that an
 * error is seen soon. */
#define PIPELINE_DEPTH 32

typedef struct options {
    const char *redis_url;
    const char *key;
    long rows_per_entry;
    bool plain;
} options;

typedef struct filler {
    redisContext *redis;
    const options *opt;
    cdr_buf rows;   /* the rows of the entry being gathered */
    cdr_buf packed; /* its zstd frame */
    long n_rows;    /* rows in 'rows' */
    int in_flight;  /* XADDs whose answer is not read yet */
    long long entries, total_rows, raw_bytes, stored_bytes;
} filler;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stream_fill --redis-url URL --key KEY [--rows-per-entry N] [--plain] < ROWS\n"
            "Appends the COPY rows of stdin (CDR_CODEC_CDR_COLUMNS, one per line) to the stream\n"
            "KEY as entries of N rows (default 500): v=1 kind=cdr n=N enc=copy+zstd (level 1),\n"
            "or enc=copy with --plain. Prints one line: entries, rows, raw and stored bytes.\n"
            "Exit status: 0 done, 1 failed, 2 bad usage.\n");
}

/* Reads one answer of a pipelined XADD. Returns 0, or -1 with the reason on stderr. */
static int read_answer(filler *f)
{
    redisReply *reply = NULL;
    int rc = -1;
    if (redisGetReply(f->redis, (void **)&reply) != REDIS_OK) {
        fprintf(stderr, "stream_fill: redis: %s\n", f->redis->errstr);
        goto done;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "stream_fill: XADD refused: %s\n", reply->str);
        goto done;
    }
    f->in_flight--;
    rc = 0;
done:
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Sends the gathered rows as one entry, reading answers when the pipeline is full. Returns 0,
 * or -1 with the reason on stderr. */
static int flush_entry(filler *f)
{
    if (f->n_rows == 0)
        return 0;
    const char *payload = f->rows.data;
    size_t payload_len = f->rows.len;
    const char *enc = CDR_CODEC_ENC_PLAIN;
    if (!f->opt->plain) {
        cdr_buf_reset(&f->packed);
        if (cdr_codec_compress(f->rows.data, f->rows.len, &f->packed) != 0) {
            fprintf(stderr, "stream_fill: zstd compression failed\n");
            return -1;
        }
        payload = f->packed.data;
        payload_len = f->packed.len;
        enc = CDR_CODEC_ENC_ZSTD;
    }
    char n[24];
    snprintf(n, sizeof(n), "%ld", f->n_rows);
    const char *argv[] = {
        "XADD", f->opt->key, "*",    "v",    CDR_CODEC_VERSION, "kind", CDR_CODEC_KIND_CDR, "n", n,
        "enc",  enc,         "rows", payload};
    size_t lens[CDR_ARRAY_LEN(argv)];
    for (size_t i = 0; i < CDR_ARRAY_LEN(argv); i++)
        lens[i] = strlen(argv[i]);
    lens[CDR_ARRAY_LEN(argv) - 1] = payload_len;
    if (redisAppendCommandArgv(f->redis, (int)CDR_ARRAY_LEN(argv), argv, lens) != REDIS_OK) {
        fprintf(stderr, "stream_fill: redis: %s\n", f->redis->errstr);
        return -1;
    }
    f->in_flight++;
    f->entries++;
    f->total_rows += f->n_rows;
    f->raw_bytes += (long long)f->rows.len;
    f->stored_bytes += (long long)payload_len;
    f->n_rows = 0;
    cdr_buf_reset(&f->rows);
    while (f->in_flight >= PIPELINE_DEPTH)
        if (read_answer(f) != 0)
            return -1;
    return 0;
}

/* Connects to 'url' (AUTH and SELECT as it says). Returns the context, or NULL with the reason
 * on stderr. */
static redisContext *connect_redis(const char *url)
{
    redis_target t;
    char err[256];
    redisContext *c = NULL;
    redisReply *reply = NULL;
    if (redis_url_parse(url, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "stream_fill: --redis-url: %s\n", err);
        return NULL;
    }
    struct timeval tv = {10, 0};
    c = t.unix_path[0] ? redisConnectUnixWithTimeout(t.unix_path, tv)
                       : redisConnectWithTimeout(t.host, t.port, tv);
    if (!c || c->err) {
        fprintf(stderr, "stream_fill: cannot connect to Redis: %s\n",
                c ? c->errstr : "out of memory");
        goto fail;
    }
    if (t.password[0]) {
        reply = t.user[0] ? redisCommand(c, "AUTH %s %s", t.user, t.password)
                          : redisCommand(c, "AUTH %s", t.password);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "stream_fill: AUTH failed: %s\n", reply ? reply->str : c->errstr);
            goto fail;
        }
        freeReplyObject(reply);
        reply = NULL;
    }
    if (t.db) {
        reply = redisCommand(c, "SELECT %d", t.db);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "stream_fill: SELECT failed: %s\n", reply ? reply->str : c->errstr);
            goto fail;
        }
        freeReplyObject(reply);
    }
    return c;
fail:
    if (reply)
        freeReplyObject(reply);
    if (c)
        redisFree(c);
    return NULL;
}

static int parse_args(int argc, char **argv, options *opt)
{
    static const struct option longopts[] = {
        {"redis-url", required_argument, NULL, 'r'},
        {"key", required_argument, NULL, 'k'},
        {"rows-per-entry", required_argument, NULL, 'n'},
        {"plain", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            opt->redis_url = optarg;
            break;
        case 'k':
            opt->key = optarg;
            break;
        case 'n':
            errno = 0;
            opt->rows_per_entry = strtol(optarg, &end, 10);
            if (errno || *end || opt->rows_per_entry < 1 || opt->rows_per_entry > 1000000) {
                fprintf(stderr, "stream_fill: --rows-per-entry needs 1..1000000\n");
                return -1;
            }
            break;
        case 'p':
            opt->plain = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || !opt->redis_url || !opt->key) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options opt = {.rows_per_entry = 500};
    filler f = {.opt = &opt};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 1;
    if (parse_args(argc, argv, &opt) != 0)
        return 2;
    cdr_buf_init(&f.rows, 0);
    cdr_buf_init(&f.packed, 0);
    f.redis = connect_redis(opt.redis_url);
    if (!f.redis)
        goto done;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] != '\n') {
            fprintf(stderr, "stream_fill: the last row has no newline\n");
            goto done;
        }
        if (cdr_buf_append(&f.rows, line, (size_t)len) != 0) {
            fprintf(stderr, "stream_fill: out of memory\n");
            goto done;
        }
        if (++f.n_rows == opt.rows_per_entry && flush_entry(&f) != 0)
            goto done;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "stream_fill: reading stdin: %s\n", strerror(errno));
        goto done;
    }
    if (flush_entry(&f) != 0)
        goto done;
    while (f.in_flight > 0)
        if (read_answer(&f) != 0)
            goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("entries=%lld rows=%lld raw_bytes=%lld stored_bytes=%lld seconds=%.3f\n", f.entries,
           f.total_rows, f.raw_bytes, f.stored_bytes,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    rc = 0;
done:
    free(line);
    cdr_buf_free(&f.rows);
    cdr_buf_free(&f.packed);
    if (f.redis)
        redisFree(f.redis);
    return rc;
}
