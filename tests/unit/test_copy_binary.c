/* test_copy_binary.c - CDR stream rows as binary COPY tuples: every field's bytes for the forms
 * cdr-ingest writes, and every other form left to PostgreSQL (read back by a small decoder of the
 * format written here). Equality with PostgreSQL's own reading of the text is checked against a
 * real server in tests/integration/test_writer_copy.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cdr_codec.h"
#include "cdr.h"
#include "copy_binary.h"
#include "example_cdr.h"

#define TENANT EXAMPLE_CDR_TENANT

static const char *const example[CDR_CODEC_CDR_NCOLS] = EXAMPLE_CDR_FIELDS;

enum {
    C_TENANT = 0,
    C_STORE = 1,
    C_STORE_NAME = 2,
    C_USER = 10,
    C_START = 11,
    C_ANSWER = 12,
    C_BILLSEC = 14,
    C_MOS = 17,
    C_JITTER = 18,
    C_META = 20,
    C_INGESTED = 21
};

/* The example's row with column 'col' replaced by 'value' (not when 'col' is -1), no '\n'. */
static void make_row(cdr_buf *b, int col, const char *value)
{
    cdr_buf_reset(b);
    for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++)
        cr_assert(cdr_buf_printf(b, "%s%s", i ? "\t" : "", i == col ? value : example[i]) == 0);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* A tuple read back: each field's start and length (-1 for NULL). */
typedef struct tuple {
    const unsigned char *at[CDR_CODEC_CDR_NCOLS];
    int32_t len[CDR_CODEC_CDR_NCOLS];
} tuple;

static void read_tuple(const cdr_buf *b, tuple *t)
{
    const unsigned char *p = (const unsigned char *)b->data, *end = p + b->len;
    cr_assert_geq(b->len, 2);
    cr_assert_eq(p[0] << 8 | p[1], CDR_CODEC_CDR_NCOLS, "the field count");
    p += 2;
    for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++) {
        cr_assert_leq(p + 4, end);
        t->len[i] = (int32_t)be32(p);
        p += 4;
        t->at[i] = p;
        if (t->len[i] > 0)
            p += t->len[i];
        cr_assert_leq(p, end, "field %d runs past the tuple", i);
    }
    cr_assert_eq(p, end, "bytes after the last field");
}

/* Microseconds since 2000-01-01 UTC (PostgreSQL's epoch) of a UTC time since the Unix epoch. */
#define PG_US(unix_s, us) ((INT64_C(unix_s) - INT64_C(946684800)) * 1000000 + (us))

static void convert(const char *row, cdr_buf *out, tuple *t)
{
    cdr_buf scratch = {0};
    cdr_buf_reset(out);
    cr_assert_eq(copy_binary_cdr_row(out, row, strlen(row), &scratch), COPY_BINARY_OK,
                 "row not converted: %s", row);
    read_tuple(out, t);
    cdr_buf_free(&scratch);
}

Test(copy_binary, header_and_trailer_are_postgresqls)
{
    cdr_buf b = {0};
    cr_assert(copy_binary_header(&b) == 0);
    cr_assert(copy_binary_trailer(&b) == 0);
    static const unsigned char want[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0,
                                         0,   0,   0,   0,   0,   0,   0,    0,    0xFF, 0xFF};
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_arr_eq(b.data, want, sizeof(want));
    cdr_buf_free(&b);
}

Test(copy_binary, the_example_row_field_by_field)
{
    cdr_buf row = {0}, out = {0};
    tuple t;
    make_row(&row, -1, NULL);
    convert(row.data, &out, &t);

    static const unsigned char tenant[16] = {0x6f, 0x1c, 0x2b, 0x3a, 0x4d, 0x5e, 0x4f, 0x60,
                                             0x8a, 0x7b, 0x9c, 0x0d, 0x1e, 0x2f, 0x3a, 0x4b};
    cr_assert_eq(t.len[C_TENANT], 16);
    cr_assert_arr_eq(t.at[C_TENANT], tenant, 16);
    cr_assert_eq(t.len[C_STORE_NAME], 11);
    cr_assert_arr_eq(t.at[C_STORE_NAME], "Roma Centro", 11);
    cr_assert_eq(t.len[C_USER], -1, "\\N is NULL");
    cr_assert_eq(t.len[C_START], 8);
    cr_assert_eq((int64_t)be64(t.at[C_START]), PG_US(1761815520, 0), "2025-10-30 09:12:00 UTC");
    cr_assert_eq((int64_t)be64(t.at[C_INGESTED]), PG_US(1761815654, 500000), "09:14:14.5");
    cr_assert_eq(t.len[C_BILLSEC], 4);
    cr_assert_eq(be32(t.at[C_BILLSEC]), 128);
    float mos = 4.1f, jitter = 12.5f;
    uint32_t mos_bits, jitter_bits;
    memcpy(&mos_bits, &mos, 4);
    memcpy(&jitter_bits, &jitter, 4);
    cr_assert_eq(be32(t.at[C_MOS]), mos_bits, "4.1 as a float, as strtof reads it");
    cr_assert_eq(be32(t.at[C_JITTER]), jitter_bits);
    const char *meta = "{\"hangup_cause\":\"NORMAL_CLEARING\"}";
    cr_assert_eq(t.len[C_META], (int32_t)strlen(meta) + 1, "jsonb: a version byte, then text");
    cr_assert_eq(t.at[C_META][0], 1);
    cr_assert_arr_eq(t.at[C_META] + 1, meta, strlen(meta));
    cdr_buf_free(&row);
    cdr_buf_free(&out);
}

