/*
 * The offline registry's rules, against elastic/package-registry's own at
 * the commit policy/registry.c pins (AL_REGISTRY_COMMIT, 16f54b67):
 *
 *   packages/packages.go  Filter.Apply: first phase per package (release
 *       experimental and prereleases dropped unless prerelease=true; Kibana
 *       version; agent version; package; type; capabilities; discovery;
 *       spec), then the newest version of each name unless all=true, then
 *       filterCategories (the indexers' Get applies it to the whole list:
 *       the newest version is chosen before the category filter).
 *       legacyApply (experimental=true): prereleases included but a release
 *       wins over a newer prerelease; all=true drops the prereleases and
 *       tech previews (0.x) of names that have a version that is neither;
 *       no agent version/capabilities/spec/discovery.
 *       discoveryFilterFields: all of the package's fields in the list;
 *       discoveryFilterDatasets: one of its datasets is enough.
 *       filterPolicyTemplates: exact category match on templates.
 *       Packages.Less: by name, then by semver (#1585, #1689).
 *   packages/package.go   isPrerelease (a prerelease tag; 0.x is a tech
 *       preview, not a prerelease, since #1538), hasCategory (a category or
 *       any of its subcategories), HasCompatibleSpec (format_version
 *       major.minor in [min, max]), WorksWithCapabilities, BasePackage (the
 *       /search fields, BaseDataStreams among them).
 *   search.go newSearchFilterFromQuery / getSpecVersion, categories.go
 *       newCategoriesFilterFromQuery (spec, capabilities, discovery since
 *       #1059/#1061) / getCategories / getCategoriesOutput: 400 messages,
 *       counts, titles and parents (categories.yml; web, kubernetes,
 *       message_queue under observability since #970).
 *
 * These answers were first written by hand from an older registry
 * (c7e9d427); where the pinned commit changed a rule, the row's new answer
 * was checked against that rule and its "why" names it.  The registry's
 * own goldens are held by tests/integration/test_registry_conformance.py.
 *
 * The package set (registry_docs.json): 26 packages, 33 versions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/registry.h"

static json_t *docs(void)
{
	json_error_t e;
	json_t *d = json_load_file(REGISTRY_DOCS, 0, &e);

	if (d == NULL)
		fail_msg("%s: %s", REGISTRY_DOCS, e.text);
	return d;
}

static char *run(const char *query, int categories)
{
	struct al_registry_query q;
	json_t *d = docs();
	char *out;

	if (al_registry_query_parse(query, strlen(query), categories, &q) != 0)
		fail_msg("%s: refused: %s", query, q.error);
	out = categories ? al_registry_categories(d, &q) : al_registry_search(d, &q);
	json_decref(d);
	return out;
}

/* "name@version,..." of a /search answer, in its order */
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

/* "id:count,..." of a /categories answer */
static void counts(const char *json, char *buf, size_t cap)
{
	json_t *a = json_loads(json, 0, NULL), *e;
	size_t i, o = 0;

	buf[0] = '\0';
	json_array_foreach(a, i, e)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s:%lld", o ? "," : "", json_string_value(json_object_get(e, "id")),
		    (long long)json_integer_value(json_object_get(e, "count")));
	json_decref(a);
}

#define ALL_GA "alpha@1.0.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@2.0.0,custom_logs@1.0.0," \
	"deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,endpoint@8.13.0,k8s@1.0.0,kafka@1.0.0," \
	"legacy_pref@1.0.0,multi@1.10.0,new_spec@1.0.0,nginx@1.20.0,no_cond@1.0.0,old_spec@1.0.0," \
	"prometheus@1.0.0,sql_input@0.3.0,ticket@1.0.0"

