/*
 * The offline package registry's glue: gather the package documents the
 * cache holds under the registry's base and answer /search or /categories
 * with policy/registry.c's rules, when the registry cannot be reached.
 */
#include "policy/registry.h"
#include "proxy/front/conn_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cached package documents (/package/<name>/<version>/ under the registry's base), parsed. */
struct docs_ctx {
	const char *prefix;
	size_t plen;
	struct al_reader *rd;
	json_t *docs;
};

static int collect_doc(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct docs_ctx *d = arg;
	const char *rest = r->url + d->plen, *end = r->url + r->url_len;
	const char *slash;
	char *buf;
	json_t *j;

	if (r->status != 200 || r->url_len <= d->plen || memcmp(r->url, d->prefix, d->plen) != 0 ||
	    memchr(rest, '?', (size_t)(end - rest)) != NULL)
		return 0;
	/* exactly <name>/<version> with an optional trailing slash */
	slash = memchr(rest, '/', (size_t)(end - rest));
	if (slash == NULL || slash == rest || slash + 1 >= end)
		return 0;
	slash = memchr(slash + 1, '/', (size_t)(end - slash - 1));
	if (slash != NULL && slash + 1 != end)
		return 0;
	if (al_body_read(d->rd, r, 8u << 20, &buf) != 0)
		return 0;
	if ((j = json_loadb(buf, r->body_len, 0, NULL)) != NULL && json_is_object(j))
		json_array_append(d->docs, j);
	json_decref(j);
	free(buf);
	return 0;
}

/*
 * /package/<name>/<version> without the trailing slash: the registry's
 * router (gorilla mux with StrictSlash(true), in package-registry's
 * main.go getRouter) answers 301 to the path with the slash, which Kibana's
 * node-fetch follows (older Kibana fetchInfo asked without the slash; newer
 * adds it "to avoid 301 redirect").  Offline, airlock answers that same
 * redirect, but only when the document it leads to is cached, so it never
 * leads to a 504.  0 when answered, -1 when this is not such a request.
 */
static int package_slash_redirect(struct req *r, const char *path)
{
	struct conn *c = r->conn;
	const char *v, *end = path + strcspn(path, "?");
	char url[2200], loc[2200];
	uint8_t key[AL_KEY_LEN];
	struct al_record rec;
	int cached;

	if (strncmp(path, "/package/", 9) != 0 || *end != '\0' || end[-1] == '/')
		return -1;
	v = memchr(path + 9, '/', (size_t)(end - path - 9));
	if (v == NULL || v == path + 9 || memchr(v + 1, '/', (size_t)(end - v - 1)) != NULL || v + 1 == end)
		return -1;
	snprintf(url, sizeof(url), "%s/", r->url);
	al_store_key(url, strlen(url), key);
	cached = al_lookup(c->hold->rd, key, &rec) == 0 && rec.status == 200;
	al_reader_end(c->hold->rd);
	if (!cached)
		return -1;
	snprintf(loc, sizeof(loc), "Location: %.2000s/\r\n", path);
	snprintf(r->cstatus, sizeof(r->cstatus),
	    "%s; fwd=miss; detail=\"registry offline: its StrictSlash redirect to the cached document\"", AL_NAME);
	r->result = R_STALE;
	conn_reply_simple(c, 301, "text/html; charset=utf-8", loc, "<a href=\"%.2000s/\">Moved Permanently</a>.\n", path);
	event_active(c->wake, EV_READ, 0);
	return 0;
}

/*
 * The registry is unreachable and this request was never cached as asked:
 * /search or /categories computed from the package documents the cache
 * holds (policy/registry.h), or the registry's redirect of a package
 * document asked without its trailing slash.  Returns -1 when this is not
 * such a request.
 */
int conn_registry_answer(struct req *r)
{
	struct conn *c = r->conn;
	const char *path = r->url + r->base_len, *q;
	struct al_registry_query query;
	struct docs_ctx d;
	char prefix[400], hdrs[256], *body;
	int search;

	if (package_slash_redirect(r, path) == 0)
		return 0;
	if (!strncmp(path, "/search", 7) && (path[7] == '\0' || path[7] == '?'))
		search = 1;
	else if (!strncmp(path, "/categories", 11) && (path[11] == '\0' || path[11] == '?'))
		search = 0;
	else
		return -1;
	q = strchr(path, '?');
	if (al_registry_query_parse(q ? q + 1 : "", q ? strlen(q + 1) : 0, !search, &query) != 0) {
		/* as the registry answers it: http.Error(w, msg, 400) (search.go searchHandler, badRequest) */
		snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=miss; detail=\"registry offline: its 400 for this query\"",
		    AL_NAME);
		conn_reply_simple(c, 400, "text/plain; charset=utf-8", "X-Content-Type-Options: nosniff\r\n", "%s\n",
		    query.error);
		event_active(c->wake, EV_READ, 0);
		return 0;
	}
	snprintf(prefix, sizeof(prefix), "%.*s/package/", (int)r->base_len, r->url);
	d.prefix = prefix;
	d.plen = strlen(prefix);
	d.docs = json_array();
	if (d.docs == NULL || al_reader_new(srv.store, &d.rd) != 0) {
		json_decref(d.docs);
		return -1;
	}
	al_reader_begin(d.rd);
	al_store_foreach(srv.store, collect_doc, &d);
	al_reader_free(d.rd);
	body = search ? al_registry_search(d.docs, &query) : al_registry_categories(d.docs, &query);
	snprintf(r->cstatus, sizeof(r->cstatus),
	    "%s; fwd=miss; detail=\"computed from %zu cached package documents, registry offline\"", AL_NAME,
	    json_array_size(d.docs));
	json_decref(d.docs);
	if (body == NULL)
		return -1;
	snprintf(hdrs, sizeof(hdrs), "Content-Type: application/json; charset=utf-8\r\n");
	r->result = R_STALE;
	conn_add_head(c, 200, hdrs, strlen(hdrs), (int64_t)strlen(body), -1, NULL);
	if (!r->head_only) {
		evbuffer_add(conn_out(c), body, strlen(body));
		r->body_sent = strlen(body);
	}
	free(body);
	c->state = C_DONE;
	event_active(c->wake, EV_READ, 0);
	return 0;
}

