/* stream_read.c - the writer's side of the Redis Stream: consumer group, XREADGROUP, XAUTOCLAIM,
 * XACK/XDEL, dead letters and lag, on one synchronous hiredis connection.
 *
 * Redis 7 is assumed: XAUTOCLAIM answers [next cursor, entries, deleted ids] (the deleted ones
 * are already out of the pending list), XINFO GROUPS reports "lag", and XRANGE takes exclusive
 * bounds ("(id"). Replies are read in RESP2, where every map is a flat array. */
#include "stream_read.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "errfmt.h"
#include "log.h"

#define COMPONENT          "writer"
#define CONNECT_TIMEOUT_MS 2000
#define REPLY_MARGIN_MS    5000 /* beyond the longest BLOCK, a Redis that stays silent is lost */
#define DEAD_SUFFIX        ":dead"
#define MAX_FIELDS         64 /* field/value items of an entry kept for decoding */

typedef enum read_phase {
    PHASE_OWN, /* this consumer's pending entries, from an earlier run under the same name */
    PHASE_NEW, /* entries never delivered */
} read_phase;

struct stream_read {
    redisContext *c;
    redis_target target;
    char *key, *dead_key, *group, *consumer;
    int flush_ms;
    int claim_idle_ms;
    char where[320];
    bool in_outage;
    bool ever_connected;

    read_phase phase;
    char own_cursor[WB_ID_MAX];   /* the last own pending entry read */
    char claim_cursor[WB_ID_MAX]; /* where the XAUTOCLAIM scan goes on */
    int64_t next_claim_ms;
    double rows_per_entry; /* recent average, to size COUNT; 0 until an entry was seen */

