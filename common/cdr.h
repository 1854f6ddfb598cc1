/* cdr.h - the CDR model: fields, validation with one message per problem, normalisation. */
#ifndef CDR_CDR_H
#define CDR_CDR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "ident.h"
#include "timefmt.h"

/* Size limits, checked by cdr_from_json and documented in docs/cdr.md (with CDR_UUID_LEN and
 * CDR_DOMAIN_MAX of ident.h). */
#define CDR_CALL_ID_MAX         255
#define CDR_URI_MAX             255
#define CDR_EXT_MAX             32
#define CDR_STORE_NAME_MAX      200
#define CDR_URL_MAX             2048
#define CDR_META_MAX            16384              /* meta_json serialised, in bytes */
#define CDR_MAX_DURATION_S      (7 * 86400)        /* end_ts - start_ts */
#define CDR_MAX_FUTURE_S        86400              /* start_ts may be at most this far past 'now' */
#define CDR_MIN_START_TS        INT64_C(946684800) /* 2000-01-01T00:00:00Z, seconds */
#define CDR_BILLSEC_TOLERANCE_S 1                  /* |billsec - (end_ts - answer_ts)| allowed */

typedef enum cdr_direction { CDR_DIR_IN = 0, CDR_DIR_OUT = 1 } cdr_direction;
typedef enum cdr_disposition {
    CDR_DISP_ANSWERED = 0,
    CDR_DISP_NO_ANSWER,
    CDR_DISP_BUSY,
    CDR_DISP_FAILED,
} cdr_disposition;

/* A string slice borrowed from the parsed JSON document; not NUL-terminated. p == NULL means
 * the field is absent (or JSON null). */
typedef struct cdr_str {
    const char *p;
    size_t len;
} cdr_str;

/* One normalised CDR. Identifiers are copied (they are rewritten to canonical lower case);
 * every cdr_str and 'meta' borrow from the json_t the record was built from, which must outlive
 * the record. */
typedef struct cdr_record {
    char tenant_id[CDR_UUID_LEN + 1];
    char store_id[CDR_UUID_LEN + 1]; /* "" when absent */
    char user_id[CDR_UUID_LEN + 1];  /* "" when absent */
    char sip_domain[CDR_DOMAIN_MAX + 1];
    cdr_str store_name;
    cdr_str call_id;
    cdr_str from_uri; /* user part only: scheme, host and parameters removed */
    cdr_str to_uri;
    cdr_str did_e164;
    cdr_str ext_number;
    cdr_str recording_url;
    cdr_direction direction;
    cdr_disposition disposition;
    cdr_time start_ts;
    cdr_time answer_ts; /* valid when has_answer */
    cdr_time end_ts;
    bool has_answer;
    int32_t billsec;
    bool has_mos, has_jitter, has_loss;
    double mos, jitter_ms, loss_pct;
    const json_t *meta; /* a JSON object, or NULL */
} cdr_record;

#define CDR_MAX_PROBLEMS 16

/* One thing wrong with an item: the field (dotted for nested ones: "qos.mos") and a message
 * that says what was expected. 'forbidden' marks a tenant_id or sip_domain that differs from
 * the caller's (403 rather than 400). */
typedef struct cdr_problem {
    const char *field; /* static string */
    char message[160];
    bool forbidden;
} cdr_problem;

typedef struct cdr_problems {
    cdr_problem items[CDR_MAX_PROBLEMS];
    int n;       /* problems stored */
    int dropped; /* problems found past CDR_MAX_PROBLEMS */
} cdr_problems;

/* What validation needs from outside the item: the caller's tenant (from the token) fills a
 * missing tenant_id / sip_domain and must equal a present one; 'now' bounds start_ts. */
typedef struct cdr_context {
    const char *tenant_id;  /* canonical UUID; NULL = no tenant restriction and no filling */
    const char *sip_domain; /* lower case; NULL likewise */
    cdr_time now;
} cdr_context;

/* Validates and normalises one JSON item into 'out'. Every problem is appended to 'probs'
 * (which the caller zeroes per item); validation goes on after a problem so that one answer
 * lists them all. Checks: item is an object; required fields present (tenant_id unless the
 * context supplies it, sip_domain likewise, call_id, direction, from_uri, to_uri, start_ts,
 * end_ts, billsec, disposition); types; enums (direction in|out, also inbound|outbound;
 * disposition ANSWERED|NO_ANSWER|BUSY|FAILED, case-insensitive, "NO ANSWER" accepted);
 * UUID, domain, E.164 (+ and 2-15 digits, no leading 0) and extension shapes; timestamps
 * ISO 8601 with an offset; start_ts <= answer_ts <= end_ts; answer_ts present exactly when
 * disposition is ANSWERED; billsec an integer, 0 without answer_ts, else within
 * CDR_BILLSEC_TOLERANCE_S of end_ts - answer_ts; duration and size limits above; qos members
 * mos 1-5, jitter_ms 0-10000, loss_pct 0-100; meta_json an object; store_name only with
 * store_id. Unknown fields are ignored.
 * Returns true when 'probs' gained nothing (the record is complete), false otherwise. */
bool cdr_from_json(const json_t *item, const cdr_context *ctx, cdr_record *out,
                   cdr_problems *probs) CDR_MUST_CHECK;

/* The call_id of a possibly invalid item, for error reports: a string of at most
 * CDR_CALL_ID_MAX bytes, or NULL. */
const char *cdr_item_call_id(const json_t *item);

const char *cdr_direction_str(cdr_direction d);     /* "in" | "out" */
const char *cdr_disposition_str(cdr_disposition d); /* "ANSWERED" ... */

#endif
