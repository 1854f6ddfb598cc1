/* test_metrics.c - sharded counters, histograms, gauges and their Prometheus text. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

TestSuite(metrics);

/* Renders 'm' into a fresh string the caller frees. */
static char *render(const metrics *m)
{
    cdr_buf b;
    cdr_buf_init(&b, 0);
    cr_assert_eq(metrics_render(m, &b), 0);
    char *s = cdr_buf_steal(&b);
    cr_assert_not_null(s);
    return s;
}

static bool is_name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/* Reads a metric or label name at 'p'; returns the first byte after it, or NULL. */
static const char *parse_name(const char *p)
{
    if (!is_name_char(*p, true))
        return NULL;
    while (is_name_char(*p, false))
        p++;
    return p;
}

static bool parse_value(const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if ((n == 4 && memcmp(p, "+Inf", 4) == 0) || (n == 4 && memcmp(p, "-Inf", 4) == 0) ||
        (n == 3 && memcmp(p, "NaN", 3) == 0))
        return true;
    char *stop;
    strtod(p, &stop);
    return n > 0 && stop == end;
}

/* A strict reader of text format 0.0.4 for what the registry emits: every line is "# HELP",
 * "# TYPE" or a sample; a family's TYPE comes once, before its samples, and a sample belongs
 * to the family of the last TYPE line (histograms through _bucket, _sum and _count). Returns
 * the number of samples, or -1 with the offending line reported. */
static int check_exposition(const char *text)
{
    char family[128] = "", type[16] = "";
    char seen[64][128];
    int nseen = 0, samples = 0;

    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        cr_assert_not_null(eol, "last line without newline");
        char l[512];
        cr_assert_lt((size_t)(eol - line), sizeof(l));
        memcpy(l, line, (size_t)(eol - line));
        l[eol - line] = '\0';
        line = eol + 1;

        if (strncmp(l, "# HELP ", 7) == 0) {
            const char *e = parse_name(l + 7);
            cr_assert(e && *e == ' ', "bad HELP: %s", l);
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            const char *e = parse_name(l + 7);
            cr_assert(e && *e == ' ', "bad TYPE: %s", l);
            snprintf(family, sizeof(family), "%.*s", (int)(e - l - 7), l + 7);
            snprintf(type, sizeof(type), "%s", e + 1);
            cr_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                          strcmp(type, "histogram") == 0,
                      "bad type: %s", l);
            for (int i = 0; i < nseen; i++)
                cr_assert_str_neq(seen[i], family, "family %s typed twice", family);
            cr_assert_lt(nseen, 64);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
            continue;
        }
        cr_assert_neq(l[0], '#', "unknown comment: %s", l);

        const char *e = parse_name(l);
        cr_assert_not_null(e, "bad sample name: %s", l);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(e - l), l);
        cr_assert(family[0], "sample before any TYPE: %s", l);
        bool ok = strcmp(name, family) == 0;
        if (strcmp(type, "histogram") == 0) {
            size_t fl = strlen(family);
            ok = strncmp(name, family, fl) == 0 &&
                 (strcmp(name + fl, "_bucket") == 0 || strcmp(name + fl, "_sum") == 0 ||
                  strcmp(name + fl, "_count") == 0);
        }
        cr_assert(ok, "sample %s outside family %s", name, family);
        if (*e == '{') {
            e++;
            for (;;) {
                e = parse_name(e);
                cr_assert(e && e[0] == '=' && e[1] == '"', "bad label: %s", l);
                e += 2;
                while (*e && *e != '"')
                    e += *e == '\\' ? 2 : 1;
                cr_assert_eq(*e, '"', "unterminated label value: %s", l);
                e++;
                if (*e == ',') {
                    e++;
                    continue;
                }
                cr_assert_eq(*e, '}', "bad label set: %s", l);
                e++;
                break;
            }
        }
        cr_assert_eq(*e, ' ', "no value: %s", l);
        cr_assert(parse_value(e + 1, l + strlen(l)), "bad value: %s", l);
        samples++;
    }
    return samples;
}

