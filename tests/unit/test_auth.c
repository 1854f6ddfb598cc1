/* test_auth.c - JWT verification: pinned algorithm, signatures, time checks, claims, bearer. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth.h"
#include "jwt_forge.h"
#include "log.h"

#define NOW          INT64_C(1800000000)
#define TENANT       "0F8FAD5B-D9CB-469F-A165-70867728950E"
#define TENANT_LC    "0f8fad5b-d9cb-469f-a165-70867728950e"
#define DOMAIN       "TenantA.Example.IT"
#define DOMAIN_LC    "tenanta.example.it"
#define SECRET       "an-hs256-secret-of-more-than-32-bytes"
#define OTHER_SECRET "another-secret-also-longer-than-32-bytes"
#define ISSUER       "https://auth.example.it"
#define AUDIENCE     "cdr-ingest"

static char tmpdir[64];

static void setup(void)
{
    log_set_level(LOG_LEVEL_WARN);
    strcpy(tmpdir, "/tmp/cdr-test-auth-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(auth, .init = setup, .fini = teardown);

/* Writes 'len' bytes to 'name' in the test directory; the path goes to 'path' (PATH_MAX). */
static void write_file(const char *name, const void *data, size_t len, char *path)
{
    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static char *pem_of(EVP_PKEY *k, bool private_key)
{
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_not_null(b);
    int ok = private_key ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(b, k);
    cr_assert_eq(ok, 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

/* A freshly generated key pair: the private PEM in memory, the public PEM in memory and on disk. */
typedef struct keypair {
    char *priv_pem;
    char *pub_pem;
    char pub_path[PATH_MAX];
} keypair;

static void keypair_make(keypair *kp, EVP_PKEY *k, const char *name)
{
    cr_assert_not_null(k, "key generation failed");
    kp->priv_pem = pem_of(k, true);
    kp->pub_pem = pem_of(k, false);
    write_file(name, kp->pub_pem, strlen(kp->pub_pem), kp->pub_path);
    EVP_PKEY_free(k);
}

static void keypair_free(keypair *kp)
{
    free(kp->priv_pem);
    free(kp->pub_pem);
}

/* The claims of a token every default verifier accepts at NOW. */
static json_t *good_claims(void)
{
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "tenant_id", TENANT, "sip_domain", DOMAIN, "scope",
                  "cdr:read cdr:write", "iat", (json_int_t)NOW, "exp", (json_int_t)(NOW + 600));
    cr_assert_not_null(c);
    return c;
}

/* good_claims() with 'key' set to 'value' (reference stolen), or removed when 'value' is NULL. */
static json_t *claims_with(const char *key, json_t *value)
{
    json_t *c = good_claims();
    if (value)
        json_object_set_new(c, key, value);
    else
        json_object_del(c, key);
    return c;
}

/* A token of auth_mint() for TENANT and DOMAIN with 'scope', issued at 'iat' for 'ttl_s'
 * seconds, signed with 'alg' and 'key' (a secret or a PEM private key), carrying 'iss' and 'aud'
 * when not NULL. */
static char *mint(auth_alg alg, const char *key, const char *scope, int64_t iat, int64_t ttl_s,
                  const char *iss, const char *aud)
{
    char err[256] = "";
    char *tok = auth_mint(alg, (const unsigned char *)key, strlen(key), TENANT, DOMAIN, scope, iat,
                          ttl_s, iss, aud, err, sizeof(err));
    cr_assert_not_null(tok, "mint: %s", err);
    return tok;
}

/* Signs 'claims' (reference stolen) with libjwt, bypassing auth_mint's own checks. */
static char *sign_claims(jwt_alg_t alg, const void *key, size_t keylen, json_t *claims)
{
    char *json = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    cr_assert_not_null(json);
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, json), 0);
    cr_assert_eq(jwt_set_alg(jwt, alg, key, (int)keylen), 0);
    char *tok = jwt_encode_str(jwt);
    cr_assert_not_null(tok);
    jwt_free(jwt);
    free(json);
    return tok;
}

static char *sign_hs(json_t *claims)
{
    return sign_claims(JWT_ALG_HS256, SECRET, strlen(SECRET), claims);
}

