/* pg_stack.h - the test stack's PostgreSQL taken away and brought back by a test, as an outage:
 * stopped with pg_ctl and started again exactly as tests/support/teststack started it (same data
 * directory, so the same configuration, port and socket, and the same log). Like proc.h, these
 * end the calling test through Criterion's assertions when something fails. */
#ifndef CDR_PG_STACK_H
#define CDR_PG_STACK_H

/* Stops the stack's PostgreSQL in fast mode (sessions are cut, then a clean shutdown) and
 * returns once it has stopped. */
void pg_stack_stop(void);

/* Starts the stack's PostgreSQL again and returns once it accepts connections. */
void pg_stack_start(void);

#endif
