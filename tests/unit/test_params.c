/* test_params.c - query strings: decoding, each parameter's rule, the range and the errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "params.h"

#define ALL       0xffffu
#define DOMAIN    "sip_domain=shop.example.it"
#define ANALYTICS (P_SIP_DOMAIN | P_FROM | P_TO | P_TZ)

static query_params parse_ok(const char *qs, unsigned allowed, unsigned required)
{
    query_params p;
    char param[64] = "", err[256] = "";
    int rc = params_parse(qs, allowed, required, &p, param, sizeof(param), err, sizeof(err));
    cr_assert_eq(rc, 0, "%s: [%s] %s", qs, param, err);
    return p;
}

static void parse_fails(const char *qs, unsigned allowed, unsigned required, const char *want_param,
                        const char *want_err)
{
    query_params p;
    char param[64] = "", err[256] = "";
    cr_assert_eq(params_parse(qs, allowed, required, &p, param, sizeof(param), err, sizeof(err)),
                 -1, "%s was accepted", qs);
    cr_assert_str_eq(param, want_param, "%s: %s", qs, err);
    cr_assert_eq(strncmp(err, want_err, strlen(want_err)), 0, "%s: '%s' does not start '%s'", qs,
                 err, want_err);
}

/* Parses "sip_domain=...&<rest>" accepting everything. */
static query_params with(const char *rest)
{
    char qs[512];
    snprintf(qs, sizeof(qs), DOMAIN "&%s", rest);
    return parse_ok(qs, ALL, P_SIP_DOMAIN);
}

static void bad(const char *rest, const char *want_param, const char *want_err)
{
    char qs[512];
    snprintf(qs, sizeof(qs), DOMAIN "&%s", rest);
    parse_fails(qs, ALL, P_SIP_DOMAIN, want_param, want_err);
}

Test(params, defaults)
{
    query_params p = parse_ok(DOMAIN, ALL, P_SIP_DOMAIN);
    cr_assert_str_eq(p.sip_domain, "shop.example.it");
    cr_assert(!p.has_from && !p.has_to);
    cr_assert_str_eq(p.tz, "UTC");
    cr_assert_null(p.direction);
    cr_assert_null(p.disposition);
    cr_assert_str_eq(p.did_e164, "");
    cr_assert_str_eq(p.ext, "");
    cr_assert_str_eq(p.store_id, "");
    cr_assert_eq(p.page, 1);
    cr_assert_eq(p.page_size, PARAMS_DEFAULT_PAGE_SIZE);
    cr_assert_str_eq(p.cursor, "");
    cr_assert(!p.csv && !p.only_unique);
    cr_assert_str_eq(p.group_by, "period");
    cr_assert_str_eq(p.bucket, "day");
}

Test(params, empty_and_null_query_strings)
{
    query_params p = parse_ok(NULL, ALL, 0);
    cr_assert_eq(p.page, 1);
    parse_ok("", ALL, 0);
    parse_ok("&&" DOMAIN "&", ALL, P_SIP_DOMAIN);
    parse_fails(NULL, ALL, P_SIP_DOMAIN, "sip_domain", "sip_domain is required");
}

Test(params, unknown_repeated_and_required)
{
    bad("foo=1", "foo", "unknown parameter 'foo'");
    /* Known, but not to this endpoint. */
    parse_fails(DOMAIN "&page=2", ANALYTICS, P_SIP_DOMAIN, "page", "unknown parameter 'page'");
    parse_fails(DOMAIN "&" DOMAIN, ALL, P_SIP_DOMAIN, "sip_domain",
                "sip_domain: given more than once");
    bad("page=1&page=2", "page", "page: given more than once");
    parse_fails("from=2025-10-01&to=2025-10-02", ANALYTICS, P_SIP_DOMAIN | P_FROM | P_TO,
                "sip_domain", "sip_domain is required");
    parse_fails(DOMAIN "&from=2025-10-01", ANALYTICS, P_SIP_DOMAIN | P_FROM | P_TO, "to",
                "to is required");
    /* Names are matched exactly, after decoding. */
    bad("Page=1", "Page", "unknown parameter 'Page'");
    query_params p = with("pag%65=3");
    cr_assert_eq(p.page, 3);
    bad("%zz=1", "%zz", "unknown parameter '%zz'");
}

