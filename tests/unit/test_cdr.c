/* test_cdr.c - CDR validation and normalisation: every rule, its message, its boundaries. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cdr.h"

#define US TIMEFMT_US_PER_SEC

/* 2025-10-30T12:00:00Z: 'now' for every item below. */
#define NOW_SECS INT64_C(1761825600)

#define TENANT "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define DOMAIN "tenanta.edvoip.it"

/* A complete answered call, written the way a PBX might: mixed case, URIs, offsets. */
static const char *const BASE_JSON =
    "{"
    "\"tenant_id\": \"6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B\","
    "\"store_id\": \"11111111-2222-4333-8444-55555555555A\","
    "\"store_name\": \"Roma Centro\","
    "\"sip_domain\": \"TenantA.EdVoip.IT.\","
    "\"call_id\": \"a1b2c3d4@pbx-1\","
    "\"direction\": \"Inbound\","
    "\"from_uri\": \"sip:+3906123@host;x=y\","
    "\"to_uri\": \"TEL:+39061234567;phone-context=x\","
    "\"did_e164\": \"+39061234567\","
    "\"ext_number\": \"100\","
    "\"user_id\": \"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\","
    "\"start_ts\": \"2025-10-30T10:12:00+01:00\","
    "\"answer_ts\": \"2025-10-30T09:12:05Z\","
    "\"end_ts\": \"2025-10-30T09:14:13.400Z\","
    "\"billsec\": 128,"
    "\"disposition\": \"ANSWERED\","
    "\"recording_url\": \"https://rec.example.it/2025/10/30/a1b2c3d4.wav\","
    "\"qos\": {\"mos\": 4.1, \"jitter_ms\": 12.5, \"loss_pct\": 0.2},"
    "\"meta_json\": {\"hangup_cause\": \"NORMAL_CLEARING\", \"mos\": 2.0},"
    "\"unknown_field\": [1, 2, 3]"
    "}";

static json_t *base(void)
{
    json_error_t e;
    json_t *j = json_loads(BASE_JSON, 0, &e);
    cr_assert_not_null(j, "base JSON: %s", e.text);
    return j;
}

/* Sets 'key' to the JSON text 'value', or removes it when 'value' is NULL. */
static void set(json_t *j, const char *key, const char *value)
{
    if (!value) {
        json_object_del(j, key);
        return;
    }
    json_error_t e;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
    cr_assert_not_null(v, "value %s: %s", value, e.text);
    cr_assert_eq(json_object_set_new(j, key, v), 0);
}

static void set_str(json_t *j, const char *key, const char *s)
{
    cr_assert_eq(json_object_set_new(j, key, json_string(s)), 0);
}

static cdr_context ctx_open(void)
{
    return (cdr_context){.tenant_id = NULL, .sip_domain = NULL, .now = NOW_SECS * US};
}

static cdr_context ctx_token(void)
{
    return (cdr_context){.tenant_id = TENANT, .sip_domain = DOMAIN, .now = NOW_SECS * US};
}

static bool run(const json_t *j, const cdr_context *ctx, cdr_record *r, cdr_problems *p)
{
    memset(p, 0, sizeof(*p));
    return cdr_from_json(j, ctx, r, p);
}

static void dump_problems(const cdr_problems *p, char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; i < p->n && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "[%s: %s] ", p->items[i].field,
                                p->items[i].message);
}

/* Asserts that 'j' is valid under 'ctx'. */
static void assert_valid(const json_t *j, const cdr_context *ctx, cdr_record *r)
{
    cdr_problems p;
    bool ok = run(j, ctx, r, &p);
    char all[2048];
    dump_problems(&p, all, sizeof(all));
    cr_assert(ok, "expected valid, got %s", all);
    cr_assert_eq(p.n, 0);
}

/* Asserts that 'j' is refused with exactly one problem on 'field' whose message contains
 * 'msg'. */
