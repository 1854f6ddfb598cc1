/* test_timefmt.c - ISO 8601 parsing, UTC/PostgreSQL printing and the calendar arithmetic. */
#include <criterion/criterion.h>

#include <string.h>
#include <time.h>

#include "timefmt.h"

#define US TIMEFMT_US_PER_SEC

/* 2025-10-30T09:12:05Z, the instant most cases below are written around. */
#define BASE_SECS INT64_C(1761815525)

static cdr_time parse_ok_flags(const char *s, unsigned flags)
{
    cdr_time t = INT64_MIN;
    char err[128] = "";
    int rc = timefmt_parse(s, strlen(s), flags, &t, NULL, err, sizeof(err));
    cr_assert_eq(rc, 0, "parse \"%s\" failed: %s", s, err);
    return t;
}

static cdr_time parse_ok(const char *s)
{
    return parse_ok_flags(s, 0);
}

/* Asserts that the 'len' bytes at 's' are refused with exactly 'want' and leave '*out' alone. */
static void parse_err_len(const char *s, size_t len, unsigned flags, const char *want)
{
    cdr_time t = 42;
    char err[128] = "";
    int rc = timefmt_parse(s, len, flags, &t, NULL, err, sizeof(err));
    cr_assert_eq(rc, -1, "parse \"%.*s\" should fail with \"%s\"", (int)len, s, want);
    cr_assert_str_eq(err, want, "parse \"%.*s\"", (int)len, s);
    cr_assert_eq(t, 42, "a refused input must not touch the output");
}

static void parse_err(const char *s, unsigned flags, const char *want)
{
    parse_err_len(s, strlen(s), flags, want);
}

static void assert_utc(cdr_time t, const char *want)
{
    char buf[64];
    size_t n = timefmt_format_utc(t, buf, sizeof(buf));
    cr_assert_str_eq(buf, want);
    cr_assert_eq(n, strlen(want));
}

Test(timefmt, offsets_give_the_utc_instant)
{
    cr_assert_eq(parse_ok("2025-10-30T09:12:05Z"), BASE_SECS * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05z"), BASE_SECS * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05+00:00"), BASE_SECS * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05-00"), BASE_SECS * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05+02:00"), INT64_C(1761808325) * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05-0530"), INT64_C(1761835325) * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05-05:30"), INT64_C(1761835325) * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05+05"), INT64_C(1761797525) * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05+18:00"), (BASE_SECS - 18 * 3600) * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05-18:00"), (BASE_SECS + 18 * 3600) * US);
}

Test(timefmt, separators_and_optional_seconds)
{
    cr_assert_eq(parse_ok("2025-10-30 09:12:05Z"), BASE_SECS * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12Z"), (BASE_SECS - 5) * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12+01:00"), (BASE_SECS - 5 - 3600) * US);
    cr_assert_eq(parse_ok("2025-10-30 09:12"), (BASE_SECS - 5) * US);
}

Test(timefmt, fractions_kept_to_microseconds)
{
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.1Z"), BASE_SECS * US + 100000);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.123Z"), BASE_SECS * US + 123000);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.123456Z"), BASE_SECS * US + 123456);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.000001Z"), BASE_SECS * US + 1);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.123456+02:00"), INT64_C(1761808325) * US + 123456);
}

Test(timefmt, fractions_beyond_microseconds_are_truncated)
{
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.123456789Z"), BASE_SECS * US + 123456);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.999999999Z"), BASE_SECS * US + 999999);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.0000009Z"), BASE_SECS * US);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.9999999Z"), -1);
}

Test(timefmt, leap_days)
{
    cr_assert_eq(parse_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800) * US);
    cr_assert_eq(parse_ok("2000-02-29T12:00:00Z"), INT64_C(951825600) * US);
    parse_err("2023-02-29T00:00:00Z", 0, "day 29 out of range for 2023-02");
    parse_err("1900-02-29T00:00:00Z", 0, "day 29 out of range for 1900-02");
    parse_err("2024-02-30T00:00:00Z", 0, "day 30 out of range for 2024-02");
    parse_err("2025-04-31T00:00:00Z", 0, "day 31 out of range for 2025-04");
}

