/* Versions and the registry's constraint forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "policy/semver.h"

static int sat(const char *cons, const char *ver)
{
	struct al_semver v;

	assert_int_equal(al_semver_parse(ver, &v), 0);
	return al_semver_satisfies(cons, &v);
}

static void test_compare(void **state)
{
	struct al_semver a, b;

	assert_int_equal(al_semver_parse("8.13.4", &a), 0);
	assert_int_equal(al_semver_parse("8.13.10", &b), 0);
	assert_true(al_semver_cmp(&a, &b) < 0);
	assert_int_equal(al_semver_parse("1.0.0-beta.2", &a), 0);
	assert_int_equal(al_semver_parse("1.0.0-beta.10", &b), 0);
	assert_true(al_semver_cmp(&a, &b) < 0);
	assert_int_equal(al_semver_parse("1.0.0", &b), 0);
	assert_true(al_semver_cmp(&a, &b) < 0);
	assert_int_equal(al_semver_parse("v2", &a), 0);
	assert_true(a.major == 2 && a.minor == 0);
	assert_int_not_equal(al_semver_parse("eight", &a), 0);
	assert_int_not_equal(al_semver_parse("8.x", &a), 0);
}

static void test_constraints(void **state)
{
	assert_int_equal(sat("^8.13.0 || ^9.0.0", "8.13.4"), 1);
	assert_int_equal(sat("^8.13.0 || ^9.0.0", "9.1.0"), 1);
	assert_int_equal(sat("^8.13.0 || ^9.0.0", "8.12.2"), 0);
	assert_int_equal(sat("^8.13.0 || ^9.0.0", "10.0.0"), 0);
	assert_int_equal(sat(">=7.16.0 <8.0.0", "7.17.9"), 1);
	assert_int_equal(sat(">=7.16.0 <8.0.0", "8.0.0"), 0);
	assert_int_equal(sat(">=7.16.0, <8.0.0", "7.15.0"), 0);
	assert_int_equal(sat("~8.12.1", "8.12.9"), 1);
	assert_int_equal(sat("~8.12.1", "8.13.0"), 0);
	assert_int_equal(sat("8.x", "8.99.1"), 1);
	assert_int_equal(sat("8.x", "9.0.0"), 0);
	assert_int_equal(sat("8.13.x", "8.13.7"), 1);
	assert_int_equal(sat("=8.13.4", "8.13.4"), 1);
	assert_int_equal(sat("8.13.4", "8.13.5"), 0);
	assert_int_equal(sat("*", "1.2.3"), 1);
	assert_int_equal(sat(">8.1", "8.1.1"), 1);
	assert_int_equal(sat("^0.2.3", "0.2.9"), 1);
	assert_int_equal(sat("^0.2.3", "0.3.0"), 0);
	/*
	 * Masterminds/semver v3 Constraints.Check: a prerelease satisfies an OR
	 * group only when a comparison in that group names a prerelease
	 * (containsPre); package-registry checks Kibana and agent versions so.
	 */
	assert_int_equal(sat("^8.0.0", "8.14.0-SNAPSHOT"), 0);
	assert_int_equal(sat("*", "1.0.0-rc1"), 0);
	assert_int_equal(sat(">=8.14.0-0", "8.14.0-SNAPSHOT"), 1);
	assert_int_equal(sat("^7.17.0 || >=8.14.0-0 <9.0.0", "8.14.0-SNAPSHOT"), 1);
	assert_int_equal(sat("^7.17.0 || >=8.14.0-0 <9.0.0", "7.17.1-rc1"), 0);
	assert_true(sat("^", "1.0.0") < 0);
	assert_true(sat("", "1.0.0") < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_constraints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
