/* cursor.h - the opaque keyset cursor of /api/cdr: the position after the last row returned. */
#ifndef CDR_QUERY_CURSOR_H
#define CDR_QUERY_CURSOR_H

#include <stddef.h>

#include "compiler.h"
#include "timefmt.h"

/* The size of a buffer that holds any cursor with its NUL: a version byte, 8 bytes of start_ts
 * and up to 255 bytes of call_id are at most 352 base64url characters. */
#define CURSOR_MAX 353

typedef struct cursor_pos {
    cdr_time start_ts;
    char call_id[256];
} cursor_pos;

/* Writes the cursor for 'pos' (base64url, no padding, a version byte first) into 'out'.
 * Returns 0, or -1 when 'outlen' is too small. */
int cursor_encode(const cursor_pos *pos, char *out, size_t outlen) CDR_MUST_CHECK;

/* Reads a cursor. Returns 0, or -1 with 'err' saying why (not base64url, unknown version,
 * truncated) -> 400 naming "cursor". */
int cursor_decode(const char *text, cursor_pos *pos, char *err, size_t errlen) CDR_MUST_CHECK;

#endif
