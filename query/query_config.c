/* query_config.c - cdr-query's config table: every CDR_* variable, flag, default and bound. */
#include "query_config.h"

#include <stddef.h>

#include "log.h"

static const cfg_option options[] = {
    {"listen", "CDR_QUERY_LISTEN", CFG_STRING, "127.0.0.1:8081", 3, 262, NULL,
     offsetof(query_config, listen), "address and port of the read API"},
    {"pg-url", "CDR_QUERY_PG_URL", CFG_STRING, "postgresql:///cdrflow?user=cdr_reader", 1, 4096,
     NULL, offsetof(query_config, pg_url), "PostgreSQL connection, as the reader role"},
    {"pg-conns", "CDR_QUERY_PG_CONNS", CFG_INT, "8", 1, 512, NULL, offsetof(query_config, pg_conns),
     "PostgreSQL connections in the pool"},
    {"statement-timeout-ms", "CDR_QUERY_STATEMENT_TIMEOUT_MS", CFG_INT, "10000", 10, 3600000, NULL,
     offsetof(query_config, statement_timeout_ms), "longest a query may run"},
    {"export-timeout-ms", "CDR_QUERY_EXPORT_TIMEOUT_MS", CFG_INT, "3600000", 1000, 86400000, NULL,
     offsetof(query_config, export_timeout_ms),
     "longest a CSV export may run (it streams at the client's pace)"},
    {"tenant-rate", "CDR_QUERY_TENANT_RATE", CFG_INT, "50", 1, 1000000, NULL,
     offsetof(query_config, tenant_rate), "requests per second allowed per tenant"},
    {"tenant-burst", "CDR_QUERY_TENANT_BURST", CFG_INT, "100", 1, 1000000, NULL,
     offsetof(query_config, tenant_burst), "requests a tenant may send at once"},
    {"ip-rate", "CDR_QUERY_IP_RATE", CFG_INT, "100", 1, 1000000, NULL,
     offsetof(query_config, ip_rate), "requests per second allowed per client address"},
    {"ip-burst", "CDR_QUERY_IP_BURST", CFG_INT, "200", 1, 1000000, NULL,
     offsetof(query_config, ip_burst), "requests a client address may send at once"},
    AUTH_CFG_OPTIONS(query_config, auth),
    LOG_CFG_OPTION(query_config, log_level),
    {"check-config", NULL, CFG_BOOL, "false", 0, 0, NULL, offsetof(query_config, check_config),
     "check the settings, print them and exit"},
};

const cfg_table query_cfg_table = {
    .program = "cdr-query",
    .summary = "Answers the read API: CDR search and export, KPIs, missed calls, QoS.",
    .usage = "[options]",
    .opts = options,
    .n_opts = CDR_ARRAY_LEN(options),
};
