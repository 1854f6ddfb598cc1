/* redis_url.c - parsing redis:// and unix:// URLs into a redis_target. */
#include "redis_url.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "errfmt.h"

#define REDIS_DEFAULT_PORT 6379

/* Copies the 'n' bytes at 's' into 'dst' ('len' bytes), decoding %XY escapes, so that a password
 * may hold '@', ':' or '/'. 'what' names the part in errors. Returns 0, or -1 with 'err' set. */
static int copy_decoded(char *dst, size_t len, const char *s, size_t n, const char *what, char *err,
                        size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < n ? ascii_hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? ascii_hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                cdr_errf(err, errlen, "bad percent-encoding in the %s", what);
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= len) {
            cdr_errf(err, errlen, "%s too long (at most %zu bytes)", what, len - 1);
            return -1;
        }
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

/* Copies the 'n' bytes at 's' into 'dst' ('len' bytes) as they are. */
static int copy_plain(char *dst, size_t len, const char *s, size_t n, const char *what, char *err,
                      size_t errlen)
{
    if (n >= len) {
        cdr_errf(err, errlen, "%s too long (at most %zu bytes)", what, len - 1);
        return -1;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Parses the 'n' bytes at 's' as a decimal in ['min', 'max'] for the part 'what' ("port",
 * "db"). Returns 0 with '*out' set, or -1 with 'err' naming the value. */
static int parse_number(const char *s, size_t n, long min, long max, const char *what, int *out,
                        char *err, size_t errlen)
{
    if (n == 0) {
        cdr_errf(err, errlen, "%s is empty", what);
        return -1;
    }
    long v = 0;
    bool big = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            cdr_errf(err, errlen, "%s '%.*s' is not a number", what, (int)(n > 64 ? 64 : n), s);
            return -1;
        }
        if (!big) {
            v = v * 10 + (s[i] - '0');
            big = v > max;
        }
    }
    if (big || v < min) {
        cdr_errf(err, errlen, "%s %.*s out of range (%ld-%ld)", what, (int)(n > 64 ? 64 : n), s,
                 min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Parses the user info "[[user]:]password" of the 'n' bytes at 's' (redis-cli's reading: without
 * a colon the whole is the password). */
static int parse_userinfo(redis_target *out, const char *s, size_t n, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    if (colon) {
        if (copy_decoded(out->user, sizeof(out->user), s, (size_t)(colon - s), "user", err,
                         errlen) != 0)
            return -1;
        n -= (size_t)(colon + 1 - s);
        s = colon + 1;
    }
    return copy_decoded(out->password, sizeof(out->password), s, n, "password", err, errlen);
}

/* Parses "host[:port]" or "[v6]:port" of the 'n' bytes at 's'. */
static int parse_hostport(redis_target *out, const char *s, size_t n, char *err, size_t errlen)
{
    const char *end = s + n;
    const char *host = s, *host_end, *rest;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            cdr_errf(err, errlen, "IPv6 address lacks its closing ']'");
            return -1;
        }
        host = s + 1;
        host_end = close;
        rest = close + 1;
        if (rest < end && *rest != ':') {
            cdr_errf(err, errlen, "unexpected '%.*s' after the IPv6 address", (int)(end - rest),
                     rest);
            return -1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        host_end = colon ? colon : end;
        rest = host_end;
    }
    if (host_end == host) {
        cdr_errf(err, errlen, "missing host");
        return -1;
    }
    if (copy_plain(out->host, sizeof(out->host), host, (size_t)(host_end - host), "host", err,
                   errlen) != 0)
        return -1;
    if (rest < end) { /* *rest == ':' */
        rest++;
        if (rest == end) {
            cdr_errf(err, errlen, "missing port after ':'");
            return -1;
        }
        if (parse_number(rest, (size_t)(end - rest), 1, 65535, "port", &out->port, err, errlen) !=
            0)
            return -1;
    }
    return 0;
}

/* Parses what follows "redis://". */
static int parse_tcp(redis_target *out, const char *s, char *err, size_t errlen)
{
    if (strchr(s, '?') || strchr(s, '#')) {
        cdr_errf(err, errlen,
                 "redis:// URLs take no query or fragment (put the db in the path, "
                 "percent-encode '?' and '#' in a password)");
        return -1;
    }
    size_t auth_len = strcspn(s, "/");
    const char *path = s + auth_len;
    /* The last '@' ends the user info: a raw '@' in a password stays part of it. */
    const char *at = NULL;
    for (const char *p = s; p < path; p++)
        if (*p == '@')
            at = p;
    const char *hostport = s;
    if (at) {
        if (parse_userinfo(out, s, (size_t)(at - s), err, errlen) != 0)
            return -1;
        hostport = at + 1;
    }
    if (parse_hostport(out, hostport, (size_t)(path - hostport), err, errlen) != 0)
        return -1;
    if (*path == '/' && path[1] != '\0') {
        if (parse_number(path + 1, strlen(path + 1), 0, INT_MAX, "db", &out->db, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Parses the query "db=N&user=U&password=P" of a unix:// URL. */
static int parse_unix_query(redis_target *out, const char *q, char *err, size_t errlen)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t key_len = eq ? (size_t)(eq - q) : n;
        const char *v = eq ? eq + 1 : q + n;
        size_t vn = (size_t)(q + n - v);
        int rc;
        if (key_len == 2 && strncmp(q, "db", 2) == 0)
            rc = parse_number(v, vn, 0, INT_MAX, "db", &out->db, err, errlen);
        else if (key_len == 4 && strncmp(q, "user", 4) == 0)
            rc = copy_decoded(out->user, sizeof(out->user), v, vn, "user", err, errlen);
        else if (key_len == 8 && strncmp(q, "password", 8) == 0)
            rc = copy_decoded(out->password, sizeof(out->password), v, vn, "password", err, errlen);
        else {
            cdr_errf(err, errlen, "unknown parameter '%.*s' (use db, user or password)",
                     (int)(key_len > 64 ? 64 : key_len), q);
            rc = -1;
        }
        if (rc != 0)
            return -1;
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* Parses what follows "unix://": an empty authority, an absolute path, an optional query. */
static int parse_unix(redis_target *out, const char *s, char *err, size_t errlen)
{
    if (*s != '/') {
        cdr_errf(err, errlen, "unix:// URLs need an absolute socket path (unix:///path/to/sock)");
        return -1;
    }
    size_t n = strcspn(s, "?");
    if (n == 1) {
        cdr_errf(err, errlen, "missing socket path");
        return -1;
    }
    if (copy_plain(out->unix_path, sizeof(out->unix_path), s, n, "socket path", err, errlen) != 0)
        return -1;
    if (s[n] == '?')
        return parse_unix_query(out, s + n + 1, err, errlen);
    return 0;
}

int redis_url_parse(const char *url, redis_target *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = REDIS_DEFAULT_PORT;
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep) {
        cdr_errf(err, errlen, "'%s' is not a URL (use redis://host:port or unix:///path)",
                 url ? url : "");
        return -1;
    }
    size_t scheme_len = (size_t)(sep - url);
    const char *rest = sep + 3;
    int rc;
    if (scheme_len == 5 && strncasecmp(url, "redis", 5) == 0) {
        rc = parse_tcp(out, rest, err, errlen);
    } else if (scheme_len == 4 && strncasecmp(url, "unix", 4) == 0) {
        rc = parse_unix(out, rest, err, errlen);
    } else {
        cdr_errf(err, errlen, "unsupported scheme '%.*s' (use redis:// or unix://)",
                 (int)(scheme_len > 32 ? 32 : scheme_len), url);
        rc = -1;
    }
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}
