/*
 * What a trained model's metadata says of its .pt, as Elasticsearch's
 * ml-package-loader reads it (ModelPackageConfig: "sha256", "size"; the
 * files are <packaged_model_id>.metadata.json and .pt, ModelImporter
 * fb3ff2f3, ModelLoaderUtils 01195333).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy/config.h"
#include "policy/models.h"

#define T(s) s, sizeof(s) - 1

static void test_metadata_url(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(al_model_metadata_url("https://ml-models.elastic.co/elser_model_2_linux-x86_64.pt", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://ml-models.elastic.co/elser_model_2_linux-x86_64.metadata.json");
	assert_int_equal(al_model_metadata_url("https://ml-models.elastic.co/x.vocab.json", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(al_model_metadata_url("https://ml-models.elastic.co/x.pt?y", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(al_model_metadata_url("https://ml-models.elastic.co/x.pt", buf, 20), -ENAMETOOLONG);
}

static void test_metadata_parse(void **state)
{
	uint8_t sha[32];
	int has;
	int64_t size;

	(void)state;
	assert_int_equal(al_model_metadata_parse(T("{\"packaged_model_id\":\"elser_model_2\",\"sha256\":"
	    "\"0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef\",\"size\":438123914}"), sha, &has, &size), 0);
	assert_int_equal(has, 1);
	assert_int_equal(size, 438123914);
	assert_int_equal(sha[0], 0x01);
	assert_int_equal(sha[15], 0xef);
	assert_int_equal(sha[31], 0xef);
	/* neither named: nothing to check against */
	assert_int_equal(al_model_metadata_parse(T("{\"description\":\"x\"}"), sha, &has, &size), 0);
	assert_int_equal(has, 0);
	assert_int_equal(size, -1);
	/* malformed: not a metadata file to trust */
	assert_int_equal(al_model_metadata_parse(T("{\"sha256\":\"abc\",\"size\":1}"), sha, &has, &size), -EINVAL);
	assert_int_equal(has, 0);
	assert_int_equal(al_model_metadata_parse(T("{\"size\":\"12\"}"), sha, &has, &size), -EINVAL);
	assert_int_equal(al_model_metadata_parse(T("{\"size\":-1}"), sha, &has, &size), -EINVAL);
	assert_int_equal(al_model_metadata_parse(T("[1]"), sha, &has, &size), -EINVAL);
	assert_int_equal(al_model_metadata_parse(T("not found\n"), sha, &has, &size), -EINVAL);
}

static void test_default_check(void **state)
{
	struct al_config *c;
	char err[256];

	(void)state;
	assert_int_equal(al_config_load(NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(al_needs_model_check(c, "https://ml-models.elastic.co/elser_model_2.pt"), 1);
	assert_int_equal(al_needs_model_check(c, "https://ml-models.elastic.co/elser_model_2.metadata.json"), 0);
	assert_int_equal(al_needs_model_check(c, "https://artifacts.elastic.co/x.pt"), 0);
	al_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metadata_url),
		cmocka_unit_test(test_metadata_parse),
		cmocka_unit_test(test_default_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
