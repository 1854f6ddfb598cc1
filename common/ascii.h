/* ascii.h - ASCII character classes that never consult the locale, for parsers on hot paths. */
#ifndef CDR_ASCII_H
#define CDR_ASCII_H

#include <stdbool.h>

/* isdigit() and friends would follow the locale, and bytes of other scripts must never pass as
 * letters or digits here; these take any char, negative ones included. */

static inline bool ascii_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool ascii_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_is_alnum(char c)
{
    return ascii_is_digit(c) || ascii_is_alpha(c);
}

/* The value of the hex digit 'c' (either case), or -1 when it is not one. */
static inline int ascii_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline bool ascii_is_hex(char c)
{
    return ascii_hex_value(c) >= 0;
}

static inline char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

#endif
