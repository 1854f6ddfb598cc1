/* stderr_capture.h - what the code under test logs, caught for assertions: file descriptor 2
 * sent to a temporary file for a while, then read back. Failures end the calling test through
 * Criterion's assertions. */
#ifndef CDR_STDERR_CAPTURE_H
#define CDR_STDERR_CAPTURE_H

/* Sends fd 2 to a temporary file until stderr_capture_end(). Captures do not nest. */
void stderr_capture_start(void);

/* Restores fd 2 and returns what was written to it meanwhile: its first 64 KB, NUL-terminated,
 * in a static buffer that the next stderr_capture_end() overwrites. */
const char *stderr_capture_end(void);

/* How many times 'needle' occurs in 'text', without overlaps. */
int count_substr(const char *text, const char *needle);

#endif
