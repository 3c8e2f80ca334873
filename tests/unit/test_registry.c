/* The offline registry's rules, on documents shaped like the registry's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "policy/registry.h"

static const char *DOCS = "["
    "{\"name\":\"nginx\",\"version\":\"1.19.0\",\"title\":\"Nginx\",\"type\":\"integration\",\"format_version\":\"2.7.0\","
    " \"categories\":[\"web\",\"observability\"],\"conditions\":{\"kibana\":{\"version\":\"^8.8.0\"}}},"
    "{\"name\":\"nginx\",\"version\":\"1.20.0\",\"title\":\"Nginx\",\"type\":\"integration\",\"format_version\":\"3.0.0\","
    " \"categories\":[\"web\",\"observability\"],\"conditions\":{\"kibana\":{\"version\":\"^8.13.0\"}}},"
    "{\"name\":\"future\",\"version\":\"2.0.0\",\"title\":\"Only 9\",\"type\":\"integration\",\"format_version\":\"3.1.0\","
    " \"categories\":[\"web\"],\"conditions\":{\"kibana\":{\"version\":\"^9.0.0\"}}},"
    "{\"name\":\"shiny\",\"version\":\"0.3.0-preview1\",\"title\":\"Shiny\",\"type\":\"integration\",\"format_version\":\"3.0.0\","
    " \"categories\":[\"security\"],\"conditions\":{\"kibana\":{\"version\":\"^8.10.0\"}}},"
    "{\"name\":\"endpoint\",\"version\":\"8.13.0\",\"title\":\"Elastic Defend\",\"type\":\"integration\",\"format_version\":\"3.0.0\","
    " \"categories\":[\"security\"],\"conditions\":{\"kibana\":{\"version\":\"^8.13.0\"},\"elastic\":{\"capabilities\":[\"security\"]}},"
    " \"policy_templates\":[{\"name\":\"endpoint\",\"categories\":[\"edr_xdr\"]}]},"
    "{\"name\":\"old\",\"version\":\"1.0.0\",\"title\":\"Old spec\",\"type\":\"input\",\"format_version\":\"1.0.0\","
    " \"categories\":[\"custom\"],\"release\":\"ga\"}"
    "]";

static char *run(const char *query, int categories)
{
	struct al_registry_query q;
	json_t *docs = json_loads(DOCS, 0, NULL);
	char *out;

	assert_non_null(docs);
	assert_int_equal(al_registry_query_parse(query, strlen(query), &q), 0);
	out = categories ? al_registry_categories(docs, &q) : al_registry_search(docs, &q);
	json_decref(docs);
	return out;
}

/* "name@version,..." of a /search answer */
static void names(const char *json, char *buf, size_t cap)
{
	json_t *a = json_loads(json, 0, NULL), *e;
	size_t i, o = 0;

	buf[0] = '\0';
	json_array_foreach(a, i, e)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s@%s", o ? "," : "", json_string_value(json_object_get(e, "name")),
		    json_string_value(json_object_get(e, "version")));
	json_decref(a);
}

static void expect(const char *query, const char *want)
{
	char *out = run(query, 0), got[512];

	names(out, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("%s: got [%s] want [%s]", query, got, want);
	free(out);
}

static void test_search(void **state)
{
	expect("prerelease=false&kibana.version=8.13.4", "endpoint@8.13.0,nginx@1.20.0,old@1.0.0");
	expect("prerelease=false&kibana.version=8.9.0", "nginx@1.19.0,old@1.0.0");
	expect("prerelease=false&kibana.version=9.0.1", "future@2.0.0,old@1.0.0");
	expect("prerelease=true&kibana.version=8.13.4", "endpoint@8.13.0,nginx@1.20.0,old@1.0.0,shiny@0.3.0-preview1");
	expect("prerelease=false&kibana.version=8.13.4&capabilities=apm,observability", "nginx@1.20.0,old@1.0.0");
	expect("category=&prerelease=false&kibana.version=8.13.4&capabilities=apm,observability,security&spec.min=1.0&spec.max=3.2",
	    "endpoint@8.13.0,nginx@1.20.0,old@1.0.0");
	expect("prerelease=false&kibana.version=8.13.4&spec.min=2.0&spec.max=3.0", "endpoint@8.13.0,nginx@1.20.0");
	expect("package=nginx&prerelease=false&kibana.version=8.13.4", "nginx@1.20.0");
	expect("package=nginx&prerelease=false&all=true", "nginx@1.20.0,nginx@1.19.0");
	expect("package=unknown&prerelease=false&kibana.version=8.13.4", "");
	expect("category=security&prerelease=false&kibana.version=8.13.4", "endpoint@8.13.0");
	expect("category=edr_xdr&prerelease=false&kibana.version=8.13.4", "endpoint@8.13.0");
	expect("type=input&prerelease=false", "old@1.0.0");
}

static void test_search_fields(void **state)
{
	char *out = run("package=nginx&kibana.version=8.13.4", 0);
	json_t *a = json_loads(out, 0, NULL), *e = json_array_get(a, 0);

	assert_string_equal(json_string_value(json_object_get(e, "path")), "/package/nginx/1.20.0");
	assert_string_equal(json_string_value(json_object_get(e, "title")), "Nginx");
	assert_non_null(json_object_get(e, "conditions"));
	json_decref(a);
	free(out);
}

static void test_categories(void **state)
{
	char *out = run("prerelease=false&include_policy_templates=true&kibana.version=8.13.4", 1);

	assert_string_equal(out, "[{\"id\":\"custom\",\"title\":\"Custom\",\"count\":1},"
	    "{\"id\":\"edr_xdr\",\"title\":\"edr_xdr\",\"count\":1},"
	    "{\"id\":\"observability\",\"title\":\"Observability\",\"count\":1},"
	    "{\"id\":\"security\",\"title\":\"Security\",\"count\":1},{\"id\":\"web\",\"title\":\"Web\",\"count\":1}]");
	free(out);
	out = run("prerelease=false&kibana.version=8.13.4", 1);
	assert_null(strstr(out, "edr_xdr"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_search_fields),
		cmocka_unit_test(test_categories),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
