/* redis_url.h - where Redis is: redis://[[user]:password@]host[:port][/db] or unix:///path. */
#ifndef CDR_REDIS_URL_H
#define CDR_REDIS_URL_H

#include <stddef.h>

#include "compiler.h"

typedef struct redis_target {
    char host[256];      /* "" with a unix socket */
    int port;            /* default 6379 */
    char unix_path[108]; /* "" with TCP */
    int db;              /* default 0 */
    char user[128];      /* "" = default user */
    char password[256];  /* "" = no AUTH */
} redis_target;

/* Parses 'url'. Returns 0, or -1 with 'err' saying what is wrong (scheme, port range, db). */
int redis_url_parse(const char *url, redis_target *out, char *err, size_t errlen) CDR_MUST_CHECK;

#endif
