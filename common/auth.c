/* auth.c - Bearer JWT verification with a pinned algorithm, claim checks, and token minting. */
#include "auth.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "ascii.h"
#include "errfmt.h"
#include "log.h"

#define AUTH_TOKEN_MAX    8192 /* longer tokens are refused before any decoding */
#define AUTH_SECRET_MIN   32   /* HS256 secrets shorter than this are refused */
#define AUTH_RSA_MIN_BITS 2048

struct auth_verifier {
    auth_alg alg;
    jwt_alg_t jwt_alg;
    unsigned char *key; /* HS256 secret or PEM public key, handed to libjwt on every verify */
    size_t keylen;
    char *issuer;   /* NULL: not checked */
    char *audience; /* NULL: not checked */
    int leeway_s;
};

static const char *alg_name(auth_alg alg)
{
    switch (alg) {
    case AUTH_HS256:
        return "HS256";
    case AUTH_RS256:
        return "RS256";
    case AUTH_ES256:
        return "ES256";
    }
    return NULL;
}

static jwt_alg_t alg_to_jwt(auth_alg alg)
{
    switch (alg) {
    case AUTH_HS256:
        return JWT_ALG_HS256;
    case AUTH_RS256:
        return JWT_ALG_RS256;
    case AUTH_ES256:
        return JWT_ALG_ES256;
    }
    return JWT_ALG_INVAL;
}

int auth_parse_alg(const char *s, auth_alg *out)
{
    static const auth_alg all[] = {AUTH_HS256, AUTH_RS256, AUTH_ES256};
    if (!s)
        return -1;
    for (size_t i = 0; i < CDR_ARRAY_LEN(all); i++) {
        if (strcasecmp(s, alg_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

/* The claims and the minted tokens carry NUL-terminated text; 'out' holds AUTH_UUID_LEN + 1 or
 * AUTH_DOMAIN_MAX + 1 bytes. */
static bool uuid_normalise(const char *s, char *out)
{
    return cdr_uuid_normalise(s, strlen(s), out);
}

static bool domain_normalise(const char *s, char *out)
{
    return cdr_domain_normalise(s, strlen(s), out, AUTH_DOMAIN_MAX + 1);
}

static bool is_b64url(char c)
{
    return ascii_is_alnum(c) || c == '-' || c == '_';
}

/* Decodes the unpadded base64url text 's' ('n' bytes, alphabet already checked). Returns a
 * malloc'd NUL-terminated buffer with its length in '*outlen', or NULL when 'n' is not a
 * possible base64 length or memory ran out. */
static char *b64url_decode(const char *s, size_t n, size_t *outlen)
{
    if (n % 4 == 1)
        return NULL;
    size_t pad = (4 - n % 4) % 4;
    char *std = malloc(n + pad);
    char *out = malloc((n + pad) / 4 * 3 + 1);
    char *ret = NULL;
    if (!std || !out)
        goto done;
    for (size_t i = 0; i < n; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    memset(std + n, '=', pad);
    int r = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)std, (int)(n + pad));
    if (r < 0 || (size_t)r < pad)
        goto done;
    *outlen = (size_t)r - pad;
    out[*outlen] = '\0';
    ret = out;
    out = NULL;
done:
    free(std);
    free(out);
    return ret;
}

/* Decodes one token segment into a JSON object (duplicate members refused). Returns NULL when
 * it is not base64url of a JSON object. */
static json_t *segment_json(const char *s, size_t n)
{
    size_t len = 0;
    char *text = b64url_decode(s, n, &len);
    if (!text)
        return NULL;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* Reads a NumericDate (integer or fractional seconds; fractions are dropped). */
static bool json_time(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -9.0e18 && d < 9.0e18))
            return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

static void grant_scope(const char *s, size_t n, auth_claims *c)
{
    if (n == strlen(AUTH_SCOPE_READ) && memcmp(s, AUTH_SCOPE_READ, n) == 0)
        c->scope_read = true;
    else if (n == strlen(AUTH_SCOPE_WRITE) && memcmp(s, AUTH_SCOPE_WRITE, n) == 0)
        c->scope_write = true;
}

/* Sets the scope flags from a space-separated string or an array of strings; scopes this
 * product does not know are ignored. Returns false when 'v' has neither shape. */
static bool parse_scope(const json_t *v, auth_claims *c)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            size_t n = strcspn(s, " ");
            grant_scope(s, n, c);
            s += n;
            s += strspn(s, " ");
        }
        return true;
    }
    if (!json_is_array(v))
        return false;
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return false;
        grant_scope(json_string_value(item), json_string_length(item), c);
    }
    return true;
}