/* A registry of 'shards' shards. */
static metrics *new_metrics(int shards)
{
    metrics *m = metrics_create(shards);
    cr_assert_not_null(m);
    return m;
}

/* Asserts that 'm' renders exactly 'want' and that the page reads as text format 0.0.4 with
 * every line that is not a comment a sample. */
static void expect_page(const metrics *m, const char *want)
{
    char *text = render(m);
    cr_assert_str_eq(text, want);
    int samples = 0;
    for (const char *line = want; *line; line = strchr(line, '\n') + 1)
        samples += line[0] != '#';
    cr_assert_eq(check_exposition(text), samples);
    free(text);
}

Test(metrics, counter_sums_shards)
{
    metrics *m = new_metrics(3);
    int id = metrics_counter(m, "cdr_ingest_cdrs_accepted_total", "CDRs stored.", NULL);
    cr_assert_geq(id, 0);

    metrics_add(m, 0, id, 5);
    metrics_add(m, 1, id, 7);
    metrics_add(m, 2, id, 30);
    metrics_add(m, 2, id, 0);
    cr_assert_eq(metrics_counter_value(m, id), 42);

    expect_page(m, "# HELP cdr_ingest_cdrs_accepted_total CDRs stored.\n"
                   "# TYPE cdr_ingest_cdrs_accepted_total counter\n"
                   "cdr_ingest_cdrs_accepted_total 42\n");
    metrics_destroy(m);
}

Test(metrics, labels_group_under_one_family)
{
    metrics *m = new_metrics(2);
    int ok = metrics_counter(m, "req_total", "Requests by status.", "status=\"202\"");
    int other = metrics_counter(m, "other_total", "Something else.", NULL);
    int bad = metrics_counter(m, "req_total", "Requests by status.", "status=\"400\"");
    cr_assert(ok >= 0 && other >= 0 && bad >= 0);
    cr_assert(ok != other && ok != bad && other != bad);

    metrics_add(m, 0, ok, 3);
    metrics_add(m, 1, ok, 1);
    metrics_add(m, 1, bad, 2);
    metrics_add(m, 0, other, 9);
    cr_assert_eq(metrics_counter_value(m, ok), 4);
    cr_assert_eq(metrics_counter_value(m, bad), 2);

    expect_page(m, "# HELP req_total Requests by status.\n"
                   "# TYPE req_total counter\n"
                   "req_total{status=\"202\"} 4\n"
                   "req_total{status=\"400\"} 2\n"
                   "# HELP other_total Something else.\n"
                   "# TYPE other_total counter\n"
                   "other_total 9\n");
    metrics_destroy(m);
}

Test(metrics, histogram_cumulative_with_sum_and_count)
{
    metrics *m = new_metrics(2);
    static const double bounds[] = {0.25, 1, 4};
    int id = metrics_histogram(m, "rtt_seconds", "Round trip.", "op=\"xadd\"", bounds, 3);
    cr_assert_geq(id, 0);

    /* Binary fractions, so the sum is exact whatever order the shards add in. */
    metrics_observe(m, 0, id, 0.125);
    metrics_observe(m, 1, id, 0.25); /* on a bound: counts in that bucket (le) */
    metrics_observe(m, 0, id, 0.75);
    metrics_observe(m, 1, id, 3);
    metrics_observe(m, 0, id, 8);

    expect_page(m, "# HELP rtt_seconds Round trip.\n"
                   "# TYPE rtt_seconds histogram\n"
                   "rtt_seconds_bucket{op=\"xadd\",le=\"0.25\"} 2\n"
                   "rtt_seconds_bucket{op=\"xadd\",le=\"1\"} 3\n"
                   "rtt_seconds_bucket{op=\"xadd\",le=\"4\"} 4\n"
                   "rtt_seconds_bucket{op=\"xadd\",le=\"+Inf\"} 5\n"
                   "rtt_seconds_sum{op=\"xadd\"} 12.125\n"
                   "rtt_seconds_count{op=\"xadd\"} 5\n");
    metrics_destroy(m);
}

