/* Unit tests for upload.c: the file names and content types an upload may
 * carry, as they are served back. */
#include "domain/upload.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_plain_and_unicode_names_are_kept(void **state)
{
    (void)state;
    assert_true(upload_filename_valid("plan.pdf"));
    assert_true(upload_filename_valid("申报书 (第二版).pdf"));
    assert_true(upload_filename_valid("a"));
    assert_true(upload_filename_valid("\xf0\x9f\x93\x84 report.pdf")); /* U+1F4C4 */
}

static void test_paths_blanks_and_long_names_are_refused(void **state)
{
    (void)state;
    assert_false(upload_filename_valid(""));
    assert_false(upload_filename_valid("."));
    assert_false(upload_filename_valid(".."));
    assert_false(upload_filename_valid("../etc/passwd"));
    assert_false(upload_filename_valid("a\\b.pdf"));
    assert_false(upload_filename_valid("say \"hi\".pdf"));
    assert_false(upload_filename_valid("   "));
    assert_false(upload_filename_valid("\xe3\x80\x80")); /* U+3000 */
    char longest[257];
    memset(longest, 'a', 255);
    longest[255] = '\0';
    assert_true(upload_filename_valid(longest));
    longest[255] = 'a';
    longest[256] = '\0';
    assert_false(upload_filename_valid(longest));
}

static void test_characters_that_hide_what_a_name_is_are_refused(void **state)
{
    (void)state;
    static const char *const hidden[] = {
        "a\tb.pdf",         /* C0 control */
        "a\x7f.pdf",        /* DEL */
        "a\xc2\x85.pdf",    /* U+0085, C1 control */
        "soft\xc2\xad.pdf", /* U+00AD soft hyphen (Cf) */
        "invoice\xe2\x80\xae"
        "fdp.exe",               /* U+202E right-to-left override */
        "a\xe2\x80\x8b.pdf",     /* U+200B zero width space */
        "a\xe2\x81\xa6.pdf",     /* U+2066, newer than libxml2's tables */
        "a\xe2\x80\xa8.pdf",     /* U+2028 line separator */
        "a\xef\xbb\xbf.pdf",     /* U+FEFF */
        "a\xe3\x85\xa4.pdf",     /* U+3164 Hangul filler */
        "a\xef\xb8\x8f.pdf",     /* U+FE0F variation selector */
        "a\xf3\xa0\x81\x81.pdf", /* U+E0041 tag */
        "a\xee\x80\x80.pdf",     /* U+E000 private use */
        "a\xef\xbf\xbe.pdf",     /* U+FFFE noncharacter */
        "a\xef\xb7\x90.pdf",     /* U+FDD0 noncharacter */
    };
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
        assert_false(upload_filename_valid(hidden[i]));
}

static void test_bytes_that_are_not_utf8_are_refused(void **state)
{
    (void)state;
    assert_false(upload_filename_valid("\xbf.pdf"));             /* stray continuation */
    assert_false(upload_filename_valid("\xc1\x81.pdf"));         /* overlong 'A' */
    assert_false(upload_filename_valid("\xe0\x80\xaf.pdf"));     /* overlong '/' */
    assert_false(upload_filename_valid("\xed\xa0\x80.pdf"));     /* surrogate U+D800 */
    assert_false(upload_filename_valid("\xf4\x90\x80\x80.pdf")); /* past U+10FFFF */
    assert_false(upload_filename_valid("a\xe4\xb8"));            /* cut short */
    assert_false(upload_filename_valid("\xff.pdf"));
}

static void test_media_types(void **state)
{
    (void)state;
    assert_true(upload_media_type_valid("application/pdf"));
    assert_true(upload_media_type_valid("text/plain; charset=utf-8"));
    assert_true(upload_media_type_valid("text/plain\t;charset=utf-8"));
    assert_true(upload_media_type_valid("application/vnd.ms-excel"));
    assert_true(upload_media_type_valid("image/svg+xml"));
    assert_false(upload_media_type_valid(""));
    assert_false(upload_media_type_valid("pdf"));
    assert_false(upload_media_type_valid("not a type"));
    assert_false(upload_media_type_valid("application/"));
    assert_false(upload_media_type_valid("/pdf"));
    assert_false(upload_media_type_valid("application/pdf garbage"));
    assert_false(upload_media_type_valid("text/plain; a=\x01"));
    assert_false(upload_media_type_valid("text/(plain)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_unicode_names_are_kept),
        cmocka_unit_test(test_paths_blanks_and_long_names_are_refused),
        cmocka_unit_test(test_characters_that_hide_what_a_name_is_are_refused),
        cmocka_unit_test(test_bytes_that_are_not_utf8_are_refused),
        cmocka_unit_test(test_media_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