static void assert_one(const json_t *j, const cdr_context *ctx, const char *label,
                       const char *field, const char *msg)
{
    cdr_record r;
    cdr_problems p;
    bool ok = run(j, ctx, &r, &p);
    char all[2048];
    dump_problems(&p, all, sizeof(all));
    cr_expect_not(ok, "%s: expected a problem on %s", label, field);
    cr_expect_eq(p.n, 1, "%s: expected one problem, got %s", label, all);
    if (p.n >= 1) {
        cr_expect_str_eq(p.items[0].field, field, "%s: got %s", label, all);
        cr_expect(strstr(p.items[0].message, msg) != NULL, "%s: want \"%s\", got %s", label, msg,
                  all);
        cr_expect_not(p.items[0].forbidden, "%s", label);
    }
}

/* Asserts that the span 'got' holds exactly the text 'want'. */
#define expect_span(got, want)                                                                     \
    do {                                                                                           \
        cr_expect_eq((got).len, strlen(want), "%s", #got);                                         \
        cr_expect_arr_eq((got).p, (want), strlen(want), "%s", #got);                               \
    } while (0)

/* The base call, not answered: 'disposition' (JSON text), no answer_ts, billsec 0. */
static json_t *unanswered(const char *disposition)
{
    json_t *j = base();
    set(j, "disposition", disposition);
    set(j, "answer_ts", NULL);
    set(j, "billsec", "0");
    return j;
}

static char *repeat(char c, size_t n)
{
    static char buf[20000];
    cr_assert_lt(n, sizeof(buf));
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

Test(cdr, full_record_is_normalised)
{
    json_t *j = base();
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);

    cr_expect_str_eq(r.tenant_id, TENANT);
    cr_expect_str_eq(r.store_id, "11111111-2222-4333-8444-55555555555a");
    cr_expect_str_eq(r.user_id, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    cr_expect_str_eq(r.sip_domain, DOMAIN);
    expect_span(r.store_name, "Roma Centro");
    expect_span(r.call_id, "a1b2c3d4@pbx-1");
    expect_span(r.from_uri, "+3906123");
    expect_span(r.to_uri, "+39061234567");
    expect_span(r.did_e164, "+39061234567");
    expect_span(r.ext_number, "100");
    expect_span(r.recording_url, "https://rec.example.it/2025/10/30/a1b2c3d4.wav");
    cr_expect_eq(r.direction, CDR_DIR_IN);
    cr_expect_eq(r.disposition, CDR_DISP_ANSWERED);
    /* 10:12:00+01:00 is 09:12:00Z. */
    cr_expect_eq(r.start_ts, (NOW_SECS - 10080) * US);
    cr_expect(r.has_answer);
    cr_expect_eq(r.answer_ts, (NOW_SECS - 10075) * US);
    cr_expect_eq(r.end_ts, (NOW_SECS - 9947) * US + 400000);
    cr_expect_eq(r.billsec, 128);
    /* qos wins over the "mos" inside meta_json. */
    cr_expect(r.has_mos && r.has_jitter && r.has_loss);
    cr_expect_float_eq(r.mos, 4.1, 1e-12);
    cr_expect_float_eq(r.jitter_ms, 12.5, 1e-12);
    cr_expect_float_eq(r.loss_pct, 0.2, 1e-12);
    cr_expect_eq(r.meta, json_object_get(j, "meta_json"));
    json_decref(j);
}

Test(cdr, unanswered_call_and_enum_spellings)
{
    json_t *j = unanswered("\"no answer\"");
    set(j, "direction", "\"OUTBOUND\"");
    set(j, "qos", "null");
    set(j, "meta_json", "null");
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    cr_expect_eq(r.disposition, CDR_DISP_NO_ANSWER);
    cr_expect_eq(r.direction, CDR_DIR_OUT);
    cr_expect_not(r.has_answer);
    cr_expect_not(r.has_mos || r.has_jitter || r.has_loss);
    cr_expect_null(r.meta);

    static const struct {
        const char *text;
        cdr_disposition want;
    } disp[] = {
        {"NO_ANSWER", CDR_DISP_NO_ANSWER},
        {"No_Answer", CDR_DISP_NO_ANSWER},
        {"busy", CDR_DISP_BUSY},
        {"Failed", CDR_DISP_FAILED},
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(disp); i++) {
        set_str(j, "disposition", disp[i].text);
        assert_valid(j, &ctx, &r);
        cr_expect_eq(r.disposition, disp[i].want, "%s", disp[i].text);
    }
    static const struct {
        const char *text;
        cdr_direction want;
    } dir[] = {{"in", CDR_DIR_IN}, {"OUT", CDR_DIR_OUT}, {"inbound", CDR_DIR_IN}};
    for (size_t i = 0; i < CDR_ARRAY_LEN(dir); i++) {
        set_str(j, "direction", dir[i].text);
        assert_valid(j, &ctx, &r);
        cr_expect_eq(r.direction, dir[i].want, "%s", dir[i].text);
    }
    json_decref(j);
}

Test(cdr, optional_fields_absent_or_null)
{
    json_t *j = base();
    static const char *const optional[] = {"store_id",      "did_e164", "ext_number", "user_id",
                                           "recording_url", "qos",      "meta_json"};
    set(j, "store_name", NULL);
    for (size_t i = 0; i < CDR_ARRAY_LEN(optional); i++)
        set(j, optional[i], i % 2 ? "null" : NULL);
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    cr_expect_str_eq(r.store_id, "");
    cr_expect_str_eq(r.user_id, "");
    cr_expect_null(r.store_name.p);
    cr_expect_null(r.did_e164.p);
    cr_expect_null(r.ext_number.p);
    cr_expect_null(r.recording_url.p);
    cr_expect_null(r.meta);
    cr_expect_not(r.has_mos || r.has_jitter || r.has_loss);
    json_decref(j);
}

Test(cdr, uri_forms)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"sip:+3906123@host;x=y", "+3906123"},
        {"SIPS:alice@example.it", "alice"},
        {"Tel:+390612345;phone-context=+39", "+390612345"},
        {"100", "100"},
        {"bob;user=phone", "bob"},
        {"sip:*98#@pbx", "*98#"},
    };
    json_t *j = base();
    cdr_context ctx = ctx_open();
    cdr_record r;
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        set_str(j, "from_uri", cases[i].in);
        assert_valid(j, &ctx, &r);
        cr_expect_eq(r.from_uri.len, strlen(cases[i].want), "%s", cases[i].in);
        cr_expect_arr_eq(r.from_uri.p, cases[i].want, strlen(cases[i].want), "%s", cases[i].in);
    }
    json_decref(j);
}