    /* Command arguments, reused: a batch acknowledges up to its number of entries. */
    const char **argv;
    size_t *argvlen;
    size_t cap_args;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

stream_read *stream_read_create(const stream_read_config *cfg)
{
    stream_read *sr = calloc(1, sizeof(*sr));
    if (!sr)
        return NULL;
    sr->target = cfg->target;
    sr->key = strdup(cfg->key);
    sr->group = strdup(cfg->group);
    sr->consumer = strdup(cfg->consumer);
    sr->dead_key = malloc(strlen(cfg->key) + sizeof(DEAD_SUFFIX));
    if (!sr->key || !sr->group || !sr->consumer || !sr->dead_key) {
        stream_read_destroy(sr);
        return NULL;
    }
    sprintf(sr->dead_key, "%s%s", cfg->key, DEAD_SUFFIX);
    sr->flush_ms = cfg->flush_ms;
    sr->claim_idle_ms = cfg->claim_idle_ms;
    snprintf(sr->claim_cursor, sizeof(sr->claim_cursor), "0-0");
    sr->next_claim_ms = now_ms(); /* a writer that starts may be replacing one that died */

    const redis_target *t = &sr->target;
    if (t->unix_path[0])
        snprintf(sr->where, sizeof(sr->where), "%s", t->unix_path);
    else
        snprintf(sr->where, sizeof(sr->where), strchr(t->host, ':') ? "[%s]:%d" : "%s:%d", t->host,
                 t->port);
    if (t->db != 0) {
        size_t n = strlen(sr->where);
        snprintf(sr->where + n, sizeof(sr->where) - n, " db %d", t->db);
    }
    return sr;
}

void stream_read_destroy(stream_read *sr)
{
    if (!sr)
        return;
    if (sr->c)
        redisFree(sr->c);
    free(sr->key);
    free(sr->dead_key);
    free(sr->group);
    free(sr->consumer);
    free(sr->argv);
    free(sr->argvlen);
    free(sr);
}

bool stream_read_connected(const stream_read *sr)
{
    return sr->c != NULL;
}

const char *stream_read_where(const stream_read *sr)
{
    return sr->where;
}

/* Closes the connection after a failure 'why', logging the outage once. */
static void drop(stream_read *sr, const char *why)
{
    bool was_connected = sr->c != NULL;
    if (sr->c) {
        redisFree(sr->c);
        sr->c = NULL;
    }
    if (sr->in_outage) {
        LOG_DEBUG(COMPONENT, "redis %s: %s", sr->where, why);
        return;
    }
    sr->in_outage = true;
    if (was_connected)
        LOG_WARN(COMPONENT, "redis %s: connection lost: %s; reconnecting", sr->where, why);
    else
        LOG_WARN(COMPONENT, "redis %s: cannot connect: %s; retrying", sr->where, why);
}

/* Makes room for 'n' command arguments. Returns 0 or -1. */
static int reserve_args(stream_read *sr, size_t n)
{
    if (n <= sr->cap_args)
        return 0;
    size_t cap = sr->cap_args ? sr->cap_args : 64;
    while (cap < n)
        cap *= 2;
    const char **argv = realloc(sr->argv, cap * sizeof(*argv));
    if (!argv)
        return -1;
    sr->argv = argv;
    size_t *argvlen = realloc(sr->argvlen, cap * sizeof(*argvlen));
    if (!argvlen)
        return -1;
    sr->argvlen = argvlen;
    sr->cap_args = cap;
    return 0;
}

/* Argument lists: each add_* appends one argument to sr->argv at '*n' (room reserved before). */
static void add_arg(stream_read *sr, size_t *n, const char *s, size_t len)
{
    sr->argv[*n] = s;
    sr->argvlen[*n] = len;
    (*n)++;
}

static void add_str(stream_read *sr, size_t *n, const char *s)
{
    add_arg(sr, n, s, strlen(s));
}

/* add_str() for each string argument, up to a NULL. */
static void add_strs(stream_read *sr, size_t *n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (const char *s; (s = va_arg(ap, const char *));)
        add_str(sr, n, s);
    va_end(ap);
}

/* Runs the command in sr->argv[0..argc). Returns the reply (freeReplyObject), or NULL when the
 * connection failed or Redis answered an error: then the connection is closed and 'err' says
 * why ('what' names the command). */
static redisReply *command(stream_read *sr, size_t argc, const char *what, char *err, size_t errlen)
{
    if (!sr->c) {
        cdr_errf(err, errlen, "not connected");
        return NULL;
    }
    redisReply *r = redisCommandArgv(sr->c, (int)argc, sr->argv, sr->argvlen);
    if (!r) {
        cdr_errf(err, errlen, "%s: %s", what, sr->c->errstr[0] ? sr->c->errstr : "no reply");
        drop(sr, err);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cdr_errf(err, errlen, "%s: %s", what, r->str);
        freeReplyObject(r);
        drop(sr, err);
        return NULL;
    }
    return r;
}

/* Sends the 'count' commands queued with redisAppendCommandArgv and reads their replies: OK
 * when none is an error and the last one (EXEC) holds no error either. Returns 0, or -1 with
 * the connection closed and 'err' set. */
static int read_transaction(stream_read *sr, int count, const char *what, char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i < count; i++) {
        void *p = NULL;
        if (redisGetReply(sr->c, &p) != REDIS_OK || !p) {
            cdr_errf(err, errlen, "%s: %s", what, sr->c->errstr[0] ? sr->c->errstr : "no reply");
            drop(sr, err);
            return -1;
        }
        redisReply *r = p;
        if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
            cdr_errf(err, errlen, "%s: %s", what, r->str);
            rc = -1;
        }
        if (rc == 0 && i == count - 1) {
            if (r->type != REDIS_REPLY_ARRAY) {
                cdr_errf(err, errlen, "%s: transaction aborted", what);
                rc = -1;
            }
            for (size_t k = 0; rc == 0 && k < r->elements; k++)
                if (r->element[k]->type == REDIS_REPLY_ERROR) {
                    cdr_errf(err, errlen, "%s: %s", what, r->element[k]->str);
                    rc = -1;
                }
        }
        freeReplyObject(r);
    }
    if (rc != 0)
        drop(sr, err);
    return rc;
}

/* Queues the command in sr->argv[0..argc) without sending it. Returns 0 or -1. */
static int append_command(stream_read *sr, size_t argc, char *err, size_t errlen)
{
    if (redisAppendCommandArgv(sr->c, (int)argc, sr->argv, sr->argvlen) != REDIS_OK) {
        cdr_errf(err, errlen, "cannot queue a command: %s", sr->c->errstr);
        drop(sr, err);
        return -1;
    }
    return 0;
}

