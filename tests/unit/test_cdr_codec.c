/* test_cdr_codec.c - stream entry v1: exact COPY rows, escaping, zstd framing, row splitting. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cdr_codec.h"

#define US TIMEFMT_US_PER_SEC
/* 2025-10-30T09:12:00Z */
#define T0 (INT64_C(1761815520) * US)

static cdr_str S(const char *s)
{
    return (cdr_str){s, strlen(s)};
}

/* A record with every kind of column: text that needs escaping, absent fields, fractions. */
static void known_record(cdr_record *r, json_t **meta)
{
    memset(r, 0, sizeof(*r));
    strcpy(r->tenant_id, "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b");
    strcpy(r->store_id, "11111111-2222-4333-8444-555555555555");
    strcpy(r->sip_domain, "tenanta.edvoip.it");
    r->store_name = S("Roma\tCentro\\1\n\r");
    r->call_id = S("c\\all\t1\n2\r");
    r->direction = CDR_DIR_OUT;
    r->from_uri = S("+3906123");
    r->to_uri = S("100");
    r->ext_number = S("100");
    r->start_ts = T0;
    r->has_answer = true;
    r->answer_ts = T0 + 5 * US + 250000;
    r->end_ts = T0 + 133 * US;
    r->billsec = 128;
    r->disposition = CDR_DISP_ANSWERED;
    r->has_mos = true;
    r->mos = 4.1;
    r->has_loss = true;
    r->loss_pct = 0.25;
    *meta = json_loads("{\"a\": \"x\\ny\\\\z\", \"b\": 1.5}", 0, NULL);
    cr_assert_not_null(*meta);
    r->meta = *meta;
}

static const char GOLDEN_ROW[] = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b\t"
                                 "11111111-2222-4333-8444-555555555555\t"
                                 "Roma\\tCentro\\\\1\\n\\r\t"
                                 "tenanta.edvoip.it\t"
                                 "c\\\\all\\t1\\n2\\r\t"
                                 "out\t"
                                 "+3906123\t"
                                 "100\t"
                                 "\\N\t"
                                 "100\t"
                                 "\\N\t"
                                 "2025-10-30 09:12:00+00\t"
                                 "2025-10-30 09:12:05.250000+00\t"
                                 "2025-10-30 09:14:13+00\t"
                                 "128\t"
                                 "ANSWERED\t"
                                 "\\N\t"
                                 "4.1\t"
                                 "\\N\t"
                                 "0.25\t"
                                 "{\"a\":\"x\\\\ny\\\\\\\\z\",\"b\":1.5}\t"
                                 "2025-10-30 09:20:00+00\n";

Test(cdr_codec, cdr_row_golden)
{
    cdr_record r;
    json_t *meta;
    known_record(&r, &meta);
    cdr_buf b = {0};
    cr_assert_eq(cdr_codec_append_cdr(&b, &r, T0 + 480 * US), 0);
    cr_assert_str_eq(b.data, GOLDEN_ROW);
    cr_assert_eq(b.len, strlen(GOLDEN_ROW));

    /* Rows accumulate. */
    cr_assert_eq(cdr_codec_append_cdr(&b, &r, T0 + 480 * US), 0);
    cr_assert_eq(b.len, 2 * strlen(GOLDEN_ROW));
    cdr_buf_free(&b);
    json_decref(meta);
}

