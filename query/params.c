/* params.c - the query string of a read request: decoding, the endpoint's allowed set, each value.
 */
#include "params.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "errfmt.h"
#include "ident.h"

#define KEY_MAX    32  /* longer than any parameter name */
#define VALUE_MAX  512 /* longer than any valid value, so a long one is refused by its own rule */
#define PAGE_MAX   1000000L
#define US_PER_DAY (INT64_C(86400) * TIMEFMT_US_PER_SEC)

static const char *const DIRECTIONS[] = {"in", "out", NULL};
static const char *const DISPOSITIONS[] = {"ANSWERED", "NO_ANSWER", "BUSY", "FAILED", NULL};
static const char *const FORMATS[] = {"csv", "json", NULL};
static const char *const GROUP_BYS[] = {"period", "store", "agent", NULL};
static const char *const BUCKETS[] = {"hour", "day", NULL};

static const struct {
    const char *name;
    unsigned bit;
} NAMES[] = {
    {"sip_domain", P_SIP_DOMAIN},
    {"from", P_FROM},
    {"to", P_TO},
    {"tz", P_TZ},
    {"direction", P_DIRECTION},
    {"disposition", P_DISPOSITION},
    {"did_e164", P_DID},
    {"ext", P_EXT},
    {"store_id", P_STORE},
    {"page", P_PAGE},
    {"page_size", P_PAGE_SIZE},
    {"cursor", P_CURSOR},
    {"format", P_FORMAT},
    {"only_unique", P_ONLY_UNIQUE},
    {"group_by", P_GROUP_BY},
    {"bucket", P_BUCKET},
};

/* Percent-decodes the 'len' bytes at 's' into 'out' ('outlen' bytes, NUL-terminated), '+' as a
 * space. Returns the decoded length, -1 on a malformed escape or an encoded NUL, -2 when the
 * result does not fit. */
static long decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = ascii_hex_value(s[i + 1]), lo = ascii_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= outlen)
            return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

/* Copies 's' into 'out' for an error message: printable ASCII only, cut to 'outlen'. */
static void printable(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 1 < outlen; s++)
        out[o++] = (*s >= 0x20 && *s < 0x7f && *s != '\'') ? *s : '?';
    out[o] = '\0';
}

/* The entry of 'choices' equal to 'v' (ignoring case when 'nocase'), or NULL. The entry, not
 * 'v', is kept, so the result is always the canonical spelling. */
static const char *choose(const char *v, const char *const *choices, bool nocase)
{
    for (; *choices; choices++)
        if (nocase ? strcasecmp(v, *choices) == 0 : strcmp(v, *choices) == 0)
            return *choices;
    return NULL;
}

static bool all_of(const char *v, size_t minlen, size_t maxlen, const char *extra)
{
    size_t n = strlen(v);
    if (n < minlen || n > maxlen)
        return false;
    for (; *v; v++)
        if (!ascii_is_alnum(*v) && !strchr(extra, *v))
            return false;
    return true;
}

/* A whole number in [min, max] written in plain digits; fills 'err' (naming 'name') otherwise. */
static int parse_count(const char *name, const char *v, long min, long max, long *out, char *err,
                       size_t errlen)
{
    size_t n = strlen(v);
    if (n == 0 || n > 18 || strspn(v, "0123456789") != n) {
        if (n > 18 && strspn(v, "0123456789") == n)
            cdr_errf(err, errlen, "%s: %.24s is over %ld", name, v, max);
        else
            cdr_errf(err, errlen, "%s: not a whole number", name);
        return -1;
    }
    long long x = 0;
    for (const char *p = v; *p; p++)
        x = x * 10 + (*p - '0');
    if (x < min) {
        cdr_errf(err, errlen, "%s: %lld is under %ld", name, x, min);
        return -1;
    }
    if (x > max) {
        cdr_errf(err, errlen, "%s: %lld is over %ld", name, x, max);
        return -1;
    }
    *out = (long)x;
    return 0;
}