static int queue_simple(stream_read *sr, const char *a, char *err, size_t errlen)
{
    size_t n = 0;
    add_str(sr, &n, a);
    return append_command(sr, n, err, errlen);
}

int stream_read_connect(stream_read *sr, char *err, size_t errlen)
{
    if (sr->c)
        return 0;
    if (reserve_args(sr, 16) != 0) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    const redis_target *t = &sr->target;
    struct timeval tv = ms_to_tv(CONNECT_TIMEOUT_MS);
    redisContext *c = t->unix_path[0] ? redisConnectUnixWithTimeout(t->unix_path, tv)
                                      : redisConnectWithTimeout(t->host, t->port, tv);
    if (!c || c->err) {
        cdr_errf(err, errlen, "%s", c ? c->errstr : "out of memory");
        redisFree(c);
        drop(sr, err);
        return -1;
    }
    sr->c = c;
    if (redisSetTimeout(c, ms_to_tv(sr->flush_ms + REPLY_MARGIN_MS)) != REDIS_OK ||
        redisEnableKeepAlive(c) != REDIS_OK) {
        cdr_errf(err, errlen, "cannot set up the connection: %s", c->errstr);
        drop(sr, err);
        return -1;
    }

    size_t n = 0;
    redisReply *r;
    if (t->password[0]) {
        add_str(sr, &n, "AUTH");
        if (t->user[0])
            add_str(sr, &n, t->user);
        add_str(sr, &n, t->password);
        if (!(r = command(sr, n, "AUTH", err, errlen)))
            return -1;
        freeReplyObject(r);
    }
    if (t->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", t->db);
        n = 0;
        add_strs(sr, &n, "SELECT", db, NULL);
        if (!(r = command(sr, n, "SELECT", err, errlen)))
            return -1;
        freeReplyObject(r);
    }
    /* From id 0: entries appended before any writer ran are not skipped. */
    n = 0;
    add_strs(sr, &n, "XGROUP", "CREATE", sr->key, sr->group, "0", "MKSTREAM", NULL);
    r = redisCommandArgv(sr->c, (int)n, sr->argv, sr->argvlen);
    if (!r) {
        cdr_errf(err, errlen, "XGROUP CREATE: %s", sr->c->errstr[0] ? sr->c->errstr : "no reply");
        drop(sr, err);
        return -1;
    }
    bool ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
    if (!ok) {
        cdr_errf(err, errlen, "XGROUP CREATE %s %s: %s", sr->key, sr->group, r->str);
        freeReplyObject(r);
        drop(sr, err);
        return -1;
    }
    freeReplyObject(r);

    /* A read whose answer was lost with the old connection left its entries pending for this
     * consumer: they are read again first. */
    sr->phase = PHASE_OWN;
    snprintf(sr->own_cursor, sizeof(sr->own_cursor), "0");
    if (sr->in_outage)
        LOG_INFO(COMPONENT, "redis %s: connection is back", sr->where);
    else if (!sr->ever_connected)
        LOG_INFO(COMPONENT, "redis %s: connected, group %s on %s", sr->where, sr->group, sr->key);
    sr->in_outage = false;
    sr->ever_connected = true;
    return 0;
}

/* Moves the undecodable entry 'id' with its 'fields' to the dead-letter stream with 'why', and
 * acknowledges and deletes it, in one transaction. Returns 0, or -1 with 'err'. */
static int dead_letter_entry(stream_read *sr, const redisReply *id, const redisReply *fields,
                             const char *why, char *err, size_t errlen)
{
    if (reserve_args(sr, 16 + fields->elements) != 0) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    if (queue_simple(sr, "MULTI", err, errlen) != 0)
        return -1;
    size_t n = 0;
    add_strs(sr, &n, "XADD", sr->dead_key, "*", "entry_id", NULL);
    add_arg(sr, &n, id->str, id->len);
    add_strs(sr, &n, "reason", why, NULL);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        add_arg(sr, &n, f->str, f->len);
        add_arg(sr, &n, v->str, v->len);
    }
    if (append_command(sr, n, err, errlen) != 0)
        return -1;
    const char *verbs[2] = {"XACK", "XDEL"};
    for (int k = 0; k < 2; k++) {
        n = 0;
        add_strs(sr, &n, verbs[k], sr->key, NULL);
        if (k == 0)
            add_str(sr, &n, sr->group);
        add_arg(sr, &n, id->str, id->len);
        if (append_command(sr, n, err, errlen) != 0)
            return -1;
    }
    if (queue_simple(sr, "EXEC", err, errlen) != 0)
        return -1;
    return read_transaction(sr, 5, "dead letter", err, errlen);
}

