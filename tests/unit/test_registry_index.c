/*
 * The offline registry's index path against the direct one: the answers
 * computed from summaries (policy/registry_summary.c), fed one name at a
 * time newest first through al_registry_run_*, must be byte for byte the
 * answers al_registry_search / al_registry_categories give over the whole
 * documents, for every query shape test_registry.c checks (the rules
 * themselves are tested there).  A field the rules read that the summary
 * table forgot, or a candidate the streaming feed drops too early, shows
 * here as a difference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/registry.h"
#include "policy/registry_summary.h"
#include "policy/semver.h"

static const char *const QUERIES[] = {
	"kibana.version=8.13.4", "kibana.version=8.13.4&prerelease=true", "prerelease=false&kibana.version=8.13.4",
	"package=sql_input&prerelease=true&kibana.version=8.13.4", "kibana.version=8.13.4&experimental=true",
	"kibana.version=8.13.4&experimental=true&all=true", "package=multi&all=true", "all=true&prerelease=true",
	"package=nginx&kibana.version=8.10.0", "category=web&kibana.version=8.13.4", "category=crm&kibana.version=8.13.4",
	"category=infrastructure", "category=security&kibana.version=8.13.4", "category=datastore&kibana.version=8.13.4",
	"capabilities=observability&kibana.version=8.13.4", "spec.min=2.0&spec.max=3.0&kibana.version=8.13.4",
	"spec.max=2.7&kibana.version=8.13.4", "type=input&prerelease=true", "discovery=fields:host.name,process.pid",
	"discovery=datasets:nginx.access", "package=legacy_pref&prerelease=true", "all=true&package=crm_pkg&category=crm",
	"kibana.version=9.1.0&category=web", "", "kibana.version=8.13.4&include_policy_templates=true",
	"experimental=true&category=security",
};

struct sum {
	char *name, *version, *text;   /* text: as the index holds it */
	struct al_registry_summary_parts p;
	struct al_semver v;
};

static int by_name_newest(const void *a, const void *b)
{
	const struct sum *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : -al_semver_cmp(&x->v, &y->v);
}

/*
 * registry_docs.json (test_registry.c's), three versions of notice_later
 * (the one listed is not deprecated, newer ones that do not qualify are)
 * and two of notice_older (the newest is listed, an older one is
 * deprecated): the newest deprecated version's notice goes on every
 * version (packages/deprecated.go UpdateLatestDeprecatedPackagesMapByName
 * and PropagateLatestDeprecatedInfoToPackageList at AL_REGISTRY_COMMIT),
 * though the reader stops at the listed version.
 */
static json_t *load_docs(void)
{
	static const char *const NOTICE_LATER[] = {
		"{\"name\":\"notice_later\",\"version\":\"1.0.0\",\"title\":\"notice_later\",\"format_version\":\"3.0.0\","
		"\"categories\":[\"custom\"],\"conditions\":{\"kibana\":{\"version\":\"^8.0.0\"}},"
		"\"data_streams\":[{\"type\":\"logs\",\"dataset\":\"notice_later.log\",\"title\":\"log\"}]}",
		"{\"name\":\"notice_later\",\"version\":\"1.1.0\",\"title\":\"notice_later\",\"format_version\":\"3.0.0\","
		"\"categories\":[\"custom\"],\"conditions\":{\"kibana\":{\"version\":\"^9.0.0\"}},"
		"\"deprecated\":{\"description\":\"older notice\",\"since\":\"1.1.0\"}}",
		"{\"name\":\"notice_later\",\"version\":\"2.0.0-beta1\",\"title\":\"notice_later\",\"format_version\":\"3.0.0\","
		"\"categories\":[\"custom\"],\"conditions\":{\"kibana\":{\"version\":\"^9.0.0\"}},"
		"\"deprecated\":{\"description\":\"newest notice\",\"since\":\"2.0.0-beta1\","
		"\"replaced_by\":{\"package\":\"custom_logs\"}}}",
		"{\"name\":\"notice_older\",\"version\":\"2.0.0\",\"title\":\"notice_older\",\"format_version\":\"3.0.0\","
		"\"categories\":[\"custom\"],\"conditions\":{\"kibana\":{\"version\":\"^8.0.0\"}}}",
		"{\"name\":\"notice_older\",\"version\":\"1.5.0\",\"title\":\"notice_older\",\"format_version\":\"3.0.0\","
		"\"categories\":[\"custom\"],\"conditions\":{\"kibana\":{\"version\":\"^8.0.0\"}},"
		"\"deprecated\":{\"description\":\"older but the only notice\",\"since\":\"1.5.0\"}}",
	};
	json_error_t e;
	json_t *docs = json_load_file(REGISTRY_DOCS, 0, &e);

	if (docs == NULL)
		fail_msg("%s: %s", REGISTRY_DOCS, e.text);
	for (size_t i = 0; i < sizeof(NOTICE_LATER) / sizeof(NOTICE_LATER[0]); i++)
		json_array_append_new(docs, json_loads(NOTICE_LATER[i], 0, NULL));
	return docs;
}

