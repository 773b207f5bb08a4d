/* Unit tests for scope.c: the scope of each role as itpm_scope() in
 * sql/007_hot_paths.sql gives it (the policies read one or the other,
 * depending on who set the context), and exact matching of roles and
 * regions in their lists. */
#include "auth/scope.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define CITIES "321300"

static void check(const char *roles, const char *region, const char *all_read,
                  const char *all_write, const char *scope_region, const char *scope_unit)
{
    scope_t s;
    scope_of(roles, "UNIT-A", region, CITIES, &s);
    assert_string_equal(s.all_read, all_read);
    assert_string_equal(s.all_write, all_write);
    assert_string_equal(s.region, scope_region);
    assert_string_equal(s.unit, scope_unit);
}

static void test_city_reviewer_and_director_see_and_change_everything(void **state)
{
    (void)state;
    check("reviewer", "321300", "on", "on", "321300", "");
    check("director", "321300", "on", "on", "321300", "");
}

static void test_county_reviewer_and_director_see_their_region(void **state)
{
    (void)state;
    check("reviewer", "321322", "off", "off", "321322", "");
    check("director", "321323", "off", "off", "321323", "");
}

static void test_county_admin_sees_their_region_only(void **state)
{
    (void)state;
    check("county_admin", "321322", "off", "off", "321322", "");
    /* Even in the city: only reviewers and directors of the city see all. */
    check("county_admin", "321300", "off", "off", "321300", "");
}

static void test_submitter_and_cdo_see_their_unit(void **state)
{
    (void)state;
    check("submitter", "321300", "off", "off", "", "UNIT-A");
    check("cdo", "321322", "off", "off", "", "UNIT-A");
}

static void test_auditor_and_admin_read_everything_and_change_nothing(void **state)
{
    (void)state;
    check("auditor", "321300", "on", "off", "", "");
    check("admin", "321322", "on", "off", "", "");
}

static void test_experts_and_joint_reviewers_get_no_scope_of_their_own(void **state)
{
    (void)state;
    check("expert", "321300", "off", "off", "", "");
    check("joint_reviewer", "321300", "off", "off", "", "");
    check("evaluator", "321300", "off", "off", "", "");
    check("", "321300", "off", "off", "", "");
    check(NULL, "321300", "off", "off", "", "");
}

static void test_several_roles_add_up(void **state)
{
    (void)state;
    check("submitter,reviewer", "321300", "on", "on", "321300", "UNIT-A");
    check("cdo,auditor", "321322", "on", "off", "", "UNIT-A");
    check("expert,county_admin", "321322", "off", "off", "321322", "");
}

static void test_roles_and_regions_match_whole_items_only(void **state)
{
    (void)state;
    /* A role that only contains a scoped role's name, or is contained in it. */
    check("reviewers", "321300", "off", "off", "", "");
    check("view", "321300", "off", "off", "", "");
    check("joint_reviewer,auditors", "321300", "off", "off", "", "");
    /* A region that is a prefix or an extension of a city's code. */
    check("reviewer", "3213", "off", "off", "3213", "");
    check("reviewer", "3213000", "off", "off", "3213000", "");
    scope_t s;
    scope_of("reviewer", "U", "321399", "321300,321399", &s);
    assert_string_equal(s.all_write, "on");
    scope_of("reviewer", "U", "321300", "", &s);
    assert_string_equal(s.all_read, "off");
    scope_of("reviewer", "U", NULL, CITIES, &s);
    assert_string_equal(s.all_read, "off");
    assert_string_equal(s.region, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_city_reviewer_and_director_see_and_change_everything),
        cmocka_unit_test(test_county_reviewer_and_director_see_their_region),
        cmocka_unit_test(test_county_admin_sees_their_region_only),
        cmocka_unit_test(test_submitter_and_cdo_see_their_unit),
        cmocka_unit_test(test_auditor_and_admin_read_everything_and_change_nothing),
        cmocka_unit_test(test_experts_and_joint_reviewers_get_no_scope_of_their_own),
        cmocka_unit_test(test_several_roles_add_up),
        cmocka_unit_test(test_roles_and_regions_match_whole_items_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
