/* writer_main.c - cdr-writer: parses its configuration; the server itself comes with its component
 * files. */
#include <stddef.h>
#include <stdio.h>

#include "program.h"
#include "writer_config.h"

int main(int argc, char **argv)
{
    writer_config conf = {0};

    int rc = program_start(&writer_cfg_table, &conf, argc, argv, NULL,
                           offsetof(writer_config, log_level));
    if (rc != PROGRAM_CONTINUE)
        goto done;

    if (conf.check_config) {
        printf("cdr-writer: configuration is valid\n");
        rc = 0;
        goto done;
    }
    fprintf(stderr, "cdr-writer: the server is not available in this build\n");
    rc = PROGRAM_EXIT_UNAVAILABLE;
done:

    cfg_free(&writer_cfg_table, &conf);
    return rc;
}
