#include "proxy/admin.h"
#include "policy/route.h"
#include "proxy/server.h"
#include "proxy/uplink.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int is(const char *path, size_t len, const char *name)
{
	size_t pl = strlen(AL_RESERVED_PREFIX), nl = strlen(name);

	if (len < pl + nl || memcmp(path + pl, name, nl) != 0)
		return 0;
	return len == pl + nl || path[pl + nl] == '?';
}

static unsigned long long ld(atomic_uint_fast64_t *v)
{
	return (unsigned long long)atomic_load(v);
}

static void health(struct evbuffer *b)
{
	struct al_store_stats st = {0};

	al_store_stats(srv.store, &st);
	evbuffer_add_printf(b, "{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%lld,\"upstreams\":",
	    AIRLOCK_VERSION, (long long)(time(NULL) - srv.started));
	uplink_json(b);
	evbuffer_add_printf(b, ",\"cache\":{\"entries\":%llu,\"bytes\":%llu,\"max_size\":%llu,\"evictions\":%llu}",
	    (unsigned long long)st.entries, (unsigned long long)st.bytes,
	    (unsigned long long)srv.cfg->cache_max_size, (unsigned long long)st.evictions);
	evbuffer_add_printf(b, ",\"requests\":{\"total\":%llu,\"hits\":%llu,\"misses\":%llu,"
	    "\"stale\":%llu,\"revalidated\":%llu,\"collapsed\":%llu,\"passed\":%llu,"
	    "\"upstream_fetches\":%llu,\"upstream_errors\":%llu},\"clients\":%lld}\n",
	    ld(&srv.stats.requests), ld(&srv.stats.hits), ld(&srv.stats.misses), ld(&srv.stats.stale),
	    ld(&srv.stats.revalidated), ld(&srv.stats.collapsed), ld(&srv.stats.passes),
	    ld(&srv.stats.upstream_fetches), ld(&srv.stats.upstream_errors), (long long)atomic_load(&srv.stats.clients));
}

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help, unsigned long long v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

static void metrics(struct evbuffer *b)
{
	struct al_store_stats st = {0};

	al_store_stats(srv.store, &st);
	evbuffer_add_printf(b, "# HELP airlock_requests_total Requests answered, by how (result) .\n"
	    "# TYPE airlock_requests_total counter\n");
	for (int r = 0; r < R_COUNT; r++)
		evbuffer_add_printf(b, "airlock_requests_total{result=\"%s\"} %llu\n", al_result_names[r],
		    ld(&srv.stats.by_result[r]));
	evbuffer_add_printf(b, "# HELP airlock_responses_total Responses by status code.\n"
	    "# TYPE airlock_responses_total counter\n");
	for (int code = 100; code < 600; code++)
		if (atomic_load(&srv.stats.by_status[code]))
			evbuffer_add_printf(b, "airlock_responses_total{code=\"%d\"} %llu\n", code, ld(&srv.stats.by_status[code]));
	metric(b, "airlock_cache_bytes_served_total", "counter", "Body bytes sent to clients from the cache.",
	    ld(&srv.stats.bytes_from_cache));
	metric(b, "airlock_upstream_bytes_total", "counter", "Body bytes received from upstreams.",
	    ld(&srv.stats.bytes_from_upstream));
	metric(b, "airlock_collapsed_requests_total", "counter", "Requests that joined another request's fill.",
	    ld(&srv.stats.collapsed));
	metric(b, "airlock_clients", "gauge", "Client connections open now.", (unsigned long long)atomic_load(&srv.stats.clients));
	metric(b, "airlock_cache_entries", "gauge", "Complete entries in the cache.", (unsigned long long)st.entries);
	metric(b, "airlock_cache_bytes", "gauge", "Body bytes held in the cache.", (unsigned long long)st.bytes);
	metric(b, "airlock_cache_max_bytes", "gauge", "cache.max_size.", (unsigned long long)srv.cfg->cache_max_size);
	metric(b, "airlock_cache_evictions_total", "counter", "Entries evicted to stay under cache.max_size.",
	    (unsigned long long)st.evictions);
	uplink_metrics(b);
}

