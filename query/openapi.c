/* openapi.c - the OpenAPI 3 description of cdr-query's endpoints, served as it is. The document
 * is query/openapi.json, compiled in at build time (cmake/embed_file.cmake). */
#include "openapi.h"

extern const char cdr_openapi_json[];
extern const size_t cdr_openapi_json_len;

const char *openapi_document(size_t *len)
{
    *len = cdr_openapi_json_len;
    return cdr_openapi_json;
}
