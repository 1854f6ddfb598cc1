/* cdr_codec.c - stream entry format v1: COPY text rows out of records, zstd framing, row split. */
#include "cdr_codec.h"

#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "ascii.h"

/* Must match the flags cdr.c measures meta_json with, so that CDR_META_MAX bounds what is
 * written here. */
#define CDR_META_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

#define ZSTD_LEVEL 1

/* The letter that follows a backslash for each byte COPY text format must escape, else 0. */
static const char copy_escape[256] = {
    ['\\'] = '\\',
    ['\t'] = 't',
    ['\n'] = 'n',
    ['\r'] = 'r',
};

int cdr_codec_append_escaped(cdr_buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += copy_escape[u[i]] != 0;
    if (extra == 0)
        return cdr_buf_append(out, s, n);
    if (cdr_buf_reserve(out, n + extra) != 0)
        return -1;
    char *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        char e = copy_escape[u[i]];
        if (e) {
            *d++ = '\\';
            *d++ = e;
        } else {
            *d++ = (char)u[i];
        }
    }
    out->len += n + extra;
    out->data[out->len] = '\0';
    return 0;
}

/* The length of the valid UTF-8 sequence at 'u' (1-4), or 0 when it is not one (overlong
 * forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_seq_len(const unsigned char *u, size_t n)
{
    unsigned char c = u[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (u[i] < 0x80 || u[i] > 0xBF)
            return 0;
    return len;
}

/* Appends text that may be anything (a refused item as received): escaped like
 * cdr_codec_append_escaped, with NUL bytes and bytes that are not UTF-8 replaced by U+FFFD,
 * since PostgreSQL refuses both in text and a reject row must always load. */
static int append_text_safe(cdr_buf *out, const char *s, size_t n)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes not yet written */
    size_t i = 0;
    while (i < n) {
        size_t k = u[i] ? utf8_seq_len(u + i, n - i) : 0;
        if (k) {
            i += k;
            continue;
        }
        if (cdr_codec_append_escaped(out, s + run, i - run) != 0 ||
            cdr_buf_append(out, replacement, 3) != 0)
            return -1;
        i++;
        run = i;
    }
    return cdr_codec_append_escaped(out, s + run, n - run);
}

static int append_null(cdr_buf *out)
{
    return cdr_buf_append(out, "\\N", 2);
}

static int append_str(cdr_buf *out, cdr_str s)
{
    return s.p ? cdr_codec_append_escaped(out, s.p, s.len) : append_null(out);
}

static int append_cstr(cdr_buf *out, const char *s)
{
    return s && *s ? cdr_codec_append_escaped(out, s, strlen(s)) : append_null(out);
}

static int append_time(cdr_buf *out, cdr_time t)
{
    char tmp[40];
    size_t n = timefmt_format_pg(t, tmp, sizeof(tmp));
    return n ? cdr_buf_append(out, tmp, n) : -1;
}

static int append_int(cdr_buf *out, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp), *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return cdr_buf_append(out, p, (size_t)(e - p));
}

/* 15 significant digits give back every decimal a PBX sends (4.1 prints as "4.1") and are
 * more than the real columns keep. */
static int append_double(cdr_buf *out, bool has, double v)
{
    if (!has)
        return append_null(out);
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.15g", v);
    return n > 0 && (size_t)n < sizeof(tmp) ? cdr_buf_append(out, tmp, (size_t)n) : -1;
}

/* jansson hands its output over in many small pieces; gathering them before escaping costs
 * less than growing the row once per piece. */
typedef struct json_sink {
    cdr_buf *out;
    size_t n;
    char buf[512];
} json_sink;

static int sink_flush(json_sink *s)
{
    int rc = cdr_codec_append_escaped(s->out, s->buf, s->n);
    s->n = 0;
    return rc;
}

static int sink_chunk(const char *buffer, size_t size, void *data)
{
    json_sink *s = data;
    if (size > sizeof(s->buf) - s->n) {
        if (sink_flush(s) != 0)
            return -1;
        if (size > sizeof(s->buf))
            return cdr_codec_append_escaped(s->out, buffer, size);
    }
    memcpy(s->buf + s->n, buffer, size);
    s->n += size;
    return 0;
}

static int append_json(cdr_buf *out, const json_t *j)
{
    if (!j)
        return append_null(out);
    json_sink s = {.out = out, .n = 0};
    if (json_dump_callback(j, sink_chunk, &s, CDR_META_DUMP_FLAGS) != 0)
        return -1;
    return sink_flush(&s);
}

