/* test_log.c - log levels and the exact shape of a stderr log line. */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "stderr_capture.h"

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

Test(log, parse_level_accepts_every_level_in_any_case)
{
    static const struct {
        const char *text;
        log_level level;
    } cases[] = {
        {"debug", LOG_LEVEL_DEBUG}, {"DEBUG", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO},
        {"Info", LOG_LEVEL_INFO},   {"warn", LOG_LEVEL_WARN},   {"WaRn", LOG_LEVEL_WARN},
        {"error", LOG_LEVEL_ERROR}, {"ERROR", LOG_LEVEL_ERROR}, {"off", LOG_LEVEL_OFF},
        {"OFF", LOG_LEVEL_OFF},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        log_level got = LOG_LEVEL_OFF;
        if (cases[i].level == LOG_LEVEL_OFF)
            got = LOG_LEVEL_DEBUG;
        cr_assert_eq(log_parse_level(cases[i].text, &got), 0, "'%s' refused", cases[i].text);
        cr_assert_eq(got, cases[i].level, "'%s' parsed as %d", cases[i].text, (int)got);
    }
}

Test(log, parse_level_refuses_garbage)
{
    static const char *const bad[] = {"", "verbose", "warning", "info ", " info", "3", "err"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        log_level got = LOG_LEVEL_ERROR;
        cr_assert_eq(log_parse_level(bad[i], &got), -1, "'%s' accepted", bad[i]);
        cr_assert_eq(got, LOG_LEVEL_ERROR, "'%s' changed the output", bad[i]);
    }
}

Test(log, line_has_utc_timestamp_level_component_and_message)
{
    /* A zone far from UTC, so that a local timestamp could not pass for UTC. */
    setenv("TZ", "XYZ-9", 1);
    tzset();
    log_set_level(LOG_LEVEL_INFO);
    time_t before = time(NULL);
    stderr_capture_start();
    LOG_WARN("ingest", "accepted %d rows\nfrom %s", 42, "peer");
    const char *out = stderr_capture_end();
    time_t after = time(NULL);

    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                         "WARN ingest: accepted 42 rows from peer\n$",
                         REG_EXTENDED),
                 0);
    cr_assert_eq(regexec(&re, out, 0, NULL, 0), 0, "unexpected line: [%s]", out);
    regfree(&re);
    cr_assert_eq(count_char(out, '\n'), 1, "not exactly one line: [%s]", out);

    /* The timestamp is UTC: read back as UTC it is the current time. */
    struct tm tm = {0};
    cr_assert_not_null(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t stamp = timegm(&tm);
    cr_assert(stamp >= before - 1 && stamp <= after + 1, "timestamp %lld is not now (%lld)",
              (long long)stamp, (long long)before);
}

Test(log, every_level_writes_its_word)
{
    log_set_level(LOG_LEVEL_DEBUG);
    stderr_capture_start();
    LOG_DEBUG("c", "one");
    LOG_INFO("c", "two");
    LOG_WARN("c", "three");
    LOG_ERROR("c", "four");
    const char *out = stderr_capture_end();

    cr_assert_eq(count_char(out, '\n'), 4, "[%s]", out);
    const char *p = out;
    static const char *const expect[] = {"Z DEBUG c: one\n", "Z INFO c: two\n", "Z WARN c: three\n",
                                         "Z ERROR c: four\n"};
    for (size_t i = 0; i < 4; i++) {
        p = strstr(p, expect[i]);
        cr_assert_not_null(p, "missing or out of order: %s in [%s]", expect[i], out);
        p += strlen(expect[i]);
    }
}

Test(log, below_the_level_nothing_is_written)
{
    log_set_level(LOG_LEVEL_WARN);
    cr_assert_eq(log_get_level(), LOG_LEVEL_WARN);
    stderr_capture_start();
    LOG_DEBUG("query", "hidden debug");
    LOG_INFO("query", "hidden info");
    log_write(LOG_LEVEL_INFO, "query", "hidden direct");
    const char *out = stderr_capture_end();
    cr_assert_str_eq(out, "");

    stderr_capture_start();
    LOG_WARN("query", "shown");
    out = stderr_capture_end();
    cr_assert_not_null(strstr(out, " WARN query: shown\n"), "[%s]", out);
}

Test(log, level_off_silences_errors)
{
    log_set_level(LOG_LEVEL_OFF);
    stderr_capture_start();
    LOG_ERROR("writer", "not shown");
    log_write(LOG_LEVEL_ERROR, "writer", "not shown either");
    const char *out = stderr_capture_end();
    cr_assert_str_eq(out, "");
}

Test(log, long_message_is_cut_to_one_line_ending_in_dots)
{
    static char msg[5000];
    memset(msg, 'a', sizeof(msg) - 1);
    msg[100] = '\n';
    log_set_level(LOG_LEVEL_INFO);
    stderr_capture_start();
    LOG_INFO("ingest", "%s", msg);
    const char *out = stderr_capture_end();

    size_t len = strlen(out);
    cr_assert_leq(len, 2048, "line of %zu bytes", len);
    cr_assert_gt(len, 1024, "line of %zu bytes lost more than needed", len);
    cr_assert_eq(count_char(out, '\n'), 1);
    cr_assert_str_eq(out + len - 4, "...\n");
    cr_assert_not_null(strstr(out, " INFO ingest: aaaa"));
}
