/* token.c - `cdrctl token`: mints a development token with the configured key. */
#include "token.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "auth_options.h"

bool token_uuid_valid(const char *s)
{
    char canon[AUTH_UUID_LEN + 1];
    return s && cdr_uuid_normalise(s, strlen(s), canon);
}

bool token_domain_valid(const char *s)
{
    char canon[AUTH_DOMAIN_MAX + 1];
    return s && cdr_domain_normalise(s, strlen(s), canon, sizeof(canon));
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
    if (auth_alg_setting(conf->jwt_alg, &alg, err, errlen) != 0)
        return -1;
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

char *token_mint(const ctl_config *conf, const token_request *req, int64_t now, char *err,
                 size_t errlen)
{
    auth_alg alg;
    unsigned char *key = NULL;
    size_t keylen = 0;
    char why[512];
    char *tok = NULL;

    if (auth_alg_setting(conf->jwt_alg, &alg, err, errlen) != 0)
        return NULL;
    /* The secret file is read the way the servers read it (auth_read_key_file). */
    if (alg == AUTH_HS256 && conf->jwt_secret) {
        keylen = strlen(conf->jwt_secret);
        key = (unsigned char *)strdup(conf->jwt_secret);
        if (!key)
            snprintf(err, errlen, "out of memory");
    } else if (alg == AUTH_HS256 && conf->jwt_secret_file) {
        key = auth_read_key_file(conf->jwt_secret_file, true, &keylen, why, sizeof(why));
        if (!key)
            snprintf(err, errlen, "CDR_JWT_SECRET_FILE: %s", why);
    } else if (alg != AUTH_HS256 && conf->jwt_private_key_file) {
        key = auth_read_key_file(conf->jwt_private_key_file, false, &keylen, why, sizeof(why));
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