static const struct {
	const char *query, *want, *why;
} SEARCH[] = {
	{"kibana.version=8.13.4", ALL_GA,
	    "Kibana's default list: beta kept; experimental release, prereleases and ^9 dropped; 0.x listed "
	    "(isPrerelease, #1538); by name then semver (Packages.Less, #1585)"},
	{"kibana.version=8.13.4&prerelease=true",
	    "alpha@1.0.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@2.0.0,custom_logs@1.0.0,"
	    "deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,endpoint@8.13.0,exp_pkg@1.0.0,k8s@1.0.0,"
	    "kafka@1.0.0,legacy_pref@2.0.0-beta1,multi@1.10.0,new_spec@1.0.0,nginx@1.21.0-beta1,no_cond@1.0.0,"
	    "old_spec@1.0.0,pre_only@1.0.0-rc1,prometheus@1.0.0,sql_input@0.3.0,ticket@1.0.0",
	    "prerelease=true: newest of all, experimental release included"},
	{"package=sql_input&prerelease=false&kibana.version=8.13.4", "sql_input@0.3.0",
	    "0.x is a tech preview, not a prerelease (packages/package.go isPrerelease since #1538)"},
	{"package=sql_input&prerelease=true&kibana.version=8.13.4", "sql_input@0.3.0",
	    "with prerelease=true it is there"},
	{"package=beta_pkg&prerelease=false&kibana.version=8.13.4", "beta_pkg@1.2.0",
	    "release beta is not a prerelease"},
	{"kibana.version=8.13.4&experimental=true",
	    "alpha@1.0.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@2.0.0,custom_logs@1.0.0,"
	    "deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,endpoint@8.13.0,exp_pkg@1.0.0,k8s@1.0.0,"
	    "kafka@1.0.0,legacy_pref@1.0.0,multi@1.10.0,new_spec@1.0.0,nginx@1.20.0,no_cond@1.0.0,old_spec@1.0.0,"
	    "pre_only@1.0.0-rc1,prometheus@1.0.0,sql_input@0.3.0,ticket@1.0.0",
	    "legacyApply: a release wins over a newer prerelease; prerelease-only packages listed"},
	{"kibana.version=8.13.4&experimental=true&all=true",
	    "alpha@1.0.0,apache@1.5.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@1.0.0,"
	    "crm_pkg@2.0.0,custom_logs@1.0.0,deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,"
	    "endpoint@8.13.0,exp_pkg@1.0.0,k8s@1.0.0,kafka@1.0.0,legacy_pref@1.0.0,multi@1.2.0,multi@1.9.0,"
	    "multi@1.10.0,new_spec@1.0.0,nginx@1.19.0,nginx@1.20.0,no_cond@1.0.0,old_spec@1.0.0,"
	    "pre_only@1.0.0-rc1,prometheus@1.0.0,sql_input@0.3.0,ticket@1.0.0",
	    "legacyApply all=true: prereleases and tech previews of names with a GA version dropped (sql_input "
	    "has none); by semver"},
	{"package=multi&all=true", "multi@1.2.0,multi@1.9.0,multi@1.10.0",
	    "all=true; Packages.Less orders versions by semver (#1689), not as strings"},
	{"package=nginx&kibana.version=8.10.0", "nginx@1.19.0",
	    "newest version whose Kibana condition holds"},
	{"package=nginx&kibana.version=8.13.4&all=true", "nginx@1.19.0,nginx@1.20.0",
	    "every qualifying version"},
	{"category=web&kibana.version=8.13.4", "nginx@1.20.0",
	    "apache's newest (1.6.0) left web: not listed at 1.5.0; future needs Kibana 9"},
	{"category=crm&kibana.version=8.13.4", "alpha@1.0.0",
	    "crm_pkg's newest left crm"},
	{"category=observability&kibana.version=8.13.4",
	    "apache@1.6.0,apm@8.13.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,k8s@1.0.0,kafka@1.0.0,nginx@1.20.0,"
	    "prometheus@1.0.0",
	    "subcategories count: monitoring, kubernetes, message_queue, web are observability's (categories.yml, "
	    "#970)"},
	{"category=infrastructure", "",
	    "infrastructure has no subcategories since #970 (categories.yml keeps it for BWC) and no package is "
	    "in it"},
	{"category=security&kibana.version=8.13.4", "aws@2.0.0,beta_pkg@1.2.0,endpoint@8.13.0",
	    "aws matches through a policy template in network_security, a security subcategory"},
	{"category=datastore&kibana.version=8.13.4", "aws@2.0.0,sql_input@0.3.0",
	    "policy templates' categories (aws); sql_input 0.3.0 is listed since #1538"},
	{"capabilities=observability&kibana.version=8.13.4",
	    "alpha@1.0.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@2.0.0,custom_logs@1.0.0,"
	    "deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,k8s@1.0.0,kafka@1.0.0,legacy_pref@1.0.0,"
	    "multi@1.10.0,new_spec@1.0.0,nginx@1.20.0,no_cond@1.0.0,old_spec@1.0.0,prometheus@1.0.0,"
	    "sql_input@0.3.0,ticket@1.0.0",
	    "endpoint needs the security capability"},
	{"capabilities=security,observability&kibana.version=8.13.4", ALL_GA,
	    "every required capability offered"},
	{"spec.min=2.0&spec.max=3.0&kibana.version=8.13.4",
	    "alpha@1.0.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@2.0.0,custom_logs@1.0.0,"
	    "deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,endpoint@8.13.0,k8s@1.0.0,kafka@1.0.0,"
	    "legacy_pref@1.0.0,multi@1.10.0,nginx@1.20.0,no_cond@1.0.0,prometheus@1.0.0,sql_input@0.3.0,"
	    "ticket@1.0.0",
	    "format_version major.minor within [2.0, 3.0]: 1.0 and 3.4 out"},
	{"spec.max=2.7&kibana.version=8.13.4", "nginx@1.19.0,old_spec@1.0.0",
	    "the spec filter is in the first phase: nginx 1.19.0 (2.7.0) is then the newest"},
	{"type=input&prerelease=true", "sql_input@0.3.0",
	    "type"},
	{"discovery=fields:host.name", "disc_a@1.0.0",
	    "every field the package declares must be in the query"},
	{"discovery=fields:host.name,process.pid", "disc_a@1.0.0,disc_b@1.0.0",
	    "a longer list admits more"},
	{"discovery=datasets:nginx.access", "disc_ds@1.0.0",
	    "datasets"},
	{"discovery=fields:host.name&discovery=datasets:nginx.access", "",
	    "every discovery filter must match"},
	{"package=nope", "",
	    "an unknown package gives []"},
	{"kibana.version=7.17.0", "no_cond@1.0.0",
	    "a package without a Kibana condition qualifies"},
	{"kibana.version=8.13", ALL_GA,
	    "Masterminds' NewVersion is lenient: 8.13 is 8.13.0"},
	{"package=legacy_pref&prerelease=true", "legacy_pref@2.0.0-beta1",
	    "prerelease=true prefers the newest"},
	{"all=true&package=crm_pkg&category=crm", "crm_pkg@1.0.0",
	    "all=true: the category filter per version"},
	{"kibana.version=9.1.0&category=web", "future@2.0.0",
	    "Kibana 9"},
	{"type=integration&package=sql_input&prerelease=true", "",
	    "sql_input is an input package"},
	{"",
	    "alpha@1.0.0,apache@1.6.0,apm@8.13.0,aws@2.0.0,beta_pkg@1.2.0,crm_pkg@2.0.0,custom_logs@1.0.0,"
	    "deprecated_pkg@1.0.0,disc_a@1.0.0,disc_b@1.0.0,disc_ds@1.0.0,endpoint@8.13.0,future@2.0.0,k8s@1.0.0,"
	    "kafka@1.0.0,legacy_pref@1.0.0,multi@1.10.0,new_spec@1.0.0,nginx@1.20.0,no_cond@1.0.0,old_spec@1.0.0,"
	    "prometheus@1.0.0,sql_input@0.3.0,ticket@1.0.0",
	    "no parameters: a zero filter (prereleases dropped, no Kibana condition checked)"},
};