Test(params, percent_decoding)
{
    query_params p = with("ext=%2A1%23");
    cr_assert_str_eq(p.ext, "*1#");
    /* '+' is a space, which no extension holds; %2B is a '+'. */
    bad("ext=1+2", "ext", "ext: not an extension");
    cr_assert_str_eq(with("ext=1%2B2").ext, "1+2");
    bad("ext=1%2", "ext", "ext: malformed percent-encoding");
    bad("ext=1%g1", "ext", "ext: malformed percent-encoding");
    bad("ext=1%00", "ext", "ext: malformed percent-encoding");
    p = parse_ok("sip_domain=Shop.Example.IT", ALL, P_SIP_DOMAIN);
    cr_assert_str_eq(p.sip_domain, "shop.example.it");
    /* A parameter without '=' has an empty value. */
    bad("ext", "ext", "ext: ");
}

Test(params, sip_domain)
{
    parse_fails("sip_domain=bad_domain", ALL, P_SIP_DOMAIN, "sip_domain",
                "sip_domain: not a domain name");
    parse_fails("sip_domain=", ALL, P_SIP_DOMAIN, "sip_domain", "sip_domain: not a domain name");
    parse_fails("sip_domain=-a.example.it", ALL, P_SIP_DOMAIN, "sip_domain", "sip_domain: ");
}

Test(params, dates_and_datetimes)
{
    query_params p = with("from=2025-10-01&to=2025-10-31");
    cr_assert(p.has_from && p.has_to && p.from_is_date && p.to_is_date);
    cr_assert_str_eq(p.from, "2025-10-01");
    cr_assert_str_eq(p.to, "2025-10-31");

    p = with("from=2025-10-01T08:00:00%2B02:00&to=2025-10-02T00:00:00Z");
    cr_assert(!p.from_is_date && !p.to_is_date);
    cr_assert_str_eq(p.from, "2025-10-01 06:00:00+00");
    cr_assert_str_eq(p.to, "2025-10-02 00:00:00+00");
    cr_assert_eq(p.to_t - p.from_t, INT64_C(18) * 3600 * 1000000);

    /* Mixed; a fraction survives. */
    p = with("from=2025-10-01T23:59:59.5-01:00&to=2025-10-03");
    cr_assert_str_eq(p.from, "2025-10-02 00:59:59.500000+00");
    cr_assert(p.to_is_date && !p.from_is_date);

    /* An unencoded '+' is a space, so the offset is lost. */
    bad("from=2025-10-01T08:00:00+02:00", "from",
        "from: not an ISO 8601 date or datetime with offset");
    bad("from=2025-10-01T08:00:00", "from", "from: not an ISO 8601 date or datetime with offset");
    bad("to=2025-13-01", "to", "to: not an ISO 8601 date or datetime with offset");
    bad("to=", "to", "to: not an ISO 8601");
    bad("from=yesterday", "from", "from: not an ISO 8601");
}

Test(params, date_only_to_includes_its_day)
{
    /* One day: the whole of 2025-10-01. */
    query_params p = with("from=2025-10-01&to=2025-10-01");
    cr_assert_str_eq(p.from, "2025-10-01");
    cr_assert_str_eq(p.to, "2025-10-01");
    /* A datetime in that day is before the end of a date-only 'to'. */
    with("from=2025-10-01T23:00:00Z&to=2025-10-01");
    bad("from=2025-10-02&to=2025-10-01", "from", "from is after to");
    bad("from=2025-10-02T00:00:01Z&to=2025-10-01", "from", "from is after to");
    /* A datetime 'to' is exclusive: an empty range is refused. */
    bad("from=2025-10-01T08:00:00Z&to=2025-10-01T08:00:00Z", "from", "from is not before to");
    bad("from=2025-10-01T09:00:00Z&to=2025-10-01T08:00:00Z", "from", "from is after to");
    bad("from=2025-10-02&to=2025-10-01T23:00:00Z", "from", "from is after to");
}

