/* auth_options.h - the JWT keys every program's config table shares, and their conversion. */
#ifndef CDR_AUTH_OPTIONS_H
#define CDR_AUTH_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "auth.h"
#include "config.h"

/* The JWT part of a program's config struct, filled by AUTH_CFG_OPTIONS. */
typedef struct auth_settings {
    char *alg;
    char *secret;
    char *secret_file;
    char *pubkey_file;
    char *issuer;
    char *audience;
    long long leeway_s;
} auth_settings;

/* Expands to the cfg_option entries of the JWT keys for the auth_settings member 'member' of
 * the config struct 'type'. */
#define AUTH_CFG_OPTIONS(type, member)                                                             \
    {"jwt-alg",                                                                                    \
     "CDR_JWT_ALG",                                                                                \
     CFG_ENUM,                                                                                     \
     "HS256",                                                                                      \
     0,                                                                                            \
     0,                                                                                            \
     AUTH_ALG_CHOICES,                                                                             \
     offsetof(type, member.alg),                                                                   \
     "JWT algorithm accepted (pinned; the token's header never "                                   \
     "chooses)"},                                                                                  \
        {"jwt-secret",                                                                             \
         "CDR_JWT_SECRET",                                                                         \
         CFG_STRING,                                                                               \
         NULL,                                                                                     \
         0,                                                                                        \
         4096,                                                                                     \
         NULL,                                                                                     \
         offsetof(type, member.secret),                                                            \
         "HS256 shared secret (at least 32 bytes)"},                                               \
        {"jwt-secret-file",                                                                        \
         "CDR_JWT_SECRET_FILE",                                                                    \
         CFG_STRING,                                                                               \
         NULL,                                                                                     \
         0,                                                                                        \
         4096,                                                                                     \
         NULL,                                                                                     \
         offsetof(type, member.secret_file),                                                       \
         "read the HS256 secret from this file"},                                                  \
        {"jwt-public-key-file",                                                                    \
         "CDR_JWT_PUBLIC_KEY_FILE",                                                                \
         CFG_STRING,                                                                               \
         NULL,                                                                                     \
         0,                                                                                        \
         4096,                                                                                     \
         NULL,                                                                                     \
         offsetof(type, member.pubkey_file),                                                       \
         "PEM public key for RS256/ES256"},                                                        \
        {"jwt-issuer",                                                                             \
         "CDR_JWT_ISSUER",                                                                         \
         CFG_STRING,                                                                               \
         NULL,                                                                                     \
         0,                                                                                        \
         1024,                                                                                     \
         NULL,                                                                                     \
         offsetof(type, member.issuer),                                                            \
         "when set, tokens must carry this iss"},                                                  \
        {"jwt-audience",                                                                           \
         "CDR_JWT_AUDIENCE",                                                                       \
         CFG_STRING,                                                                               \
         NULL,                                                                                     \
         0,                                                                                        \
         1024,                                                                                     \
         NULL,                                                                                     \
         offsetof(type, member.audience),                                                          \
         "when set, tokens' aud must contain this"},                                               \
    {                                                                                              \
        "jwt-leeway", "CDR_JWT_LEEWAY_S", CFG_INT, "30", 0, 600, NULL,                             \
            offsetof(type, member.leeway_s), "seconds of clock skew tolerated on exp and nbf"      \
    }

/* Reads the CDR_JWT_ALG setting 's' (NULL means HS256) into 'out'. Returns 0, or -1 with 'err'
 * naming the setting and the value. */
int auth_alg_setting(const char *s, auth_alg *out, char *err, size_t errlen) CDR_MUST_CHECK;

/* Creates the verifier the settings describe. Returns NULL with the reason in 'err'. */
auth_verifier *auth_settings_verifier(const auth_settings *s, char *err, size_t errlen);

/* The log-level key every program has, for the char * member 'member' of 'type'. */
#define LOG_CFG_OPTION(type, member)                                                               \
    {                                                                                              \
        "log-level", "CDR_LOG_LEVEL", CFG_ENUM, "info", 0, 0, LOG_LEVEL_CHOICES,                   \
            offsetof(type, member), "least severe level logged"                                    \
    }

#endif
