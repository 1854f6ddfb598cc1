/* config.c - the config tables of config.h: defaults, CDR_* environment, --flags and --help. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errfmt.h"

#define ENV_PREFIX "CDR_"
#define LABEL_MAX  160

/* One --flag found on the command line: its option and its value text, which points into
 * argv (the next argument, or the part after '=') or at a literal for a bare boolean flag. */
typedef struct flag_hit {
    const cfg_option *opt;
    const char *value;
} flag_hit;

static const char *const bool_true[] = {"true", "1", "yes", "on"};
static const char *const bool_false[] = {"false", "0", "no", "off"};

static void *field(void *conf, const cfg_option *o)
{
    return (char *)conf + o->offset;
}

/* Bounds of 0,0 mean "unbounded" for numbers as for strings: a key that may only be 0 is
 * never what a table means. */
static bool has_bounds(const cfg_option *o)
{
    return o->min != 0 || o->max != 0;
}

/* Writes 'v' bytes the way a user would type it: "64M" when it is a whole number of a unit,
 * else plain digits. */
static void fmt_size(long long v, char *buf, size_t len)
{
    static const struct {
        long long mult;
        char suffix;
    } units[] = {{1LL << 30, 'G'}, {1LL << 20, 'M'}, {1LL << 10, 'k'}};

    for (size_t i = 0; v != 0 && i < CDR_ARRAY_LEN(units); i++) {
        if (v % units[i].mult == 0) {
            snprintf(buf, len, "%lld%c", v / units[i].mult, units[i].suffix);
            return;
        }
    }
    snprintf(buf, len, "%lld", v);
}

/* Reads a size suffix: k/K, M or G (powers of 1024), optionally followed by 'i' and then 'B'
 * ("64M", "64MiB", "64MB"), or a lone 'B' or nothing. Returns 0 with '*mult' set, or -1 when
 * 's' is anything else. */
static int size_suffix(const char *s, long long *mult)
{
    switch (*s) {
    case 'k':
    case 'K':
        *mult = 1LL << 10;
        s++;
        break;
    case 'M':
        *mult = 1LL << 20;
        s++;
        break;
    case 'G':
        *mult = 1LL << 30;
        s++;
        break;
    default:
        *mult = 1;
    }
    if (*mult > 1 && *s == 'i')
        s++;
    if (*s == 'B')
        s++;
    return *s == '\0' ? 0 : -1;
}

/* Parses the number of a CFG_INT or CFG_SIZE option into '*out' and checks its bounds.
 * Returns 0, or -1 with 'err' naming 'label', the text and, when out of bounds, the range. */
