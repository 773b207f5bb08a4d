/* Streaming <batch> reader: push parser + schema SAX plug. */
#include "xml/batch_parse.h"

#include "xml/xml_guard.h"
#include "xml/xml_in.h"

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlschemas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_DEPTH 64
#define BATCH_MSG_MAX 300

struct batch_parser {
    batch_handlers_t h;
    xml_guard_t guard;
    xmlSAXHandler sax;
    /* In front of the schema's plug: reads a document written without a
     * namespace as urn:itpm:1's (adopt), for the validator and the tree
     * alike, as xml_in.c does for the other documents. */
    xmlSAXHandler front;
    startElementNsSAX2Func plug_start;
    endElementNsSAX2Func plug_end;
    int adopt;
    int unadopted; /* depth of an element with a default namespace of its own; 0 none */
    xmlParserCtxtPtr ctxt;
    xmlSchemaValidCtxtPtr vctxt;
    xmlSchemaSAXPlugPtr plug;
    int depth;
    batch_head_t head;
    int head_ok;    /* the root's attributes are sane */
    int head_state; /* 0 not yet, 1 delivered, -1 not delivered (errors) */
    long records, max_records;
    /* The record errors are charged to: from its start tag to the next one,
     * because the schema checks an element's content after its end tag. */
    long current;
    int pending;        /* the current record ended and awaits delivery */
    size_t total_before; /* errors counted before the current record began */
    size_t root_errors;  /* errors charged to no record: the root and its head */
    /* An element of the root that is not a <project>: libxml2's validator
     * then skips the rest of the root's content, so no later record has
     * been checked against the schema and none is delivered. */
    int unchecked;
    int line, column;   /* the current record's start tag */
    long record_start;  /* the byte the current record starts at */
    int mline, mcolumn; /* where the document turned out malformed */
    batch_parse_status_t status;
    char malformed[BATCH_MSG_MAX];
    problem_error_t *errors;
    char **messages; /* the errors' messages, owned */
    size_t nerrors, max_errors, total;
};

/* From inside a callback the parser is only told to deliver nothing more:
 * xmlStopParser() frees the input that libxml2 (and the callback's own
 * arguments) still point into. parse() halts it once the chunk is done. */
static void stop(batch_parser_t *p, batch_parse_status_t status)
{
    if (p->status == BATCH_PARSE_OK)
        p->status = status;
    p->ctxt->disableSAX = 1;
}

static void set_malformed(batch_parser_t *p, int line, int column, const char *msg)
{
    if (p->malformed[0] == '\0') {
        snprintf(p->malformed, sizeof p->malformed, "%s", msg);
        p->malformed[strcspn(p->malformed, "\n")] = '\0';
        p->mline = line;
        p->mcolumn = column;
    }
    stop(p, BATCH_PARSE_MALFORMED);
}

void batch_parse_error(batch_parser_t *p, long record, int line, int column, const char *message)
{
    p->total++;
    if (record == 0)
        p->root_errors++;
    if (p->nerrors == p->max_errors)
        return;
    char *msg = strdup(message ? message : "invalid");
    if (msg == NULL)
        return;
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        msg[--len] = '\0';
    p->messages[p->nerrors] = msg;
    problem_error_t *e = &p->errors[p->nerrors++];
    e->record = record;
    e->line = line > 0 ? line : 0;
    e->column = column > 0 ? column : 0;
    e->message = msg;
}

/* Parser errors come through libxml2's global handler (its per-context one
 * receives the schema plug's data, not ours); workers are single-threaded. */
