/* config.h - one declarative table per program: CDR_* environment, --long-flags, bounds, --help. */
#ifndef CDR_CONFIG_H
#define CDR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "compiler.h"

typedef enum cfg_type {
    CFG_STRING, /* char * (heap, owned by the config struct; free with cfg_free) */
    CFG_INT,    /* long long; bounds are [min, max] */
    CFG_SIZE,   /* long long bytes; accepts suffixes k, M, G (powers of 1024), e.g. "64M" */
    CFG_BOOL,   /* bool; true|false|1|0|yes|no|on|off; a bare --flag means true */
    CFG_ENUM,   /* char * that must be one of 'choices' ("a|b|c") */
} cfg_type;

/* One configuration key. Every program has a static const array of these; the same array
 * parses the environment and the command line and prints --help, so they never disagree. */
typedef struct cfg_option {
    const char *flag;    /* long flag without dashes: "listen" is --listen */
    const char *env;     /* environment variable: "CDR_INGEST_LISTEN"; NULL = flag only */
    cfg_type type;       /* how the value is parsed */
    const char *def;     /* default as text, parsed like any other value; NULL = unset */
    long long min, max;  /* CFG_INT/CFG_SIZE: value bounds; CFG_STRING: length bounds
                            (0,0 = any length); ignored otherwise */
    const char *choices; /* CFG_ENUM: "a|b|c" */
    size_t offset;       /* offsetof() of the field in the program's config struct */
    const char *help;    /* one line for --help */
} cfg_option;

typedef struct cfg_table {
    const char *program; /* "cdr-ingest" */
    const char *summary; /* one line: what the program does */
    const char *usage;   /* after the program name in the usage line, e.g. "[options]" */
    const cfg_option *opts;
    size_t n_opts;
    bool stop_at_command; /* options end at the first positional argument, which with the rest
                             is left for a subcommand's own table (cdrctl) */
} cfg_table;

typedef enum cfg_result {
    CFG_OK = 0,     /* 'conf' is filled; 'argv' holds the leftover positional arguments */
    CFG_HELP = 1,   /* --help was given: the caller prints cfg_print_help and exits 0 */
    CFG_ERROR = -1, /* 'err' names the key and what is wrong with it; 'conf' is partly filled */
} cfg_result;

/* Fills the struct 'conf' from, in increasing priority: each option's default, its environment
 * variable, its --flag. Flags are "--name value" or "--name=value"; "--" ends the options.
 * Positional arguments (and everything after "--") are compacted to the front of 'argv' and
 * their count stored in '*n_args' (may be NULL when the program takes none, in which case a
 * positional argument is an error).
 *
 * Errors (CFG_ERROR, message in 'err'):
 *   - an unknown flag ("unknown option --lisen");
 *   - a flag without its value;
 *   - a value that does not parse or is out of bounds, naming the flag or variable and the
 *     bounds ("CDR_INGEST_THREADS: 0 is out of range [1, 256]").
 * An environment variable starting with CDR_ that the table does not know is not an error
 * (programs share one environment) but is reported through cfg_unknown_env(). */
cfg_result cfg_load(const cfg_table *t, void *conf, int argc, char **argv, int *n_args, char *err,
                    size_t errlen) CDR_MUST_CHECK;

/* Writes the usage line, the summary and one entry per option: flag, variable, type, default,
 * bounds and help text. */
void cfg_print_help(const cfg_table *t, FILE *out);

/* Calls 'fn' for every CDR_* variable of 'envp' that no option of 't' names. */
void cfg_unknown_env(const cfg_table *t, char **envp, void (*fn)(const char *name, void *arg),
                     void *arg);

/* Frees the CFG_STRING and CFG_ENUM fields of 'conf'. */
void cfg_free(const cfg_table *t, void *conf);

#endif
