/*
 * The product documentation bucket's listing, as Kibana reads it
 * (fetchArtifactVersions, kibana 156fdbc6: only IsTruncated and each
 * Contents' Key; parseArtifactName, product-doc-common/src/artifact.ts at
 * 6d988057; DocumentationProduct: kibana, elasticsearch, observability,
 * security, product.d.ts at 4012e3a7).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/s3listing.h"

struct keys {
	char v[8][128];
	int n;
};

static void collect(const char *key, void *arg)
{
	struct keys *k = arg;

	if (k->n < 8)
		snprintf(k->v[k->n++], sizeof(k->v[0]), "%s", key);
}

static void test_keys(void **state)
{
	static const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>kibana-knowledge-base-artifacts</Name>"
	    "<Prefix></Prefix><Marker></Marker><IsTruncated>false</IsTruncated>"
	    "<Contents><Key>kb-product-doc-elasticsearch-8.17.zip</Key><LastModified>2024-12-01T10:00:00.000Z</LastModified>"
	    "<ETag>\"abc\"</ETag><Size>123</Size><StorageClass>STANDARD</StorageClass></Contents>"
	    "<Contents><Key>a&amp;b &lt;c&gt;.zip</Key><Size>1</Size></Contents>"
	    "<Contents><Size>1</Size></Contents>"
	    "<Contents><Key>kb-product-doc-kibana-8.17--.multilingual-e5-small-elasticsearch.zip</Key></Contents>"
	    "</ListBucketResult>";
	struct keys k = {.n = 0};

	(void)state;
	assert_int_equal(al_s3_keys(xml, sizeof(xml) - 1, collect, &k), 3);
	assert_string_equal(k.v[0], "kb-product-doc-elasticsearch-8.17.zip");
	assert_string_equal(k.v[1], "a&b <c>.zip");
	assert_string_equal(k.v[2], "kb-product-doc-kibana-8.17--.multilingual-e5-small-elasticsearch.zip");
	k.n = 0;
	assert_int_equal(al_s3_keys("<Error><Code>AccessDenied</Code></Error>", 40, collect, &k), -EINVAL);
	assert_int_equal(al_s3_keys("", 0, collect, &k), -EINVAL);
	assert_int_equal(al_s3_keys("<ListBucketResult><Contents><Key>x", 34, collect, &k), 0);
}

static void test_listing_roundtrip(void **state)
{
	struct al_s3_object objs[] = {
		{"kb-product-doc-security-8.17.zip", 300, "\"s\"", "2024-12-01T10:00:00.000Z"},
		{"kb-product-doc-elasticsearch-8.17.zip", 100, NULL, NULL},
		{"a&b.zip", 5, NULL, NULL},
	};
	struct keys k = {.n = 0};
	char *xml = al_s3_listing("kibana-knowledge-base-artifacts", objs, 3);

	(void)state;
	assert_non_null(xml);
	assert_non_null(strstr(xml, "<IsTruncated>false</IsTruncated>"));
	assert_non_null(strstr(xml, "<Key>a&amp;b.zip</Key>"));
	assert_non_null(strstr(xml, "<ETag>&quot;s&quot;</ETag><Size>300</Size>"));
	assert_int_equal(al_s3_keys(xml, strlen(xml), collect, &k), 3);
	/* S3 lists keys in binary order */
	assert_string_equal(k.v[0], "a&b.zip");
	assert_string_equal(k.v[1], "kb-product-doc-elasticsearch-8.17.zip");
	assert_string_equal(k.v[2], "kb-product-doc-security-8.17.zip");
	free(xml);
	xml = al_s3_listing("b", NULL, 0);
	assert_non_null(strstr(xml, "<Name>b</Name>"));
	assert_null(strstr(xml, "<Contents>"));
	free(xml);
}

static void test_artifact_names(void **state)
{
	char v[16];

	(void)state;
	assert_int_equal(al_product_doc_version("kb-product-doc-elasticsearch-8.17.zip", v, sizeof(v)), 1);
	assert_string_equal(v, "8.17");
	assert_int_equal(al_product_doc_version("kb-product-doc-kibana-9.1--.multilingual-e5-small-elasticsearch.zip", v,
	    sizeof(v)), 1);
	assert_string_equal(v, "9.1");
	assert_int_equal(al_product_doc_version("kb-product-doc-observability-10.0", v, sizeof(v)), 1);
	assert_int_equal(al_product_doc_version("kb-product-doc-logstash-8.17.zip", v, sizeof(v)), 0); /* not a product */
	assert_int_equal(al_product_doc_version("kb-product-doc-security-8.17.1.zip", v, sizeof(v)), 0);
	assert_int_equal(al_product_doc_version("kb-product-doc-Security-8.17.zip", v, sizeof(v)), 0);
	assert_int_equal(al_product_doc_version("kibana-kb-elasticsearch-8.15.zip", v, sizeof(v)), 0);
	assert_int_equal(al_product_doc_version("kb-product-doc-security-8..zip", v, sizeof(v)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_listing_roundtrip),
		cmocka_unit_test(test_artifact_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
