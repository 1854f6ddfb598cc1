/* cdr.c - the CDR model: one pass over a JSON item that validates, normalises and reports. */
#include "cdr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"

/* How meta_json is serialised when its size is measured. cdr_codec.c writes it with the same
 * flags, so the limit holds for the bytes stored. 15 significant digits print 4.1 as "4.1"
 * rather than jansson's default "4.0999999999999996". */
#define CDR_META_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* The fields an item may carry; field_of() maps a key to one of them. */
enum field_id {
    F_TENANT_ID,
    F_STORE_ID,
    F_STORE_NAME,
    F_SIP_DOMAIN,
    F_CALL_ID,
    F_DIRECTION,
    F_FROM_URI,
    F_TO_URI,
    F_DID_E164,
    F_EXT_NUMBER,
    F_USER_ID,
    F_START_TS,
    F_ANSWER_TS,
    F_END_TS,
    F_BILLSEC,
    F_DISPOSITION,
    F_RECORDING_URL,
    F_QOS,
    F_META_JSON,
    F_COUNT
};

static const struct {
    const char *name;
    size_t len;
} field_names[F_COUNT] = {
#define FIELD(id, s) [id] = {s, sizeof(s) - 1}
    FIELD(F_TENANT_ID, "tenant_id"),
    FIELD(F_STORE_ID, "store_id"),
    FIELD(F_STORE_NAME, "store_name"),
    FIELD(F_SIP_DOMAIN, "sip_domain"),
    FIELD(F_CALL_ID, "call_id"),
    FIELD(F_DIRECTION, "direction"),
    FIELD(F_FROM_URI, "from_uri"),
    FIELD(F_TO_URI, "to_uri"),
    FIELD(F_DID_E164, "did_e164"),
    FIELD(F_EXT_NUMBER, "ext_number"),
    FIELD(F_USER_ID, "user_id"),
    FIELD(F_START_TS, "start_ts"),
    FIELD(F_ANSWER_TS, "answer_ts"),
    FIELD(F_END_TS, "end_ts"),
    FIELD(F_BILLSEC, "billsec"),
    FIELD(F_DISPOSITION, "disposition"),
    FIELD(F_RECORDING_URL, "recording_url"),
    FIELD(F_QOS, "qos"),
    FIELD(F_META_JSON, "meta_json"),
#undef FIELD
};

#define FNAME(id) (field_names[id].name)

static void CDR_PRINTF(4, 5)
    add_problem(cdr_problems *p, const char *field, bool forbidden, const char *fmt, ...)
{
    if (p->n >= CDR_MAX_PROBLEMS) {
        p->dropped++;
        return;
    }
    cdr_problem *pr = &p->items[p->n++];
    pr->field = field;
    pr->forbidden = forbidden;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pr->message, sizeof(pr->message), fmt, ap);
    va_end(ap);
}

/* ---- text ---- */

/* True when the 'n' bytes at 's' equal the NUL-terminated ASCII 'lit', ignoring case. */
static bool eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i]; i++)
        if (ascii_lower(s[i]) != ascii_lower(lit[i]))
            return false;
    return i == n && lit[i] == '\0';
}

static bool has_prefix_nocase(const char *s, size_t n, const char *lit, size_t litlen)
{
    return n >= litlen && eq_nocase(s, litlen, lit);
}

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* ---- field access ---- */

/* The value of a field, with JSON null folded into absence. */
static const json_t *present(const json_t *v)
{
    return (v && !json_is_null(v)) ? v : NULL;
}

/* The field a key names, or -1. Length and one or two letters pick the only candidate, so a
 * key costs a single comparison. */
