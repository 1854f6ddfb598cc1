/* json_arena.h - a per-thread bump allocator for the JSON values of one request body. */
#ifndef CDR_JSON_ARENA_H
#define CDR_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

/* Parsing a CDR makes jansson allocate a dozen small blocks (values, keys, hash buckets) that
 * all die together when the item is released; with malloc/free that bookkeeping is a fifth of
 * the ingest CPU. While a thread's arena is entered, jansson's allocations on that thread come
 * from one block by bumping a pointer and its frees of them cost nothing; the block is reused
 * from the start by json_arena_reset(). Allocations that do not fit, and every allocation on a
 * thread outside the arena, go to malloc as usual.
 *
 * Rules: json_arena_install() once at start-up before any thread uses jansson; json_arena_enter()
 * only around calls whose values are all released before json_arena_reset() (a value made in
 * the arena must never outlive the reset, nor be released on another thread). */

/* Makes jansson allocate through the arena functions. Returns 0, or -1 when jansson refused. */
int json_arena_install(void) CDR_MUST_CHECK;

/* Gives the calling thread an arena of 'bytes' (0 releases it). Returns 0 or -1 (memory). */
int json_arena_thread_init(size_t bytes) CDR_MUST_CHECK;

/* Starts / stops taking jansson's allocations of this thread from its arena. No-ops on a
 * thread without an arena. */
void json_arena_enter(void);
void json_arena_leave(void);

/* Forgets everything allocated in this thread's arena: its values must all be released. */
void json_arena_reset(void);

#endif