Test(params, range_at_most_400_days)
{
    /* 2025-01-01 .. 2026-02-04 inclusive is exactly 400 days. */
    with("from=2025-01-01&to=2026-02-04");
    bad("from=2025-01-01&to=2026-02-05", "to", "to: the range spans more than 400 days");
    with("from=2025-01-01T00:00:00Z&to=2026-02-05T00:00:00Z");
    bad("from=2025-01-01T00:00:00Z&to=2026-02-05T00:00:01Z", "to", "to: the range spans");
    /* A single bound has no range to check. */
    with("from=2000-01-01");
}

Test(params, tz)
{
    cr_assert_str_eq(with("tz=Europe%2FRome").tz, "Europe/Rome");
    cr_assert_str_eq(with("tz=America/Argentina/Buenos_Aires").tz,
                     "America/Argentina/Buenos_Aires");
    cr_assert_str_eq(with("tz=Etc/GMT%2B3").tz, "Etc/GMT+3");
    cr_assert_str_eq(with("tz=Etc/GMT-3").tz, "Etc/GMT-3");
    bad("tz=", "tz", "tz: not a time zone name");
    bad("tz=Europe/Rome;drop", "tz", "tz: not a time zone name");
    bad("tz=Europe%2FR%C3%B3me", "tz", "tz: not a time zone name");
    char rest[128] = "tz=";
    memset(rest + 3, 'A', 64);
    cr_assert_eq(strlen(with(rest).tz), 64);
    strcat(rest, "A");
    bad(rest, "tz", "tz: not a time zone name");
}

Test(params, direction_and_disposition)
{
    cr_assert_str_eq(with("direction=in").direction, "in");
    cr_assert_str_eq(with("direction=out").direction, "out");
    bad("direction=both", "direction", "direction: must be in or out");
    bad("direction=", "direction", "direction: ");
    cr_assert_str_eq(with("disposition=ANSWERED").disposition, "ANSWERED");
    cr_assert_str_eq(with("disposition=no_answer").disposition, "NO_ANSWER");
    cr_assert_str_eq(with("disposition=Busy").disposition, "BUSY");
    cr_assert_str_eq(with("disposition=failed").disposition, "FAILED");
    bad("disposition=MISSED", "disposition", "disposition: must be");
}

Test(params, did_e164)
{
    cr_assert_str_eq(with("did_e164=%2B390212345678").did_e164, "+390212345678");
    cr_assert_str_eq(with("did_e164=%2B39").did_e164, "+39");
    cr_assert_str_eq(with("did_e164=%2B123456789012345").did_e164, "+123456789012345");
    bad("did_e164=%2B1234567890123456", "did_e164", "did_e164: not an E.164 number");
    bad("did_e164=%2B3", "did_e164", "did_e164: not an E.164 number");
    bad("did_e164=390212345678", "did_e164", "did_e164: not an E.164 number");
    bad("did_e164=%2B39a", "did_e164", "did_e164: not an E.164 number");
    /* The unencoded '+' gets a hint. */
    query_params p;
    char param[64], err[256];
    cr_assert_eq(
        params_parse(DOMAIN "&did_e164=+39021", ALL, 0, &p, param, sizeof(param), err, sizeof(err)),
        -1);
    cr_assert(strstr(err, "%2B"), "%s", err);
}

Test(params, ext)
{
    cr_assert_str_eq(with("ext=101").ext, "101");
    cr_assert_str_eq(with("ext=agent.7_a-b%2B*%23").ext, "agent.7_a-b+*#");
    char rest[64] = "ext=";
    memset(rest + 4, '9', 32);
    cr_assert_eq(strlen(with(rest).ext), 32);
    strcat(rest, "9");
    bad(rest, "ext", "ext: not an extension");
    bad("ext=", "ext", "ext: not an extension");
    bad("ext=1%202", "ext", "ext: not an extension");
    bad("ext=1/2", "ext", "ext: not an extension");
}