static void on_xml_error(void *data, xmlErrorPtr e)
{
    batch_parser_t *p = data;
    if (e == NULL || e->level == XML_ERR_WARNING)
        return;
    if (e->domain == XML_FROM_SCHEMASV) {
        /* Once the outcome is decided (another root, say) the validator
         * only restates it. */
        if (p->status != BATCH_PARSE_OK)
            return;
        /* The validator runs on the parser's events, so where the parser
         * stands is where the error is (libxml2 2.9 cannot tell the plugged
         * validator its parser). */
        int line = e->line, col = e->int2;
        if (line <= 0 && p->ctxt->input != NULL) {
            line = p->ctxt->input->line;
            col = p->ctxt->input->col;
        }
        batch_parse_error(p, p->current, line, col, e->message);
        return;
    }
    /* libxml2 has halted itself on this fatal error; set_malformed() only
     * keeps further callbacks away, which is safe inside its error path. */
    set_malformed(p, e->line, e->int2, e->message ? e->message : "not well-formed");
}

/* The parser whose chunk is being parsed: the front handlers are called
 * with the schema plug's context, which has no room for ours; workers are
 * single-threaded and parse one chunk at a time. */
static batch_parser_t *active;

/* Namespace declarations a root may carry beside the one it is given. */
#define ROOT_NS_MAX 16

/* Whether an element's declarations include a default namespace (even
 * xmlns=""). */
static int declares_default(int nb_ns, const xmlChar **ns)
{
    for (int i = 0; i < nb_ns; i++)
        if (ns[2 * i] == NULL)
            return 1;
    return 0;
}

/* The namespace the validator and the tree are given for an element. */
static const xmlChar *adopted(const batch_parser_t *p, const xmlChar *uri)
{
    return p->adopt && p->unadopted == 0 && uri == NULL ? (const xmlChar *)ITPM_NS : uri;
}

static void front_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                        const xmlChar *uri, int nb_ns, const xmlChar **ns, int nattr,
                        int ndefaulted, const xmlChar **attrs)
{
    batch_parser_t *p = active;
    const xmlChar *decls[2 * (ROOT_NS_MAX + 1)];
    if (p->depth == 0 && uri == NULL && nb_ns <= ROOT_NS_MAX && !declares_default(nb_ns, ns)) {
        /* A root with no namespace and no default namespace of its own
         * (xmlns="" keeps it out): every element without one is the API's,
         * and the root declares it, so the tree finds it too. */
        p->adopt = 1;
        for (int i = 0; i < 2 * nb_ns; i++)
            decls[i] = ns[i];
        decls[2 * nb_ns] = NULL;
        decls[2 * nb_ns + 1] = (const xmlChar *)ITPM_NS;
        nb_ns++;
        ns = decls;
    } else if (p->adopt && p->unadopted == 0 && declares_default(nb_ns, ns)) {
        /* A default namespace of its own (xmlns="", say): the tree binds
         * this element and its unqualified descendants to it, so the
         * validator must see them as they are. */
        p->unadopted = p->depth + 1;
    }
    p->plug_start(ctx, localname, prefix, adopted(p, uri), nb_ns, ns, nattr, ndefaulted, attrs);
}

static void front_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                      const xmlChar *uri)
{
    batch_parser_t *p = active;
    p->plug_end(ctx, localname, prefix, adopted(p, uri));
    if (p->unadopted == p->depth + 1)
        p->unadopted = 0;
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr ctxt = ctx;
    batch_parser_t *p = ctxt->_private;
    set_malformed(p, ctxt->input ? ctxt->input->line : 0, ctxt->input ? ctxt->input->col : 0,
                  "a DOCTYPE is not accepted");
}

static int attr_is(const xmlChar **a, const char *name)
{
    return a[2] == NULL && strcmp((const char *)a[0], name) == 0;
}

static void attr_copy(char *out, size_t size, const xmlChar **a)
{
    size_t len = (size_t)(a[4] - a[3]);
    if (len >= size)
        len = size - 1;
    memcpy(out, a[3], len);
    out[len] = '\0';
}

/* The root's attributes as the schema will judge them; a head the schema
 * refuses is never delivered, so a handler only sees sane values. */