Test(metrics, histogram_without_labels_prints_bounds_shortest)
{
    metrics *m = new_metrics(1);
    static const double bounds[] = {0.001, 0.1};
    int id = metrics_histogram(m, "lat_seconds", "Latency.", NULL, bounds, 2);
    cr_assert_geq(id, 0);
    metrics_observe(m, 0, id, 0.1);

    expect_page(m, "# HELP lat_seconds Latency.\n"
                   "# TYPE lat_seconds histogram\n"
                   "lat_seconds_bucket{le=\"0.001\"} 0\n"
                   "lat_seconds_bucket{le=\"0.1\"} 1\n"
                   "lat_seconds_bucket{le=\"+Inf\"} 1\n"
                   "lat_seconds_sum 0.1\n"
                   "lat_seconds_count 1\n");
    metrics_destroy(m);
}

static double backlog(void *arg)
{
    return (double)*(const int *)arg;
}

Test(metrics, gauge_reads_callback_at_render)
{
    metrics *m = new_metrics(1);
    int value = 17;
    cr_assert_geq(metrics_gauge_fn(m, "cdr_ingest_stream_backlog", "Entries.", backlog, &value), 0);

    expect_page(m, "# HELP cdr_ingest_stream_backlog Entries.\n"
                   "# TYPE cdr_ingest_stream_backlog gauge\n"
                   "cdr_ingest_stream_backlog 17\n");

    value = 1234567;
    char *text = render(m);
    cr_assert(strstr(text, "\ncdr_ingest_stream_backlog 1234567\n"), "%s", text);
    free(text);
    metrics_destroy(m);
}

Test(metrics, small_registry_renders_exactly)
{
    metrics *m = new_metrics(2);
    static const double bounds[] = {0.5};
    int ok = metrics_counter(m, "req_total", "Requests\nby \\status.", "status=\"202\"");
    int h = metrics_histogram(m, "rtt_seconds", "Round trip.", NULL, bounds, 1);
    int value = 3;
    int g = metrics_gauge_fn(m, "backlog", "Entries.", backlog, &value);
    int err = metrics_counter(m, "req_total", "ignored", "status=\"503\"");
    cr_assert(ok >= 0 && h >= 0 && g >= 0 && err >= 0);

    metrics_add(m, 1, ok, 2);
    metrics_add(m, 0, err, 1);
    metrics_observe(m, 1, h, 0.5);
    metrics_observe(m, 0, h, 1.5);

    expect_page(m, "# HELP req_total Requests\\nby \\\\status.\n"
                   "# TYPE req_total counter\n"
                   "req_total{status=\"202\"} 2\n"
                   "req_total{status=\"503\"} 1\n"
                   "# HELP rtt_seconds Round trip.\n"
                   "# TYPE rtt_seconds histogram\n"
                   "rtt_seconds_bucket{le=\"0.5\"} 1\n"
                   "rtt_seconds_bucket{le=\"+Inf\"} 2\n"
                   "rtt_seconds_sum 2\n"
                   "rtt_seconds_count 2\n"
                   "# HELP backlog Entries.\n"
                   "# TYPE backlog gauge\n"
                   "backlog 3\n");
    metrics_destroy(m);
}

Test(metrics, render_appends_and_leaves_buffer_whole_on_failure)
{
    metrics *m = new_metrics(1);
    cr_assert_geq(metrics_counter(m, "a_total", "A.", NULL), 0);

    cdr_buf b;
    cdr_buf_init(&b, 0);
    cr_assert_eq(cdr_buf_append_str(&b, "prefix\n"), 0);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_str_eq(b.data, "prefix\n# HELP a_total A.\n# TYPE a_total counter\na_total 0\n");
    cdr_buf_free(&b);

    cdr_buf_init(&b, 20); /* too small for the page */
    cr_assert_eq(cdr_buf_append_str(&b, "prefix\n"), 0);
    cr_assert_eq(metrics_render(m, &b), -1);
    cr_assert_str_eq(b.data, "prefix\n");
    cr_assert_eq(b.len, 7);
    cdr_buf_free(&b);
    metrics_destroy(m);
}