static void html_text(struct evbuffer *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': evbuffer_add(b, "&lt;", 4); break;
		case '>': evbuffer_add(b, "&gt;", 4); break;
		case '&': evbuffer_add(b, "&amp;", 5); break;
		case '"': evbuffer_add(b, "&quot;", 6); break;
		default: evbuffer_add(b, s, 1);
		}
	}
}

struct versions {
	char v[32][32];
	int n, pinned;
};

static int collect_versions(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct versions *vs = arg;
	char v[32];
	int k;

	if (!(r->flags & AL_REC_PINNED))
		return 0;
	vs->pinned++;
	if (r->status != 200 || al_agent_version_of(r->url, r->url_len, v, sizeof(v)) != 0)
		return 0;
	for (k = 0; k < vs->n && strcmp(vs->v[k], v); k++)
		;
	if (k == vs->n && vs->n < 32)
		memcpy(vs->v[vs->n++], v, sizeof(v));
	return 0;
}

/* Plain server-rendered HTML with inline CSS: the site is air-gapped, so no external assets. */
static void status_page(struct evbuffer *b)
{
	struct al_store_stats st = {0};
	struct al_recent rec[AL_RECENT];
	int n = al_recent_get(rec);
	double used;

	al_store_stats(srv.store, &st);
	used = srv.cfg->cache_max_size ? 100.0 * (double)st.bytes / (double)srv.cfg->cache_max_size : 0;
	evbuffer_add_printf(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>airlock status</title>"
	    "<meta http-equiv=\"refresh\" content=\"10\"><style>"
	    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:2em}"
	    "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}"
	    ".online .state{color:#0a7d28;font-weight:600}.offline .state{color:#b00020;font-weight:600}"
	    ".bar{width:320px;height:14px;background:#eee;border-radius:7px;overflow:hidden}"
	    ".bar div{height:100%%;background:#3b6fd8}.err{color:#666;font-size:12px}</style></head><body>"
	    "<h1>airlock %s</h1><p>up %lld s; %lld client connections; %llu requests</p>",
	    AIRLOCK_VERSION, (long long)(time(NULL) - srv.started), (long long)atomic_load(&srv.stats.clients),
	    ld(&srv.stats.requests));
	evbuffer_add_printf(b, "<h2>Upstreams</h2><table id=\"upstreams\"><tr><th>upstream</th><th>state</th><th>since</th>"
	    "<th>fetches</th><th>errors</th><th>last error</th></tr>\n");
	uplink_html(b);
	evbuffer_add_printf(b, "</table><h2>Cache</h2><div class=\"bar\"><div style=\"width:%.1f%%\"></div></div>"
	    "<p id=\"cache\"><span id=\"cache-entries\">%llu</span> entries, <span id=\"cache-bytes\">%llu</span> of "
	    "<span id=\"cache-max\">%llu</span> bytes (%.1f%%), %llu evictions</p>",
	    used > 100 ? 100.0 : used, (unsigned long long)st.entries, (unsigned long long)st.bytes,
	    (unsigned long long)srv.cfg->cache_max_size, used, (unsigned long long)st.evictions);
	evbuffer_add_printf(b, "<p>hits %llu, stale (offline) %llu, revalidated %llu, misses %llu, collapsed %llu, passed %llu</p>",
	    ld(&srv.stats.hits), ld(&srv.stats.stale), ld(&srv.stats.revalidated), ld(&srv.stats.misses),
	    ld(&srv.stats.collapsed), ld(&srv.stats.passes));
	evbuffer_add_printf(b, "<h2>Recent requests</h2><table id=\"recent\"><tr><th>time (UTC)</th><th>method</th>"
	    "<th>path</th><th>status</th><th>result</th></tr>\n");
	for (int i = 0; i < n; i++) {
		char t[16];
		struct tm tm;
		gmtime_r(&rec[i].t, &tm);
		strftime(t, sizeof(t), "%H:%M:%S", &tm);
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", t);
		html_text(b, rec[i].method);
		evbuffer_add_printf(b, "</td><td>");
		html_text(b, rec[i].url);
		evbuffer_add_printf(b, "</td><td>%d</td><td>%s</td></tr>\n", rec[i].status, al_result_names[rec[i].result]);
	}
	evbuffer_add_printf(b, "</table><h2>Mirrored</h2><p id=\"mirrored\">Elastic Agent versions:");
	{
		struct versions vs = {0};
		al_store_foreach(srv.store, collect_versions, &vs);
		for (int i = 0; i < vs.n; i++)
			evbuffer_add_printf(b, " <span class=\"version\">%s</span>", vs.v[i]);
		evbuffer_add_printf(b, "%s; %d pinned entries</p>", vs.n ? "" : " none", vs.pinned);
	}
	evbuffer_add_printf(b, "</body></html>\n");
}

