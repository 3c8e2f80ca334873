/*
 * Elasticsearch's GeoIP downloader (elastic/elasticsearch modules/ingest-geoip,
 * GeoIpDownloader.java at 612651a0, HttpClient.java at 13ae1548):
 * updateDatabases GETs <endpoint>?elastic_geoip_service_tos=agree, a JSON
 * list of {name, md5_hash, url, ...}; for each name ending in .tgz whose
 * md5_hash differs from what the node holds, processDatabase GETs its url
 * (a relative url is resolved as a sibling of the endpoint), following up
 * to 50 redirects, accepting only a 200, and checks the MD5 of the body.
 * Upstream, each url is a signed storage URL that expires within a day:
 * cached as it is, the overview would send air-gapped nodes to a dead link.
 * airlock serves the overview with each url rewritten to
 * db/<md5_hash>/<name>, which leads back to airlock, and keeps each
 * database under https://geoip.elastic.co/v1/db/<md5_hash>/<name>: a new
 * md5_hash is a new key, fetched once for every node.
 */
#include "policy/geoip.h"
#include "policy/units.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int al_geoip_is_overview(const char *url, size_t len)
{
	static const char ov[] = AL_GEOIP_BASE "/v1/database";
	size_t n = sizeof(ov) - 1;

	return len >= n && memcmp(url, ov, n) == 0 && (len == n || url[n] == '?');
}

static int md5_ok(const char *m)
{
	if (m == NULL || strlen(m) != 32)
		return 0;
	for (int i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)m[i]))
			return 0;
	return 1;
}

/* A database name as a path segment: [A-Za-z0-9._-]+, not a dot segment. */
static int name_ok(const char *n)
{
	if (n == NULL || n[0] == '\0' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strlen(n) > 200)
		return 0;
	for (const char *p = n; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

/* The overview's list, or NULL when the body is not a JSON array. */
static json_t *overview_load(const char *json, size_t len)
{
	json_t *list = json_loadb(json, len, 0, NULL);

	if (list != NULL && !json_is_array(list)) {
		json_decref(list);
		list = NULL;
	}
	return list;
}

/* One entry's name, md5_hash and url (NULL where absent or not a string). */
static void entry_fields(json_t *e, const char **name, const char **md5, const char **url)
{
	*name = json_string_value(json_object_get(e, "name"));
	*md5 = json_string_value(json_object_get(e, "md5_hash"));
	*url = json_string_value(json_object_get(e, "url"));
}

char *al_geoip_rewrite(const char *json, size_t len)
{
	json_t *list = overview_load(json, len), *e;
	size_t i;
	char *out, url[300];

	if (list == NULL)
		return NULL;
	json_array_foreach(list, i, e) {
		const char *name, *md5, *u;
		entry_fields(e, &name, &md5, &u);
		if (!json_is_object(e) || !name_ok(name) || !md5_ok(md5))
			continue;
		snprintf(url, sizeof(url), "db/%s/%s", md5, name);
		json_object_set_new(e, "url", json_string(url));
	}
	out = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(list);
	return out;
}

int al_geoip_db_path(const char *path, char *md5, char *name, size_t cap)
{
	const char *p;
	size_t nl;

	if (strncmp(path, "/v1/db/", 7) != 0)
		return -EINVAL;
	p = path + 7;
	if (strlen(p) < 34 || p[32] != '/')
		return -EINVAL;
	memcpy(md5, p, 32);
	md5[32] = '\0';
	p += 33;
	nl = strcspn(p, "?#");
	if (!md5_ok(md5) || nl == 0 || nl >= cap || p[nl] != '\0')
		return -EINVAL;
	memcpy(name, p, nl);
	name[nl] = '\0';
	return name_ok(name) ? 0 : -EINVAL;
}

/* An overview's url as processDatabase resolves it (a relative one after the endpoint's last slash). */
static int resolve_url(const char *u, char *out, size_t cap)
{
	int w;

	if (strncmp(u, "http", 4) == 0)
		w = snprintf(out, cap, "%s", u);
	else
		w = snprintf(out, cap, "%s/v1/%s", AL_GEOIP_BASE, u);
	return w > 0 && (size_t)w < cap && strpbrk(out, " \r\n") == NULL ? 0 : -EINVAL;
}

int al_geoip_source(const char *json, size_t len, const char *md5, const char *name, char *out, size_t cap)
{
	json_t *list = overview_load(json, len), *e;
	size_t i;
	int rc = -ENOENT;

	if (list == NULL)
		return -EINVAL;
	json_array_foreach(list, i, e) {
		const char *n, *m, *u;
		entry_fields(e, &n, &m, &u);
		if (n == NULL || m == NULL || u == NULL || strcmp(n, name) != 0 || strcasecmp(m, md5) != 0)
			continue;
		rc = resolve_url(u, out, cap);
		break;
	}
	json_decref(list);
	return rc;
}

int al_geoip_by_url(const char *json, size_t len, const char *url, char *md5, char *name, size_t cap)
{
	json_t *list = overview_load(json, len), *e;
	size_t i;
	int rc = -ENOENT;

	if (list == NULL)
		return -EINVAL;
	json_array_foreach(list, i, e) {
		const char *n, *m, *u;
		entry_fields(e, &n, &m, &u);
		char src[4096];
		if (!name_ok(n) || !md5_ok(m) || u == NULL || strlen(n) >= cap || resolve_url(u, src, sizeof(src)) != 0 ||
		    strcmp(src, url) != 0)
			continue;
		snprintf(md5, 33, "%s", m);
		snprintf(name, cap, "%s", n);
		rc = 0;
		break;
	}
	json_decref(list);
	return rc;
}

int al_geoip_key_md5(const char *url, unsigned char md5[16])
{
	size_t bl = strlen(AL_GEOIP_BASE);
	char hex[33], name[256];

	if (strncmp(url, AL_GEOIP_BASE, bl) != 0 || al_geoip_db_path(url + bl, hex, name, sizeof(name)) != 0)
		return -EINVAL;
	for (int i = 0; i < 16; i++)
		md5[i] = (unsigned char)(al_hex_digit(hex[2 * i]) << 4 | al_hex_digit(hex[2 * i + 1])); /* md5_ok: hex digits */
	return 0;
}