/* Acknowledges 'id', a pending entry whose content was deleted: there is nothing to write. */
static int ack_gone(stream_read *sr, const redisReply *id, char *err, size_t errlen)
{
    size_t n = 0;
    add_strs(sr, &n, "XACK", sr->key, sr->group, NULL);
    add_arg(sr, &n, id->str, id->len);
    redisReply *r = command(sr, n, "XACK", err, errlen);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* Adds the entries of 'entries', an array of [id, [field, value, ...]], to 'b'. Undecodable ones
 * are dead-lettered (counted in '*dead'), deleted ones acknowledged. '*last' receives the id of
 * the last entry when not NULL. Returns the number of entries in 'entries', or -1 (connection
 * failed) or -2 (out of memory) with 'err'. */
static int take_entries(stream_read *sr, writer_batch *b, const redisReply *entries, int *dead,
                        char *last, char *err, size_t errlen)
{
    wb_field fv[MAX_FIELDS];
    char why[256];
    if (entries->type != REDIS_REPLY_ARRAY) {
        cdr_errf(err, errlen, "unexpected reply: entries are not an array");
        drop(sr, err);
        return -1;
    }
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            cdr_errf(err, errlen, "unexpected reply: an entry is not [id, fields]");
            drop(sr, err);
            return -1;
        }
        const redisReply *id = e->element[0], *fields = e->element[1];
        if (last && id->len < WB_ID_MAX)
            snprintf(last, WB_ID_MAX, "%s", id->str);
        if (fields->type == REDIS_REPLY_NIL) {
            if (ack_gone(sr, id, err, errlen) != 0)
                return -1;
            continue;
        }
        int n_fv = 0;
        for (size_t k = 0;
             fields->type == REDIS_REPLY_ARRAY && k < fields->elements && n_fv < MAX_FIELDS; k++) {
            const redisReply *f = fields->element[k];
            fv[n_fv].p = f->type == REDIS_REPLY_STRING ? f->str : "";
            fv[n_fv].len = f->type == REDIS_REPLY_STRING ? f->len : 0;
            n_fv++;
        }
        switch (writer_batch_add(b, id->str, id->len, fv, n_fv, why, sizeof(why))) {
        case WB_ADDED: {
            double n = b->entries[b->n_entries - 1].n_rows;
            sr->rows_per_entry = sr->rows_per_entry > 0 ? sr->rows_per_entry * 0.9 + n * 0.1 : n;
            break;
        }
        case WB_UNDECODABLE:
            if (fields->type != REDIS_REPLY_ARRAY) {
                cdr_errf(err, errlen, "unexpected reply: entry %s has no field list", id->str);
                drop(sr, err);
                return -1;
            }
            if (dead_letter_entry(sr, id, fields, why, err, errlen) != 0)
                return -1;
            (*dead)++;
            LOG_WARN(COMPONENT, "entry %s moved to %s: %s", id->str, sr->dead_key, why);
            break;
        case WB_OUT_OF_MEMORY:
        default:
            cdr_errf(err, errlen, "out of memory for entry %s", id->str);
            return -2;
        }
    }
    return (int)entries->elements;
}

/* COUNT for a read that may add 'left' rows, from the rows recent entries held: a batch holds
 * about CDR_WRITER_BATCH rows whether entries hold one row or thousands. Until an entry was
 * seen, one entry at a time. */
static long long count_for(const stream_read *sr, long long left)
{
    if (sr->rows_per_entry <= 0)
        return 1;
    double per = sr->rows_per_entry < 1 ? 1 : sr->rows_per_entry;
    long long c = (long long)((double)left / per);
    return c < 1 ? 1 : c;
}

