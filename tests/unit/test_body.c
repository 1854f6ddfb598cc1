/* test_body.c - POST bodies: content types, encodings, bounded inflation, item splitting. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "body.h"

#define MB (1024 * 1024)

/* ---- content type ---- */

static body_format type_ok(const char *header)
{
    body_format f = (body_format)-1;
    char err[256] = "";
    cr_assert_eq(body_content_type(header, &f, err, sizeof(err)), 0, "%s: %s",
                 header ? header : "(null)", err);
    return f;
}

static void type_refused(const char *header, const char *message)
{
    body_format f = BODY_NDJSON;
    char err[256] = "";
    cr_assert_eq(body_content_type(header, &f, err, sizeof(err)), -1, "%s accepted", header);
    cr_assert_str_eq(err, message);
}

Test(body, json_is_assumed_without_a_content_type)
{
    cr_assert_eq(type_ok(NULL), BODY_JSON);
    cr_assert_eq(type_ok(""), BODY_JSON);
    cr_assert_eq(type_ok("  "), BODY_JSON);
}

Test(body, json_content_types)
{
    cr_assert_eq(type_ok("application/json"), BODY_JSON);
    cr_assert_eq(type_ok("Application/JSON"), BODY_JSON);
    cr_assert_eq(type_ok("application/json; charset=utf-8"), BODY_JSON);
    cr_assert_eq(type_ok("application/json;charset=UTF-8"), BODY_JSON);
    cr_assert_eq(type_ok("application/json ;\tcharset=UTF8 "), BODY_JSON);
    cr_assert_eq(type_ok("application/json; charset=\"utf-8\""), BODY_JSON);
    cr_assert_eq(type_ok("application/json; CHARSET=utf-8; foo=bar"), BODY_JSON);
    cr_assert_eq(type_ok("application/json;"), BODY_JSON);
    cr_assert_eq(type_ok("application/json; version=\"1;2\"; charset=utf-8"), BODY_JSON);
}

Test(body, ndjson_content_types)
{
    cr_assert_eq(type_ok("application/x-ndjson"), BODY_NDJSON);
    cr_assert_eq(type_ok("application/ndjson"), BODY_NDJSON);
    cr_assert_eq(type_ok("APPLICATION/X-NDJSON; charset=utf-8"), BODY_NDJSON);
    cr_assert_eq(type_ok(" application/ndjson ;charset=UTF-8"), BODY_NDJSON);
}

Test(body, other_content_types_are_refused_by_name)
{
    type_refused("text/plain", "content type text/plain not supported: use application/json or "
                               "application/x-ndjson");
    type_refused("application/xml; charset=utf-8",
                 "content type application/xml not supported: use application/json or "
                 "application/x-ndjson");
    type_refused("application/jsonx",
                 "content type application/jsonx not supported: use application/json or "
                 "application/x-ndjson");
    type_refused("multipart/form-data; boundary=x",
                 "content type multipart/form-data not supported: use application/json or "
                 "application/x-ndjson");
}

Test(body, other_charsets_are_refused_by_name)
{
    type_refused("application/json; charset=latin1", "charset latin1 not supported: send UTF-8");
    type_refused("application/x-ndjson; charset=\"ISO-8859-1\"",
                 "charset ISO-8859-1 not supported: send UTF-8");
    type_refused("application/json; charset=utf-16", "charset utf-16 not supported: send UTF-8");
    type_refused("application/json; charset=", "charset  not supported: send UTF-8");
}

Test(body, a_hostile_type_is_quoted_printable_and_short)
{
    type_refused("text/\x01pl\xC3\xA4in",
                 "content type text/?pl??in not supported: use application/json or "
                 "application/x-ndjson");
    char header[300];
    memset(header, 'a', sizeof(header) - 1);
    header[sizeof(header) - 1] = '\0';
    body_format f;
    char err[256];
    cr_assert_eq(body_content_type(header, &f, err, sizeof(err)), -1);
    cr_assert_lt(strlen(err), 160, "%s", err);
    cr_assert_not_null(strstr(err, "aaa... not supported"), "%s", err);
}