static void test_search_table(void **state)
{
	(void)state;
	assert_true(sizeof(SEARCH) / sizeof(SEARCH[0]) >= 30);
	for (size_t i = 0; i < sizeof(SEARCH) / sizeof(SEARCH[0]); i++) {
		char *out = run(SEARCH[i].query, 0), got[4096];
		names(out, got, sizeof(got));
		free(out);
		if (strcmp(got, SEARCH[i].want) != 0)
			fail_msg("/search?%s (%s):\n got  [%s]\n want [%s]", SEARCH[i].query, SEARCH[i].why, got, SEARCH[i].want);
	}
}

/* search.go / categories.go: invalid values get 400 with the registry's message. */
static void test_bad_values(void **state)
{
	static const struct {
		const char *query;
		int categories;
		const char *error;
	} BAD[] = {
		{"prerelease=foo", 0, "invalid 'prerelease' query param: 'foo'"},
		{"experimental=yes", 0, "invalid 'experimental' query param: 'yes'"},
		{"all=maybe", 0, "invalid 'all' query param: 'maybe'"},
		{"spec.max=2.10.1", 0, "invalid 'spec.max' version: invalid version '2.10.1': it should be <major.version>"},
		{"spec.min=3", 0, "invalid 'spec.min' version: invalid version '3': it should be <major.version>"},
		/*
		 * Masterminds/semver v3.5.0 (go.mod at the pinned commit): NewVersion's
		 * errors are lower case since v3.4.0 (#269); it takes "v" but not "V",
		 * coerces leading zeros, refuses a numeric prerelease with one.
		 */
		{"kibana.version=eight", 0, "invalid Kibana version 'eight': invalid semantic version"},
		{"kibana.version=V8.13.4", 0, "invalid Kibana version 'V8.13.4': invalid semantic version"},
		{"kibana.version=8.13.4-01", 0, "invalid Kibana version '8.13.4-01': version segment starts with 0"},
		{"kibana.version=8.13.4-", 0, "invalid Kibana version '8.13.4-': invalid semantic version"},
		{"spec.min=1.x", 0, "invalid 'spec.min' version: invalid spec version '1.x': invalid semantic version"},
		{"discovery=foo", 0, "invalid 'discovery' query param: 'foo': could not parse filter \"foo\""},
		{"discovery=bar:x", 0, "invalid 'discovery' query param: 'bar:x': unknown discovery filter \"bar\""},
		{"include_policy_templates=maybe", 1, "invalid 'include_policy_templates' query param: 'maybe'"},
		{"kibana.version=x.y&include_policy_templates=true", 1, "invalid Kibana version 'x.y': invalid semantic version"},
	};
	struct al_registry_query q;

	(void)state;
	for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
		if (al_registry_query_parse(BAD[i].query, strlen(BAD[i].query), BAD[i].categories, &q) == 0)
			fail_msg("%s should be refused", BAD[i].query);
		assert_string_equal(q.error, BAD[i].error);
	}
	/* /categories reads spec.min/spec.max since #1059: a bad one is refused there too */
	assert_int_equal(al_registry_query_parse("spec.max=2.10.1&all=x", 21, 1, &q), -EINVAL);
	assert_string_equal(q.error, "invalid 'spec.max' version: invalid version '2.10.1': it should be <major.version>");
	/* what an endpoint does not read, it does not refuse */
	assert_int_equal(al_registry_query_parse("all=x&category=", 15, 1, &q), 0);
	assert_int_equal(al_registry_query_parse("include_policy_templates=x", 26, 0, &q), 0);
	/* coerceNewVersion: "v" and leading zeros are read */
	assert_int_equal(al_registry_query_parse("kibana.version=v08.013", 22, 0, &q), 0);
	assert_string_equal(q.kibana_version, "8.13.0");
	/* empty values are no filter (query.Get(k) != "") */
	assert_int_equal(al_registry_query_parse("prerelease=&kibana.version=", 27, 0, &q), 0);
}

