/* Hardened XML input and schema validation. */
#include "xml/xml_in.h"

#include "core/log.h"
#include "xml/xml_guard.h"

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define XML_IN_MAX_DEPTH 64

static xmlSchemaPtr api_schema;

static xmlParserInputPtr refuse_external(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)ctxt;
    log_warn("refused an external XML resource (url=%.100s id=%.100s)", url ? url : "-",
             id ? id : "-");
    return NULL;
}

static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

int xml_in_init(const char *xsd_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/itpm.xsd", xsd_dir);
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path);
    if (pc == NULL) {
        log_error("schema %s: cannot read", path);
        return -1;
    }
    api_schema = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    if (api_schema == NULL) {
        log_error("schema %s does not compile", path);
        return -1;
    }
    /* From here on no document may pull anything from outside, and libxml2's
     * default error printer must not write request content to stderr. */
    xmlSetExternalEntityLoader(refuse_external);
    xmlSetGenericErrorFunc(NULL, quiet);
    return 0;
}

struct _xmlSchema *xml_in_schema(void)
{
    return api_schema;
}

void xml_in_cleanup(void)
{
    if (api_schema != NULL)
        xmlSchemaFree(api_schema);
    api_schema = NULL;
}

typedef struct {
    arena_t *arena;
    problem_error_t errors[XML_IN_MAX_ERRORS];
    size_t n;
    size_t total;
} error_list_t;

static void collect(void *data, xmlErrorPtr e)
{
    error_list_t *l = data;
    l->total++;
    if (l->n == XML_IN_MAX_ERRORS)
        return;
    char *msg = arena_strdup(l->arena, e->message ? e->message : "invalid");
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        msg[--len] = '\0';
    l->errors[l->n].line = e->line > 0 ? e->line : 0;
    l->errors[l->n].column = e->int2 > 0 ? e->int2 : 0;
    l->errors[l->n].message = msg;
    l->n++;
}

static void doc_free(void *doc)
{
    xmlFreeDoc(doc);
}

static int depth_ok(xmlNodePtr n, int depth)
{
    if (depth > XML_IN_MAX_DEPTH)
        return 0;
    for (xmlNodePtr c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !depth_ok(c, depth + 1))
            return 0;
    return 1;
}

/* A document written with no namespace at all (<login>…</login>, as the
 * interface's examples are often copied) is read as the API's: every element
 * without one is put in urn:itpm:1, then validated like any other. Elements
 * that name another namespace keep it, and the schema refuses them; a root
 * that declares a default namespace of its own (xmlns="") is left as it is,
 * and refused. -1 only when out of memory. */
static int adopt_namespace(xmlNodePtr top)
{
    for (xmlNsPtr d = top->nsDef; d != NULL; d = d->next)
        if (d->prefix == NULL)
            return 0;
    xmlNsPtr ns = xmlNewNs(top, (const xmlChar *)ITPM_NS, NULL);
    if (ns == NULL)
        return -1;
    xmlNodePtr n = top;
    while (n != NULL) {
        if (n->type == XML_ELEMENT_NODE && n->ns == NULL)
            xmlSetNs(n, ns);
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != top && n->next == NULL)
            n = n->parent;
        n = n == top ? NULL : n->next;
    }
    return 0;
}

