/* XML documents written into a buffer freed when the request arena resets.
 * Failures are sticky: check the result of xml_out_finish() or
 * xml_out_close() once at the end instead of after every element. */
#ifndef ITPM_XML_OUT_H
#define ITPM_XML_OUT_H

#include "core/arena.h"

#include <stddef.h>

typedef struct xml_out xml_out_t;

/* Starts a document whose root element is root in namespace ns. */
xml_out_t *xml_out_begin(arena_t *a, const char *root, const char *ns);
void xml_out_start(xml_out_t *x, const char *name);
void xml_out_end(xml_out_t *x);
void xml_out_attr(xml_out_t *x, const char *name, const char *value);
void xml_out_attr_int(xml_out_t *x, const char *name, long long value);
/* <name>text</name>; nothing when text is NULL. */
void xml_out_text_elem(xml_out_t *x, const char *name, const char *text);
void xml_out_int_elem(xml_out_t *x, const char *name, long long value);
/* The same, written as it goes through write (a document too large to hold:
 * a batch result); finish it with xml_out_close(). */
typedef int (*xml_out_write_fn)(void *ctx, const char *buf, int len);
xml_out_t *xml_out_stream(arena_t *a, const char *root, const char *ns, xml_out_write_fn write,
                          void *ctx);
/* Text content of the open element. Values are escaped; a character XML
 * cannot hold (a control, bytes that are not UTF-8) is written as U+FFFD. */
void xml_out_text(xml_out_t *x, const char *text);
/* Ends a streamed document and flushes it; 0 or -1. */
int xml_out_close(xml_out_t *x);
/* Closes every open element; on success points body at the document (valid
 * until the arena resets) and returns 0, else -1. */
int xml_out_finish(xml_out_t *x, const char **body, size_t *len);

#endif
