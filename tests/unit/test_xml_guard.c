/* Unit tests for xml_guard.c: a start tag with more attributes than any
 * document takes is refused before libxml2 sees it, wherever the document
 * is cut into chunks; '=' elsewhere is not an attribute. */
#include "xml/xml_guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* "<r" + n attributes (" aN='='") + ">x=y</r>" in a buffer the caller frees. */
static char *tag_with(unsigned n, size_t *len)
{
    size_t cap = 16 + (size_t)n * 20;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t at = (size_t)snprintf(s, cap, "<r");
    for (unsigned i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, " a%u='='", i);
    at += (size_t)snprintf(s + at, cap - at, ">x=y</r>");
    *len = at;
    return s;
}

static int feed_whole(const char *s, size_t n)
{
    xml_guard_t g;
    xml_guard_init(&g);
    return xml_guard_feed(&g, s, n);
}

static void test_up_to_the_limit_passes_one_more_is_refused(void **state)
{
    (void)state;
    size_t n;
    char *ok = tag_with(XML_GUARD_MAX_ATTRS, &n);
    assert_int_equal(feed_whole(ok, n), 0);
    free(ok);
    char *bad = tag_with(XML_GUARD_MAX_ATTRS + 1, &n);
    assert_int_equal(feed_whole(bad, n), -1);
    free(bad);
}

static void test_refused_whatever_the_chunks(void **state)
{
    (void)state;
    size_t n;
    char *bad = tag_with(XML_GUARD_MAX_ATTRS + 1, &n);
    for (size_t step = 1; step <= 7; step++) {
        xml_guard_t g;
        xml_guard_init(&g);
        int rc = 0;
        for (size_t at = 0; at < n && rc == 0; at += step)
            rc = xml_guard_feed(&g, bad + at, at + step <= n ? step : n - at);
        assert_int_equal(rc, -1);
    }
    free(bad);
}

static void test_attributes_are_counted_per_tag(void **state)
{
    (void)state;
    size_t n;
    char *one = tag_with(XML_GUARD_MAX_ATTRS, &n);
    xml_guard_t g;
    xml_guard_init(&g);
    for (int i = 0; i < 50; i++)
        assert_int_equal(xml_guard_feed(&g, one, n), 0);
    free(one);
}

static void test_equals_signs_in_values_text_and_comments_are_not_attributes(void **state)
{
    (void)state;
    char s[4096];
    size_t at = (size_t)snprintf(s, sizeof s, "<?xml version=\"1.0\"?><!-- ");
    for (int i = 0; i < 300; i++)
        s[at++] = '=';
    at += (size_t)snprintf(s + at, sizeof s - at, " --><r a=\"");
    for (int i = 0; i < 300; i++)
        s[at++] = '=';
    at += (size_t)snprintf(s + at, sizeof s - at, "\" b='==='>");
    for (int i = 0; i < 300; i++)
        s[at++] = '=';
    at += (size_t)snprintf(s + at, sizeof s - at, "</r>");
    assert_int_equal(feed_whole(s, at), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up_to_the_limit_passes_one_more_is_refused),
        cmocka_unit_test(test_refused_whatever_the_chunks),
        cmocka_unit_test(test_attributes_are_counted_per_tag),
        cmocka_unit_test(test_equals_signs_in_values_text_and_comments_are_not_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