Test(cdr_codec, cdr_row_round_trip)
{
    cdr_record r;
    json_t *meta;
    known_record(&r, &meta);
    cdr_buf b = {0}, scratch = {0};
    cr_assert_eq(cdr_codec_append_cdr(&b, &r, T0 + 480 * US), 0);
    cr_assert_eq(b.data[b.len - 1], '\n');

    const char *f[CDR_CODEC_CDR_NCOLS + 1];
    cr_assert_eq(cdr_codec_split_row(b.data, b.len - 1, &scratch, f, CDR_CODEC_CDR_NCOLS + 1),
                 CDR_CODEC_CDR_NCOLS);
    const char *want[CDR_CODEC_CDR_NCOLS] = {
        "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b",
        "11111111-2222-4333-8444-555555555555",
        "Roma\tCentro\\1\n\r",
        "tenanta.edvoip.it",
        "c\\all\t1\n2\r",
        "out",
        "+3906123",
        "100",
        NULL,
        "100",
        NULL,
        "2025-10-30 09:12:00+00",
        "2025-10-30 09:12:05.250000+00",
        "2025-10-30 09:14:13+00",
        "128",
        "ANSWERED",
        NULL,
        "4.1",
        NULL,
        "0.25",
        NULL, /* meta_json: compared as JSON below */
        "2025-10-30 09:20:00+00",
    };
    for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++) {
        if (i == 20)
            continue;
        if (!want[i])
            cr_expect_null(f[i], "column %d", i);
        else
            cr_expect_str_eq(f[i], want[i], "column %d", i);
    }
    json_t *back = json_loads(f[20], 0, NULL);
    cr_assert_not_null(back, "meta_json %s", f[20]);
    cr_expect(json_equal(back, meta));
    cr_expect_eq(strtod(f[17], NULL), r.mos);
    cr_expect_eq(strtod(f[19], NULL), r.loss_pct);
    json_decref(back);
    cdr_buf_free(&b);
    cdr_buf_free(&scratch);
    json_decref(meta);
}

Test(cdr_codec, numbers_print_short_and_exact)
{
    static const double values[] = {4.1, 1.0, 5.0, 3.999, 0.1 + 0.2, 12.345678, 9999.5, 0.0};
    static const char *const want[] = {"4.1", "1", "5", "3.999", "0.3", "12.345678", "9999.5", "0"};
    cdr_record r;
    json_t *meta;
    cdr_buf b = {0}, scratch = {0};
    for (size_t i = 0; i < CDR_ARRAY_LEN(values); i++) {
        known_record(&r, &meta);
        r.mos = values[i];
        cdr_buf_reset(&b);
        cr_assert_eq(cdr_codec_append_cdr(&b, &r, T0), 0);
        const char *f[CDR_CODEC_CDR_NCOLS];
        cr_assert_eq(cdr_codec_split_row(b.data, b.len - 1, &scratch, f, CDR_CODEC_CDR_NCOLS),
                     CDR_CODEC_CDR_NCOLS);
        cr_expect_str_eq(f[17], want[i]);
        json_decref(meta);
    }
    cdr_buf_free(&b);
    cdr_buf_free(&scratch);
}

Test(cdr_codec, failed_append_leaves_buffer_unchanged)
{
    cdr_record r;
    json_t *meta;
    known_record(&r, &meta);
    cdr_buf b;
    cdr_buf_init(&b, 64);
    cr_assert_eq(cdr_buf_append_str(&b, "kept"), 0);
    cr_assert_eq(cdr_codec_append_cdr(&b, &r, T0), -1);
    cr_assert_eq(b.len, 4);
    cr_assert_str_eq(b.data, "kept");
    cdr_reject rej = {.received_at = T0,
                      .source = "ingest",
                      .reason = "x",
                      .raw = "{}",
                      .raw_len = 2,
                      .call_id = "0123456789012345678901234567890123456789"};
    cr_assert_eq(cdr_codec_append_reject(&b, &rej), -1);
    cr_assert_str_eq(b.data, "kept");
    cdr_buf_free(&b);
    json_decref(meta);
}

Test(cdr_codec, append_escaped)
{
    cdr_buf b = {0};
    cr_assert_eq(cdr_codec_append_escaped(&b, "plain", 5), 0);
    cr_assert_eq(cdr_codec_append_escaped(&b, "a\\b\tc\nd\re\bf", 12), 0);
    cr_assert_str_eq(b.data, "plaina\\\\b\\tc\\nd\\re\bf");
    cdr_buf_free(&b);
}

