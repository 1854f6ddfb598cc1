/* http_request.c - the load generator's request: URL parsing, resolution, the bytes to send. */
#include "http_request.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int http_target_parse(http_target *t, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "--url must start with http://");
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/'), *hend, *port;
    const char *stop = slash ? slash : h + strlen(h);
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(stop - h));
        if (!hend) {
            snprintf(err, errlen, "--url: unterminated [address]");
            return -1;
        }
        h++;
        port = hend[1] == ':' ? hend + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', (size_t)(stop - h));
        hend = colon ? colon : stop;
        port = colon ? colon + 1 : NULL;
    }
    size_t hlen = (size_t)(hend - h), plen = port ? (size_t)(stop - port) : 0;
    if (hlen == 0 || hlen >= sizeof(t->host) || plen >= sizeof(t->port) || (port && plen == 0)) {
        snprintf(err, errlen, "--url: bad host or port in %s", url);
        return -1;
    }
    memcpy(t->host, h, hlen);
    t->host[hlen] = '\0';
    if (port) {
        memcpy(t->port, port, plen);
        t->port[plen] = '\0';
    } else {
        strcpy(t->port, "80");
    }
    t->path = slash ? slash : "/";

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s:%s: %s", t->host, t->port, gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static bool header_named(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

char *http_request_build(const http_target *t, const char *method, const char *const *headers,
                         int n_headers, const char *body, size_t body_len, size_t *len, char *err,
                         size_t errlen)
{
    bool has_host = false;
    size_t cap = body_len + strlen(method) + strlen(t->path) + strlen(t->host) + 256;
    for (int i = 0; i < n_headers; i++) {
        const char *h = headers[i];
        if (!strchr(h, ':') || strpbrk(h, "\r\n")) {
            snprintf(err, errlen, "--header '%s': expected 'Name: value'", h);
            return NULL;
        }
        if (header_named(h, "content-length") || header_named(h, "transfer-encoding")) {
            snprintf(err, errlen, "--header '%s': the body's length is set by loadgen", h);
            return NULL;
        }
        has_host = has_host || header_named(h, "host");
        cap += strlen(h) + 2;
    }
    char *req = malloc(cap), *p = req;
    if (!req) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p += sprintf(p, "%s %s HTTP/1.1\r\n", method, t->path);
    if (!has_host) {
        bool v6 = strchr(t->host, ':') != NULL;
        p += sprintf(p, "Host: %s%s%s:%s\r\n", v6 ? "[" : "", t->host, v6 ? "]" : "", t->port);
    }
    for (int i = 0; i < n_headers; i++)
        p += sprintf(p, "%s\r\n", headers[i]);
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        p += sprintf(p, "Content-Length: %zu\r\n", body ? body_len : 0);
    p += sprintf(p, "\r\n");
    if (body && body_len > 0) {
        memcpy(p, body, body_len);
        p += body_len;
    }
    *len = (size_t)(p - req);
    return req;
}

char *http_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    char *buf = NULL;
    if (!f || fstat(fileno(f), &sb) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    *len = fread(buf, 1, (size_t)sb.st_size, f);
    if (ferror(f) || *len != (size_t)sb.st_size) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        buf = NULL;
    }
done:
    if (f)
        fclose(f);
    return buf;
}
