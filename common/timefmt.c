/* timefmt.c - ISO 8601 parsing and UTC printing by calendar arithmetic, without libc time zones. */
#include "timefmt.h"

#include <string.h>
#include <time.h>

#include "ascii.h"
#include "errfmt.h"

#define SECS_PER_DAY   INT64_C(86400)
#define MAX_OFFSET_MIN (18 * 60)

/* Fills 'err' and gives -1. Error detail is only built on the failure path, so formatting costs
 * nothing on a good input. */
#define FAIL(err, errlen, ...) (cdr_errf((err), (errlen), __VA_ARGS__), -1)

/* The value of the 'n' ASCII digits at 'p', or -1 when one of them is not a digit. Locale-free
 * on purpose: isdigit() would consult the locale, and fullwidth digits must not pass. */
static inline int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!ascii_is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static inline bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int64_t timefmt_days_from_civil(int y, unsigned m, unsigned d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365], from March 1 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void timefmt_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153; /* month counted from March */
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Parses the offset at 'p' (len >= 1, p[0] is one of Z z + -) into minutes east of UTC and
 * returns the number of bytes it took, or -1 with 'err' set. */
static int parse_offset(const char *p, size_t len, int *minutes, char *err, size_t errlen)
{
    if (p[0] == 'Z' || p[0] == 'z') {
        *minutes = 0;
        return 1;
    }
    int sign = p[0] == '-' ? -1 : 1;
    int hh = len >= 3 ? digits(p + 1, 2) : -1;
    int mm = 0;
    int used = 3;
    if (hh < 0)
        return FAIL(err, errlen, "malformed UTC offset");
    if (len > 3 && p[3] == ':') {
        mm = len >= 6 ? digits(p + 4, 2) : -1;
        used = 6;
    } else if (len > 3 && ascii_is_digit(p[3])) {
        mm = len >= 5 ? digits(p + 3, 2) : -1;
        used = 5;
    }
    if (mm < 0)
        return FAIL(err, errlen, "malformed UTC offset");
    if (mm > 59 || hh * 60 + mm > MAX_OFFSET_MIN)
        return FAIL(err, errlen, "offset out of range");
    *minutes = sign * (hh * 60 + mm);
    return used;
}

int timefmt_parse(const char *s, size_t len, unsigned flags, cdr_time *out, bool *date_only,
                  char *err, size_t errlen)
{
    if (len == 0)
        return FAIL(err, errlen, "empty timestamp");
    if (len < 10 || s[4] != '-' || s[7] != '-')
        return FAIL(err, errlen, "expected a date YYYY-MM-DD");
    int y = digits(s, 4);
    int mo = digits(s + 5, 2);
    int d = digits(s + 8, 2);
    if (y < 0 || mo < 0 || d < 0)
        return FAIL(err, errlen, "expected a date YYYY-MM-DD");
    if (y == 0)
        return FAIL(err, errlen, "year 0 out of range");
    if (mo < 1 || mo > 12)
        return FAIL(err, errlen, "month %d out of range", mo);
    if (d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo))
        return FAIL(err, errlen, "day %d out of range for %04d-%02d", d, y, mo);
    int64_t days = timefmt_days_from_civil(y, (unsigned)mo, (unsigned)d);

    if (len == 10) {
        if (!(flags & TIMEFMT_ALLOW_DATE))
            return FAIL(err, errlen, "date without a time");
        *out = days * SECS_PER_DAY * TIMEFMT_US_PER_SEC;
        if (date_only)
            *date_only = true;
        return 0;
    }
    if (s[10] != 'T' && s[10] != ' ')
        return FAIL(err, errlen, "expected 'T' or ' ' after the date");

    /* hh:mm */
    size_t i = 11;
    if (len < i + 5 || s[i + 2] != ':')
        return FAIL(err, errlen, "expected hh:mm after the date");
    int hh = digits(s + i, 2);
    int mi = digits(s + i + 3, 2);
    if (hh < 0 || mi < 0)
        return FAIL(err, errlen, "expected hh:mm after the date");
    if (hh > 23)
        return FAIL(err, errlen, "hour %d out of range", hh);
    if (mi > 59)
        return FAIL(err, errlen, "minute %d out of range", mi);
    i += 5;

    /* [:ss[.fraction]] */
    int ss = 0;
    int64_t us = 0;
    if (i < len && s[i] == ':') {
        ss = len >= i + 3 ? digits(s + i + 1, 2) : -1;
        if (ss < 0)
            return FAIL(err, errlen, "expected two-digit seconds");
        if (ss > 60)
            return FAIL(err, errlen, "second %d out of range", ss);
        i += 3;
        if (i < len && s[i] == '.') {
            size_t start = ++i;
            while (i < len && ascii_is_digit(s[i]))
                i++;
            size_t n = i - start;
            if (n == 0)
                return FAIL(err, errlen, "expected digits after the decimal point");
            if (n > 9)
                return FAIL(err, errlen, "fraction too long");
            /* Keep the first six digits, scaled to microseconds; the rest is truncated. */
            for (size_t k = 0; k < 6; k++)
                us = us * 10 + (k < n ? s[start + k] - '0' : 0);
        }
    } else if (i < len && s[i] == '.') {
        return FAIL(err, errlen, "fraction without seconds");
    }

    /* [offset] */
    int off_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-')) {
        int used = parse_offset(s + i, len - i, &off_min, err, errlen);
        if (used < 0)
            return -1;
        i += (size_t)used;
    } else if (flags & TIMEFMT_REQUIRE_OFFSET) {
        return FAIL(err, errlen, i < len ? "trailing characters" : "missing UTC offset");
    }
    if (i != len)
        return FAIL(err, errlen, "trailing characters");

    /* A second of 60 simply adds up onto the next minute. */
    int64_t secs = days * SECS_PER_DAY + hh * 3600 + mi * 60 + ss - (int64_t)off_min * 60;
    *out = secs * TIMEFMT_US_PER_SEC + us;
    if (date_only)
        *date_only = false;
    return 0;
}