Test(body, a_short_error_buffer_is_not_overrun)
{
    body_format f;
    char err[8] = "";
    cr_assert_eq(body_content_type("text/plain", &f, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "content");
    cr_assert_eq(body_content_type("text/plain", &f, NULL, 0), -1);
}

/* ---- content encoding ---- */

static body_encoding enc_ok(const char *header)
{
    body_encoding e = (body_encoding)-1;
    char err[256] = "";
    cr_assert_eq(body_content_encoding(header, &e, err, sizeof(err)), 0, "%s: %s",
                 header ? header : "(null)", err);
    return e;
}

static void enc_refused(const char *header, const char *message)
{
    body_encoding e;
    char err[256] = "";
    cr_assert_eq(body_content_encoding(header, &e, err, sizeof(err)), -1, "%s accepted", header);
    cr_assert_str_eq(err, message);
}

Test(body, encodings)
{
    cr_assert_eq(enc_ok(NULL), BODY_ENC_IDENTITY);
    cr_assert_eq(enc_ok(""), BODY_ENC_IDENTITY);
    cr_assert_eq(enc_ok("identity"), BODY_ENC_IDENTITY);
    cr_assert_eq(enc_ok("Identity"), BODY_ENC_IDENTITY);
    cr_assert_eq(enc_ok("gzip"), BODY_ENC_GZIP);
    cr_assert_eq(enc_ok(" GZIP "), BODY_ENC_GZIP);
    cr_assert_eq(enc_ok("x-gzip"), BODY_ENC_GZIP);
    cr_assert_eq(enc_ok("zstd"), BODY_ENC_ZSTD);
    cr_assert_eq(enc_ok("ZStd"), BODY_ENC_ZSTD);
}

Test(body, unknown_encodings_are_refused_by_name)
{
    enc_refused("br", "content encoding br not supported: use gzip or zstd");
    enc_refused("deflate", "content encoding deflate not supported: use gzip or zstd");
    enc_refused("compress", "content encoding compress not supported: use gzip or zstd");
}

Test(body, lists_of_encodings_are_refused)
{
    enc_refused("gzip, zstd", "content encodings \"gzip, zstd\" not supported: send a body "
                              "compressed once, with gzip or zstd");
    enc_refused("gzip,gzip", "content encodings \"gzip,gzip\" not supported: send a body "
                             "compressed once, with gzip or zstd");
    enc_refused("identity, gzip", "content encodings \"identity, gzip\" not supported: send a "
                                  "body compressed once, with gzip or zstd");
}

/* ---- compressing test data ---- */

/* Room made in 'out' before each compressor call. */
#define COMPRESS_STEP (64 * 1024)

/* gzip (RFC 1952) of 'n' bytes of 'p', or of 'n' zero bytes when 'p' is NULL, fed in 1 MB
 * pieces so that a large input never has to exist in memory. */
static unsigned char *gzip_of(const void *p, size_t n, size_t *out_len)
{
    static const unsigned char zeros[MB];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    cr_assert_eq(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    cdr_buf out = {0};
    size_t done = 0;
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
        if (zs.avail_in == 0 && done < n) {
            size_t piece = n - done > MB ? MB : n - done;
            zs.next_in = (Bytef *)(p ? (const unsigned char *)p + done : zeros);
            zs.avail_in = (uInt)piece;
            done += piece;
        }
        cr_assert_eq(cdr_buf_reserve(&out, COMPRESS_STEP), 0);
        zs.next_out = (Bytef *)out.data + out.len;
        zs.avail_out = (uInt)(out.cap - 1 - out.len);
        uInt before = zs.avail_out;
        zr = deflate(&zs, done == n ? Z_FINISH : Z_NO_FLUSH);
        cr_assert(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
        out.len += before - zs.avail_out;
    }
    deflateEnd(&zs);
    *out_len = out.len;
    return (unsigned char *)cdr_buf_steal(&out);
}

/* A zstd frame of 'n' bytes of 'p', or of 'n' zeros when 'p' is NULL, declaring its size. */
static unsigned char *zstd_of(const void *p, size_t n, int checksum, size_t *out_len)
{
    static const unsigned char zeros[MB];
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    cr_assert_not_null(cctx);
    cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum)));
    cr_assert(!ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, n)));
    cdr_buf out = {0};
    ZSTD_inBuffer in = {zeros, 0, 0};
    size_t done = 0, left = 1;
    while (done < n || in.pos < in.size || left > 0) {
        if (in.pos == in.size && done < n) {
            size_t piece = n - done > MB ? MB : n - done;
            in = (ZSTD_inBuffer){p ? (const unsigned char *)p + done : zeros, piece, 0};
            done += piece;
        }
        cr_assert_eq(cdr_buf_reserve(&out, COMPRESS_STEP), 0);
        ZSTD_outBuffer o = {out.data + out.len, out.cap - 1 - out.len, 0};
        left = ZSTD_compressStream2(cctx, &o, &in, done == n ? ZSTD_e_end : ZSTD_e_continue);
        cr_assert(!ZSTD_isError(left), "%s", ZSTD_getErrorName(left));
        out.len += o.pos;
    }
    ZSTD_freeCCtx(cctx);
    *out_len = out.len;
    return (unsigned char *)cdr_buf_steal(&out);
}

