/* buf.h - a growable byte buffer, the one place output is assembled before it is sent. */
#ifndef CDR_BUF_H
#define CDR_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

/* A byte buffer that is always NUL-terminated after 'len' bytes once anything was appended.
 * Zero-initialise it ({0}) or call cdr_buf_init(); release with cdr_buf_free(). The buffer owns
 * 'data'. Every append returns 0 on success and -1 when memory ran out or the buffer would grow
 * past 'limit' (0 means no limit); on failure the content is unchanged. */
typedef struct cdr_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
} cdr_buf;

void cdr_buf_init(cdr_buf *b, size_t limit);
void cdr_buf_free(cdr_buf *b);
/* Empties the buffer and keeps its memory. */
void cdr_buf_reset(cdr_buf *b);
/* Makes room for 'extra' more bytes plus the terminating NUL. */
int cdr_buf_reserve(cdr_buf *b, size_t extra) CDR_MUST_CHECK;
int cdr_buf_append(cdr_buf *b, const void *p, size_t n) CDR_MUST_CHECK;
int cdr_buf_append_str(cdr_buf *b, const char *s) CDR_MUST_CHECK;
int cdr_buf_append_char(cdr_buf *b, char c) CDR_MUST_CHECK;
int cdr_buf_printf(cdr_buf *b, const char *fmt, ...) CDR_PRINTF(2, 3) CDR_MUST_CHECK;
int cdr_buf_vprintf(cdr_buf *b, const char *fmt, va_list ap) CDR_MUST_CHECK;
/* Hands 'data' over to the caller (who frees it) and leaves the buffer empty. Never NULL unless
 * memory ran out: an empty buffer yields "". */
char *cdr_buf_steal(cdr_buf *b);

#endif
