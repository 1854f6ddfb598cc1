/* writer_config.h - cdr-writer's settings and their table. */
#ifndef CDR_WRITER_CONFIG_H
#define CDR_WRITER_CONFIG_H

#include <stdbool.h>

#include "config.h"

typedef struct writer_config {
    char *redis_url;
    char *stream_key;
    char *group;             /* consumer group shared by every writer */
    char *consumer;          /* this writer's name in the group; default host-pid */
    char *pg_url;            /* connects as the writer role */
    long long batch;         /* rows (CDRs and rejects) per batch */
    long long flush_ms;      /* longest wait for a batch to fill */
    long long claim_idle_ms; /* pending entries idle this long are claimed from dead writers */
    long long max_entry;     /* bytes of one entry's rows, inflated */
    long long months_ahead;  /* partitions kept ready past the current month */
    char *metrics_listen;    /* host:port of /healthz and /metrics */
    char *log_level;
    bool check_config;
} writer_config;

extern const cfg_table writer_cfg_table;

#endif