static int field_of(const char *k, size_t len)
{
    int id = -1;
    switch (len) {
    case 3:
        id = F_QOS;
        break;
    case 6:
        id = k[0] == 't' ? F_TO_URI : F_END_TS;
        break;
    case 7:
        id = k[0] == 'c' ? F_CALL_ID : k[0] == 'u' ? F_USER_ID : F_BILLSEC;
        break;
    case 8:
        id = k[0] == 'f'   ? F_FROM_URI
             : k[0] == 'd' ? F_DID_E164
             : k[2] == 'o' ? F_STORE_ID
                           : F_START_TS;
        break;
    case 9:
        id = k[0] == 't'   ? F_TENANT_ID
             : k[0] == 'd' ? F_DIRECTION
             : k[0] == 'a' ? F_ANSWER_TS
                           : F_META_JSON;
        break;
    case 10:
        id = k[1] == 't' ? F_STORE_NAME : k[1] == 'i' ? F_SIP_DOMAIN : F_EXT_NUMBER;
        break;
    case 11:
        id = F_DISPOSITION;
        break;
    case 13:
        id = F_RECORDING_URL;
        break;
    default:
        return -1;
    }
    return memcmp(k, field_names[id].name, len) == 0 ? id : -1;
}

/* Fills 'f' with the item's known members in a single walk of the object, which costs less
 * than one hash lookup per field. Unknown members are ignored. */
static void collect_fields(const json_t *item, const json_t *f[F_COUNT])
{
    json_t *obj = (json_t *)item; /* the iterator API is not const; nothing is modified */
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        int id = field_of(json_object_iter_key(it), json_object_iter_key_len(it));
        if (id >= 0)
            f[id] = present(json_object_iter_value(it));
    }
}

/* Reads a string field. Returns 1 with '*s'/'*len' set, 0 when the field is absent (reported
 * as "is required" when 'required'), or -1 when it is not a string (reported). */
static int get_string(const json_t *v, const char *field, bool required, cdr_problems *p,
                      const char **s, size_t *len)
{
    if (!v) {
        if (required)
            add_problem(p, field, false, "is required");
        return 0;
    }
    if (!json_is_string(v)) {
        add_problem(p, field, false, "must be a string");
        return -1;
    }
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 1;
}

/* ---- shapes ---- */

/* Writes the lower-case domain without its trailing dot into 'out'. Returns NULL, or the
 * message that says what is wrong. */
static const char *domain_normalise(const char *s, size_t len, char out[CDR_DOMAIN_MAX + 1])
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0)
        return "must not be empty";
    if (len > CDR_DOMAIN_MAX)
        return "is longer than 253 characters";
    if (!cdr_domain_normalise(s, len, out, CDR_DOMAIN_MAX + 1))
        return "is not a domain name (dot-separated labels of a-z, 0-9 and '-', at most 63 "
               "characters, not starting or ending with '-')";
    return NULL;
}

/* Reduces a SIP/tel URI or a bare number to its user part: a leading "sip:", "sips:" or "tel:"
 * is removed and the value is cut at the first '@' or ';'. Returns NULL with 'out' set, or the
 * message that says what is wrong. */
static const char *uri_user(const char *s, size_t len, cdr_str *out)
{
    if (has_prefix_nocase(s, len, "sip:", 4) || has_prefix_nocase(s, len, "tel:", 4)) {
        s += 4;
        len -= 4;
    } else if (has_prefix_nocase(s, len, "sips:", 5)) {
        s += 5;
        len -= 5;
    }
    size_t n = 0;
    while (n < len && s[n] != '@' && s[n] != ';')
        n++;
    if (n == 0)
        return "has no user part";
    if (n > CDR_URI_MAX)
        return "user part is longer than 255 characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return "user part must be printable ASCII without spaces";
    }
    out->p = s;
    out->len = n;
    return NULL;
}

static bool is_e164(const char *s, size_t len)
{
    if (len < 3 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (size_t i = 2; i < len; i++)
        if (!ascii_is_digit(s[i]))
            return false;
    return true;
}

static bool is_extension(const char *s, size_t len)
{
    if (len < 1 || len > CDR_EXT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!ascii_is_digit(c) && !ascii_is_alpha(c) && c != '*' && c != '#' && c != '_' &&
            c != '.' && c != '+' && c != '-')
            return false;
    }
    return true;
}