Test(metrics, refuses_bad_registrations)
{
    metrics *m = new_metrics(1);
    static const double bounds[] = {1, 1};
    static const double one[] = {1};

    cr_assert_eq(metrics_counter(m, "9lives", "Bad name.", NULL), -1);
    cr_assert_eq(metrics_counter(m, "a-b", "Bad name.", NULL), -1);
    cr_assert_eq(metrics_histogram(m, "h", "Not increasing.", NULL, bounds, 2), -1);
    cr_assert_geq(metrics_counter(m, "x_total", "X.", "k=\"v\""), 0);
    cr_assert_eq(metrics_counter(m, "x_total", "X.", "k=\"v\""), -1, "same series twice");
    cr_assert_eq(metrics_histogram(m, "x_total", "X.", NULL, one, 1), -1, "another kind");
    cr_assert_eq(metrics_gauge_fn(m, "g", "No callback.", NULL, NULL), -1);
    metrics_destroy(m);

    cr_assert_null(metrics_create(0));
    metrics_destroy(NULL);
}

Test(metrics, registry_is_bounded)
{
    metrics *m = new_metrics(1);
    int last = 0, n = 0;
    char labels[32];
    for (;;) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", n);
        int id = metrics_counter(m, "many_total", "Many.", labels);
        if (id < 0)
            break;
        last = id;
        cr_assert_lt(++n, 100000);
    }
    cr_assert_geq(n, 64);
    metrics_add(m, 0, last, 1);
    cr_assert_eq(metrics_counter_value(m, last), 1);
    metrics_destroy(m);
}

#define THREADS    4
#define ITERATIONS 200000

typedef struct worker {
    metrics *m;
    int shard;
    int counter;
    int histogram;
} worker;

static void *work(void *arg)
{
    const worker *w = arg;
    for (int i = 0; i < ITERATIONS; i++) {
        metrics_add(w->m, w->shard, w->counter, 1);
        metrics_observe(w->m, w->shard, w->histogram, (i % 2) ? 0.5 : 2);
    }
    return NULL;
}

static void *scrape(void *arg)
{
    const metrics *m = arg;
    for (int i = 0; i < 50; i++) {
        cdr_buf b;
        cdr_buf_init(&b, 0);
        cr_assert_eq(metrics_render(m, &b), 0);
        cdr_buf_free(&b);
    }
    return NULL;
}

Test(metrics, concurrent_shards_add_up_exactly)
{
    metrics *m = new_metrics(THREADS);
    static const double bounds[] = {1};
    int c = metrics_counter(m, "ops_total", "Ops.", NULL);
    int h = metrics_histogram(m, "size", "Sizes.", NULL, bounds, 1);
    cr_assert(c >= 0 && h >= 0);

    pthread_t t[THREADS], reader;
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){m, i, c, h};
        cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    cr_assert_eq(pthread_create(&reader, NULL, scrape, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_join(reader, NULL);

    cr_assert_eq(metrics_counter_value(m, c), (uint64_t)THREADS * ITERATIONS);
    char *text = render(m);
    char expect[512];
    snprintf(expect, sizeof(expect),
             "size_bucket{le=\"1\"} %d\n"
             "size_bucket{le=\"+Inf\"} %d\n"
             "size_sum %d\n"
             "size_count %d\n",
             THREADS * ITERATIONS / 2, THREADS * ITERATIONS, THREADS * (ITERATIONS / 2) * 5 / 2,
             THREADS * ITERATIONS);
    cr_assert(strstr(text, expect), "%s", text);
    free(text);
    metrics_destroy(m);
}