/* About 'n' bytes of NDJSON CDR-like lines, compressible the way real bodies are. */
static char *sample_text(size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    size_t len = 0;
    for (int i = 0; len < n; i++) {
        char line[160];
        int k = snprintf(line, sizeof(line),
                         "{\"call_id\":\"c%d@pbx\",\"billsec\":%d,\"disposition\":\"ANSWERED\"}\n",
                         i, (i * 7919) % 3600);
        size_t take = (size_t)k < n - len ? (size_t)k : n - len;
        memcpy(s + len, line, take);
        len += take;
    }
    s[n] = '\0';
    return s;
}

static body_inflate_result inflate_to(body_encoding enc, const void *in, size_t len, size_t limit,
                                      cdr_buf *out, char *err)
{
    err[0] = '\0';
    return body_inflate(enc, in, len, limit, out, err, 256);
}

/* ---- inflation ---- */

static void round_trip(body_encoding enc, size_t n)
{
    char *text = sample_text(n);
    size_t zlen;
    unsigned char *z = enc == BODY_ENC_GZIP ? gzip_of(text, n, &zlen) : zstd_of(text, n, 1, &zlen);
    cdr_buf out = {0};
    char err[256];
    cr_assert_eq(inflate_to(enc, z, zlen, 16 * MB, &out, err), BODY_OK, "%s", err);
    cr_assert_eq(out.len, n);
    cr_assert(memcmp(out.data, text, n) == 0);
    cr_assert_eq(out.data[n], '\0');
    cdr_buf_free(&out);
    free(z);
    free(text);
}

Test(body, gzip_round_trip)
{
    round_trip(BODY_ENC_GZIP, 1);
    round_trip(BODY_ENC_GZIP, 700);
    round_trip(BODY_ENC_GZIP, 3 * MB + 17);
}

Test(body, zstd_round_trip)
{
    round_trip(BODY_ENC_ZSTD, 1);
    round_trip(BODY_ENC_ZSTD, 700);
    round_trip(BODY_ENC_ZSTD, 3 * MB + 17);
}

Test(body, empty_streams_inflate_to_nothing)
{
    cdr_buf out = {0};
    char err[256];
    size_t zlen;
    unsigned char *z = gzip_of("", 0, &zlen);
    cr_assert_eq(inflate_to(BODY_ENC_GZIP, z, zlen, MB, &out, err), BODY_OK, "%s", err);
    cr_assert_eq(out.len, 0);
    free(z);
    z = zstd_of("", 0, 0, &zlen);
    cr_assert_eq(inflate_to(BODY_ENC_ZSTD, z, zlen, MB, &out, err), BODY_OK, "%s", err);
    cr_assert_eq(out.len, 0);
    free(z);
    cdr_buf_free(&out);
}

Test(body, zlib_wrapped_deflate_is_accepted_as_gzip)
{
    const char text[] = "{\"call_id\": \"zlib\"}";
    unsigned char z[128];
    uLongf zlen = sizeof(z);
    cr_assert_eq(compress2(z, &zlen, (const Bytef *)text, sizeof(text) - 1, 6), Z_OK);
    cdr_buf out = {0};
    char err[256];
    cr_assert_eq(inflate_to(BODY_ENC_GZIP, z, zlen, MB, &out, err), BODY_OK, "%s", err);
    cr_assert_str_eq(out.data, text);
    cdr_buf_free(&out);
}

