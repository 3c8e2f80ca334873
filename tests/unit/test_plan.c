/*
 * Mirror plans (policy/plan.c): what a plan file says, what al_plan_print
 * writes reads back the same, and a bad plan is named by file:line:column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/plan.h"

static char path[64];

static void write_plan(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/airlock-plan-%d.yml", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_plan_reads(void **state)
{
	struct al_plan *p;
	char err[512];

	(void)state;
	write_plan("stack: [8.13.4, 8.14.0, 8.13.4]\nagents:\n  platforms: linux-x86_64\n  formats: [tar.gz, zip]\n"
	    "endpoint: 8.13.4\nkibana: [8.13.4-SNAPSHOT]\nprerelease: true\n");
	assert_int_equal(al_plan_load(path, &p, err, sizeof(err)), 0);
	assert_int_equal(p->nstack, 2); /* the repeated version once */
	assert_string_equal(p->stack[1], "8.14.0");
	assert_string_equal(p->platforms, "linux-x86_64");
	assert_string_equal(p->formats, "tar.gz,zip");
	assert_string_equal(p->products, "");
	assert_int_equal(p->nendpoint, 1);
	assert_string_equal(p->kibana[0], "8.13.4-SNAPSHOT");
	assert_int_equal(p->prerelease, 1);

	/* printed, then read back: the same plan */
	{
		FILE *f = fopen(path, "w");
		struct al_plan *q;
		assert_non_null(f);
		al_plan_print(f, p);
		fclose(f);
		assert_int_equal(al_plan_load(path, &q, err, sizeof(err)), 0);
		assert_int_equal(q->nstack, 2);
		assert_string_equal(q->stack[0], "8.13.4");
		assert_string_equal(q->formats, "tar.gz,zip");
		assert_string_equal(q->endpoint[0], "8.13.4");
		assert_int_equal(q->prerelease, 1);
		al_plan_free(q);
	}
	al_plan_free(p);
	unlink(path);
}

static void bad(const char *text, const char *where_what)
{
	struct al_plan *p = NULL;
	char err[512], want[600];

	write_plan(text);
	assert_int_equal(al_plan_load(path, &p, err, sizeof(err)), -22);
	assert_null(p);
	snprintf(want, sizeof(want), "%s%s", where_what[0] == ':' ? path : "", where_what);
	if (strstr(err, want) == NULL)
		fail_msg("plan %s: want '%s' in '%s'", text, want, err);
	unlink(path);
}

static void test_plan_errors(void **state)
{
	(void)state;
	bad("stack: [8.13.4]\nagents:\n  products: [Elastic Agent]\n", ":3:14: agents.products: 'Elastic Agent' is not");
	bad("stack: {a: 1}\n", ":1:8: stack: a list expected");
	bad("stack: [[8.13.4]]\n", ":1:9: stack: each item is a single value");
	bad("stack: [8.13.4]\nagents: [linux-x86_64]\n", ":2:9: agents: a mapping of keys expected");
	bad("stack: [8.13.4]\nagents:\n  arch: [linux-x86_64]\n", ":3:3: unknown key 'arch' in agents");
	bad("- 8.13.4\n", ":1:1: the plan: a mapping of keys expected");
	bad("stack: [08.13.4x]\n", ":1:9: stack: '08.13.4x' is not a version");
}

static void test_plan_versions(void **state)
{
	(void)state;
	assert_true(al_plan_version_ok("8.13.4"));
	assert_true(al_plan_version_ok("9.0.0-SNAPSHOT"));
	assert_true(al_plan_version_ok("8.13.4+build5"));
	assert_false(al_plan_version_ok("8.13"));
	assert_false(al_plan_version_ok("8.x.4"));
	assert_false(al_plan_version_ok("8.13.4/../x"));
	assert_false(al_plan_version_ok(""));
	assert_false(al_plan_version_ok(NULL));
}

/* The newer downloads: models, product_docs and geoip read, printed and read back the same. */
static void test_plan_newer(void **state)
{
	struct al_plan *p, *q;
	char err[512];
	FILE *f;

	(void)state;
	write_plan("models: [elser_model_2_linux-x86_64, rerank-v1]\nproduct_docs: [\"8.10\", 8.15]\ngeoip: true\n");
	assert_int_equal(al_plan_load(path, &p, err, sizeof(err)), 0);
	assert_int_equal(p->nmodels, 2);
	assert_string_equal(p->models[1], "rerank-v1");
	assert_int_equal(p->nproduct_docs, 2);
	assert_string_equal(p->product_docs[0], "8.10");
	assert_int_equal(p->geoip, 1);
	assert_int_equal(p->nstack, 0);
	f = fopen(path, "w");
	assert_non_null(f);
	al_plan_print(f, p);
	fclose(f);
	assert_int_equal(al_plan_load(path, &q, err, sizeof(err)), 0);
	assert_int_equal(q->nmodels, 2);
	assert_string_equal(q->models[0], "elser_model_2_linux-x86_64");
	assert_string_equal(q->product_docs[1], "8.15");
	assert_int_equal(q->geoip, 1);
	al_plan_free(q);
	al_plan_free(p);
	unlink(path);
	bad("models: [.hidden]\n", ":1:10: models: '.hidden' is not a model id");
	bad("models: [a b]\n", ":1:10: models: 'a b' is not a model id");
	bad("product_docs: [8.15.0]\n", ":1:16: product_docs: '8.15.0' is not MAJOR.MINOR");
	bad("geoip: yes\n", ":1:8: geoip: true or false");
	bad("geoip: false\nprerelease: true\n", "the plan names nothing to mirror");
	assert_true(al_plan_major_minor_ok("10.0"));
	assert_false(al_plan_major_minor_ok("8."));
	assert_false(al_plan_major_minor_ok(".8"));
	assert_false(al_plan_model_id_ok(""));
	assert_false(al_plan_model_id_ok("a/b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_reads),
		cmocka_unit_test(test_plan_errors),
		cmocka_unit_test(test_plan_versions),
		cmocka_unit_test(test_plan_newer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
