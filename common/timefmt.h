/* timefmt.h - ISO 8601 parsing and UTC printing; times are microseconds since the epoch. */
#ifndef CDR_TIMEFMT_H
#define CDR_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* Microseconds since 1970-01-01T00:00:00Z. */
typedef int64_t cdr_time;

#define TIMEFMT_REQUIRE_OFFSET 0x1 /* a datetime must carry Z or +hh:mm / -hh:mm / +hhmm / +hh */
#define TIMEFMT_ALLOW_DATE     0x2 /* "YYYY-MM-DD" alone is accepted (as its 00:00 UTC) */

/* Parses the 'len' bytes at 's' (no NUL needed):
 *   YYYY-MM-DD                                    (only with TIMEFMT_ALLOW_DATE)
 *   YYYY-MM-DD[T| ]hh:mm[:ss[.fraction]][offset]  fraction 1-9 digits, kept to microseconds
 *                                                 (truncated); offset Z, z, ±hh, ±hhmm, ±hh:mm
 * A datetime without an offset is UTC unless TIMEFMT_REQUIRE_OFFSET refuses it. Years 1-9999;
 * the date must exist (Feb 29 only in leap years), hh 0-23, mm 0-59, ss 0-60 (60 is folded
 * onto the next second), offsets up to ±18:00. Nothing may follow.
 * Returns 0 and sets '*out' (and '*date_only' when not NULL), or -1 with a short reason in
 * 'err' ("month 13 out of range", "missing UTC offset", "trailing characters"). */
int timefmt_parse(const char *s, size_t len, unsigned flags, cdr_time *out, bool *date_only,
                  char *err, size_t errlen) CDR_MUST_CHECK;

/* Writes "2025-10-30T09:12:05Z" (seconds; a fraction is printed as ".ffffff" only when it is
 * not zero). Returns the length written (< 'len'), or 0 when 'len' is too small (32 is always
 * enough). */
size_t timefmt_format_utc(cdr_time t, char *buf, size_t len);

/* Writes "2025-10-30 09:12:05.123456+00", the PostgreSQL text form COPY and parameters accept.
 * Same return convention as timefmt_format_utc. */
size_t timefmt_format_pg(cdr_time t, char *buf, size_t len);

/* The current time. */
cdr_time timefmt_now(void);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard Hinnant's algorithm).
 * Valid for years 1-9999. */
int64_t timefmt_days_from_civil(int y, unsigned m, unsigned d);
void timefmt_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d);

#define TIMEFMT_US_PER_SEC INT64_C(1000000)

#endif
