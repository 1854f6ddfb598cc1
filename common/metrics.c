/* metrics.c - per-thread sharded counters and histograms, callback gauges, Prometheus text. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX    256
#define CACHE_LINE     64
#define SLOTS_PER_LINE (CACHE_LINE / sizeof(_Atomic uint64_t))

typedef enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_kind;

/* What a registration describes; read-only once threads run. A counter owns one slot of every
 * shard; a histogram owns n+1 bucket slots (the last is +Inf, counts are not cumulative) then
 * one slot holding the bit pattern of the shard's sum as a double. */
typedef struct metric {
    metric_kind kind;
    int family; /* index of the first metric registered under the same name */
    char *name;
    char *help;
    char *labels; /* NULL when the metric has none */
    double *bounds;
    int nbounds;
    double (*fn)(void *arg);
    void *arg;
    size_t slot;
} metric;

/* Shard 's' starts at 'slots + s * stride': the stride is a whole number of cache lines and
 * the block is line-aligned, so two shards never share a line. Only shard s's thread writes
 * its slots; a render reads every slot with relaxed atomic loads. */
struct metrics {
    int n_shards;
    int n_metrics;
    size_t n_slots; /* slots used in each shard */
    size_t stride;  /* slots between two shards */
    _Atomic uint64_t *slots;
    metric defs[METRICS_MAX];
};

metrics *metrics_create(int n_shards)
{
    if (n_shards <= 0)
        return NULL;
    metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n_shards = n_shards;
    return m;
}

void metrics_destroy(metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_metrics; i++) {
        free(m->defs[i].name);
        free(m->defs[i].help);
        free(m->defs[i].labels);
        free(m->defs[i].bounds);
    }
    free(m->slots);
    free(m);
}

static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool same_labels(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Grows every shard to hold 'extra' more slots. Registration happens before any thread
 * updates, so the old block can be copied and freed. Returns 0, or -1 when memory ran out. */
static int grow_slots(metrics *m, size_t extra)
{
    size_t need = m->n_slots + extra;
    if (need <= m->stride)
        return 0;
    size_t stride = (need + SLOTS_PER_LINE - 1) / SLOTS_PER_LINE * SLOTS_PER_LINE;
    size_t bytes = stride * sizeof(_Atomic uint64_t) * (size_t)m->n_shards;
    _Atomic uint64_t *slots = aligned_alloc(CACHE_LINE, bytes);
    if (!slots)
        return -1;
    for (int s = 0; s < m->n_shards; s++) {
        for (size_t i = 0; i < stride; i++) {
            uint64_t v = 0;
            if (i < m->n_slots)
                v = atomic_load_explicit(&m->slots[(size_t)s * m->stride + i],
                                         memory_order_relaxed);
            atomic_init(&slots[(size_t)s * stride + i], v);
        }
    }
    free(m->slots);
    m->slots = slots;
    m->stride = stride;
    return 0;
}

/* Fills the next definition; 'labels' empty counts as none. Returns its id, or -1 when the
 * name is not a Prometheus name, the same name was registered as another kind, the same name
 * and labels were registered before, the registry is full or memory ran out. */
static int add_metric(metrics *m, metric_kind kind, const char *name, const char *help,
                      const char *labels, size_t nslots)
{
    if (!m || !valid_name(name) || m->n_metrics >= METRICS_MAX)
        return -1;
    if (labels && !*labels)
        labels = NULL;
    int family = m->n_metrics;
    for (int i = 0; i < m->n_metrics; i++) {
        const metric *d = &m->defs[i];
        if (strcmp(d->name, name) != 0)
            continue;
        if (d->kind != kind || kind == METRIC_GAUGE || same_labels(d->labels, labels))
            return -1;
        family = d->family;
        break;
    }
    if (grow_slots(m, nslots) != 0)
        return -1;

    metric *d = &m->defs[m->n_metrics];
    memset(d, 0, sizeof(*d));
    d->kind = kind;
    d->family = family;
    d->name = strdup(name);
    d->help = strdup(help ? help : "");
    d->labels = labels ? strdup(labels) : NULL;
    if (!d->name || !d->help || (labels && !d->labels)) {
        free(d->name);
        free(d->help);
        free(d->labels);
        memset(d, 0, sizeof(*d));
        return -1;
    }
    d->slot = m->n_slots;
    m->n_slots += nslots;
    return m->n_metrics++;
}

int metrics_counter(metrics *m, const char *name, const char *help, const char *labels)
{
    return add_metric(m, METRIC_COUNTER, name, help, labels, 1);
}

int metrics_gauge_fn(metrics *m, const char *name, const char *help, double (*fn)(void *arg),
                     void *arg)
{
    if (!fn)
        return -1;
    int id = add_metric(m, METRIC_GAUGE, name, help, NULL, 0);
    if (id >= 0) {
        m->defs[id].fn = fn;
        m->defs[id].arg = arg;
    }
    return id;
}

int metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                      const double *bounds, int n)
{
    if (n < 0 || (n > 0 && !bounds))
        return -1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return -1;
    }
    double *copy = NULL;
    if (n > 0) {
        copy = malloc(sizeof(double) * (size_t)n);
        if (!copy)
            return -1;
        memcpy(copy, bounds, sizeof(double) * (size_t)n);
    }
    int id = add_metric(m, METRIC_HISTOGRAM, name, help, labels, (size_t)n + 2);
    if (id < 0) {
        free(copy);
        return -1;
    }
    m->defs[id].bounds = copy;
    m->defs[id].nbounds = n;
    return id;
}

/* The metric an update names when 'shard' and 'id' exist and it is of 'kind', else NULL: an
 * update that names no such metric is dropped. */
