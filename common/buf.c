/* buf.c - the growable byte buffer of buf.h. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cdr_buf_init(cdr_buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void cdr_buf_free(cdr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cdr_buf_reset(cdr_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int cdr_buf_reserve(cdr_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t need = b->len + extra + 1;
    if (b->limit && need - 1 > b->limit)
        return -1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cdr_buf_append(cdr_buf *b, const void *p, size_t n)
{
    if (cdr_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cdr_buf_append_str(cdr_buf *b, const char *s)
{
    return cdr_buf_append(b, s, strlen(s));
}

int cdr_buf_append_char(cdr_buf *b, char c)
{
    return cdr_buf_append(b, &c, 1);
}

int cdr_buf_vprintf(cdr_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return cdr_buf_append(b, small, (size_t)n);
    if (cdr_buf_reserve(b, (size_t)n) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cdr_buf_printf(cdr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cdr_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *cdr_buf_steal(cdr_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
