/* ctl_main.c - cdrctl: the global settings, then one command (migrate, partitions, rollups,
 * token). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "auth_options.h"
#include "ctl.h"
#include "log.h"
#include "program.h"

static const cfg_option options[] = {
    {"pg-url", "CDR_PG_URL", CFG_STRING, "postgresql:///cdrflow", 1, 4096, NULL,
     offsetof(ctl_config, pg_url), "PostgreSQL connection, as the role owning the schema"},
    {"jwt-alg", "CDR_JWT_ALG", CFG_ENUM, "HS256", 0, 0, AUTH_ALG_CHOICES,
     offsetof(ctl_config, jwt_alg), "algorithm tokens are signed with"},
    {"jwt-secret", "CDR_JWT_SECRET", CFG_STRING, NULL, 0, 4096, NULL,
     offsetof(ctl_config, jwt_secret), "HS256 shared secret (at least 32 bytes)"},
    {"jwt-secret-file", "CDR_JWT_SECRET_FILE", CFG_STRING, NULL, 0, 4096, NULL,
     offsetof(ctl_config, jwt_secret_file), "read the HS256 secret from this file"},
    {"jwt-private-key-file", "CDR_JWT_PRIVATE_KEY_FILE", CFG_STRING, NULL, 0, 4096, NULL,
     offsetof(ctl_config, jwt_private_key_file),
     "PEM private key signing RS256/ES256 tokens (development)"},
    {"jwt-issuer", "CDR_JWT_ISSUER", CFG_STRING, NULL, 0, 1024, NULL,
     offsetof(ctl_config, jwt_issuer), "iss of minted tokens, when set"},
    {"jwt-audience", "CDR_JWT_AUDIENCE", CFG_STRING, NULL, 0, 1024, NULL,
     offsetof(ctl_config, jwt_audience), "aud of minted tokens, when set"},
    LOG_CFG_OPTION(ctl_config, log_level),
};

static const cfg_table ctl_table = {
    .program = "cdrctl",
    .summary = "Administers cdrflow: schema migrations, monthly partitions, rollup rebuilds, "
               "development tokens.",
    .usage = "[options] COMMAND [command options]",
    .opts = options,
    .n_opts = CDR_ARRAY_LEN(options),
    .stop_at_command = true,
};

static const struct {
    const char *name;
    ctl_command_fn fn;
    const char *help;
} commands[] = {
    {"migrate", ctl_migrate_main, "apply the SQL migrations the database lacks"},
    {"partitions", ctl_partitions_main,
     "ensure [--from YYYY-MM] [--months N]: create monthly partitions of voip_cdr"},
    {"rollups", ctl_rollups_main,
     "rebuild --from YYYY-MM-DD --to YYYY-MM-DD: recompute rollups and callback state"},
    {"token", ctl_token_main,
     "--tenant-id UUID --sip-domain DOMAIN --scope SCOPES [--ttl S]: print a signed token"},
};

void ctl_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "cdrctl: %s\n", msg);
}

int ctl_parse_flags(const cfg_table *t, void *conf, int argc, char **argv)
{
    char err[512];
    switch (cfg_load(t, conf, argc, argv, NULL, err, sizeof(err))) {
    case CFG_OK:
        return CTL_CONTINUE;
    case CFG_HELP:
        cfg_print_help(t, stdout);
        return CTL_EXIT_OK;
    case CFG_ERROR:
    default:
        fprintf(stderr, "%s: %s\n", t->program, err);
        fprintf(stderr, "Try '%s --help'.\n", t->program);
        return CTL_EXIT_USAGE;
    }
}

static void print_commands(FILE *out)
{
    fputs("\nCommands (COMMAND --help for each one's options):\n", out);
    for (size_t i = 0; i < CDR_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-10s  %s\n", commands[i].name, commands[i].help);
    fputs("\nExit status: 0 done, 1 failed (the reason is on stderr), 2 bad usage.\n", out);
}

int main(int argc, char **argv)
{
    ctl_config conf = {0};
    int n_args = 0;

    int rc = program_start(&ctl_table, &conf, argc, argv, &n_args, offsetof(ctl_config, log_level));
    if (rc != PROGRAM_CONTINUE) {
        /* program_start returns 0 only after printing --help. */
        if (rc == 0)
            print_commands(stdout);
        goto done;
    }
    if (n_args == 0) {
        ctl_error("missing command");
        fprintf(stderr, "Try 'cdrctl --help'.\n");
        rc = CTL_EXIT_USAGE;
        goto done;
    }
    rc = CTL_EXIT_USAGE;
    for (size_t i = 0; i < CDR_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[0], commands[i].name) == 0) {
            rc = commands[i].fn(&conf, n_args, argv);
            goto done;
        }
    }
    ctl_error("unknown command '%s'", argv[0]);
    fprintf(stderr, "Try 'cdrctl --help'.\n");
done:
    cfg_free(&ctl_table, &conf);
    return rc;
}