static auth_verifier *hs_verifier(const char *issuer, const char *audience, int leeway_s)
{
    auth_config cfg = {.alg = AUTH_HS256,
                       .secret = SECRET,
                       .issuer = issuer,
                       .audience = audience,
                       .leeway_s = leeway_s};
    char err[256] = "";
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    cr_assert_not_null(v, "create: %s", err);
    return v;
}

static auth_verifier *pem_verifier(auth_alg alg, const char *pub_path)
{
    auth_config cfg = {.alg = alg, .pubkey_file = pub_path};
    char err[256] = "";
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    cr_assert_not_null(v, "create: %s", err);
    return v;
}

/* Verifies 'tok' (freed) with 'v' at NOW; the error text goes to 'err' (256 bytes). */
static auth_result verify(const auth_verifier *v, char *tok, auth_claims *c, char *err)
{
    err[0] = '\0';
    auth_result r = auth_verify(v, tok, NOW, c, err, 256);
    free(tok);
    return r;
}

/* Expects 'tok' (freed) to be refused by 'v' with an error containing 'word'. */
static void expect_refused(const auth_verifier *v, char *tok, const char *word)
{
    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, tok, &c, err), AUTH_INVALID, "accepted, expected '%s'", word);
    cr_assert_not_null(strstr(err, word), "error '%s' does not mention '%s'", err, word);
}

static void expect_hs_refused(json_t *claims, const char *word)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    expect_refused(v, sign_hs(claims), word);
    auth_verifier_destroy(v);
}

static auth_result verify_hs(json_t *claims, auth_claims *c)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    char err[256];
    auth_result r = verify(v, sign_hs(claims), c, err);
    auth_verifier_destroy(v);
    return r;
}

Test(auth, valid_hs256_token_normalises_claims)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, sign_hs(claims_with("scope", json_string("cdr:read"))), &c, err),
                 AUTH_OK, "%s", err);
    cr_assert_str_eq(c.tenant_id, TENANT_LC);
    cr_assert_str_eq(c.sip_domain, DOMAIN_LC);
    cr_assert(c.scope_read);
    cr_assert_not(c.scope_write);
    cr_assert_eq(c.exp, NOW + 600);
    cr_assert_str_eq(err, "");
    auth_verifier_destroy(v);
}

Test(auth, scope_string_with_several_spaces)
{
    auth_claims c;
    cr_assert_eq(
        verify_hs(claims_with("scope", json_string("  openid  cdr:write   cdr:read ")), &c),
        AUTH_OK);
    cr_assert(c.scope_read);
    cr_assert(c.scope_write);
}

Test(auth, scope_array)
{
    auth_claims c;
    cr_assert_eq(verify_hs(claims_with("scope", json_pack("[s, s]", "profile", "cdr:write")), &c),
                 AUTH_OK);
    cr_assert_not(c.scope_read);
    cr_assert(c.scope_write);
}

Test(auth, unknown_scope_grants_nothing)
{
    auth_claims c;
    cr_assert_eq(verify_hs(claims_with("scope", json_string("cdr:admin cdr:readx")), &c), AUTH_OK);
    cr_assert_not(c.scope_read);
    cr_assert_not(c.scope_write);
}

Test(auth, malformed_scope_refused)
{
    expect_hs_refused(claims_with("scope", json_integer(1)), "scope");
    expect_hs_refused(claims_with("scope", json_pack("[s, i]", "cdr:read", 2)), "scope");
}

Test(auth, expired_token_refused)
{
    expect_hs_refused(claims_with("exp", json_integer(NOW - 10)), "expired");
    /* exp is the first second at which the token is no longer valid */
    expect_hs_refused(claims_with("exp", json_integer(NOW)), "expired");
}

Test(auth, expired_token_accepted_within_leeway)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 30);
    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, sign_hs(claims_with("exp", json_integer(NOW - 10))), &c, err), AUTH_OK,
                 "%s", err);
    cr_assert_eq(c.exp, NOW - 10);
    expect_refused(v, sign_hs(claims_with("exp", json_integer(NOW - 31))), "expired");
    auth_verifier_destroy(v);
}

Test(auth, nbf_in_the_future_refused)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 30);
    expect_refused(v, sign_hs(claims_with("nbf", json_integer(NOW + 100))), "not yet valid");

    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, sign_hs(claims_with("nbf", json_integer(NOW + 20))), &c, err), AUTH_OK,
                 "%s", err);
    auth_verifier_destroy(v);
}