/* Two compressed pieces glued together, as a client appending to a compressed log sends. */
static unsigned char *concat(const unsigned char *a, size_t alen, const unsigned char *b,
                             size_t blen)
{
    unsigned char *c = malloc(alen + blen);
    cr_assert_not_null(c);
    memcpy(c, a, alen);
    memcpy(c + alen, b, blen);
    return c;
}

Test(body, concatenated_members_and_frames_inflate_to_their_concatenation)
{
    const char a[] = "{\"call_id\": \"a\"}\n", b[] = "{\"call_id\": \"b\"}\n";
    for (int i = 0; i < 2; i++) {
        body_encoding enc = i ? BODY_ENC_ZSTD : BODY_ENC_GZIP;
        size_t alen, blen;
        unsigned char *za = i ? zstd_of(a, strlen(a), 1, &alen) : gzip_of(a, strlen(a), &alen);
        unsigned char *zb = i ? zstd_of(b, strlen(b), 0, &blen) : gzip_of(b, strlen(b), &blen);
        unsigned char *z = concat(za, alen, zb, blen);
        cdr_buf out = {0};
        char err[256];
        cr_assert_eq(inflate_to(enc, z, alen + blen, MB, &out, err), BODY_OK, "%s", err);
        cr_assert_str_eq(out.data, "{\"call_id\": \"a\"}\n{\"call_id\": \"b\"}\n");
        cdr_buf_free(&out);
        free(z);
        free(zb);
        free(za);
    }
}

Test(body, a_body_of_exactly_the_limit_is_accepted_one_byte_more_is_not)
{
    size_t n = 200000;
    char *text = sample_text(n);
    for (int i = 0; i < 2; i++) {
        body_encoding enc = i ? BODY_ENC_ZSTD : BODY_ENC_GZIP;
        size_t zlen;
        unsigned char *z = i ? zstd_of(text, n, 1, &zlen) : gzip_of(text, n, &zlen);
        cdr_buf out = {0};
        char err[256];
        cr_assert_eq(inflate_to(enc, z, zlen, n, &out, err), BODY_OK, "%s", err);
        cr_assert_eq(out.len, n);
        cr_assert(memcmp(out.data, text, n) == 0);
        cr_assert_leq(out.cap, n + 1);
        cr_assert_eq(inflate_to(enc, z, zlen, n - 1, &out, err), BODY_TOO_LARGE);
        cr_assert_str_eq(err, "body exceeds 199999 bytes once inflated");
        cr_assert_leq(out.len, n - 1);
        cdr_buf_free(&out);
        free(z);
    }
    free(text);
}

Test(body, a_reused_buffer_holds_only_the_new_body)
{
    size_t alen, blen;
    unsigned char *za = gzip_of("first body, longer", 18, &alen);
    unsigned char *zb = zstd_of("second", 6, 0, &blen);
    cdr_buf out = {0};
    char err[256];
    cr_assert_eq(inflate_to(BODY_ENC_GZIP, za, alen, MB, &out, err), BODY_OK, "%s", err);
    cr_assert_eq(inflate_to(BODY_ENC_ZSTD, zb, blen, MB, &out, err), BODY_OK, "%s", err);
    cr_assert_str_eq(out.data, "second");
    cr_assert_eq(out.len, 6);
    cdr_buf_free(&out);
    free(zb);
    free(za);
}

/* 100 MB of zeros compress to about 100 KB (gzip) or a few KB (zstd, whose frame even declares
 * the 100 MB): with a 1 MB limit the inflater must stop at 1 MB without ever holding more. */
