/*
 * An S3 bucket's listing, written offline from what the cache holds: the
 * AI Assistant's product documentation (policy/s3listing.c says how Kibana
 * reads it).  The upstream's own listing names every artifact Elastic
 * publishes; served as it is offline, it would let Kibana choose one the
 * cache lacks and install nothing.  So while the bucket's upstream is
 * offline, the listing names exactly the objects cached at its root.
 */
#include "policy/hdr.h"
#include "policy/s3listing.h"
#include "proxy/front/conn_impl.h"
#include "proxy/runtime/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct listing_ctx {
	const char *base;         /* "https://host/" */
	size_t blen;
	struct al_s3_object *objs;
	size_t n, cap;
	size_t read;              /* records looked at */
};

/* Copies what it keeps: the record is valid only during the call. */
static int collect_object(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct listing_ctx *l = arg;
	const char *rest = r->url + l->blen, *v;
	size_t rl, vl;
	struct al_s3_object *o;

	(void)key;
	l->read++;
	if (r->status != 200 || r->url_len <= l->blen || memcmp(r->url, l->base, l->blen) != 0)
		return 0;
	rl = r->url_len - l->blen;
	if (memchr(rest, '/', rl) != NULL || memchr(rest, '?', rl) != NULL)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct al_s3_object *no = realloc(l->objs, nc * sizeof(*no));
		if (no == NULL)
			return 0;
		l->objs = no;
		l->cap = nc;
	}
	o = &l->objs[l->n];
	memset(o, 0, sizeof(*o));
	if ((o->key = strndup(rest, rl)) == NULL)
		return 0;
	o->size = r->body_len;
	if ((v = al_hdr_get(r->hdrs, r->hdrs_len, "ETag", &vl)) != NULL)
		o->etag = strndup(v, vl);
	if ((v = al_hdr_get(r->hdrs, r->hdrs_len, "Last-Modified", &vl)) != NULL) {
		time_t t = al_http_date(v, vl);
		struct tm tm;
		char iso[40];
		if (t > 0 && gmtime_r(&t, &tm) != NULL && strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S.000Z", &tm) > 0)
			o->last_modified = strdup(iso);
	}
	l->n++;
	return 0;
}

struct listing_job {
	char base[400];           /* "https://host/" */
	char *bucket;
};

static void listing_free(void *arg)
{
	struct listing_job *lj = arg;

	free(lj->bucket);
	free(lj);
}

/*
 * On a query thread (offline_registry.c): a read snapshot and a record per
 * object at the bucket's root (the store's root index, al_store_root_scan),
 * so never on the worker's loop, and as long as the bucket, not the cache.
 */
static char *listing_compute(void *arg, size_t *n)
{
	struct listing_job *lj = arg;
	struct listing_ctx l = {lj->base, strlen(lj->base), NULL, 0, 0, 0};
	char *body;

	al_store_root_scan(srv.store, l.base, l.blen, collect_object, &l);
	al_debug("listing", "%s: %zu objects listed from %zu records read", lj->base, l.n, l.read);
	body = al_s3_listing(lj->bucket, l.objs, l.n);
	for (size_t i = 0; i < l.n; i++) {
		free((char *)l.objs[i].key);
		free((char *)l.objs[i].etag);
		free((char *)l.objs[i].last_modified);
	}
	free(l.objs);
	*n = l.n;
	return body;
}

int conn_listing_answer(struct req *r)
{
	const char *path = r->url + r->base_len;
	const char *bucket = al_s3_bucket_of(r->url, r->base_len);
	struct listing_job *lj;

	if (bucket == NULL || path[0] != '/' || (path[1] != '\0' && path[1] != '?') ||
	    r->base_len + 2 > sizeof(lj->base))
		return -1;
	if ((lj = calloc(1, sizeof(*lj))) == NULL || (lj->bucket = strdup(bucket)) == NULL) {
		free(lj);
		return -1;
	}
	snprintf(lj->base, sizeof(lj->base), "%.*s/", (int)r->base_len, r->url);
	return conn_offload_answer(r, listing_compute, lj, listing_free, "application/xml",
	    "listing of the %zu cached objects, upstream offline");
}