Test(timefmt, month_and_year_boundaries)
{
    cdr_time t = parse_ok("2025-12-31T23:59:59-01:00");
    cr_assert_eq(t, INT64_C(1767229199) * US);
    assert_utc(t, "2026-01-01T00:59:59Z");

    /* An offset that moves the instant back across a month boundary, and one forward. */
    t = parse_ok("2025-11-01T01:00:00+02:00");
    assert_utc(t, "2025-10-31T23:00:00Z");
    t = parse_ok("2025-02-28T23:30:00-01:30");
    cr_assert_eq(t, INT64_C(1740790800) * US);
    assert_utc(t, "2025-03-01T01:00:00Z");
    t = parse_ok("2024-02-28T23:30:00-01:30");
    assert_utc(t, "2024-02-29T01:00:00Z");

    /* The day after Jan 31 is Feb 1, by arithmetic on days and on microseconds alike. */
    int y;
    unsigned m, d;
    int64_t jan31 = timefmt_days_from_civil(2025, 1, 31);
    cr_assert_eq(jan31, 20119);
    timefmt_civil_from_days(jan31 + 1, &y, &m, &d);
    cr_assert_eq(y, 2025);
    cr_assert_eq(m, 2u);
    cr_assert_eq(d, 1u);
    t = parse_ok("2025-01-31T00:00Z") + 86400 * US;
    cr_assert_eq(t, INT64_C(1738368000) * US);
    assert_utc(t, "2025-02-01T00:00:00Z");
}

Test(timefmt, second_60_folds_onto_the_next_second)
{
    cdr_time t = parse_ok("2016-12-31T23:59:60Z");
    cr_assert_eq(t, INT64_C(1483228800) * US);
    assert_utc(t, "2017-01-01T00:00:00Z");
    cr_assert_eq(parse_ok("2016-12-31T23:59:60.5Z"), INT64_C(1483228800) * US + 500000);
    cr_assert_eq(parse_ok("2025-10-30T09:12:60Z"), (BASE_SECS - 5 + 60) * US);
}

Test(timefmt, garbage_is_refused_with_the_reason)
{
    parse_err("", 0, "empty timestamp");
    parse_err("2025", 0, "expected a date YYYY-MM-DD");
    parse_err("2025-1-01T00:00Z", 0, "expected a date YYYY-MM-DD");
    parse_err("2025/10/30T09:12Z", 0, "expected a date YYYY-MM-DD");
    parse_err("0000-01-01T00:00Z", 0, "year 0 out of range");
    parse_err("2025-13-01", TIMEFMT_ALLOW_DATE, "month 13 out of range");
    parse_err("2025-00-01T00:00Z", 0, "month 0 out of range");
    parse_err("2025-10-32", TIMEFMT_ALLOW_DATE, "day 32 out of range for 2025-10");
    parse_err("2025-10-00T00:00Z", 0, "day 0 out of range for 2025-10");
    parse_err("2025-10-30X09:12Z", 0, "expected 'T' or ' ' after the date");
    parse_err("2025-10-30t09:12Z", 0, "expected 'T' or ' ' after the date");
    parse_err("2025-10-30T", 0, "expected hh:mm after the date");
    parse_err("2025-10-30T9:12Z", 0, "expected hh:mm after the date");
    parse_err("2025-10-30T0912Z", 0, "expected hh:mm after the date");
    parse_err("2025-10-30T25:00Z", 0, "hour 25 out of range");
    parse_err("2025-10-30T24:00Z", 0, "hour 24 out of range");
    parse_err("2025-10-30T09:60Z", 0, "minute 60 out of range");
    parse_err("2025-10-30T09:12:61Z", 0, "second 61 out of range");
    parse_err("2025-10-30T09:12:5Z", 0, "expected two-digit seconds");
    parse_err("2025-10-30T09:12:05.Z", 0, "expected digits after the decimal point");
    parse_err("2025-10-30T09:12.5Z", 0, "fraction without seconds");
    parse_err("2025-10-30T09:12:05.1234567891Z", 0, "fraction too long");
    parse_err("2025-10-30T09:12:05+19:00", 0, "offset out of range");
    parse_err("2025-10-30T09:12:05+18:01", 0, "offset out of range");
    parse_err("2025-10-30T09:12:05+05:60", 0, "offset out of range");
    parse_err("2025-10-30T09:12:05+5", 0, "malformed UTC offset");
    parse_err("2025-10-30T09:12:05+053", 0, "malformed UTC offset");
    parse_err("2025-10-30T09:12:05+05:", 0, "malformed UTC offset");
    parse_err("2025-10-30T09:12:05+05:3", 0, "malformed UTC offset");
    parse_err("2025-10-30T09:12:05Zx", 0, "trailing characters");
    parse_err("2025-10-30T09:12:05+02:00:00", 0, "trailing characters");
    parse_err("2025-10-30T09:12:05 ", 0, "trailing characters");
    /* Fullwidth digits are not digits here, whatever the locale says. */
    parse_err("\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x95-10-30T09:12:05Z", 0,
              "expected a date YYYY-MM-DD");
    parse_err("2025-10-30T09:12:05\xe2\x88\x92"
              "05:00",
              0, "trailing characters");
}