/* A URL here is "scheme://rest": the scheme a letter then letters, digits, '+', '.' or '-';
 * the rest not empty. Returns NULL or the message that says what is wrong. */
static const char *url_check(const char *s, size_t len)
{
    if (len > CDR_URL_MAX)
        return "is longer than 2048 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return "must not contain spaces or control characters";
    }
    size_t i = 0;
    if (len == 0 || !ascii_is_alpha(s[0]))
        return "is not a URL (scheme://...)";
    while (i < len && (ascii_is_alpha(s[i]) || ascii_is_digit(s[i]) || s[i] == '+' || s[i] == '.' ||
                       s[i] == '-'))
        i++;
    if (len - i < 4 || memcmp(s + i, "://", 3) != 0)
        return "is not a URL (scheme://...)";
    return NULL;
}

/* ---- field checks ---- */

/* tenant_id, store_id, user_id. Returns true when 'out' holds a UUID. */
static bool check_uuid(const json_t *v, const char *field, bool required, char *out,
                       cdr_problems *p)
{
    const char *s;
    size_t len;
    if (get_string(v, field, required, p, &s, &len) <= 0)
        return false;
    if (!cdr_uuid_normalise(s, len, out)) {
        add_problem(p, field, false, "is not a UUID");
        return false;
    }
    return true;
}

/* Copies at most 'max' bytes of a context value, lower-cased, into 'out'. */
static void copy_lower(char *out, const char *s, size_t max)
{
    size_t i = 0;
    for (; i < max && s[i]; i++)
        out[i] = ascii_lower(s[i]);
    out[i] = '\0';
}

static bool streq_nocase(const char *a, const char *b)
{
    return eq_nocase(a, strlen(a), b);
}

static void check_tenant(const json_t *v, const cdr_context *ctx, cdr_record *out, cdr_problems *p)
{
    const char *want = ctx ? ctx->tenant_id : NULL;
    if (!v && want) {
        copy_lower(out->tenant_id, want, CDR_UUID_LEN);
        return;
    }
    if (check_uuid(v, FNAME(F_TENANT_ID), true, out->tenant_id, p) && want &&
        !streq_nocase(out->tenant_id, want))
        add_problem(p, FNAME(F_TENANT_ID), true, "tenant_id differs from the token's tenant");
}

static void check_domain(const json_t *v, const cdr_context *ctx, cdr_record *out, cdr_problems *p)
{
    const char *want = ctx ? ctx->sip_domain : NULL;
    const char *field = FNAME(F_SIP_DOMAIN);
    if (!v && want) {
        copy_lower(out->sip_domain, want, CDR_DOMAIN_MAX);
        return;
    }
    const char *s;
    size_t len;
    if (get_string(v, field, true, p, &s, &len) <= 0)
        return;
    const char *err = domain_normalise(s, len, out->sip_domain);
    if (err) {
        out->sip_domain[0] = '\0';
        add_problem(p, field, false, "%s", err);
        return;
    }
    if (want && !streq_nocase(out->sip_domain, want))
        add_problem(p, field, true, "sip_domain differs from the token's domain");
}

/* store_name and call_id: 1..'max' bytes of text without control characters. */
static bool check_text(const json_t *v, const char *field, bool required, size_t max, cdr_str *out,
                       cdr_problems *p)
{
    const char *s;
    size_t len;
    if (get_string(v, field, required, p, &s, &len) <= 0)
        return false;
    if (len == 0) {
        add_problem(p, field, false, "must not be empty");
        return false;
    }
    if (len > max) {
        add_problem(p, field, false, "is longer than %zu bytes", max);
        return false;
    }
    if (has_control(s, len)) {
        add_problem(p, field, false, "must not contain control characters");
        return false;
    }
    out->p = s;
    out->len = len;
    return true;
}