/* XREADGROUP from 'id' ("0"-style history of this consumer, or ">") with COUNT 'count', blocking
 * 'block_ms' when >= 0. Returns the number of entries, or -1 / -2 as take_entries. */
static int read_group(stream_read *sr, writer_batch *b, const char *id, long long count,
                      int block_ms, int *dead, char *last, char *err, size_t errlen)
{
    char count_s[24], block_s[24];
    snprintf(count_s, sizeof(count_s), "%lld", count);
    snprintf(block_s, sizeof(block_s), "%d", block_ms);
    size_t n = 0;
    add_strs(sr, &n, "XREADGROUP", "GROUP", sr->group, sr->consumer, "COUNT", count_s, NULL);
    if (block_ms >= 0) {
        add_strs(sr, &n, "BLOCK", block_s, NULL);
    }
    add_strs(sr, &n, "STREAMS", sr->key, id, NULL);
    redisReply *r = command(sr, n, "XREADGROUP", err, errlen);
    if (!r)
        return -1;
    int got = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        got = take_entries(sr, b, r->element[0]->element[1], dead, last, err, errlen);
    } else if (r->type != REDIS_REPLY_NIL) {
        cdr_errf(err, errlen, "XREADGROUP: unexpected reply");
        drop(sr, err);
        got = -1;
    }
    freeReplyObject(r);
    return got;
}

/* One XAUTOCLAIM step of the scan of the group's pending list. Returns the number of entries
 * claimed, or -1 / -2 as take_entries. */
static int claim(stream_read *sr, writer_batch *b, long long count, int *dead, char *err,
                 size_t errlen)
{
    char idle_s[24], count_s[24];
    snprintf(idle_s, sizeof(idle_s), "%d", sr->claim_idle_ms);
    snprintf(count_s, sizeof(count_s), "%lld", count);
    size_t n = 0;
    add_strs(sr, &n, "XAUTOCLAIM", sr->key, sr->group, sr->consumer, idle_s, sr->claim_cursor,
             "COUNT", count_s, NULL);
    redisReply *r = command(sr, n, "XAUTOCLAIM", err, errlen);
    if (!r)
        return -1;
    int got;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= WB_ID_MAX) {
        cdr_errf(err, errlen, "XAUTOCLAIM: unexpected reply");
        drop(sr, err);
        got = -1;
    } else {
        got = take_entries(sr, b, r->element[1], dead, NULL, err, errlen);
        if (got >= 0) {
            snprintf(sr->claim_cursor, sizeof(sr->claim_cursor), "%s", r->element[0]->str);
            /* The scan is over when the cursor is back at the start. */
            if (strcmp(sr->claim_cursor, "0-0") == 0)
                sr->next_claim_ms = now_ms() + sr->claim_idle_ms / 2;
        }
        if (got > 0)
            LOG_INFO(COMPONENT, "claimed %d entr%s left pending over %d ms", got,
                     got == 1 ? "y" : "ies", sr->claim_idle_ms);
    }
    freeReplyObject(r);
    return got;
}

stream_read_result stream_read_fill(stream_read *sr, writer_batch *b, long long max_rows,
                                    const volatile sig_atomic_t *stop, int *dead, char *err,
                                    size_t errlen)
{
    int64_t deadline = -1;
    int got;
    *dead = 0;
    if (!sr->c) {
        cdr_errf(err, errlen, "not connected");
        return SR_LOST;
    }
    if (now_ms() >= sr->next_claim_ms) {
        got = claim(sr, b, count_for(sr, max_rows), dead, err, errlen);
        if (got < 0)
            return got == -2 ? SR_NO_MEMORY : SR_LOST;
        if (got > 0)
            deadline = now_ms() + sr->flush_ms;
    }
    for (;;) {
        long long left = max_rows - writer_batch_rows(b);
        if (left <= 0 || *stop)
            break;
        if (sr->phase == PHASE_OWN) {
            char last[WB_ID_MAX] = "";
            got =
                read_group(sr, b, sr->own_cursor, count_for(sr, left), -1, dead, last, err, errlen);
            if (got == 0) {
                sr->phase = PHASE_NEW;
                continue;
            }
            if (got > 0 && last[0])
                snprintf(sr->own_cursor, sizeof(sr->own_cursor), "%s", last);
        } else {
            int block = sr->flush_ms;
            if (deadline >= 0) {
                int64_t rest = deadline - now_ms();
                if (rest <= 0)
                    break;
                block = (int)rest;
            }
            got = read_group(sr, b, ">", count_for(sr, left), block, dead, NULL, err, errlen);
            if (got == 0 && deadline < 0)
                break; /* nothing came within flush_ms */
        }
        if (got < 0)
            return got == -2 ? SR_NO_MEMORY : SR_LOST;
        if (got > 0 && deadline < 0)
            deadline = now_ms() + sr->flush_ms;
    }
    return SR_OK;
}