/* One rule broken at a time: the field named and a telling part of the message. A NULL value
 * removes the key; 'key2' and 'key3' set other fields the case needs. */
typedef struct bad_case {
    const char *key, *value;
    const char *field, *msg;
    const char *key2, *value2;
    const char *key3, *value3;
} bad_case;

/* clang-format off */
#define BAD(key, value, field, msg) {key, value, field, msg, NULL, NULL, NULL, NULL}
#define BAD2(key, value, field, msg, k2, v2) {key, value, field, msg, k2, v2, NULL, NULL}
#define BAD3(key, value, field, msg, k2, v2, k3, v3) {key, value, field, msg, k2, v2, k3, v3}
/* clang-format on */

static const bad_case bad_cases[] = {
    BAD("tenant_id", NULL, "tenant_id", "is required"),
    BAD("tenant_id", "null", "tenant_id", "is required"),
    BAD("tenant_id", "42", "tenant_id", "must be a string"),
    BAD("tenant_id", "\"6f1c2b3a4d5e4f608a7b9c0d1e2f3a4b\"", "tenant_id", "is not a UUID"),
    BAD("tenant_id", "\"6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4g\"", "tenant_id", "is not a UUID"),
    BAD("tenant_id", "\"BAD3(6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4)\"", "tenant_id", "is not a UUID"),
    BAD("store_id", "\"store-1\"", "store_id", "is not a UUID"),
    BAD("user_id", "\"u1\"", "user_id", "is not a UUID"),
    BAD("store_name", "\"\"", "store_name", "must not be empty"),
    BAD("store_name", "\"Roma\\nCentro\"", "store_name", "control characters"),
    BAD("store_name", "\"Roma\\u007f\"", "store_name", "control characters"),
    BAD("store_name", "12", "store_name", "must be a string"),
    BAD2("store_name", "\"Roma\"", "store_name", "only allowed with store_id", "store_id", NULL),
    BAD("sip_domain", NULL, "sip_domain", "is required"),
    BAD("sip_domain", "\"\"", "sip_domain", "must not be empty"),
    BAD("sip_domain", "\".\"", "sip_domain", "must not be empty"),
    BAD("sip_domain", "\"tenant_a.edvoip.it\"", "sip_domain", "is not a domain name"),
    BAD("sip_domain", "\"-tenanta.edvoip.it\"", "sip_domain", "is not a domain name"),
    BAD("sip_domain", "\"tenanta-.edvoip.it\"", "sip_domain", "is not a domain name"),
    BAD("sip_domain", "\"tenanta..edvoip.it\"", "sip_domain", "is not a domain name"),
    BAD("sip_domain", "\"tenanta.edvoip.it..\"", "sip_domain", "is not a domain name"),
    BAD("sip_domain", "\"tenant a.it\"", "sip_domain", "is not a domain name"),
    BAD("sip_domain", "\"t\\u00e9nant.it\"", "sip_domain", "is not a domain name"),
    BAD("call_id", NULL, "call_id", "is required"),
    BAD("call_id", "null", "call_id", "is required"),
    BAD("call_id", "\"\"", "call_id", "must not be empty"),
    BAD("call_id", "\"abc\\tdef\"", "call_id", "control characters"),
    BAD("call_id", "7", "call_id", "must be a string"),
    BAD("direction", NULL, "direction", "is required"),
    BAD("direction", "\"sideways\"", "direction", "must be one of in, out"),
    BAD("direction", "1", "direction", "must be one of in, out"),
    BAD("from_uri", NULL, "from_uri", "is required"),
    BAD("from_uri", "\"sip:@pbx\"", "from_uri", "has no user part"),
    BAD("from_uri", "\"\"", "from_uri", "has no user part"),
    BAD("from_uri", "\"sip:bob smith@pbx\"", "from_uri", "printable ASCII without spaces"),
    BAD("to_uri", "\"sip:j\\u00f6rg@pbx\"", "to_uri", "printable ASCII without spaces"),
    BAD("to_uri", "[]", "to_uri", "must be a string"),
    BAD("did_e164", "\"39061234567\"", "did_e164", "is not an E.164 number (+ and 2-15 digits"),
    BAD("did_e164", "\"+039061234\"", "did_e164", "is not an E.164 number"),
    BAD("did_e164", "\"+3\"", "did_e164", "is not an E.164 number"),
    BAD("did_e164", "\"+1234567890123456\"", "did_e164", "is not an E.164 number"),
    BAD("did_e164", "\"+39 06 1234\"", "did_e164", "is not an E.164 number"),
    BAD("ext_number", "\"\"", "ext_number", "is not an extension"),
    BAD("ext_number", "\"10 0\"", "ext_number", "is not an extension"),
    BAD("ext_number", "\"10!\"", "ext_number", "is not an extension"),
    BAD("start_ts", NULL, "start_ts", "is required"),
    BAD("start_ts", "1761815520", "start_ts", "must be an ISO 8601 string"),
    BAD("start_ts", "\"2025-10-30T09:12:00\"", "start_ts", "is not an ISO 8601 timestamp"),
    BAD("start_ts", "\"yesterday\"", "start_ts", "is not an ISO 8601 timestamp"),
    BAD("start_ts", "\"1999-12-31T23:59:59Z\"", "start_ts", "is before 2000-01-01"),
    BAD("end_ts", NULL, "end_ts", "is required"),
    BAD("end_ts", "\"2025-10-30 09:14:13\"", "end_ts", "is not an ISO 8601 timestamp"),
    BAD("answer_ts", "\"2025-10-30T09:11:59Z\"", "answer_ts", "answer_ts is before start_ts"),
    BAD2("answer_ts", "\"2025-10-30T09:14:14Z\"", "end_ts", "end_ts is before answer_ts", "billsec",
         "0"),
    BAD("answer_ts", "\"30/10/2025 09:12\"", "answer_ts", "is not an ISO 8601 timestamp"),
    BAD("answer_ts", NULL, "answer_ts", "answer_ts is required when disposition is ANSWERED"),
    BAD("disposition", "\"BUSY\"", "answer_ts",
        "answer_ts must be absent when disposition is BUSY"),
    BAD("disposition", NULL, "disposition", "is required"),
    BAD("disposition", "\"HUNG_UP\"", "disposition",
        "must be one of ANSWERED, NO_ANSWER, BUSY, FAILED"),
    BAD("disposition", "\"NO-ANSWER\"", "disposition", "must be one of"),
    BAD("billsec", NULL, "billsec", "is required"),
    BAD("billsec", "\"128\"", "billsec", "must be an integer"),
    BAD("billsec", "128.5", "billsec", "must be an integer"),
    BAD("billsec", "-1", "billsec", "must not be negative"),
    BAD("billsec", "99", "billsec", "billsec 99 does not match end_ts - answer_ts = 128 s"),
    BAD3("billsec", "5", "billsec", "billsec must be 0 without answer_ts", "answer_ts", NULL,
         "disposition", "\"NO_ANSWER\""),
    BAD("recording_url", "\"rec.example.it/a.wav\"", "recording_url", "is not a URL"),
    BAD("recording_url", "\"1http://rec.example.it/a.wav\"", "recording_url", "is not a URL"),
    BAD("recording_url", "\"https://\"", "recording_url", "is not a URL"),
    BAD("recording_url", "\"https://rec.example.it/a b.wav\"", "recording_url", "spaces"),
    BAD("recording_url", "\"https://rec.example.it/a\\u0001.wav\"", "recording_url",
        "control characters"),
    BAD("qos", "5", "qos", "must be an object or null"),
    BAD("qos", "{\"mos\": \"4.1\"}", "qos.mos", "must be a number"),
    BAD("qos", "{\"mos\": 0.99}", "qos.mos", "must be between 1 and 5"),
    BAD("qos", "{\"mos\": 5.01}", "qos.mos", "must be between 1 and 5"),
    BAD("qos", "{\"jitter_ms\": -0.5}", "qos.jitter_ms", "must be between 0 and 10000"),
    BAD("qos", "{\"jitter_ms\": 10000.5}", "qos.jitter_ms", "must be between 0 and 10000"),
    BAD("qos", "{\"loss_pct\": 100.01}", "qos.loss_pct", "must be between 0 and 100"),
    BAD("meta_json", "[1]", "meta_json", "must be an object or null"),
    BAD("meta_json", "\"BAD3()\"", "meta_json", "must be an object or null"),
    BAD2("meta_json", "{\"mos\": 0.5}", "meta_json.mos", "must be between 1 and 5", "qos", NULL),
    BAD2("meta_json", "{\"loss_pct\": 101}", "meta_json.loss_pct", "must be between 0 and 100",
         "qos", "null"),
};