struct purge_ctx {
	const char *pattern;
	uint8_t (*keys)[AL_KEY_LEN];
	int n, cap;
};

static int purge_collect(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct purge_ctx *p = arg;
	char url[8192];
	size_t n = r->url_len < sizeof(url) - 1 ? r->url_len : sizeof(url) - 1;

	memcpy(url, r->url, n);
	url[n] = '\0';
	if (fnmatch(p->pattern, url, 0) != 0)
		return 0;
	if (p->n == p->cap) {
		void *nk = realloc(p->keys, (size_t)(p->cap = p->cap ? p->cap * 2 : 64) * AL_KEY_LEN);
		if (nk == NULL)
			return -1;
		p->keys = nk;
	}
	memcpy(p->keys[p->n++], key, AL_KEY_LEN);
	return 0;
}

/* %XX-decode the value of name= in the query, into out. */
static int query_param(const char *target, size_t len, const char *name, char *out, size_t cap)
{
	const char *q = memchr(target, '?', len), *end = target + len;
	size_t nl = strlen(name), o = 0;

	while (q != NULL && q < end) {
		q++;
		if ((size_t)(end - q) > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
			for (const char *p = q + nl + 1; p < end && *p != '&' && o + 1 < cap; p++) {
				if (*p == '%' && p + 2 < end) {
					char hex[3] = {p[1], p[2], 0};
					out[o++] = (char)strtol(hex, NULL, 16);
					p += 2;
				} else {
					out[o++] = *p == '+' ? ' ' : *p;
				}
			}
			out[o] = '\0';
			return o > 0 ? 0 : -1;
		}
		q = memchr(q, '&', (size_t)(end - q));
	}
	return -1;
}

int admin_handle(const char *target, size_t len, int post, int allowed, struct evbuffer *body, const char **ctype)
{
	*ctype = "text/plain; charset=utf-8";
	if (is(target, len, "health") && !post) {
		*ctype = "application/json";
		health(body);
		return 200;
	}
	if (!is(target, len, "metrics") && !is(target, len, "status") && !is(target, len, "purge")) {
		evbuffer_add_printf(body, "unknown airlock endpoint; see %shealth\n", AL_RESERVED_PREFIX);
		return 404;
	}
	if (!allowed) {
		evbuffer_add_printf(body, "admin endpoints need a client in admin.allow or Authorization: Bearer <admin.token>\n");
		return 403;
	}
	if (is(target, len, "metrics") && !post) {
		*ctype = "text/plain; version=0.0.4; charset=utf-8";
		metrics(body);
		return 200;
	}
	if (is(target, len, "status") && !post) {
		*ctype = "text/html; charset=utf-8";
		status_page(body);
		return 200;
	}
	if (is(target, len, "purge") && post) {
		char pattern[2048];
		struct purge_ctx p = {pattern, NULL, 0, 0};
		if (query_param(target, len, "pattern", pattern, sizeof(pattern)) != 0) {
			evbuffer_add_printf(body, "purge needs ?pattern=<URL glob>\n");
			return 400;
		}
		al_store_foreach(srv.store, purge_collect, &p);
		for (int i = 0; i < p.n; i++)
			al_store_delete(srv.store, p.keys[i]);
		free(p.keys);
		*ctype = "application/json";
		evbuffer_add_printf(body, "{\"purged\":%d}\n", p.n);
		return 200;
	}
	evbuffer_add_printf(body, "use GET for health, metrics and status, POST for purge\n");
	return 405;
}
