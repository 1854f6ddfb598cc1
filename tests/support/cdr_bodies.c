/* cdr_bodies.c - request bodies and tokens for the cdr-ingest integration tests. */
#include "cdr_bodies.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "auth.h"
#include "jwt_forge.h"

json_t *cdr_obj(const char *call_id)
{
    char text[1024];
    snprintf(text, sizeof(text), CDR_FMT, call_id);
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert(j, "CDR_FMT: %s", e.text);
    return j;
}

json_t *cdr_batch(const char *prefix, int n)
{
    json_t *a = json_array();
    char id[128];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        json_array_append_new(a, cdr_obj(id));
    }
    return a;
}

char *dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert(s);
    return s;
}

char *ndjson(const json_t *a)
{
    cdr_buf b = {0};
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item)
    {
        char *s = dump(item);
        cr_assert(cdr_buf_printf(&b, "%s\n", s) == 0);
        free(s);
    }
    return cdr_buf_steal(&b);
}

static void compress_zstd(const void *in, size_t len, int repeat, cdr_buf *out)
{
    unsigned char tmp[65536];
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    cr_assert(cc);
    for (int pass = 0; pass <= repeat; pass++) {
        bool last = pass == repeat;
        ZSTD_inBuffer ib = {in, last ? 0 : len, 0};
        size_t left;
        do {
            ZSTD_outBuffer ob = {tmp, sizeof(tmp), 0};
            left = ZSTD_compressStream2(cc, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
            cr_assert(!ZSTD_isError(left), "zstd: %s", ZSTD_getErrorName(left));
            cr_assert(cdr_buf_append(out, tmp, ob.pos) == 0);
        } while (ib.pos < ib.size || (last && left != 0));
    }
    ZSTD_freeCCtx(cc);
}

static void compress_gzip(const void *in, size_t len, int repeat, cdr_buf *out)
{
    unsigned char tmp[65536];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    cr_assert(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    for (int pass = 0; pass <= repeat; pass++) {
        bool last = pass == repeat;
        zs.next_in = (Bytef *)in;
        zs.avail_in = last ? 0 : (uInt)len;
        int rc;
        do {
            zs.next_out = tmp;
            zs.avail_out = sizeof(tmp);
            rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
            cr_assert(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, "deflate: %d", rc);
            cr_assert(cdr_buf_append(out, tmp, sizeof(tmp) - zs.avail_out) == 0);
        } while (zs.avail_in > 0 || zs.avail_out == 0 || (last && rc != Z_STREAM_END));
    }
    deflateEnd(&zs);
}

void compress_into(codec c, const void *in, size_t len, int repeat, cdr_buf *out)
{
    cdr_buf_init(out, 0);
    if (c == ZSTD)
        compress_zstd(in, len, repeat, out);
    else
        compress_gzip(in, len, repeat, out);
}

char *mint(const char *tenant, const char *domain, const char *scope, int64_t issued, int64_t ttl_s,
           const char *secret)
{
    char err[256];
    char *tok = auth_mint(AUTH_HS256, (const unsigned char *)secret, strlen(secret), tenant, domain,
                          scope, issued, ttl_s, NULL, NULL, err, sizeof(err));
    cr_assert(tok, "auth_mint: %s", err);
    return tok;
}

char *alg_none_token(void)
{
    char claims[512];
    snprintf(claims, sizeof(claims),
             "{\"tenant_id\":\"%s\",\"sip_domain\":\"%s\",\"scope\":\"cdr:write\",\"exp\":%lld}",
             TENANT_A, DOMAIN_A, (long long)time(NULL) + 3600);
    return unsigned_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims);
}