Test(cdr, each_rule_names_field_and_expectation)
{
    cdr_context ctx = ctx_open();
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad_cases); i++) {
        const bad_case *c = &bad_cases[i];
        json_t *j = base();
        set(j, c->key, c->value);
        if (c->key2)
            set(j, c->key2, c->value2);
        if (c->key3)
            set(j, c->key3, c->value3);
        char label[160];
        snprintf(label, sizeof(label), "case %zu (%s = %s)", i, c->key,
                 c->value ? c->value : "<absent>");
        assert_one(j, &ctx, label, c->field, c->msg);
        json_decref(j);
    }
}

Test(cdr, item_must_be_an_object)
{
    cdr_context ctx = ctx_open();
    json_t *j = json_loads("[1, 2]", 0, NULL);
    assert_one(j, &ctx, "array", "item", "must be a JSON object");
    json_decref(j);
}

Test(cdr, end_before_start_without_answer)
{
    json_t *j = unanswered("\"FAILED\"");
    set(j, "end_ts", "\"2025-10-30T09:11:00Z\"");
    cdr_context ctx = ctx_open();
    assert_one(j, &ctx, "end<start", "end_ts", "end_ts is before start_ts");
    json_decref(j);
}

Test(cdr, duration_limit)
{
    json_t *j = unanswered("\"NO_ANSWER\"");
    set(j, "start_ts", "\"2025-10-01T00:00:00Z\"");
    set(j, "end_ts", "\"2025-10-08T00:00:00Z\"");
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    set(j, "end_ts", "\"2025-10-08T00:00:01Z\"");
    assert_one(j, &ctx, "7 days + 1 s", "end_ts", "end_ts - start_ts is longer than 604800 s");
    json_decref(j);
}

