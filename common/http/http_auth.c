/* http_auth.c - the Bearer check of both servers, with a per-thread cache of verified tokens. */
#include "http_auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "http_reply.h"

#define CACHE_SLOTS     16
#define CACHE_TOKEN_MAX 1024 /* longer tokens are verified every time, never kept */

/* A token that verified, byte for byte, with what it granted. 'token' is NULL in a free slot. */
typedef struct cached_token {
    char *token;
    size_t len;
    auth_claims claims;
    uint64_t used; /* the cache's clock at the last hit: the smallest is evicted first */
} cached_token;

struct http_auth {
    const auth_verifier *v;
    uint64_t clock;
    cached_token slot[CACHE_SLOTS];
};

http_auth *http_auth_create(const auth_verifier *v)
{
    if (!v)
        return NULL;
    http_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->v = v;
    return a;
}

static void drop(cached_token *c)
{
    free(c->token);
    memset(c, 0, sizeof(*c));
}

void http_auth_destroy(http_auth *a)
{
    if (!a)
        return;
    for (int i = 0; i < CACHE_SLOTS; i++)
        drop(&a->slot[i]);
    free(a);
}

/* Returns the claims cached for 'token', or NULL. An entry is served only while 'now' is
 * before its exp; after that it is dropped so that auth_verify (with its leeway) decides. */
static const auth_claims *cache_find(http_auth *a, const char *token, size_t len, int64_t now)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cached_token *c = &a->slot[i];
        if (!c->token || c->len != len || memcmp(c->token, token, len) != 0)
            continue;
        if (now >= c->claims.exp) {
            drop(c);
            return NULL;
        }
        c->used = ++a->clock;
        return &c->claims;
    }
    return NULL;
}

/* Remembers a verified token in a free slot or the least recently used one. Failing to
 * allocate only means the next request verifies again. */
static void cache_put(http_auth *a, const char *token, size_t len, const auth_claims *claims)
{
    cached_token *victim = &a->slot[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cached_token *c = &a->slot[i];
        if (!c->token) {
            victim = c;
            break;
        }
        if (c->used < victim->used)
            victim = c;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, token, len + 1);
    drop(victim);
    victim->token = copy;
    victim->len = len;
    victim->claims = *claims;
    victim->used = ++a->clock;
}

static bool has_scope(const auth_claims *c, const char *scope)
{
    if (!scope)
        return true;
    if (strcmp(scope, AUTH_SCOPE_WRITE) == 0)
        return c->scope_write;
    if (strcmp(scope, AUTH_SCOPE_READ) == 0)
        return c->scope_read;
    return false; /* a scope this build does not know is never granted */
}

static void unauthorized(struct evhttp_request *req, const char *message)
{
    /* Best effort: a client that misses it still reads the 401 and the message. */
    (void)evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    http_reply_error(req, 401, message, NULL, 0);
}

bool http_auth_check(http_auth *a, struct evhttp_request *req, const char *scope, auth_claims *out)
{
    const char *header = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!header) {
        unauthorized(req, "no bearer token");
        return false;
    }
    const char *token = auth_bearer_token(header);
    if (!token) {
        unauthorized(req, "malformed Authorization header");
        return false;
    }

    int64_t now = (int64_t)time(NULL);
    size_t len = strlen(token);
    auth_claims claims;
    const auth_claims *hit = len <= CACHE_TOKEN_MAX ? cache_find(a, token, len, now) : NULL;
    if (hit) {
        claims = *hit;
    } else {
        char err[128] = "";
        if (auth_verify(a->v, token, now, &claims, err, sizeof(err)) != AUTH_OK) {
            unauthorized(req, err[0] ? err : "invalid token");
            return false;
        }
        if (len <= CACHE_TOKEN_MAX && now < claims.exp)
            cache_put(a, token, len, &claims);
    }

    if (!has_scope(&claims, scope)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "token lacks scope %s", scope);
        http_reply_error(req, 403, msg, NULL, 0);
        return false;
    }
    *out = claims;
    return true;
}
