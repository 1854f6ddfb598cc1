/* json_arena.c - the per-thread bump allocator jansson uses while a request body is parsed. */
#include "json_arena.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN 16

typedef struct arena {
    char *base;
    size_t used;
    size_t cap;
    bool entered;
} arena;

static _Thread_local arena thread_arena;

static void *arena_malloc(size_t n)
{
    arena *a = &thread_arena;
    if (a->entered) {
        size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        if (need >= n && need <= a->cap - a->used) {
            void *p = a->base + a->used;
            a->used += need;
            return p;
        }
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    const arena *a = &thread_arena;
    if ((uintptr_t)p - (uintptr_t)a->base < a->cap)
        return; /* reclaimed wholesale by json_arena_reset() */
    free(p);
}

int json_arena_install(void)
{
    json_set_alloc_funcs(arena_malloc, arena_free);
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    return m == arena_malloc && f == arena_free ? 0 : -1;
}

int json_arena_thread_init(size_t bytes)
{
    arena *a = &thread_arena;
    free(a->base);
    a->base = NULL;
    a->used = a->cap = 0;
    a->entered = false;
    if (bytes == 0)
        return 0;
    /* Aligned so that every bumped block is aligned like malloc's. */
    if (posix_memalign((void **)&a->base, ARENA_ALIGN, bytes) != 0) {
        a->base = NULL;
        return -1;
    }
    a->cap = bytes;
    return 0;
}

void json_arena_enter(void)
{
    thread_arena.entered = thread_arena.base != NULL;
}

void json_arena_leave(void)
{
    thread_arena.entered = false;
}

void json_arena_reset(void)
{
    thread_arena.used = 0;
}