Test(copy_binary, text_is_unescaped_and_dates_are_exact)
{
    cdr_buf row = {0}, out = {0};
    tuple t;
    /* Tab, newline, backslash and the two characters \N as COPY text writes them; UTF-8. */
    make_row(&row, C_STORE_NAME, "Forl\xc3\xac\\tA\\nB\\\\C\\\\N \xf0\x9f\x98\x80");
    convert(row.data, &out, &t);
    static const char name[] = "Forl\xc3\xac\tA\nB\\C\\N \xf0\x9f\x98\x80";
    cr_assert_eq(t.len[C_STORE_NAME], (int32_t)strlen(name));
    cr_assert_arr_eq(t.at[C_STORE_NAME], name, strlen(name));

    make_row(&row, C_STORE_NAME, "");
    convert(row.data, &out, &t);
    cr_assert_eq(t.len[C_STORE_NAME], 0, "empty text is not NULL");

    static const struct {
        const char *text;
        int64_t pg_us;
    } times[] = {
        {"2000-01-01 00:00:00+00", 0},
        {"1999-12-31 23:59:59.999999+00", -1},
        {"2024-02-29 12:00:00.1+00", PG_US(1709208000, 100000)},
        {"2025-12-31 23:59:59.000001+00", PG_US(1767225599, 1)},
        {"1970-01-01 00:00:00.25+00", PG_US(0, 250000)},
        {"0001-01-01 00:00:00+00", PG_US(-62135596800, 0)},
        {"9999-12-31 23:59:59+00", PG_US(253402300799, 0)},
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        make_row(&row, C_ANSWER, times[i].text);
        convert(row.data, &out, &t);
        cr_expect_eq((int64_t)be64(t.at[C_ANSWER]), times[i].pg_us, "%s", times[i].text);
    }

    static const struct {
        const char *text;
        uint32_t value;
    } ints[] = {
        {"0", 0}, {"-0", 0}, {"2147483647", 2147483647u}, {"-2147483648", 0x80000000u}, {"007", 7}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        make_row(&row, C_BILLSEC, ints[i].text);
        convert(row.data, &out, &t);
        cr_expect_eq(be32(t.at[C_BILLSEC]), ints[i].value, "%s", ints[i].text);
    }

    static const char *const reals[] = {"1", "3.6", "-0", "1e-05", "1.5E+20", "33.333333333333"};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        float v = strtof(reals[i], NULL);
        uint32_t bits;
        memcpy(&bits, &v, 4);
        make_row(&row, C_MOS, reals[i]);
        convert(row.data, &out, &t);
        cr_expect_eq(be32(t.at[C_MOS]), bits, "%s", reals[i]);
    }

    make_row(&row, C_TENANT, "6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B");
    cdr_buf lower = {0};
    tuple tl;
    convert(row.data, &out, &t);
    make_row(&row, -1, NULL);
    convert(row.data, &lower, &tl);
    cr_assert_arr_eq(t.at[C_TENANT], tl.at[C_TENANT], 16, "upper-case UUID, the same value");
    cdr_buf_free(&lower);
    cdr_buf_free(&row);
    cdr_buf_free(&out);
}

