/*
 * GeoIP's overview as Elasticsearch reads it (GeoIpDownloader at 612651a0:
 * fetchDatabasesOverview, processDatabase with its sibling resolution of a
 * relative url) and as airlock rewrites it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/geoip.h"

#define T(s) s, sizeof(s) - 1
#define MD5A "0a260abc8d672e5ab670e35b26ab4444"

static const char overview[] =
    "[{\"name\":\"GeoLite2-ASN.tgz\",\"md5_hash\":\"" MD5A "\",\"provider\":\"maxmind\","
    "\"url\":\"https://storage.googleapis.com/b/GeoLite2-ASN.tgz?X-Goog-Signature=s\",\"updated\":1},"
    "{\"name\":\"GeoLite2-City.tgz\",\"md5_hash\":\"1a5939a9cb4fee84458acfadb4d7b013\",\"url\":\"City.tgz\"},"
    "{\"name\":\"weird name.tgz\",\"md5_hash\":\"" MD5A "\",\"url\":\"https://x/y\"},"
    "{\"name\":\"no-md5.tgz\",\"url\":\"https://x/z\"}]";

static void test_rewrite(void **state)
{
	char *out;

	(void)state;
	out = al_geoip_rewrite(T(overview));
	assert_non_null(out);
	assert_non_null(strstr(out, "\"url\":\"db/" MD5A "/GeoLite2-ASN.tgz\""));
	assert_non_null(strstr(out, "\"url\":\"db/1a5939a9cb4fee84458acfadb4d7b013/GeoLite2-City.tgz\""));
	assert_non_null(strstr(out, "\"provider\":\"maxmind\"")); /* the rest is kept */
	assert_non_null(strstr(out, "\"url\":\"https://x/y\""));  /* not a path segment: left alone */
	assert_non_null(strstr(out, "\"url\":\"https://x/z\""));
	assert_null(strstr(out, "X-Goog-Signature"));
	free(out);
	assert_null(al_geoip_rewrite(T("{\"not\":\"a list\"}")));
	assert_null(al_geoip_rewrite(T("<html>")));
}

static void test_db_path(void **state)
{
	char md5[33], name[64];

	(void)state;
	assert_int_equal(al_geoip_db_path("/v1/db/" MD5A "/GeoLite2-ASN.tgz", md5, name, sizeof(name)), 0);
	assert_string_equal(md5, MD5A);
	assert_string_equal(name, "GeoLite2-ASN.tgz");
	assert_int_equal(al_geoip_db_path("/v1/db/" MD5A "/a/b.tgz", md5, name, sizeof(name)), -EINVAL);
	assert_int_equal(al_geoip_db_path("/v1/db/" MD5A "/..", md5, name, sizeof(name)), -EINVAL);
	assert_int_equal(al_geoip_db_path("/v1/db/zz260abc8d672e5ab670e35b26ab4444/x.tgz", md5, name, sizeof(name)), -EINVAL);
	assert_int_equal(al_geoip_db_path("/v1/db/" MD5A "/", md5, name, sizeof(name)), -EINVAL);
	assert_int_equal(al_geoip_db_path("/v1/database", md5, name, sizeof(name)), -EINVAL);
	assert_int_equal(al_geoip_db_path("/v1/db/" MD5A "/x.tgz?y", md5, name, sizeof(name)), -EINVAL);
}

static void test_source(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(al_geoip_source(T(overview), MD5A, "GeoLite2-ASN.tgz", out, sizeof(out)), 0);
	assert_string_equal(out, "https://storage.googleapis.com/b/GeoLite2-ASN.tgz?X-Goog-Signature=s");
	/* processDatabase: a relative url goes after the endpoint's last slash */
	assert_int_equal(al_geoip_source(T(overview), "1a5939a9cb4fee84458acfadb4d7b013", "GeoLite2-City.tgz", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "https://geoip.elastic.co/v1/City.tgz");
	/* an md5 the overview no longer lists: not a source */
	assert_int_equal(al_geoip_source(T(overview), "ffffffffffffffffffffffffffffffff", "GeoLite2-ASN.tgz", out,
	    sizeof(out)), -ENOENT);
	assert_int_equal(al_geoip_source(T("nope"), MD5A, "GeoLite2-ASN.tgz", out, sizeof(out)), -EINVAL);
	assert_int_equal(al_geoip_source(T(overview), MD5A, "GeoLite2-ASN.tgz", out, 10), -EINVAL);
}

/* A child airlock asks by the signed URL: which database that is, by its own overview. */
static void test_by_url(void **state)
{
	char md5[33], name[256];

	(void)state;
	assert_int_equal(al_geoip_by_url(T(overview), "https://storage.googleapis.com/b/GeoLite2-ASN.tgz?X-Goog-Signature=s",
	    md5, name, sizeof(name)), 0);
	assert_string_equal(md5, MD5A);
	assert_string_equal(name, "GeoLite2-ASN.tgz");
	assert_int_equal(al_geoip_by_url(T(overview), "https://geoip.elastic.co/v1/City.tgz", md5, name, sizeof(name)), 0);
	assert_string_equal(name, "GeoLite2-City.tgz");
	/* another signature, another object: not one the overview names */
	assert_int_equal(al_geoip_by_url(T(overview), "https://storage.googleapis.com/b/GeoLite2-ASN.tgz?X-Goog-Signature=t",
	    md5, name, sizeof(name)), -ENOENT);
	assert_int_equal(al_geoip_by_url(T("{}"), "https://x/", md5, name, sizeof(name)), -EINVAL);
}

static void test_overview(void **state)
{
	unsigned char md5[16];

	(void)state;
	assert_int_equal(al_geoip_key_md5("https://geoip.elastic.co/v1/db/" MD5A "/GeoLite2-ASN.tgz", md5), 0);
	assert_int_equal(md5[0], 0x0a);
	assert_int_equal(md5[15], 0x44);
	assert_int_equal(al_geoip_key_md5("https://other.example/v1/db/" MD5A "/GeoLite2-ASN.tgz", md5), -EINVAL);
	assert_int_equal(al_geoip_key_md5("https://geoip.elastic.co/v1/database", md5), -EINVAL);
	assert_true(al_geoip_is_overview(T("https://geoip.elastic.co/v1/database?elastic_geoip_service_tos=agree")));
	assert_true(al_geoip_is_overview(T("https://geoip.elastic.co/v1/database")));
	assert_false(al_geoip_is_overview(T("https://geoip.elastic.co/v1/databases")));
	assert_false(al_geoip_is_overview(T("https://geoip.elastic.co/v1/db/" MD5A "/x.tgz")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_db_path),
		cmocka_unit_test(test_source),
		cmocka_unit_test(test_by_url),
		cmocka_unit_test(test_overview),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