static void bomb(body_encoding enc)
{
    size_t n = 100 * (size_t)MB, zlen;
    unsigned char *z = enc == BODY_ENC_GZIP ? gzip_of(NULL, n, &zlen) : zstd_of(NULL, n, 0, &zlen);
    cr_assert_lt(zlen, 200 * 1024);
    cdr_buf out = {0};
    char err[256];
    cr_assert_eq(inflate_to(enc, z, zlen, MB, &out, err), BODY_TOO_LARGE, "%s", err);
    cr_assert_str_eq(err, "body exceeds 1048576 bytes once inflated");
    cr_assert_leq(out.len, MB);
    cr_assert_leq(out.cap, MB + 1, "inflating grew the buffer to %zu bytes", out.cap);
    cdr_buf_free(&out);
    free(z);
}

Test(body, gzip_bomb_is_refused_within_the_limit)
{
    bomb(BODY_ENC_GZIP);
}

Test(body, zstd_bomb_is_refused_within_the_limit)
{
    bomb(BODY_ENC_ZSTD);
}

/* A hand-made zstd frame holding "{}" in one raw block, declaring a window of 2^'window_log'
 * bytes and no content size. */
static size_t zstd_frame_with_window(unsigned char *f, int window_log)
{
    static const unsigned char head[] = {0x28, 0xB5, 0x2F, 0xFD, 0x00};
    memcpy(f, head, sizeof(head));
    f[5] = (unsigned char)((window_log - 10) << 3);
    f[6] = (2 << 3) | 1; /* last block, raw, 2 bytes */
    f[7] = 0;
    f[8] = 0;
    f[9] = '{';
    f[10] = '}';
    return 11;
}

Test(body, zstd_frames_asking_for_a_huge_window_are_refused)
{
    unsigned char f[16];
    cdr_buf out = {0};
    char err[256];
    size_t n = zstd_frame_with_window(f, 23);
    cr_assert_eq(inflate_to(BODY_ENC_ZSTD, f, n, MB, &out, err), BODY_OK, "%s", err);
    cr_assert_str_eq(out.data, "{}");
    n = zstd_frame_with_window(f, 27);
    cr_assert_eq(inflate_to(BODY_ENC_ZSTD, f, n, MB, &out, err), BODY_TOO_LARGE);
    cr_assert_str_eq(err, "zstd body needs a window larger than 8388608 bytes");
    cr_assert_eq(inflate_to(BODY_ENC_ZSTD, f, n, 128 * MB, &out, err), BODY_OK, "%s", err);
    cr_assert_str_eq(out.data, "{}");
    cdr_buf_free(&out);
}

static void corrupt(body_encoding enc, const void *in, size_t len, const char *message)
{
    cdr_buf out = {0};
    char err[256];
    cr_assert_eq(inflate_to(enc, in, len, MB, &out, err), BODY_CORRUPT, "accepted: %s", err);
    cr_assert_not_null(strstr(err, message), "%s", err);
    cdr_buf_free(&out);
}

Test(body, truncated_streams_are_corrupt)
{
    size_t n = 50000, glen, zlen;
    char *text = sample_text(n);
    unsigned char *g = gzip_of(text, n, &glen);
    unsigned char *z = zstd_of(text, n, 1, &zlen);
    corrupt(BODY_ENC_GZIP, g, glen - 1, "gzip body is truncated");
    corrupt(BODY_ENC_GZIP, g, glen / 2, "gzip body is truncated");
    corrupt(BODY_ENC_GZIP, g, 5, "gzip body is truncated");
    corrupt(BODY_ENC_GZIP, g, 0, "gzip body is truncated");
    corrupt(BODY_ENC_ZSTD, z, zlen - 1, "zstd body is truncated");
    corrupt(BODY_ENC_ZSTD, z, zlen / 2, "zstd body is truncated");
    corrupt(BODY_ENC_ZSTD, z, 3, "zstd body is truncated");
    corrupt(BODY_ENC_ZSTD, z, 0, "zstd body is truncated");
    free(z);
    free(g);
    free(text);
}

Test(body, garbage_and_damaged_streams_are_corrupt)
{
    const char junk[] = "{\"not\": \"compressed\"}";
    corrupt(BODY_ENC_GZIP, junk, strlen(junk), "gzip body is corrupt");
    corrupt(BODY_ENC_ZSTD, junk, strlen(junk), "zstd body is corrupt");

    size_t n = 50000, glen, zlen;
    char *text = sample_text(n);
    unsigned char *g = gzip_of(text, n, &glen);
    unsigned char *z = zstd_of(text, n, 1, &zlen);
    g[glen - 5] ^= 0xFF; /* the CRC-32 of the member */
    corrupt(BODY_ENC_GZIP, g, glen, "gzip body is corrupt");
    z[zlen - 1] ^= 0xFF; /* the checksum of the frame */
    corrupt(BODY_ENC_ZSTD, z, zlen, "zstd body is corrupt");
    free(z);
    free(g);
    free(text);
}

