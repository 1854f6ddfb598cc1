/* token.h - minting development tokens with the configured key. */
#ifndef CDR_TOKEN_H
#define CDR_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "ctl.h"

#define TOKEN_TTL_MAX 31536000 /* one year */

/* What a token says. */
typedef struct token_request {
    const char *tenant_id;  /* a UUID */
    const char *sip_domain; /* a host name */
    const char *scope;      /* space-separated: cdr:read, cdr:write */
    int64_t ttl_s;          /* 1..TOKEN_TTL_MAX */
} token_request;

/* The shape checks of the claims, so that a mistake is reported against its flag before any
 * key is read. */
bool token_uuid_valid(const char *s);
bool token_domain_valid(const char *s);
bool token_scope_valid(const char *s);

/* Checks that 'conf' names a usable key for its algorithm: HS256 a secret or a secret file
 * (not both), RS256/ES256 a private key file. Returns 0, or -1 with 'err' naming the setting
 * that is missing (a usage error). */
int token_key_configured(const ctl_config *conf, char *err, size_t errlen) CDR_MUST_CHECK;

/* Mints the token 'req' describes at time 'now' (seconds since the epoch), signed with the key
 * 'conf' names, with iss and aud when configured. Returns a malloc'd string the caller frees,
 * or NULL with 'err' saying what failed (unreadable key file, a key of the wrong kind, a
 * secret that is too short). */
char *token_mint(const ctl_config *conf, const token_request *req, int64_t now, char *err,
                 size_t errlen);

#endif
