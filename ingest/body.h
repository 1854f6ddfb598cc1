/* body.h - a POST body: content type and encoding, inflating within a limit, splitting items. */
#ifndef CDR_INGEST_BODY_H
#define CDR_INGEST_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "compiler.h"

typedef enum body_format { BODY_JSON, BODY_NDJSON } body_format;
typedef enum body_encoding { BODY_ENC_IDENTITY, BODY_ENC_GZIP, BODY_ENC_ZSTD } body_encoding;

/* Content-Type: NULL or "application/json" -> BODY_JSON; "application/x-ndjson" or
 * "application/ndjson" -> BODY_NDJSON; parameters (";charset=utf-8") and case ignored; a
 * charset other than utf-8 is refused. Returns 0, or -1 (answer 415) with 'err' naming the
 * type. */
int body_content_type(const char *header, body_format *out, char *err,
                      size_t errlen) CDR_MUST_CHECK;

/* Content-Encoding: NULL, "" or "identity"; "gzip" or "x-gzip"; "zstd". Returns 0, or -1
 * (answer 415) with 'err' naming the encoding. */
int body_content_encoding(const char *header, body_encoding *out, char *err,
                          size_t errlen) CDR_MUST_CHECK;

typedef enum body_inflate_result {
    BODY_OK = 0,
    BODY_TOO_LARGE = 1, /* the inflated body would exceed 'limit'          -> 413 */
    BODY_CORRUPT = 2,   /* not a valid gzip / zstd stream, or truncated    -> 400 */
} body_inflate_result;

/* Inflates 'len' bytes of 'in' encoded with 'enc' (not BODY_ENC_IDENTITY) into 'out' (reset
 * first), streaming, so that memory never exceeds 'limit' plus one chunk however large the
 * stream claims or turns out to be. Returns BODY_OK, or another result with 'err' filled. */
body_inflate_result body_inflate(body_encoding enc, const void *in, size_t len, size_t limit,
                                 cdr_buf *out, char *err, size_t errlen) CDR_MUST_CHECK;

/* Called once per item, in order. 'index' counts items from 0. 'item' is the parsed value
 * (borrowed; valid during the call only) or NULL when this NDJSON line is not valid JSON, in
 * which case 'parse_error' says why. 'raw'/'raw_len' are the item's exact bytes for an NDJSON
 * line, NULL for an element of a JSON document (serialise 'item' if the bytes are needed).
 * Returns 0 to go on, -1 to stop (body_for_each_item then returns -1 with err "stopped"). */
typedef int (*body_item_fn)(int index, json_t *item, const char *raw, size_t raw_len,
                            const char *parse_error, void *arg);

/* Splits 'data' into items: BODY_JSON is one JSON text, an object (one item) or an array of
 * items; BODY_NDJSON is one JSON text per line (blank lines skipped, CRLF accepted).
 * Returns the number of items (>= 0), or -1 with 'err' filled when the body is malformed as a
 * whole (BODY_JSON that does not parse, with line and column; a JSON scalar at top level)
 * -> 400. An empty array or an NDJSON body of blank lines returns 0. */
int body_for_each_item(body_format fmt, const char *data, size_t len, body_item_fn fn, void *arg,
                       char *err, size_t errlen) CDR_MUST_CHECK;

#endif
