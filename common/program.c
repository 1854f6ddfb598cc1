/* program.c - shared program start-up: config table, --help, log level, unknown variables. */
#include "program.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

extern char **environ;

/* Variables of the shared deployment environment (scripts/stack env): each program reads some
 * of them, and the others are not a mistake worth a warning. */
static const char *const shared_env[] = {
    "CDR_PG_URL",     "CDR_WRITER_PG_URL",   "CDR_QUERY_PG_URL",        "CDR_REDIS_URL",
    "CDR_INGEST_URL", "CDR_QUERY_URL",       "CDR_WRITER_METRICS_URL",  "CDR_JWT_ALG",
    "CDR_JWT_SECRET", "CDR_JWT_SECRET_FILE", "CDR_JWT_PUBLIC_KEY_FILE", "CDR_JWT_PRIVATE_KEY_FILE",
    "CDR_JWT_ISSUER", "CDR_JWT_AUDIENCE",    "CDR_JWT_LEEWAY_S",        "CDR_LOG_LEVEL",
};

static void warn_unknown(const char *name, void *arg)
{
    const cfg_table *t = arg;
    if (strncmp(name, "CDR_STACK_", 10) == 0 || strncmp(name, "CDR_TEST_", 9) == 0)
        return;
    for (size_t i = 0; i < CDR_ARRAY_LEN(shared_env); i++)
        if (strcmp(name, shared_env[i]) == 0)
            return;
    LOG_WARN(t->program, "ignoring %s: not a setting of %s", name, t->program);
}

int program_start(const cfg_table *t, void *conf, int argc, char **argv, int *n_args,
                  size_t log_level_offset)
{
    char err[512];
    switch (cfg_load(t, conf, argc, argv, n_args, err, sizeof(err))) {
    case CFG_OK:
        break;
    case CFG_HELP:
        cfg_print_help(t, stdout);
        return 0;
    case CFG_ERROR:
    default:
        fprintf(stderr, "%s: %s\n", t->program, err);
        fprintf(stderr, "Try '%s --help' for the list of settings.\n", t->program);
        return PROGRAM_EXIT_USAGE;
    }
    const char *level_name = *(char **)((char *)conf + log_level_offset);
    log_level level = LOG_LEVEL_INFO;
    if (level_name && log_parse_level(level_name, &level) != 0) {
        fprintf(stderr, "%s: CDR_LOG_LEVEL: unknown level '%s'\n", t->program, level_name);
        return PROGRAM_EXIT_USAGE;
    }
    log_set_level(level);
    cfg_unknown_env(t, environ, warn_unknown, (void *)t);
    return PROGRAM_CONTINUE;
}