/* Parses a from/to value into its instant, date-only flag and normalised text. */
static int parse_bound(const char *name, const char *v, cdr_time *t, bool *is_date, char *text,
                       size_t textlen, char *err, size_t errlen)
{
    char why[128] = "";
    *is_date = false;
    if (timefmt_parse(v, strlen(v), TIMEFMT_ALLOW_DATE | TIMEFMT_REQUIRE_OFFSET, t, is_date, why,
                      sizeof(why)) != 0) {
        cdr_errf(err, errlen, "%s: not an ISO 8601 date or datetime with offset (%s)", name, why);
        return -1;
    }
    if (*is_date) {
        int y;
        unsigned m, d;
        timefmt_civil_from_days(*t / US_PER_DAY, &y, &m, &d);
        snprintf(text, textlen, "%04d-%02u-%02u", y, m, d);
    } else if (timefmt_format_pg(*t, text, textlen) == 0) {
        cdr_errf(err, errlen, "%s: out of range", name);
        return -1;
    }
    return 0;
}

/* Checks and stores the value 'v' of the parameter 'bit' named 'name'. */
static int set_value(query_params *out, unsigned bit, const char *name, const char *v, char *err,
                     size_t errlen)
{
    size_t n = strlen(v);
    switch (bit) {
    case P_SIP_DOMAIN:
        if (!cdr_domain_normalise(v, n, out->sip_domain, sizeof(out->sip_domain))) {
            cdr_errf(err, errlen, "sip_domain: not a domain name");
            return -1;
        }
        return 0;
    case P_FROM:
        out->has_from = true;
        return parse_bound(name, v, &out->from_t, &out->from_is_date, out->from, sizeof(out->from),
                           err, errlen);
    case P_TO:
        out->has_to = true;
        return parse_bound(name, v, &out->to_t, &out->to_is_date, out->to, sizeof(out->to), err,
                           errlen);
    case P_TZ:
        /* Only the shape: whether PostgreSQL knows the zone is the caller's check. */
        if (!all_of(v, 1, PARAMS_TZ_MAX, "_+/-")) {
            cdr_errf(err, errlen, "tz: not a time zone name");
            return -1;
        }
        memcpy(out->tz, v, n + 1);
        return 0;
    case P_DIRECTION:
        if (!(out->direction = choose(v, DIRECTIONS, false))) {
            cdr_errf(err, errlen, "direction: must be in or out");
            return -1;
        }
        return 0;
    case P_DISPOSITION:
        if (!(out->disposition = choose(v, DISPOSITIONS, true))) {
            cdr_errf(err, errlen, "disposition: must be ANSWERED, NO_ANSWER, BUSY or FAILED");
            return -1;
        }
        return 0;
    case P_DID:
        if (n < 3 || n > 16 || v[0] != '+' || strspn(v + 1, "0123456789") != n - 1) {
            /* An unencoded '+' arrives as a space: say how to send it. */
            cdr_errf(err, errlen, "did_e164: not an E.164 number ('+' and 2 to 15 digits%s)",
                     v[0] == ' ' ? "; send '+' as %2B" : "");
            return -1;
        }
        memcpy(out->did_e164, v, n + 1);
        return 0;
    case P_EXT:
        if (!all_of(v, 1, sizeof(out->ext) - 1, "*#_.+-")) {
            cdr_errf(err, errlen, "ext: not an extension (1 to 32 of 0-9 A-Z a-z * # _ . + -)");
            return -1;
        }
        memcpy(out->ext, v, n + 1);
        return 0;
    case P_STORE:
        if (!cdr_uuid_normalise(v, n, out->store_id)) {
            cdr_errf(err, errlen, "store_id: not a UUID");
            return -1;
        }
        return 0;
    case P_PAGE:
        return parse_count(name, v, 1, PAGE_MAX, &out->page, err, errlen);
    case P_PAGE_SIZE:
        return parse_count(name, v, 1, PARAMS_MAX_PAGE_SIZE, &out->page_size, err, errlen);
    case P_CURSOR:
        /* Only the alphabet and length: cursor_decode() reads it. */
        if (!all_of(v, 1, sizeof(out->cursor) - 1, "-_")) {
            cdr_errf(err, errlen, "cursor: not a cursor");
            return -1;
        }
        memcpy(out->cursor, v, n + 1);
        return 0;
    case P_FORMAT: {
        const char *f = choose(v, FORMATS, false);
        if (!f) {
            cdr_errf(err, errlen, "format: must be csv or json");
            return -1;
        }
        out->csv = f == FORMATS[0];
        return 0;
    }
    case P_ONLY_UNIQUE:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            out->only_unique = true;
        } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            out->only_unique = false;
        } else {
            cdr_errf(err, errlen, "only_unique: must be true or false");
            return -1;
        }
        return 0;
    case P_GROUP_BY:
        if (!(out->group_by = choose(v, GROUP_BYS, false))) {
            cdr_errf(err, errlen, "group_by: must be period, store or agent");
            return -1;
        }
        return 0;
    case P_BUCKET:
        if (!(out->bucket = choose(v, BUCKETS, false))) {
            cdr_errf(err, errlen, "bucket: must be hour or day");
            return -1;
        }
        return 0;
    }
    cdr_errf(err, errlen, "%s: not handled", name);
    return -1;
}