static int parse_number(const cfg_option *o, const char *text, const char *label, long long *out,
                        char *err, size_t errlen)
{
    bool is_size = o->type == CFG_SIZE;
    const char *what = is_size ? "a size" : "an integer";
    const char *digits = text;
    if (!is_size && (*digits == '-' || *digits == '+'))
        digits++;
    if (!isdigit((unsigned char)*digits)) {
        cdr_errf(err, errlen, "%s: '%s' is not %s", label, text, what);
        return -1;
    }

    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    bool overflow = errno == ERANGE;
    long long mult = 1;
    if (is_size) {
        if (size_suffix(end, &mult) != 0) {
            cdr_errf(err, errlen, "%s: '%s' is not a size (a number with an optional k, M or G)",
                     label, text);
            return -1;
        }
    } else if (*end != '\0') {
        cdr_errf(err, errlen, "%s: '%s' is not an integer", label, text);
        return -1;
    }
    if (v > LLONG_MAX / mult)
        overflow = true;
    else
        v *= mult;

    if (overflow || (has_bounds(o) && (v < o->min || v > o->max))) {
        if (!has_bounds(o)) {
            cdr_errf(err, errlen, "%s: %s is out of range", label, text);
        } else if (is_size) {
            char lo[32], hi[32];
            fmt_size(o->min, lo, sizeof(lo));
            fmt_size(o->max, hi, sizeof(hi));
            cdr_errf(err, errlen, "%s: %s is out of range [%s, %s]", label, text, lo, hi);
        } else {
            cdr_errf(err, errlen, "%s: %s is out of range [%lld, %lld]", label, text, o->min,
                     o->max);
        }
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *text, const char *label, bool *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < CDR_ARRAY_LEN(bool_true); i++) {
        if (strcasecmp(text, bool_true[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, bool_false[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    cdr_errf(err, errlen, "%s: '%s' is not a boolean (true|false|1|0|yes|no|on|off)", label, text);
    return -1;
}

/* Replaces the string owned by '*slot' with a copy of the first 'n' bytes of 's'. Returns 0,
 * or -1 when memory ran out ('*slot' unchanged). */
static int replace_string(char **slot, const char *s, size_t n, const char *label, char *err,
                          size_t errlen)
{
    char *copy = strndup(s, n);
    if (!copy) {
        cdr_errf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

/* Stores the choice of 'o->choices' that 'text' names, matched case-insensitively and kept
 * in the table's own spelling. Returns 0, or -1 naming the choices. */
static int parse_enum(const cfg_option *o, const char *text, const char *label, char **slot,
                      char *err, size_t errlen)
{
    if (!o->choices) {
        cdr_errf(err, errlen, "%s: the option has no choices", label);
        return -1;
    }
    size_t len = strlen(text);
    const char *c = o->choices;
    for (;;) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == len && strncasecmp(c, text, n) == 0)
            return replace_string(slot, c, n, label, err, errlen);
        if (!bar)
            break;
        c = bar + 1;
    }
    cdr_errf(err, errlen, "%s: '%s' is not one of %s", label, text, o->choices);
    return -1;
}

/* A string is never quoted back in an error: it may be a secret. */
static int parse_string(const cfg_option *o, const char *text, const char *label, char **slot,
                        char *err, size_t errlen)
{
    size_t len = strlen(text);
    if ((long long)len < o->min || (o->max > 0 && (long long)len > o->max)) {
        if (o->max > 0)
            cdr_errf(err, errlen, "%s: length %zu is out of range [%lld, %lld]", label, len, o->min,
                     o->max);
        else
            cdr_errf(err, errlen, "%s: length %zu is under the minimum of %lld", label, len,
                     o->min);
        return -1;
    }
    return replace_string(slot, text, len, label, err, errlen);
}

/* Parses 'text' as the value of 'o' and stores it in 'conf'; every source (default,
 * environment, flag) goes through here, so all are checked alike. Returns 0, or -1 with
 * 'err' starting with 'label' and the field left unchanged. */
static int apply_value(const cfg_option *o, const char *text, const char *label, void *conf,
                       char *err, size_t errlen)
{
    void *slot = field(conf, o);
    switch (o->type) {
    case CFG_STRING:
        return parse_string(o, text, label, slot, err, errlen);
    case CFG_INT:
    case CFG_SIZE:
        return parse_number(o, text, label, slot, err, errlen);
    case CFG_BOOL:
        return parse_bool(text, label, slot, err, errlen);
    case CFG_ENUM:
        return parse_enum(o, text, label, slot, err, errlen);
    }
    cdr_errf(err, errlen, "%s: unknown option type %d", label, (int)o->type);
    return -1;
}

static const cfg_option *find_flag(const cfg_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n_opts; i++) {
        const char *f = t->opts[i].flag;
        if (f && strncmp(f, name, len) == 0 && f[len] == '\0')
            return &t->opts[i];
    }
    return NULL;
}

/* Walks argv[1..argc) once: records each flag with its value text in 'hits' and moves the
 * positional arguments to the front of 'argv'. Nothing is parsed yet, so that --help and a
 * mistyped flag are answered before any value (a bad environment variable included).
 * Returns CFG_OK with '*n_hits' and '*n_pos' set, CFG_HELP, or CFG_ERROR for an unknown
 * flag or a flag without its value. */
static cfg_result scan_args(const cfg_table *t, int argc, char **argv, flag_hit *hits,
                            size_t *n_hits, int *n_pos, char *err, size_t errlen)
{
    int pos = 0;
    size_t nh = 0;
    int i = 1;
    for (; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (t->stop_at_command)
                break;
            argv[pos++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0)
            return CFG_HELP;
        if (a[1] != '-') {
            cdr_errf(err, errlen, "unknown option %s", a);
            return CFG_ERROR;
        }

        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 4 && strncmp(name, "help", 4) == 0)
            return CFG_HELP;
        const cfg_option *o = find_flag(t, name, len);
        if (!o) {
            cdr_errf(err, errlen, "unknown option --%.*s", (int)len, name);
            return CFG_ERROR;
        }

        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == CFG_BOOL) {
            /* A boolean never takes the next argument, which may be a positional one. */
            value = "true";
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            value = argv[++i];
        } else {
            cdr_errf(err, errlen, "--%s: missing value", o->flag);
            return CFG_ERROR;
        }
        hits[nh].opt = o;
        hits[nh].value = value;
        nh++;
    }
    for (; i < argc; i++)
        argv[pos++] = argv[i];

    *n_hits = nh;
    *n_pos = pos;
    return CFG_OK;
}

/* 'conf' starts zeroed or as an earlier cfg_load left it: a string field is freed when a
 * later source replaces it, and a field with no default and no source keeps its value. */
cfg_result cfg_load(const cfg_table *t, void *conf, int argc, char **argv, int *n_args, char *err,
                    size_t errlen)
{
    cfg_result rc = CFG_ERROR;
    flag_hit *hits = NULL;
    size_t n_hits = 0;
    int n_pos = 0;
    char label[LABEL_MAX];

    cdr_errf(err, errlen, "%s", "");
    if (argc > 1) {
        hits = calloc((size_t)argc, sizeof(*hits));
        if (!hits) {
            cdr_errf(err, errlen, "out of memory");
            goto done;
        }
    }
    rc = scan_args(t, argc, argv, hits, &n_hits, &n_pos, err, errlen);
    if (rc != CFG_OK)
        goto done;
    rc = CFG_ERROR;
    if (n_pos > 0 && !n_args) {
        cdr_errf(err, errlen, "unexpected argument '%s'", argv[0]);
        goto done;
    }

    for (size_t i = 0; i < t->n_opts; i++) {
        const cfg_option *o = &t->opts[i];
        if (!o->def)
            continue;
        snprintf(label, sizeof(label), "--%s (default)", o->flag ? o->flag : o->env);
        if (apply_value(o, o->def, label, conf, err, errlen) != 0)
            goto done;
    }
    for (size_t i = 0; i < t->n_opts; i++) {
        const cfg_option *o = &t->opts[i];
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v && apply_value(o, v, o->env, conf, err, errlen) != 0)
            goto done;
    }
    for (size_t i = 0; i < n_hits; i++) {
        snprintf(label, sizeof(label), "--%s", hits[i].opt->flag);
        if (apply_value(hits[i].opt, hits[i].value, label, conf, err, errlen) != 0)
            goto done;
    }

    if (n_args)
        *n_args = n_pos;
    rc = CFG_OK;
done:
    free(hits);
    return rc;
}

/* The "--flag META" column of --help. */
static void flag_column(const cfg_option *o, char *buf, size_t len)
{
    static const char *const meta[] = {
        [CFG_STRING] = " TEXT", [CFG_INT] = " N",       [CFG_SIZE] = " SIZE",
        [CFG_BOOL] = "[=BOOL]", [CFG_ENUM] = " CHOICE",
    };
    const char *m = (size_t)o->type < CDR_ARRAY_LEN(meta) ? meta[o->type] : "";
    if (o->flag)
        snprintf(buf, len, "--%s%s", o->flag, m);
    else
        snprintf(buf, len, "(environment only)");
}

/* The "(type, default, bounds)" part of an option's --help entry. */
static void print_details(const cfg_option *o, FILE *out)
{
    char lo[32], hi[32];
    switch (o->type) {
    case CFG_STRING:
        fputs("(string", out);
        if (o->def)
            fprintf(out, ", default \"%s\"", o->def);
        if (o->max > 0)
            fprintf(out, ", length %lld..%lld", o->min, o->max);
        else if (o->min > 0)
            fprintf(out, ", length >= %lld", o->min);
        break;
    case CFG_INT:
    case CFG_SIZE:
        fputs(o->type == CFG_INT ? "(int" : "(size", out);
        if (o->def)
            fprintf(out, ", default %s", o->def);
        if (has_bounds(o) && o->type == CFG_INT) {
            fprintf(out, ", %lld..%lld", o->min, o->max);
        } else if (has_bounds(o)) {
            fmt_size(o->min, lo, sizeof(lo));
            fmt_size(o->max, hi, sizeof(hi));
            fprintf(out, ", %s..%s", lo, hi);
        }
        break;
    case CFG_BOOL:
        fputs("(bool", out);
        if (o->def)
            fprintf(out, ", default %s", o->def);
        break;
    case CFG_ENUM:
        fprintf(out, "(one of %s", o->choices ? o->choices : "");
        if (o->def)
            fprintf(out, ", default %s", o->def);
        break;
    }
    fputs(")", out);
}

void cfg_print_help(const cfg_table *t, FILE *out)
{
    char col[128];
    int flag_w = (int)strlen("--help");
    int env_w = 1;
    for (size_t i = 0; i < t->n_opts; i++) {
        flag_column(&t->opts[i], col, sizeof(col));
        if ((int)strlen(col) > flag_w)
            flag_w = (int)strlen(col);
        if (t->opts[i].env && (int)strlen(t->opts[i].env) > env_w)
            env_w = (int)strlen(t->opts[i].env);
    }

    fprintf(out, "Usage: %s %s\n", t->program, t->usage ? t->usage : "[options]");
    if (t->summary)
        fprintf(out, "%s\n", t->summary);
    fputs("\nOptions (a flag overrides its environment variable, which overrides the default):\n",
          out);
    for (size_t i = 0; i < t->n_opts; i++) {
        const cfg_option *o = &t->opts[i];
        flag_column(o, col, sizeof(col));
        fprintf(out, "  %-*s  %-*s  ", flag_w, col, env_w, o->env ? o->env : "-");
        print_details(o, out);
        fputc('\n', out);
        if (o->help)
            fprintf(out, "      %s\n", o->help);
    }
    fprintf(out, "  %-*s  %-*s  show this help and exit\n", flag_w, "--help", env_w, "");
    fputs("\nSizes take a k, M or G suffix (powers of 1024). \"--\" ends the options.\n", out);
}

static bool env_known(const cfg_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n_opts; i++) {
        const char *e = t->opts[i].env;
        if (e && strncmp(e, name, len) == 0 && e[len] == '\0')
            return true;
    }
    return false;
}

void cfg_unknown_env(const cfg_table *t, char **envp, void (*fn)(const char *name, void *arg),
                     void *arg)
{
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (env_known(t, *e, len))
            continue;
        char *name = strndup(*e, len);
        if (!name)
            continue; /* out of memory: a warning is not worth failing for */
        fn(name, arg);
        free(name);
    }
}

void cfg_free(const cfg_table *t, void *conf)
{
    for (size_t i = 0; i < t->n_opts; i++) {
        const cfg_option *o = &t->opts[i];
        if (o->type != CFG_STRING && o->type != CFG_ENUM)
            continue;
        char **slot = field(conf, o);
        free(*slot);
        *slot = NULL;
    }
}