static int head_read(batch_head_t *h, int nattr, const xmlChar **attrs)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < nattr; i++) {
        const xmlChar **a = attrs + (ptrdiff_t)5 * i;
        if (attr_is(a, "id"))
            attr_copy(h->id, sizeof h->id, a);
        else if (attr_is(a, "region"))
            attr_copy(h->region, sizeof h->region, a);
        else if (attr_is(a, "kind"))
            attr_copy(h->kind, sizeof h->kind, a);
        else if (attr_is(a, "submit")) {
            /* Room for the white space xs:boolean allows around it. */
            char v[64];
            attr_copy(v, sizeof v, a);
            h->submit = xml_bool(v, 0);
        }
    }
    size_t idlen = strlen(h->id);
    return idlen > 0 && idlen <= BATCH_ID_MAX && strlen(h->region) == 6 &&
           strspn(h->region, "0123456789") == 6 &&
           (strcmp(h->kind, "projects") == 0 || strcmp(h->kind, "existing") == 0);
}

static void free_children(xmlNodePtr root)
{
    while (root->children != NULL) {
        xmlNodePtr n = root->children;
        xmlUnlinkNode(n);
        xmlFreeNode(n);
    }
}

/* Hands the finished record to the caller unless it or the batch is in
 * error (the outcome is then 422 and storing it would be wasted), and frees
 * everything the root holds so far. */
static void deliver(batch_parser_t *p, xmlParserCtxtPtr ctxt)
{
    xmlNodePtr root = ctxt->myDoc ? xmlDocGetRootElement(ctxt->myDoc) : NULL;
    if (root == NULL)
        return;
    /* Every record the schema accepts is delivered, also after others were
     * refused, so that the rules are checked on all of them and a refusal
     * lists every invalid record. The head goes out with the first valid
     * one, so a batch without any never costs the caller anything. */
    int valid =
        p->pending && !p->unchecked && p->total == p->total_before && p->status == BATCH_PARSE_OK;
    if (valid && p->head_state == 0) {
        p->head_state = p->head_ok && p->root_errors == 0 ? 1 : -1;
        if (p->head_state == 1 && p->h.on_head(p->h.data, &p->head) < 0)
            stop(p, BATCH_PARSE_STOPPED);
    }
    if (valid && p->head_state == 1 && p->status == BATCH_PARSE_OK) {
        xmlNodePtr rec = root->last;
        while (rec != NULL && rec->type != XML_ELEMENT_NODE)
            rec = rec->prev;
        if (rec != NULL && p->h.on_record(p->h.data, p->current, p->line, p->column, rec) < 0)
            stop(p, BATCH_PARSE_STOPPED);
    }
    p->pending = 0;
    free_children(root);
}

/* How far the parser has read, in decoded (UTF-8) bytes: what the tree is
 * built from, and O(1), unlike xmlByteConsumed(), which encodes the rest of
 * the buffer again on every call when the document is not UTF-8. */
static long input_position(xmlParserCtxtPtr ctxt)
{
    xmlParserInputPtr in = ctxt->input;
    return in == NULL ? 0 : (long)in->consumed + (long)(in->cur - in->base);
}

/* Whether the current record is still within BATCH_MAX_RECORD_BYTES; stops
 * the reading when it is not. */