/* BasePackage: the /search fields, policy templates as BasePolicyTemplate, no data_streams. */
static void test_search_shape(void **state)
{
	char *out = run("package=aws&category=datastore", 0);
	json_t *a = json_loads(out, 0, NULL), *e = json_array_get(a, 0), *pts;
	const char *first = NULL;
	void *it;

	(void)state;
	assert_non_null(e);
	it = json_object_iter(e);
	first = json_object_iter_key(it);
	assert_string_equal(first, "name");
	/* BasePackage.BaseDataStreams (setBaseDataStreams): type, dataset, title only */
	assert_int_equal(json_object_size(json_array_get(json_object_get(e, "data_streams"), 0)), 3);
	assert_null(json_object_get(e, "format_version"));
	assert_non_null(json_object_get(e, "owner"));
	assert_non_null(json_object_get(e, "signature_path"));
	/* filterPolicyTemplates: only the templates in the category (aws itself is not in datastore) */
	pts = json_object_get(e, "policy_templates");
	assert_int_equal(json_array_size(pts), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(pts, 0), "name")), "rds");
	assert_string_equal(json_string_value(json_object_get(json_array_get(pts, 1), "name")), "dynamodb");
	json_decref(a);
	free(out);
	out = run("package=deprecated_pkg", 0);
	a = json_loads(out, 0, NULL);
	assert_non_null(json_object_get(json_array_get(a, 0), "deprecated"));
	json_decref(a);
	free(out);
	out = run("package=endpoint&kibana.version=8.13.4", 0);
	a = json_loads(out, 0, NULL);
	pts = json_object_get(json_array_get(a, 0), "policy_templates");
	assert_int_equal(json_array_size(pts), 1);
	assert_null(json_object_get(json_array_get(pts, 0), "inputs")); /* not a BasePolicyTemplate field */
	json_decref(a);
	free(out);
}

/* sql_input 0.3.0 (datastore) is counted since isPrerelease changed (#1538) */
#define C1 "aws:1,cloud:1,crm:1,custom:5,datastore:1,kubernetes:1,message_queue:1,monitoring:2,network:2," \
	"observability:5,productivity:1,security:2,ticketing:1,web:1"

