/* jwt_forge.c - tokens put together by hand. */
#include "jwt_forge.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *b64url(const char *data)
{
    size_t n = strlen(data);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    cr_assert_not_null(out);
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

char *unsigned_token(const char *header_json, const char *payload_json)
{
    char *h = b64url(header_json);
    char *p = b64url(payload_json);
    size_t len = strlen(h) + strlen(p) + 3;
    char *tok = malloc(len);
    cr_assert_not_null(tok);
    snprintf(tok, len, "%s.%s.", h, p);
    free(h);
    free(p);
    return tok;
}