Test(auth, other_secret_is_bad_signature)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    char *tok = sign_claims(JWT_ALG_HS256, OTHER_SECRET, strlen(OTHER_SECRET), good_claims());
    expect_refused(v, tok, "bad signature");
    auth_verifier_destroy(v);
}

Test(auth, tampered_payload_is_bad_signature)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    char *tok = sign_hs(good_claims());
    char *dot1 = strchr(tok, '.');
    char *dot2 = strchr(dot1 + 1, '.');

    json_t *forged = claims_with("tenant_id", json_string("11111111-2222-3333-4444-555555555555"));
    char *json = json_dumps(forged, JSON_COMPACT);
    char *body = b64url(json);
    char *bad = malloc(strlen(tok) + strlen(body) + 1);
    cr_assert_not_null(bad);
    sprintf(bad, "%.*s.%s%s", (int)(dot1 - tok), tok, body, dot2);

    expect_refused(v, bad, "bad signature");
    free(body);
    free(json);
    json_decref(forged);
    free(tok);
    auth_verifier_destroy(v);
}

Test(auth, alg_none_refused_in_any_case)
{
    static const char *const names[] = {"none", "None", "NONE", "nOnE"};
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    json_t *claims = good_claims();
    char *payload = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    for (size_t i = 0; i < CDR_ARRAY_LEN(names); i++) {
        char header[64];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", names[i]);
        expect_refused(v, unsigned_token(header, payload), "none");
    }
    free(payload);
    auth_verifier_destroy(v);
}

Test(auth, hs256_token_keyed_with_rsa_public_key_refused_by_rs256)
{
    keypair kp;
    keypair_make(&kp, EVP_RSA_gen(2048), "rsa.pub.pem");
    auth_verifier *v = pem_verifier(AUTH_RS256, kp.pub_path);
    /* the public key is no secret: an attacker can use it as an HMAC key */
    char *tok = sign_claims(JWT_ALG_HS256, kp.pub_pem, strlen(kp.pub_pem), good_claims());
    expect_refused(v, tok, "algorithm HS256 not accepted");
    auth_verifier_destroy(v);
    keypair_free(&kp);
}

Test(auth, valid_rs256_token)
{
    keypair kp;
    keypair_make(&kp, EVP_RSA_gen(2048), "rsa.pub.pem");
    auth_verifier *v = pem_verifier(AUTH_RS256, kp.pub_path);
    char *tok = mint(AUTH_RS256, kp.priv_pem, "cdr:write", NOW - 60, 3600, NULL, NULL);
    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, tok, &c, err), AUTH_OK, "%s", err);
    cr_assert_str_eq(c.tenant_id, TENANT_LC);
    cr_assert_str_eq(c.sip_domain, DOMAIN_LC);
    cr_assert(c.scope_write);
    cr_assert_not(c.scope_read);
    cr_assert_eq(c.exp, NOW - 60 + 3600);
    auth_verifier_destroy(v);
    keypair_free(&kp);
}

Test(auth, valid_es256_token)
{
    keypair kp;
    keypair_make(&kp, EVP_EC_gen("P-256"), "ec.pub.pem");
    auth_verifier *v = pem_verifier(AUTH_ES256, kp.pub_path);
    char *tok = mint(AUTH_ES256, kp.priv_pem, "cdr:read", NOW, 600, NULL, NULL);
    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, tok, &c, err), AUTH_OK, "%s", err);
    cr_assert_str_eq(c.tenant_id, TENANT_LC);
    cr_assert(c.scope_read);
    auth_verifier_destroy(v);
    keypair_free(&kp);
}

Test(auth, es256_token_from_another_key_is_bad_signature)
{
    keypair kp, other;
    keypair_make(&kp, EVP_EC_gen("P-256"), "ec.pub.pem");
    keypair_make(&other, EVP_EC_gen("P-256"), "other.pub.pem");
    auth_verifier *v = pem_verifier(AUTH_ES256, kp.pub_path);
    char *tok = mint(AUTH_ES256, other.priv_pem, "cdr:read", NOW, 600, NULL, NULL);
    expect_refused(v, tok, "bad signature");
    auth_verifier_destroy(v);
    keypair_free(&kp);
    keypair_free(&other);
}

