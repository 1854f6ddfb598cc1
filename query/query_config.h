/* query_config.h - cdr-query's settings and their table. */
#ifndef CDR_QUERY_CONFIG_H
#define CDR_QUERY_CONFIG_H

#include <stdbool.h>

#include "auth_options.h"
#include "config.h"

typedef struct query_config {
    char *listen;
    char *pg_url;       /* connects as the reader role (row-level security) */
    long long pg_conns; /* pooled PostgreSQL connections */
    long long statement_timeout_ms;
    long long export_timeout_ms; /* statement timeout of a CSV export */
    long long tenant_rate;       /* requests per second per tenant (token bucket refill) */
    long long tenant_burst;
    long long ip_rate; /* requests per second per client address */
    long long ip_burst;
    auth_settings auth;
    char *log_level;
    bool check_config;
} query_config;

extern const cfg_table query_cfg_table;

#endif
