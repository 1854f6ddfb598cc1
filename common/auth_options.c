/* auth_options.c - turns the shared JWT config keys into a verifier. */
#include "auth_options.h"

#include <string.h>

int auth_alg_setting(const char *s, auth_alg *out, char *err, size_t errlen)
{
    if (auth_parse_alg(s ? s : "HS256", out) != 0) {
        snprintf(err, errlen, "CDR_JWT_ALG: unknown algorithm '%s'", s);
        return -1;
    }
    return 0;
}

auth_verifier *auth_settings_verifier(const auth_settings *s, char *err, size_t errlen)
{
    auth_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (auth_alg_setting(s->alg, &cfg.alg, err, errlen) != 0)
        return NULL;
    cfg.secret = s->secret;
    cfg.secret_file = s->secret_file;
    cfg.pubkey_file = s->pubkey_file;
    cfg.issuer = s->issuer;
    cfg.audience = s->audience;
    cfg.leeway_s = (int)s->leeway_s;
    return auth_verifier_create(&cfg, err, errlen);
}