Test(cdr, several_problems_reported_at_once)
{
    json_t *j = base();
    set(j, "tenant_id", "\"nope\"");
    set(j, "direction", "\"up\"");
    set(j, "did_e164", "\"0039\"");
    set(j, "billsec", "99");
    cdr_context ctx = ctx_open();
    cdr_record r;
    cdr_problems p;
    cr_assert_not(run(j, &ctx, &r, &p));
    cr_assert_eq(p.n, 4);
    cr_expect_eq(p.dropped, 0);
    cr_expect_str_eq(p.items[0].field, "tenant_id");
    cr_expect_str_eq(p.items[1].field, "direction");
    cr_expect_str_eq(p.items[2].field, "did_e164");
    cr_expect_str_eq(p.items[3].field, "billsec");
    json_decref(j);
}

Test(cdr, problems_are_capped)
{
    json_t *j = json_loads("{\"tenant_id\": \"x\", \"store_id\": \"x\", \"store_name\": \"\","
                           " \"sip_domain\": \"_\", \"call_id\": \"\", \"direction\": \"x\","
                           " \"from_uri\": \"\", \"to_uri\": \"\", \"did_e164\": \"x\","
                           " \"ext_number\": \"\", \"user_id\": \"x\", \"start_ts\": \"x\","
                           " \"answer_ts\": \"x\", \"end_ts\": \"x\", \"billsec\": \"x\","
                           " \"disposition\": \"x\", \"recording_url\": \"x\", \"qos\": 1,"
                           " \"meta_json\": 1}",
                           0, NULL);
    cr_assert_not_null(j);
    cdr_context ctx = ctx_open();
    cdr_record r;
    cdr_problems p;
    cr_assert_not(run(j, &ctx, &r, &p));
    cr_expect_eq(p.n, CDR_MAX_PROBLEMS);
    cr_expect_eq(p.dropped, 19 - CDR_MAX_PROBLEMS);
    cr_expect_str_eq(p.items[0].field, "tenant_id");
    json_decref(j);

    /* A second item appended to the same list: only the new problems count for its verdict. */
    json_t *good = base();
    cr_expect(cdr_from_json(good, &ctx, &r, &p));
    json_decref(good);
}

