/* ident.h - the identifiers a tenant is known by: UUIDs and domain names, checked and lower-cased.
 */
#ifndef CDR_IDENT_H
#define CDR_IDENT_H

#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

#define CDR_UUID_LEN   36  /* 8-4-4-4-12 hex digits and dashes */
#define CDR_DOMAIN_MAX 253 /* a host name, without a trailing dot */

/* Checks that the 'len' bytes at 's' (no NUL needed) are a UUID written 8-4-4-4-12 in hex
 * digits of either case, and writes its canonical lower-case form, NUL-terminated, to 'out'.
 * Returns false when they are not; 'out' may then hold part of the input. */
bool cdr_uuid_normalise(const char *s, size_t len, char out[CDR_UUID_LEN + 1]) CDR_MUST_CHECK;

/* Checks that the 'len' bytes at 's' (no NUL needed) are a host name: dot-separated labels of 1
 * to 63 ASCII letters, digits and hyphens, none starting or ending with '-', at most
 * CDR_DOMAIN_MAX bytes in all and no trailing dot (a caller that accepts one drops it first).
 * Writes it lower-cased and NUL-terminated to 'out' ('outlen' bytes). Returns false when it is
 * not a host name or does not fit 'out'; 'out' may then hold part of the input. */
bool cdr_domain_normalise(const char *s, size_t len, char *out, size_t outlen) CDR_MUST_CHECK;

#endif
