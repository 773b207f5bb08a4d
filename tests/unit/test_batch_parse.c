/* Unit tests for batch_parse.c: records delivered in order with the line of
 * their start tag, the head once and only with a valid first record,
 * schema errors charged to the right record whatever the chunk size,
 * refusals (DOCTYPE, depth, entity references, too many records), another
 * root (invalid), a document without a namespace (read as the API's), and
 * a handler that stops the reading. */
#include "xml/batch_parse.h"
#include "xml/xml_in.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HEAD "<batch xmlns=\"urn:itpm:1\" id=\"b-1\" region=\"321322\" kind=\"projects\">\n"
#define REC(budget)                                                                                \
    "<project ref=\"r\">\n<title>t</title><unit>321322-AGRI</unit><year>2031</year>"               \
    "<category>new</category>\n<budget>" budget "</budget><funding>fiscal</funding>"               \
    "<construction mode=\"centralized\"/></project>\n"

typedef struct {
    int heads;
    batch_head_t head;
    long records[16];
    int lines[16];
    int n;
    int stop_at; /* 0: never */
} seen_t;

static int on_head(void *data, const batch_head_t *head)
{
    seen_t *s = data;
    s->heads++;
    s->head = *head;
    return 0;
}

static int on_record(void *data, long index, int line, int column, xmlNodePtr node)
{
    seen_t *s = data;
    (void)column;
    assert_string_equal((const char *)node->name, "project");
    if (s->n < 16) {
        s->records[s->n] = index;
        s->lines[s->n] = line;
        s->n++;
    }
    return s->stop_at != 0 && index == s->stop_at ? -1 : 0;
}

static batch_parse_status_t run(const char *doc, size_t chunk, seen_t *s, long max_records,
                                batch_parser_t **out)
{
    batch_handlers_t h = {s, on_head, on_record};
    batch_parser_t *p = batch_parser_new(&h, 10, max_records);
    assert_non_null(p);
    size_t len = strlen(doc);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (batch_parser_feed(p, doc + off, n) < 0)
            break;
    }
    batch_parse_status_t st = batch_parser_finish(p);
    *out = p;
    return st;
}

static int group_setup(void **state)
{
    (void)state;
    return xml_in_init(ITPM_SOURCE_DIR "/xsd");
}

static int group_teardown(void **state)
{
    (void)state;
    xml_in_cleanup();
    return 0;
}

static void test_records_in_order(void **state)
{
    (void)state;
    static const char doc[] = HEAD REC("1.00") REC("2.00") REC("3.00") "</batch>\n";
    for (size_t chunk = 1; chunk <= 4096; chunk *= 4) {
        seen_t s = {0};
        batch_parser_t *p;
        assert_int_equal(run(doc, chunk, &s, 100, &p), BATCH_PARSE_OK);
        assert_int_equal(s.heads, 1);
        assert_string_equal(s.head.id, "b-1");
        assert_string_equal(s.head.region, "321322");
        assert_string_equal(s.head.kind, "projects");
        assert_int_equal(s.head.submit, 0);
        assert_int_equal(s.n, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(s.records[i], i + 1);
            assert_int_equal(s.lines[i], 2 + 3 * i);
        }
        assert_int_equal(batch_parser_records(p), 3);
        batch_parser_free(p);
    }
}

static void test_schema_error_names_record_and_line(void **state)
{
    (void)state;
    static const char doc[] = HEAD REC("1.00") REC("2.001") REC("3.00") "</batch>\n";
    for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
        seen_t s = {0};
        batch_parser_t *p;
        assert_int_equal(run(doc, chunk, &s, 100, &p), BATCH_PARSE_INVALID);
        size_t kept, total;
        const problem_error_t *e = batch_parser_errors(p, &kept, &total);
        assert_int_equal(total, 1);
        assert_int_equal(e[0].record, 2);
        assert_int_equal(e[0].line, 7);
        assert_true(e[0].column > 0);
        /* The records the schema accepts are still delivered, for the
         * rules to be checked on them too. */
        assert_int_equal(s.n, 2);
        assert_int_equal(s.records[0], 1);
        assert_int_equal(s.records[1], 3);
        batch_parser_free(p);
    }
}

static void test_missing_child_charged_to_its_record(void **state)
{
    (void)state;
    static const char doc[] =
        HEAD REC("1.00") "<project><title>t</title><unit>321322-AGRI</unit></project>\n" REC(
            "3.00") "</batch>";
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 7, &s, 100, &p), BATCH_PARSE_INVALID);
    size_t kept, total;
    const problem_error_t *e = batch_parser_errors(p, &kept, &total);
    assert_true(total >= 1);
    assert_int_equal(e[0].record, 2);
    batch_parser_free(p);
}

/* After an element of the root that is not a <project>, libxml2 checks no
 * later record: none of them may reach the handler, valid-looking or not. */