/* True when 'aud' is 'want' or an array holding it. */
static bool audience_matches(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    const json_t *item;
    json_array_foreach(aud, i, item)
    {
        if (json_is_string(item) && strcmp(json_string_value(item), want) == 0)
            return true;
    }
    return false;
}

/* Checks every claim of a payload whose signature was verified; fills 'c'. */
static auth_result check_claims(const auth_verifier *v, const json_t *p, int64_t now,
                                auth_claims *c, char *err, size_t errlen)
{
    const json_t *exp = json_object_get(p, "exp");
    if (!exp) {
        cdr_errf(err, errlen, "claim exp missing");
        return AUTH_INVALID;
    }
    if (!json_time(exp, &c->exp)) {
        cdr_errf(err, errlen, "claim exp malformed");
        return AUTH_INVALID;
    }
    /* Written so that no sum of token-supplied values can overflow. */
    if (now - v->leeway_s >= c->exp) {
        cdr_errf(err, errlen, "token expired");
        return AUTH_INVALID;
    }
    const json_t *nbf = json_object_get(p, "nbf");
    if (nbf) {
        int64_t t;
        if (!json_time(nbf, &t)) {
            cdr_errf(err, errlen, "claim nbf malformed");
            return AUTH_INVALID;
        }
        if (now + v->leeway_s < t) {
            cdr_errf(err, errlen, "token not yet valid");
            return AUTH_INVALID;
        }
    }
    if (v->issuer) {
        const json_t *iss = json_object_get(p, "iss");
        if (!iss) {
            cdr_errf(err, errlen, "claim iss missing");
            return AUTH_INVALID;
        }
        if (!json_is_string(iss) || strcmp(json_string_value(iss), v->issuer) != 0) {
            cdr_errf(err, errlen, "issuer not accepted");
            return AUTH_INVALID;
        }
    }
    if (v->audience) {
        const json_t *aud = json_object_get(p, "aud");
        if (!aud) {
            cdr_errf(err, errlen, "claim aud missing");
            return AUTH_INVALID;
        }
        if (!audience_matches(aud, v->audience)) {
            cdr_errf(err, errlen, "audience not accepted");
            return AUTH_INVALID;
        }
    }
    const json_t *tenant = json_object_get(p, "tenant_id");
    if (!tenant) {
        cdr_errf(err, errlen, "claim tenant_id missing");
        return AUTH_INVALID;
    }
    if (!json_is_string(tenant) || !uuid_normalise(json_string_value(tenant), c->tenant_id)) {
        cdr_errf(err, errlen, "claim tenant_id is not a UUID");
        return AUTH_INVALID;
    }
    const json_t *domain = json_object_get(p, "sip_domain");
    if (!domain) {
        cdr_errf(err, errlen, "claim sip_domain missing");
        return AUTH_INVALID;
    }
    if (!json_is_string(domain) || !domain_normalise(json_string_value(domain), c->sip_domain)) {
        cdr_errf(err, errlen, "claim sip_domain is not a domain name");
        return AUTH_INVALID;
    }
    const json_t *scope = json_object_get(p, "scope");
    if (!scope) {
        cdr_errf(err, errlen, "claim scope missing");
        return AUTH_INVALID;
    }
    if (!parse_scope(scope, c)) {
        cdr_errf(err, errlen, "claim scope malformed");
        return AUTH_INVALID;
    }
    return AUTH_OK;
}

/* Refuses a header that names another algorithm than the pinned one; "none" in any case is
 * refused by name. Header values are echoed only when they are a known algorithm name. */