Test(cdr_codec, reject_row)
{
    static const char raw[] = "{\"direction\": \"up\",\n\t\"x\": \"\\\\\"}\xff\x00z";
    cdr_reject rej = {
        .received_at = T0 + 1500,
        .tenant_id = NULL,
        .sip_domain = "tenanta.edvoip.it",
        .call_id = "c1",
        .source = "ingest",
        .reason = "direction: must be one of in, out; billsec: is required",
        .raw = raw,
        .raw_len = sizeof(raw) - 1,
    };
    cdr_buf b = {0};
    cr_assert_eq(cdr_codec_append_reject(&b, &rej), 0);
    static const char want[] =
        "2025-10-30 09:12:00.001500+00\t\\N\ttenanta.edvoip.it\tc1\tingest\t"
        "direction: must be one of in, out; billsec: is required\t"
        "{\"direction\": \"up\",\\n\\t\"x\": \"\\\\\\\\\"}\xef\xbf\xbd\xef\xbf\xbdz\n";
    cr_assert_eq(b.len, sizeof(want) - 1);
    cr_assert_arr_eq(b.data, want, sizeof(want) - 1);

    const char *f[CDR_CODEC_REJECT_NCOLS];
    cdr_buf scratch = {0};
    cr_assert_eq(cdr_codec_split_row(b.data, b.len - 1, &scratch, f, CDR_CODEC_REJECT_NCOLS),
                 CDR_CODEC_REJECT_NCOLS);
    cr_expect_null(f[1]);
    cr_expect_str_eq(f[3], "c1");
    cr_expect_str_eq(f[6], "{\"direction\": \"up\",\n\t\"x\": \"\\\\\"}\xef\xbf\xbd\xef\xbf\xbdz");

    /* Valid multi-byte UTF-8 is kept as is; a truncated sequence is replaced. */
    cdr_buf_reset(&b);
    rej.raw = "caf\xc3\xa9 \xe2\x82";
    rej.raw_len = strlen(rej.raw);
    rej.reason = NULL;
    cr_assert_eq(cdr_codec_append_reject(&b, &rej), 0);
    cr_assert(strstr(b.data, "\t\\N\tcaf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\n") != NULL, "%s",
              b.data);
    cdr_buf_free(&b);
    cdr_buf_free(&scratch);
}