/* Forms PostgreSQL may read (or refuse) in its own way: the row goes as text, 'out' untouched. */
Test(copy_binary, other_forms_are_left_to_postgresql)
{
    static const struct {
        int col;
        const char *value;
    } cases[] = {
        {C_TENANT, "6f1c2b3a4d5e4f608a7b9c0d1e2f3a4b"},
        {C_TENANT, "{6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b}"},
        {C_TENANT, "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4g"},
        {C_TENANT, "not-a-uuid"},
        {C_START, "2025-10-30 10:12:00+01"},
        {C_START, "2025-10-30T09:12:00+00"},
        {C_START, "2025-10-30 09:12:00Z"},
        {C_START, "2025-10-30 09:12:00"},
        {C_START, "2025-10-30 09:12+00"},
        {C_START, "2025-10-30 24:00:00+00"},
        {C_START, "2025-10-30 23:59:60+00"},
        {C_START, "2025-02-29 09:12:00+00"},
        {C_START, "2025-04-31 09:12:00+00"},
        {C_START, "2025-13-01 09:12:00+00"},
        {C_START, "0000-01-01 00:00:00+00"},
        {C_START, "2025-10-30 09:12:00.1234567+00"},
        {C_START, "2025-10-30 09:12:00.+00"},
        {C_START, "infinity"},
        {C_BILLSEC, "+5"},
        {C_BILLSEC, " 5"},
        {C_BILLSEC, "5 "},
        {C_BILLSEC, "1e3"},
        {C_BILLSEC, "2147483648"},
        {C_BILLSEC, "-2147483649"},
        {C_BILLSEC, "-"},
        {C_BILLSEC, ""},
        {C_MOS, "NaN"},
        {C_MOS, "Infinity"},
        {C_MOS, ".5"},
        {C_MOS, "4."},
        {C_MOS, " 4.1"},
        {C_MOS, "1e39"},
        {C_MOS, "1e-45"},
        {C_MOS, "0x1p3"},
        {C_MOS, "4.1e"},
        {C_STORE_NAME, "Forl\xec"},         /* Latin-1, not UTF-8 */
        {C_STORE_NAME, "\xc0\xaf"},         /* an overlong '/' */
        {C_STORE_NAME, "\xed\xa0\x80"},     /* a surrogate */
        {C_STORE_NAME, "\xf4\x90\x80\x80"}, /* past U+10FFFF */
        {C_STORE_NAME, "\xe2\x82"},         /* cut short */
        {C_STORE_NAME, "a\\000b"},          /* a NUL byte */
        {C_META, "{\"k\":\"\xff\"}"},       /* jsonb text is text too */
    };
    cdr_buf row = {0}, out = {0}, scratch = {0};
    cr_assert(cdr_buf_append_str(&out, "kept") == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make_row(&row, cases[i].col, cases[i].value);
        cr_expect_eq(copy_binary_cdr_row(&out, row.data, row.len, &scratch), COPY_BINARY_TEXT,
                     "column %d '%s' was converted", cases[i].col, cases[i].value);
        cr_expect_eq(out.len, 4, "'out' changed");
    }
    /* Too few and too many columns, an unescaped carriage return. */
    static const char *const rows[] = {TENANT "\t\\N",
                                       "a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to"
                                       "\tp\tq\tr\ts\tt\tu\tv\tw",
                                       ""};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        cr_expect_eq(copy_binary_cdr_row(&out, rows[i], strlen(rows[i]), &scratch),
                     COPY_BINARY_TEXT, "row %zu", i);
    make_row(&row, -1, NULL);
    cr_assert(cdr_buf_append_str(&row, "\r") == 0);
    cr_expect_eq(copy_binary_cdr_row(&out, row.data, row.len, &scratch), COPY_BINARY_TEXT);
    cr_expect_eq(out.len, 4);
    cdr_buf_free(&row);
    cdr_buf_free(&out);
    cdr_buf_free(&scratch);
}

Test(copy_binary, a_full_buffer_leaves_out_as_it_was)
{
    cdr_buf row = {0}, out, scratch = {0};
    cdr_buf_init(&out, 64);
    cr_assert(copy_binary_header(&out) == 0);
    make_row(&row, -1, NULL);
    cr_expect_eq(copy_binary_cdr_row(&out, row.data, row.len, &scratch), COPY_BINARY_NOMEM);
    cr_expect_eq(out.len, 19);
    cdr_buf_free(&row);
    cdr_buf_free(&out);
    cdr_buf_free(&scratch);
}

/* A small deterministic generator (xorshift64*), so that a failure repeats. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

/* Random text of 0-40 characters: ASCII with every control character but NUL, the backslash,
 * two-, three- and four-byte UTF-8. */
