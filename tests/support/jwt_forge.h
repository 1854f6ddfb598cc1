/* jwt_forge.h - tokens put together by hand, as an attacker would: base64url pieces and tokens
 * with no signature, which no signing library produces. Failures end the calling test through
 * Criterion's assertions. */
#ifndef CDR_JWT_FORGE_H
#define CDR_JWT_FORGE_H

/* The bytes of the string 'data' in base64url without padding, to free(). */
char *b64url(const char *data);

/* "HEADER.PAYLOAD." made of the JSON texts 'header_json' and 'payload_json', with an empty
 * signature, to free(). */
char *unsigned_token(const char *header_json, const char *payload_json);

#endif
