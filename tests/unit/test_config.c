/* test_config.c - config tables: priority of sources, flag syntax, bounds, errors and --help. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

typedef struct test_conf {
    char *listen;
    long long threads;
    long long max_body;
    bool verbose;
    char *log_level;
    char *name;
    bool dry_run;
    long long offset;
} test_conf;

#define OPT(f) offsetof(test_conf, f)

static const cfg_option opts[] = {
    {"listen", "CDR_TEST_LISTEN", CFG_STRING, "127.0.0.1:8080", 1, 64, NULL, OPT(listen),
     "Address to listen on"},
    {"threads", "CDR_TEST_THREADS", CFG_INT, "2", 1, 256, NULL, OPT(threads), "Worker threads"},
    {"max-body", "CDR_TEST_MAX_BODY", CFG_SIZE, "1M", 1024, 64LL << 20, NULL, OPT(max_body),
     "Largest request body"},
    {"verbose", "CDR_TEST_VERBOSE", CFG_BOOL, "false", 0, 0, NULL, OPT(verbose), "Chatty"},
    {"log-level", "CDR_TEST_LOG_LEVEL", CFG_ENUM, "info", 0, 0, LOG_LEVEL_CHOICES, OPT(log_level),
     "Log threshold"},
    {"name", "CDR_TEST_NAME", CFG_STRING, NULL, 3, 8, NULL, OPT(name), "Instance name"},
    {"dry-run", NULL, CFG_BOOL, "no", 0, 0, NULL, OPT(dry_run), "Change nothing"},
    {"offset", "CDR_TEST_OFFSET", CFG_INT, "-5", -10, 10, NULL, OPT(offset), "Signed knob"},
};

static const cfg_table table = {
    .program = "cdr-test",
    .summary = "Exercises the config tables.",
    .usage = "[options] [FILE...]",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
};

static const char *const test_env[] = {
    "CDR_TEST_LISTEN",    "CDR_TEST_THREADS", "CDR_TEST_MAX_BODY", "CDR_TEST_VERBOSE",
    "CDR_TEST_LOG_LEVEL", "CDR_TEST_NAME",    "CDR_TEST_OFFSET",
};

static void clean_env(void)
{
    for (size_t i = 0; i < sizeof(test_env) / sizeof(test_env[0]); i++)
        unsetenv(test_env[i]);
}

TestSuite(config, .init = clean_env, .fini = clean_env);

static char err[256];

/* Loads 'argv' (NULL-terminated, program name first) into '*c' with positional arguments
 * allowed; returns the result and the positional count in '*n'. */
static cfg_result load(test_conf *c, char **argv, int *n)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    memset(c, 0, sizeof(*c));
    err[0] = '\0';
    return cfg_load(&table, c, argc, argv, n, err, sizeof(err));
}

/* Loads a one-flag command line and expects an error whose message contains 'want'. */
static void expect_flag_error(char *flag, char *value, const char *want)
{
    test_conf c;
    int n;
    char *argv[] = {"cdr-test", flag, value, NULL};
    cr_assert_eq(load(&c, argv, &n), CFG_ERROR, "%s %s accepted", flag, value ? value : "");
    cr_assert_not_null(strstr(err, want), "error [%s] lacks [%s]", err, want);
    cfg_free(&table, &c);
}

static void expect_env_error(const char *var, const char *value, const char *want)
{
    test_conf c;
    int n;
    char *argv[] = {"cdr-test", NULL};
    setenv(var, value, 1);
    cr_assert_eq(load(&c, argv, &n), CFG_ERROR, "%s=%s accepted", var, value);
    cr_assert_not_null(strstr(err, want), "error [%s] lacks [%s]", err, want);
    unsetenv(var);
    cfg_free(&table, &c);
}

/* Loads '--flag value' and expects it to be accepted. */
static void load_ok(test_conf *c, char *flag, char *value)
{
    int n;
    char *argv[] = {"cdr-test", flag, value, NULL};
    cr_assert_eq(load(c, argv, &n), CFG_OK, "%s %s refused: %s", flag, value, err);
}

Test(config, defaults_applied)
{
    test_conf c;
    int n = -1;
    char *argv[] = {"cdr-test", NULL};
    cr_assert_eq(load(&c, argv, &n), CFG_OK, "%s", err);
    cr_assert_str_eq(c.listen, "127.0.0.1:8080");
    cr_assert_eq(c.threads, 2);
    cr_assert_eq(c.max_body, 1 << 20);
    cr_assert_eq(c.verbose, false);
    cr_assert_str_eq(c.log_level, "info");
    cr_assert_null(c.name, "an option without default stays unset");
    cr_assert_eq(c.offset, -5);
    cr_assert_eq(n, 0);
    cfg_free(&table, &c);
}