static void test_nothing_delivered_after_a_foreign_record(void **state)
{
    (void)state;
    static const char doc[] = HEAD REC("1.00") "<foo/>\n" REC(
        "3.00") "<project><title>t</title></project>\n"
                "<project><budget>3.001</budget></project>\n</batch>\n";
    for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
        seen_t s = {0};
        batch_parser_t *p;
        assert_int_equal(run(doc, chunk, &s, 100, &p), BATCH_PARSE_INVALID);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.records[0], 1);
        size_t kept, total;
        const problem_error_t *e = batch_parser_errors(p, &kept, &total);
        assert_true(total >= 1);
        assert_int_equal(e[0].record, 2);
        batch_parser_free(p);
    }
}

static void test_bad_head_is_never_delivered(void **state)
{
    (void)state;
    static const char doc[] =
        "<batch xmlns=\"urn:itpm:1\" id=\"b 1\" region=\"321322\" kind=\"projects\">" REC(
            "1.00") "</batch>";
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 64, &s, 100, &p), BATCH_PARSE_INVALID);
    assert_int_equal(s.heads, 0);
    assert_int_equal(s.n, 0);
    size_t kept, total;
    const problem_error_t *e = batch_parser_errors(p, &kept, &total);
    assert_int_equal(e[0].record, 0);
    batch_parser_free(p);
}

static void expect_malformed(const char *doc, const char *needle)
{
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 64, &s, 100, &p), BATCH_PARSE_MALFORMED);
    assert_int_equal(s.n, 0);
    const char *m = batch_parser_malformed(p);
    assert_non_null(m);
    if (strstr(m, needle) == NULL)
        fail_msg("'%s' does not mention '%s'", m, needle);
    batch_parser_free(p);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_malformed("<?xml version=\"1.0\"?>\n<!DOCTYPE batch [<!ENTITY a \"b\">]>\n" HEAD
                     "</batch>",
                     "DOCTYPE");
    expect_malformed("<!DOCTYPE batch SYSTEM \"file:///etc/passwd\">" HEAD "</batch>", "DOCTYPE");
    expect_malformed(HEAD "<project><title>&xxe;</title></project></batch>", "xxe");
    expect_malformed(HEAD "<project>", "");
    char *deep = malloc(200000);
    assert_non_null(deep);
    size_t o = strlen(HEAD);
    memcpy(deep, HEAD, o);
    for (int i = 0; i < 20000; i++, o += 3)
        memcpy(deep + o, "<a>", 3);
    strcpy(deep + o, "</batch>");
    expect_malformed(deep, "deep");
    free(deep);
}

/* Well-formed but another root: invalid (422), one error naming it. */
static void expect_wrong_root(const char *doc)
{
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 64, &s, 100, &p), BATCH_PARSE_INVALID);
    assert_int_equal(s.n, 0);
    size_t kept, total;
    const problem_error_t *e = batch_parser_errors(p, &kept, &total);
    assert_int_equal(total, 1);
    assert_int_equal(e[0].record, 0);
    assert_non_null(strstr(e[0].message, "<batch>"));
    batch_parser_free(p);
}

static void test_wrong_root_is_invalid(void **state)
{
    (void)state;
    expect_wrong_root("<projects xmlns=\"urn:itpm:1\"/>");
    expect_wrong_root("<batch xmlns=\"urn:itpm:2\" id=\"b\" region=\"321322\" kind=\"projects\"/>");
    /* A default namespace of its own, even none, is not adopted. */
    expect_wrong_root(
        "<batch xmlns=\"\" id=\"b\" region=\"321322\" kind=\"projects\">" REC("1.00") "</batch>");
}

/* Written without a namespace (as SPEC's example of the root is): read as
 * urn:itpm:1's, every chunk size; a record that names the namespace itself
 * is read the same; other prefixes on the root are kept. */
static void test_document_without_namespace_is_adopted(void **state)
{
    (void)state;
    static const char doc[] =
        "<batch id=\"b-1\" region=\"321322\" kind=\"projects\" xmlns:x=\"urn:other\">\n" REC(
            "1.00") "<project xmlns=\"urn:itpm:1\" "
                    "ref=\"r2\">\n<title>t</title><unit>321322-AGRI</unit>"
                    "<year>2031</year><category>new</category>\n<budget>2.00</budget>"
                    "<funding>fiscal</funding><construction mode=\"centralized\"/></project>\n"
                    "</batch>\n";
    for (size_t chunk = 1; chunk <= 4096; chunk *= 4) {
        seen_t s = {0};
        batch_parser_t *p;
        assert_int_equal(run(doc, chunk, &s, 100, &p), BATCH_PARSE_OK);
        assert_int_equal(s.heads, 1);
        assert_string_equal(s.head.id, "b-1");
        assert_int_equal(s.n, 2);
        batch_parser_free(p);
    }
    /* Adopted and still checked: a budget with three decimals is refused. */
    static const char bad[] =
        "<batch id=\"b-1\" region=\"321322\" kind=\"projects\">\n" REC("1.001") "</batch>\n";
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(bad, 64, &s, 100, &p), BATCH_PARSE_INVALID);
    assert_int_equal(s.n, 0);
    batch_parser_free(p);
}

