/* http_auth.h - the Bearer check of both servers, with a per-thread cache of verified tokens. */
#ifndef CDR_HTTP_AUTH_H
#define CDR_HTTP_AUTH_H

#include <event2/http.h>
#include <stdbool.h>

#include "auth.h"

/* One per thread (not thread-safe): remembers the last few verified tokens so that a PBX that
 * posts with the same token thousands of times pays the signature check once. A cached token
 * is still refused as soon as it expires. */
typedef struct http_auth http_auth;

/* 'v' is borrowed and must outlive the http_auth. */
http_auth *http_auth_create(const auth_verifier *v);
void http_auth_destroy(http_auth *a);

/* Checks the request's Authorization header and that the token grants 'scope'
 * (AUTH_SCOPE_READ or AUTH_SCOPE_WRITE). Returns true with 'out' filled; otherwise it has
 * already answered the request (401 for a missing or invalid token, with a
 * WWW-Authenticate: Bearer header; 403 for a missing scope) and returns false: the caller must
 * not touch 'req' again. */
bool http_auth_check(http_auth *a, struct evhttp_request *req, const char *scope, auth_claims *out);

#endif
