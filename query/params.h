/* params.h - a request's query string checked against what its endpoint accepts: every bad or
 * unknown parameter is a 400 naming it. */
#ifndef CDR_QUERY_PARAMS_H
#define CDR_QUERY_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "cursor.h"
#include "timefmt.h"

/* The parameters an endpoint may accept, as a bit set. */
enum {
    P_SIP_DOMAIN = 1u << 0,
    P_FROM = 1u << 1,
    P_TO = 1u << 2,
    P_TZ = 1u << 3,
    P_DIRECTION = 1u << 4,
    P_DISPOSITION = 1u << 5,
    P_DID = 1u << 6,
    P_EXT = 1u << 7,
    P_STORE = 1u << 8,
    P_PAGE = 1u << 9,
    P_PAGE_SIZE = 1u << 10,
    P_CURSOR = 1u << 11,
    P_FORMAT = 1u << 12,
    P_ONLY_UNIQUE = 1u << 13,
    P_GROUP_BY = 1u << 14,
    P_BUCKET = 1u << 15,
};

#define PARAMS_DEFAULT_PAGE_SIZE 50
#define PARAMS_MAX_PAGE_SIZE     500
#define PARAMS_MAX_RANGE_DAYS    400
#define PARAMS_TZ_MAX            64

typedef struct query_params {
    char sip_domain[254];
    /* The range as given: a date-only bound is resolved to an instant in 'tz' by the SQL
     * (the zone rules live in PostgreSQL). */
    bool has_from, has_to;
    bool from_is_date, to_is_date;
    char from[40], to[40]; /* normalised: "YYYY-MM-DD" or UTC "YYYY-MM-DD hh:mm:ss.ffffff+00" */
    cdr_time from_t, to_t; /* the instants (a date as its UTC midnight, for ordering checks) */
    char tz[PARAMS_TZ_MAX + 1]; /* default "UTC" */
    const char *direction;      /* "in" | "out" | NULL */
    const char *disposition;    /* "ANSWERED" ... | NULL */
    char did_e164[17];          /* "" = no filter */
    char ext[33];
    char store_id[37];
    long page;               /* 1-based, default 1 */
    long page_size;          /* default 50, max 500 */
    char cursor[CURSOR_MAX]; /* base64url, checked only for its alphabet and length */
    bool csv;
    bool only_unique;
    const char *group_by; /* "period" | "store" | "agent" */
    const char *bucket;   /* "hour" | "day" */
} query_params;

/* Parses the query string 'qs' (may be NULL) of an endpoint accepting 'allowed' and requiring
 * 'required'. Percent-decoding and '+' as space are handled; a parameter given twice is an
 * error. Returns 0, or -1 with 'param' the offending parameter's name and 'err' a message
 * naming it ("from: not an ISO 8601 date or datetime with offset", "page_size: 900 is over
 * 500", "unknown parameter 'foo'", "from is after to", "tz: unknown time zone" is NOT checked
 * here — zone names are checked against PostgreSQL's list by the caller). */
int params_parse(const char *qs, unsigned allowed, unsigned required, query_params *out,
                 char *param, size_t paramlen, char *err, size_t errlen) CDR_MUST_CHECK;

#endif
