/* writer_batch.c - the writer's batch in hand: stream entries decoded into COPY rows, refused
 * rows turned into reject rows. */
#include "writer_batch.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdr_codec.h"
#include "errfmt.h"
#include "ident.h"

void writer_batch_init(writer_batch *b, size_t max_entry)
{
    memset(b, 0, sizeof(*b));
    cdr_buf_init(&b->text, 0);
    cdr_buf_init(&b->inflated, 0);
    cdr_buf_init(&b->scratch, 0);
    cdr_buf_init(&b->fields, 0);
    b->max_entry = max_entry;
}

void writer_batch_free(writer_batch *b)
{
    free(b->entries);
    free(b->rows);
    free(b->lost);
    cdr_buf_free(&b->text);
    cdr_buf_free(&b->inflated);
    cdr_buf_free(&b->scratch);
    cdr_buf_free(&b->fields);
    memset(b, 0, sizeof(*b));
}

void writer_batch_reset(writer_batch *b)
{
    b->n_entries = 0;
    b->n_rows = 0;
    b->n_lost = 0;
    b->n_cdr = 0;
    b->n_rej = 0;
    cdr_buf_reset(&b->text);
    cdr_buf_reset(&b->inflated);
    cdr_buf_reset(&b->scratch);
    cdr_buf_reset(&b->fields);
}

/* Makes room for 'need' items of 'size' bytes in '*p' of '*cap' items. Returns 0 or -1. */
static int grow(void **p, int *cap, long long need, size_t size)
{
    if (need <= *cap)
        return 0;
    long long n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    if (n > INT_MAX || (size_t)n > SIZE_MAX / size)
        return -1;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = (int)n;
    return 0;
}

/* The value of the field 'name' of an entry, or NULL when it has none. */
static const wb_field *field(const wb_field *fv, int n_fv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i + 1 < n_fv; i += 2)
        if (fv[i].len == len && memcmp(fv[i].p, name, len) == 0)
            return &fv[i + 1];
    return NULL;
}

/* Copies the short text value 'f' into 'buf' for comparisons and messages. A value too long
 * for 'buf' or holding a NUL byte is no value this writer knows: it becomes "?". */
static void short_value(const wb_field *f, char *buf, size_t len)
{
    if (f->len >= len || memchr(f->p, '\0', f->len)) {
        snprintf(buf, len, "?");
        return;
    }
    memcpy(buf, f->p, f->len);
    buf[f->len] = '\0';
}

/* Parses the row count 'f': 1 to 9 decimal digits. Returns it, or -1. */
static int row_count(const wb_field *f)
{
    if (f->len < 1 || f->len > 9)
        return -1;
    int n = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return -1;
        n = n * 10 + (f->p[i] - '0');
    }
    return n;
}

/* Appends "\t<id>\t<seq>\n", the key that ends every reject row in the batch. */
static int append_key(cdr_buf *out, const char *id, int seq)
{
    return cdr_buf_printf(out, "\t%s\t%d\n", id, seq);
}

/* Appends the rows of a reject entry, each with its key. Returns 0 or -1. */
static int append_reject_rows(writer_batch *b, const wb_entry *e, int entry, const char *rows,
                              size_t len)
{
    const char *p = rows, *end = rows + len;
    int seq = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        wb_row *r = &b->rows[b->n_rows];
        r->off = r->raw_off = b->text.len;
        r->raw_len = (size_t)(nl - p);
        if (cdr_buf_append(&b->text, p, r->raw_len) != 0 || append_key(&b->text, e->id, ++seq) != 0)
            return -1;
        r->len = b->text.len - r->off;
        r->entry = entry;
        r->seq = seq;
        r->table = WB_REJECT;
        r->refused = r->done = r->lost = false;
        b->n_rows++;
        p = nl + 1;
    }
    return 0;
}

