/* program.h - the start-up every cdrflow program shares: config, --help, log level. */
#ifndef CDR_PROGRAM_H
#define CDR_PROGRAM_H

#include <stddef.h>

#include "config.h"

#define PROGRAM_CONTINUE         (-1)
#define PROGRAM_EXIT_USAGE       2  /* bad configuration or arguments */
#define PROGRAM_EXIT_UNAVAILABLE 69 /* sysexits' EX_UNAVAILABLE */

/* Loads 't' into 'conf' (environment, then flags), prints --help when asked, sets the log
 * level from the char * field at 'log_level_offset' of 'conf', and logs one warning per CDR_*
 * environment variable 't' does not know (it may belong to another program).
 * Returns PROGRAM_CONTINUE when the program should go on, otherwise the exit status it should
 * return now: 0 after --help, PROGRAM_EXIT_USAGE after a configuration error (printed on
 * stderr as "PROGRAM: message"). */
int program_start(const cfg_table *t, void *conf, int argc, char **argv, int *n_args,
                  size_t log_level_offset);

#endif