Test(cdr, context_fills_tenant_and_domain)
{
    json_t *j = base();
    set(j, "tenant_id", NULL);
    set(j, "sip_domain", "null");
    cdr_context ctx = ctx_token();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    cr_expect_str_eq(r.tenant_id, TENANT);
    cr_expect_str_eq(r.sip_domain, DOMAIN);

    /* The same values in another case (and a trailing dot) are the same tenant. */
    json_decref(j);
    j = base();
    assert_valid(j, &ctx, &r);
    cr_expect_str_eq(r.tenant_id, TENANT);
    cr_expect_str_eq(r.sip_domain, DOMAIN);
    json_decref(j);
}

Test(cdr, context_mismatch_is_forbidden)
{
    json_t *j = base();
    set(j, "tenant_id", "\"00000000-0000-4000-8000-000000000000\"");
    set(j, "sip_domain", "\"tenantb.edvoip.it\"");
    cdr_context ctx = ctx_token();
    cdr_record r;
    cdr_problems p;
    cr_assert_not(run(j, &ctx, &r, &p));
    cr_assert_eq(p.n, 2);
    cr_expect_str_eq(p.items[0].field, "tenant_id");
    cr_expect_str_eq(p.items[0].message, "tenant_id differs from the token's tenant");
    cr_expect(p.items[0].forbidden);
    cr_expect_str_eq(p.items[1].field, "sip_domain");
    cr_expect(strstr(p.items[1].message, "differs from the token's domain"));
    cr_expect(p.items[1].forbidden);

    /* A malformed value is a plain problem, not a forbidden one. */
    set(j, "tenant_id", "\"nope\"");
    set(j, "sip_domain", NULL);
    cr_assert_not(run(j, &ctx, &r, &p));
    cr_assert_eq(p.n, 1);
    cr_expect_not(p.items[0].forbidden);
    json_decref(j);
}

