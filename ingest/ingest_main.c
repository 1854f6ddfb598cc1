/* ingest_main.c - cdr-ingest: parses its configuration; the server itself comes with its component
 * files. */
#include <stddef.h>
#include <stdio.h>

#include "auth_options.h"
#include "program.h"
#include "ingest_config.h"

int main(int argc, char **argv)
{
    ingest_config conf = {0};
    auth_verifier *verifier = NULL;
    int rc = program_start(&ingest_cfg_table, &conf, argc, argv, NULL,
                           offsetof(ingest_config, log_level));
    if (rc != PROGRAM_CONTINUE)
        goto done;
    char err[512];
    verifier = auth_settings_verifier(&conf.auth, err, sizeof(err));
    if (!verifier) {
        fprintf(stderr, "cdr-ingest: %s\n", err);
        rc = PROGRAM_EXIT_USAGE;
        goto done;
    }
    if (conf.check_config) {
        printf("cdr-ingest: configuration is valid\n");
        rc = 0;
        goto done;
    }
    fprintf(stderr, "cdr-ingest: the server is not available in this build\n");
    rc = PROGRAM_EXIT_UNAVAILABLE;
done:
    auth_verifier_destroy(verifier);
    cfg_free(&ingest_cfg_table, &conf);
    return rc;
}