static auth_result check_header(const auth_verifier *v, const json_t *h, char *err, size_t errlen)
{
    const json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg)) {
        cdr_errf(err, errlen, "token header has no algorithm");
        return AUTH_INVALID;
    }
    const char *name = json_string_value(alg);
    if (strcasecmp(name, "none") == 0) {
        cdr_errf(err, errlen, "algorithm none not accepted");
        return AUTH_INVALID;
    }
    if (strcmp(name, alg_name(v->alg)) != 0) {
        if (jwt_str_alg(name) != JWT_ALG_INVAL)
            cdr_errf(err, errlen, "algorithm %s not accepted", name);
        else
            cdr_errf(err, errlen, "algorithm not accepted");
        return AUTH_INVALID;
    }
    /* No header extension is understood, so a token that marks one critical is refused. */
    if (json_object_get(h, "crit")) {
        cdr_errf(err, errlen, "critical header extension not supported");
        return AUTH_INVALID;
    }
    return AUTH_OK;
}

auth_result auth_verify(const auth_verifier *v, const char *token, int64_t now, auth_claims *out,
                        char *err, size_t errlen)
{
    auth_result res = AUTH_INVALID;
    json_t *header = NULL;
    json_t *payload = NULL;
    jwt_t *jwt = NULL;
    const char *dot[2];
    size_t ndots = 0;
    auth_claims c;
    int rc;

    if (!token || !*token) {
        cdr_errf(err, errlen, "no token");
        return AUTH_MISSING;
    }
    size_t len = strnlen(token, AUTH_TOKEN_MAX + 1);
    if (len > AUTH_TOKEN_MAX) {
        cdr_errf(err, errlen, "token too long");
        return AUTH_INVALID;
    }

    /* header '.' payload '.' signature, each in the base64url alphabet */
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2)
                goto malformed;
            dot[ndots++] = token + i;
        } else if (!is_b64url(token[i])) {
            goto malformed;
        }
    }
    if (ndots != 2 || dot[0] == token || dot[1] == dot[0] + 1)
        goto malformed;

    header = segment_json(token, (size_t)(dot[0] - token));
    if (!header)
        goto malformed;
    res = check_header(v, header, err, errlen);
    if (res != AUTH_OK)
        goto done;
    res = AUTH_INVALID;
    if (dot[1][1] == '\0')
        goto malformed; /* unsigned */
    payload = segment_json(dot[0] + 1, (size_t)(dot[1] - dot[0] - 1));
    if (!payload)
        goto malformed;

    /* The key is always passed: without one libjwt skips the signature check. */
    rc = jwt_decode(&jwt, token, v->key, (int)v->keylen);
    if (rc != 0) {
        ERR_clear_error();
        cdr_errf(err, errlen, rc == ENOMEM ? "out of memory" : "bad signature");
        goto done;
    }
    if (jwt_get_alg(jwt) != v->jwt_alg) {
        const char *got = jwt_alg_str(jwt_get_alg(jwt));
        cdr_errf(err, errlen, "algorithm %s not accepted", got ? got : "(unknown)");
        goto done;
    }

    /* The payload decoded above is the one the signature covers. */
    memset(&c, 0, sizeof(c));
    res = check_claims(v, payload, now, &c, err, errlen);
    if (res == AUTH_OK) {
        *out = c;
        if (err && errlen > 0)
            err[0] = '\0';
    }
    goto done;

malformed:
    cdr_errf(err, errlen, "malformed token");
    res = AUTH_INVALID;
done:
    if (jwt)
        jwt_free(jwt);
    json_decref(payload);
    json_decref(header);
    return res;
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_token68(char c)
{
    return ascii_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
           c == '/';
}

const char *auth_bearer_token(const char *header)
{
    static const char scheme[] = "Bearer";
    if (!header || strncasecmp(header, scheme, sizeof(scheme) - 1) != 0)
        return NULL;
    const char *p = header + sizeof(scheme) - 1;
    if (*p != ' ')
        return NULL;
    while (*p == ' ')
        p++;
    const char *tok = p;
    while (is_token68(*p))
        p++;
    if (p == tok)
        return NULL;
    while (*p == '=')
        p++;
    return *p == '\0' ? tok : NULL;
}

