/* token.c - `cdrctl token`: mints a development token with the configured key. */
#include "token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool token_uuid_valid(const char *s)
{
    if (!s || strlen(s) != AUTH_UUID_LEN)
        return false;
    for (size_t i = 0; i < AUTH_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

bool token_domain_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AUTH_DOMAIN_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (!(is_alnum(c) || c == '-') || (c == '-' && label == 0) || ++label > 63) {
            return false;
        }
    }
    return true;
}

bool token_scope_valid(const char *s)
{
    int words = 0;
    while (s && *s) {
        size_t n = strcspn(s, " ");
        if (n > 0) {
            bool known = (n == strlen(AUTH_SCOPE_READ) && strncmp(s, AUTH_SCOPE_READ, n) == 0) ||
                         (n == strlen(AUTH_SCOPE_WRITE) && strncmp(s, AUTH_SCOPE_WRITE, n) == 0);
            if (!known)
                return false;
            words++;
        }
        s += n;
        s += strspn(s, " ");
    }
    return words > 0;
}

int token_key_configured(const ctl_config *conf, char *err, size_t errlen)
{
    auth_alg alg;
    if (auth_parse_alg(conf->jwt_alg ? conf->jwt_alg : "HS256", &alg) != 0) {
        snprintf(err, errlen, "CDR_JWT_ALG: unknown algorithm '%s'", conf->jwt_alg);
        return -1;
    }
    if (alg == AUTH_HS256) {
        if (conf->jwt_secret && conf->jwt_secret_file) {
            snprintf(err, errlen, "HS256 takes CDR_JWT_SECRET or CDR_JWT_SECRET_FILE, not both");
            return -1;
        }
        if (!conf->jwt_secret && !conf->jwt_secret_file) {
            snprintf(err, errlen,
                     "HS256 needs CDR_JWT_SECRET (--jwt-secret) or CDR_JWT_SECRET_FILE "
                     "(--jwt-secret-file)");
            return -1;
        }
    } else if (!conf->jwt_private_key_file) {
        snprintf(err, errlen, "%s needs CDR_JWT_PRIVATE_KEY_FILE (--jwt-private-key-file)",
                 conf->jwt_alg);
        return -1;
    }
    return 0;
}

/* Reads all of 'path' (at most TOKEN_KEY_FILE_MAX bytes) into a malloc'd buffer. Returns it
 * with its length in '*len', or NULL with 'err' filled. */
static unsigned char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(TOKEN_KEY_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TOKEN_KEY_FILE_MAX + 1, f) : 0;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
    } else if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    } else if (n > TOKEN_KEY_FILE_MAX) {
        snprintf(err, errlen, "%s is larger than %d bytes", path, TOKEN_KEY_FILE_MAX);
    } else {
        fclose(f);
        buf[n] = '\0';
        *len = n;
        return buf;
    }
    if (buf) {
        OPENSSL_cleanse(buf, TOKEN_KEY_FILE_MAX + 1);
        free(buf);
    }
    fclose(f);
    return NULL;
}

char *token_mint(const ctl_config *conf, const token_request *req, int64_t now, char *err,
                 size_t errlen)
{
    auth_alg alg;
    unsigned char *key = NULL;
    size_t keylen = 0;
    char why[512];
    char *tok = NULL;

    if (auth_parse_alg(conf->jwt_alg ? conf->jwt_alg : "HS256", &alg) != 0) {
        snprintf(err, errlen, "CDR_JWT_ALG: unknown algorithm '%s'", conf->jwt_alg);
        return NULL;
    }
    /* The secret file is read the way the servers read it: one trailing newline dropped. */
    if (alg == AUTH_HS256 && conf->jwt_secret) {
        keylen = strlen(conf->jwt_secret);
        key = (unsigned char *)strdup(conf->jwt_secret);
        if (!key)
            snprintf(err, errlen, "out of memory");
    } else if (alg == AUTH_HS256 && conf->jwt_secret_file) {
        key = read_file(conf->jwt_secret_file, &keylen, why, sizeof(why));
        if (!key)
            snprintf(err, errlen, "CDR_JWT_SECRET_FILE: %s", why);
        else if (keylen > 0 && key[keylen - 1] == '\n')
            key[--keylen] = '\0';
    } else if (alg != AUTH_HS256 && conf->jwt_private_key_file) {
        key = read_file(conf->jwt_private_key_file, &keylen, why, sizeof(why));
        if (!key)
            snprintf(err, errlen, "CDR_JWT_PRIVATE_KEY_FILE: %s", why);
    } else {
        snprintf(err, errlen, "no signing key configured");
    }
    if (!key)
        return NULL;

    tok = auth_mint(alg, key, keylen, req->tenant_id, req->sip_domain, req->scope, now, req->ttl_s,
                    conf->jwt_issuer, conf->jwt_audience, why, sizeof(why));
    if (!tok)
        snprintf(err, errlen, "cannot mint the token: %s", why);
    OPENSSL_cleanse(key, keylen);
    free(key);
    return tok;
}