static void test_categories(void **state)
{
	static const struct {
		const char *query, *want, *why;
	} CAT[] = {
		{"kibana.version=8.13.4", C1, "one count per package's own category, newest version of each"},
		{"kibana.version=8.13.4&include_policy_templates=true",
		    "aws:4,cloud:4,crm:1,custom:5,datastore:4,edr_xdr:2,kubernetes:1,message_queue:1,monitoring:2,network:2,"
		    "network_security:2,observability:5,productivity:1,security:3,ticketing:1,web:1",
		    "getCategories: package categories again per template; a template category once more for the package"},
		{"kibana.version=8.13.4&prerelease=true",
		    "aws:1,cloud:1,crm:1,custom:5,datastore:1,kubernetes:1,message_queue:1,monitoring:2,network:2,"
		    "observability:5,productivity:1,security:4,ticketing:1,web:1", "prereleases and experimental counted"},
		{"kibana.version=8.13.4&experimental=true",
		    "aws:1,cloud:1,crm:1,custom:5,datastore:1,kubernetes:1,message_queue:1,monitoring:2,network:2,"
		    "observability:5,productivity:1,security:4,ticketing:1,web:1", "legacyApply"},
		{"kibana.version=8.13.4&spec.max=1.0&capabilities=none", "custom:1",
		    "newCategoriesFilterFromQuery reads spec and capabilities (#1059, #1061): old_spec only"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(CAT) / sizeof(CAT[0]); i++) {
		char *out = run(CAT[i].query, 1), got[2048];
		counts(out, got, sizeof(got));
		free(out);
		if (strcmp(got, CAT[i].want) != 0)
			fail_msg("/categories?%s (%s):\n got  [%s]\n want [%s]", CAT[i].query, CAT[i].why, got, CAT[i].want);
	}
}

/* getCategoriesOutput: titles and parents from categories.yml; unknown ids are their own title. */
static void test_category_titles(void **state)
{
	char *out = run("kibana.version=8.13.4&include_policy_templates=true", 1);
	json_t *a = json_loads(out, 0, NULL), *e;
	size_t i;
	int seen = 0;

	(void)state;
	json_array_foreach(a, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *title = json_string_value(json_object_get(e, "title"));
		const char *pid = json_string_value(json_object_get(e, "parent_id"));
		const char *ptitle = json_string_value(json_object_get(e, "parent_title"));
		/* categories.yml since #970: web and message_queue are observability's */
		if (!strcmp(id, "web"))
			assert_true(!strcmp(title, "Web Server") && !strcmp(pid, "observability") && !strcmp(ptitle, "Observability")), seen++;
		if (!strcmp(id, "message_queue"))
			assert_true(!strcmp(title, "Message Broker") && !strcmp(pid, "observability")), seen++;
		if (!strcmp(id, "monitoring"))
			assert_true(!strcmp(pid, "observability") && !strcmp(ptitle, "Observability")), seen++;
		if (!strcmp(id, "edr_xdr"))
			assert_true(!strcmp(title, "EDR/XDR") && !strcmp(pid, "security")), seen++;
		if (!strcmp(id, "datastore"))
			assert_true(!strcmp(title, "Database") && pid == NULL), seen++;
		if (!strcmp(id, "os_system") || !strcmp(id, "aws"))
			assert_true(pid == NULL);
	}
	assert_int_equal(seen, 5);
	json_decref(a);
	free(out);
}

/*
 * Rules the registry gained by AL_REGISTRY_COMMIT (16f54b67) that the
 * package set above does not reach, over a few documents of their own.
 */
static const char RULE_DOCS[] =
    "[{\"name\":\"ds2\",\"version\":\"1.0.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\","
    "  \"discovery\":{\"datasets\":[{\"name\":\"a.x\"},{\"name\":\"a.y\"}]},"
    "  \"data_streams\":[{\"type\":\"logs\",\"dataset\":\"ds2.x\",\"title\":\"X\","
    "    \"ingest_pipeline\":\"p\",\"streams\":[]}]},"
    " {\"name\":\"agent_v\",\"version\":\"1.0.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\","
    "  \"conditions\":{\"agent\":{\"version\":\"^9.2.0\"}}},"
    " {\"name\":\"tp\",\"version\":\"0.9.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\"},"
    " {\"name\":\"tp\",\"version\":\"1.0.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\"},"
    " {\"name\":\"tp_only\",\"version\":\"0.2.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\"},"
    " {\"name\":\"dep\",\"version\":\"1.0.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\"},"
    " {\"name\":\"dep\",\"version\":\"2.0.0\",\"type\":\"integration\",\"format_version\":\"3.0.0\","
    "  \"deprecated\":{\"since\":\"2.0.0\",\"description\":\"gone\"}}]";

static void run_on(const char *docs_json, const char *query, int categories, char *got, size_t cap)
{
	struct al_registry_query q;
	json_t *d = json_loads(docs_json, 0, NULL);
	char *out;

	assert_non_null(d);
	if (al_registry_query_parse(query, strlen(query), categories, &q) != 0)
		fail_msg("%s: refused: %s", query, q.error);
	out = categories ? al_registry_categories(d, &q) : al_registry_search(d, &q);
	json_decref(d);
	names(out, got, cap);
	free(out);
}

static void test_rules_at_pin(void **state)
{
	static const struct {
		const char *query, *want, *why;
	} ROWS[] = {
		{"discovery=datasets:a.x", "ds2@1.0.0",
		    "packages.go discoveryFilterDatasets.Matches: one of the package's datasets in the list is enough"},
		{"discovery=datasets:a.z", "", "none of them: no match"},
		{"package=agent_v&agent.version=9.1.0", "", "Filter.Apply HasAgentVersion: ^9.2.0 excludes 9.1.0"},
		{"package=agent_v&agent.version=9.5.0", "agent_v@1.0.0", "^9.2.0 holds for 9.5.0"},
		{"package=agent_v&agent.version=9.1.0&experimental=true", "agent_v@1.0.0", "legacyApply reads no agent version"},
		{"package=tp&all=true", "tp@0.9.0,tp@1.0.0", "0.9.0 is no prerelease (isPrerelease, #1538)"},
		{"experimental=true&all=true&package=tp", "tp@1.0.0",
		    "legacyApply all=true drops tech previews (isTechPreview, 0.x) of names with a GA version"},
		{"experimental=true&all=true&package=tp_only", "tp_only@0.2.0", "... and keeps them when there is none"},
		{"prerelease=true&prerelease=foo&package=tp_only", "tp_only@0.2.0",
		    "url.Values: query.Get reads the first value only"},
		{"package=tp_only&prerelease=%zz&package=x", "tp_only@0.2.0",
		    "url.ParseQuery drops a pair with a bad escape, and the first package= wins"},
	};
	struct al_registry_query q;
	char *out;
	json_t *a, *d;

	(void)state;
	for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
		char got[1024];
		run_on(RULE_DOCS, ROWS[i].query, 0, got, sizeof(got));
		if (strcmp(got, ROWS[i].want) != 0)
			fail_msg("/search?%s (%s):\n got  [%s]\n want [%s]", ROWS[i].query, ROWS[i].why, got, ROWS[i].want);
	}
	/* NewDiscoveryFilter("") fails: an empty discovery= is a 400, unlike other empty values */
	assert_int_equal(al_registry_query_parse("discovery=", 10, 0, &q), -EINVAL);
	assert_string_equal(q.error, "invalid 'discovery' query param: '': could not parse filter \"\"");
	assert_int_equal(al_registry_query_parse("agent.version=nine", 18, 1, &q), -EINVAL);
	assert_string_equal(q.error, "invalid agent version 'nine': invalid semantic version");

	/*
	 * packages/deprecated.go PropagateLatestDeprecatedInfoToPackageList: dep
	 * 1.0.0 carries 2.0.0's notice; BaseDataStream keeps type, dataset, title.
	 */
	d = json_loads(RULE_DOCS, 0, NULL);
	assert_int_equal(al_registry_query_parse("package=dep&all=true", 20, 0, &q), 0);
	out = al_registry_search(d, &q);
	a = json_loads(out, 0, NULL);
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(a, 0), "deprecated"), "since")),
	    "2.0.0");
	json_decref(a);
	free(out);
	assert_int_equal(al_registry_query_parse("package=ds2", 11, 0, &q), 0);
	out = al_registry_search(d, &q);
	a = json_loads(out, 0, NULL);
	assert_int_equal(json_object_size(json_array_get(json_object_get(json_array_get(a, 0), "data_streams"), 0)), 3);
	assert_null(json_object_get(json_array_get(a, 0), "format_version"));
	json_decref(a);
	free(out);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search_table),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_search_shape),
		cmocka_unit_test(test_categories),
		cmocka_unit_test(test_category_titles),
		cmocka_unit_test(test_rules_at_pin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
