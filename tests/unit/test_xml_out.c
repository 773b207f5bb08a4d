/* The XML writer: escaping, empty elements, refusals of what would make an
 * ill-formed document, and the streamed form in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/arena.h"
#include "xml/xml_out.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *finish(xml_out_t *x)
{
    const char *body;
    size_t len;
    if (xml_out_finish(x, &body, &len) < 0)
        return NULL;
    assert_int_equal(strlen(body) + 0, len);
    return body;
}

static void well_formed(const char *doc)
{
    xmlDocPtr d = xmlReadMemory(doc, (int)strlen(doc), NULL, NULL, XML_PARSE_NONET);
    assert_non_null(d);
    xmlFreeDoc(d);
}

static void test_document(void **state)
{
    (void)state;
    arena_t *a = arena_create(4096);
    xml_out_t *x = xml_out_begin(a, "project", "urn:itpm:1");
    xml_out_attr(x, "code", "321300-2026-00001");
    xml_out_start(x, "flags");
    xml_out_attr(x, "key", "true");
    xml_out_end(x);
    xml_out_text_elem(x, "title", "王芳 & <co> \"q\" 'a' >");
    xml_out_text_elem(x, "empty", "");
    xml_out_text_elem(x, "absent", NULL);
    xml_out_int_elem(x, "year", 2026);
    xml_out_start(x, "dataResources");
    xml_out_end(x);
    const char *doc = finish(x);
    assert_non_null(doc);
    assert_string_equal(doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<project xmlns=\"urn:itpm:1\" code=\"321300-2026-00001\">"
                             "<flags key=\"true\"/>"
                             "<title>王芳 &amp; &lt;co&gt; &quot;q&quot; 'a' &gt;</title>"
                             "<empty></empty><year>2026</year><dataResources/></project>\n");
    well_formed(doc);
    arena_destroy(a);
}

static void test_attribute_escapes(void **state)
{
    (void)state;
    arena_t *a = arena_create(4096);
    xml_out_t *x = xml_out_begin(a, "r", "urn:itpm:1");
    xml_out_attr(x, "v", "a\"b&c<d>e\tf\ng\rh");
    xml_out_text(x, "l1\nl2\r\tend");
    const char *doc = finish(x);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "v=\"a&quot;b&amp;c&lt;d&gt;e&#9;f&#10;g&#13;h\""));
    assert_non_null(strstr(doc, ">l1\nl2&#13;\tend</r>"));
    well_formed(doc);
    arena_destroy(a);
}

static void test_bad_characters_are_replaced(void **state)
{
    (void)state;
    /* Controls XML does not allow and bytes that are not UTF-8 (overlong,
     * surrogate, cut short, stray) each become U+FFFD: the document stays
     * well-formed whatever a problem quotes. */
    static const char *const bad[][2] = {
        {"a\x01z", "a\xef\xbf\xbdz"},
        {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"x\xc3", "x\xef\xbf\xbd"},
        {"\xe4\xb8", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"urn:itp\xe8m:1", "urn:itp\xef\xbf\xbdm:1"},
        {"\xc1\x81", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"ok \xe4\xb8\xad", "ok \xe4\xb8\xad"},
        {"a\xef\xbf\xbe"
         "b\xef\xbf\xbf",
         "a\xef\xbf\xbd"
         "b\xef\xbf\xbd"}, /* U+FFFE, U+FFFF */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        arena_t *a = arena_create(4096);
        xml_out_t *x = xml_out_begin(a, "r", "urn:itpm:1");
        xml_out_start(x, "e");
        xml_out_attr(x, "v", bad[i][0]);
        xml_out_text(x, bad[i][0]);
        xml_out_end(x);
        const char *doc = finish(x);
        assert_non_null(doc);
        well_formed(doc);
        char want[128];
        snprintf(want, sizeof want, "<e v=\"%s\">%s</e>", bad[i][1], bad[i][1]);
        assert_non_null(strstr(doc, want));
        arena_destroy(a);
    }
}

static void test_attribute_after_content_fails(void **state)
{
    (void)state;
    /* An attribute after content has no start tag to go in. */
    arena_t *a = arena_create(4096);
    xml_out_t *x = xml_out_begin(a, "r", "urn:itpm:1");
    xml_out_text(x, "content");
    xml_out_attr(x, "late", "1");
    assert_null(finish(x));
    arena_destroy(a);
}

static void test_deep_nesting_fails(void **state)
{
    (void)state;
    arena_t *a = arena_create(4096);
    xml_out_t *x = xml_out_begin(a, "r", "urn:itpm:1");
    for (int i = 0; i < 100; i++)
        xml_out_start(x, "d");
    assert_null(finish(x));
    arena_destroy(a);
}

typedef struct {
    char *data;
    size_t len;
    int calls;
    int fail_at;
} sink_t;

static int sink_write(void *ctx, const char *buf, int len)
{
    sink_t *s = ctx;
    if (++s->calls == s->fail_at)
        return -1;
    char *grown = realloc(s->data, s->len + (size_t)len + 1);
    assert_non_null(grown);
    s->data = grown;
    memcpy(s->data + s->len, buf, (size_t)len);
    s->len += (size_t)len;
    s->data[s->len] = '\0';
    return len;
}

static void test_stream(void **state)
{
    (void)state;
    arena_t *a = arena_create(4096);
    sink_t s = {0};
    xml_out_t *x = xml_out_stream(a, "batchResult", "urn:itpm:1", sink_write, &s);
    xml_out_attr(x, "records", "50000");
    for (int i = 1; i <= 50000; i++) {
        xml_out_start(x, "code");
        xml_out_attr_int(x, "record", i);
        xml_out_text(x, "321322-2026-00001");
        xml_out_end(x);
    }
    assert_int_equal(xml_out_close(x), 0);
    assert_true(s.calls > 10);
    assert_non_null(
        strstr(s.data, "<code record=\"50000\">321322-2026-00001</code></batchResult>\n"));
    well_formed(s.data);
    free(s.data);

    /* A writer that fails makes the document fail. */
    sink_t f = {.fail_at = 2};
    x = xml_out_stream(a, "batchResult", "urn:itpm:1", sink_write, &f);
    for (int i = 1; i <= 50000; i++)
        xml_out_text_elem(x, "code", "321322-2026-00001");
    assert_int_equal(xml_out_close(x), -1);
    free(f.data);
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_attribute_escapes),
        cmocka_unit_test(test_bad_characters_are_replaced),
        cmocka_unit_test(test_attribute_after_content_fails),
        cmocka_unit_test(test_deep_nesting_fails),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
