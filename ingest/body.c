/* body.c - a POST body: content type and encoding, inflating within a limit, splitting items. */
#include "body.h"

#include "json_arena.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "errfmt.h"

/* The first allocation for an inflated body; it then doubles, never past the limit. */
#define INFLATE_FIRST_CHUNK (64 * 1024)

/* zstd levels 1-19 never use a window above 8 MB: any ordinary compressor's frames decode,
 * while a frame asking for more than max(limit, 8 MB) of decoder memory is refused. 27 is the
 * decoder's own default ceiling (128 MB). */
#define ZSTD_WINDOW_LOG_FLOOR 23
#define ZSTD_WINDOW_LOG_CEIL  27

/* Header values quoted in error messages are cut to this many bytes. */
#define QUOTE_MAX 64

/* Any JSON value parses at the top level, so that a scalar body is refused, and a scalar NDJSON
 * line handed to the callback, with a message that says what is wrong instead of jansson's
 * "'[' or '{' expected". */
#define LOAD_FLAGS JSON_DECODE_ANY

/* Copies at most QUOTE_MAX bytes of 's' into 'dst' for an error message, with every byte that
 * is not printable ASCII replaced by '?', so that a hostile header cannot make the message
 * invalid UTF-8 or multi-line. */
static void quote(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t max = n < QUOTE_MAX ? n : QUOTE_MAX;
    if (max > dstlen - 4)
        max = dstlen - 4;
    size_t i;
    for (i = 0; i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (max < n) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrows [*p, *end) to drop optional whitespace on both sides. */
static void trim(const char **p, const char **end)
{
    while (*p < *end && is_ows(**p))
        (*p)++;
    while (*end > *p && is_ows((*end)[-1]))
        (*end)--;
}

/* Whether the 'n' bytes at 's' are 'lit', ignoring ASCII case. */
static bool equals_nocase(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Scans one ";name=value" parameter of a media type starting after its ';'. Sets 'name' and
 * 'value' (unquoted, without the quotes; 'value_len' 0 when there is no '=') and returns where
 * the next ';' or the end is. A backslash inside quotes keeps the next byte in the span. */
static const char *next_param(const char *p, const char *end, const char **name, size_t *name_len,
                              const char **value, size_t *value_len)
{
    const char *n = p;
    while (p < end && *p != '=' && *p != ';')
        p++;
    const char *n_end = p;
    trim(&n, &n_end);
    *name = n;
    *name_len = (size_t)(n_end - n);
    *value = p;
    *value_len = 0;
    if (p == end || *p == ';')
        return p;
    p++; /* '=' */
    while (p < end && is_ows(*p))
        p++;
    if (p < end && *p == '"') {
        const char *v = ++p;
        while (p < end && *p != '"')
            p += *p == '\\' && p + 1 < end ? 2 : 1;
        *value = v;
        *value_len = (size_t)(p - v);
        while (p < end && *p != ';')
            p++;
        return p;
    }
    const char *v = p;
    while (p < end && *p != ';')
        p++;
    const char *v_end = p;
    trim(&v, &v_end);
    *value = v;
    *value_len = (size_t)(v_end - v);
    return p;
}

int body_content_type(const char *header, body_format *out, char *err, size_t errlen)
{
    char q[QUOTE_MAX + 4];
    if (!header) {
        *out = BODY_JSON;
        return 0;
    }
    const char *end = header + strlen(header);
    const char *semi = memchr(header, ';', (size_t)(end - header));
    if (!semi)
        semi = end;
    const char *type = header, *type_end = semi;
    trim(&type, &type_end);
    size_t type_len = (size_t)(type_end - type);

    body_format fmt;
    if (type_len == 0 || equals_nocase(type, type_len, "application/json")) {
        fmt = BODY_JSON;
    } else if (equals_nocase(type, type_len, "application/x-ndjson") ||
               equals_nocase(type, type_len, "application/ndjson")) {
        fmt = BODY_NDJSON;
    } else {
        quote(q, sizeof(q), type, type_len);
        cdr_errf(err, errlen,
                 "content type %s not supported: use application/json or application/x-ndjson", q);
        return -1;
    }

    for (const char *p = semi; p < end;) {
        const char *name, *value;
        size_t name_len, value_len;
        p = next_param(p + 1, end, &name, &name_len, &value, &value_len);
        if (!equals_nocase(name, name_len, "charset"))
            continue;
        if (!equals_nocase(value, value_len, "utf-8") && !equals_nocase(value, value_len, "utf8")) {
            quote(q, sizeof(q), value, value_len);
            cdr_errf(err, errlen, "charset %s not supported: send UTF-8", q);
            return -1;
        }
    }
    *out = fmt;
    return 0;
}

int body_content_encoding(const char *header, body_encoding *out, char *err, size_t errlen)
{
    char q[QUOTE_MAX + 4];
    if (!header) {
        *out = BODY_ENC_IDENTITY;
        return 0;
    }
    const char *p = header, *end = header + strlen(header);
    trim(&p, &end);
    size_t n = (size_t)(end - p);
    if (n == 0 || equals_nocase(p, n, "identity")) {
        *out = BODY_ENC_IDENTITY;
    } else if (equals_nocase(p, n, "gzip") || equals_nocase(p, n, "x-gzip")) {
        *out = BODY_ENC_GZIP;
    } else if (equals_nocase(p, n, "zstd")) {
        *out = BODY_ENC_ZSTD;
    } else if (memchr(p, ',', n)) {
        quote(q, sizeof(q), p, n);
        cdr_errf(err, errlen,
                 "content encodings \"%s\" not supported: send a body compressed once, with gzip "
                 "or zstd",
                 q);
        return -1;
    } else {
        quote(q, sizeof(q), p, n);
        cdr_errf(err, errlen, "content encoding %s not supported: use gzip or zstd", q);
        return -1;
    }
    return 0;
}

/* The inflated body as it is written: 'buf' grows up to 'limit' bytes, then the inflater is
 * handed the one-byte 'probe', and any byte landing there means the body is too large. */
typedef struct inflate_out {
    cdr_buf *buf;
    size_t limit;
    size_t hint; /* the first allocation */
    char *at;    /* where the inflater writes next: into 'buf', or at 'probe' */
    char probe;
} inflate_out;

/* Points 'o->at' where the inflater may write its next bytes: the free room of the buffer below
 * the limit, grown when full, or the probe once the buffer holds 'limit' bytes. Returns the
 * room, or 0 with 'err' set when memory ran out. */
static size_t out_room(inflate_out *o, char *err, size_t errlen)
{
    cdr_buf *out = o->buf;
    if (out->len >= o->limit) {
        o->at = &o->probe;
        return 1;
    }
    size_t usable = out->cap ? out->cap - 1 : 0; /* one byte is kept for the NUL */
    if (usable > o->limit)
        usable = o->limit;
    if (out->len == usable) {
        size_t want = !out->cap ? o->hint : out->cap > SIZE_MAX / 2 ? SIZE_MAX : out->cap * 2;
        if (want < INFLATE_FIRST_CHUNK)
            want = INFLATE_FIRST_CHUNK;
        if (want > o->limit + 1)
            want = o->limit + 1;
        char *p = realloc(out->data, want);
        if (!p) {
            cdr_errf(err, errlen, "out of memory inflating the body");
            return 0;
        }
        out->data = p;
        out->cap = want;
        usable = want - 1;
    }
    o->at = out->data + out->len;
    return usable - out->len;
}

/* Takes the 'made' bytes the inflater wrote at 'o->at'. Returns false, with 'err' set, when
 * they landed in the probe: the body is larger than the limit. */
static bool out_took(inflate_out *o, size_t made, char *err, size_t errlen)
{
    if (o->at != &o->probe) {
        o->buf->len += made;
        o->buf->data[o->buf->len] = '\0';
        return true;
    }
    if (made == 0)
        return true;
    cdr_errf(err, errlen, "body exceeds %zu bytes once inflated", o->limit);
    return false;
}

/* The first allocation: the compressed size times a typical JSON ratio, within the limits. */
static size_t first_chunk(size_t in_len)
{
    return in_len < SIZE_MAX / 8 ? in_len * 8 : SIZE_MAX;
}

static body_inflate_result gunzip(const unsigned char *in, size_t len, size_t limit, cdr_buf *out,
                                  char *err, size_t errlen)
{
    const unsigned char *in_end = in + len;
    inflate_out o = {.buf = out, .limit = limit, .hint = first_chunk(len)};
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 15 + 32: a gzip or a zlib header, told apart by the stream itself. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
        cdr_errf(err, errlen, "out of memory inflating the body");
        return BODY_TOO_LARGE;
    }
    body_inflate_result rc = BODY_CORRUPT;
    zs.next_in = (Bytef *)in;
    for (;;) {
        if (zs.avail_in == 0) {
            size_t left = (size_t)(in_end - zs.next_in);
            zs.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
        }
        size_t room = out_room(&o, err, errlen);
        if (room == 0) {
            rc = BODY_TOO_LARGE;
            goto done;
        }
        zs.next_out = (Bytef *)o.at;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt avail_before = zs.avail_out;
        int zr = inflate(&zs, Z_NO_FLUSH);
        size_t made = avail_before - zs.avail_out;
        if (!out_took(&o, made, err, errlen)) {
            rc = BODY_TOO_LARGE;
            goto done;
        }
        if (zr == Z_STREAM_END) {
            size_t left = (size_t)(in_end - zs.next_in);
            if (left == 0)
                break;
            /* Another member may follow; anything else is trailing garbage. */
            if (left < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
                cdr_errf(err, errlen, "gzip body is corrupt: data after the end of the stream");
                goto done;
            }
            if (inflateReset(&zs) != Z_OK) {
                cdr_errf(err, errlen, "gzip body is corrupt");
                goto done;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR || (zr == Z_OK && made == 0 && zs.next_in == in_end)) {
            /* No progress with room to write: the input ran out before the stream ended. */
            cdr_errf(err, errlen, "gzip body is truncated");
            goto done;
        }
        if (zr == Z_MEM_ERROR) {
            cdr_errf(err, errlen, "out of memory inflating the body");
            rc = BODY_TOO_LARGE;
            goto done;
        }
        if (zr != Z_OK) {
            cdr_errf(err, errlen, "gzip body is corrupt: %s", zs.msg ? zs.msg : "bad stream");
            goto done;
        }
    }
    rc = BODY_OK;
done:
    inflateEnd(&zs);
    return rc;
}

/* The window log a zstd frame may ask for: enough for any body within 'limit'. */
static int zstd_window_log_max(size_t limit)
{
    int log = ZSTD_WINDOW_LOG_FLOOR;
    while (log < ZSTD_WINDOW_LOG_CEIL && ((size_t)1 << log) < limit)
        log++;
    return log;
}

static body_inflate_result unzstd(const unsigned char *in, size_t len, size_t limit, cdr_buf *out,
                                  char *err, size_t errlen)
{
    inflate_out o = {.buf = out, .limit = limit, .hint = first_chunk(len)};
    body_inflate_result rc = BODY_CORRUPT;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx || ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
                                                     zstd_window_log_max(limit)))) {
        cdr_errf(err, errlen, "out of memory inflating the body");
        rc = BODY_TOO_LARGE;
        goto done;
    }
    ZSTD_inBuffer zin = {in, len, 0};
    size_t zr = 1; /* 0 once a frame ended and everything it held was written */
    for (;;) {
        if (zr == 0 && zin.pos == zin.size)
            break;
        size_t room = out_room(&o, err, errlen);
        if (room == 0) {
            rc = BODY_TOO_LARGE;
            goto done;
        }
        ZSTD_outBuffer zout = {o.at, room, 0};
        size_t pos_before = zin.pos;
        zr = ZSTD_decompressStream(dctx, &zout, &zin);
        if (ZSTD_isError(zr)) {
            if (ZSTD_getErrorCode(zr) == ZSTD_error_frameParameter_windowTooLarge) {
                cdr_errf(err, errlen, "zstd body needs a window larger than %zu bytes",
                         (size_t)1 << zstd_window_log_max(limit));
                rc = BODY_TOO_LARGE;
            } else if (ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation) {
                cdr_errf(err, errlen, "out of memory inflating the body");
                rc = BODY_TOO_LARGE;
            } else {
                cdr_errf(err, errlen, "zstd body is corrupt: %s", ZSTD_getErrorName(zr));
            }
            goto done;
        }
        if (!out_took(&o, zout.pos, err, errlen)) {
            rc = BODY_TOO_LARGE;
            goto done;
        }
        if (zr != 0 && zout.pos == 0 && zin.pos == pos_before) {
            /* No progress with room to write: the input ran out inside a frame. */
            cdr_errf(err, errlen, "zstd body is truncated");
            goto done;
        }
    }
    rc = BODY_OK;
done:
    ZSTD_freeDCtx(dctx);
    return rc;
}

