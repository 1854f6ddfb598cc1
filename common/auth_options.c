/* auth_options.c - turns the shared JWT config keys into a verifier. */
#include "auth_options.h"

#include <string.h>

auth_verifier *auth_settings_verifier(const auth_settings *s, char *err, size_t errlen)
{
    auth_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (auth_parse_alg(s->alg ? s->alg : "HS256", &cfg.alg) != 0) {
        snprintf(err, errlen, "CDR_JWT_ALG: unknown algorithm '%s'", s->alg);
        return NULL;
    }
    cfg.secret = s->secret;
    cfg.secret_file = s->secret_file;
    cfg.pubkey_file = s->pubkey_file;
    cfg.issuer = s->issuer;
    cfg.audience = s->audience;
    cfg.leeway_s = (int)s->leeway_s;
    return auth_verifier_create(&cfg, err, errlen);
}
