/*
 * libFuzzer entry points for every parser of outside bytes.  One source,
 * one target per FUZZ_<NAME> define; the same functions are driven by
 * replay.c over the seed corpus as regular ctest tests.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bundle.h"
#include "cache/record.h"
#include "policy/config.h"
#include "policy/freshness.h"
#include "policy/hdr.h"
#include "policy/manifest.h"
#include "policy/models.h"
#include "policy/pkgfiles.h"
#include "policy/s3listing.h"
#include "policy/range.h"
#include "policy/registry.h"
#include "policy/route.h"
#include "policy/semver.h"
#include "proxy/front/http1.h"
#include "proxy/fetch/upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(FUZZ_HTTP_REQUEST)
/* The request head parser, then what the server does with a parsed target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits lim = {16384, 100};
	struct http_req r;
	int rc = http1_parse_request((const char *)data, size, &lim, &r);
	size_t vl;

	if (rc > 0) {
		if ((size_t)rc > size || r.target + r.target_len > (const char *)data + size)
			abort();
		al_path_check(r.target, r.target_len);
		http1_field(&r, "Range", &vl);
	}
	return 0;
}
#elif defined(FUZZ_RESPONSE_HEAD)
/* Upstream response heads, line by line as libcurl delivers them. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
		const char *name, *value, *why;
		size_t nlen, vlen;
		int status;
		if (up_response_line(p, len, &status, &name, &nlen, &value, &vlen, &why) == RESP_FIELD &&
		    (name + nlen > end || value + vlen > end))
			abort();
		p += len;
	}
	return 0;
}
#elif defined(FUZZ_RANGE)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t total = 0, a, b;

	if (size < 8)
		return 0;
	memcpy(&total, data, 8);
	if (al_range_parse((const char *)data + 8, size - 8, total, &a, &b) == AL_RANGE_OK && (a > b || b >= total))
		abort();
	return 0;
}
#elif defined(FUZZ_CONFIG)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct al_config *c = NULL;
	char err[512];

	if (al_config_load_string("fuzz.yml", (const char *)data, size, &c, err, sizeof(err)) == 0)
		al_config_free(c);
	return 0;
}
#elif defined(FUZZ_RECORD)
/* Stored cache records, and the header-block readers that run over them on every hit. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct al_record r;
	size_t vl;

	if (al_record_decode(data, size, &r) == 0) {
		al_freshness_lifetime(NULL, "/x", r.status, r.hdrs, r.hdrs_len);
		al_current_age(r.hdrs, r.hdrs_len, r.request_time, r.response_time, r.age_value, 0);
		al_uncacheable_reason(r.status, r.hdrs, r.hdrs_len);
		al_hdr_get(r.hdrs, r.hdrs_len, "ETag", &vl);
	}
	return 0;
}
#elif defined(FUZZ_BUNDLE)
static int seen(const struct al_inspect_entry *e, void *arg)
{
	/* touch what inspect hands out: the record and a kept sidecar */
	*(size_t *)arg += e->rec->url_len + e->small_len + (e->small_len ? e->small[e->small_len - 1] : 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sum = 0;
	struct al_bundle_info info;
	struct al_bundle_index *ix = NULL;
	char err[256];
	FILE *f;

	if (size == 0 || (f = fmemopen((void *)data, size, "rb")) == NULL)
		return 0;
	/* the whole-file check, then the records-only reader --since uses */
	al_bundle_verify(f, &info, err, sizeof(err));
	rewind(f);
	if (al_bundle_index_read(f, &ix, err, sizeof(err)) == 0)
		al_bundle_index_free(ix);
	/* and inspect's walk, which keeps sidecars and reports each entry */
	al_bundle_inspect(f, NULL, seen, NULL, &sum, &info, err, sizeof(err));
	fclose(f);
	return 0;
}
#elif defined(FUZZ_SHA512)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char d[64];

	al_parse_sha512_file((const char *)data, size, d);
	return 0;
}
#elif defined(FUZZ_MANIFEST)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char v[128], err[256];

	al_endpoint_manifest(data, size, v, sizeof(v), NULL, NULL, err, sizeof(err));
	return 0;
}
#elif defined(FUZZ_REGISTRY)
/* A query string, a NUL, then a JSON array of package documents. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	struct al_registry_query q, qc;
	json_t *docs;
	int ok_search, ok_categories;

	if (nul == NULL)
		return 0;
	ok_search = al_registry_query_parse((const char *)data, (size_t)(nul - data), 0, &q) == 0;
	ok_categories = al_registry_query_parse((const char *)data, (size_t)(nul - data), 1, &qc) == 0;
	if (!ok_search && !ok_categories)
		return 0;
	docs = json_loadb((const char *)nul + 1, size - (size_t)(nul + 1 - data), 0, NULL);
	if (docs == NULL)
		return 0;
	if (ok_search)
		free(al_registry_search(docs, &q));
	if (ok_categories)
		free(al_registry_categories(docs, &qc));
	json_decref(docs);
	return 0;
}
#elif defined(FUZZ_SEMVER)
/* "constraint\0version" */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[512];
	struct al_semver v;
	const char *nul;

	if (size == 0 || size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	nul = memchr(data, 0, size);
	if (nul == NULL || al_semver_parse(buf + (nul - (const char *)data) + 1, &v) != 0)
		return 0;
	al_semver_satisfies(buf, &v);
	return 0;
}
#elif defined(FUZZ_README)
/* A package README from the registry: the images it shows, each a path under the package. */
static void readme_path(const char *path, void *arg)
{
	(void)arg;
	if (path[0] != '/' || strstr(path, "/../") != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	al_readme_images((const char *)data, size, readme_path, NULL);
	return 0;
}
#elif defined(FUZZ_S3LISTING)
/* A bucket listing from upstream: its keys, and a listing written back from them that reads the same. */
struct s3_fuzz {
	struct al_s3_object objs[64];
	char keys[64][1100];
	int n, again;
};

static void s3_key(const char *key, void *arg)
{
	struct s3_fuzz *f = arg;

	if (f->n < 64) {
		snprintf(f->keys[f->n], sizeof(f->keys[0]), "%s", key);
		f->objs[f->n].key = f->keys[f->n];
		f->n++;
	}
}

static void s3_count(const char *key, void *arg)
{
	(void)key;
	((struct s3_fuzz *)arg)->again++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct s3_fuzz f;
	char *xml, v[32];

	f.n = f.again = 0;
	if (al_s3_keys((const char *)data, size, s3_key, &f) < 0)
		return 0;
	for (int i = 0; i < f.n; i++)
		al_product_doc_version(f.keys[i], v, sizeof(v));
	xml = al_s3_listing("bucket", f.objs, (size_t)f.n);
	if (xml != NULL && al_s3_keys(xml, strlen(xml), s3_count, &f) != f.n)
		abort(); /* every key written must read back */
	free(xml);
	return 0;
}
#elif defined(FUZZ_MODEL_METADATA)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sha[32];
	int has;
	int64_t len;

	al_model_metadata_parse((const char *)data, size, sha, &has, &len);
	return 0;
}
#else
#error "define one FUZZ_<TARGET>"
#endif