/* Queues "<verb> key [group] id..." for every entry of 'b'. Returns 0 or -1. */
static int queue_ids(stream_read *sr, const char *verb, bool with_group, const writer_batch *b,
                     char *err, size_t errlen)
{
    size_t n = 0;
    add_strs(sr, &n, verb, sr->key, NULL);
    if (with_group)
        add_str(sr, &n, sr->group);
    for (int i = 0; i < b->n_entries; i++)
        add_str(sr, &n, b->entries[i].id);
    return append_command(sr, n, err, errlen);
}

int stream_read_ack(stream_read *sr, const writer_batch *b, char *err, size_t errlen)
{
    if (!sr->c) {
        cdr_errf(err, errlen, "not connected");
        return -1;
    }
    if (b->n_entries == 0 && b->n_lost == 0)
        return 0;
    if (reserve_args(sr, (size_t)b->n_entries + 16) != 0) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    int queued = 0;
    if (queue_simple(sr, "MULTI", err, errlen) != 0)
        return -1;
    queued++;
    /* A lost row goes to the dead-letter stream as an entry of its own, which could be appended
     * back to the stream as it is: v, kind, n, enc and rows, plus where it came from and why. */
    for (int i = 0; i < b->n_lost; i++) {
        const wb_row *row = &b->rows[b->lost[i].row];
        const wb_entry *e = &b->entries[row->entry];
        char seq[16];
        size_t raw_len;
        const char *raw = writer_batch_raw(b, b->lost[i].row, &raw_len);
        char *line = malloc(raw_len + 1); /* the row ended by its '\n' */
        if (!line) {
            cdr_errf(err, errlen, "out of memory");
            drop(sr, err); /* the queued MULTI must not stay on the connection */
            return -1;
        }
        memcpy(line, raw, raw_len);
        line[raw_len] = '\n';
        snprintf(seq, sizeof(seq), "%d", row->seq);
        size_t n = 0;
        add_strs(sr, &n, "XADD", sr->dead_key, "*", "entry_id", e->id, "row", seq, "reason",
                 b->lost[i].reason, "v", "1", "kind", e->kind == WB_CDR ? "cdr" : "reject", "n",
                 "1", "enc", "copy", "rows", NULL);
        add_arg(sr, &n, line, raw_len + 1);
        int rc = append_command(sr, n, err, errlen); /* hiredis copies the arguments */
        free(line);
        if (rc != 0)
            return -1;
        queued++;
    }
    if (b->n_entries > 0) {
        if (queue_ids(sr, "XACK", true, b, err, errlen) != 0 ||
            queue_ids(sr, "XDEL", false, b, err, errlen) != 0)
            return -1;
        queued += 2;
    }
    if (queue_simple(sr, "EXEC", err, errlen) != 0)
        return -1;
    queued++;
    return read_transaction(sr, queued, "XACK/XDEL", err, errlen);
}