static void check_uri(const json_t *v, const char *field, cdr_str *out, cdr_problems *p)
{
    const char *s;
    size_t len;
    if (get_string(v, field, true, p, &s, &len) <= 0)
        return;
    const char *err = uri_user(s, len, out);
    if (err)
        add_problem(p, field, false, "%s", err);
}

static void check_direction(const json_t *v, cdr_record *out, cdr_problems *p)
{
    const char *field = FNAME(F_DIRECTION);
    if (!v) {
        add_problem(p, field, false, "is required");
        return;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (s && (eq_nocase(s, len, "in") || eq_nocase(s, len, "inbound")))
        out->direction = CDR_DIR_IN;
    else if (s && (eq_nocase(s, len, "out") || eq_nocase(s, len, "outbound")))
        out->direction = CDR_DIR_OUT;
    else
        add_problem(p, field, false, "must be one of in, out");
}

/* Returns true when the disposition is known (and set in 'out'). */
static bool check_disposition(const json_t *v, cdr_record *out, cdr_problems *p)
{
    const char *field = FNAME(F_DISPOSITION);
    if (!v) {
        add_problem(p, field, false, "is required");
        return false;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!s)
        goto bad;
    if (eq_nocase(s, len, "ANSWERED")) {
        out->disposition = CDR_DISP_ANSWERED;
    } else if (eq_nocase(s, len, "BUSY")) {
        out->disposition = CDR_DISP_BUSY;
    } else if (eq_nocase(s, len, "FAILED")) {
        out->disposition = CDR_DISP_FAILED;
    } else if (len == 9 && eq_nocase(s, 2, "NO") && (s[2] == '_' || s[2] == ' ') &&
               eq_nocase(s + 3, 6, "ANSWER")) {
        out->disposition = CDR_DISP_NO_ANSWER;
    } else {
        goto bad;
    }
    return true;
bad:
    add_problem(p, field, false, "must be one of ANSWERED, NO_ANSWER, BUSY, FAILED");
    return false;
}

/* Returns 1 with '*t' set, 0 when absent (reported when 'required'), -1 when invalid. */
static int check_time(const json_t *v, const char *field, bool required, cdr_time *t,
                      cdr_problems *p)
{
    if (!v) {
        if (required)
            add_problem(p, field, false, "is required");
        return 0;
    }
    if (!json_is_string(v)) {
        add_problem(p, field, false, "must be an ISO 8601 string with a UTC offset");
        return -1;
    }
    char err[96];
    if (timefmt_parse(json_string_value(v), json_string_length(v), TIMEFMT_REQUIRE_OFFSET, t, NULL,
                      err, sizeof(err)) != 0) {
        add_problem(p, field, false, "is not an ISO 8601 timestamp with offset: %s", err);
        return -1;
    }
    return 1;
}

/* Reads billsec: a JSON integer >= 0, or a real without fraction. Returns true when valid. */
static bool check_billsec(const json_t *v, int32_t *out, cdr_problems *p)
{
    const char *field = FNAME(F_BILLSEC);
    if (!v) {
        add_problem(p, field, false, "is required");
        return false;
    }
    json_int_t i;
    double d = json_is_real(v) ? json_real_value(v) : 0.5;
    if (json_is_integer(v)) {
        i = json_integer_value(v);
    } else if (d > -1e15 && d < 1e15 && (double)(json_int_t)d == d) {
        i = (json_int_t)d; /* 12.0: a whole number written as a real */
    } else {
        add_problem(p, field, false, "must be an integer (seconds)");
        return false;
    }
    if (i < 0) {
        add_problem(p, field, false, "must not be negative");
        return false;
    }
    if (i > INT32_MAX) {
        add_problem(p, field, false, "is too large");
        return false;
    }
    *out = (int32_t)i;
    return true;
}

/* One QoS metric: an optional number within [lo, hi]. */
static void check_metric(const json_t *v, const char *field, double lo, double hi, bool *has,
                         double *out, cdr_problems *p)
{
    if (!v)
        return;
    if (!json_is_number(v)) {
        add_problem(p, field, false, "must be a number");
        return;
    }
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        add_problem(p, field, false, "must be between %g and %g", lo, hi);
        return;
    }
    *has = true;
    *out = d;
}

