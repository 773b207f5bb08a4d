/* Unit tests for problem.c: golden documents byte for byte, the default
 * title, escaping of markup characters and non-ASCII text, and validity
 * against xsd/problem.xsd. */
#include "http/problem.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define OPEN "<problem xmlns=\"urn:ietf:rfc:7807\">"

static xmlSchemaPtr schema;
static arena_t *arena;

static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static int group_setup(void **state)
{
    (void)state;
    xmlInitParser();
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(ITPM_SOURCE_DIR "/xsd/problem.xsd");
    if (pc == NULL)
        return -1;
    schema = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    arena = arena_create(4096);
    return schema != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    arena_destroy(arena);
    xmlSchemaFree(schema);
    xmlCleanupParser();
    return 0;
}

static int reset_arena(void **state)
{
    (void)state;
    arena_reset(arena);
    return 0;
}

/* Parses body (no network, no DTD); NULL when it is not well-formed. */
static xmlDocPtr parse(const char *body, size_t len)
{
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlDocPtr doc = xmlReadMemory(body, (int)len, "problem.xml", NULL, XML_PARSE_NONET);
    xmlSetGenericErrorFunc(NULL, NULL);
    return doc;
}

static int schema_valid(const char *body, size_t len)
{
    xmlDocPtr doc = parse(body, len);
    if (doc == NULL)
        return 0;
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
    int rc = xmlSchemaValidateDoc(vc, doc);
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(doc);
    return rc == 0;
}

/* Text of the first element called name, or NULL. */
static char *element_text(const char *body, size_t len, const char *name)
{
    xmlDocPtr doc = parse(body, len);
    assert_non_null(doc);
    char *out = NULL;
    for (xmlNodePtr n = xmlDocGetRootElement(doc)->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0) {
            xmlChar *t = xmlNodeGetContent(n);
            out = arena_strdup(arena, (const char *)t);
            xmlFree(t);
            break;
        }
    }
    xmlFreeDoc(doc);
    return out;
}

static void render_ok(const problem_t *p, const char **body, size_t *len)
{
    assert_int_equal(problem_render(arena, p, body, len), 0);
    assert_int_equal(strlen(*body), *len);
}

static void assert_golden(const problem_t *p, const char *want)
{
    const char *body;
    size_t len;
    render_ok(p, &body, &len);
    assert_string_equal(body, want);
    assert_true(schema_valid(body, len));
}

static void test_golden_simple(void **state)
{
    (void)state;
    problem_t p = {.status = 404, .detail = "no such region"};
    assert_golden(&p, XML_DECL OPEN "<type>about:blank</type><title>Not Found</title>"
                                    "<status>404</status><detail>no such region</detail>"
                                    "</problem>\n");
}

static void test_golden_rule_and_title(void **state)
{
    (void)state;
    problem_t p = {.status = 409,
                   .title = "Wrong stage",
                   .detail = "the project is not at the expert review stage",
                   .rule = "wrong_stage"};
    assert_golden(&p, XML_DECL OPEN "<type>urn:itpm:rule:wrong_stage</type><title>Wrong stage</title>"
                                    "<status>409</status>"
                                    "<detail>the project is not at the expert review stage</detail>"
                                    "<rule>wrong_stage</rule></problem>\n");
}

static void test_golden_errors(void **state)
{
    (void)state;
    const problem_error_t errors[] = {
        {3, 7, "Element 'name': [facet 'maxLength'] too long.", 0},
        {0, 0, "missing element code", 0},
        {12, 0, "bad date", 0},
    };
    problem_t p = {.status = 422,
                   .detail = "the document does not match the schema",
                   .errors = errors,
                   .nerrors = 3,
                   .nerrors_total = 40};
    assert_golden(&p, XML_DECL OPEN "<type>about:blank</type><title>Unprocessable Content</title>"
                                    "<status>422</status>"
                                    "<detail>the document does not match the schema</detail>"
                                    "<errors total=\"40\">"
                                    "<error line=\"3\" column=\"7\"><message>Element 'name': "
                                    "[facet 'maxLength'] too long.</message></error>"
                                    "<error><message>missing element code</message></error>"
                                    "<error line=\"12\"><message>bad date</message></error>"
                                    "</errors></problem>\n");
}

static void test_errors_total_is_at_least_listed(void **state)
{
    (void)state;
    const problem_error_t errors[] = {{1, 1, "a", 0}, {2, 1, "b", 0}};
    problem_t p = {.status = 400, .errors = errors, .nerrors = 2, .nerrors_total = 1};
    const char *body;
    size_t len;
    render_ok(&p, &body, &len);
    assert_non_null(strstr(body, "<errors total=\"2\">"));
    assert_true(schema_valid(body, len));
}

static void test_no_detail_no_element(void **state)
{
    (void)state;
    problem_t p = {.status = 500};
    assert_golden(&p, XML_DECL OPEN "<type>about:blank</type><title>Internal Server Error</title>"
                                    "<status>500</status></problem>\n");
}

