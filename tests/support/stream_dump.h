/* stream_dump.h - a Redis Stream as cdr-ingest wrote it, read back for a test: every entry
 * decoded by the format of docs/stream-format.md, and expectations on its rows. A malformed
 * entry or an unmet expectation ends the calling test through Criterion's assertions. */
#ifndef CDR_STREAM_DUMP_H
#define CDR_STREAM_DUMP_H

#include <hiredis/hiredis.h>

#include "cdr_codec.h"

/* Column positions in the rows of docs/stream-format.md. */
#define COL_CALL_ID     4
#define COL_INGESTED_AT 21
#define REJ_RECEIVED_AT 0
#define REJ_CALL_ID     3
#define REJ_RAW         6

/* One decoded row: its columns, NULL for \N. */
typedef struct srow {
    char *col[CDR_CODEC_CDR_NCOLS];
    int ncols;
} srow;

/* One decoded stream entry. */
typedef struct sentry {
    char kind[16]; /* "cdr" or "reject" */
    char enc[16];
    long n;
    srow *rows;
    int nrows;
} sentry;

/* Every entry of a stream, oldest first. */
typedef struct sdump {
    sentry *e;
    int n;
} sdump;

/* Reads every entry of the stream 'key' through 'c' and decodes it into 'd' (free with
 * sdump_free). */
void sdump_load(sdump *d, redisContext *c, const char *key);

void sdump_free(sdump *d);

/* The only entry of 'kind', asserting there is exactly one. */
const sentry *sdump_only(const sdump *d, const char *kind);

/* How many entries of 'kind' there are. */
int sdump_entries(const sdump *d, const char *kind);

/* How many rows the entries of 'kind' hold in all. */
long sdump_rows(const sdump *d, const char *kind);

/* How many rows of 'kind' have the call_id 'call_id'; the last of them in '*row' when 'row' is
 * not NULL. */
int sdump_count_call(const sdump *d, const char *kind, const char *call_id, const srow **row);

/* The single row of 'kind' for 'call_id', asserting there is exactly one. */
const srow *sdump_row(const sdump *d, const char *kind, const char *call_id);

/* The call_ids of every cdr row, sorted by strcmp, in an array of '*n' entries to free(); the
 * strings belong to 'd'. */
char **sdump_call_ids(const sdump *d, int *n);

/* Asserts that 'ts' is a stream timestamp ("2025-10-30 09:12:05[.ffffff]+00") within two
 * minutes of now; 'what' names it in the message. */
void expect_recent(const char *ts, const char *what);

/* Asserts that the columns 'from' to 'to' (excluded) of 'row', a row of 'kind', are those of
 * 'want' (NULL: \N). */
void expect_cols(const srow *row, const char *kind, const char *const *want, int from, int to);

#endif
