/* errfmt.h - filling a caller's error buffer, the one way every module reports detail. */
#ifndef CDR_ERRFMT_H
#define CDR_ERRFMT_H

#include <stddef.h>

#include "compiler.h"

/* Formats the message into 'err' ('errlen' bytes, always NUL-terminated, cut when longer).
 * Does nothing when 'err' is NULL or 'errlen' is 0, so that a caller may pass no buffer when it
 * does not want the detail. */
void cdr_errf(char *err, size_t errlen, const char *fmt, ...) CDR_PRINTF(3, 4);

#endif
