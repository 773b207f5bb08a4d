/* libxml2 text writer bound to the request arena. */
#include "xml_out.h"

#include "log.h"

#include <libxml/xmlstring.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>

struct xml_out {
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
    int failed;
};

static void xml_out_release(void *data)
{
    xml_out_t *x = data;
    if (x->w != NULL)
        xmlFreeTextWriter(x->w);
    if (x->buf != NULL)
        xmlBufferFree(x->buf);
}

static void check(xml_out_t *x, int rc)
{
    if (rc < 0)
        x->failed = 1;
}

/* libxml2 2.9's writer copies text as given: invalid UTF-8 or a control
 * character XML 1.0 does not allow would make an ill-formed document. */
static int text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return xmlCheckUTF8((const xmlChar *)s) != 0;
}

xml_out_t *xml_out_begin(arena_t *a, const char *root, const char *ns)
{
    xml_out_t *x = arena_calloc(a, sizeof *x);
    arena_on_reset(a, xml_out_release, x);
    x->buf = xmlBufferCreate();
    if (x->buf == NULL) {
        x->failed = 1;
        return x;
    }
    x->w = xmlNewTextWriterMemory(x->buf, 0);
    if (x->w == NULL) {
        x->failed = 1;
        return x;
    }
    check(x, xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL));
    check(x, xmlTextWriterStartElementNS(x->w, NULL, (const xmlChar *)root, (const xmlChar *)ns));
    return x;
}

xml_out_t *xml_out_stream(arena_t *a, const char *root, const char *ns, xml_out_write_fn write,
                          void *ctx)
{
    xml_out_t *x = arena_calloc(a, sizeof *x);
    arena_on_reset(a, xml_out_release, x);
    xmlOutputBufferPtr out = xmlOutputBufferCreateIO(write, NULL, ctx, NULL);
    if (out == NULL) {
        x->failed = 1;
        return x;
    }
    /* The writer owns out from here, and closes it when freed. */
    x->w = xmlNewTextWriter(out);
    if (x->w == NULL) {
        xmlOutputBufferClose(out);
        x->failed = 1;
        return x;
    }
    check(x, xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL));
    check(x, xmlTextWriterStartElementNS(x->w, NULL, (const xmlChar *)root, (const xmlChar *)ns));
    return x;
}

int xml_out_close(xml_out_t *x)
{
    if (!x->failed)
        check(x, xmlTextWriterEndDocument(x->w));
    if (!x->failed)
        check(x, xmlTextWriterFlush(x->w));
    return x->failed ? -1 : 0;
}

void xml_out_text(xml_out_t *x, const char *text)
{
    if (x->failed || text == NULL)
        return;
    if (!text_ok(text)) {
        x->failed = 1;
        return;
    }
    check(x, xmlTextWriterWriteString(x->w, (const xmlChar *)text));
}

void xml_out_start(xml_out_t *x, const char *name)
{
    if (!x->failed)
        check(x, xmlTextWriterStartElement(x->w, (const xmlChar *)name));
}

void xml_out_end(xml_out_t *x)
{
    if (!x->failed)
        check(x, xmlTextWriterEndElement(x->w));
}

void xml_out_attr(xml_out_t *x, const char *name, const char *value)
{
    if (x->failed || value == NULL)
        return;
    if (!text_ok(value)) {
        x->failed = 1;
        return;
    }
    check(x, xmlTextWriterWriteAttribute(x->w, (const xmlChar *)name, (const xmlChar *)value));
}

void xml_out_attr_int(xml_out_t *x, const char *name, long long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    xml_out_attr(x, name, buf);
}

void xml_out_text_elem(xml_out_t *x, const char *name, const char *text)
{
    if (x->failed || text == NULL)
        return;
    if (!text_ok(text)) {
        x->failed = 1;
        return;
    }
    check(x, xmlTextWriterWriteElement(x->w, (const xmlChar *)name, (const xmlChar *)text));
}

void xml_out_int_elem(xml_out_t *x, const char *name, long long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    xml_out_text_elem(x, name, buf);
}

int xml_out_finish(xml_out_t *x, const char **body, size_t *len)
{
    if (!x->failed)
        check(x, xmlTextWriterEndDocument(x->w));
    if (!x->failed)
        check(x, xmlTextWriterFlush(x->w));
    if (x->failed) {
        log_error("xml writer failed (invalid UTF-8 in data or out of memory)");
        return -1;
    }
    *body = (const char *)xmlBufferContent(x->buf);
    *len = (size_t)xmlBufferLength(x->buf);
    return 0;
}
