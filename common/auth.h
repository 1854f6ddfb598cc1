/* auth.h - Bearer JWT verification (libjwt) with a pinned algorithm, and token minting. */
#ifndef CDR_AUTH_H
#define CDR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "ident.h"

#define AUTH_UUID_LEN     CDR_UUID_LEN   /* tenant_id, canonical form */
#define AUTH_DOMAIN_MAX   CDR_DOMAIN_MAX /* sip_domain */
#define AUTH_SCOPE_WRITE  "cdr:write"
#define AUTH_SCOPE_READ   "cdr:read"
#define AUTH_KEY_FILE_MAX 65536 /* a secret or PEM file larger than this is a mistake */

/* The accepted algorithm is configuration, never the token's header: a token whose header names
 * another algorithm is refused before its signature is looked at. */
typedef enum auth_alg { AUTH_HS256, AUTH_RS256, AUTH_ES256 } auth_alg;
#define AUTH_ALG_CHOICES "HS256|RS256|ES256"

typedef struct auth_config {
    auth_alg alg;
    const char *secret;      /* HS256: the shared secret (at least 32 bytes) */
    const char *secret_file; /* HS256: read the secret from this file instead (trailing
                                newline dropped) */
    const char *pubkey_file; /* RS256/ES256: PEM public key */
    const char *issuer;      /* when set, the token's iss must equal it */
    const char *audience;    /* when set, the token's aud (string or array) must contain it */
    int leeway_s;            /* clock skew tolerated on exp and nbf */
} auth_config;

/* Immutable after creation: one verifier may be shared by every thread. */
typedef struct auth_verifier auth_verifier;

typedef struct auth_claims {
    char tenant_id[AUTH_UUID_LEN + 1];    /* canonical lower-case UUID */
    char sip_domain[AUTH_DOMAIN_MAX + 1]; /* lower-case */
    bool scope_read;                      /* "cdr:read" granted */
    bool scope_write;                     /* "cdr:write" granted */
    int64_t exp;                          /* seconds since the epoch */
} auth_claims;

/* Reads keys and checks the configuration. Returns NULL with the reason in 'err' when the key
 * is missing or unreadable, the secret is too short, or the file does not hold a key of the
 * configured algorithm. */
auth_verifier *auth_verifier_create(const auth_config *cfg, char *err, size_t errlen);
void auth_verifier_destroy(auth_verifier *v);

typedef enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING, /* no token at all                                   -> 401 */
    AUTH_INVALID, /* malformed, wrong alg, bad signature, expired, not yet valid, wrong
                     iss/aud, missing or malformed claim                -> 401 */
} auth_result;

/* Verifies 'token' (the text after "Bearer ") at time 'now' (seconds since the epoch):
 * signature with the configured key, header alg equal to the pinned one, exp present and not
 * past (with leeway), nbf honoured when present, iss/aud when configured, tenant_id a UUID,
 * sip_domain a domain name, scope a space-separated string or an array of strings.
 * On AUTH_OK fills 'out'. Otherwise 'err' says what was wrong (never echoing the token). */
auth_result auth_verify(const auth_verifier *v, const char *token, int64_t now, auth_claims *out,
                        char *err, size_t errlen) CDR_MUST_CHECK;

/* Extracts the token from an Authorization header value ("Bearer <token>", scheme
 * case-insensitive). Returns a pointer into 'header', or NULL when it is absent or malformed. */
const char *auth_bearer_token(const char *header);

/* Parses "HS256|RS256|ES256". Returns 0, or -1 for anything else. */
int auth_parse_alg(const char *s, auth_alg *out) CDR_MUST_CHECK;

/* Reads the key file 'path' (an HS256 secret or a PEM key, at most AUTH_KEY_FILE_MAX bytes) into
 * a malloc'd NUL-terminated buffer; with 'secret', one trailing newline is dropped. Returns the
 * buffer with its length in '*lenp' (the caller wipes it with OPENSSL_cleanse() and frees it), or
 * NULL with 'err' saying why: the file cannot be opened or read, is too large, or memory ran
 * out. */
unsigned char *auth_read_key_file(const char *path, bool secret, size_t *lenp, char *err,
                                  size_t errlen);

/* Mints a token signed with 'key' ('keylen' bytes: the HS256 secret, or a PEM private key for
 * RS256/ES256) carrying tenant_id, sip_domain, scope, iat=now, exp=now+ttl_s, and iss/aud when
 * not NULL. Returns a malloc'd string the caller frees, or NULL with 'err' filled. */
char *auth_mint(auth_alg alg, const unsigned char *key, size_t keylen, const char *tenant_id,
                const char *sip_domain, const char *scope, int64_t now, int64_t ttl_s,
                const char *issuer, const char *audience, char *err, size_t errlen);

#endif
