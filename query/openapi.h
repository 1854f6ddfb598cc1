/* openapi.h - the OpenAPI 3 description of cdr-query, served at /api/openapi.json. */
#ifndef CDR_QUERY_OPENAPI_H
#define CDR_QUERY_OPENAPI_H

#include <stddef.h>

/* The document (static JSON text) and its length. */
const char *openapi_document(size_t *len);

#endif