/* Ends a row begun at 'start': when 'rc' is not 0, takes back what the row appended, so that
 * 'out' never holds half a row. Returns 'rc'. */
static int end_row(cdr_buf *out, size_t start, int rc)
{
    if (rc != 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* Appends one column with 'expr' and then its terminator 'end' (tab, or newline after the last
 * column); leaves for 'done' when either fails. */
#define COLUMN(expr, end)                                                                          \
    do {                                                                                           \
        if ((expr) != 0 || cdr_buf_append_char(out, (end)) != 0)                                   \
            goto done;                                                                             \
    } while (0)

int cdr_codec_append_cdr(cdr_buf *out, const cdr_record *r, cdr_time ingested_at)
{
    size_t start = out->len;
    int rc = -1;
    COLUMN(append_cstr(out, r->tenant_id), '\t');
    COLUMN(append_cstr(out, r->store_id), '\t');
    COLUMN(append_str(out, r->store_name), '\t');
    COLUMN(append_cstr(out, r->sip_domain), '\t');
    COLUMN(append_str(out, r->call_id), '\t');
    COLUMN(cdr_buf_append_str(out, cdr_direction_str(r->direction)), '\t');
    COLUMN(append_str(out, r->from_uri), '\t');
    COLUMN(append_str(out, r->to_uri), '\t');
    COLUMN(append_str(out, r->did_e164), '\t');
    COLUMN(append_str(out, r->ext_number), '\t');
    COLUMN(append_cstr(out, r->user_id), '\t');
    COLUMN(append_time(out, r->start_ts), '\t');
    COLUMN(r->has_answer ? append_time(out, r->answer_ts) : append_null(out), '\t');
    COLUMN(append_time(out, r->end_ts), '\t');
    COLUMN(append_int(out, r->billsec), '\t');
    COLUMN(cdr_buf_append_str(out, cdr_disposition_str(r->disposition)), '\t');
    COLUMN(append_str(out, r->recording_url), '\t');
    COLUMN(append_double(out, r->has_mos, r->mos), '\t');
    COLUMN(append_double(out, r->has_jitter, r->jitter_ms), '\t');
    COLUMN(append_double(out, r->has_loss, r->loss_pct), '\t');
    COLUMN(append_json(out, r->meta), '\t');
    COLUMN(append_time(out, ingested_at), '\n');
    rc = 0;
done:
    return end_row(out, start, rc);
}

static int append_reject_text(cdr_buf *out, const char *s)
{
    return s ? append_text_safe(out, s, strlen(s)) : append_null(out);
}

int cdr_codec_append_reject(cdr_buf *out, const cdr_reject *rej)
{
    size_t start = out->len;
    int rc = -1;
    COLUMN(append_time(out, rej->received_at), '\t');
    COLUMN(append_reject_text(out, rej->tenant_id), '\t');
    COLUMN(append_reject_text(out, rej->sip_domain), '\t');
    COLUMN(append_reject_text(out, rej->call_id), '\t');
    COLUMN(append_reject_text(out, rej->source), '\t');
    COLUMN(append_reject_text(out, rej->reason), '\t');
    COLUMN(rej->raw ? append_text_safe(out, rej->raw, rej->raw_len) : append_null(out), '\n');
    rc = 0;
done:
    return end_row(out, start, rc);
}

int cdr_codec_compress(const char *rows, size_t len, cdr_buf *out)
{
    size_t bound = ZSTD_compressBound(len);
    if (ZSTD_isError(bound) || cdr_buf_reserve(out, bound) != 0)
        return -1;
    size_t n = ZSTD_compress(out->data + out->len, bound, rows, len, ZSTD_LEVEL);
    if (ZSTD_isError(n))
        return -1;
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

int cdr_codec_open(const char *v, const char *enc, const char *payload, size_t payload_len,
                   size_t max_rows_len, cdr_buf *scratch, const char **rows, size_t *rows_len,
                   char *err, size_t errlen)
{
    if (!v || strcmp(v, CDR_CODEC_VERSION) != 0) {
        snprintf(err, errlen, "unsupported stream format version '%.32s'", v ? v : "");
        return -1;
    }
    if (enc && strcmp(enc, CDR_CODEC_ENC_PLAIN) == 0) {
        *rows = payload;
        *rows_len = payload_len;
        return 0;
    }
    if (!enc || strcmp(enc, CDR_CODEC_ENC_ZSTD) != 0) {
        snprintf(err, errlen, "unsupported stream encoding '%.32s'", enc ? enc : "");
        return -1;
    }
    unsigned long long size = ZSTD_getFrameContentSize(payload, payload_len);
    if (size == ZSTD_CONTENTSIZE_ERROR) {
        snprintf(err, errlen, "corrupt zstd frame: not a zstd frame");
        return -1;
    }
    if (size == ZSTD_CONTENTSIZE_UNKNOWN) {
        snprintf(err, errlen, "zstd frame does not record its content size");
        return -1;
    }
    if (size > max_rows_len) {
        snprintf(err, errlen, "zstd frame content of %llu bytes exceeds the limit of %zu bytes",
                 size, max_rows_len);
        return -1;
    }
    cdr_buf_reset(scratch);
    if (cdr_buf_reserve(scratch, (size_t)size) != 0) {
        snprintf(err, errlen, "out of memory for %llu bytes of rows", size);
        return -1;
    }
    /* The capacity is the declared size: a frame that lies about it fails here instead of
     * writing past what was checked. */
    size_t n = ZSTD_decompress(scratch->data, (size_t)size, payload, payload_len);
    if (ZSTD_isError(n)) {
        snprintf(err, errlen, "corrupt zstd frame: %s", ZSTD_getErrorName(n));
        return -1;
    }
    if (n != size) {
        snprintf(err, errlen, "corrupt zstd frame: %zu bytes instead of %llu", n, size);
        return -1;
    }
    scratch->len = n;
    scratch->data[n] = '\0';
    *rows = scratch->data;
    *rows_len = n;
    return 0;
}

static inline bool is_octal(char c)
{
    return c >= '0' && c <= '7';
}

/* Decodes the escape that follows a backslash; 'p' points after the backslash and is moved
 * past what was consumed. Follows PostgreSQL's COPY text rules: \b \f \n \r \t \v, one to three
 * octal digits (low 8 bits kept), \x with one or two hex digits, and any other character
 * standing for itself (a backslashed delimiter or newline is data). */
static char unescape(const char **pp, const char *end)
{
    const char *p = *pp;
    char c = *p++;
    if (is_octal(c)) {
        int val = c - '0';
        for (int k = 0; k < 2 && p < end && is_octal(*p); k++)
            val = val * 8 + (*p++ - '0');
        c = (char)(val & 0xFF);
    } else if (c == 'x' && p < end && ascii_hex_value(*p) >= 0) {
        int val = ascii_hex_value(*p++);
        if (p < end && ascii_hex_value(*p) >= 0)
            val = val * 16 + ascii_hex_value(*p++);
        c = (char)val;
    } else {
        switch (c) {
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        case 'v':
            c = '\v';
            break;
        default:
            break;
        }
    }
    *pp = p;
    return c;
}

int cdr_codec_split_row(const char *row, size_t len, cdr_buf *scratch, const char **fields,
                        int max_fields)
{
    if (max_fields < 1)
        return -1;
    /* Unescaping never lengthens a field and a row has at most one field more than it has
     * tabs, so one reservation holds every field and its NUL: the pointers handed out are
     * never moved by a later growth. */
    size_t tabs = 0;
    for (size_t i = 0; i < len; i++)
        tabs += row[i] == '\t';
    cdr_buf_reset(scratch);
    if (cdr_buf_reserve(scratch, len + tabs + 1) != 0)
        return -1;
    char *d = scratch->data;
    const char *p = row, *end = row + len;
    int n = 0;
    for (;;) {
        if (n == max_fields)
            return -1;
        const char *raw = p;
        char *field = d;
        while (p < end && *p != '\t') {
            char c = *p++;
            if (c == '\n' || c == '\r')
                return -1; /* a row ends at an unescaped newline */
            if (c == '\\') {
                if (p == end)
                    return -1; /* a lone backslash at the end of the row */
                c = unescape(&p, end);
                if (c == '\0')
                    return -1; /* PostgreSQL text cannot hold a NUL byte */
            }
            *d++ = c;
        }
        /* NULL is the raw \N, compared before unescaping: an escaped "\\N" is text. */
        if (p - raw == 2 && raw[0] == '\\' && raw[1] == 'N') {
            fields[n++] = NULL;
            d = field;
        } else {
            *d++ = '\0';
            fields[n++] = field;
        }
        if (p == end)
            break;
        p++; /* the delimiter */
    }
    scratch->len = (size_t)(d - scratch->data);
    scratch->data[scratch->len] = '\0';
    return n;
}