/* The three metrics from 'obj'; 'names' are the field names to report them under. With
 * 'numbers_only' a member that is not a number is ignored (meta_json carries anything). */
static void check_qos_members(const json_t *obj, const char *const names[3], bool numbers_only,
                              cdr_record *out, cdr_problems *p)
{
    static const char *const keys[3] = {"mos", "jitter_ms", "loss_pct"};
    const json_t *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = present(json_object_get(obj, keys[i]));
        if (numbers_only && m[i] && !json_is_number(m[i]))
            m[i] = NULL;
    }
    check_metric(m[0], names[0], 1.0, 5.0, &out->has_mos, &out->mos, p);
    check_metric(m[1], names[1], 0.0, 10000.0, &out->has_jitter, &out->jitter_ms, p);
    check_metric(m[2], names[2], 0.0, 100.0, &out->has_loss, &out->loss_pct, p);
}

/* Counts serialised bytes, giving up once past the limit. */
static int count_bytes(const char *buffer, size_t size, void *data)
{
    size_t *n = data;
    *n += size;
    return *n > CDR_META_MAX ? -1 : 0;
}

/* An upper bound of the serialised size of 'j' (a string may grow six-fold as \uXXXX escapes,
 * a number or literal never takes more than 32 bytes), added to '*n'. Stops early once the
 * bound passes CDR_META_MAX or the nesting gets deep; returns false then. */
static bool size_bound(const json_t *j, size_t *n, int depth)
{
    if (depth > 32 || *n > CDR_META_MAX)
        return false;
    if (json_is_string(j)) {
        *n += 2 + 6 * json_string_length(j);
    } else if (json_is_object(j)) {
        *n += 2;
        json_t *obj = (json_t *)j;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            *n += 4 + 6 * json_object_iter_key_len(it); /* quotes, ':' and ',' */
            if (!size_bound(json_object_iter_value(it), n, depth + 1))
                return false;
        }
    } else if (json_is_array(j)) {
        *n += 2;
        for (size_t i = 0; i < json_array_size(j); i++) {
            *n += 1;
            if (!size_bound(json_array_get(j, i), n, depth + 1))
                return false;
        }
    } else {
        *n += 32;
    }
    return *n <= CDR_META_MAX;
}

/* True when 'meta' serialises to at most CDR_META_MAX bytes; '*failed' tells a value that
 * cannot be serialised at all. The bound settles the usual small object without writing it. */
static bool meta_fits(const json_t *meta, bool *failed)
{
    size_t n = 0;
    *failed = false;
    if (size_bound(meta, &n, 0))
        return true;
    n = 0;
    if (json_dump_callback(meta, count_bytes, &n, CDR_META_DUMP_FLAGS) == 0)
        return true;
    *failed = n <= CDR_META_MAX;
    return false;
}

static void check_qos_meta(const json_t *qos, const json_t *meta, cdr_record *out, cdr_problems *p)
{
    static const char *const qos_names[3] = {"qos.mos", "qos.jitter_ms", "qos.loss_pct"};
    static const char *const meta_names[3] = {"meta_json.mos", "meta_json.jitter_ms",
                                              "meta_json.loss_pct"};
    if (qos) {
        if (json_is_object(qos))
            check_qos_members(qos, qos_names, false, out, p);
        else
            add_problem(p, FNAME(F_QOS), false, "must be an object or null");
    }
    if (!meta)
        return;
    if (!json_is_object(meta)) {
        add_problem(p, FNAME(F_META_JSON), false, "must be an object or null");
        return;
    }
    bool failed;
    if (!meta_fits(meta, &failed)) {
        if (failed)
            add_problem(p, FNAME(F_META_JSON), false, "cannot be serialised");
        else
            add_problem(p, FNAME(F_META_JSON), false, "is larger than %d bytes serialised",
                        CDR_META_MAX);
        return;
    }
    out->meta = meta;
    if (!qos)
        check_qos_members(meta, meta_names, true, out, p);
}