unsigned char *auth_read_key_file(const char *path, bool secret, size_t *lenp, char *err,
                                  size_t errlen)
{
    unsigned char *buf = NULL;
    unsigned char *ret = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cdr_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(AUTH_KEY_FILE_MAX + 1);
    if (!buf) {
        cdr_errf(err, errlen, "out of memory");
        goto done;
    }
    size_t n = fread(buf, 1, AUTH_KEY_FILE_MAX + 1, f);
    if (ferror(f)) {
        cdr_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (n > AUTH_KEY_FILE_MAX) {
        cdr_errf(err, errlen, "%s is larger than %d bytes", path, AUTH_KEY_FILE_MAX);
        goto done;
    }
    /* A secret file written by hand or by echo ends with a newline that is not part of it. */
    if (secret && n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    *lenp = n;
    ret = buf;
    buf = NULL;
done:
    if (buf) {
        OPENSSL_cleanse(buf, AUTH_KEY_FILE_MAX + 1);
        free(buf);
    }
    fclose(f);
    return ret;
}

static int load_secret(auth_verifier *v, const auth_config *cfg, char *err, size_t errlen)
{
    if (cfg->secret && cfg->secret_file) {
        cdr_errf(err, errlen, "HS256 takes a secret or a secret file, not both");
        return -1;
    }
    if (cfg->secret_file) {
        v->key = auth_read_key_file(cfg->secret_file, true, &v->keylen, err, errlen);
        if (!v->key)
            return -1;
    } else if (cfg->secret) {
        v->keylen = strlen(cfg->secret);
        v->key = (unsigned char *)strdup(cfg->secret);
        if (!v->key) {
            cdr_errf(err, errlen, "out of memory");
            return -1;
        }
    } else {
        cdr_errf(err, errlen, "HS256 needs a secret or a secret file");
        return -1;
    }
    if (v->keylen < AUTH_SECRET_MIN) {
        cdr_errf(err, errlen, "HS256 secret is shorter than %d bytes", AUTH_SECRET_MIN);
        return -1;
    }
    return 0;
}

/* Loads the PEM public key and checks that it fits the algorithm: RSA of at least
 * AUTH_RSA_MIN_BITS for RS256, EC on P-256 for ES256. */
static int load_pubkey(auth_verifier *v, const auth_config *cfg, char *err, size_t errlen)
{
    int ret = -1;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    const char *path = cfg->pubkey_file;

    if (!path) {
        cdr_errf(err, errlen, "%s needs a public key file", alg_name(v->alg));
        return -1;
    }
    v->key = auth_read_key_file(path, false, &v->keylen, err, errlen);
    if (!v->key)
        return -1;
    bio = BIO_new_mem_buf(v->key, (int)v->keylen);
    if (bio)
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pkey) {
        cdr_errf(err, errlen, "%s holds no PEM public key", path);
        goto done;
    }
    int type = EVP_PKEY_get_base_id(pkey);
    if (v->alg == AUTH_RS256) {
        if (type != EVP_PKEY_RSA) {
            cdr_errf(err, errlen, "%s is not an RSA public key", path);
            goto done;
        }
        if (EVP_PKEY_get_bits(pkey) < AUTH_RSA_MIN_BITS) {
            cdr_errf(err, errlen, "RSA key in %s is shorter than %d bits", path, AUTH_RSA_MIN_BITS);
            goto done;
        }
    } else {
        char group[64];
        if (type != EVP_PKEY_EC) {
            cdr_errf(err, errlen, "%s is not an EC public key", path);
            goto done;
        }
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
            strcmp(group, SN_X9_62_prime256v1) != 0) {
            cdr_errf(err, errlen, "EC key in %s is not on curve P-256", path);
            goto done;
        }
    }
    ret = 0;
done:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return ret;
}

