/*
 * Elasticsearch's GeoIP downloader against geoip.elastic.co: the overview
 * it reads, the URLs airlock puts in it, and where each database really
 * comes from.  Pure functions over text.
 */
#ifndef AIRLOCK_POLICY_GEOIP_H
#define AIRLOCK_POLICY_GEOIP_H

#include <stddef.h>

#define AL_GEOIP_BASE "https://geoip.elastic.co"
/* The overview's canonical URL: GeoIpDownloader.fetchDatabasesOverview asks <endpoint>?elastic_geoip_service_tos=agree */
#define AL_GEOIP_OVERVIEW AL_GEOIP_BASE "/v1/database?elastic_geoip_service_tos=agree"

/* Is url (a cache key URL) the overview, with any query? */
int al_geoip_is_overview(const char *url, size_t len);

/*
 * The overview with each database's url replaced by "db/<md5_hash>/<name>",
 * which Elasticsearch resolves as a sibling of its endpoint (processDatabase)
 * so that it leads back to airlock.  Entries without a name or an md5_hash
 * of 32 hex digits keep their url.  Returns a malloc'd NUL-terminated JSON
 * text, or NULL when json is not a JSON array.
 */
char *al_geoip_rewrite(const char *json, size_t len);

/*
 * A database path as the rewritten overview leads to it, upstream side:
 * "/v1/db/<32 hex>/<name>"; md5 (33 bytes) and name (cap bytes) filled.
 * 0, or -EINVAL.
 */
int al_geoip_db_path(const char *path, char *md5, char *name, size_t cap);

/*
 * Where the database name with md5 comes from, per the upstream's own
 * overview: its url, resolved as processDatabase resolves a relative one
 * against the endpoint AL_GEOIP_BASE "/v1/database".  0 and out, -ENOENT
 * when the overview does not list that name with that md5, -EINVAL.
 */
int al_geoip_source(const char *json, size_t len, const char *md5, const char *name, char *out, size_t cap);

/*
 * The other way: which database the overview's url (resolved as
 * al_geoip_source resolves it) equal to url is.  md5 (33 bytes) and name
 * (cap bytes) filled when found: 0, -ENOENT, or -EINVAL (not a JSON list).
 */
int al_geoip_by_url(const char *json, size_t len, const char *url, char *md5, char *name, size_t cap);

/* A database's cache key URL (AL_GEOIP_BASE "/v1/db/<md5>/<name>"): its MD5, the 16 bytes. 0 or -EINVAL. */
int al_geoip_key_md5(const char *url, unsigned char md5[16]);

#endif