Test(auth, rs256_token_refused_by_hs256_verifier)
{
    keypair kp;
    keypair_make(&kp, EVP_RSA_gen(2048), "rsa.pub.pem");
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    char *tok = sign_claims(JWT_ALG_RS256, kp.priv_pem, strlen(kp.priv_pem), good_claims());
    expect_refused(v, tok, "algorithm RS256 not accepted");
    auth_verifier_destroy(v);
    keypair_free(&kp);
}

Test(auth, missing_claims_named)
{
    static const char *const required[] = {"tenant_id", "sip_domain", "exp", "scope"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(required); i++) {
        char want[64];
        snprintf(want, sizeof(want), "claim %s missing", required[i]);
        expect_hs_refused(claims_with(required[i], NULL), want);
    }
}

Test(auth, malformed_tenant_id_refused)
{
    static const char *const bad[] = {
        "not-a-uuid",
        "0f8fad5b-d9cb-469f-a165-70867728950",   /* one digit short */
        "0f8fad5b-d9cb-469f-a165-70867728950e0", /* one digit long */
        "0f8fad5bd-9cb-469f-a165-70867728950e",  /* hyphen misplaced */
        "0f8fad5b-d9cb-469f-a165-70867728950g",  /* not hex */
        "",
    };
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad); i++)
        expect_hs_refused(claims_with("tenant_id", json_string(bad[i])), "tenant_id");
    expect_hs_refused(claims_with("tenant_id", json_integer(42)), "tenant_id");
}

Test(auth, malformed_sip_domain_refused)
{
    char long_label[80];
    memset(long_label, 'a', 64);
    strcpy(long_label + 64, ".example.it");
    const char *const bad[] = {"tenant a.example.it", "-tenant.example.it", "tenant-.example.it",
                               "tenant..example.it",  "tenant.example.it.", ".example.it",
                               "tenant_a.example.it", long_label,           ""};
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad); i++)
        expect_hs_refused(claims_with("sip_domain", json_string(bad[i])), "sip_domain");
}

Test(auth, malformed_exp_refused)
{
    expect_hs_refused(claims_with("exp", json_string("1800000600")), "exp");
}

Test(auth, issuer_and_audience_checked_when_configured)
{
    const struct {
        const char *iss;     /* NULL: absent */
        json_t *aud;         /* NULL: absent */
        const char *refusal; /* a word of the error; NULL: accepted */
    } cases[] = {
        {ISSUER, json_string(AUDIENCE), NULL},
        {ISSUER, json_pack("[s, s]", "cdr-query", AUDIENCE), NULL},
        {"https://evil.example", json_string(AUDIENCE), "issuer"},
        {ISSUER, json_string("cdr-query"), "audience"},
        {ISSUER, json_pack("[s, s]", "cdr-query", "other"), "audience"},
        {NULL, json_string(AUDIENCE), "claim iss missing"},
        {ISSUER, NULL, "claim aud missing"},
    };
    auth_verifier *v = hs_verifier(ISSUER, AUDIENCE, 0);
    for (size_t i = 0; i < CDR_ARRAY_LEN(cases); i++) {
        json_t *claims = claims_with("aud", cases[i].aud);
        if (cases[i].iss)
            json_object_set_new(claims, "iss", json_string(cases[i].iss));
        if (cases[i].refusal) {
            expect_refused(v, sign_hs(claims), cases[i].refusal);
        } else {
            auth_claims c;
            char err[256];
            cr_assert_eq(verify(v, sign_hs(claims), &c, err), AUTH_OK, "case %zu: %s", i, err);
        }
    }
    auth_verifier_destroy(v);
}

Test(auth, issuer_and_audience_ignored_when_not_configured)
{
    auth_claims c;
    json_t *claims = good_claims();
    json_object_set_new(claims, "iss", json_string("https://anyone.example"));
    json_object_set_new(claims, "aud", json_string("anything"));
    cr_assert_eq(verify_hs(claims, &c), AUTH_OK);
}

Test(auth, minted_token_round_trips)
{
    auth_verifier *v = hs_verifier(ISSUER, AUDIENCE, 0);
    char *tok = mint(AUTH_HS256, SECRET, "cdr:read cdr:write", NOW, 300, ISSUER, AUDIENCE);
    auth_claims c;
    char err[256];
    cr_assert_eq(verify(v, tok, &c, err), AUTH_OK, "%s", err);
    cr_assert_str_eq(c.tenant_id, TENANT_LC);
    cr_assert_str_eq(c.sip_domain, DOMAIN_LC);
    cr_assert(c.scope_read && c.scope_write);
    cr_assert_eq(c.exp, NOW + 300);
    auth_verifier_destroy(v);
}

