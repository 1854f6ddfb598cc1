/* cdr_codec.h - the stream entry: versioned COPY-text rows, optionally zstd-framed. */
#ifndef CDR_CDR_CODEC_H
#define CDR_CDR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cdr.h"
#include "compiler.h"

/* Format version 1. A stream entry is a Redis Stream entry with these fields:
 *   v     "1"                 the format; a reader refuses any other value
 *   kind  "cdr" | "reject"    which table the rows are for
 *   n     decimal row count
 *   enc   "copy" | "copy+zstd"
 *   rows  PostgreSQL COPY text rows ('\n'-terminated, tab-separated, \N for NULL, backslash
 *         escapes), in CDR_CODEC_CDR_COLUMNS or CDR_CODEC_REJECT_COLUMNS order; with
 *         "copy+zstd" one zstd frame of those rows, its content size recorded in the frame.
 * The ingest side does all the JSON work and validation; the writer only turns each CDR row
 * into PostgreSQL's binary COPY form (ingest/copy_binary.c), or sends it as it is. Docs:
 * docs/stream-format.md. */
#define CDR_CODEC_VERSION     "1"
#define CDR_CODEC_KIND_CDR    "cdr"
#define CDR_CODEC_KIND_REJECT "reject"
#define CDR_CODEC_ENC_PLAIN   "copy"
#define CDR_CODEC_ENC_ZSTD    "copy+zstd"

#define CDR_CODEC_CDR_COLUMNS                                                                      \
    "tenant_id, store_id, store_name, sip_domain, call_id, direction, from_uri, to_uri, "          \
    "did_e164, ext_number, user_id, start_ts, answer_ts, end_ts, billsec, disposition, "           \
    "recording_url, mos, jitter_ms, loss_pct, meta_json, ingested_at"
#define CDR_CODEC_CDR_NCOLS      22
#define CDR_CODEC_REJECT_COLUMNS "received_at, tenant_id, sip_domain, call_id, source, reason, raw"
#define CDR_CODEC_REJECT_NCOLS   7

/* Appends one COPY text row for 'r' (with 'ingested_at') to 'out'. Returns 0, or -1 when the
 * buffer could not grow (its limit or memory); 'out' is then unchanged. */
int cdr_codec_append_cdr(cdr_buf *out, const cdr_record *r, cdr_time ingested_at) CDR_MUST_CHECK;

/* A refused item, kept with why it was refused. Strings are NUL-terminated; NULL = unknown. */
typedef struct cdr_reject {
    cdr_time received_at;
    const char *tenant_id; /* canonical UUID of the caller, or NULL */
    const char *sip_domain;
    const char *call_id;
    const char *source; /* "ingest" | "writer" */
    const char *reason; /* every problem, "field: message; field: message" */
    const char *raw;    /* the item as received */
    size_t raw_len;
} cdr_reject;

int cdr_codec_append_reject(cdr_buf *out, const cdr_reject *rej) CDR_MUST_CHECK;

/* Appends 'n' bytes of 's' to 'out' escaped for COPY text format (backslash, tab, newline,
 * carriage return). */
int cdr_codec_append_escaped(cdr_buf *out, const char *s, size_t n) CDR_MUST_CHECK;

/* Compresses 'rows' into one zstd frame appended to 'out' (level 1). Returns 0 or -1. */
int cdr_codec_compress(const char *rows, size_t len, cdr_buf *out) CDR_MUST_CHECK;

/* Checks an entry's 'v' and 'enc' and yields its COPY rows. With "copy" '*rows'/'*rows_len'
 * point into 'payload' and 'scratch' is untouched; with "copy+zstd" the frame is inflated into
 * 'scratch' (refused when its declared or actual size exceeds 'max_rows_len').
 * Returns 0, or -1 with 'err' naming the problem: unknown version, unknown encoding, corrupt
 * or oversized frame. */
int cdr_codec_open(const char *v, const char *enc, const char *payload, size_t payload_len,
                   size_t max_rows_len, cdr_buf *scratch, const char **rows, size_t *rows_len,
                   char *err, size_t errlen) CDR_MUST_CHECK;

/* Splits one COPY text row (without its '\n') into fields, unescaping into 'scratch'.
 * 'fields[i]' is NULL for \N. Returns the number of fields, or -1 for a malformed row or more
 * than 'max_fields' fields. The pointers stay valid until 'scratch' changes. */
int cdr_codec_split_row(const char *row, size_t len, cdr_buf *scratch, const char **fields,
                        int max_fields) CDR_MUST_CHECK;

#endif