/* start_ts bounds, ordering, duration, answer_ts against disposition, billsec against the
 * answered time. Each rule runs only when the values it compares are valid, so one mistake
 * is not reported three times. */
static void check_times(const json_t *const f[F_COUNT], const cdr_context *ctx, bool disp_ok,
                        cdr_record *out, cdr_problems *p)
{
    int st = check_time(f[F_START_TS], FNAME(F_START_TS), true, &out->start_ts, p);
    int an = check_time(f[F_ANSWER_TS], FNAME(F_ANSWER_TS), false, &out->answer_ts, p);
    int en = check_time(f[F_END_TS], FNAME(F_END_TS), true, &out->end_ts, p);
    bool bill_ok = check_billsec(f[F_BILLSEC], &out->billsec, p);
    out->has_answer = an == 1;

    if (st == 1) {
        cdr_time now = ctx ? ctx->now : timefmt_now();
        if (out->start_ts < CDR_MIN_START_TS * TIMEFMT_US_PER_SEC) {
            add_problem(p, FNAME(F_START_TS), false, "is before 2000-01-01T00:00:00Z");
            st = -1;
        } else if (out->start_ts > now + (cdr_time)CDR_MAX_FUTURE_S * TIMEFMT_US_PER_SEC) {
            add_problem(p, FNAME(F_START_TS), false, "is more than %d s in the future",
                        CDR_MAX_FUTURE_S);
            st = -1;
        }
    }

    bool order_ok = true;
    if (an == 1 && st == 1 && out->answer_ts < out->start_ts) {
        add_problem(p, FNAME(F_ANSWER_TS), false, "answer_ts is before start_ts");
        order_ok = false;
    }
    if (en == 1 && an == 1 && order_ok && out->end_ts < out->answer_ts) {
        add_problem(p, FNAME(F_END_TS), false, "end_ts is before answer_ts");
        order_ok = false;
    } else if (en == 1 && an != 1 && st == 1 && out->end_ts < out->start_ts) {
        add_problem(p, FNAME(F_END_TS), false, "end_ts is before start_ts");
        order_ok = false;
    }
    if (en == 1 && st == 1 && order_ok &&
        out->end_ts - out->start_ts > (cdr_time)CDR_MAX_DURATION_S * TIMEFMT_US_PER_SEC)
        add_problem(p, FNAME(F_END_TS), false, "end_ts - start_ts is longer than %d s",
                    CDR_MAX_DURATION_S);

    if (disp_ok) {
        bool answered = out->disposition == CDR_DISP_ANSWERED;
        if (answered && an == 0)
            add_problem(p, FNAME(F_ANSWER_TS), false,
                        "answer_ts is required when disposition is ANSWERED");
        else if (!answered && an != 0)
            add_problem(p, FNAME(F_ANSWER_TS), false,
                        "answer_ts must be absent when disposition is %s",
                        cdr_disposition_str(out->disposition));
    }

    if (!bill_ok)
        return;
    if (an == 0) {
        /* Without an answer nothing was billed; when ANSWERED lacks its answer_ts that is
         * the problem already reported, not billsec. */
        if (out->billsec != 0 && !(disp_ok && out->disposition == CDR_DISP_ANSWERED))
            add_problem(p, FNAME(F_BILLSEC), false, "billsec must be 0 without answer_ts");
    } else if (an == 1 && en == 1 && order_ok && out->end_ts >= out->answer_ts) {
        int64_t expect = (out->end_ts - out->answer_ts) / TIMEFMT_US_PER_SEC;
        int64_t diff = (int64_t)out->billsec - expect;
        if (diff > CDR_BILLSEC_TOLERANCE_S || diff < -CDR_BILLSEC_TOLERANCE_S)
            add_problem(p, FNAME(F_BILLSEC), false,
                        "billsec %d does not match end_ts - answer_ts = %lld s", (int)out->billsec,
                        (long long)expect);
    }
}

