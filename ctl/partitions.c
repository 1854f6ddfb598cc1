/* partitions.c - `cdrctl partitions ensure`: monthly partitions of voip_cdr ahead of need. */
#include "partitions.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "pg_util.h"

bool partitions_month_valid(const char *s)
{
    if (!s || strlen(s) != 7 || s[4] != '-')
        return false;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return false;
    int year = atoi(s);
    int month = atoi(s + 5);
    return year >= 2000 && month >= 1 && month <= 12;
}

int partitions_ensure(PGconn *conn, const char *from_month, int months, FILE *out, char *err,
                      size_t errlen)
{
    char first_day[16];
    char count[16];
    snprintf(first_day, sizeof(first_day), "%.7s-01", from_month);
    snprintf(count, sizeof(count), "%d", months);
    const char *params[2] = {first_day, count};

    PGresult *res = pgu_query(conn, "SELECT public.cdr_ensure_months($1::date, $2::integer)", 2,
                              params, err, errlen);
    if (!res)
        return -1;
    for (int r = 0; r < PQntuples(res); r++)
        fprintf(out, "%s\n", PQgetvalue(res, r, 0));
    PQclear(res);
    return 0;
}

typedef struct ensure_flags {
    char *from;
    long long months;
} ensure_flags;

static const cfg_option ensure_options[] = {
    {"from", NULL, CFG_STRING, NULL, 7, 7, NULL, offsetof(ensure_flags, from),
     "first month, YYYY-MM (UTC; default: the current month)"},
    {"months", NULL, CFG_INT, "3", 1, PARTITIONS_MONTHS_MAX, NULL, offsetof(ensure_flags, months),
     "number of consecutive months"},
};

static const cfg_table ensure_table = {
    .program = "cdrctl partitions ensure",
    .summary = "Creates the monthly partitions of voip_cdr (voip_cdr_YYYY_MM, UTC month bounds) "
               "that do not exist yet and prints the name of each.",
    .usage = "[--from YYYY-MM] [--months N]",
    .opts = ensure_options,
    .n_opts = CDR_ARRAY_LEN(ensure_options),
};

int ctl_partitions_main(const ctl_config *conf, int argc, char **argv)
{
    ensure_flags flags = {0};
    char err[1024];
    char month[32];
    PGconn *conn = NULL;
    int rc;

    if (argc < 2) {
        ctl_error("partitions: missing command (ensure)");
        fprintf(stderr, "Try 'cdrctl partitions --help'.\n");
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cfg_print_help(&ensure_table, stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "ensure") != 0) {
        ctl_error("partitions: unknown command '%s' (expected ensure)", argv[1]);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_parse_flags(&ensure_table, &flags, argc - 1, argv + 1);
    if (rc != CTL_CONTINUE)
        goto done;

    if (flags.from) {
        if (!partitions_month_valid(flags.from)) {
            ctl_error("partitions ensure: --from: expected a month YYYY-MM, got '%s'", flags.from);
            rc = CTL_EXIT_USAGE;
            goto done;
        }
        snprintf(month, sizeof(month), "%s", flags.from);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(month, sizeof(month), "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    }

    conn = pgu_connect(conf->pg_url, err, sizeof(err));
    if (!conn) {
        ctl_error("partitions ensure: %s", err);
        rc = CTL_EXIT_FAILURE;
        goto done;
    }
    rc = CTL_EXIT_OK;
    if (partitions_ensure(conn, month, (int)flags.months, stdout, err, sizeof(err)) != 0) {
        ctl_error("partitions ensure: %s", err);
        rc = CTL_EXIT_FAILURE;
    }
done:
    PQfinish(conn);
    cfg_free(&ensure_table, &flags);
    return rc;
}