auth_verifier *auth_verifier_create(const auth_config *cfg, char *err, size_t errlen)
{
    auth_verifier *ret = NULL;
    auth_verifier *v = calloc(1, sizeof(*v));
    if (!v) {
        cdr_errf(err, errlen, "out of memory");
        return NULL;
    }
    v->alg = cfg->alg;
    v->jwt_alg = alg_to_jwt(cfg->alg);
    v->leeway_s = cfg->leeway_s;
    if (v->jwt_alg == JWT_ALG_INVAL) {
        cdr_errf(err, errlen, "unknown algorithm");
        goto done;
    }
    if (cfg->leeway_s < 0) {
        cdr_errf(err, errlen, "leeway must not be negative");
        goto done;
    }
    /* An empty issuer or audience counts as not configured. */
    if ((cfg->issuer && *cfg->issuer && !(v->issuer = strdup(cfg->issuer))) ||
        (cfg->audience && *cfg->audience && !(v->audience = strdup(cfg->audience)))) {
        cdr_errf(err, errlen, "out of memory");
        goto done;
    }
    int rc =
        v->alg == AUTH_HS256 ? load_secret(v, cfg, err, errlen) : load_pubkey(v, cfg, err, errlen);
    if (rc != 0)
        goto done;
    LOG_INFO("auth", "accepting %s tokens%s%s%s%s", alg_name(v->alg),
             v->issuer ? " from issuer " : "", v->issuer ? v->issuer : "",
             v->audience ? " for audience " : "", v->audience ? v->audience : "");
    ret = v;
    v = NULL;
done:
    auth_verifier_destroy(v);
    return ret;
}

void auth_verifier_destroy(auth_verifier *v)
{
    if (!v)
        return;
    if (v->key) {
        OPENSSL_cleanse(v->key, v->keylen);
        free(v->key);
    }
    free(v->issuer);
    free(v->audience);
    free(v);
}

char *auth_mint(auth_alg alg, const unsigned char *key, size_t keylen, const char *tenant_id,
                const char *sip_domain, const char *scope, int64_t now, int64_t ttl_s,
                const char *issuer, const char *audience, char *err, size_t errlen)
{
    char uuid[AUTH_UUID_LEN + 1];
    char domain[AUTH_DOMAIN_MAX + 1];
    jwt_alg_t jalg = alg_to_jwt(alg);
    jwt_t *jwt = NULL;
    char *tok = NULL;

    /* Refuse what the verifier would refuse, so a minted token is always usable. */
    if (jalg == JWT_ALG_INVAL) {
        cdr_errf(err, errlen, "unknown algorithm");
        return NULL;
    }
    if (!key || keylen == 0 || keylen > INT_MAX) {
        cdr_errf(err, errlen, "no usable key");
        return NULL;
    }
    if (alg == AUTH_HS256 && keylen < AUTH_SECRET_MIN) {
        cdr_errf(err, errlen, "HS256 secret is shorter than %d bytes", AUTH_SECRET_MIN);
        return NULL;
    }
    if (!tenant_id || !uuid_normalise(tenant_id, uuid)) {
        cdr_errf(err, errlen, "tenant_id is not a UUID");
        return NULL;
    }
    if (!sip_domain || !domain_normalise(sip_domain, domain)) {
        cdr_errf(err, errlen, "sip_domain is not a domain name");
        return NULL;
    }
    if (!scope) {
        cdr_errf(err, errlen, "scope missing");
        return NULL;
    }
    if (now < 0 || ttl_s <= 0 || ttl_s > INT64_MAX - now || now + ttl_s > LONG_MAX) {
        cdr_errf(err, errlen, "lifetime out of range");
        return NULL;
    }

    if (jwt_new(&jwt) != 0) {
        cdr_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (jwt_add_grant(jwt, "tenant_id", uuid) != 0 ||
        jwt_add_grant(jwt, "sip_domain", domain) != 0 || jwt_add_grant(jwt, "scope", scope) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl_s)) != 0 ||
        (issuer && jwt_add_grant(jwt, "iss", issuer) != 0) ||
        (audience && jwt_add_grant(jwt, "aud", audience) != 0)) {
        cdr_errf(err, errlen, "cannot set claims");
        goto done;
    }
    if (jwt_set_alg(jwt, jalg, key, (int)keylen) != 0) {
        cdr_errf(err, errlen, "cannot use the key");
        goto done;
    }
    /* libjwt 1.10 allocates with malloc, so the caller's free() matches. */
    tok = jwt_encode_str(jwt);
    if (!tok) {
        ERR_clear_error();
        if (alg == AUTH_HS256)
            cdr_errf(err, errlen, "cannot sign the token");
        else
            cdr_errf(err, errlen, "cannot sign the token: key is not a PEM %s private key",
                     alg == AUTH_RS256 ? "RSA" : "EC P-256");
    }
done:
    jwt_free(jwt);
    return tok;
}
