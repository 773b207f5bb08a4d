/* The XML writer: start tags, attributes, escaped text and end tags written
 * straight into one growing buffer. libxml2's text writer, used before,
 * allocated per element and copied every string twice, and writing a
 * project cost more than reading it from PostgreSQL; what a response needs
 * of it is a stack of open elements and escaping, kept here. */
#include "xml/xml_out.h"

#include "core/log.h"
#include "core/utf8.h"

#include <libxml/xmlstring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than any document of the API (a batch result is three levels). */
#define XML_OUT_DEPTH 32
/* A streamed document is handed to its writer in pieces of about this size. */
#define XML_OUT_CHUNK 16384

struct xml_out {
    char *buf;
    size_t len;
    size_t cap;
    xml_out_write_fn write; /* NULL: the whole document stays in buf */
    void *ctx;
    const char *open[XML_OUT_DEPTH];
    int depth;
    int in_tag; /* the innermost start tag is not closed yet: attributes may follow */
    int failed;
};

static void xml_out_release(void *data)
{
    xml_out_t *x = data;
    free(x->buf);
    x->buf = NULL;
}

static void flush(xml_out_t *x)
{
    if (x->failed || x->len == 0)
        return;
    size_t off = 0;
    while (off < x->len) {
        size_t n = x->len - off > XML_OUT_CHUNK ? XML_OUT_CHUNK : x->len - off;
        if (x->write(x->ctx, x->buf + off, (int)n) != (int)n) {
            x->failed = 1;
            return;
        }
        off += n;
    }
    x->len = 0;
}

static void put(xml_out_t *x, const char *s, size_t n)
{
    if (x->failed)
        return;
    if (x->cap - x->len < n) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap - x->len < n) {
            if (cap > SIZE_MAX / 2) {
                x->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *grown = realloc(x->buf, cap);
        if (grown == NULL) {
            x->failed = 1;
            return;
        }
        x->buf = grown;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, s, n);
    x->len += n;
    if (x->write != NULL && x->len >= XML_OUT_CHUNK)
        flush(x);
}

static void put_str(xml_out_t *x, const char *s)
{
    put(x, s, strlen(s));
}

/* Writes s escaped for text content (in_attr 0) or a double-quoted
 * attribute value (1), in runs between the characters that need it; the
 * same references libxml2 writes. A control character XML 1.0 does not
 * allow, or bytes that are not UTF-8 (a client's text quoted in a problem,
 * say), would make the document ill-formed: each is written as U+FFFD. */
static void put_escaped(xml_out_t *x, const char *s, int in_attr)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        const char *ref = NULL;
        size_t len = 1;
        switch (u[i]) {
        case '&':
            ref = "&amp;";
            break;
        case '<':
            ref = "&lt;";
            break;
        case '>':
            ref = "&gt;";
            break;
        case '\r':
            ref = "&#13;";
            break;
        case '"':
            ref = "&quot;";
            break;
        case '\n':
            ref = in_attr ? "&#10;" : NULL;
            break;
        case '\t':
            ref = in_attr ? "&#9;" : NULL;
            break;
        default: {
            unsigned c = 0;
            size_t got = utf8_at(u + i, n - i, &c);
            len = got != 0 ? got : 1;
            if (got == 0 || c < 0x20 || c == 0xfffe || c == 0xffff)
                ref = replacement;
            break;
        }
        }
        if (ref != NULL) {
            put(x, s + run, i - run);
            put_str(x, ref);
            run = i + len;
        }
        i += len;
    }
    put(x, s + run, n - run);
}

static void close_start_tag(xml_out_t *x)
{
    if (x->in_tag) {
        put(x, ">", 1);
        x->in_tag = 0;
    }
}

static xml_out_t *start_document(arena_t *a, const char *root, const char *ns,
                                 xml_out_write_fn write, void *ctx)
{
    xml_out_t *x = arena_calloc(a, sizeof *x);
    arena_on_reset(a, xml_out_release, x);
    x->write = write;
    x->ctx = ctx;
    put_str(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml_out_start(x, root);
    xml_out_attr(x, "xmlns", ns);
    return x;
}

xml_out_t *xml_out_begin(arena_t *a, const char *root, const char *ns)
{
    return start_document(a, root, ns, NULL, NULL);
}

xml_out_t *xml_out_stream(arena_t *a, const char *root, const char *ns, xml_out_write_fn write,
                          void *ctx)
{
    return start_document(a, root, ns, write, ctx);
}

void xml_out_start(xml_out_t *x, const char *name)
{
    if (x->failed)
        return;
    if (x->depth == XML_OUT_DEPTH) {
        x->failed = 1;
        return;
    }
    close_start_tag(x);
    put(x, "<", 1);
    put_str(x, name);
    x->open[x->depth++] = name;
    x->in_tag = 1;
}

void xml_out_end(xml_out_t *x)
{
    if (x->failed)
        return;
    if (x->depth == 0) {
        x->failed = 1;
        return;
    }
    const char *name = x->open[--x->depth];
    if (x->in_tag) {
        put(x, "/>", 2);
        x->in_tag = 0;
        return;
    }
    put(x, "</", 2);
    put_str(x, name);
    put(x, ">", 1);
}

void xml_out_attr(xml_out_t *x, const char *name, const char *value)
{
    if (x->failed || value == NULL)
        return;
    if (!x->in_tag) {
        x->failed = 1;
        return;
    }
    put(x, " ", 1);
    put_str(x, name);
    put(x, "=\"", 2);
    put_escaped(x, value, 1);
    put(x, "\"", 1);
}

void xml_out_attr_int(xml_out_t *x, const char *name, long long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    xml_out_attr(x, name, buf);
}

void xml_out_text(xml_out_t *x, const char *text)
{
    if (x->failed || text == NULL)
        return;
    if (x->depth == 0) {
        x->failed = 1;
        return;
    }
    close_start_tag(x);
    put_escaped(x, text, 0);
}

void xml_out_text_elem(xml_out_t *x, const char *name, const char *text)
{
    if (x->failed || text == NULL)
        return;
    xml_out_start(x, name);
    xml_out_text(x, text);
    xml_out_end(x);
}

void xml_out_int_elem(xml_out_t *x, const char *name, long long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    xml_out_text_elem(x, name, buf);
}

static void end_all(xml_out_t *x)
{
    while (!x->failed && x->depth > 0)
        xml_out_end(x);
    put(x, "\n", 1);
}

int xml_out_close(xml_out_t *x)
{
    end_all(x);
    flush(x);
    return x->failed ? -1 : 0;
}

int xml_out_finish(xml_out_t *x, const char **body, size_t *len)
{
    end_all(x);
    /* A C string too, for callers that treat it as one. */
    put(x, "", 1);
    if (x->failed) {
        log_error("xml writer failed (too deep, an attribute out of place, or out of memory)");
        return -1;
    }
    *body = x->buf;
    *len = x->len - 1;
    return 0;
}
