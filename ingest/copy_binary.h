/* copy_binary.h - a CDR row of the stream (COPY text, docs/stream-format.md) turned into a
 * tuple of PostgreSQL's binary COPY format for the writer's staging table.
 *
 * Why: the PostgreSQL backend is the writer's bottleneck, and reading the text of a row's four
 * timestamps, three uuids and numbers costs it about half of what the COPY into the staging
 * table costs; the writer, on the other core, does that work instead. Only the exact forms
 * cdr-ingest writes are converted (lower- or upper-case canonical UUIDs, "YYYY-MM-DD
 * hh:mm:ss[.ffffff]+00", plain decimals, valid UTF-8); anything else is left to PostgreSQL,
 * by sending the batch as text, so that a value is never read differently from the way
 * PostgreSQL would read it, and a row it refuses is refused with its own words. */
#ifndef CDR_COPY_BINARY_H
#define CDR_COPY_BINARY_H

#include <stddef.h>

#include "buf.h"
#include "compiler.h"

/* The options that make COPY read what these functions write. */
#define COPY_BINARY_OPTIONS "(FORMAT binary)"

/* The type copy_binary_cdr_row() writes for column 'i' of CDR_CODEC_CDR_COLUMNS, as
 * PostgreSQL's format_type() names it ("uuid", "timestamp with time zone", ...). The binary
 * form only suits a table whose columns have exactly these types: any other type would read
 * the bytes wrongly or refuse them. */
const char *copy_binary_cdr_type(int i);

/* Appends the header of a binary COPY stream ("PGCOPY\n\377\r\n\0", no flags, no extension).
 * Returns 0, or -1 when 'out' could not grow. */
int copy_binary_header(cdr_buf *out) CDR_MUST_CHECK;

/* Appends the end-of-data marker. Returns 0, or -1 when 'out' could not grow. */
int copy_binary_trailer(cdr_buf *out) CDR_MUST_CHECK;

typedef enum copy_binary_result {
    COPY_BINARY_OK = 0,    /* the tuple is appended to 'out' */
    COPY_BINARY_TEXT = 1,  /* the row is not in a form converted here: send it as text */
    COPY_BINARY_NOMEM = -1 /* 'out' or 'scratch' could not grow */
} copy_binary_result;

/* Appends the tuple of one CDR row in CDR_CODEC_CDR_COLUMNS order: 'row' is its 'len' bytes,
 * without the '\n'. 'scratch' holds the row's unescaped fields meanwhile (kept between calls,
 * so that its memory is that of the longest row). On anything but COPY_BINARY_OK, 'out' is as
 * it was. */
copy_binary_result copy_binary_cdr_row(cdr_buf *out, const char *row, size_t len,
                                       cdr_buf *scratch) CDR_MUST_CHECK;

#endif