bool cdr_from_json(const json_t *item, const cdr_context *ctx, cdr_record *out, cdr_problems *probs)
{
    int before = probs->n + probs->dropped;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(item)) {
        add_problem(probs, "item", false, "must be a JSON object");
        return false;
    }
    const json_t *f[F_COUNT] = {0};
    collect_fields(item, f);

    const char *s;
    size_t len;
    check_tenant(f[F_TENANT_ID], ctx, out, probs);
    bool has_store = check_uuid(f[F_STORE_ID], FNAME(F_STORE_ID), false, out->store_id, probs);
    if (check_text(f[F_STORE_NAME], FNAME(F_STORE_NAME), false, CDR_STORE_NAME_MAX,
                   &out->store_name, probs) &&
        !has_store && !f[F_STORE_ID]) {
        add_problem(probs, FNAME(F_STORE_NAME), false, "store_name is only allowed with store_id");
        out->store_name.p = NULL;
    }
    check_domain(f[F_SIP_DOMAIN], ctx, out, probs);
    (void)check_text(f[F_CALL_ID], FNAME(F_CALL_ID), true, CDR_CALL_ID_MAX, &out->call_id, probs);
    check_direction(f[F_DIRECTION], out, probs);
    check_uri(f[F_FROM_URI], FNAME(F_FROM_URI), &out->from_uri, probs);
    check_uri(f[F_TO_URI], FNAME(F_TO_URI), &out->to_uri, probs);
    if (get_string(f[F_DID_E164], FNAME(F_DID_E164), false, probs, &s, &len) > 0) {
        if (is_e164(s, len))
            out->did_e164 = (cdr_str){s, len};
        else
            add_problem(probs, FNAME(F_DID_E164), false,
                        "is not an E.164 number (+ and 2-15 digits, no leading 0)");
    }
    if (get_string(f[F_EXT_NUMBER], FNAME(F_EXT_NUMBER), false, probs, &s, &len) > 0) {
        if (is_extension(s, len))
            out->ext_number = (cdr_str){s, len};
        else
            add_problem(probs, FNAME(F_EXT_NUMBER), false,
                        "is not an extension (1-32 of 0-9, A-Z, a-z, * # _ . + -)");
    }
    (void)check_uuid(f[F_USER_ID], FNAME(F_USER_ID), false, out->user_id, probs);
    bool disp_ok = check_disposition(f[F_DISPOSITION], out, probs);
    check_times(f, ctx, disp_ok, out, probs);
    if (get_string(f[F_RECORDING_URL], FNAME(F_RECORDING_URL), false, probs, &s, &len) > 0) {
        const char *err = url_check(s, len);
        if (err)
            add_problem(probs, FNAME(F_RECORDING_URL), false, "%s", err);
        else
            out->recording_url = (cdr_str){s, len};
    }
    check_qos_meta(f[F_QOS], f[F_META_JSON], out, probs);
    return probs->n + probs->dropped == before;
}

const char *cdr_item_call_id(const json_t *item)
{
    const json_t *v = json_object_get(item, "call_id");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > CDR_CALL_ID_MAX)
        return NULL;
    return json_string_value(v);
}

const char *cdr_direction_str(cdr_direction d)
{
    return d == CDR_DIR_OUT ? "out" : "in";
}

const char *cdr_disposition_str(cdr_disposition d)
{
    static const char *const names[] = {"ANSWERED", "NO_ANSWER", "BUSY", "FAILED"};
    return (unsigned)d < CDR_ARRAY_LEN(names) ? names[d] : "FAILED";
}
