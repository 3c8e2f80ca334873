/* Range header: single ranges, suffixes, unsatisfiable, ignored forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "policy/range.h"

static enum al_range_result r(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
	return al_range_parse(v, strlen(v), size, a, b);
}

static void test_ranges(void **state)
{
	uint64_t a, b;

	assert_int_equal(r("bytes=0-99", 1000, &a, &b), AL_RANGE_OK);
	assert_true(a == 0 && b == 99);
	assert_int_equal(r("bytes=900-", 1000, &a, &b), AL_RANGE_OK);
	assert_true(a == 900 && b == 999);
	assert_int_equal(r("bytes=-100", 1000, &a, &b), AL_RANGE_OK);
	assert_true(a == 900 && b == 999);
	assert_int_equal(r("bytes=-5000", 1000, &a, &b), AL_RANGE_OK);
	assert_true(a == 0 && b == 999);
	assert_int_equal(r("bytes=990-2000", 1000, &a, &b), AL_RANGE_OK);
	assert_true(a == 990 && b == 999);
	assert_int_equal(r("bytes=1000-", 1000, &a, &b), AL_RANGE_UNSATISFIABLE);
	assert_int_equal(r("bytes=-0", 1000, &a, &b), AL_RANGE_UNSATISFIABLE);
	assert_int_equal(r("bytes=5-1", 1000, &a, &b), AL_RANGE_NONE);
	assert_int_equal(r("bytes=0-1,5-6", 1000, &a, &b), AL_RANGE_NONE);
	assert_int_equal(r("items=0-1", 1000, &a, &b), AL_RANGE_NONE);
	assert_int_equal(r("bytes=x-1", 1000, &a, &b), AL_RANGE_NONE);
	assert_int_equal(r("bytes=99999999999999999999999-", 1000, &a, &b), AL_RANGE_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_ranges)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
