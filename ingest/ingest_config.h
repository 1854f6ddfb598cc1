/* ingest_config.h - cdr-ingest's settings and their table. */
#ifndef CDR_INGEST_CONFIG_H
#define CDR_INGEST_CONFIG_H

#include <stdbool.h>

#include "auth_options.h"
#include "config.h"

typedef struct ingest_config {
    char *listen;           /* host:port */
    long long threads;      /* 0 = one per core */
    char *redis_url;        /* redis://host:port[/db] */
    char *stream_key;       /* the Redis Stream appended to */
    long long max_body;     /* bytes, after inflating */
    long long max_backlog;  /* stream entries not yet drained; past it, 503 */
    long long max_conns;    /* open client connections per thread */
    long long timeout_s;    /* header and body read timeout */
    long long compress_min; /* rows payload size from which an entry is zstd-compressed */
    auth_settings auth;
    char *log_level;
    bool check_config;
} ingest_config;

extern const cfg_table ingest_cfg_table;

#endif