Test(auth, mint_refuses_what_no_verifier_accepts)
{
    char err[256];
    const unsigned char *key = (const unsigned char *)SECRET;
    cr_assert_null(auth_mint(AUTH_HS256, key, 31, TENANT, DOMAIN, "cdr:read", NOW, 60, NULL, NULL,
                             err, sizeof(err)));
    cr_assert_not_null(strstr(err, "shorter"), "%s", err);
    cr_assert_null(auth_mint(AUTH_HS256, key, strlen(SECRET), "tenant-1", DOMAIN, "cdr:read", NOW,
                             60, NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "tenant_id"), "%s", err);
    cr_assert_null(auth_mint(AUTH_HS256, key, strlen(SECRET), TENANT, DOMAIN, "cdr:read", NOW, 0,
                             NULL, NULL, err, sizeof(err)));
    cr_assert_null(auth_mint(AUTH_RS256, key, strlen(SECRET), TENANT, DOMAIN, "cdr:read", NOW, 60,
                             NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "private key"), "%s", err);
}

Test(auth, malformed_tokens_refused)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    json_t *claims_keep = good_claims();
    static const char *const bad[] = {"abc",        "abc.def", "a.b.c.d", "..",
                                      "eyJ@.e30.x", "e30..x",  "a.e30.x"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad); i++)
        expect_refused(v, strdup(bad[i]), "malformed");
    /* a header that is not a JSON object, or names no algorithm */
    expect_refused(v, unsigned_token("[1]", "{}"), "malformed");
    expect_refused(v, unsigned_token("{}", "{}"), "algorithm");
    /* the pinned algorithm, but no signature */
    char *payload = json_dumps(claims_keep, JSON_COMPACT);
    expect_refused(v, unsigned_token("{\"alg\":\"HS256\"}", payload), "malformed");
    free(payload);
    json_decref(claims_keep);

    auth_claims c;
    char err[256];
    cr_assert_eq(auth_verify(v, "", NOW, &c, err, sizeof(err)), AUTH_MISSING);
    cr_assert_eq(auth_verify(v, NULL, NOW, &c, err, sizeof(err)), AUTH_MISSING);
    auth_verifier_destroy(v);
}

Test(auth, oversized_token_refused)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    char *padding = malloc(9000);
    cr_assert_not_null(padding);
    memset(padding, 'x', 8999);
    padding[8999] = '\0';
    json_t *claims = claims_with("padding", json_string(padding));
    free(padding);
    expect_refused(v, sign_hs(claims), "too long");
    auth_verifier_destroy(v);
}

Test(auth, bearer_token)
{
    const char *h = "Bearer abc.DEF-_.ghi";
    cr_assert_eq(auth_bearer_token(h), h + 7);
    h = "bearer tok";
    cr_assert_eq(auth_bearer_token(h), h + 7);
    h = "BEARER   tok";
    cr_assert_eq(auth_bearer_token(h), h + 9);
    h = "Bearer dG9r==";
    cr_assert_eq(auth_bearer_token(h), h + 7);

    static const char *const bad[] = {
        "",          "Bearer",      "Bearer ",    "Bearer   ",   "Bearer tok ", "Bearer a b",
        "Bearertok", "Bearer\ttok", "Basic dG9r", " Bearer tok", "Bearer to=k", "Bearer tok\n"};
    for (size_t i = 0; i < CDR_ARRAY_LEN(bad); i++)
        cr_assert_null(auth_bearer_token(bad[i]), "accepted '%s'", bad[i]);
    cr_assert_null(auth_bearer_token(NULL));
}

Test(auth, parse_alg)
{
    auth_alg a;
    cr_assert_eq(auth_parse_alg("HS256", &a), 0);
    cr_assert_eq(a, AUTH_HS256);
    cr_assert_eq(auth_parse_alg("RS256", &a), 0);
    cr_assert_eq(a, AUTH_RS256);
    cr_assert_eq(auth_parse_alg("ES256", &a), 0);
    cr_assert_eq(a, AUTH_ES256);
    cr_assert_eq(auth_parse_alg("none", &a), -1);
    cr_assert_eq(auth_parse_alg("HS512", &a), -1);
    cr_assert_eq(auth_parse_alg("", &a), -1);
}

