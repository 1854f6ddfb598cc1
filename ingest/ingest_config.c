/* ingest_config.c - cdr-ingest's config table: every CDR_* variable, flag, default and bound. */
#include "ingest_config.h"

#include <stddef.h>

#include "log.h"

static const cfg_option options[] = {
    {"listen", "CDR_INGEST_LISTEN", CFG_STRING, "127.0.0.1:8080", 3, 262, NULL,
     offsetof(ingest_config, listen), "address and port to accept CDR posts on"},
    {"threads", "CDR_INGEST_THREADS", CFG_INT, "0", 0, 256, NULL, offsetof(ingest_config, threads),
     "HTTP worker threads, each with its own event loop and Redis connection (0 = one per core)"},
    {"redis-url", "CDR_REDIS_URL", CFG_STRING, "redis://127.0.0.1:6379", 8, 1024, NULL,
     offsetof(ingest_config, redis_url), "Redis holding the CDR stream"},
    {"stream-key", "CDR_STREAM_KEY", CFG_STRING, "cdr:stream", 1, 256, NULL,
     offsetof(ingest_config, stream_key), "Redis Stream key CDRs are appended to"},
    {"max-body", "CDR_MAX_BODY", CFG_SIZE, "16M", 1024, 1LL << 30, NULL,
     offsetof(ingest_config, max_body), "largest request body accepted, after decompression"},
    {"max-backlog", "CDR_MAX_BACKLOG", CFG_INT, "1000000", 1, 1000000000, NULL,
     offsetof(ingest_config, max_backlog),
     "stream entries waiting for the writers past which posts get 503 (never evicted)"},
    {"max-connections", "CDR_INGEST_MAX_CONNECTIONS", CFG_INT, "10000", 1, 1000000, NULL,
     offsetof(ingest_config, max_conns),
     "open client connections of the process (sets the descriptor limit; past it accepting "
     "pauses)"},
    {"timeout", "CDR_INGEST_TIMEOUT_S", CFG_INT, "30", 1, 3600, NULL,
     offsetof(ingest_config, timeout_s), "seconds a client may take to send headers and body"},
    {"compress-min", "CDR_INGEST_COMPRESS_MIN", CFG_SIZE, "16k", 0, 1LL << 30, NULL,
     offsetof(ingest_config, compress_min),
     "a stream entry whose rows reach this size is stored zstd-compressed (0 = never)"},
    AUTH_CFG_OPTIONS(ingest_config, auth),
    LOG_CFG_OPTION(ingest_config, log_level),
    {"check-config", NULL, CFG_BOOL, "false", 0, 0, NULL, offsetof(ingest_config, check_config),
     "check the settings, print them and exit"},
};

const cfg_table ingest_cfg_table = {
    .program = "cdr-ingest",
    .summary = "Accepts CDR posts, validates them once and appends them to a Redis Stream.",
    .usage = "[options]",
    .opts = options,
    .n_opts = CDR_ARRAY_LEN(options),
};