/* The summaries of registry_docs.json, as the index holds them: by name, then newest first. */
static struct sum *summaries(size_t *n)
{
	json_t *docs = load_docs(), *d;
	struct sum *s;
	size_t i, len;

	s = calloc(json_array_size(docs), sizeof(*s));
	json_array_foreach(docs, i, d) {
		char *text = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
		s[i].text = al_registry_summary(text, strlen(text), &len);
		assert_non_null(s[i].text);
				assert_int_equal(al_registry_summary_split(s[i].text, len, &s[i].p), 0);
		s[i].name = strdup(json_string_value(json_object_get(d, "name")));
		s[i].version = strdup(json_string_value(json_object_get(d, "version")));
		assert_int_equal(al_semver_parse(s[i].version, &s[i].v), 0);
		free(text);
	}
	*n = json_array_size(docs);
	json_decref(docs);
	qsort(s, *n, sizeof(*s), by_name_newest);
	return s;
}

static char *direct(const struct al_registry_query *q, int categories)
{
	json_t *docs = load_docs();
	char *out = categories ? al_registry_categories(docs, q) : al_registry_search(docs, q);

	json_decref(docs);
	return out;
}

static char *streamed(const struct sum *s, size_t n, const struct al_registry_query *q, int categories, size_t batch)
{
	struct al_registry_run *r = al_registry_run_new(q, categories);
	struct al_registry_summary_parts dep = {0};
	int skip = 0, have_dep = 0;

	assert_non_null(r);
	if (batch)
		al_registry_run_set_batch(r, batch);
	for (size_t i = 0; i < n; i++) {
		json_t *doc;
		if (i == 0 || strcmp(s[i].name, s[i - 1].name) != 0) {
			/* as the index's reader does: the name's newest deprecated version first, told by its skeleton */
			skip = 0;
			have_dep = 0;
			for (size_t j = i; j < n && !strcmp(s[j].name, s[i].name); j++) {
				if (s[j].p.dlen > 0) {
					dep = s[j].p;
					have_dep = 1;
					if (!al_registry_run_rendered(r)) {
						doc = json_loadb(s[j].p.summary, s[j].p.slen, 0, NULL);
						al_registry_run_add_deprecated(r, doc);
						json_decref(doc);
					}
					break;
				}
			}
		}
		if (skip)
			continue;
		if (al_registry_run_rendered(r)) {
			json_t *skel = json_loadb(s[i].p.skel, s[i].p.klen, 0, NULL);
			skip = al_registry_run_add_rendered(r, skel, s[i].p.entry, s[i].p.elen, s[i].p.hole,
			           have_dep ? dep.dep : NULL, have_dep ? dep.dlen : 0) == 1;
			json_decref(skel);
			continue;
		}
		if (al_registry_run_skeletons(r)) {
			json_t *skel = json_loadb(s[i].p.skel, s[i].p.klen, 0, NULL);
			al_registry_run_add_skeleton(r, skel, s[i].p.summary, s[i].p.slen);
			json_decref(skel);
			continue;
		}
		doc = json_loadb(s[i].p.summary, s[i].p.slen, 0, NULL);
		skip = al_registry_run_add(r, doc, s[i].p.summary, s[i].p.slen) == 1;
		json_decref(doc);
	}
	return al_registry_run_finish(r);
}