static void random_text(char *buf, size_t cap, cdr_str *s)
{
    static const char *const pieces[] = {"\t",
                                         "\n",
                                         "\r",
                                         "\\",
                                         "\\N",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xac",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         " ",
                                         "a",
                                         "Z",
                                         "9",
                                         "{",
                                         "\"",
                                         "."};
    size_t n = 0, want = rng() % 41;
    for (size_t i = 0; i < want; i++) {
        const char *p = pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t len = strlen(p);
        if (n + len >= cap)
            break;
        memcpy(buf + n, p, len);
        n += len;
    }
    buf[n] = '\0';
    s->p = buf;
    s->len = n;
}

static void random_uuid(char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 36; i++)
        out[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[rng() % 16];
    out[36] = '\0';
}

/* Every row cdr-ingest's encoder (cdr_codec_append_cdr) writes is converted, never sent as
 * text: whatever the times (1970-2100, any microsecond), numbers, text and JSON. */
Test(copy_binary, every_row_the_ingest_encoder_writes_is_converted)
{
    cdr_buf row = {0}, out = {0}, scratch = {0};
    char texts[7][256];
    for (int k = 0; k < 20000; k++) {
        cdr_record r;
        memset(&r, 0, sizeof(r));
        random_uuid(r.tenant_id);
        if (rng() % 2)
            random_uuid(r.store_id);
        if (rng() % 2)
            random_uuid(r.user_id);
        snprintf(r.sip_domain, sizeof(r.sip_domain), "tenant%d.example.it", k % 7);
        cdr_str *strs[] = {&r.store_name, &r.call_id,    &r.from_uri,     &r.to_uri,
                           &r.did_e164,   &r.ext_number, &r.recording_url};
        for (int i = 0; i < 7; i++)
            random_text(texts[i], sizeof(texts[i]), strs[i]);
        r.direction = rng() % 2 ? CDR_DIR_IN : CDR_DIR_OUT;
        r.disposition = (cdr_disposition)(rng() % 4);
        int64_t span = INT64_C(4102444800) * 1000000; /* 1970 to 2100 */
        r.start_ts = (cdr_time)(rng() % (uint64_t)span);
        r.has_answer = rng() % 2;
        r.answer_ts = r.start_ts + (cdr_time)(rng() % 100000000);
        r.end_ts = r.answer_ts + (cdr_time)(rng() % 4000000000);
        r.billsec = (int32_t)(rng() % 100000);
        r.has_mos = rng() % 4 != 0;
        r.mos = 1 + (double)(rng() % 401) / 100;
        r.has_jitter = rng() % 4 != 0;
        r.jitter_ms = (double)(rng() % 1000000) / (double)(1 + rng() % 1000);
        r.has_loss = rng() % 4 != 0;
        r.loss_pct = (double)(rng() % 10001) / 100;
        cdr_time ingested = r.end_ts + (cdr_time)(rng() % 1000000);
        json_t *meta = NULL;
        if (rng() % 2) {
            meta = json_object();
            cr_assert(meta);
            cr_assert(json_object_set_new(meta, "note",
                                          json_stringn(r.store_name.p, r.store_name.len)) == 0);
            cr_assert(json_object_set_new(meta, "n", json_real(r.jitter_ms)) == 0);
            r.meta = meta;
        }

        cdr_buf_reset(&row);
        cr_assert(cdr_codec_append_cdr(&row, &r, ingested) == 0);
        cr_assert_eq(row.data[row.len - 1], '\n');
        cdr_buf_reset(&out);
        copy_binary_result c = copy_binary_cdr_row(&out, row.data, row.len - 1, &scratch);
        cr_assert_eq(c, COPY_BINARY_OK, "row %d sent as text: %s", k, row.data);
        tuple t;
        read_tuple(&out, &t);
        cr_assert_eq((int64_t)be64(t.at[C_START]), r.start_ts - INT64_C(946684800) * 1000000,
                     "row %d: start_ts", k);
        cr_assert_eq((int64_t)be64(t.at[C_INGESTED]), ingested - INT64_C(946684800) * 1000000);
        cr_assert_eq(be32(t.at[C_BILLSEC]), (uint32_t)r.billsec);
        cr_assert_eq(t.len[C_STORE_NAME], (int32_t)r.store_name.len);
        cr_assert_arr_eq(t.at[C_STORE_NAME], r.store_name.p, r.store_name.len, "row %d", k);
        cr_assert_eq(t.len[C_USER], r.user_id[0] ? 16 : -1);
        cr_assert_eq(t.len[C_META] > 0, meta != NULL);
        json_decref(meta);
    }
    cdr_buf_free(&row);
    cdr_buf_free(&out);
    cdr_buf_free(&scratch);
}
