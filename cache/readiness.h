/*
 * Readiness of a cache for an air-gapped Stack (see cache/readiness.c):
 * what Elastic Agent, Elastic Defend and Kibana's Fleet of a version would
 * miss, and which client fails how.  Shared by `airlock doctor` and the
 * server's status page and metrics; reads the store only (no network).
 */
#ifndef AIRLOCK_CACHE_READINESS_H
#define AIRLOCK_CACHE_READINESS_H

#include "cache/store.h"
#include "policy/config.h"
#include "policy/plan.h"

#include <jansson.h>
#include <time.h>

/* Elastic advises updating Endpoint's artifacts monthly: older manifests are flagged. */
#define AL_MANIFEST_MAX_AGE (30 * 86400)

/*
 * One read of s under cfg's routes (both borrowed, and must outlive it);
 * each check reads the registry index for its Kibana's list.  Not for a
 * worker's loop.  0 or -ENOMEM.
 */
struct al_readiness;
int al_readiness_new(struct al_store *s, const struct al_config *cfg, struct al_readiness **out);
void al_readiness_free(struct al_readiness *r);

/* Where mirror models and mirror product-docs fetch from: the cache keys of what they hold. */
#define AL_MODELS_BASE "https://ml-models.elastic.co/"
#define AL_PRODUCT_DOCS_BASE "https://kibana-knowledge-base-artifacts.elastic.co/"
/* Kibana's telemetry CDN (proxy/cli/mirror.c mirror kibana-artifacts): the manifest, and each artifact it lists. */
#define AL_KIBANA_CDN "https://artifacts.security.elastic.co"
#define AL_KIBANA_MANIFEST_BASE AL_KIBANA_CDN "/downloads/kibana/manifest/artifacts-"
/* Kibana's DocumentationProduct (product-doc-common/src/product.ts), as policy/s3listing.c reads names */
#define AL_PRODUCT_DOC_PRODUCTS ((const char *const[]){"kibana", "elasticsearch", "observability", "security", NULL})

/* The newer downloads, checked only when asked (NULL or 0: not checked). */
struct al_readiness_more {
	const char *models;          /* comma list of trained model ids */
	const char *product_docs;    /* comma list of MAJOR.MINOR */
	int geoip;                   /* the GeoIP overview and every database it lists */
	int fips;                    /* FIPS agent builds for the Linux platforms asked */
	int kibana_artifacts;        /* Kibana's telemetry manifest for the Stack version and each artifact it lists */
};

/*
 * What a Stack of version stack would miss: agents for the comma list
 * platforms, Endpoint manifest ep, Kibana kibana's packages.  A new object
 * {stack, platforms, kibana, endpoint, checked, present, missing_count,
 * missing: [{url, kind, what, client, failure}], endpoint_manifest: {url,
 * manifest_version, published, age_days} or null, endpoint_manifest_old,
 * packages: [{name, version}]}, or NULL with err (a Kibana version the
 * registry's rules cannot read).  more (may be NULL) adds the newer
 * downloads to what is checked.
 */
json_t *al_readiness_check(struct al_readiness *r, const char *stack, const char *platforms, const char *kibana,
    const char *ep, const struct al_readiness_more *more, char *err, size_t errlen);

/*
 * The Stack versions s holds Elastic Agent packages for (at most max,
 * newest first) into v; platforms (cap bytes) gets the comma list of the
 * platforms of those packages.  Returns how many versions.  Reads every
 * record: not for a worker's loop.  also (may be NULL) is called with
 * also_arg for every record of the same walk (the status page's Mirrored
 * card counts its own things there: one walk of the cache, not two); its
 * return value is ignored.
 */
int al_readiness_versions(struct al_store *s, const struct al_config *cfg, char (*v)[32], int max, char *platforms,
    size_t cap, al_entry_fn also, void *also_arg);

/*
 * The cached Endpoint manifest at url: its manifest_version into mv and when
 * it was published (Last-Modified, else when airlock fetched it).  0, or
 * -ENOENT when not cached, -EINVAL when unreadable (mv says why).  Uses and
 * ends r's snapshot.
 */
int al_manifest_info(struct al_reader *r, const char *url, char *mv, size_t mvlen, time_t *published);

#endif
