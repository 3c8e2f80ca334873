/*
 * What a URL is, from its name (policy/artifact.c), shape by shape: the
 * artifact registry's <name>[-fips]-<version>-<platform>.<ext> (elastic-agent
 * 07adab5bc3d2, Artifact.FileName in
 * internal/pkg/agent/application/upgrade/artifact/artifact.go), the package
 * registry's documents and archives, Endpoint's manifest and artifacts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "policy/artifact.h"

static void is(const char *url, const char *kind, const char *product, const char *version, const char *platform)
{
	struct al_artifact a;

	al_classify_url(url, &a);
	assert_string_equal(a.kind, kind);
	assert_string_equal(a.product, product);
	assert_string_equal(a.version, version);
	assert_string_equal(a.platform, platform);
}

static void test_artifact_registry(void **state)
{
	const char *h = "https://artifacts.elastic.co";
	char u[512];

#define U(p) (snprintf(u, sizeof(u), "%s%s", h, p), u)
	is(U("/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"), "agent-artifact",
	    "elastic-agent", "8.13.4", "linux-x86_64");
	is(U("/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz.sha512"), "agent-artifact-sha512",
	    "elastic-agent", "8.13.4", "linux-x86_64");
	is(U("/downloads/beats/elastic-agent/elastic-agent-8.13.4-windows-x86_64.zip.asc"), "agent-artifact-signature",
	    "elastic-agent", "8.13.4", "windows-x86_64");
	is(U("/downloads/beats/elastic-agent/elastic-agent-fips-9.1.0-darwin-aarch64.tar.gz"), "agent-artifact",
	    "elastic-agent-fips", "9.1.0", "darwin-aarch64");
	is(U("/downloads/beats/filebeat/filebeat-9.0.0-SNAPSHOT-linux-arm64.tar.gz"), "agent-artifact", "filebeat",
	    "9.0.0-SNAPSHOT", "linux-arm64");
	is(U("/downloads/beats/filebeat/filebeat-8.13.4-amd64.deb"), "agent-artifact", "filebeat", "8.13.4", "amd64");
	is(U("/downloads/fleet-server/fleet-server-8.13.4-x86_64.rpm"), "agent-artifact", "fleet-server", "8.13.4",
	    "x86_64");
	is(U("/downloads/endpoint-dev/endpoint-security-8.13.4-linux-x86_64.tar.gz"), "agent-artifact",
	    "endpoint-security", "8.13.4", "linux-x86_64");
	is(U("/downloads/prodfiler/pf-host-agent-8.13.4-linux-x86_64.tar.gz"), "agent-artifact", "pf-host-agent",
	    "8.13.4", "linux-x86_64");
	is(U("/GPG-KEY-elastic-agent"), "gpg-key", "", "", "");
	is(U("/downloads/beats/elastic-agent/readme.txt"), "other", "", "", "");
#undef U
}

static void test_endpoint_and_registry(void **state)
{
	is("https://artifacts.security.elastic.co/downloads/endpoint/manifest/artifacts-8.13.4.zip",
	    "endpoint-manifest", "endpoint", "8.13.4", "");
	is("https://artifacts.security.elastic.co/downloads/endpoint/artifacts/endpointpe-v4-blocklist/"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    "endpoint-artifact", "endpointpe-v4-blocklist", "", "");
	is("https://epr.elastic.co/package/nginx/1.20.0/", "package-document", "nginx", "1.20.0", "");
	is("https://epr.elastic.co/package/nginx/1.20.0/img/logo.svg", "package-file", "nginx", "1.20.0", "");
	is("https://epr.elastic.co/epr/nginx/nginx-1.20.0.zip", "package-archive", "nginx", "1.20.0", "");
	is("https://epr.elastic.co/epr/nginx/nginx-1.20.0.zip.sig", "package-signature", "nginx", "1.20.0", "");
	is("https://epr.elastic.co/epr/system/system-1.54.0-beta.1.tar.gz", "package-archive", "system",
	    "1.54.0-beta.1", "");
	is("https://epr.elastic.co/search?kibana.version=8.13.4", "registry-query", "", "", "");
	is("https://epr.elastic.co/categories", "registry-query", "", "", "");
	is("/package/nginx/1.20.0/", "package-document", "nginx", "1.20.0", "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_artifact_registry),
		cmocka_unit_test(test_endpoint_and_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