int stream_read_touch(stream_read *sr, const writer_batch *b, char *err, size_t errlen)
{
    if (!sr->c) {
        cdr_errf(err, errlen, "not connected");
        return -1;
    }
    if (b->n_entries == 0)
        return 0;
    if (reserve_args(sr, (size_t)b->n_entries + 8) != 0) {
        cdr_errf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    add_strs(sr, &n, "XCLAIM", sr->key, sr->group, sr->consumer, "0", NULL);
    for (int i = 0; i < b->n_entries; i++)
        add_str(sr, &n, b->entries[i].id);
    add_str(sr, &n, "JUSTID");
    redisReply *r = command(sr, n, "XCLAIM", err, errlen);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* The value of 'name' in the flat field/value array 'map', or NULL. */
static const redisReply *map_get(const redisReply *map, const char *name)
{
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        const redisReply *k = map->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
            return map->element[i + 1];
    }
    return NULL;
}

/* The milliseconds part of the stream id 's'. */
static long long id_ms(const char *s)
{
    return strtoll(s, NULL, 10);
}

int stream_read_lag(stream_read *sr, long long *entries, double *seconds, char *err, size_t errlen)
{
    size_t n = 0;
    add_strs(sr, &n, "XINFO", "GROUPS", sr->key, NULL);
    redisReply *r = command(sr, n, "XINFO GROUPS", err, errlen);
    if (!r)
        return -1;
    const redisReply *g = NULL;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !g; i++) {
        const redisReply *name = map_get(r->element[i], "name");
        if (r->element[i]->type == REDIS_REPLY_ARRAY && name && name->type == REDIS_REPLY_STRING &&
            strcmp(name->str, sr->group) == 0)
            g = r->element[i];
    }
    const redisReply *lag = g ? map_get(g, "lag") : NULL;
    const redisReply *pending = g ? map_get(g, "pending") : NULL;
    const redisReply *last = g ? map_get(g, "last-delivered-id") : NULL;
    if (!g || !last || last->type != REDIS_REPLY_STRING || last->len + 2 > WB_ID_MAX) {
        freeReplyObject(r);
        cdr_errf(err, errlen, "XINFO GROUPS: no group %s on %s", sr->group, sr->key);
        return -1;
    }
    char after[WB_ID_MAX];
    snprintf(after, sizeof(after), "(%s", last->str);
    long long lag_n = lag && lag->type == REDIS_REPLY_INTEGER ? lag->integer : -1;
    long long pending_n = pending && pending->type == REDIS_REPLY_INTEGER ? pending->integer : 0;
    freeReplyObject(r);

    if (lag_n < 0) {
        /* Redis cannot tell after some deletions: every entry in the stream is either pending
         * or not delivered yet, since the writers delete what they acknowledge. */
        n = 0;
        add_strs(sr, &n, "XLEN", sr->key, NULL);
        if (!(r = command(sr, n, "XLEN", err, errlen)))
            return -1;
        lag_n = r->type == REDIS_REPLY_INTEGER ? r->integer - pending_n : 0;
        if (lag_n < 0)
            lag_n = 0;
        freeReplyObject(r);
    }
    *entries = lag_n;
    *seconds = 0;
    if (lag_n == 0)
        return 0;

    n = 0;
    add_strs(sr, &n, "XRANGE", sr->key, after, "+", "COUNT", "1", NULL);
    if (!(r = command(sr, n, "XRANGE", err, errlen)))
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        long long age = now - id_ms(r->element[0]->element[0]->str);
        *seconds = age > 0 ? (double)age / 1000.0 : 0;
    }
    freeReplyObject(r);
    return 0;
}

void stream_read_leave(stream_read *sr)
{
    char err[256];
    if (!sr->c || reserve_args(sr, 16) != 0)
        return;
    size_t n = 0;
    add_strs(sr, &n, "XPENDING", sr->key, sr->group, "-", "+", "1", sr->consumer, NULL);
    redisReply *r = command(sr, n, "XPENDING", err, sizeof(err));
    if (!r) {
        LOG_DEBUG(COMPONENT, "cannot leave the group: %s", err);
        return;
    }
    bool none = r->type == REDIS_REPLY_ARRAY && r->elements == 0;
    freeReplyObject(r);
    if (!none)
        return; /* what is pending stays assigned to this name, for a claim or a restart */
    n = 0;
    add_strs(sr, &n, "XGROUP", "DELCONSUMER", sr->key, sr->group, sr->consumer, NULL);
    if (!(r = command(sr, n, "XGROUP DELCONSUMER", err, sizeof(err)))) {
        LOG_DEBUG(COMPONENT, "cannot leave the group: %s", err);
        return;
    }
    freeReplyObject(r);
}