Test(cdr, billsec_tolerance)
{
    /* answer 09:12:05, end 09:14:13.4: 128 whole seconds. */
    static const struct {
        const char *billsec;
        bool ok;
    } cases[] = {{"127", true},  {"128", true},  {"129", true}, {"128.0", true},
                 {"126", false}, {"130", false}, {"0", false}};
    json_t *j = base();
    cdr_context ctx = ctx_open();
    cdr_record r;
    cdr_problems p;
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        set(j, "billsec", cases[i].billsec);
        cr_expect_eq(run(j, &ctx, &r, &p), cases[i].ok, "billsec %s", cases[i].billsec);
        if (!cases[i].ok)
            cr_expect(p.n == 1 && strstr(p.items[0].message, "= 128 s"), "billsec %s",
                      cases[i].billsec);
    }
    json_decref(j);
}

Test(cdr, qos_bounds)
{
    static const struct {
        const char *qos;
        bool ok;
    } cases[] = {
        {"{\"mos\": 1}", true},
        {"{\"mos\": 5}", true},
        {"{\"mos\": 0.99}", false},
        {"{\"jitter_ms\": 0, \"loss_pct\": 0}", true},
        {"{\"jitter_ms\": 10000, \"loss_pct\": 100}", true},
        {"{\"loss_pct\": -0.01}", false},
        {"{}", true},
        {"{\"mos\": null}", true},
    };
    json_t *j = base();
    cdr_context ctx = ctx_open();
    cdr_record r;
    cdr_problems p;
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        set(j, "qos", cases[i].qos);
        cr_expect_eq(run(j, &ctx, &r, &p), cases[i].ok, "qos %s", cases[i].qos);
    }
    set(j, "qos", "{\"mos\": 5}");
    cr_assert(run(j, &ctx, &r, &p));
    cr_expect(r.has_mos && r.mos == 5.0);
    cr_expect_not(r.has_jitter || r.has_loss);
    json_decref(j);
}

Test(cdr, qos_taken_from_meta_when_absent)
{
    json_t *j = base();
    set(j, "qos", NULL);
    set(j, "meta_json", "{\"mos\": 3.2, \"jitter_ms\": 7, \"loss_pct\": \"n/a\", \"x\": 1}");
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    cr_expect(r.has_mos && r.mos == 3.2);
    cr_expect(r.has_jitter && r.jitter_ms == 7.0);
    cr_expect_not(r.has_loss, "a member that is not a number is not QoS");
    json_decref(j);
}

Test(cdr, start_ts_future_bound)
{
    json_t *j = unanswered("\"NO_ANSWER\"");
    /* now + 86400 s = 2025-10-31T12:00:00Z */
    set(j, "start_ts", "\"2025-10-31T12:00:00Z\"");
    set(j, "end_ts", "\"2025-10-31T12:00:30Z\"");
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    set(j, "start_ts", "\"2025-10-31T12:00:01Z\"");
    assert_one(j, &ctx, "now + 1 day + 1 s", "start_ts", "is more than 86400 s in the future");

    set(j, "start_ts", "\"2000-01-01T00:00:00Z\"");
    set(j, "end_ts", "\"2000-01-01T00:00:10Z\"");
    assert_valid(j, &ctx, &r);
    json_decref(j);
}

Test(cdr, meta_json_size_limit)
{
    /* {"k":"…"} is 8 bytes around the string. */
    json_t *j = base();
    json_t *meta = json_object();
    json_object_set_new(meta, "k", json_string(repeat('x', CDR_META_MAX - 8)));
    json_object_set_new(j, "meta_json", meta);
    cdr_context ctx = ctx_open();
    cdr_record r;
    assert_valid(j, &ctx, &r);
    cr_expect_eq(json_dumpb(meta, NULL, 0, JSON_COMPACT), CDR_META_MAX);

    json_object_set_new(meta, "k", json_string(repeat('x', CDR_META_MAX - 7)));
    assert_one(j, &ctx, "16385 bytes", "meta_json", "is larger than 16384 bytes");
    json_decref(j);
}