/* 1,000 rows out, framed, back in: the same bytes and 22 columns on every line. */
Test(cdr_codec, compress_open_round_trip)
{
    cdr_record r;
    json_t *meta;
    known_record(&r, &meta);
    cdr_buf rows = {0}, frame = {0}, scratch = {0}, fields = {0};
    char call_id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(call_id, sizeof(call_id), "call-%04d", i);
        r.call_id = S(call_id);
        r.billsec = i;
        cr_assert_eq(cdr_codec_append_cdr(&rows, &r, T0 + i * US), 0);
    }
    cr_assert_eq(cdr_codec_compress(rows.data, rows.len, &frame), 0);
    cr_expect_lt(frame.len, rows.len / 10, "1,000 similar rows compress well");
    cr_expect_eq(ZSTD_getFrameContentSize(frame.data, frame.len), rows.len);

    const char *out;
    size_t out_len;
    char err[128] = "";
    cr_assert_eq(cdr_codec_open(CDR_CODEC_VERSION, CDR_CODEC_ENC_ZSTD, frame.data, frame.len,
                                rows.len, &scratch, &out, &out_len, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(out_len, rows.len);
    cr_assert_arr_eq(out, rows.data, rows.len);

    int lines = 0;
    for (const char *p = out, *end = out + out_len; p < end; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        cr_assert_not_null(nl);
        const char *f[CDR_CODEC_CDR_NCOLS];
        cr_assert_eq(cdr_codec_split_row(p, (size_t)(nl - p), &fields, f, CDR_CODEC_CDR_NCOLS),
                     CDR_CODEC_CDR_NCOLS);
        snprintf(call_id, sizeof(call_id), "call-%04d", lines);
        cr_assert_str_eq(f[4], call_id);
        p = nl + 1;
    }
    cr_expect_eq(lines, 1000);

    /* "copy" hands the payload back untouched and leaves scratch alone. */
    cdr_buf untouched = {0};
    cr_assert_eq(cdr_codec_open("1", "copy", rows.data, rows.len, 1, &untouched, &out, &out_len,
                                err, sizeof(err)),
                 0);
    cr_expect_eq(out, rows.data);
    cr_expect_eq(out_len, rows.len);
    cr_expect_null(untouched.data);

    cdr_buf_free(&rows);
    cdr_buf_free(&frame);
    cdr_buf_free(&scratch);
    cdr_buf_free(&fields);
    json_decref(meta);
}

static int open_err(const char *v, const char *enc, const char *payload, size_t len, size_t max,
                    char *err, size_t errlen)
{
    cdr_buf scratch = {0};
    const char *rows;
    size_t rows_len;
    int rc = cdr_codec_open(v, enc, payload, len, max, &scratch, &rows, &rows_len, err, errlen);
    cr_expect_lt(scratch.cap, (size_t)1 << 20, "a refused frame must not be inflated");
    cdr_buf_free(&scratch);
    return rc;
}

Test(cdr_codec, open_refuses_unknown_version_and_encoding)
{
    char err[128];
    cr_assert_eq(open_err("2", "copy", "x\n", 2, 100, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "unsupported stream format version '2'");
    cr_assert_eq(open_err(NULL, "copy", "x\n", 2, 100, err, sizeof(err)), -1);
    cr_expect(strstr(err, "unsupported stream format version") != NULL);
    cr_assert_eq(open_err("1", "copy+gzip", "x\n", 2, 100, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "unsupported stream encoding 'copy+gzip'");
    cr_assert_eq(open_err("1", NULL, "x\n", 2, 100, err, sizeof(err)), -1);
    cr_expect(strstr(err, "unsupported stream encoding") != NULL);
}

Test(cdr_codec, open_refuses_corrupt_frames)
{
    static const char rows[] = "a\tb\nc\td\n";
    cdr_buf frame = {0};
    cr_assert_eq(cdr_codec_compress(rows, sizeof(rows) - 1, &frame), 0);
    char err[128];

    cr_assert_eq(open_err("1", "copy+zstd", "not zstd at all", 15, 1000, err, sizeof(err)), -1);
    cr_expect(strstr(err, "corrupt zstd frame") != NULL, "%s", err);

    /* Cut short: the header still promises the full content. */
    cr_assert_eq(open_err("1", "copy+zstd", frame.data, frame.len - 3, 1000, err, sizeof(err)), -1);
    cr_expect(strstr(err, "corrupt zstd frame") != NULL, "%s", err);

    /* Trailing bytes after the frame. */
    cr_assert_eq(cdr_buf_append(&frame, "junkjunk", 8), 0);
    cr_assert_eq(open_err("1", "copy+zstd", frame.data, frame.len, 1000, err, sizeof(err)), -1);
    cr_expect(strstr(err, "corrupt zstd frame") != NULL, "%s", err);
    cdr_buf_free(&frame);
}

/* A streamed frame of 100 MB of zeros is a few KB: the declared size must stop it before any
 * memory is taken for it. */
Test(cdr_codec, open_refuses_oversized_frame)
{
    const size_t total = (size_t)100 << 20, chunk = (size_t)1 << 20;
    char *zeros = calloc(1, chunk);
    cdr_buf frame = {0};
    cr_assert_eq(cdr_buf_reserve(&frame, 1 << 20), 0);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    cr_assert_not_null(cctx);
    cr_assert_not(ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, total)));
    ZSTD_outBuffer out = {frame.data, frame.cap - 1, 0};
    for (size_t done = 0; done < total; done += chunk) {
        ZSTD_inBuffer in = {zeros, chunk, 0};
        ZSTD_EndDirective mode = done + chunk == total ? ZSTD_e_end : ZSTD_e_continue;
        size_t left;
        do {
            left = ZSTD_compressStream2(cctx, &out, &in, mode);
            cr_assert_not(ZSTD_isError(left));
        } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
    }
    frame.len = out.pos;
    cr_assert_lt(frame.len, (size_t)1 << 20);
    cr_assert_eq(ZSTD_getFrameContentSize(frame.data, frame.len), total);

    char err[128];
    cr_assert_eq(
        open_err("1", "copy+zstd", frame.data, frame.len, (size_t)64 << 20, err, sizeof(err)), -1);
    cr_expect(strstr(err, "exceeds the limit") != NULL, "%s", err);

    /* A frame that does not declare its size is refused as well. */
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
    cr_assert_not(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
    ZSTD_inBuffer in = {"a\tb\n", 4, 0};
    ZSTD_outBuffer out2 = {frame.data, frame.cap - 1, 0};
    while (ZSTD_compressStream2(cctx, &out2, &in, ZSTD_e_end) != 0)
        ;
    cr_assert_eq(open_err("1", "copy+zstd", frame.data, out2.pos, 1000, err, sizeof(err)), -1);
    cr_expect(strstr(err, "content size") != NULL, "%s", err);

    ZSTD_freeCCtx(cctx);
    cdr_buf_free(&frame);
    free(zeros);
}

static int split(const char *row, cdr_buf *scratch, const char **f, int max)
{
    return cdr_codec_split_row(row, strlen(row), scratch, f, max);
}

Test(cdr_codec, split_row_fields_and_nulls)
{
    cdr_buf s = {0};
    const char *f[8];
    cr_assert_eq(split("\\N\t\\\\N\t\tN\t\\Nx", &s, f, 8), 5);
    cr_expect_null(f[0], "\\N alone is NULL");
    cr_expect_str_eq(f[1], "\\N", "an escaped backslash followed by N is text");
    cr_expect_str_eq(f[2], "");
    cr_expect_str_eq(f[3], "N");
    cr_expect_str_eq(f[4], "Nx");

    cr_assert_eq(split("", &s, f, 8), 1);
    cr_expect_str_eq(f[0], "");

    cr_assert_eq(split("a\tb\tc", &s, f, 3), 3);
    cr_expect_eq(split("a\tb\tc\td", &s, f, 3), -1, "too many fields");
    cr_expect_eq(split("a\tb", &s, f, 0), -1);
    cdr_buf_free(&s);
}

Test(cdr_codec, split_row_unescapes_like_postgres)
{
    cdr_buf s = {0};
    const char *f[8];
    cr_assert_eq(
        split("\\b\\f\\n\\r\\t\\v\\\\\t\\101\\60x\\1018\t\\x41\\x4g\\xg\t\\q\\.", &s, f, 8), 4);
    cr_expect_str_eq(f[0], "\b\f\n\r\t\v\\");
    cr_expect_str_eq(f[1], "A0xA8");
    cr_expect_str_eq(f[2], "A\x04gxg");
    cr_expect_str_eq(f[3], "q.");
    /* \ooo keeps the low 8 bits, as PostgreSQL does. */
    cr_assert_eq(split("\\777", &s, f, 8), 1);
    cr_expect_eq((unsigned char)f[0][0], 0xFF);

    cr_expect_eq(split("abc\\", &s, f, 8), -1, "a trailing lone backslash");
    cr_assert_eq(split("a\\\tb\\\nc", &s, f, 1), 1, "a backslashed tab or newline is data");
    cr_expect_str_eq(f[0], "a\tb\nc");
    cr_expect_eq(split("a\\0b", &s, f, 8), -1, "a NUL byte");
    cr_expect_eq(split("a\\x00", &s, f, 8), -1, "a NUL byte in hex");
    cr_expect_eq(split("a\nb", &s, f, 8), -1, "a raw newline");
    cdr_buf_free(&s);
}

/* Pointers stay valid while the scratch buffer grows from nothing to a large row. */
Test(cdr_codec, split_row_pointers_survive_growth)
{
    cdr_buf row = {0}, s = {0};
    for (int i = 0; i < 22; i++) {
        for (int k = 0; k < 500; k++)
            cr_assert_eq(cdr_buf_append_char(&row, (char)('a' + i)), 0);
        cr_assert_eq(cdr_buf_append_str(&row, i < 21 ? "\\\\\t" : "\\\\"), 0);
    }
    const char *f[22];
    cr_assert_eq(cdr_codec_split_row(row.data, row.len, &s, f, 22), 22);
    for (int i = 0; i < 22; i++) {
        cr_assert_eq(strlen(f[i]), 501);
        cr_expect_eq(f[i][0], 'a' + i);
        cr_expect_eq(f[i][499], 'a' + i);
        cr_expect_eq(f[i][500], '\\');
    }
    cdr_buf_free(&row);
    cdr_buf_free(&s);
}