/* Appends the rows of a CDR entry as they are, one wb_row per line. Returns 0 or -1. */
static int append_cdr_rows(writer_batch *b, int entry, const char *rows, size_t len)
{
    size_t base = b->text.len;
    if (cdr_buf_append(&b->text, rows, len) != 0)
        return -1;
    const char *p = rows, *end = rows + len;
    int seq = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        wb_row *r = &b->rows[b->n_rows++];
        r->off = r->raw_off = base + (size_t)(p - rows);
        r->raw_len = (size_t)(nl - p);
        r->len = r->raw_len + 1;
        r->entry = entry;
        r->seq = ++seq;
        r->table = WB_CDR;
        r->refused = r->done = r->lost = false;
        p = nl + 1;
    }
    return 0;
}

wb_add_result writer_batch_add(writer_batch *b, const char *id, size_t id_len, const wb_field *fv,
                               int n_fv, char *why, size_t whylen)
{
    static const char *const required[] = {"v", "kind", "n", "enc", "rows"};
    const wb_field *f[CDR_ARRAY_LEN(required)];
    char v[16], kind[16], enc[16];

    /* The id ends up inside COPY rows: only the digits and dash of a stream id may pass. */
    bool id_ok = id_len > 0 && id_len < WB_ID_MAX;
    for (size_t i = 0; id_ok && i < id_len; i++)
        id_ok = (id[i] >= '0' && id[i] <= '9') || id[i] == '-';
    if (!id_ok) {
        cdr_errf(why, whylen, "malformed entry id");
        return WB_UNDECODABLE;
    }
    for (size_t i = 0; i < CDR_ARRAY_LEN(required); i++) {
        f[i] = field(fv, n_fv, required[i]);
        if (!f[i]) {
            cdr_errf(why, whylen, "missing field '%s'", required[i]);
            return WB_UNDECODABLE;
        }
    }
    short_value(f[0], v, sizeof(v));
    short_value(f[1], kind, sizeof(kind));
    short_value(f[3], enc, sizeof(enc));
    /* The version first: an entry of another version may mean anything by its other fields. */
    if (strcmp(v, CDR_CODEC_VERSION) != 0) {
        cdr_errf(why, whylen, "unsupported stream format version '%s'", v);
        return WB_UNDECODABLE;
    }
    wb_table table;
    if (strcmp(kind, CDR_CODEC_KIND_CDR) == 0) {
        table = WB_CDR;
    } else if (strcmp(kind, CDR_CODEC_KIND_REJECT) == 0) {
        table = WB_REJECT;
    } else {
        cdr_errf(why, whylen, "unsupported entry kind '%s'", kind);
        return WB_UNDECODABLE;
    }
    int n = row_count(f[2]);
    if (n < 0) {
        cdr_errf(why, whylen, "field 'n' is not a row count");
        return WB_UNDECODABLE;
    }
    if (strcmp(enc, CDR_CODEC_ENC_PLAIN) == 0 && f[4]->len > b->max_entry) {
        cdr_errf(why, whylen, "rows of %zu bytes exceed the limit of %zu bytes", f[4]->len,
                 b->max_entry);
        return WB_UNDECODABLE;
    }
    const char *rows;
    size_t rows_len;
    if (cdr_codec_open(v, enc, f[4]->p, f[4]->len, b->max_entry, &b->inflated, &rows, &rows_len,
                       why, whylen) != 0)
        return WB_UNDECODABLE;
    if (rows_len > 0 && rows[rows_len - 1] != '\n') {
        cdr_errf(why, whylen, "the rows do not end with a newline");
        return WB_UNDECODABLE;
    }
    long long lines = 0;
    for (const char *p = rows, *end = rows + rows_len; (p = memchr(p, '\n', (size_t)(end - p)));
         p++)
        lines++;
    if (lines != n) {
        cdr_errf(why, whylen, "field 'n' says %d rows, the rows hold %lld", n, lines);
        return WB_UNDECODABLE;
    }

    if (grow((void **)&b->entries, &b->cap_entries, (long long)b->n_entries + 1,
             sizeof(*b->entries)) != 0 ||
        grow((void **)&b->rows, &b->cap_rows, (long long)b->n_rows + n, sizeof(*b->rows)) != 0)
        return WB_OUT_OF_MEMORY;
    int entry = b->n_entries;
    wb_entry *e = &b->entries[entry];
    memcpy(e->id, id, id_len);
    e->id[id_len] = '\0';
    e->kind = table;
    e->n_rows = n;

    size_t text_mark = b->text.len;
    int rows_mark = b->n_rows;
    int rc = table == WB_CDR ? append_cdr_rows(b, entry, rows, rows_len)
                             : append_reject_rows(b, e, entry, rows, rows_len);
    if (rc != 0) {
        b->text.len = text_mark;
        if (b->text.data)
            b->text.data[text_mark] = '\0';
        b->n_rows = rows_mark;
        return WB_OUT_OF_MEMORY;
    }
    b->n_entries++;
    if (table == WB_CDR)
        b->n_cdr += n;
    else
        b->n_rej += n;
    return WB_ADDED;
}