Test(params, store_id)
{
    cr_assert_str_eq(with("store_id=0F8FAD5B-D9CB-469F-A165-70867728950E").store_id,
                     "0f8fad5b-d9cb-469f-a165-70867728950e");
    bad("store_id=0f8fad5b-d9cb-469f-a165-70867728950", "store_id", "store_id: not a UUID");
    bad("store_id=0f8fad5bd9cb469fa16570867728950e", "store_id", "store_id: not a UUID");
    bad("store_id=", "store_id", "store_id: not a UUID");
}

Test(params, page_and_page_size)
{
    query_params p = with("page=7&page_size=500");
    cr_assert_eq(p.page, 7);
    cr_assert_eq(p.page_size, 500);
    cr_assert_eq(with("page=1000000").page, 1000000);
    bad("page=1000001", "page", "page: 1000001 is over 1000000");
    bad("page=0", "page", "page: 0 is under 1");
    bad("page=-1", "page", "page: not a whole number");
    bad("page=1.5", "page", "page: not a whole number");
    bad("page=", "page", "page: not a whole number");
    bad("page=99999999999999999999999", "page", "page: 99999999999999999999999 is over");
    bad("page_size=900", "page_size", "page_size: 900 is over 500");
    bad("page_size=0", "page_size", "page_size: 0 is under 1");
    bad("page_size=%2B5", "page_size", "page_size: not a whole number");
    cr_assert_eq(with("page_size=1").page_size, 1);
}

Test(params, cursor)
{
    cr_assert_str_eq(with("cursor=AQAAAZn-_abc").cursor, "AQAAAZn-_abc");
    bad("cursor=AQ%3D%3D", "cursor", "cursor: not a cursor");
    bad("cursor=AQ+A", "cursor", "cursor: not a cursor");
    bad("cursor=", "cursor", "cursor: not a cursor");
    char rest[400] = "cursor=";
    memset(rest + 7, 'A', CURSOR_MAX - 1);
    cr_assert_eq(strlen(with(rest).cursor), CURSOR_MAX - 1);
    strcat(rest, "A");
    bad(rest, "cursor", "cursor: not a cursor");
}

Test(params, format_only_unique_group_by_bucket)
{
    cr_assert(with("format=csv").csv);
    cr_assert(!with("format=json").csv);
    bad("format=xml", "format", "format: must be csv or json");
    cr_assert(with("only_unique=true").only_unique);
    cr_assert(with("only_unique=1").only_unique);
    cr_assert(!with("only_unique=false").only_unique);
    cr_assert(!with("only_unique=0").only_unique);
    bad("only_unique=yes", "only_unique", "only_unique: must be true or false");
    cr_assert_str_eq(with("group_by=store").group_by, "store");
    cr_assert_str_eq(with("group_by=agent").group_by, "agent");
    cr_assert_str_eq(with("group_by=period").group_by, "period");
    bad("group_by=day", "group_by", "group_by: must be period, store or agent");
    cr_assert_str_eq(with("bucket=hour").bucket, "hour");
    cr_assert_str_eq(with("bucket=day").bucket, "day");
    bad("bucket=week", "bucket", "bucket: must be hour or day");
}

Test(params, too_long_values_and_names)
{
    char qs[1200];
    snprintf(qs, sizeof(qs), DOMAIN "&ext=");
    memset(qs + strlen(qs), '1', 600);
    qs[strlen(DOMAIN "&ext=") + 600] = '\0';
    parse_fails(qs, ALL, 0, "ext", "ext: value too long");

    memset(qs, 'k', 100);
    strcpy(qs + 100, "=1");
    query_params p;
    char param[64], err[256];
    cr_assert_eq(params_parse(qs, ALL, 0, &p, param, sizeof(param), err, sizeof(err)), -1);
    cr_assert_eq(strncmp(err, "unknown parameter 'kkk", 22), 0, "%s", err);
}

Test(params, param_is_cleared_on_success)
{
    query_params p;
    char param[64] = "stale", err[256] = "";
    cr_assert_eq(params_parse(DOMAIN "&page=2", ALL, P_SIP_DOMAIN, &p, param, sizeof(param), err,
                              sizeof(err)),
                 0);
    cr_assert_str_eq(param, "");
}
