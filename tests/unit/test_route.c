/* Routes: longest prefix, URL building, and the path checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "policy/config.h"
#include "policy/route.h"

#define P(s) s, strlen(s)

static void test_longest_prefix(void **state)
{
	struct al_config *c;
	char err[256], url[256];

	assert_int_equal(al_config_load(NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(al_route_find(c, P("/downloads/endpoint/manifest/artifacts-8.13.4.zip"))->upstream,
	    "https://artifacts.security.elastic.co");
	assert_string_equal(al_route_find(c, P("/downloads/beats/x"))->upstream, "https://artifacts.elastic.co");
	assert_string_equal(al_route_find(c, P("/GPG-KEY-elastic-agent"))->upstream, "https://artifacts.elastic.co");
	assert_string_equal(al_route_find(c, P("/search?x"))->upstream, "https://epr.elastic.co");
	assert_int_equal(al_route_url(al_route_find(c, P("/search?a=b")), P("/search?a=b"), url, sizeof(url)),
	    (int)strlen("https://epr.elastic.co/search?a=b"));
	assert_string_equal(url, "https://epr.elastic.co/search?a=b");
	assert_true(al_route_url(al_route_find(c, P("/x")), P("/x"), url, 10) < 0);
	al_config_free(c);
}

static void test_path_check(void **state)
{
	assert_int_equal(al_path_check(P("/package/nginx/1.20.0/")), 0);
	assert_int_equal(al_path_check(P("/search?q=../x")), 0); /* the query is not a path */
	assert_int_equal(al_path_check(P("/a/..b/c")), 0);
	assert_int_not_equal(al_path_check(P("/a/../b")), 0);
	assert_int_not_equal(al_path_check(P("/a/..")), 0);
	assert_int_not_equal(al_path_check(P("/a/./b")), 0);
	assert_int_not_equal(al_path_check(P("/a/%2e%2E/b")), 0);
	assert_int_not_equal(al_path_check(P("/a/.%2e/b")), 0);
	assert_int_not_equal(al_path_check(P("/a%2fb")), 0);
	assert_int_not_equal(al_path_check(P("/a%5cb")), 0);
	assert_int_not_equal(al_path_check(P("/a\\b")), 0);
	assert_int_not_equal(al_path_check(P("a/b")), 0);
}

/*
 * strip_prefix: Elasticsearch's xpack.ml.model_repository is a base URL; the
 * ml-package-loader resolves <base>/ + <file> (ModelLoaderUtils.
 * resolvePackageLocation, elasticsearch 01195333), so a repository at
 * http://airlock:8080/ml-models asks /ml-models/<file> and the upstream
 * file is https://ml-models.elastic.co/<file>.
 */
static void test_strip_prefix(void **state)
{
	struct al_route r = {.prefix = "/ml-models/", .upstream = "https://ml-models.elastic.co", .strip_prefix = 1};
	struct al_route plain = {.prefix = "/downloads/", .upstream = "https://artifacts.elastic.co"};
	struct al_route noslash = {.prefix = "/models", .upstream = "https://m", .strip_prefix = 1};
	char buf[256];

	(void)state;
	assert_int_equal(al_route_url(&r, P("/ml-models/elser_model_2.pt"), buf, sizeof(buf)),
	    (int)strlen("https://ml-models.elastic.co/elser_model_2.pt"));
	assert_string_equal(buf, "https://ml-models.elastic.co/elser_model_2.pt");
	assert_int_equal(al_route_url(&r, P("/ml-models/"), buf, sizeof(buf)), (int)strlen("https://ml-models.elastic.co/"));
	assert_string_equal(buf, "https://ml-models.elastic.co/");
	assert_int_equal(al_route_skip(&r, P("/ml-models/a?x=1")), 10);
	assert_int_equal(al_route_skip(&plain, P("/downloads/a")), 0);
	al_route_url(&plain, P("/downloads/a"), buf, sizeof(buf));
	assert_string_equal(buf, "https://artifacts.elastic.co/downloads/a");
	assert_int_equal(al_route_skip(&noslash, P("/models/a.pt")), 7);
	assert_int_equal(al_route_skip(&noslash, P("/models")), 0);
	assert_int_equal(al_route_skip(&noslash, P("/modelsx")), 0);
	assert_int_equal(al_route_url(&r, P("/ml-models/elser_model_2.pt"), buf, 20), -ENAMETOOLONG);
	/*
	 * Kibana's product docs: fetchArtifactVersions asks ${artifactRepositoryUrl}?max-keys=1000
	 * (kibana 156fdbc6, product_doc_base .../steps/fetch_artifact_versions.ts), so with
	 * http://airlock/product-docs the target is /product-docs?max-keys=1000: the upstream
	 * path gets its '/' back, and the key is the bucket's own https://host/?max-keys=1000.
	 */
	{
		struct al_route pd = {.prefix = "/product-docs", .upstream = "https://kb.example", .strip_prefix = 1};
		assert_int_equal(al_route_url(&pd, P("/product-docs?max-keys=1000"), buf, sizeof(buf)),
		    (int)strlen("https://kb.example/?max-keys=1000"));
		assert_string_equal(buf, "https://kb.example/?max-keys=1000");
		al_route_url(&pd, P("/product-docs/kb-product-doc-kibana-8.17.zip"), buf, sizeof(buf));
		assert_string_equal(buf, "https://kb.example/kb-product-doc-kibana-8.17.zip");
		al_route_url(&pd, P("/product-docs"), buf, sizeof(buf));
		assert_string_equal(buf, "https://kb.example/product-docs"); /* not stripped: nothing would be left */
	}
}

static void test_agent_version(void **state)
{
	char v[32];

	assert_int_equal(al_agent_version_of(P("https://artifacts.elastic.co/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"), v, sizeof(v)), 0);
	assert_string_equal(v, "8.13.4");
	assert_int_equal(al_agent_version_of(P("https://a/downloads/beats/elastic-agent/elastic-agent-9.0.0-amd64.deb.sha512"), v, sizeof(v)), 0);
	assert_string_equal(v, "9.0.0");
	/* FIPS builds: elastic-agent's artifact.New (137f0ac9) puts "fips" between name and version */
	assert_int_equal(al_agent_version_of(P("https://a/downloads/beats/elastic-agent/elastic-agent-fips-9.1.0-linux-arm64.tar.gz"), v, sizeof(v)), 0);
	assert_string_equal(v, "9.1.0");
	assert_int_not_equal(al_agent_version_of(P("https://a/downloads/beats/elastic-agent/elastic-agent-fips-x-linux-arm64.tar.gz"), v, sizeof(v)), 0);
	assert_int_not_equal(al_agent_version_of(P("https://a/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz"), v, sizeof(v)), 0);
	assert_int_not_equal(al_agent_version_of(P("https://a/elastic-agent-x.tar.gz"), v, sizeof(v)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_prefix),
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_agent_version),
		cmocka_unit_test(test_strip_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
