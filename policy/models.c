/*
 * Elasticsearch's ml-package-loader (elastic/elasticsearch, x-pack/plugin/
 * ml-package-loader, TransportGetTrainedModelPackageConfigAction and
 * ModelImporter at fb3ff2f3, ModelLoaderUtils at 01195333) reads
 * <packaged_model_id>.metadata.json into a ModelPackageConfig whose "sha256"
 * and "size" describe <packaged_model_id>.pt.  A streaming download checks
 * both (checkSha256, checkSize); the ranged download of current versions
 * checks only the size, so a wrong body that happens to have the right
 * length would be indexed: airlock checks both before it admits the file.
 */
#include "policy/models.h"
#include "policy/units.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <string.h>

int al_needs_model_check(const struct al_config *c, const char *url)
{
	for (int i = 0; i < c->nverify_models; i++)
		if (fnmatch(c->verify_models[i], url, 0) == 0)
			return 1;
	return 0;
}

int al_model_metadata_url(const char *url, char *buf, size_t cap)
{
	size_t n = strlen(url);
	static const char meta[] = ".metadata.json";

	if (n < 4 || strcmp(url + n - 3, ".pt") != 0 || memchr(url, '?', n) != NULL)
		return -EINVAL;
	if (n - 3 + sizeof(meta) > cap)
		return -ENAMETOOLONG;
	memcpy(buf, url, n - 3);
	memcpy(buf + n - 3, meta, sizeof(meta));
	return 0;
}

int al_model_metadata_parse(const char *text, size_t len, uint8_t sha[32], int *has_sha, int64_t *size)
{
	json_t *doc = json_loadb(text, len, 0, NULL), *v;
	int rc = 0;

	*has_sha = 0;
	*size = -1;
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		return -EINVAL;
	}
	if ((v = json_object_get(doc, "sha256")) != NULL && !json_is_null(v)) {
		const char *h = json_string_value(v);
		if (h == NULL || strlen(h) != 64) {
			rc = -EINVAL;
		} else {
			for (int k = 0; k < 32 && rc == 0; k++) {
				int hi = al_hex_digit(h[2 * k]), lo = al_hex_digit(h[2 * k + 1]);
				if (hi < 0 || lo < 0)
					rc = -EINVAL;
				else
					sha[k] = (uint8_t)(hi << 4 | lo);
			}
			*has_sha = rc == 0;
		}
	}
	/* ModelPackageConfig reads size as a long */
	if (rc == 0 && (v = json_object_get(doc, "size")) != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			rc = -EINVAL;
		else
			*size = (int64_t)json_integer_value(v);
	}
	json_decref(doc);
	if (rc != 0)
		*has_sha = 0, *size = -1;
	return rc;
}
