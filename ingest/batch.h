/* batch.h - one request's items turned into stream rows: the COPY rows of the valid CDRs, the
 * reject rows of the refused items, and the problem list the answer reports. */
#ifndef CDR_INGEST_BATCH_H
#define CDR_INGEST_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "buf.h"
#include "cdr.h"
#include "compiler.h"

/* At most this many problems are listed in an answer; the rest are counted. Every refused item
 * is kept as a reject row whatever the count. */
#define INGEST_MAX_DETAILS 1000

typedef struct ingest_batch {
    cdr_buf *rows;    /* borrowed: COPY rows of the valid CDRs are appended here */
    cdr_buf *rejects; /* borrowed: reject rows are appended here */
    size_t rows_mark; /* their lengths before this request, for ingest_batch_undo */
    size_t rejects_mark;
    unsigned n_rows;
    unsigned n_rejects;
    json_t *details; /* owned: array of {"index","call_id","field","message"} */
    unsigned details_dropped;
    bool forbidden;     /* an item named another tenant or domain than the token's */
    bool out_of_memory; /* a row could not be appended: the request must fail (503) */
    cdr_context ctx;    /* tenant and domain of the token, validation time */
    cdr_time received_at;
} ingest_batch;

/* Prepares 'b' for one request of the token holder 'claims' (borrowed, must outlive 'b'),
 * appending to 'rows' and 'rejects' after what they already hold (the rows of other requests
 * stored with the same stream entry). */
void ingest_batch_init(ingest_batch *b, const auth_claims *claims, cdr_time now, cdr_buf *rows,
                       cdr_buf *rejects);

/* Takes back every row this request appended, for a request that is refused as a whole. */
void ingest_batch_undo(ingest_batch *b);

/* Frees what 'b' owns (the details, unless taken). */
void ingest_batch_free(ingest_batch *b);

/* A body_item_fn (ingest/body.h) with 'arg' an ingest_batch: validates one item and appends it
 * as a COPY row, or as a reject row with its problems. Returns 0, or -1 when memory ran out
 * (b->out_of_memory is then set). */
int ingest_batch_item(int index, json_t *item, const char *raw, size_t raw_len,
                      const char *parse_error, void *arg);

#endif