Test(config, env_overrides_default)
{
    setenv("CDR_TEST_THREADS", "7", 1);
    setenv("CDR_TEST_LISTEN", "[::]:9000", 1);
    setenv("CDR_TEST_LOG_LEVEL", "debug", 1);
    test_conf c;
    char *argv[] = {"cdr-test", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_eq(c.threads, 7);
    cr_assert_str_eq(c.listen, "[::]:9000");
    cr_assert_str_eq(c.log_level, "debug");
    cr_assert_eq(c.max_body, 1 << 20, "options without a variable keep their default");
    cfg_free(&table, &c);
}

Test(config, flag_overrides_env)
{
    setenv("CDR_TEST_THREADS", "7", 1);
    setenv("CDR_TEST_LISTEN", "[::]:9000", 1);
    test_conf c;
    char *argv[] = {"cdr-test", "--threads", "9", "--listen=0.0.0.0:1", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_eq(c.threads, 9);
    cr_assert_str_eq(c.listen, "0.0.0.0:1");
    cfg_free(&table, &c);
}

Test(config, last_flag_wins)
{
    test_conf c;
    char *argv[] = {"cdr-test", "--name", "first", "--name=second", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_str_eq(c.name, "second");
    cfg_free(&table, &c);
}

Test(config, equals_and_separate_value_forms)
{
    test_conf c;
    char *argv[] = {"cdr-test", "--threads=12", "--max-body", "2M", "--offset", "-3", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_eq(c.threads, 12);
    cr_assert_eq(c.max_body, 2 << 20);
    cr_assert_eq(c.offset, -3, "a negative number is a value, not a flag");
    cfg_free(&table, &c);
}

Test(config, equals_value_may_contain_equals_and_be_empty_for_no_string)
{
    test_conf c;
    char *argv[] = {"cdr-test", "--listen=a=b", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_str_eq(c.listen, "a=b");
    cfg_free(&table, &c);
    expect_flag_error("--threads=", NULL, "--threads: '' is not an integer");
}

Test(config, bare_bool_flag_means_true_and_takes_no_argument)
{
    test_conf c;
    int n;
    char *argv[] = {"cdr-test", "--verbose", "file.cdr", "--dry-run", NULL};
    cr_assert_eq(load(&c, argv, &n), CFG_OK, "%s", err);
    cr_assert_eq(c.verbose, true);
    cr_assert_eq(c.dry_run, true);
    cr_assert_eq(n, 1, "the word after a bare boolean flag is a positional argument");
    cr_assert_str_eq(argv[0], "file.cdr");
    cfg_free(&table, &c);
}

Test(config, bool_words)
{
    static const struct {
        char *text;
        bool value;
    } words[] = {{"true", true},   {"1", true},  {"yes", true}, {"on", true},   {"TRUE", true},
                 {"false", false}, {"0", false}, {"no", false}, {"off", false}, {"Off", false}};
    char flag[32];
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        test_conf c;
        snprintf(flag, sizeof(flag), "--verbose=%s", words[i].text);
        char *argv[] = {"cdr-test", "--verbose=yes", flag, NULL};
        cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s: %s", flag, err);
        cr_assert_eq(c.verbose, words[i].value, "%s", flag);
        cfg_free(&table, &c);

        setenv("CDR_TEST_VERBOSE", words[i].text, 1);
        char *none[] = {"cdr-test", NULL};
        cr_assert_eq(load(&c, none, NULL), CFG_OK, "env %s: %s", words[i].text, err);
        cr_assert_eq(c.verbose, words[i].value, "env %s", words[i].text);
        cfg_free(&table, &c);
    }
    unsetenv("CDR_TEST_VERBOSE");
    expect_flag_error("--verbose=maybe", NULL, "--verbose: 'maybe' is not a boolean");
    expect_env_error("CDR_TEST_VERBOSE", "2", "CDR_TEST_VERBOSE: '2' is not a boolean");
}

Test(config, int_bounds_are_inclusive)
{
    test_conf c;
    load_ok(&c, "--threads", "1");
    cr_assert_eq(c.threads, 1);
    cfg_free(&table, &c);
    load_ok(&c, "--threads", "256");
    cr_assert_eq(c.threads, 256);
    cfg_free(&table, &c);
    load_ok(&c, "--offset", "-10");
    cr_assert_eq(c.offset, -10);
    cfg_free(&table, &c);
}

Test(config, int_out_of_bounds_names_flag_and_range)
{
    expect_flag_error("--threads", "0", "--threads: 0 is out of range [1, 256]");
    expect_flag_error("--threads", "257", "--threads: 257 is out of range [1, 256]");
    expect_flag_error("--offset", "-11", "--offset: -11 is out of range [-10, 10]");
    expect_flag_error("--threads", "99999999999999999999999",
                      "--threads: 99999999999999999999999 is out of range [1, 256]");
}

Test(config, int_garbage_is_not_an_integer)
{
    expect_flag_error("--threads", "abc", "--threads: 'abc' is not an integer");
    expect_flag_error("--threads", "4x", "--threads: '4x' is not an integer");
    expect_flag_error("--threads", " 4", "--threads: ' 4' is not an integer");
    expect_flag_error("--threads", "4M", "--threads: '4M' is not an integer");
}

Test(config, env_value_out_of_bounds_names_the_variable)
{
    expect_env_error("CDR_TEST_THREADS", "0", "CDR_TEST_THREADS: 0 is out of range [1, 256]");
    expect_env_error("CDR_TEST_THREADS", "many", "CDR_TEST_THREADS: 'many' is not an integer");
    expect_env_error("CDR_TEST_MAX_BODY", "100",
                     "CDR_TEST_MAX_BODY: 100 is out of range [1k, 64M]");
}

Test(config, bad_env_value_is_refused_even_when_the_flag_is_given)
{
    setenv("CDR_TEST_THREADS", "0", 1);
    test_conf c;
    char *argv[] = {"cdr-test", "--threads", "4", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_ERROR);
    cr_assert_not_null(strstr(err, "CDR_TEST_THREADS"), "%s", err);
    cfg_free(&table, &c);
}

Test(config, size_suffixes)
{
    static const struct {
        char *text;
        long long bytes;
    } sizes[] = {
        {"1024", 1024},     {"2k", 2048},        {"2K", 2048},
        {"3M", 3LL << 20},  {"3MiB", 3LL << 20}, {"3MB", 3LL << 20},
        {"5KiB", 5 * 1024}, {"4096B", 4096},     {"64M", 64LL << 20},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        test_conf c;
        load_ok(&c, "--max-body", sizes[i].text);
        cr_assert_eq(c.max_body, sizes[i].bytes, "%s gave %lld", sizes[i].text, c.max_body);
        cfg_free(&table, &c);
    }
    setenv("CDR_TEST_MAX_BODY", "8k", 1);
    test_conf c;
    char *argv[] = {"cdr-test", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_eq(c.max_body, 8192);
    cfg_free(&table, &c);
}

Test(config, size_errors_and_overflow)
{
    expect_flag_error("--max-body", "65M", "--max-body: 65M is out of range [1k, 64M]");
    expect_flag_error("--max-body", "1G", "--max-body: 1G is out of range [1k, 64M]");
    expect_flag_error("--max-body", "9000000000G", "--max-body: 9000000000G is out of range");
    expect_flag_error("--max-body", "99999999999999999999", "out of range");
    /* (2^54 + 1) KiB wraps to exactly 1 KiB in 64 bits. */
    expect_flag_error("--max-body", "18014398509481985k", "out of range");
    expect_flag_error("--max-body", "12X", "--max-body: '12X' is not a size");
    expect_flag_error("--max-body", "1T", "--max-body: '1T' is not a size");
    expect_flag_error("--max-body", "iB", "--max-body: 'iB' is not a size");
    expect_flag_error("--max-body", "-1k", "--max-body: '-1k' is not a size");
    expect_flag_error("--max-body", "M", "--max-body: 'M' is not a size");
}

Test(config, enum_accepts_choices_and_names_them_on_error)
{
    test_conf c;
    load_ok(&c, "--log-level", "WARN");
    cr_assert_str_eq(c.log_level, "warn", "a choice is stored in the table's spelling");
    cfg_free(&table, &c);
    expect_flag_error("--log-level", "verbose",
                      "--log-level: 'verbose' is not one of debug|info|warn|error|off");
    expect_flag_error("--log-level", "inf", "is not one of debug|info|warn|error|off");
    expect_env_error("CDR_TEST_LOG_LEVEL", "loud",
                     "CDR_TEST_LOG_LEVEL: 'loud' is not one of debug|info|warn|error|off");
}

Test(config, string_length_bounds)
{
    test_conf c;
    load_ok(&c, "--name", "abc");
    cr_assert_str_eq(c.name, "abc");
    cfg_free(&table, &c);
    load_ok(&c, "--name", "abcdefgh");
    cr_assert_str_eq(c.name, "abcdefgh");
    cfg_free(&table, &c);
    expect_flag_error("--name", "ab", "--name: length 2 is out of range [3, 8]");
    expect_flag_error("--name", "abcdefghi", "--name: length 9 is out of range [3, 8]");
    expect_env_error("CDR_TEST_LISTEN", "", "CDR_TEST_LISTEN: length 0 is out of range [1, 64]");
}

Test(config, string_error_does_not_echo_the_value)
{
    expect_flag_error("--name", "s3cr3tvalue", "--name: length 11");
    cr_assert_null(strstr(err, "s3cr3t"), "%s", err);
}

Test(config, unknown_flag_is_named)
{
    expect_flag_error("--lisen", "x", "unknown option --lisen");
    expect_flag_error("-x", NULL, "unknown option -x");
    expect_flag_error("--thread", "3", "unknown option --thread");
    expect_flag_error("--threadsx", "3", "unknown option --threadsx");
    expect_flag_error("--lisen=x", NULL, "unknown option --lisen");
    cr_assert_null(strstr(err, "=x"), "%s", err);
}

Test(config, missing_flag_value)
{
    expect_flag_error("--threads", NULL, "--threads: missing value");
    test_conf c;
    char *argv[] = {"cdr-test", "--listen", "--threads", "3", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_ERROR, "a flag is not taken as the previous value");
    cr_assert_not_null(strstr(err, "--listen: missing value"), "%s", err);
    cfg_free(&table, &c);
}

Test(config, positional_arguments_compacted_and_counted)
{
    test_conf c;
    int n = -1;
    char *argv[] = {"cdr-test", "a.cdr", "--threads", "3", "-", "b.cdr", "--verbose", NULL};
    cr_assert_eq(load(&c, argv, &n), CFG_OK, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(argv[0], "a.cdr");
    cr_assert_str_eq(argv[1], "-");
    cr_assert_str_eq(argv[2], "b.cdr");
    cr_assert_eq(c.threads, 3);
    cr_assert_eq(c.verbose, true);
    cfg_free(&table, &c);
}

Test(config, positional_argument_refused_without_n_args)
{
    test_conf c;
    char *argv[] = {"cdr-test", "--threads", "3", "stray", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_ERROR);
    cr_assert_not_null(strstr(err, "unexpected argument 'stray'"), "%s", err);
    cfg_free(&table, &c);
}

Test(config, double_dash_ends_options)
{
    test_conf c;
    int n = -1;
    char *argv[] = {"cdr-test", "--threads", "3", "--", "--threads", "5", "--bogus", NULL};
    cr_assert_eq(load(&c, argv, &n), CFG_OK, "%s", err);
    cr_assert_eq(c.threads, 3);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(argv[0], "--threads");
    cr_assert_str_eq(argv[1], "5");
    cr_assert_str_eq(argv[2], "--bogus");
    cfg_free(&table, &c);

    char *only[] = {"cdr-test", "--", NULL};
    cr_assert_eq(load(&c, only, NULL), CFG_OK, "a lone -- is no argument: %s", err);
    cfg_free(&table, &c);
}

Test(config, stop_at_command_leaves_the_subcommand_and_its_flags)
{
    cfg_table t = table;
    t.stop_at_command = true;
    test_conf c = {0};
    int n = -1;
    char *argv[] = {"cdrctl", "--threads", "4", "migrate", "--dry-run", "--threads", "x", NULL};
    cr_assert_eq(cfg_load(&t, &c, 7, argv, &n, err, sizeof(err)), CFG_OK, "%s", err);
    cr_assert_eq(c.threads, 4);
    cr_assert_eq(c.dry_run, false, "flags after the command belong to it");
    cr_assert_eq(n, 4);
    cr_assert_str_eq(argv[0], "migrate");
    cr_assert_str_eq(argv[1], "--dry-run");
    cr_assert_str_eq(argv[2], "--threads");
    cr_assert_str_eq(argv[3], "x");

    /* The subcommand's own table reads what is left, its name in the place of a program's. */
    test_conf sub = {0};
    int m = -1;
    cr_assert_eq(cfg_load(&table, &sub, n, argv, &m, err, sizeof(err)), CFG_ERROR);
    cr_assert_not_null(strstr(err, "--threads: 'x' is not an integer"), "%s", err);
    cfg_free(&table, &sub);
    cfg_free(&t, &c);
}

Test(config, help_returns_cfg_help_even_with_a_bad_environment)
{
    setenv("CDR_TEST_THREADS", "0", 1);
    test_conf c;
    char *argv[] = {"cdr-test", "--threads", "3", "--help", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_HELP);
    cfg_free(&table, &c);
    char *argv2[] = {"cdr-test", "-h", NULL};
    cr_assert_eq(load(&c, argv2, NULL), CFG_HELP);
    cfg_free(&table, &c);
    char *argv3[] = {"cdr-test", "--", "--help", NULL};
    int n;
    unsetenv("CDR_TEST_THREADS");
    cr_assert_eq(load(&c, argv3, &n), CFG_OK, "--help after -- is an argument");
    cr_assert_eq(n, 1);
    cfg_free(&table, &c);
}

Test(config, bad_default_is_reported)
{
    static const cfg_option bad[] = {
        {"threads", "CDR_TEST_THREADS", CFG_INT, "two", 1, 256, NULL, OPT(threads), "Workers"},
    };
    cfg_table t = {.program = "p", .opts = bad, .n_opts = 1};
    test_conf c = {0};
    char *argv[] = {"p", NULL};
    cr_assert_eq(cfg_load(&t, &c, 1, argv, NULL, err, sizeof(err)), CFG_ERROR);
    cr_assert_not_null(strstr(err, "--threads (default): 'two' is not an integer"), "%s", err);
}

Test(config, print_help_lists_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cfg_print_help(&table, f);
    fclose(f);

    static const char *const want[] = {
        "Usage: cdr-test [options] [FILE...]\n",
        "Exercises the config tables.",
        "--help",
        "127.0.0.1:8080",
        "1..256",
        "1k..64M",
        "default 1M",
        "default info",
        "debug|info|warn|error|off",
        "length 3..8",
        "-10..10",
        "default -5",
        "Address to listen on",
        "Worker threads",
        "Change nothing",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_not_null(strstr(text, want[i]), "help lacks [%s]:\n%s", want[i], text);
    for (size_t i = 0; i < table.n_opts; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", opts[i].flag);
        cr_assert_not_null(strstr(text, flag), "help lacks %s:\n%s", flag, text);
        if (opts[i].env)
            cr_assert_not_null(strstr(text, opts[i].env), "help lacks %s:\n%s", opts[i].env, text);
    }

    /* Entries are aligned: every variable starts in the same column. */
    const char *a = strstr(text, "CDR_TEST_LISTEN");
    const char *b = strstr(text, "CDR_TEST_LOG_LEVEL");
    const char *la = a, *lb = b;
    while (la > text && la[-1] != '\n')
        la--;
    while (lb > text && lb[-1] != '\n')
        lb--;
    cr_assert_eq(a - la, b - lb, "misaligned:\n%s", text);
    free(text);
}

struct seen {
    char names[512];
    int count;
};

static void note_unknown(const char *name, void *arg)
{
    struct seen *s = arg;
    strncat(s->names, name, sizeof(s->names) - strlen(s->names) - 2);
    strcat(s->names, " ");
    s->count++;
}

Test(config, unknown_env_reports_only_unknown_cdr_variables)
{
    char *envp[] = {"CDR_TEST_THREADS=3", "CDR_TEST_BOGUS=1", "PATH=/bin",  "CDR_TEST_LISTENX=a",
                    "CDR_TEST_LISTE=b",   "CDR_TEST_NAME=",   "HOME=/root", NULL};
    struct seen s = {{0}, 0};
    cfg_unknown_env(&table, envp, note_unknown, &s);
    cr_assert_eq(s.count, 3, "reported: %s", s.names);
    cr_assert_str_eq(s.names, "CDR_TEST_BOGUS CDR_TEST_LISTENX CDR_TEST_LISTE ");
}

Test(config, free_releases_strings_and_clears_fields)
{
    setenv("CDR_TEST_LISTEN", "from-env:1", 1);
    setenv("CDR_TEST_LOG_LEVEL", "error", 1);
    test_conf c;
    char *argv[] = {"cdr-test", "--listen",         "from-flag:2", "--name",
                    "node1",    "--log-level=warn", NULL};
    cr_assert_eq(load(&c, argv, NULL), CFG_OK, "%s", err);
    cr_assert_str_eq(c.listen, "from-flag:2");
    cr_assert_str_eq(c.log_level, "warn");
    cfg_free(&table, &c);
    cr_assert_null(c.listen);
    cr_assert_null(c.log_level);
    cr_assert_null(c.name);
    cfg_free(&table, &c); /* a second free is harmless */
}
