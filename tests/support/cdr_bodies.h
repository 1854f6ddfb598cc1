/* cdr_bodies.h - what a client of cdr-ingest sends in the integration tests: valid CDRs of a
 * known tenant as JSON objects, arrays and NDJSON, compressed bodies, and tokens. Failures end
 * the calling test through Criterion's assertions. */
#ifndef CDR_CDR_BODIES_H
#define CDR_CDR_BODIES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SECRET       "itest-ingest-secret-0123456789abcdef"
#define OTHER_SECRET "another-secret-that-is-long-enough-0123"
#define TENANT_A     "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define DOMAIN_A     "tenanta.edvoip.it"
#define TENANT_B     "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define DOMAIN_B     "tenantb.edvoip.it"

/* A valid CDR of tenant A: an answered inbound call; %s is its call_id. */
#define CDR_FMT                                                                                    \
    "{\"tenant_id\":\"" TENANT_A "\",\"sip_domain\":\"" DOMAIN_A "\",\"call_id\":\"%s\","          \
    "\"direction\":\"in\",\"from_uri\":\"sip:+393331234567@" DOMAIN_A "\","                        \
    "\"to_uri\":\"sip:100@" DOMAIN_A "\",\"start_ts\":\"2025-10-30T09:12:00Z\","                   \
    "\"answer_ts\":\"2025-10-30T09:12:05Z\",\"end_ts\":\"2025-10-30T09:14:13Z\","                  \
    "\"billsec\":128,\"disposition\":\"ANSWERED\"}"

/* The CDR_FMT object with 'call_id' (json_decref). */
json_t *cdr_obj(const char *call_id);

/* An array of 'n' CDR_FMT objects with the call_ids "'prefix'-0" ... (json_decref). */
json_t *cdr_batch(const char *prefix, int n);

/* 'j' as compact JSON, to free(). */
char *dump(const json_t *j);

/* The items of the array 'a' as NDJSON, one compact object a line, to free(). */
char *ndjson(const json_t *a);

typedef enum codec { GZIP, ZSTD } codec;

/* Compresses 'repeat' copies of the 'len' bytes of 'in' as one gzip member or zstd frame into
 * 'out' (initialised here; cdr_buf_free), streaming, so that a 100 MB bomb never exists
 * uncompressed. */
void compress_into(codec c, const void *in, size_t len, int repeat, cdr_buf *out);

/* A token signed with 'secret' for 'tenant' and 'domain' with 'scope', issued at 'issued'
 * (Unix seconds) and valid 'ttl_s' seconds, to free(). */
char *mint(const char *tenant, const char *domain, const char *scope, int64_t issued, int64_t ttl_s,
           const char *secret);

/* A token with header alg "none" and no signature, claiming tenant A and cdr:write, to
 * free(). */
char *alg_none_token(void);

#endif