static const char *name_of(unsigned bit)
{
    for (size_t i = 0; i < CDR_ARRAY_LEN(NAMES); i++)
        if (NAMES[i].bit == bit)
            return NAMES[i].name;
    return "";
}

/* The range checks once both bounds are known; a date-only 'to' ends with its day. */
static int check_range(const query_params *p, char *param, size_t paramlen, char *err,
                       size_t errlen)
{
    if (!p->has_from || !p->has_to)
        return 0;
    cdr_time end = p->to_t + (p->to_is_date ? US_PER_DAY : 0);
    if (p->from_t >= end) {
        snprintf(param, paramlen, "from");
        cdr_errf(err, errlen, p->from_t > p->to_t ? "from is after to" : "from is not before to");
        return -1;
    }
    if (end - p->from_t > PARAMS_MAX_RANGE_DAYS * US_PER_DAY) {
        snprintf(param, paramlen, "to");
        cdr_errf(err, errlen, "to: the range spans more than %d days", PARAMS_MAX_RANGE_DAYS);
        return -1;
    }
    return 0;
}

int params_parse(const char *qs, unsigned allowed, unsigned required, query_params *out,
                 char *param, size_t paramlen, char *err, size_t errlen)
{
    char key[KEY_MAX];
    char value[VALUE_MAX];
    unsigned seen = 0;

    memset(out, 0, sizeof(*out));
    snprintf(out->tz, sizeof(out->tz), "UTC");
    out->page = 1;
    out->page_size = PARAMS_DEFAULT_PAGE_SIZE;
    out->group_by = GROUP_BYS[0];
    out->bucket = BUCKETS[1];
    if (param && paramlen)
        param[0] = '\0';
    if (!param)
        paramlen = 0;

    for (const char *p = qs ? qs : ""; *p;) {
        size_t len = strcspn(p, "&");
        const char *next = p[len] ? p + len + 1 : p + len;
        if (len == 0) { /* "a=1&&b=2" or a trailing '&' */
            p = next;
            continue;
        }
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        long k = decode(p, klen, key, sizeof(key));
        if (k < 0) /* too long or malformed: no parameter has such a name; show it as sent */
            snprintf(key, sizeof(key), "%.*s", (int)(klen < KEY_MAX ? klen : KEY_MAX), p);
        unsigned bit = 0;
        for (size_t i = 0; k >= 0 && i < CDR_ARRAY_LEN(NAMES); i++)
            if (strcmp(key, NAMES[i].name) == 0)
                bit = NAMES[i].bit;
        if (!(bit & allowed)) {
            char shown[KEY_MAX];
            printable(key, shown, sizeof(shown));
            snprintf(param, paramlen, "%s", shown);
            cdr_errf(err, errlen, "unknown parameter '%s'", shown);
            return -1;
        }
        const char *name = name_of(bit);
        snprintf(param, paramlen, "%s", name);
        if (seen & bit) {
            cdr_errf(err, errlen, "%s: given more than once", name);
            return -1;
        }
        seen |= bit;
        const char *v = eq ? eq + 1 : p + len;
        long vl = decode(v, (size_t)(p + len - v), value, sizeof(value));
        if (vl == -1) {
            cdr_errf(err, errlen, "%s: malformed percent-encoding", name);
            return -1;
        }
        if (vl == -2) {
            cdr_errf(err, errlen, "%s: value too long", name);
            return -1;
        }
        if (set_value(out, bit, name, value, err, errlen) != 0)
            return -1;
        p = next;
    }

    unsigned missing = required & ~seen;
    if (missing) {
        const char *name = name_of(missing & -missing);
        snprintf(param, paramlen, "%s", name);
        cdr_errf(err, errlen, "%s is required", name);
        return -1;
    }
    if (check_range(out, param, paramlen, err, errlen) != 0)
        return -1;
    if (param && paramlen)
        param[0] = '\0';
    return 0;
}
