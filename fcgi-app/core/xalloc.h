/* Allocation that never returns NULL: out of memory is logged and aborts the
 * process (a worker is then replaced by the master), so callers need no
 * NULL checks. */
#ifndef ITPM_XALLOC_H
#define ITPM_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
