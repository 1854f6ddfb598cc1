/* http_reply.h - the JSON reply and error shape both servers answer with. */
#ifndef CDR_HTTP_REPLY_H
#define CDR_HTTP_REPLY_H

#include <event2/http.h>
#include <jansson.h>
#include <stddef.h>

/* Sends 'body' (reference stolen; NULL sends an empty body) as application/json with 'status'.
 * On failure to serialise, sends a 500 error instead. The request is answered: the caller must
 * not touch 'req' again. */
void http_reply_json(struct evhttp_request *req, int status, json_t *body);

/* Sends {"error": {"status": S, "message": M, "details": [...]}} with 'status'. 'details' is a
 * JSON array (reference stolen) or NULL for []. 'retry_after_s' > 0 adds a Retry-After header
 * (for 429 and 503). */
void http_reply_error(struct evhttp_request *req, int status, const char *message, json_t *details,
                      int retry_after_s);

/* Sends 'len' bytes of 'data' with 'content_type' and 'status'. */
void http_reply_bytes(struct evhttp_request *req, int status, const char *content_type,
                      const char *data, size_t len);

/* The reason phrase of a status ("Accepted"), "Unknown" for codes it does not know. */
const char *http_reason(int status);

#endif