/* Writes 'v' as exactly 'n' decimal digits, most significant first. */
static char *put_digits(char *p, unsigned v, int n)
{
    for (int k = n - 1; k >= 0; k--) {
        p[k] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* Shared by both printers: the date and time of 't' with 'sep' between them, ".ffffff" when the
 * microseconds are not zero, then 'suffix'. */
static size_t format_time(cdr_time t, char sep, const char *suffix, char *buf, size_t len)
{
    /* Floor division, so that times before 1970 land on the day they belong to. */
    int64_t secs = t / TIMEFMT_US_PER_SEC;
    int64_t us = t % TIMEFMT_US_PER_SEC;
    if (us < 0) {
        us += TIMEFMT_US_PER_SEC;
        secs--;
    }
    int64_t days = secs / SECS_PER_DAY;
    int64_t sod = secs % SECS_PER_DAY;
    if (sod < 0) {
        sod += SECS_PER_DAY;
        days--;
    }
    int y;
    unsigned m, d;
    timefmt_civil_from_days(days, &y, &m, &d);

    /* Years outside 1-9999 only come from times no parser produced; they are still printed
     * whole (sign and all digits) rather than cut to four digits. */
    char tmp[48];
    char *p = tmp;
    unsigned uy = y < 0 ? 0u - (unsigned)y : (unsigned)y;
    if (y < 0)
        *p++ = '-';
    int ydigits = 4;
    for (unsigned v = uy / 10000; v; v /= 10)
        ydigits++;
    p = put_digits(p, uy, ydigits);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = sep;
    p = put_digits(p, (unsigned)(sod / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)(sod / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)(sod % 60), 2);
    if (us) {
        *p++ = '.';
        p = put_digits(p, (unsigned)us, 6);
    }
    while (*suffix)
        *p++ = *suffix++;

    size_t n = (size_t)(p - tmp);
    if (n >= len)
        return 0;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

size_t timefmt_format_utc(cdr_time t, char *buf, size_t len)
{
    return format_time(t, 'T', "Z", buf, len);
}

size_t timefmt_format_pg(cdr_time t, char *buf, size_t len)
{
    return format_time(t, ' ', "+00", buf, len);
}

cdr_time timefmt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (cdr_time)ts.tv_sec * TIMEFMT_US_PER_SEC + ts.tv_nsec / 1000;
}