static int record_fits(batch_parser_t *p, xmlParserCtxtPtr ctxt)
{
    if (input_position(ctxt) - p->record_start <= BATCH_MAX_RECORD_BYTES)
        return 1;
    stop(p, BATCH_PARSE_TOO_LARGE);
    return 0;
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_ns, const xmlChar **ns, int nattr, int ndefaulted,
                     const xmlChar **attrs)
{
    xmlParserCtxtPtr ctxt = ctx;
    batch_parser_t *p = ctxt->_private;
    int line = ctxt->input ? ctxt->input->line : 0;
    int col = ctxt->input ? ctxt->input->col : 0;
    if (++p->depth > BATCH_MAX_DEPTH) {
        set_malformed(p, line, col, "the document is nested too deeply");
        return;
    }
    if (p->depth == 1) {
        /* Well-formed but not a batch: invalid against the schema, as on
         * every other resource. */
        if (uri == NULL || strcmp((const char *)uri, ITPM_NS) != 0 ||
            strcmp((const char *)localname, "batch") != 0) {
            batch_parse_error(p, 0, line, col,
                              "the document must be a <batch> in namespace " ITPM_NS);
            stop(p, BATCH_PARSE_INVALID);
            return;
        }
        p->head_ok = head_read(&p->head, nattr, attrs);
    } else if (p->depth == 2) {
        deliver(p, ctxt);
        /* A handler stopped the reading: this record is not built. */
        if (p->status != BATCH_PARSE_OK)
            return;
        if (++p->records > p->max_records) {
            stop(p, BATCH_PARSE_TOO_MANY);
            return;
        }
        p->current = p->records;
        p->total_before = p->total;
        if (uri == NULL || strcmp((const char *)uri, ITPM_NS) != 0 ||
            strcmp((const char *)localname, "project") != 0)
            p->unchecked = 1;
        p->line = line;
        p->column = col;
        p->record_start = input_position(ctxt);
    } else if (!record_fits(p, ctxt)) {
        return;
    }
    xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_ns, ns, nattr, ndefaulted, attrs);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    xmlParserCtxtPtr ctxt = ctx;
    batch_parser_t *p = ctxt->_private;
    xmlSAX2EndElementNs(ctx, localname, prefix, uri);
    if (p->depth == 2 && record_fits(p, ctxt))
        p->pending = 1;
    else if (p->depth == 1)
        deliver(p, ctxt);
    p->depth--;
}

batch_parser_t *batch_parser_new(const batch_handlers_t *h, size_t max_errors, long max_records)
{
    xmlSchemaPtr schema = xml_in_schema();
    if (schema == NULL || max_errors == 0)
        return NULL;
    batch_parser_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->h = *h;
    xml_guard_init(&p->guard);
    p->max_errors = max_errors;
    p->max_records = max_records;
    p->errors = calloc(max_errors, sizeof *p->errors);
    p->messages = calloc(max_errors, sizeof *p->messages);
    if (p->errors == NULL || p->messages == NULL)
        goto fail;
    xmlSAXVersion(&p->sax, 2);
    p->sax.startElementNs = on_start;
    p->sax.endElementNs = on_end;
    p->sax.internalSubset = on_doctype;
    p->sax.externalSubset = on_doctype;
    /* Nothing of a record but its elements, attributes and text is used;
     * comments and processing instructions would be tree nodes between
     * which no element starts, outside the record's bound. Text runs merge
     * into one node, which libxml2 bounds (10 MB without XML_PARSE_HUGE). */
    p->sax.comment = NULL;
    p->sax.processingInstruction = NULL;
    p->sax.serror = NULL;
    p->ctxt = xmlCreatePushParserCtxt(&p->sax, NULL, NULL, 0, "batch.xml");
    if (p->ctxt == NULL)
        goto fail;
    p->ctxt->_private = p;
    /* No NOENT (entity substitution), no DTDLOAD/DTDATTR, no XINCLUDE, no
     * HUGE: libxml2's own limits on names, text and depth stay on. */
    xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOBLANKS |
                                   XML_PARSE_NOWARNING);
    p->vctxt = xmlSchemaNewValidCtxt(schema);
    if (p->vctxt == NULL)
        goto fail;
    xmlSchemaSetValidStructuredErrors(p->vctxt, on_xml_error, p);
    p->plug = xmlSchemaSAXPlug(p->vctxt, &p->ctxt->sax, &p->ctxt->userData);
    if (p->plug == NULL)
        goto fail;
    /* The plug's handlers, behind the front ones; unplugging restores the
     * parser's own handler table, which the parser frees. */
    p->front = *p->ctxt->sax;
    p->plug_start = p->front.startElementNs;
    p->plug_end = p->front.endElementNs;
    p->front.startElementNs = front_start;
    p->front.endElementNs = front_end;
    /* A CDATA section is text like any other (XML_PARSE_NOCDATA): without a
     * cdataBlock handler the parser hands it to the characters one, which
     * the plug validates and the tree keeps. Through the plug's own
     * cdataBlock it reached the handler NOCDATA had removed, and was lost. */
    p->front.cdataBlock = NULL;
    p->ctxt->sax = &p->front;
    return p;
