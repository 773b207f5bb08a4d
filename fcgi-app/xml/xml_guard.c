/* xml_guard: counts the attributes of each start tag (an '=' outside quoted
 * values) before libxml2 parses them. Comments, CDATA, processing
 * instructions and declarations are skipped to their first '>': one that
 * holds a '>' and then a tag-like text is counted as tags, which can only
 * refuse more, never less. */
#include "xml/xml_guard.h"

enum { G_TEXT, G_OPEN, G_TAG, G_VALUE, G_OTHER };

void xml_guard_init(xml_guard_t *g)
{
    g->state = G_TEXT;
    g->quote = 0;
    g->attrs = 0;
}

int xml_guard_feed(xml_guard_t *g, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        switch (g->state) {
        case G_TEXT:
            if (c == '<')
                g->state = G_OPEN;
            break;
        case G_OPEN:
            g->attrs = 0;
            g->state = c == '!' || c == '?' ? G_OTHER : c == '>' ? G_TEXT : G_TAG;
            break;
        case G_TAG:
            if (c == '"' || c == '\'') {
                g->quote = c;
                g->state = G_VALUE;
            } else if (c == '=') {
                if (++g->attrs > XML_GUARD_MAX_ATTRS)
                    return -1;
            } else if (c == '>') {
                g->state = G_TEXT;
            }
            break;
        case G_VALUE:
            if (c == g->quote)
                g->state = G_TAG;
            break;
        default:
            if (c == '>')
                g->state = G_TEXT;
            break;
        }
    }
    return 0;
}
