/* ident.c - UUID and domain name checks that also write the canonical lower-case form. */
#include "ident.h"

#include "ascii.h"

#define LABEL_MAX 63

/* Both run once per identifier of every CDR ingested: one pass, no allocation, and each byte
 * is checked and lower-cased together. */

bool cdr_uuid_normalise(const char *s, size_t len, char out[CDR_UUID_LEN + 1])
{
    if (len != CDR_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!ascii_is_hex(c)) {
            return false;
        }
        out[i] = ascii_lower(c);
    }
    out[len] = '\0';
    return true;
}

bool cdr_domain_normalise(const char *s, size_t len, char *out, size_t outlen)
{
    if (len == 0 || len > CDR_DOMAIN_MAX || len >= outlen)
        return false;
    size_t label = 0; /* length of the label being read */
    for (size_t i = 0; i < len; i++) {
        char c = ascii_lower(s[i]);
        if (c == '.') {
            if (label == 0 || out[i - 1] == '-')
                return false;
            label = 0;
        } else if (ascii_is_alnum(c) || (c == '-' && label > 0)) {
            if (++label > LABEL_MAX)
                return false;
        } else {
            return false;
        }
        out[i] = c;
    }
    /* The last label: a trailing dot leaves it empty. */
    if (label == 0 || out[len - 1] == '-')
        return false;
    out[len] = '\0';
    return true;
}