fail:
    batch_parser_free(p);
    return NULL;
}

void batch_parser_free(batch_parser_t *p)
{
    if (p == NULL)
        return;
    if (p->plug != NULL)
        xmlSchemaSAXUnplug(p->plug);
    if (p->ctxt != NULL) {
        if (p->ctxt->myDoc != NULL)
            xmlFreeDoc(p->ctxt->myDoc);
        p->ctxt->myDoc = NULL;
        xmlFreeParserCtxt(p->ctxt);
    }
    if (p->vctxt != NULL)
        xmlSchemaFreeValidCtxt(p->vctxt);
    for (size_t i = 0; p->messages != NULL && i < p->nerrors; i++)
        free(p->messages[i]);
    free(p->messages);
    free(p->errors);
    free(p);
}

static int parse(batch_parser_t *p, const char *buf, size_t n, int terminate)
{
    if (p->status != BATCH_PARSE_OK)
        return -1;
    if (xml_guard_feed(&p->guard, buf, n) < 0) {
        set_malformed(p, 0, 0, XML_GUARD_REFUSAL);
        return -1;
    }
    xmlSetStructuredErrorFunc(p, on_xml_error);
    batch_parser_t *outer = active;
    active = p;
    while (n > 0 || terminate) {
        int part = n > (1u << 30) ? 1 << 30 : (int)n;
        int rc = xmlParseChunk(p->ctxt, buf, part, terminate && (size_t)part == n);
        if (rc != 0 && p->status == BATCH_PARSE_OK)
            set_malformed(p, p->ctxt->input ? p->ctxt->input->line : 0,
                          p->ctxt->input ? p->ctxt->input->col : 0, "not well-formed XML");
        if (p->status != BATCH_PARSE_OK) {
            xmlStopParser(p->ctxt);
            break;
        }
        if ((size_t)part == n)
            break;
        buf += part;
        n -= (size_t)part;
    }
    xmlSetStructuredErrorFunc(NULL, NULL);
    active = outer;
    return p->status == BATCH_PARSE_OK ? 0 : -1;
}

int batch_parser_feed(batch_parser_t *p, const char *buf, size_t n)
{
    return n == 0 ? 0 : parse(p, buf, n, 0);
}

batch_parse_status_t batch_parser_finish(batch_parser_t *p)
{
    if (parse(p, NULL, 0, 1) == 0 && !p->ctxt->wellFormed)
        set_malformed(p, 0, 0, "not well-formed XML");
    if (p->status == BATCH_PARSE_OK && p->depth != 0)
        set_malformed(p, 0, 0, "the document ends inside an element");
    if (p->status == BATCH_PARSE_OK && (p->total > 0 || p->head_state != 1))
        p->status = BATCH_PARSE_INVALID;
    if (p->status == BATCH_PARSE_INVALID && p->total == 0)
        batch_parse_error(p, 0, 0, 0, "the batch holds no record");
    return p->status;
}

const problem_error_t *batch_parser_errors(const batch_parser_t *p, size_t *kept, size_t *total)
{
    *kept = p->nerrors;
    *total = p->total;
    return p->errors;
}

long batch_parser_records(const batch_parser_t *p)
{
    return p->records;
}

const char *batch_parser_malformed(const batch_parser_t *p)
{
    return p->malformed[0] != '\0' ? p->malformed : NULL;
}

void batch_parser_position(const batch_parser_t *p, int *line, int *column)
{
    *line = p->mline;
    *column = p->mcolumn;
}