/* Finds column 'col' (0-based) of the raw COPY row 'row' of 'len' bytes. Tabs inside values are
 * escaped, so every tab byte separates columns. Returns false when the row has fewer columns. */
static bool raw_column(const char *row, size_t len, int col, const char **p, size_t *n)
{
    const char *s = row, *end = row + len;
    for (int i = 0; i < col; i++) {
        const char *tab = memchr(s, '\t', (size_t)(end - s));
        if (!tab)
            return false;
        s = tab + 1;
    }
    const char *tab = memchr(s, '\t', (size_t)(end - s));
    *p = s;
    *n = (size_t)((tab ? tab : end) - s);
    return true;
}

int writer_batch_refuse(writer_batch *b, int i, const char *reason, cdr_time now)
{
    wb_row *r = &b->rows[i];
    const wb_entry *e = &b->entries[r->entry];
    if (r->refused)
        return -1;

    /* The raw row is copied out of 'text', which the reject row is appended to. */
    cdr_buf_reset(&b->scratch);
    if (cdr_buf_append(&b->scratch, b->text.data + r->raw_off, r->raw_len) != 0)
        return -1;
    const char *raw = b->scratch.data;
    size_t raw_len = r->raw_len;

    const char *p;
    size_t n;
    char tenant[CDR_UUID_LEN + 1];
    bool has_tenant = raw_column(raw, raw_len, e->kind == WB_CDR ? 0 : 1, &p, &n) &&
                      cdr_uuid_normalise(p, n, tenant);

    const char *cols[CDR_CODEC_CDR_NCOLS];
    int ncols = cdr_codec_split_row(raw, raw_len, &b->fields, cols, CDR_CODEC_CDR_NCOLS);
    const char *domain = NULL, *call_id = NULL;
    if (e->kind == WB_CDR && ncols == CDR_CODEC_CDR_NCOLS) {
        domain = cols[3];
        call_id = cols[4];
    } else if (e->kind == WB_REJECT && ncols == CDR_CODEC_REJECT_NCOLS) {
        domain = cols[2];
        call_id = cols[3];
    }

    cdr_reject rej = {
        .received_at = now,
        .tenant_id = has_tenant ? tenant : NULL,
        .sip_domain = domain,
        .call_id = call_id,
        .source = "writer",
        .reason = reason,
        .raw = raw,
        .raw_len = raw_len,
    };
    size_t off = b->text.len;
    if (cdr_codec_append_reject(&b->text, &rej) != 0)
        return -1;
    b->text.len--; /* its '\n': the key goes before it */
    b->text.data[b->text.len] = '\0';
    if (append_key(&b->text, e->id, r->seq) != 0) {
        b->text.len = off;
        b->text.data[off] = '\0';
        return -1;
    }
    r->off = off;
    r->len = b->text.len - off;
    r->table = WB_REJECT;
    r->refused = true;
    return 0;
}

int writer_batch_lose(writer_batch *b, int i, const char *reason)
{
    if (grow((void **)&b->lost, &b->cap_lost, (long long)b->n_lost + 1, sizeof(*b->lost)) != 0)
        return -1;
    wb_lost *l = &b->lost[b->n_lost++];
    l->row = i;
    snprintf(l->reason, sizeof(l->reason), "%s", reason);
    b->rows[i].lost = true;
    b->rows[i].done = true;
    return 0;
}

const char *writer_batch_raw(const writer_batch *b, int i, size_t *len)
{
    *len = b->rows[i].raw_len;
    return b->text.data + b->rows[i].raw_off;
}