Test(timefmt, length_bounds_the_input_not_nul)
{
    static const char with_nul[] = "2025-10-30T09:12:05Z\0junk";
    parse_err_len(with_nul, sizeof(with_nul) - 1, 0, "trailing characters");
    parse_err_len("2025-10-30T09:12\0:05Z", 21, 0, "trailing characters");
    /* A prefix of a longer buffer is parsed on its own, no NUL required. */
    cdr_time t = 0;
    char err[64];
    cr_assert_eq(timefmt_parse("2025-10-30T09:12:05Zjunk", 20, 0, &t, NULL, err, sizeof(err)), 0);
    cr_assert_eq(t, BASE_SECS * US);
    /* A date cut short by 'len' is refused rather than read past. */
    parse_err_len("2025-10-30", 7, TIMEFMT_ALLOW_DATE, "expected a date YYYY-MM-DD");
}

Test(timefmt, error_buffer_may_be_small_or_absent)
{
    cdr_time t = 0;
    char err[8];
    cr_assert_eq(timefmt_parse("2025-13-01", 10, TIMEFMT_ALLOW_DATE, &t, NULL, err, sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "month 1");
    cr_assert_eq(timefmt_parse("x", 1, 0, &t, NULL, NULL, 0), -1);
}

Test(timefmt, require_offset)
{
    parse_err("2025-10-30T09:12:05", TIMEFMT_REQUIRE_OFFSET, "missing UTC offset");
    parse_err("2025-10-30T09:12", TIMEFMT_REQUIRE_OFFSET, "missing UTC offset");
    parse_err("2025-10-30T09:12:05.5", TIMEFMT_REQUIRE_OFFSET, "missing UTC offset");
    parse_err("2025-10-30T09:12:05 ", TIMEFMT_REQUIRE_OFFSET, "trailing characters");
    cr_assert_eq(parse_ok_flags("2025-10-30T09:12:05Z", TIMEFMT_REQUIRE_OFFSET), BASE_SECS * US);
    cr_assert_eq(parse_ok_flags("2025-10-30T09:12:05+02", TIMEFMT_REQUIRE_OFFSET),
                 INT64_C(1761808325) * US);
    /* Without the flag a naive datetime is UTC. */
    cr_assert_eq(parse_ok("2025-10-30T09:12:05"), BASE_SECS * US);
    cr_assert_eq(parse_ok("2025-10-30T09:12:05.25"), BASE_SECS * US + 250000);
}

Test(timefmt, date_only)
{
    parse_err("2025-10-30", 0, "date without a time");
    parse_err("2025-10-30", TIMEFMT_REQUIRE_OFFSET, "date without a time");

    cdr_time t = 0;
    bool date_only = false;
    char err[64] = "";
    cr_assert_eq(
        timefmt_parse("2025-10-30", 10, TIMEFMT_ALLOW_DATE, &t, &date_only, err, sizeof(err)), 0);
    cr_assert_eq(t, INT64_C(1761782400) * US);
    cr_assert(date_only);

    /* The offset requirement is about datetimes; a bare date is still its 00:00 UTC. */
    date_only = false;
    cr_assert_eq(timefmt_parse("1969-12-31", 10, TIMEFMT_ALLOW_DATE | TIMEFMT_REQUIRE_OFFSET, &t,
                               &date_only, err, sizeof(err)),
                 0);
    cr_assert_eq(t, -86400 * US);
    cr_assert(date_only);

    /* A datetime clears the flag even when the date form is allowed. */
    cr_assert_eq(timefmt_parse("2025-10-30T09:12:05Z", 20, TIMEFMT_ALLOW_DATE, &t, &date_only, err,
                               sizeof(err)),
                 0);
    cr_assert_eq(t, BASE_SECS * US);
    cr_assert_not(date_only);

    parse_err("2025-10-30x", TIMEFMT_ALLOW_DATE, "expected 'T' or ' ' after the date");
}

Test(timefmt, format_utc)
{
    assert_utc(BASE_SECS * US, "2025-10-30T09:12:05Z");
    assert_utc(BASE_SECS * US + 123456, "2025-10-30T09:12:05.123456Z");
    assert_utc(BASE_SECS * US + 1, "2025-10-30T09:12:05.000001Z");
    assert_utc(0, "1970-01-01T00:00:00Z");
    assert_utc(-1, "1969-12-31T23:59:59.999999Z");
    assert_utc(-US, "1969-12-31T23:59:59Z");
    assert_utc(-86400 * US, "1969-12-31T00:00:00Z");
    assert_utc(-86400 * US - 1, "1969-12-30T23:59:59.999999Z");
    assert_utc(INT64_C(-2208988800) * US, "1900-01-01T00:00:00Z");
    assert_utc(INT64_C(-62135596800) * US, "0001-01-01T00:00:00Z");
    assert_utc(INT64_C(253402300799) * US + 999999, "9999-12-31T23:59:59.999999Z");
}

Test(timefmt, format_pg)
{
    char buf[64];
    cr_assert_eq(timefmt_format_pg(BASE_SECS * US + 123456, buf, sizeof(buf)), 29u);
    cr_assert_str_eq(buf, "2025-10-30 09:12:05.123456+00");
    cr_assert_eq(timefmt_format_pg(BASE_SECS * US, buf, sizeof(buf)), 22u);
    cr_assert_str_eq(buf, "2025-10-30 09:12:05+00");
    cr_assert_eq(timefmt_format_pg(-500000, buf, sizeof(buf)), 29u);
    cr_assert_str_eq(buf, "1969-12-31 23:59:59.500000+00");
}

Test(timefmt, format_needs_room_for_the_nul)
{
    char buf[32];
    memset(buf, 'x', sizeof(buf));
    cr_assert_eq(timefmt_format_utc(BASE_SECS * US, buf, 20), 0u);
    cr_assert_eq(timefmt_format_utc(BASE_SECS * US, buf, 21), 20u);
    cr_assert_str_eq(buf, "2025-10-30T09:12:05Z");
    cr_assert_eq(timefmt_format_pg(BASE_SECS * US + 1, buf, 29), 0u);
    cr_assert_eq(timefmt_format_pg(BASE_SECS * US + 1, buf, 30), 29u);
    cr_assert_eq(timefmt_format_utc(0, buf, 0), 0u);
    /* The extremes of the type still fit the documented 32 bytes. */
    cr_assert_neq(timefmt_format_utc(INT64_MIN, buf, sizeof(buf)), 0u);
    cr_assert_neq(timefmt_format_pg(INT64_MAX, buf, sizeof(buf)), 0u);
}

/* Both printed forms parse back to the very same instant. */
static void assert_round_trip(cdr_time t)
{
    char buf[32];
    char err[64] = "";
    cdr_time back = INT64_MIN;

    size_t n = timefmt_format_utc(t, buf, sizeof(buf));
    cr_assert_neq(n, 0u);
    cr_assert_eq(timefmt_parse(buf, n, TIMEFMT_REQUIRE_OFFSET, &back, NULL, err, sizeof(err)), 0,
                 "\"%s\": %s", buf, err);
    cr_assert_eq(back, t, "\"%s\" parsed to %lld, not %lld", buf, (long long)back, (long long)t);

    n = timefmt_format_pg(t, buf, sizeof(buf));
    cr_assert_neq(n, 0u);
    back = INT64_MIN;
    cr_assert_eq(timefmt_parse(buf, n, TIMEFMT_REQUIRE_OFFSET, &back, NULL, err, sizeof(err)), 0,
                 "\"%s\": %s", buf, err);
    cr_assert_eq(back, t, "\"%s\" parsed to %lld, not %lld", buf, (long long)back, (long long)t);
}

Test(timefmt, format_parse_round_trip)
{
    static const cdr_time fixed[] = {
        0,
        1,
        -1,
        999999,
        -999999,
        1000000,
        -1000000,
        BASE_SECS * US,
        BASE_SECS * US + 123456,
        -86400 * US,
        -86400 * US + 1,
        INT64_C(951825600) * US + 500000,    /* 2000-02-29T12:00:00.5Z */
        INT64_C(1483228800) * US - 1,        /* the last microsecond of 2016 */
        INT64_C(-2208988800) * US - 1,       /* just before 1900 */
        INT64_C(-62135596800) * US,          /* 0001-01-01T00:00:00Z, the first instant */
        INT64_C(253402300799) * US + 999999, /* 9999-12-31T23:59:59.999999Z, the last */
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(fixed); i++)
        assert_round_trip(fixed[i]);

    /* A deterministic spread over years 1-9999, fractional and whole seconds alike. */
    const int64_t lo = INT64_C(-62135596800) * US;
    const uint64_t span = (uint64_t)(INT64_C(253402300800) * US - lo);
    uint64_t x = UINT64_C(0x9e3779b97f4a7c15);
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        cdr_time t = lo + (int64_t)(x % span);
        if (i % 4 == 0)
            t -= ((t % US) + US) % US; /* whole seconds, printed without a fraction */
        assert_round_trip(t);
    }
}

