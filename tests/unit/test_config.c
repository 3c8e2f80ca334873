/* Configuration: units, defaults, errors with line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "policy/config.h"
#include "policy/units.h"

static void test_hex(void **state)
{
	const uint8_t b[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[9];

	(void)state;
	memset(out, 'x', sizeof(out));
	al_hex(b, sizeof(b), out);
	assert_string_equal(out, "000fa5ff");
	al_hex(b, 0, out);
	assert_string_equal(out, "");
}

static void test_units(void **state)
{
	uint64_t sz;
	int64_t ms;

	assert_int_equal(al_parse_size("20GiB", &sz), 0);
	assert_true(sz == 20ULL << 30);
	assert_int_equal(al_parse_size("512KB", &sz), 0);
	assert_true(sz == 512000);
	assert_int_equal(al_parse_size("100", &sz), 0);
	assert_true(sz == 100);
	assert_int_not_equal(al_parse_size("-1GiB", &sz), 0);
	assert_int_not_equal(al_parse_size("1 parsec", &sz), 0);
	assert_int_equal(al_parse_duration_ms("5s", &ms), 0);
	assert_true(ms == 5000);
	assert_int_equal(al_parse_duration_ms("10m", &ms), 0);
	assert_true(ms == 600000);
	assert_int_equal(al_parse_duration_ms("250ms", &ms), 0);
	assert_true(ms == 250);
	assert_int_equal(al_parse_duration_ms("7", &ms), 0);
	assert_true(ms == 7000);
	assert_int_not_equal(al_parse_duration_ms("soon", &ms), 0);
}

static void test_default(void **state)
{
	struct al_config *c;
	char err[256];

	assert_int_equal(al_config_load(NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(c->nroutes, 8);
	assert_string_equal(c->routes[0].prefix, "/downloads/endpoint/");
	assert_string_equal(c->routes[0].host, "artifacts.security.elastic.co");
	assert_int_equal(c->routes[0].port, 443);
	/* Kibana's telemetry manifest is on the Endpoint host, not artifacts.elastic.co */
	assert_string_equal(c->routes[1].prefix, "/downloads/kibana/manifest/");
	assert_string_equal(c->routes[1].host, "artifacts.security.elastic.co");
	/* Elasticsearch's xpack.ml.model_repository: /ml-models/<file> -> https://ml-models.elastic.co/<file> */
	assert_string_equal(c->routes[4].prefix, "/ml-models/");
	assert_string_equal(c->routes[4].host, "ml-models.elastic.co");
	assert_int_equal(c->routes[4].strip_prefix, 1);
	assert_int_equal(c->routes[3].strip_prefix, 0);
	/* Elasticsearch's GeoIP downloader: /geoip/v1/database -> https://geoip.elastic.co/v1/database */
	assert_string_equal(c->routes[5].prefix, "/geoip/");
	assert_string_equal(c->routes[5].host, "geoip.elastic.co");
	assert_int_equal(c->routes[5].strip_prefix, 1);
	assert_string_equal(c->routes[6].prefix, "/product-docs");
	assert_string_equal(c->routes[6].host, "kibana-knowledge-base-artifacts.elastic.co");
	assert_int_equal(c->routes[6].strip_prefix, 1);
	assert_int_equal(c->routes[7].registry, 1);
	assert_string_equal(c->listen[0].host, "127.0.0.1");
	assert_int_equal(c->listen[0].port, 8080);
	assert_true(c->cache_max_size == 20ULL << 30);
	assert_true(c->connect_timeout_ms == 5000);
	assert_int_equal(c->nrules, 7); /* policy/freshness.c al_default_rules */
	al_config_free(c);
}

static void test_errors(void **state)
{
	struct al_config *c = NULL;
	char err[512];
	const char *y = "cache:\n  path: /x\nupstream:\n  resolve:\n    \"epr.elastic.co:443\": \"nowhere\"\n";

	assert_int_not_equal(al_config_load_string("t.yml", y, strlen(y), &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "t.yml:5:27: upstream.resolve: 'nowhere' is not address:port"));
	y = "routes:\n  - {prefix: /_airlock/x, upstream: \"https://a\"}\n";
	assert_int_not_equal(al_config_load_string("t.yml", y, strlen(y), &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "reserved"));
	y = "routes:\n  - {prefix: /x, upstream: \"https://a\", colour: red}\n";
	assert_int_not_equal(al_config_load_string("t.yml", y, strlen(y), &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "t.yml:2:41: unknown key 'colour' in a route"));
}

static void test_file_overrides(void **state)
{
	struct al_config *c;
	char err[256];
	const char *y = "listen: [\"0.0.0.0:80\", \"[::1]:8443\"]\nworkers: 3\ncache:\n  rules:\n"
	    "    - {match: \"/search*\", ttl: 10m}\nupstream:\n  offline: yes\n"
	    "routes:\n  - {prefix: /, upstream: \"http://mirror.local:8080/\"}\n";

	assert_int_equal(al_config_load_string("t.yml", y, strlen(y), &c, err, sizeof(err)), 0);
	assert_int_equal(c->nlisten, 2);
	assert_string_equal(c->listen[1].host, "::1");
	assert_int_equal(c->listen[1].port, 8443);
	assert_true(c->workers == 3);
	assert_int_equal(c->nrules, 1);
	assert_true(c->rules[0].ttl_ms == 600000);
	assert_int_equal(c->offline, 1);
	assert_string_equal(c->routes[0].upstream, "http://mirror.local:8080");
	assert_int_equal(c->routes[0].port, 8080);
	al_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_file_overrides),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