static void test_index_answers_equal_direct(void **state)
{
	size_t n;
	struct sum *s = summaries(&n);

	(void)state;
	for (size_t i = 0; i < sizeof(QUERIES) / sizeof(QUERIES[0]); i++) {
		for (int cat = 0; cat < 2; cat++) {
			struct al_registry_query q;
			char *a, *b;
			if (al_registry_query_parse(QUERIES[i], strlen(QUERIES[i]), cat, &q) != 0)
				fail_msg("%s: refused: %s", QUERIES[i], q.error);
			a = direct(&q, cat);
			assert_non_null(a);
			/* all=true answers in batches, spliced: of 256 (one here), 1 and 7 documents */
			for (size_t batch = 0; batch < 3; batch++) {
				b = streamed(s, n, &q, cat, (size_t[]){0, 1, 7}[batch]);
				assert_non_null(b);
				if (strcmp(a, b) != 0)
					fail_msg("%s?%s (batch %zu):\n direct  %s\n indexed %s", cat ? "/categories" : "/search",
					    QUERIES[i], batch, a, b);
				free(b);
			}
			free(a);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(s[i].name);
		free(s[i].version);
		free(s[i].text);
	}
	free(s);
}

/* <base>/package/<name>/<version>[/] and nothing else gets a key; one name's versions share a prefix. */
static void test_index_key(void **state)
{
	char k[AL_REGISTRY_INDEX_KEY_MAX + 1];
	int n;

	(void)state;
	n = al_registry_index_key("https://epr.elastic.co/package/nginx/1.20.0/", 44, k);
	assert_int_equal(n, 22 + 1 + 5 + 1 + 6);
	assert_memory_equal(k, "https://epr.elastic.co\0nginx\0" "1.20.0", (size_t)n);
	assert_int_equal(al_registry_index_key("https://epr.elastic.co/package/nginx/1.20.0", 43, k), n);
	assert_int_equal(al_registry_index_key("http://h/package/nginx/", 23, k), -22);
	assert_int_equal(al_registry_index_key("http://h/package/nginx/1.0/x/", 29, k), -22);
	assert_int_equal(al_registry_index_key("http://h/search?package=nginx", 29, k), -22);
	assert_int_equal(al_registry_index_key("http://h/package/a/1.0/?x=1", 27, k), -22);
	assert_int_equal(al_registry_index_key("http://h/epr/nginx/nginx-1.0.zip", 32, k), -22);
	assert_null(al_registry_summary("[1]", 3, &(size_t){0}));
	assert_null(al_registry_summary("{\"name\":\"x\"}", 12, &(size_t){0}));
}

/* One version as the index reads it and as al_semver_parse reads it: the same verdict, the same value. */
static void same_reading(const char *s)
{
	struct al_semver a, b;
	int ra = al_registry_index_version(s, strlen(s), &a);
	int rb = strlen(s) < 64 && al_semver_parse(s, &b) == 0 ? 0 : -22;

	if (ra != rb)
		fail_msg("\"%s\": index %d, al_semver_parse %d", s, ra, rb);
	if (ra == 0 && (a.major != b.major || a.minor != b.minor || a.patch != b.patch || strcmp(a.pre, b.pre) != 0))
		fail_msg("\"%s\": index %ld.%ld.%ld-%s, al_semver_parse %ld.%ld.%ld-%s", s, a.major, a.minor, a.patch,
		    a.pre, b.major, b.minor, b.patch, b.pre);
}

/*
 * al_registry_index_version reads "major.minor.patch" itself (a list
 * parses every cached version) and leaves every other form to
 * al_semver_parse: both must agree on every string, plain or not.
 */
static void test_index_version_reads_as_semver(void **state)
{
	static const char *const cases[] = {"1.2.3", "0.0.0", "01.2.3", "1.02.003", "999999999.1.2", "1000000000.1.2",
		"0000000001.1.1", "123456789.123456789.123456789", "1.2", "1", "1.2.3.4", "1.2.3-beta1", "1.2.3+b",
		"v1.2.3", "V1.2.3", " 1.2.3", "1.2.3 ", "1..3", ".1.2", "1.2.", "", "1.2.x", "1.2.*", "a.b.c",
		"1.2.3-", "8.13.4-SNAPSHOT", "1.-2.3", "+1.2.3", NULL};
	const char alphabet[] = "0123456789.-+vx ";
	unsigned seed = 26;
	char s[16];

	(void)state;
	for (int i = 0; cases[i]; i++)
		same_reading(cases[i]);
	for (int n = 0; n < 200000; n++) {
		int len = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 14;
		for (int k = 0; k < len; k++)
			s[k] = alphabet[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof(alphabet) - 1)];
		s[len] = '\0';
		same_reading(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_answers_equal_direct),
		cmocka_unit_test(test_index_key),
		cmocka_unit_test(test_index_version_reads_as_semver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
