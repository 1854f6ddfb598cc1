/* writer_batch.h - the writer's batch in hand: the stream entries read, their rows as COPY text,
 * and what became of each row (committed, refused and kept as a reject, unstorable). */
#ifndef CDR_WRITER_BATCH_H
#define CDR_WRITER_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "compiler.h"
#include "timefmt.h"

/* A stream entry id is two 64-bit decimals joined by '-': at most 41 characters. */
#define WB_ID_MAX 48

/* Which staging table a row is copied into. */
typedef enum wb_table {
    WB_CDR = 0,    /* CDR_CODEC_CDR_COLUMNS, into voip_cdr */
    WB_REJECT = 1, /* CDR_CODEC_REJECT_COLUMNS plus entry_id and entry_seq, into voip_cdr_rejects */
} wb_table;

typedef struct wb_entry {
    char id[WB_ID_MAX]; /* NUL-terminated */
    wb_table kind;      /* the entry's kind: "cdr" or "reject" */
    int n_rows;
} wb_entry;

/* One row. Reject rows carry "\t<entry id>\t<row number>" before their '\n', so that the rows
 * of a redelivered entry are recognised in voip_cdr_rejects. */
typedef struct wb_row {
    size_t off, len; /* the row in 'text', its '\n' included */
    size_t raw_off;  /* the row as it came in the entry, in 'text' ... */
    size_t raw_len;  /* ... without its '\n' (nor the suffix of a reject row) */
    int entry;       /* index in 'entries' */
    int seq;         /* 1-based row number within its entry */
    wb_table table;  /* where the row goes now */
    bool refused;    /* PostgreSQL refused the row: 'text' holds the writer's reject row instead */
    bool done;       /* committed */
    bool lost;       /* not even its reject row could be stored: see writer_batch_lose() */
} wb_row;

/* A row that could not be stored in PostgreSQL in any form, kept for the dead-letter stream. */
typedef struct wb_lost {
    int row;
    char reason[256];
} wb_lost;

/* Zero-initialise, or writer_batch_init(). Every buffer is kept between batches
 * (writer_batch_reset), so the memory a writer uses is that of its largest batch. */
typedef struct writer_batch {
    wb_entry *entries;
    int n_entries, cap_entries;
    wb_row *rows;
    int n_rows, cap_rows;
    wb_lost *lost;
    int n_lost, cap_lost;
    cdr_buf text;     /* every row, back to back */
    cdr_buf inflated; /* a compressed entry's rows while they are copied into 'text' */
    cdr_buf scratch;  /* a refused row while its reject row is made */
    cdr_buf fields;   /* ... and its columns */
    size_t max_entry; /* largest rows of one entry, inflated */
    long long n_cdr;  /* rows of kind cdr read */
    long long n_rej;  /* rows of kind reject read */
} writer_batch;

void writer_batch_init(writer_batch *b, size_t max_entry);
void writer_batch_free(writer_batch *b);
/* Empties the batch and keeps its memory. */
void writer_batch_reset(writer_batch *b);

/* A field or value of a stream entry, as Redis returned it (not NUL-terminated). */
typedef struct wb_field {
    const char *p;
    size_t len;
} wb_field;

typedef enum wb_add_result {
    WB_ADDED = 0,        /* the entry's rows are in the batch */
    WB_UNDECODABLE = 1,  /* 'why' says what is wrong; the batch is unchanged */
    WB_OUT_OF_MEMORY = 2 /* the batch is unchanged */
} wb_add_result;

/* Decodes the stream entry 'id' whose fields and values alternate in 'fv' ('n_fv' items) by
 * docs/stream-format.md and appends its rows. An entry is undecodable when a field is missing,
 * its version, kind or encoding is unknown, its frame is corrupt or larger than 'max_entry',
 * or its rows do not end with '\n' or are not 'n' in number. */
wb_add_result writer_batch_add(writer_batch *b, const char *id, size_t id_len, const wb_field *fv,
                               int n_fv, char *why, size_t whylen) CDR_MUST_CHECK;

/* The rows read (CDRs and rejects). */
static inline long long writer_batch_rows(const writer_batch *b)
{
    return b->n_cdr + b->n_rej;
}

/* Replaces row 'i', which PostgreSQL refused with 'reason', by a reject row of source "writer"
 * received at 'now': the raw row, the tenant_id (its tenant column when that is a UUID), the
 * sip_domain and call_id when the row splits into its columns, keyed by its entry id and row
 * number. Returns 0, or -1 when the row was already such a reject row or memory ran out. */
int writer_batch_refuse(writer_batch *b, int i, const char *reason, cdr_time now) CDR_MUST_CHECK;

/* Marks row 'i' as unstorable for 'reason': it is committed nowhere and goes to the dead-letter
 * stream with the batch's acknowledgement. Returns 0, or -1 when memory ran out. */
int writer_batch_lose(writer_batch *b, int i, const char *reason) CDR_MUST_CHECK;

/* The row 'i' as it came in its entry (no '\n'), and its length in '*len'. */
const char *writer_batch_raw(const writer_batch *b, int i, size_t *len);

#endif
