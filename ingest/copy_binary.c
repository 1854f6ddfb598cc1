/* copy_binary.c - CDR stream rows as tuples of PostgreSQL's binary COPY format (the header says
 * why, and which forms are converted). */
#include "copy_binary.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "cdr_codec.h"
#include "timefmt.h"

typedef enum col_type { COL_TEXT, COL_UUID, COL_TS, COL_INT4, COL_REAL, COL_JSONB } col_type;

/* The types of voip_cdr_staging's columns (sql/001_schema.sql), in CDR_CODEC_CDR_COLUMNS order. */
static const col_type cdr_types[CDR_CODEC_CDR_NCOLS] = {
    COL_UUID,  /* tenant_id */
    COL_UUID,  /* store_id */
    COL_TEXT,  /* store_name */
    COL_TEXT,  /* sip_domain */
    COL_TEXT,  /* call_id */
    COL_TEXT,  /* direction */
    COL_TEXT,  /* from_uri */
    COL_TEXT,  /* to_uri */
    COL_TEXT,  /* did_e164 */
    COL_TEXT,  /* ext_number */
    COL_UUID,  /* user_id */
    COL_TS,    /* start_ts */
    COL_TS,    /* answer_ts */
    COL_TS,    /* end_ts */
    COL_INT4,  /* billsec */
    COL_TEXT,  /* disposition */
    COL_TEXT,  /* recording_url */
    COL_REAL,  /* mos */
    COL_REAL,  /* jitter_ms */
    COL_REAL,  /* loss_pct */
    COL_JSONB, /* meta_json */
    COL_TS,    /* ingested_at */
};

const char *copy_binary_cdr_type(int i)
{
    static const char *const names[] = {
        [COL_TEXT] = "text",    [COL_UUID] = "uuid", [COL_TS] = "timestamp with time zone",
        [COL_INT4] = "integer", [COL_REAL] = "real", [COL_JSONB] = "jsonb",
    };
    return i >= 0 && i < CDR_CODEC_CDR_NCOLS ? names[cdr_types[i]] : NULL;
}

#define PG_EPOCH_DAYS INT64_C(10957) /* 1970-01-01 to 2000-01-01, PostgreSQL's epoch */
#define SECS_PER_DAY  INT64_C(86400)
#define JSONB_VERSION 1 /* the first byte of jsonb's binary form */

/* One field, ready to be written: its length on the wire ('len', -1 for NULL), then jsonb's
 * version byte when 'version', then 'len' - 'version' bytes of 'data': the row's unescaped
 * text for text and jsonb, 'bin' (network byte order) for the other types. */
typedef struct field_out {
    const void *data;
    int32_t len;
    bool version;
    unsigned char bin[16];
} field_out;

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

int copy_binary_header(cdr_buf *out)
{
    static const unsigned char header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n',
                                             0,   0,   0,   0,   0,   0,   0,    0,    0};
    return cdr_buf_append(out, header, sizeof(header));
}

int copy_binary_trailer(cdr_buf *out)
{
    static const unsigned char trailer[2] = {0xFF, 0xFF};
    return cdr_buf_append(out, trailer, sizeof(trailer));
}

/* 8-4-4-4-12 hex digits, either case. */
static bool parse_uuid(const char *s, size_t len, unsigned char *out)
{
    if (len != 36)
        return false;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            continue;
        }
        int hi = ascii_hex_value(s[i]);
        int lo = i + 1 < len ? ascii_hex_value(s[i + 1]) : -1;
        if (hi < 0 || lo < 0)
            return false;
        out[n++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    return n == 16;
}

/* Exactly 'n' decimal digits at 's'. */
static bool digits(const char *s, int n, int *val)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!ascii_is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *val = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD hh:mm:ss[.f{1,6}]+00", the form of timefmt_format_pg(), as microseconds since
 * 2000-01-01 UTC. Every field in range; PostgreSQL's leniencies (24:00:00, a leap second,
 * other offsets or forms) are left to it. */
static bool parse_ts(const char *s, size_t len, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (len < 22 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
        !digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 ||
        mi > 59 || se > 59)
        return false;
    size_t at = 19;
    int64_t frac = 0;
    if (s[at] == '.') {
        int n = 0;
        for (at++; at < len && ascii_is_digit(s[at]); at++, n++)
            frac = frac * 10 + (s[at] - '0');
        if (n < 1 || n > 6)
            return false;
        for (; n < 6; n++)
            frac *= 10;
    }
    if (len - at != 3 || memcmp(s + at, "+00", 3) != 0)
        return false;
    int64_t days = timefmt_days_from_civil(y, (unsigned)mo, (unsigned)d) - PG_EPOCH_DAYS;
    *out = ((days * SECS_PER_DAY + h * 3600 + mi * 60 + se) * TIMEFMT_US_PER_SEC) + frac;
    return true;
}

