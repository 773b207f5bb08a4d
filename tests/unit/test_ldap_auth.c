/* Golden vectors for the LDAP filter escaping (RFC 4515): whatever a user
 * types as a username, it ends up as one assertion value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "auth/ldap_auth.h"

#define TMPL "(&(objectClass=inetOrgPerson)(uid=%s))"

static void expect_filter(const char *value, const char *want)
{
    char out[1024];
    assert_int_equal(ldap_filter_build(TMPL, value, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_plain_value(void **state)
{
    (void)state;
    expect_filter("rev_city", "(&(objectClass=inetOrgPerson)(uid=rev_city))");
}

static void test_wildcard_escaped(void **state)
{
    (void)state;
    expect_filter("*", "(&(objectClass=inetOrgPerson)(uid=\\2A))");
}

static void test_injection_escaped(void **state)
{
    (void)state;
    expect_filter("admin)(|(uid=*",
                  "(&(objectClass=inetOrgPerson)(uid=admin\\29\\28|\\28uid=\\2A))");
    expect_filter("*)(uid=*))(|(uid=*",
                  "(&(objectClass=inetOrgPerson)(uid=\\2A\\29\\28uid=\\2A\\29\\29\\28|\\28uid=\\2A))");
}

static void test_backslash_escaped(void **state)
{
    (void)state;
    expect_filter("a\\b", "(&(objectClass=inetOrgPerson)(uid=a\\5Cb))");
}

static void test_utf8_escaped_bytewise(void **state)
{
    (void)state;
    expect_filter("王芳", "(&(objectClass=inetOrgPerson)(uid=\\E7\\8E\\8B\\E8\\8A\\B3))");
}

static void test_too_long_refused(void **state)
{
    (void)state;
    char value[600];
    memset(value, '*', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    char out[1024];
    /* 599 stars escape to 1797 bytes: more than the buffer holds. */
    assert_int_equal(ldap_filter_build(TMPL, value, out, sizeof out), -1);
}

static void test_dn_value_escaped_for_group_filter(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(ldap_filter_build("(&(objectClass=groupOfNames)(member=%s))",
                                       "uid=x*,ou=people,dc=a", out, sizeof out),
                     0);
    assert_string_equal(out, "(&(objectClass=groupOfNames)(member=uid=x\\2A,ou=people,dc=a))");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_value),
        cmocka_unit_test(test_wildcard_escaped),
        cmocka_unit_test(test_injection_escaped),
        cmocka_unit_test(test_backslash_escaped),
        cmocka_unit_test(test_utf8_escaped_bytewise),
        cmocka_unit_test(test_too_long_refused),
        cmocka_unit_test(test_dn_value_escaped_for_group_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