typedef struct token_flags {
    char *tenant_id;
    char *sip_domain;
    char *scope;
    long long ttl_s;
} token_flags;

static const cfg_option token_options[] = {
    {"tenant-id", NULL, CFG_STRING, NULL, 0, 0, NULL, offsetof(token_flags, tenant_id),
     "the tenant's UUID (required)"},
    {"sip-domain", NULL, CFG_STRING, NULL, 0, 0, NULL, offsetof(token_flags, sip_domain),
     "the tenant's SIP domain (required)"},
    {"scope", NULL, CFG_STRING, NULL, 0, 0, NULL, offsetof(token_flags, scope),
     "space-separated grants: \"cdr:read\", \"cdr:write\" or both (required)"},
    {"ttl", NULL, CFG_INT, "3600", 1, TOKEN_TTL_MAX, NULL, offsetof(token_flags, ttl_s),
     "lifetime in seconds"},
};

static const cfg_table token_table = {
    .program = "cdrctl token",
    .summary = "Prints a token for a tenant signed with the configured JWT key (CDR_JWT_*), for "
               "development and tests.",
    .usage = "--tenant-id UUID --sip-domain DOMAIN --scope \"cdr:read cdr:write\" [--ttl SECONDS]",
    .opts = token_options,
    .n_opts = CDR_ARRAY_LEN(token_options),
};

/* Checks the flags a user gives; returns 0 or -1 with the complaint printed. */
static int check_flags(const token_flags *f)
{
    if (!f->tenant_id) {
        ctl_error("token: --tenant-id is required");
    } else if (!token_uuid_valid(f->tenant_id)) {
        ctl_error("token: --tenant-id: '%s' is not a UUID (8-4-4-4-12 hex digits)", f->tenant_id);
    } else if (!f->sip_domain) {
        ctl_error("token: --sip-domain is required");
    } else if (!token_domain_valid(f->sip_domain)) {
        ctl_error("token: --sip-domain: '%s' is not a domain name", f->sip_domain);
    } else if (!f->scope) {
        ctl_error("token: --scope is required (\"cdr:read\", \"cdr:write\" or both)");
    } else if (!token_scope_valid(f->scope)) {
        ctl_error("token: --scope: '%s' is not a list of cdr:read and cdr:write", f->scope);
    } else {
        return 0;
    }
    return -1;
}

int ctl_token_main(const ctl_config *conf, int argc, char **argv)
{
    token_flags flags = {0};
    char err[1024];
    int rc = ctl_parse_flags(&token_table, &flags, argc, argv);
    if (rc != CTL_CONTINUE)
        goto done;

    rc = CTL_EXIT_USAGE;
    if (check_flags(&flags) != 0) {
        fprintf(stderr, "Try 'cdrctl token --help'.\n");
        goto done;
    }
    if (token_key_configured(conf, err, sizeof(err)) != 0) {
        ctl_error("token: %s", err);
        goto done;
    }

    token_request req = {
        .tenant_id = flags.tenant_id,
        .sip_domain = flags.sip_domain,
        .scope = flags.scope,
        .ttl_s = flags.ttl_s,
    };
    char *tok = token_mint(conf, &req, (int64_t)time(NULL), err, sizeof(err));
    if (!tok) {
        ctl_error("token: %s", err);
        rc = CTL_EXIT_FAILURE;
        goto done;
    }
    printf("%s\n", tok);
    free(tok);
    rc = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
done:
    cfg_free(&token_table, &flags);
    return rc;
}