/* [-]digits, within int4. */
static bool parse_int4(const char *s, size_t len, int32_t *out)
{
    size_t i = s[0] == '-';
    if (len <= i || len - i > 10)
        return false;
    int64_t v = 0;
    for (; i < len; i++) {
        if (!ascii_is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (s[0] == '-')
        v = -v;
    if (v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

/* [-]digits[.digits][e[+-]digits], read with strtof as PostgreSQL's float4in reads it; a value
 * out of float's range (or below its normal range) is left to PostgreSQL. */
static bool parse_real(const char *s, size_t len, float *out)
{
    size_t i = s[0] == '-', n;
    for (n = 0; i < len && ascii_is_digit(s[i]); i++)
        n++;
    if (n == 0)
        return false;
    if (i < len && s[i] == '.') {
        for (i++, n = 0; i < len && ascii_is_digit(s[i]); i++)
            n++;
        if (n == 0)
            return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        for (n = 0; i < len && ascii_is_digit(s[i]); i++)
            n++;
        if (n == 0)
            return false;
    }
    if (i != len)
        return false;
    errno = 0;
    char *end;
    float v = strtof(s, &end);
    if (errno != 0 || end != s + len || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Well-formed UTF-8: no overlong form, no surrogate, nothing past U+10FFFF. */
static bool valid_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (len - i <= (size_t)n)
            return false;
        for (int k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += (size_t)n + 1;
    }
    return true;
}

/* Reads field 'f' of type 't' into 'o'. False when it is not in a form converted here. */
static bool read_field(const char *f, col_type t, field_out *o)
{
    o->version = false;
    o->data = o->bin;
    if (!f) {
        o->len = -1;
        return true;
    }
    size_t len = strlen(f);
    switch (t) {
    case COL_TEXT:
    case COL_JSONB:
        if (len > INT32_MAX - 1 || !valid_utf8(f, len))
            return false;
        o->data = f;
        o->version = t == COL_JSONB;
        o->len = (int32_t)len + o->version;
        return true;
    case COL_UUID:
        o->len = 16;
        return parse_uuid(f, len, o->bin);
    case COL_TS: {
        int64_t us;
        if (!parse_ts(f, len, &us))
            return false;
        put_be64(o->bin, (uint64_t)us);
        o->len = 8;
        return true;
    }
    case COL_INT4: {
        int32_t v;
        if (!parse_int4(f, len, &v))
            return false;
        put_be32(o->bin, (uint32_t)v);
        o->len = 4;
        return true;
    }
    case COL_REAL: {
        float v;
        if (!parse_real(f, len, &v))
            return false;
        uint32_t bits;
        memcpy(&bits, &v, sizeof(bits));
        put_be32(o->bin, bits);
        o->len = 4;
        return true;
    }
    }
    return false;
}

copy_binary_result copy_binary_cdr_row(cdr_buf *out, const char *row, size_t len, cdr_buf *scratch)
{
    const char *fields[CDR_CODEC_CDR_NCOLS + 1];
    /* -1 is a malformed row, or no memory for its fields: either way PostgreSQL reads it. */
    if (cdr_codec_split_row(row, len, scratch, fields, CDR_CODEC_CDR_NCOLS + 1) !=
        CDR_CODEC_CDR_NCOLS)
        return COPY_BINARY_TEXT;
    field_out f[CDR_CODEC_CDR_NCOLS];
    size_t need = 2;
    for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++) {
        if (!read_field(fields[i], cdr_types[i], &f[i]))
            return COPY_BINARY_TEXT;
        need += 4 + (f[i].len > 0 ? (size_t)f[i].len : 0);
    }
    if (cdr_buf_reserve(out, need) != 0)
        return COPY_BINARY_NOMEM;
    unsigned char *p = (unsigned char *)out->data + out->len;
    put_be16(p, CDR_CODEC_CDR_NCOLS);
    p += 2;
    for (int i = 0; i < CDR_CODEC_CDR_NCOLS; i++) {
        put_be32(p, (uint32_t)f[i].len);
        p += 4;
        if (f[i].len <= 0)
            continue;
        if (f[i].version)
            *p++ = JSONB_VERSION;
        size_t n = (size_t)f[i].len - f[i].version;
        memcpy(p, f[i].data, n);
        p += n;
    }
    out->len += need;
    out->data[out->len] = '\0';
    return COPY_BINARY_OK;
}