xmlDocPtr xml_in_parse(arena_t *a, const char *body, size_t len, const char *root,
                       response_t *res)
{
    error_list_t *errs = arena_calloc(a, sizeof *errs);
    errs->arena = a;
    if (len > (size_t)INT32_MAX) {
        problem_simple(a, res, 413, "the document is too large", NULL);
        return NULL;
    }
    xml_guard_t guard;
    xml_guard_init(&guard);
    if (xml_guard_feed(&guard, body, len) < 0) {
        problem_simple(a, res, 400, XML_GUARD_REFUSAL, NULL);
        return NULL;
    }
    xmlParserCtxtPtr pc = xmlNewParserCtxt();
    if (pc == NULL) {
        problem_simple(a, res, 500, "out of memory", NULL);
        return NULL;
    }
    /* libxml2 2.9 has no per-context structured handler; workers are
     * single-threaded, so the global one is set around the parse. */
    xmlSetStructuredErrorFunc(errs, collect);
    /* No NOENT (entity substitution), no DTDLOAD/DTDATTR, no XINCLUDE, no HUGE. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOBLANKS | XML_PARSE_NOWARNING;
    xmlDocPtr doc = xmlCtxtReadMemory(pc, body, (int)len, "body.xml", NULL, opts);
    xmlSetStructuredErrorFunc(NULL, NULL);
    xmlFreeParserCtxt(pc);
    if (doc == NULL) {
        problem_t p = {.status = 400, .detail = "the body is not well-formed XML",
                       .errors = errs->errors, .nerrors = errs->n, .nerrors_total = errs->total};
        problem_respond(a, res, &p);
        return NULL;
    }
    arena_on_reset(a, doc_free, doc);
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        problem_simple(a, res, 400, "a DOCTYPE is not accepted", NULL);
        return NULL;
    }
    xmlNodePtr top = xmlDocGetRootElement(doc);
    if (top != NULL && !depth_ok(top, 1)) {
        problem_simple(a, res, 400, "the document is nested too deeply", NULL);
        return NULL;
    }
    if (top != NULL && top->ns == NULL && adopt_namespace(top) < 0) {
        problem_simple(a, res, 500, "out of memory", NULL);
        return NULL;
    }
    if (top == NULL || top->ns == NULL || strcmp((const char *)top->ns->href, ITPM_NS) != 0 ||
        strcmp((const char *)top->name, root) != 0) {
        /* Well-formed but not the document this resource takes: invalid
         * against the schema, like any other misplaced element. */
        problem_error_t *e = arena_calloc(a, sizeof *e);
        e->line = top != NULL && top->line > 0 ? top->line : 0;
        e->message = arena_printf(a, "expected <%s> in namespace %s", root, ITPM_NS);
        problem_t p = {
            .status = 422,
            .detail = arena_printf(a, "the document must be a <%s> in namespace %s", root, ITPM_NS),
            .errors = e,
            .nerrors = 1,
            .nerrors_total = 1};
        problem_respond(a, res, &p);
        return NULL;
    }
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(api_schema);
    if (vc == NULL) {
        problem_simple(a, res, 500, "out of memory", NULL);
        return NULL;
    }
    errs->n = errs->total = 0;
    xmlSchemaSetValidStructuredErrors(vc, collect, errs);
    int rc = xmlSchemaValidateDoc(vc, doc);
    xmlSchemaFreeValidCtxt(vc);
    if (rc != 0) {
        problem_t p = {.status = 422, .detail = "the document does not match the schema",
                       .errors = errs->errors, .nerrors = errs->n, .nerrors_total = errs->total};
        problem_respond(a, res, &p);
        return NULL;
    }
    return doc;
}

xmlNodePtr xml_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && c->ns != NULL &&
            strcmp((const char *)c->ns->href, ITPM_NS) == 0 &&
            strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

const char *xml_child_text(arena_t *a, xmlNodePtr parent, const char *name)
{
    xmlNodePtr c = xml_child(parent, name);
    return c == NULL ? NULL : xml_text(a, c);
}

const char *xml_text(arena_t *a, xmlNodePtr c)
{
    xmlChar *t = xmlNodeGetContent(c);
    if (t == NULL)
        return arena_strdup(a, "");
    char *s = arena_strdup(a, (const char *)t);
    xmlFree(t);
    return s;
}

const char *xml_attr(arena_t *a, xmlNodePtr node, const char *name)
{
    xmlChar *v = xmlGetProp(node, (const xmlChar *)name);
    if (v == NULL)
        return NULL;
    char *s = arena_strdup(a, (const char *)v);
    xmlFree(v);
    return s;
}

static const char xml_space[] = " \t\r\n";

const char *xml_attr_token(arena_t *a, xmlNodePtr node, const char *name)
{
    const char *v = xml_attr(a, node, name);
    if (v == NULL)
        return NULL;
    v += strspn(v, xml_space);
    size_t n = strlen(v);
    while (n > 0 && strchr(xml_space, v[n - 1]) != NULL)
        n--;
    return arena_strndup(a, v, n);
}

int xml_bool(const char *v, int absent)
{
    if (v == NULL)
        return absent;
    v += strspn(v, xml_space);
    size_t n = strcspn(v, xml_space);
    return (n == 4 && strncmp(v, "true", 4) == 0) || (n == 1 && v[0] == '1');
}