body_inflate_result body_inflate(body_encoding enc, const void *in, size_t len, size_t limit,
                                 cdr_buf *out, char *err, size_t errlen)
{
    cdr_buf_reset(out);
    /* A buffer that carries its own smaller limit keeps it. */
    if (out->limit && out->limit < limit)
        limit = out->limit;
    if (limit == SIZE_MAX)
        limit--; /* room for the NUL */
    switch (enc) {
    case BODY_ENC_GZIP:
        return gunzip(in, len, limit, out, err, errlen);
    case BODY_ENC_ZSTD:
        return unzstd(in, len, limit, out, err, errlen);
    case BODY_ENC_IDENTITY:
        break;
    }
    cdr_errf(err, errlen, "body is not compressed");
    return BODY_CORRUPT;
}

static bool is_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int for_each_json(const char *data, size_t len, body_item_fn fn, void *arg, char *err,
                         size_t errlen)
{
    size_t i = 0;
    while (i < len && is_json_ws(data[i]))
        i++;
    if (i == len) {
        cdr_errf(err, errlen, "body is empty");
        return -1;
    }
    json_error_t jerr;
    json_arena_enter();
    json_t *root = json_loadb(data, len, LOAD_FLAGS, &jerr);
    json_arena_leave();
    if (!root) {
        cdr_errf(err, errlen, "body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return -1;
    }
    int n = -1;
    if (json_is_object(root)) {
        if (fn(0, root, NULL, 0, NULL, arg) != 0)
            goto stopped;
        n = 1;
    } else if (json_is_array(root)) {
        size_t count = json_array_size(root);
        if (count > INT_MAX) {
            cdr_errf(err, errlen, "body holds more than %d items", INT_MAX);
            goto done;
        }
        for (size_t k = 0; k < count; k++)
            if (fn((int)k, json_array_get(root, k), NULL, 0, NULL, arg) != 0)
                goto stopped;
        n = (int)count;
    } else {
        cdr_errf(err, errlen, "body must be a CDR object or an array of CDR objects");
    }
    goto done;
stopped:
    cdr_errf(err, errlen, "stopped");
done:
    json_decref(root);
    return n;
}

static int for_each_line(const char *data, size_t len, body_item_fn fn, void *arg, char *err,
                         size_t errlen)
{
    const char *p = data, *end = data + len;
    int index = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line = p, *line_end = nl ? nl : end;
        p = nl ? nl + 1 : end;
        if (line_end > line && line_end[-1] == '\r')
            line_end--;
        const char *q = line;
        while (q < line_end && is_json_ws(*q))
            q++;
        if (q == line_end)
            continue;
        if (index == INT_MAX) {
            cdr_errf(err, errlen, "body holds more than %d items", INT_MAX);
            return -1;
        }
        size_t line_len = (size_t)(line_end - line);
        json_error_t jerr;
        json_arena_enter();
        json_t *item = json_loadb(line, line_len, LOAD_FLAGS, &jerr);
        json_arena_leave();
        int rc;
        if (item) {
            rc = fn(index, item, line, line_len, NULL, arg);
            json_decref(item);
        } else {
            char why[sizeof(jerr.text) + 48];
            snprintf(why, sizeof(why), "not valid JSON: %s (column %d)", jerr.text, jerr.column);
            rc = fn(index, NULL, line, line_len, why, arg);
        }
        if (rc != 0) {
            cdr_errf(err, errlen, "stopped");
            return -1;
        }
        index++;
    }
    return index;
}

int body_for_each_item(body_format fmt, const char *data, size_t len, body_item_fn fn, void *arg,
                       char *err, size_t errlen)
{
    static const char bom[] = "\xEF\xBB\xBF";
    if (!data)
        len = 0;
    /* RFC 8259 lets a parser ignore a byte order mark; some Windows clients send one. */
    if (len >= 3 && memcmp(data, bom, 3) == 0) {
        data += 3;
        len -= 3;
    }
    if (fmt == BODY_NDJSON)
        return for_each_line(data, len, fn, arg, err, errlen);
    return for_each_json(data, len, fn, arg, err, errlen);
}