static void expect_create_fails(const auth_config *cfg, const char *word)
{
    char err[256] = "";
    auth_verifier *v = auth_verifier_create(cfg, err, sizeof(err));
    cr_assert_null(v, "created, expected '%s'", word);
    cr_assert_not_null(strstr(err, word), "error '%s' does not mention '%s'", err, word);
}

Test(auth, create_refuses_short_secret)
{
    auth_config cfg = {.alg = AUTH_HS256, .secret = "only-31-bytes-long-0123456789ab"};
    cr_assert_eq(strlen(cfg.secret), 31);
    expect_create_fails(&cfg, "shorter than 32");
    cfg.secret = NULL;
    expect_create_fails(&cfg, "secret");
}

Test(auth, create_refuses_missing_files)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/absent.pem", tmpdir);
    auth_config cfg = {.alg = AUTH_HS256, .secret_file = path};
    expect_create_fails(&cfg, "absent.pem");
    cfg = (auth_config){.alg = AUTH_RS256, .pubkey_file = path};
    expect_create_fails(&cfg, "absent.pem");
    cfg = (auth_config){.alg = AUTH_ES256};
    expect_create_fails(&cfg, "public key file");
}

Test(auth, secret_file_drops_one_trailing_newline)
{
    char path[PATH_MAX];
    write_file("secret", SECRET "\n", strlen(SECRET) + 1, path);
    auth_config cfg = {.alg = AUTH_HS256, .secret_file = path};
    char err[256] = "";
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    auth_claims c;
    cr_assert_eq(verify(v, sign_hs(good_claims()), &c, err), AUTH_OK, "%s", err);
    auth_verifier_destroy(v);

    /* 31 bytes and a newline: the newline does not count towards the length */
    write_file("short", "only-31-bytes-long-0123456789ab\n", 32, path);
    expect_create_fails(&cfg, "shorter");
}

Test(auth, create_refuses_key_of_wrong_type)
{
    keypair rsa, p384;
    keypair_make(&rsa, EVP_RSA_gen(2048), "rsa.pub.pem");
    keypair_make(&p384, EVP_EC_gen("P-384"), "p384.pub.pem");
    auth_config cfg = {.alg = AUTH_ES256, .pubkey_file = rsa.pub_path};
    expect_create_fails(&cfg, "not an EC public key");
    cfg.pubkey_file = p384.pub_path;
    expect_create_fails(&cfg, "P-256");
    cfg = (auth_config){.alg = AUTH_RS256, .pubkey_file = p384.pub_path};
    expect_create_fails(&cfg, "not an RSA public key");

    char path[PATH_MAX];
    write_file("private.pem", rsa.priv_pem, strlen(rsa.priv_pem), path);
    cfg.pubkey_file = path;
    expect_create_fails(&cfg, "no PEM public key");
    keypair_free(&rsa);
    keypair_free(&p384);
}

Test(auth, create_refuses_negative_leeway)
{
    auth_config cfg = {.alg = AUTH_HS256, .secret = SECRET, .leeway_s = -1};
    expect_create_fails(&cfg, "leeway");
}

struct shared_verify {
    const auth_verifier *v;
    const char *tok;
    int ok;
};

static void *verify_many(void *arg)
{
    struct shared_verify *s = arg;
    for (int i = 0; i < 200; i++) {
        auth_claims c;
        char err[128];
        if (auth_verify(s->v, s->tok, NOW, &c, err, sizeof(err)) == AUTH_OK &&
            strcmp(c.tenant_id, TENANT_LC) == 0)
            s->ok++;
    }
    return NULL;
}

Test(auth, one_verifier_shared_by_threads)
{
    auth_verifier *v = hs_verifier(NULL, NULL, 0);
    char *tok = sign_hs(good_claims());
    pthread_t th[4];
    struct shared_verify s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct shared_verify){.v = v, .tok = tok};
        cr_assert_eq(pthread_create(&th[i], NULL, verify_many, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        cr_assert_eq(s[i].ok, 200);
    }
    free(tok);
    auth_verifier_destroy(v);
}