Test(body, trailing_bytes_after_a_stream_are_corrupt)
{
    const char text[] = "{\"call_id\": \"a\"}";
    size_t glen, zlen;
    unsigned char *g = gzip_of(text, strlen(text), &glen);
    unsigned char *z = zstd_of(text, strlen(text), 0, &zlen);
    unsigned char *gj = concat(g, glen, (const unsigned char *)"xyz", 3);
    unsigned char *zj = concat(z, zlen, (const unsigned char *)"xyz!", 4);
    corrupt(BODY_ENC_GZIP, gj, glen + 3, "gzip body is corrupt: data after the end of the stream");
    corrupt(BODY_ENC_GZIP, gj, glen + 1, "gzip body is corrupt: data after the end of the stream");
    corrupt(BODY_ENC_ZSTD, zj, zlen + 4, "zstd body is corrupt");
    corrupt(BODY_ENC_ZSTD, zj, zlen + 2, "zstd body is ");
    free(zj);
    free(gj);
    free(z);
    free(g);
}

/* ---- items ---- */

#define MAX_CALLS 16

typedef struct call {
    int index;
    char *item; /* compact, sorted JSON; NULL when the callback got none */
    char *raw;  /* NULL when the callback got none */
    size_t raw_len;
    char *parse_error;
} call;

typedef struct recorder {
    call calls[MAX_CALLS];
    int n;
    int stop_at; /* the call index to answer -1 at, or -1 */
} recorder;

static int record(int index, json_t *item, const char *raw, size_t raw_len, const char *parse_error,
                  void *arg)
{
    recorder *r = arg;
    cr_assert_lt(r->n, MAX_CALLS);
    call *c = &r->calls[r->n];
    c->index = index;
    c->item = item ? json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    c->raw = raw ? strndup(raw, raw_len) : NULL;
    c->raw_len = raw_len;
    c->parse_error = parse_error ? strdup(parse_error) : NULL;
    return r->n++ == r->stop_at ? -1 : 0;
}

static void recorder_free(recorder *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->calls[i].item);
        free(r->calls[i].raw);
        free(r->calls[i].parse_error);
    }
}

static int split(body_format fmt, const char *body, recorder *r, char *err)
{
    memset(r, 0, sizeof(*r));
    r->stop_at = -1;
    err[0] = '\0';
    return body_for_each_item(fmt, body, strlen(body), record, r, err, 256);
}

static void assert_call(const recorder *r, int i, int index, const char *item, const char *raw)
{
    const call *c = &r->calls[i];
    cr_assert_eq(c->index, index, "call %d", i);
    if (item)
        cr_assert_str_eq(c->item, item, "call %d", i);
    else
        cr_assert_null(c->item, "call %d", i);
    if (raw) {
        cr_assert_str_eq(c->raw, raw, "call %d", i);
        cr_assert_eq(c->raw_len, strlen(raw), "call %d", i);
    } else {
        cr_assert_null(c->raw, "call %d", i);
    }
    if (item)
        cr_assert_null(c->parse_error, "call %d", i);
}

/* What one callback should receive: the item as compact, sorted JSON and the raw line (NULL:
 * none). */
typedef struct want_call {
    const char *item, *raw;
} want_call;

/* Splits 'body' into 'r' (recorder_free) and asserts that the callback received exactly the
 * 'n' calls of 'want', in order and numbered from 0. */
static void expect_split(body_format fmt, const char *body, const want_call *want, size_t n,
                         recorder *r)
{
    char err[256];
    cr_assert_eq(split(fmt, body, r, err), (int)n, "%s", err);
    cr_assert_eq(r->n, (int)n);
    for (int i = 0; i < r->n; i++)
        assert_call(r, i, i, want[i].item, want[i].raw);
}