static void test_title_defaults_to_reason_phrase(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *title;
    } cases[] = {
        {400, "Bad Request"},        {401, "Unauthorized"},
        {403, "Forbidden"},          {405, "Method Not Allowed"},
        {413, "Content Too Large"},  {415, "Unsupported Media Type"},
        {429, "Too Many Requests"},  {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem_t p = {.status = cases[i].status, .detail = "d"};
        const char *body;
        size_t len;
        render_ok(&p, &body, &len);
        assert_string_equal(element_text(body, len, "title"), cases[i].title);
        assert_true(schema_valid(body, len));
    }
}

static void test_escaping(void **state)
{
    (void)state;
    const char *detail = "a<b & \"c\" 'd' > e";
    problem_t p = {.status = 400, .title = "<&\">", .detail = detail};
    assert_golden(&p, XML_DECL OPEN "<type>about:blank</type><title>&lt;&amp;&quot;&gt;</title>"
                                    "<status>400</status>"
                                    "<detail>a&lt;b &amp; &quot;c&quot; 'd' &gt; e</detail>"
                                    "</problem>\n");
    const char *body;
    size_t len;
    render_ok(&p, &body, &len);
    assert_string_equal(element_text(body, len, "detail"), detail);
    assert_string_equal(element_text(body, len, "title"), "<&\">");
}

static void test_chinese_text_kept_as_utf8(void **state)
{
    (void)state;
    /* "项目不存在：<编号>" */
    const char *detail = "\xe9\xa1\xb9\xe7\x9b\xae\xe4\xb8\x8d\xe5\xad\x98\xe5\x9c\xa8\xef\xbc\x9a"
                         "<\xe7\xbc\x96\xe5\x8f\xb7>";
    problem_t p = {.status = 404, .detail = detail};
    assert_golden(&p, XML_DECL OPEN "<type>about:blank</type><title>Not Found</title>"
                                    "<status>404</status><detail>"
                                    "\xe9\xa1\xb9\xe7\x9b\xae\xe4\xb8\x8d\xe5\xad\x98\xe5\x9c\xa8"
                                    "\xef\xbc\x9a&lt;\xe7\xbc\x96\xe5\x8f\xb7&gt;"
                                    "</detail></problem>\n");
    const char *body;
    size_t len;
    render_ok(&p, &body, &len);
    assert_string_equal(element_text(body, len, "detail"), detail);
}

static void test_every_error_status_validates(void **state)
{
    (void)state;
    for (int status = 400; status <= 599; status++) {
        response_t res;
        response_init(&res);
        problem_simple(arena, &res, status, "detail text", NULL);
        assert_int_equal(res.status, status);
        assert_true(schema_valid(res.body, res.body_len));
    }
}

static void test_respond_sets_response(void **state)
{
    (void)state;
    response_t res;
    response_init(&res);
    problem_simple(arena, &res, 503, "dependency down: database", NULL);
    assert_int_equal(res.status, 503);
    assert_string_equal(res.content_type, "application/problem+xml");
    assert_int_equal(strlen(res.body), res.body_len);
    assert_string_equal(element_text(res.body, res.body_len, "detail"),
                        "dependency down: database");
    assert_int_equal(res.nheaders, 0);
}

/* Text that cannot go into XML (bytes that are not UTF-8, C0 controls) must
 * never produce an ill-formed document: either the renderer refuses (and
 * problem_respond falls back to its static 500) or it cleans the text. */
static void test_unencodable_text_never_gives_ill_formed_xml(void **state)
{
    (void)state;
    static const char *const details[] = {
        "bad \xff\xfe bytes",
        "cut \xe9\xa1",
        "control \x01\x02 chars",
        "escape \x1b[31m",
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++) {
        problem_t p = {.status = 400, .detail = details[i]};
        const char *body;
        size_t len;
        int rc = problem_render(arena, &p, &body, &len);
        assert_int_equal(strlen(body), len);
        response_t res;
        response_init(&res);
        problem_respond(arena, &res, &p);
        if (!schema_valid(body, len) || !schema_valid(res.body, res.body_len)) {
            print_error("detail #%zu: problem_render returned %d, status %d, and a document "
                        "that is not well-formed\n", i, rc, res.status);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, reset_arena)
    const struct CMUnitTest tests[] = {
        T(test_golden_simple),
        T(test_golden_rule_and_title),
        T(test_golden_errors),
        T(test_errors_total_is_at_least_listed),
        T(test_no_detail_no_element),
        T(test_title_defaults_to_reason_phrase),
        T(test_escaping),
        T(test_chinese_text_kept_as_utf8),
        T(test_every_error_status_validates),
        T(test_respond_sets_response),
        T(test_unencodable_text_never_gives_ill_formed_xml),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
