/* The request arena: every allocation a request makes lives here and is
 * released at once when the request ends; non-memory resources (query
 * results, XML documents) register a cleanup that runs at reset. */
#ifndef ITPM_ARENA_H
#define ITPM_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena arena_t;
typedef void (*arena_cleanup_fn)(void *data);

arena_t *arena_create(size_t chunk_size);
void arena_destroy(arena_t *a);
/* Runs the cleanups (newest first) and frees all but the first chunk. */
void arena_reset(arena_t *a);
void *arena_alloc(arena_t *a, size_t n);
void *arena_calloc(arena_t *a, size_t n);
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_on_reset(arena_t *a, arena_cleanup_fn fn, void *data);
/* Bytes held by the arena beyond its first chunk (for tests and metrics). */
size_t arena_extra_bytes(const arena_t *a);

#endif
