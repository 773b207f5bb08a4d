/* xml_guard: a scan of XML bytes ahead of libxml2 that refuses a start tag
 * with more attributes than any document of the API has. */
#ifndef ITPM_XML_GUARD_H
#define ITPM_XML_GUARD_H

#include <stddef.h>

/* libxml2 2.9 compares each attribute of a start tag with every earlier
 * one: a body of 40,000 attributes on one element (390 KB, well within the
 * size limit, no login needed) held a worker for 20 s, 100,000 for more than
 * the 60 s it is given. No element of xsd/ has more than a dozen. */
#define XML_GUARD_MAX_ATTRS 128
/* What a refused document is told, by the API and by a batch alike. */
#define XML_GUARD_REFUSAL "an element has more attributes than any document takes"

typedef struct {
    int state;
    char quote;
    unsigned attrs;
} xml_guard_t;

void xml_guard_init(xml_guard_t *g);
/* Scans the next n bytes of a document fed in order; 0, or -1 once a start
 * tag has more than XML_GUARD_MAX_ATTRS attributes. Only counts: what is
 * not well-formed is left to the parser. */
int xml_guard_feed(xml_guard_t *g, const char *p, size_t n);

#endif
