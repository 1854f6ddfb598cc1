/* log.h - level-checked one-line logging to stderr. */
#ifndef CDR_LOG_H
#define CDR_LOG_H

#include <stdbool.h>

#include "compiler.h"

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_OFF,
} log_level;

/* Set once at start-up, before any thread exists (it is the program's log threshold). */
void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "debug|info|warn|error|off" (case-insensitive). Returns 0, or -1 for anything else. */
int log_parse_level(const char *s, log_level *out) CDR_MUST_CHECK;
/* The choices string for a CFG_ENUM option. */
#define LOG_LEVEL_CHOICES "debug|info|warn|error|off"

/* Writes one line: "2026-11-21T09:00:00.123Z LEVEL component: message". A message is written
 * with a single write(2) so lines from several threads never interleave; newlines inside the
 * message are replaced by spaces. */
void log_write(log_level level, const char *component, const char *fmt, ...) CDR_PRINTF(3, 4);

#define LOG_AT(lvl, comp, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) >= log_get_level())                                                              \
            log_write((lvl), (comp), __VA_ARGS__);                                                 \
    } while (0)
#define LOG_DEBUG(comp, ...) LOG_AT(LOG_LEVEL_DEBUG, comp, __VA_ARGS__)
#define LOG_INFO(comp, ...)  LOG_AT(LOG_LEVEL_INFO, comp, __VA_ARGS__)
#define LOG_WARN(comp, ...)  LOG_AT(LOG_LEVEL_WARN, comp, __VA_ARGS__)
#define LOG_ERROR(comp, ...) LOG_AT(LOG_LEVEL_ERROR, comp, __VA_ARGS__)

#endif