static const metric *update_target(const metrics *m, int shard, int id, metric_kind kind)
{
    if (!m || shard < 0 || shard >= m->n_shards || id < 0 || id >= m->n_metrics)
        return NULL;
    const metric *d = &m->defs[id];
    return d->kind == kind ? d : NULL;
}

static _Atomic uint64_t *shard_slots(const metrics *m, int shard, const metric *d)
{
    return &m->slots[(size_t)shard * m->stride + d->slot];
}

void metrics_add(metrics *m, int shard, int id, uint64_t by)
{
    const metric *d = update_target(m, shard, id, METRIC_COUNTER);
    if (d)
        atomic_fetch_add_explicit(shard_slots(m, shard, d), by, memory_order_relaxed);
}

void metrics_observe(metrics *m, int shard, int id, double v)
{
    const metric *d = update_target(m, shard, id, METRIC_HISTOGRAM);
    if (!d)
        return;
    /* The first bound >= v; NaN compares false everywhere and lands in +Inf. */
    int lo = 0, hi = d->nbounds;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v <= d->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    _Atomic uint64_t *s = shard_slots(m, shard, d);
    atomic_fetch_add_explicit(&s[lo], 1, memory_order_relaxed);

    /* The sum slot has a single writer (this shard's thread), so a load, an add and a store
     * lose nothing; readers always see a whole bit pattern. */
    _Atomic uint64_t *sum = &s[d->nbounds + 1];
    uint64_t bits = atomic_load_explicit(sum, memory_order_relaxed);
    double acc;
    memcpy(&acc, &bits, sizeof(acc));
    acc += v;
    memcpy(&bits, &acc, sizeof(bits));
    atomic_store_explicit(sum, bits, memory_order_relaxed);
}

static uint64_t sum_slot(const metrics *m, size_t slot)
{
    uint64_t total = 0;
    for (int s = 0; s < m->n_shards; s++)
        total +=
            atomic_load_explicit(&m->slots[(size_t)s * m->stride + slot], memory_order_relaxed);
    return total;
}

uint64_t metrics_counter_value(const metrics *m, int id)
{
    if (!m || id < 0 || id >= m->n_metrics || m->defs[id].kind != METRIC_COUNTER)
        return 0;
    return sum_slot(m, m->defs[id].slot);
}

/* Writes 'v' as Prometheus expects: NaN, +Inf, -Inf, or the shortest of %.15g and %.17g that
 * reads back as the same double (so 0.1 prints as 0.1, not 0.10000000000000001). */
static void fmt_double(char *out, size_t outlen, double v)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, outlen, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, outlen, "%.17g", v);
    }
}

/* HELP text escapes backslash and newline. */
static int append_help(cdr_buf *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = cdr_buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = cdr_buf_append(out, "\\n", 2);
        else
            rc = cdr_buf_append_char(out, *p);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int render_histogram(const metrics *m, const metric *d, cdr_buf *out)
{
    const char *l = d->labels ? d->labels : "";
    const char *sep = d->labels ? "," : "";
    char num[32];
    uint64_t cumulative = 0;

    for (int i = 0; i <= d->nbounds; i++) {
        cumulative += sum_slot(m, d->slot + (size_t)i);
        if (i < d->nbounds)
            fmt_double(num, sizeof(num), d->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        if (cdr_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", d->name, l, sep, num,
                           cumulative) != 0)
            return -1;
    }

    double sum = 0;
    for (int s = 0; s < m->n_shards; s++) {
        uint64_t bits =
            atomic_load_explicit(&shard_slots(m, s, d)[d->nbounds + 1], memory_order_relaxed);
        double part;
        memcpy(&part, &bits, sizeof(part));
        sum += part;
    }
    fmt_double(num, sizeof(num), sum);
    const char *open = d->labels ? "{" : "";
    const char *close = d->labels ? "}" : "";
    if (cdr_buf_printf(out, "%s_sum%s%s%s %s\n", d->name, open, l, close, num) != 0 ||
        cdr_buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", d->name, open, l, close, cumulative) !=
            0)
        return -1;
    return 0;
}

static int render_sample(const metrics *m, const metric *d, cdr_buf *out)
{
    const char *open = d->labels ? "{" : "";
    const char *close = d->labels ? "}" : "";
    const char *l = d->labels ? d->labels : "";
    char num[32];

    switch (d->kind) {
    case METRIC_COUNTER:
        return cdr_buf_printf(out, "%s%s%s%s %" PRIu64 "\n", d->name, open, l, close,
                              sum_slot(m, d->slot));
    case METRIC_GAUGE:
        fmt_double(num, sizeof(num), d->fn(d->arg));
        return cdr_buf_printf(out, "%s %s\n", d->name, num);
    case METRIC_HISTOGRAM:
        return render_histogram(m, d, out);
    }
    return -1;
}

static const char *kind_name(metric_kind k)
{
    switch (k) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

int metrics_render(const metrics *m, cdr_buf *out)
{
    size_t start = out->len;

    for (int f = 0; m && f < m->n_metrics; f++) {
        const metric *head = &m->defs[f];
        if (head->family != f)
            continue; /* rendered with the family's first registration */
        if (cdr_buf_printf(out, "# HELP %s ", head->name) != 0 ||
            append_help(out, head->help) != 0 ||
            cdr_buf_printf(out, "\n# TYPE %s %s\n", head->name, kind_name(head->kind)) != 0)
            goto fail;
        for (int i = f; i < m->n_metrics; i++) {
            if (m->defs[i].family == f && render_sample(m, &m->defs[i], out) != 0)
                goto fail;
        }
    }
    return 0;

fail:
    /* Never hand out half a page: a scraper would read missing series as resets. */
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return -1;
}
