/* writer_config.c - cdr-writer's config table: every CDR_* variable, flag, default and bound. */
#include "writer_config.h"

#include <stddef.h>

#include "auth_options.h"
#include "log.h"

static const cfg_option options[] = {
    {"redis-url", "CDR_REDIS_URL", CFG_STRING, "redis://127.0.0.1:6379", 8, 1024, NULL,
     offsetof(writer_config, redis_url), "Redis holding the CDR stream"},
    {"stream-key", "CDR_STREAM_KEY", CFG_STRING, "cdr:stream", 1, 256, NULL,
     offsetof(writer_config, stream_key), "Redis Stream key drained"},
    {"group", "CDR_WRITER_GROUP", CFG_STRING, "cdr-writers", 1, 256, NULL,
     offsetof(writer_config, group), "consumer group shared by all writers"},
    {"consumer", "CDR_WRITER_CONSUMER", CFG_STRING, NULL, 0, 256, NULL,
     offsetof(writer_config, consumer), "this writer's consumer name (default: host-pid)"},
    {"pg-url", "CDR_WRITER_PG_URL", CFG_STRING, "postgresql:///cdrflow?user=cdr_writer", 1, 4096,
     NULL, offsetof(writer_config, pg_url), "PostgreSQL connection, as the writer role"},
    {"batch", "CDR_WRITER_BATCH", CFG_INT, "50000", 1, 1000000, NULL,
     offsetof(writer_config, batch),
     "rows per batch, CDRs and rejects (a stream entry holds one or many)"},
    {"flush-ms", "CDR_WRITER_FLUSH_MS", CFG_INT, "200", 1, 600000, NULL,
     offsetof(writer_config, flush_ms), "longest wait for a batch to fill, in milliseconds"},
    {"claim-idle-ms", "CDR_WRITER_CLAIM_IDLE_MS", CFG_INT, "30000", 100, 86400000, NULL,
     offsetof(writer_config, claim_idle_ms),
     "entries pending this long on another consumer are claimed (a writer that died)"},
    {"max-entry", "CDR_WRITER_MAX_ENTRY", CFG_SIZE, "64M", 1LL << 20, 1LL << 30, NULL,
     offsetof(writer_config, max_entry),
     "largest rows of one stream entry, once inflated; a larger entry is dead-lettered"},
    {"months-ahead", "CDR_WRITER_MONTHS_AHEAD", CFG_INT, "2", 0, 120, NULL,
     offsetof(writer_config, months_ahead), "monthly partitions created ahead of the current one"},
    {"metrics-listen", "CDR_WRITER_METRICS_LISTEN", CFG_STRING, "127.0.0.1:8082", 3, 262, NULL,
     offsetof(writer_config, metrics_listen), "address of /healthz and /metrics"},
    LOG_CFG_OPTION(writer_config, log_level),
    {"check-config", NULL, CFG_BOOL, "false", 0, 0, NULL, offsetof(writer_config, check_config),
     "check the settings, print them and exit"},
};

const cfg_table writer_cfg_table = {
    .program = "cdr-writer",
    .summary = "Drains the CDR stream in batches into PostgreSQL, exactly once, with rollups.",
    .usage = "[options]",
    .opts = options,
    .n_opts = CDR_ARRAY_LEN(options),
};
