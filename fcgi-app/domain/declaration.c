/* <project> to declaration_t. */
#include "domain/declaration.h"

#include "domain/money.h"
#include "xml/xml_in.h"

#include <stdio.h>
#include <string.h>

char *pg_text_array(arena_t *a, const char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(items[i]) + 3;
    char *out = arena_alloc(a, len);
    size_t o = 0;
    out[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out[o++] = ',';
        out[o++] = '"';
        for (const char *p = items[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                out[o++] = '\\';
            out[o++] = *p;
        }
        out[o++] = '"';
    }
    out[o++] = '}';
    out[o] = '\0';
    return out;
}

char *pg_text_array_of(arena_t *a, const char **items, size_t n)
{
    return pg_text_array(a, (const char *const *)items, n);
}

static const char *flag(arena_t *a, xmlNodePtr flags, const char *name)
{
    return xml_bool(flags ? xml_attr(a, flags, name) : NULL, 0) ? "true" : "false";
}

/* The length of the white space character at s, 0 if there is none. */
static size_t space_at(const unsigned char *s)
{
    if (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        return 1;
    if (s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) /* U+0085, U+00A0 */
        return 2;
    if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) /* U+1680 */
        return 3;
    if (s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 ||
         s[2] == 0xaf)) /* U+2000-200A, 2028, 2029, 202F */
        return 3;
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
        return 3;
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    return 0;
}

int text_blank(const char *s)
{
    if (s == NULL)
        return 1;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t n; *p != '\0'; p += n)
        if ((n = space_at(p)) == 0)
            return 0;
    return 1;
}

static void fail(problem_error_t *err, xmlNodePtr node, const char *message)
{
    err->line = node ? (int)xmlGetLineNo(node) : 0;
    err->column = 0;
    err->message = message;
}

int declaration_read(arena_t *a, xmlNodePtr node, declaration_t *d, problem_error_t *err)
{
    memset(d, 0, sizeof *d);
    d->title = xml_child_text(a, node, "title");
    d->unit = xml_child_text(a, node, "unit");
    d->year = xml_child_text(a, node, "year");
    d->category = xml_child_text(a, node, "category");
    xmlNodePtr flags = xml_child(node, "flags");
    d->classified = flag(a, flags, "classified");
    d->soe = flag(a, flags, "soe");
    d->public_institution = flag(a, flags, "publicInstitution");
    d->cross_department = flag(a, flags, "crossDepartment");
    d->vertical = flag(a, flags, "vertical");
    d->key = flag(a, flags, "key");
    xmlNodePtr urgent = xml_child(node, "urgent");
    d->urgent = urgent ? "true" : "false";
    d->urgent_reason = urgent ? xml_attr(a, urgent, "reason") : NULL;
    long long fen;
    xmlNodePtr budget = xml_child(node, "budget");
    const char *budget_text = xml_child_text(a, node, "budget");
    if (budget_text == NULL || money_parse_fen(budget_text, &fen) < 0) {
        fail(err, budget, "budget must be CNY with two decimals");
        return -1;
    }
    d->budget_fen = arena_printf(a, "%lld", fen);
    d->funding = xml_child_text(a, node, "funding");
    xmlNodePtr cons = xml_child(node, "construction");
    d->mode = xml_attr(a, cons, "mode");
    d->exemption = xml_attr(a, cons, "reason");
    /* The schema requires what is read below; checked again all the same,
     * so that nothing here depends on a validator having run. */
    if (d->mode == NULL) {
        fail(err, cons ? cons : node, "a construction mode is required");
        return -1;
    }
    if (strcmp(d->mode, "self-built") == 0 && text_blank(d->exemption)) {
        fail(err, cons, "self-built construction needs an exemption reason (reason attribute)");
        d->rule = "exemption_reason_missing";
        return -1;
    }
    xmlNodePtr sched = xml_child(node, "schedule");
    if (sched != NULL) {
        d->start = xml_attr_token(a, sched, "start");
        d->end = xml_attr_token(a, sched, "end");
        if (d->start == NULL || d->end == NULL) {
            fail(err, sched, "a schedule has a start and an end");
            return -1;
        }
        if (strcmp(d->end, d->start) < 0) {
            fail(err, sched, "the schedule ends before it starts");
            return -1;
        }
    }
    xmlNodePtr contact = xml_child(node, "contact");
    if (contact != NULL) {
        d->contact_name = xml_attr(a, contact, "name");
        d->contact_phone = xml_attr(a, contact, "phone");
        d->contact_email = xml_attr(a, contact, "email");
    }
    d->summary = xml_child_text(a, node, "summary");

    size_t n = 0;
    xmlNodePtr list = xml_child(node, "dataResources");
    for (xmlNodePtr r = list ? list->children : NULL; r != NULL; r = r->next)
        if (r->type == XML_ELEMENT_NODE)
            n++;
    const char **code = arena_alloc(a, (n + 1) * sizeof *code);
    const char **name = arena_alloc(a, (n + 1) * sizeof *name);
    const char **source = arena_alloc(a, (n + 1) * sizeof *source);
    const char **share = arena_alloc(a, (n + 1) * sizeof *share);
    const char **freq = arena_alloc(a, (n + 1) * sizeof *freq);
    const char **agg = arena_alloc(a, (n + 1) * sizeof *agg);
    size_t i = 0;
    for (xmlNodePtr r = list ? list->children : NULL; r != NULL; r = r->next) {
        if (r->type != XML_ELEMENT_NODE)
            continue;
        code[i] = xml_attr(a, r, "code");
        name[i] = xml_child_text(a, r, "name");
        source[i] = xml_attr(a, r, "source");
        share[i] = xml_attr(a, r, "share");
        freq[i] = xml_attr(a, r, "frequency");
        if (code[i] == NULL || name[i] == NULL || source[i] == NULL || share[i] == NULL ||
            freq[i] == NULL) {
            fail(err, r, "a data resource needs a code, name, source, share and frequency");
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(code[j], code[i]) == 0) {
                fail(err, r, "a data resource code appears twice");
                return -1;
            }
        }
        agg[i] = flag(a, r, "aggregated");
        i++;
    }
    d->res_code = pg_text_array(a, code, n);
    d->res_name = pg_text_array(a, name, n);
    d->res_source = pg_text_array(a, source, n);
    d->res_share = pg_text_array(a, share, n);
    d->res_frequency = pg_text_array(a, freq, n);
    d->res_aggregated = pg_text_array(a, agg, n);
    return 0;
}
