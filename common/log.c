/* log.c - the one-line stderr logger of log.h: UTC timestamp, level word, component, message. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The longest line written, newline included; a longer message is cut and ends in "...".
 * It stays under PIPE_BUF, so a line written to a pipe is never split. */
#define LOG_LINE_MAX 2048

static log_level g_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_words[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(log_level level)
{
    g_level = level;
}

log_level log_get_level(void)
{
    return g_level;
}

int log_parse_level(const char *s, log_level *out)
{
    for (size_t i = 0; i < CDR_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Appends to 'line' (LOG_LINE_MAX bytes, 'len' of them used), always keeping its last byte
 * free for the newline. Returns the new length; sets '*cut' when the text did not fit. */
static size_t line_vappend(char *line, size_t len, bool *cut, const char *fmt, va_list ap)
{
    size_t avail = LOG_LINE_MAX - len;
    int n = vsnprintf(line + len, avail, fmt, ap);
    if (n < 0) {
        line[len] = '\0';
        return len;
    }
    if ((size_t)n >= avail) {
        *cut = true;
        return LOG_LINE_MAX - 1;
    }
    return len + (size_t)n;
}

static size_t line_append(char *line, size_t len, bool *cut, const char *fmt, ...) CDR_PRINTF(4, 5);

static size_t line_append(char *line, size_t len, bool *cut, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    len = line_vappend(line, len, cut, fmt, ap);
    va_end(ap);
    return len;
}

/* Writes all of 'p' to stderr, retrying after a signal. A failure is dropped: there is
 * nowhere left to report it. */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Also checks the level, so a direct call obeys the threshold like the macros; 'errno' is
 * left as the caller had it. */
void log_write(log_level level, const char *component, const char *fmt, ...)
{
    if (level < g_level || (unsigned)level >= (unsigned)LOG_LEVEL_OFF)
        return;
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    bool cut = false;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    len = line_append(line, len, &cut, ".%03ldZ %s ", ts.tv_nsec / 1000000L, level_words[level]);
    if (component)
        len = line_append(line, len, &cut, "%s: ", component);
    va_list ap;
    va_start(ap, fmt);
    len = line_vappend(line, len, &cut, fmt, ap);
    va_end(ap);

    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    if (cut)
        memcpy(line + len - 3, "...", 3);
    line[len++] = '\n';
    write_all(line, len);
    errno = saved_errno;
}
