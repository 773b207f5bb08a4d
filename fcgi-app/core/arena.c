/* Bump allocator over a list of chunks; large requests get a chunk of their
 * own. The first chunk stays between requests so a steady worker does not
 * touch malloc for small requests. */
#include "core/arena.h"

#include "core/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    struct chunk *next;
    size_t size;
    size_t used;
    max_align_t data[];
} chunk_t;

typedef struct cleanup {
    struct cleanup *next;
    arena_cleanup_fn fn;
    void *data;
} cleanup_t;

struct arena {
    chunk_t *head;  /* current chunk */
    chunk_t *first; /* kept across resets */
    cleanup_t *cleanups;
    size_t chunk_size;
    size_t extra;
};

static chunk_t *chunk_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(chunk_t))
        abort(); /* no request can need this much; treat it as out of memory */
    chunk_t *c = xmalloc(sizeof *c + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

arena_t *arena_create(size_t chunk_size)
{
    arena_t *a = xcalloc(1, sizeof *a);
    a->chunk_size = chunk_size;
    a->first = a->head = chunk_new(chunk_size);
    return a;
}

void arena_reset(arena_t *a)
{
    cleanup_t *c = a->cleanups;
    a->cleanups = NULL;
    while (c != NULL) {
        cleanup_t *next = c->next;
        c->fn(c->data);
        c = next;
    }
    chunk_t *k = a->head;
    while (k != a->first) {
        chunk_t *next = k->next;
        free(k);
        k = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->extra = 0;
}

void arena_destroy(arena_t *a)
{
    if (a == NULL)
        return;
    arena_reset(a);
    free(a->first);
    free(a);
}

void *arena_alloc(arena_t *a, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    if (n > SIZE_MAX - align)
        abort();
    n = (n + align - 1) & ~(align - 1);
    if (a->head->size - a->head->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        chunk_t *c = chunk_new(size);
        c->next = a->head;
        a->head = c;
        a->extra += size;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

void *arena_calloc(arena_t *a, size_t n)
{
    void *p = arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return arena_strdup(a, "");
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_on_reset(arena_t *a, arena_cleanup_fn fn, void *data)
{
    cleanup_t *c = arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t arena_extra_bytes(const arena_t *a)
{
    return a->extra;
}
