/* batch.c - validating a request's items into COPY rows, reject rows and the problem list. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdr_codec.h"

void ingest_batch_init(ingest_batch *b, const auth_claims *claims, cdr_time now, cdr_buf *rows,
                       cdr_buf *rejects)
{
    memset(b, 0, sizeof(*b));
    b->rows = rows;
    b->rejects = rejects;
    b->rows_mark = rows->len;
    b->rejects_mark = rejects->len;
    b->ctx.tenant_id = claims->tenant_id;
    b->ctx.sip_domain = claims->sip_domain;
    b->ctx.now = now;
    b->received_at = now;
}

void ingest_batch_undo(ingest_batch *b)
{
    b->rows->len = b->rows_mark;
    b->rejects->len = b->rejects_mark;
    if (b->rows->data)
        b->rows->data[b->rows->len] = '\0';
    if (b->rejects->data)
        b->rejects->data[b->rejects->len] = '\0';
    b->n_rows = b->n_rejects = 0;
}

void ingest_batch_free(ingest_batch *b)
{
    json_decref(b->details);
    b->details = NULL;
}

/* Appends one problem to the answer's details. Returns 0 or -1 (memory). */
static int add_detail(ingest_batch *b, int index, const char *call_id, const char *field,
                      const char *message)
{
    if (!b->details && !(b->details = json_array()))
        return -1;
    if (json_array_size(b->details) >= INGEST_MAX_DETAILS) {
        b->details_dropped++;
        return 0;
    }
    json_t *d = json_pack("{s:i, s:s?, s:s, s:s}", "index", index, "call_id", call_id, "field",
                          field, "message", message);
    if (!d || json_array_append_new(b->details, d) != 0)
        return -1;
    return 0;
}

/* Appends the reject row of a refused item: 'reason' lists its problems, 'raw' its bytes. */
static int add_reject(ingest_batch *b, const char *call_id, const char *reason, const char *raw,
                      size_t raw_len)
{
    cdr_reject rej = {
        .received_at = b->received_at,
        .tenant_id = b->ctx.tenant_id,
        .sip_domain = b->ctx.sip_domain,
        .call_id = call_id,
        .source = "ingest",
        .reason = reason,
        .raw = raw,
        .raw_len = raw_len,
    };
    if (cdr_codec_append_reject(b->rejects, &rej) != 0)
        return -1;
    b->n_rejects++;
    return 0;
}

int ingest_batch_item(int index, json_t *item, const char *raw, size_t raw_len,
                      const char *parse_error, void *arg)
{
    ingest_batch *b = arg;
    char *dumped = NULL;
    cdr_buf reason = {0};
    int rc = -1;

    if (!item) {
        /* An NDJSON line that is not JSON: kept as it came, with the parser's message. */
        if (add_detail(b, index, NULL, "item", parse_error) != 0 ||
            cdr_buf_printf(&reason, "item: %s", parse_error) != 0 ||
            add_reject(b, NULL, reason.data, raw, raw_len) != 0)
            goto done;
        rc = 0;
        goto done;
    }

    cdr_record rec;
    cdr_problems probs;
    probs.n = 0;
    probs.dropped = 0;
    if (cdr_from_json(item, &b->ctx, &rec, &probs)) {
        if (cdr_codec_append_cdr(b->rows, &rec, b->received_at) != 0)
            goto done;
        b->n_rows++;
        rc = 0;
        goto done;
    }

    const char *call_id = cdr_item_call_id(item);
    for (int i = 0; i < probs.n; i++) {
        const cdr_problem *p = &probs.items[i];
        if (p->forbidden)
            b->forbidden = true;
        if (add_detail(b, index, call_id, p->field, p->message) != 0 ||
            cdr_buf_printf(&reason, "%s%s: %s", i ? "; " : "", p->field, p->message) != 0)
            goto done;
    }
    if (probs.dropped && cdr_buf_printf(&reason, "; and %d more problems", probs.dropped) != 0)
        goto done;
    if (!raw) {
        dumped = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!dumped)
            goto done;
        raw = dumped;
        raw_len = strlen(dumped);
    }
    if (add_reject(b, call_id, reason.data, raw, raw_len) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        b->out_of_memory = true;
    free(dumped);
    cdr_buf_free(&reason);
    return rc;
}
