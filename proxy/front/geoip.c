/*
 * Elasticsearch's GeoIP downloader through airlock (policy/geoip.c says what
 * it reads): the overview goes out with each database url turned into
 * db/<md5_hash>/<name>, and such a path is fetched, once, from the url the
 * upstream's own overview gives for that name and md5_hash (a signed URL
 * that expires), while it is stored under the stable
 * https://geoip.elastic.co/v1/db/<md5_hash>/<name>.  Offline both are
 * answered from the cache.  Only the request that starts that fetch reads
 * the overview (conn_geoip_resolve, from STP_FETCH): hits read nothing.
 *
 * Behind upstream.parents the stable key is no URL a parent can fetch
 * unless it is an airlock of this version, so a child must ask for the
 * signed URL: requests in absolute form (a child, a caching proxy) get the
 * overview as the upstream sent it, the child resolves the signed URL and
 * asks its parent for it (fill.c up_target), and an airlock parent asked
 * for a signed URL its own overview names keeps that database under the
 * stable key too (conn_geoip_signed).
 */
#include "policy/geoip.h"
#include "proxy/front/conn_impl.h"
#include "proxy/runtime/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An overview is a few KB; a bigger one is not what this code reads. */
#define OVERVIEW_MAX (4u << 20)

void conn_geoip_resolve(struct req *r)
{
	char md5[33], name[256], src[4096], *json;
	const char *path = r->url + r->base_len;
	uint8_t key[AL_KEY_LEN];
	size_t len;

	if (r->base_len != strlen(AL_GEOIP_BASE) || strncmp(r->url, AL_GEOIP_BASE, r->base_len) != 0 ||
	    al_geoip_db_path(path, md5, name, sizeof(name)) != 0)
		return;
	al_store_key(AL_GEOIP_OVERVIEW, strlen(AL_GEOIP_OVERVIEW), key);
	if (al_read_small(srv.store, key, OVERVIEW_MAX, &json, &len) != 0)
		return; /* no overview: a cached copy of the database still answers */
	if (al_geoip_source(json, len, md5, name, src, sizeof(src)) == 0) {
		r->fetch_url = strdup(src);
		al_debug("geoip", "%s %s: read from the cached overview: fetched from %s", name, md5, src);
	}
	free(json);
}

int conn_geoip_signed(struct req *r)
{
	const struct http_req *h = &r->http;
	char md5[33], name[256], path[300], *url, *json;
	uint8_t key[AL_KEY_LEN];
	size_t len;
	int rc;

	if (h->form != FORM_ABSOLUTE || h->target_len < 9 || strncasecmp(h->target, "https://", 8) != 0 ||
	    (h->method != HTTP_GET && h->method != HTTP_HEAD) || h->content_length > 0 || h->chunked)
		return -1;
	al_store_key(AL_GEOIP_OVERVIEW, strlen(AL_GEOIP_OVERVIEW), key);
	if (al_read_small(srv.store, key, OVERVIEW_MAX, &json, &len) != 0)
		return -1;
	if ((url = strndup(h->target, h->target_len)) == NULL) {
		free(json);
		return -1;
	}
	rc = al_geoip_by_url(json, len, url, md5, name, sizeof(name));
	free(json);
	snprintf(path, sizeof(path), "/v1/db/%s/%s", md5, name);
	if (rc != 0 || req_set_url(r, AL_GEOIP_BASE, path, strlen(path), 0) != 0) {
		free(url);
		return rc != 0 ? -1 : 1; /* 1: req_set_url replied */
	}
	r->fetch_url = url;
	al_debug("geoip", "%s %s: asked by its signed URL (a child airlock or a caching proxy): kept under %s%s", name,
	    md5, AL_GEOIP_BASE, path);
	return 0;
}

int conn_geoip_answer(struct req *r, const struct al_record *rec)
{
	char *json, *body;
	size_t cl;
	size_t len;

	if (rec != NULL) { /* a hit: the record is in the connection's snapshot already */
		if (al_body_read(r->conn->hold->rd, rec, OVERVIEW_MAX, &json) != 0)
			return -1;
		len = (size_t)rec->body_len;
	} else if (al_read_small(srv.store, r->key, OVERVIEW_MAX, &json, &len) != 0) {
		return -1;
	}
	body = al_geoip_rewrite(json, len);
	free(json);
	if (body == NULL)
		return -1;
	cl = strlen(r->cstatus);
	if (cl < sizeof(r->cstatus))
		snprintf(r->cstatus + cl, sizeof(r->cstatus) - cl, "; detail=\"database urls lead to airlock\"");
	conn_reply_body(r, "application/json", body);
	free(body);
	return 0;
}
