/* ctl.h - what cdrctl's commands share: the global settings, exit codes, the command entry. */
#ifndef CDR_CTL_H
#define CDR_CTL_H

#include "config.h"

#define CTL_EXIT_OK      0
#define CTL_EXIT_FAILURE 1    /* the work failed; stderr says what */
#define CTL_EXIT_USAGE   2    /* bad arguments or settings */
#define CTL_CONTINUE     (-1) /* ctl_parse_flags: go on with the command */

/* The global settings, filled by ctl_main.c's table from CDR_* variables and flags. */
typedef struct ctl_config {
    char *pg_url;
    char *jwt_alg;              /* HS256|RS256|ES256 */
    char *jwt_secret;           /* HS256 */
    char *jwt_secret_file;      /* HS256, read instead of jwt_secret */
    char *jwt_private_key_file; /* RS256/ES256: PEM private key to sign dev tokens with */
    char *jwt_issuer;
    char *jwt_audience;
    char *log_level;
} ctl_config;

/* A command's entry point. 'argv[0]' is the command's name and the rest its own arguments
 * (the global options are already consumed). Returns the process exit status: CTL_EXIT_OK,
 * CTL_EXIT_FAILURE with a message on stderr naming what failed, or CTL_EXIT_USAGE. */
typedef int (*ctl_command_fn)(const ctl_config *conf, int argc, char **argv);

int ctl_migrate_main(const ctl_config *conf, int argc, char **argv);
int ctl_partitions_main(const ctl_config *conf, int argc, char **argv);
int ctl_rollups_main(const ctl_config *conf, int argc, char **argv);
int ctl_token_main(const ctl_config *conf, int argc, char **argv);

/* Parses a command's flag-only table 't' into 'conf' from 'argv' ('argv[0]' is skipped) and
 * takes no positional argument. Returns CTL_CONTINUE when the command should run, CTL_EXIT_OK
 * after printing --help on stdout, or CTL_EXIT_USAGE after printing the error on stderr. */
int ctl_parse_flags(const cfg_table *t, void *conf, int argc, char **argv);

/* Prints "cdrctl: " and the formatted message on stderr, then a newline. */
void ctl_error(const char *fmt, ...) CDR_PRINTF(1, 2);

#endif