Test(body, a_json_object_is_one_item)
{
    static const want_call want[] = {{"{\"call_id\":\"a\",\"n\":1}", NULL}};
    recorder r;
    expect_split(BODY_JSON, " {\"call_id\": \"a\", \"n\": 1}\n", want, CDR_ARRAY_LEN(want), &r);
    recorder_free(&r);
}

Test(body, a_json_array_is_its_elements_in_order)
{
    static const want_call want[] = {{"{\"n\":1}", NULL}, {"{\"n\":2}", NULL}, {"3", NULL},
                                     {"\"x\"", NULL},     {"[]", NULL},        {"{\"n\":4}", NULL}};
    recorder r;
    expect_split(BODY_JSON, "[{\"n\": 1}, {\"n\": 2}, 3, \"x\", [], {\"n\": 4}]", want,
                 CDR_ARRAY_LEN(want), &r);
    recorder_free(&r);
}

Test(body, an_empty_array_holds_no_item)
{
    recorder r;
    char err[256];
    cr_assert_eq(split(BODY_JSON, " [ ] ", &r, err), 0, "%s", err);
    cr_assert_eq(r.n, 0);
}

Test(body, a_json_scalar_is_refused)
{
    static const char *const bodies[] = {"42", "\"cdr\"", "null", "true", " 1.5 "};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        recorder r;
        char err[256];
        cr_assert_eq(split(BODY_JSON, bodies[i], &r, err), -1, "%s", bodies[i]);
        cr_assert_str_eq(err, "body must be a CDR object or an array of CDR objects");
        cr_assert_eq(r.n, 0);
    }
}

Test(body, malformed_json_names_line_and_column)
{
    recorder r;
    char err[256];
    cr_assert_eq(split(BODY_JSON, "[\n  {\"n\": 1},\n  {\"n\": }\n]", &r, err), -1);
    cr_assert_str_eq(err, "body is not valid JSON: unexpected token near '}' (line 3, column 9)");
    cr_assert_eq(r.n, 0);
    cr_assert_eq(split(BODY_JSON, "{\"n\": 1} {\"n\": 2}", &r, err), -1);
    cr_assert_str_eq(err,
                     "body is not valid JSON: end of file expected near '{' (line 1, column 10)");
    cr_assert_eq(split(BODY_JSON, "[{\"n\": 1}", &r, err), -1);
    cr_assert_not_null(strstr(err, "body is not valid JSON: "), "%s", err);
    cr_assert_eq(r.n, 0);
}