/* A record of more than BATCH_MAX_RECORD_BYTES is refused once it passes
 * the bound, whether it grows by elements or by what builds no element
 * (comments, which are not kept). */
static void expect_too_large(const char *filler, size_t filler_len)
{
    size_t head = strlen(HEAD "<project ref=\"r\">");
    size_t n = (size_t)(BATCH_MAX_RECORD_BYTES / (long)filler_len) + 2;
    size_t len = head + n * filler_len + 64;
    char *doc = malloc(len);
    assert_non_null(doc);
    memcpy(doc, HEAD "<project ref=\"r\">", head);
    size_t o = head;
    for (size_t i = 0; i < n; i++, o += filler_len)
        memcpy(doc + o, filler, filler_len);
    strcpy(doc + o, "</project></batch>");
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 65536, &s, 100, &p), BATCH_PARSE_TOO_LARGE);
    assert_int_equal(s.n, 0);
    batch_parser_free(p);
    free(doc);
}

static void test_record_over_its_bound(void **state)
{
    (void)state;
    static const char res[] = "<resource code=\"C\" source=\"sensor\" share=\"open\" "
                              "frequency=\"daily\" aggregated=\"false\"><name>n</name></resource>";
    expect_too_large(res, sizeof res - 1);
    expect_too_large("<!---->", 7);
}

/* In a document read as the API's, an element that declares a default
 * namespace of its own (xmlns="") is not: the schema refuses it. */
static void test_inner_empty_namespace_is_not_adopted(void **state)
{
    (void)state;
    static const char doc[] =
        "<batch id=\"b-1\" region=\"321322\" kind=\"projects\">\n"
        "<project ref=\"r\">\n<title xmlns=\"\">t</title><unit>321322-AGRI</unit>"
        "<year>2031</year><category>new</category>\n<budget>1.00</budget>"
        "<funding>fiscal</funding><construction mode=\"centralized\"/>"
        "</project>\n</batch>\n";
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 64, &s, 100, &p), BATCH_PARSE_INVALID);
    assert_int_equal(s.n, 0);
    batch_parser_free(p);
}

static void test_too_many_records(void **state)
{
    (void)state;
    static const char doc[] = HEAD REC("1.00") REC("2.00") REC("3.00") "</batch>";
    seen_t s = {0};
    batch_parser_t *p;
    assert_int_equal(run(doc, 4096, &s, 2, &p), BATCH_PARSE_TOO_MANY);
    batch_parser_free(p);
}

static int refuse_head(void *data, const batch_head_t *head)
{
    (void)data;
    (void)head;
    return -1;
}

/* The head goes out at the second record's start tag: stopping there must
 * not touch the attributes of that tag (the parser freed its input). */
static void test_head_refused_at_second_record(void **state)
{
    (void)state;
    static const char doc[] = HEAD REC("1.00") REC("2.00") REC("3.00") "</batch>";
    for (size_t chunk = 1; chunk <= 4096; chunk *= 4) {
        seen_t s = {0};
        batch_handlers_t h = {&s, refuse_head, on_record};
        batch_parser_t *p = batch_parser_new(&h, 10, 100);
        assert_non_null(p);
        size_t len = strlen(doc);
        for (size_t off = 0; off < len; off += chunk)
            if (batch_parser_feed(p, doc + off, len - off < chunk ? len - off : chunk) < 0)
                break;
        assert_int_equal(batch_parser_finish(p), BATCH_PARSE_STOPPED);
        assert_int_equal(s.n, 0);
        batch_parser_free(p);
    }
}

static void test_handler_stops(void **state)
{
    (void)state;
    static const char doc[] = HEAD REC("1.00") REC("2.00") REC("3.00") "</batch>";
    seen_t s = {.stop_at = 1};
    batch_parser_t *p;
    assert_int_equal(run(doc, 16, &s, 100, &p), BATCH_PARSE_STOPPED);
    assert_int_equal(s.n, 1);
    batch_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_in_order),
        cmocka_unit_test(test_schema_error_names_record_and_line),
        cmocka_unit_test(test_missing_child_charged_to_its_record),
        cmocka_unit_test(test_nothing_delivered_after_a_foreign_record),
        cmocka_unit_test(test_bad_head_is_never_delivered),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_wrong_root_is_invalid),
        cmocka_unit_test(test_document_without_namespace_is_adopted),
        cmocka_unit_test(test_record_over_its_bound),
        cmocka_unit_test(test_inner_empty_namespace_is_not_adopted),
        cmocka_unit_test(test_too_many_records),
        cmocka_unit_test(test_head_refused_at_second_record),
        cmocka_unit_test(test_handler_stops),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