/* Asserts that the base call with 'key' set to 'ok' is valid, and with 'bad' is refused on
 * 'key' with 'msg'. */
static void expect_limit(const char *key, const char *ok, const char *bad, const char *msg)
{
    cdr_context ctx = ctx_open();
    cdr_record r;
    json_t *j = base();
    set_str(j, key, ok);
    assert_valid(j, &ctx, &r);
    set_str(j, key, bad);
    char label[64];
    snprintf(label, sizeof(label), "%s of %zu bytes", key, strlen(bad));
    assert_one(j, &ctx, label, key, msg);
    json_decref(j);
}

/* Each size limit: the largest accepted value and one byte more. */
Test(cdr, size_limits)
{
    static char label63[64], ok[2100], bad[2100];
    snprintf(label63, sizeof(label63), "%s", repeat('a', 63));
    snprintf(ok, sizeof(ok), "%s.it", label63);
    snprintf(bad, sizeof(bad), "%s.it", repeat('a', 64));
    expect_limit("sip_domain", ok, bad, "is not a domain name");
    /* 63+63+63+61 + 3 dots = 253. */
    snprintf(ok, sizeof(ok), "%s.%s.%s.%.61s", label63, label63, label63, label63);
    snprintf(bad, sizeof(bad), "%s.%s.%s.%.62s", label63, label63, label63, label63);
    cr_assert_eq(strlen(ok), 253);
    cr_assert_eq(strlen(bad), 254);
    expect_limit("sip_domain", ok, bad, "longer than 253");

    snprintf(ok, sizeof(ok), "%s", repeat('c', 255));
    expect_limit("call_id", ok, repeat('c', 256), "longer than 255 bytes");
    snprintf(ok, sizeof(ok), "%s", repeat('s', 200));
    expect_limit("store_name", ok, repeat('s', 201), "longer than 200 bytes");
    snprintf(ok, sizeof(ok), "%s", repeat('9', 32));
    expect_limit("ext_number", ok, repeat('9', 33), "is not an extension");
    expect_limit("did_e164", "+123456789012345", "+1234567890123456", "is not an E.164");
    expect_limit("did_e164", "+12", "+1", "is not an E.164");
    snprintf(ok, sizeof(ok), "sip:%s@host", repeat('1', 255));
    snprintf(bad, sizeof(bad), "sip:%s@host", repeat('1', 256));
    expect_limit("from_uri", ok, bad, "longer than 255");
    snprintf(ok, sizeof(ok), "https://r.it/%s", repeat('a', 2048 - 13));
    snprintf(bad, sizeof(bad), "https://r.it/%s", repeat('a', 2049 - 13));
    cr_assert_eq(strlen(ok), 2048);
    expect_limit("recording_url", ok, bad, "longer than 2048");
}

Test(cdr, item_call_id)
{
    json_t *j = base();
    cr_expect_str_eq(cdr_item_call_id(j), "a1b2c3d4@pbx-1");
    set(j, "call_id", "12");
    cr_expect_null(cdr_item_call_id(j));
    set_str(j, "call_id", repeat('c', 256));
    cr_expect_null(cdr_item_call_id(j));
    set(j, "call_id", NULL);
    cr_expect_null(cdr_item_call_id(j));
    json_decref(j);
    j = json_string("x");
    cr_expect_null(cdr_item_call_id(j));
    json_decref(j);
}

Test(cdr, enum_names)
{
    cr_expect_str_eq(cdr_direction_str(CDR_DIR_IN), "in");
    cr_expect_str_eq(cdr_direction_str(CDR_DIR_OUT), "out");
    cr_expect_str_eq(cdr_disposition_str(CDR_DISP_ANSWERED), "ANSWERED");
    cr_expect_str_eq(cdr_disposition_str(CDR_DISP_NO_ANSWER), "NO_ANSWER");
    cr_expect_str_eq(cdr_disposition_str(CDR_DISP_BUSY), "BUSY");
    cr_expect_str_eq(cdr_disposition_str(CDR_DISP_FAILED), "FAILED");
}
