/* query_main.c - cdr-query: parses its configuration; the server itself comes with its component
 * files. */
#include <stddef.h>
#include <stdio.h>

#include "auth_options.h"
#include "program.h"
#include "query_config.h"

int main(int argc, char **argv)
{
    query_config conf = {0};
    auth_verifier *verifier = NULL;
    int rc =
        program_start(&query_cfg_table, &conf, argc, argv, NULL, offsetof(query_config, log_level));
    if (rc != PROGRAM_CONTINUE)
        goto done;
    char err[512];
    verifier = auth_settings_verifier(&conf.auth, err, sizeof(err));
    if (!verifier) {
        fprintf(stderr, "cdr-query: %s\n", err);
        rc = PROGRAM_EXIT_USAGE;
        goto done;
    }
    if (conf.check_config) {
        printf("cdr-query: configuration is valid\n");
        rc = 0;
        goto done;
    }
    fprintf(stderr, "cdr-query: the server is not available in this build\n");
    rc = PROGRAM_EXIT_UNAVAILABLE;
done:
    auth_verifier_destroy(verifier);
    cfg_free(&query_cfg_table, &conf);
    return rc;
}