Test(body, an_empty_json_body_is_refused)
{
    recorder r;
    char err[256];
    cr_assert_eq(split(BODY_JSON, "", &r, err), -1);
    cr_assert_str_eq(err, "body is empty");
    cr_assert_eq(split(BODY_JSON, " \r\n\t", &r, err), -1);
    cr_assert_str_eq(err, "body is empty");
    cr_assert_eq(body_for_each_item(BODY_JSON, NULL, 0, record, &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "body is empty");
}

Test(body, a_byte_order_mark_is_ignored)
{
    static const want_call json[] = {{"{\"n\":1}", NULL}};
    static const want_call nd[] = {{"{\"n\":1}", "{\"n\": 1}"}, {"{\"n\":2}", "{\"n\": 2}"}};
    recorder r;
    expect_split(BODY_JSON, "\xEF\xBB\xBF{\"n\": 1}", json, CDR_ARRAY_LEN(json), &r);
    recorder_free(&r);
    expect_split(BODY_NDJSON, "\xEF\xBB\xBF{\"n\": 1}\n{\"n\": 2}", nd, CDR_ARRAY_LEN(nd), &r);
    recorder_free(&r);
}

Test(body, ndjson_lines_skip_blanks_and_accept_crlf)
{
    static const want_call want[] = {{"{\"n\":1}", "{\"n\": 1}"},
                                     {"{\"n\":2}", "{\"n\": 2}"},
                                     {"{\"n\":3}", "  {\"n\": 3} "},
                                     {"{\"n\":4}", "{\"n\":4}"}};
    recorder r;
    expect_split(BODY_NDJSON, "\n{\"n\": 1}\n\n   \n{\"n\": 2}\r\n\t\r\n  {\"n\": 3} \r\n{\"n\":4}",
                 want, CDR_ARRAY_LEN(want), &r);
    recorder_free(&r);
}

Test(body, a_bad_ndjson_line_is_reported_and_the_others_delivered)
{
    /* "7" is valid JSON: the CDR validation says it is no object. */
    static const want_call want[] = {{"{\"n\":1}", "{\"n\": 1}"},
                                     {NULL, "{\"n\": "},
                                     {NULL, "[1,"},
                                     {"{\"n\":3}", "{\"n\": 3}"},
                                     {"7", "7"}};
    recorder r;
    expect_split(BODY_NDJSON, "{\"n\": 1}\n\n{\"n\": \r\n[1,\n{\"n\": 3}\n7\n", want,
                 CDR_ARRAY_LEN(want), &r);
    cr_assert_str_eq(r.calls[1].parse_error,
                     "not valid JSON: unexpected token near end of file (column 6)");
    cr_assert_not_null(strstr(r.calls[2].parse_error, "not valid JSON: "));
    recorder_free(&r);
}

Test(body, two_values_on_one_ndjson_line_are_a_bad_line)
{
    static const want_call want[] = {{NULL, "{\"n\": 1} {\"n\": 2}"}};
    recorder r;
    expect_split(BODY_NDJSON, "{\"n\": 1} {\"n\": 2}\n", want, CDR_ARRAY_LEN(want), &r);
    cr_assert_not_null(strstr(r.calls[0].parse_error, "end of file expected"));
    recorder_free(&r);
}

Test(body, blank_ndjson_holds_no_item)
{
    recorder r;
    char err[256];
    cr_assert_eq(split(BODY_NDJSON, "", &r, err), 0, "%s", err);
    cr_assert_eq(split(BODY_NDJSON, "\n\r\n \t \n\n", &r, err), 0, "%s", err);
    cr_assert_eq(r.n, 0);
}

Test(body, the_callback_stops_the_walk)
{
    recorder r;
    char err[256];
    memset(&r, 0, sizeof(r));
    r.stop_at = 1;
    const char *json = "[{}, {}, {}]";
    cr_assert_eq(body_for_each_item(BODY_JSON, json, strlen(json), record, &r, err, sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "stopped");
    cr_assert_eq(r.n, 2);
    recorder_free(&r);

    memset(&r, 0, sizeof(r));
    r.stop_at = 0;
    json = "{}";
    cr_assert_eq(body_for_each_item(BODY_JSON, json, strlen(json), record, &r, err, sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "stopped");
    recorder_free(&r);

    memset(&r, 0, sizeof(r));
    r.stop_at = 1;
    const char *nd = "{}\nnot json\n{}\n";
    cr_assert_eq(body_for_each_item(BODY_NDJSON, nd, strlen(nd), record, &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "stopped");
    cr_assert_eq(r.n, 2);
    cr_assert_null(r.calls[1].item);
    recorder_free(&r);
}

typedef struct counts {
    int items, bad, next_index;
} counts;

static int count_item(int index, json_t *item, const char *raw, size_t raw_len,
                      const char *parse_error, void *arg)
{
    counts *c = arg;
    cr_assert_eq(index, c->next_index++);
    if (item)
        c->items++;
    else
        c->bad++;
    return 0;
}

Test(body, an_ndjson_body_inflated_from_gzip_splits_into_its_lines)
{
    size_t n = 100000, zlen;
    char *text = sample_text(n);
    unsigned char *z = gzip_of(text, n, &zlen);
    cdr_buf out = {0};
    char err[256];
    cr_assert_eq(inflate_to(BODY_ENC_GZIP, z, zlen, MB, &out, err), BODY_OK, "%s", err);
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    /* sample_text cuts its last line mid-object: one more item, reported as not JSON. */
    counts c = {0};
    cr_assert_eq(
        body_for_each_item(BODY_NDJSON, out.data, out.len, count_item, &c, err, sizeof(err)),
        lines + 1, "%s", err);
    cr_assert_eq(c.items, lines);
    cr_assert_eq(c.bad, 1);
    cdr_buf_free(&out);
    free(z);
    free(text);
}