Test(timefmt, civil_anchors)
{
    cr_assert_eq(timefmt_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(timefmt_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(timefmt_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(timefmt_days_from_civil(1900, 3, 1), -25508);
    cr_assert_eq(timefmt_days_from_civil(1600, 2, 29), -135081);
    cr_assert_eq(timefmt_days_from_civil(1, 1, 1), -719162);
    cr_assert_eq(timefmt_days_from_civil(9999, 12, 31), 2932896);

    int y;
    unsigned m, d;
    timefmt_civil_from_days(0, &y, &m, &d);
    cr_assert(y == 1970 && m == 1 && d == 1);
    timefmt_civil_from_days(11017, &y, &m, &d);
    cr_assert(y == 2000 && m == 3 && d == 1);
    timefmt_civil_from_days(-1, &y, &m, &d);
    cr_assert(y == 1969 && m == 12 && d == 31);
    timefmt_civil_from_days(-719162, &y, &m, &d);
    cr_assert(y == 1 && m == 1 && d == 1);
    timefmt_civil_from_days(2932896, &y, &m, &d);
    cr_assert(y == 9999 && m == 12 && d == 31);
}

Test(timefmt, civil_round_trip_every_17_days)
{
    int64_t first = timefmt_days_from_civil(1, 1, 1);
    int64_t last = timefmt_days_from_civil(9999, 12, 31);
    for (int64_t z = first; z <= last; z += 17) {
        int y;
        unsigned m, d;
        timefmt_civil_from_days(z, &y, &m, &d);
        cr_assert(y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= 31,
                  "day %lld gave %d-%u-%u", (long long)z, y, m, d);
        cr_assert_eq(timefmt_days_from_civil(y, m, d), z, "day %lld gave %04d-%02u-%02u",
                     (long long)z, y, m, d);
    }
}

/* Walks the calendar one day at a time with its own month lengths, so the arithmetic is checked
 * against counting rather than against itself. */
Test(timefmt, civil_matches_a_day_by_day_walk)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t z = -719162;
    for (int y = 1; y <= 9999; y++) {
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (unsigned m = 1; m <= 12; m++) {
            unsigned n = dim[m - 1] + (m == 2 && leap);
            for (unsigned d = 1; d <= n; d++, z++) {
                if (timefmt_days_from_civil(y, m, d) != z)
                    cr_assert_fail("%04d-%02u-%02u is not day %lld", y, m, d, (long long)z);
                int yy;
                unsigned mm, dd;
                timefmt_civil_from_days(z, &yy, &mm, &dd);
                if (yy != y || mm != m || dd != d)
                    cr_assert_fail("day %lld gave %04d-%02u-%02u, not %04d-%02u-%02u", (long long)z,
                                   yy, mm, dd, y, m, d);
            }
        }
    }
    cr_assert_eq(z, 2932897);
}

Test(timefmt, now_is_the_wall_clock)
{
    time_t before = time(NULL);
    cdr_time now = timefmt_now();
    time_t after = time(NULL);
    cr_assert_geq(now, (cdr_time)before * US);
    cr_assert_lt(now, ((cdr_time)after + 1) * US);
}
