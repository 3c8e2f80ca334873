/*
 * S3 bucket listings (ListBucketResult, ListObjects v1), as the AI
 * Assistant's product documentation bucket serves them, and the names of
 * the artifacts Kibana reads from it.  Pure functions over text.
 */
#ifndef AIRLOCK_POLICY_S3LISTING_H
#define AIRLOCK_POLICY_S3LISTING_H

#include <stddef.h>
#include <stdint.h>

/* One object of a listing we write. */
struct al_s3_object {
	const char *key;          /* the object's name in the bucket (no '/') */
	uint64_t size;
	const char *etag;         /* as the upstream sent it, quotes included, or NULL */
	const char *last_modified; /* ISO 8601 (2024-10-01T12:00:00.000Z), or NULL */
};

/*
 * Calls cb(key, arg) for each <Contents><Key> of a ListBucketResult, the
 * XML entities of the key decoded.  Returns the number of keys, or -EINVAL
 * when the text is not a ListBucketResult.
 */
int al_s3_keys(const char *xml, size_t len, void (*cb)(const char *key, void *arg), void *arg);

/*
 * A ListBucketResult naming exactly objs (sorted here by key, as S3 lists in
 * binary order; objs is reordered), IsTruncated false.  Returns a malloc'd
 * NUL-terminated document, or NULL when out of memory.
 */
char *al_s3_listing(const char *bucket, struct al_s3_object *objs, size_t n);

/*
 * Kibana's parseArtifactName (x-pack/platform/packages/shared/ai-infra/
 * product-doc-common/src/artifact.ts at 6d988057): kb-product-doc-<product>-
 * <major.minor>[--<inferenceId>][.zip], product one of the documentation
 * products.  1 and the version into ver (cap bytes), or 0.
 */
int al_product_doc_version(const char *name, char *ver, size_t cap);

/*
 * The bucket an upstream base (scheme://host, len bytes) serves listings of,
 * when airlock knows it as one whose listing it may write offline; NULL
 * otherwise.  Known: https://kibana-knowledge-base-artifacts.elastic.co.
 */
const char *al_s3_bucket_of(const char *base, size_t len);

#endif
