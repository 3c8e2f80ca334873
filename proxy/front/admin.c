#include "proxy/front/admin.h"
#include "proxy/front/readiness.h"
#include "policy/hdr.h"
#include "policy/manifest.h"
#include "policy/route.h"
#include "policy/units.h"
#include "proxy/runtime/log.h"
#include "proxy/runtime/server.h"
#include "proxy/fetch/fill.h"
#include "proxy/fetch/uplink.h"
#include "proxy/fetch/writer.h"

#include <errno.h>

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

static unsigned long long ld(const atomic_uint_fast64_t *v)
{
	return (unsigned long long)atomic_load(v);
}

/*
 * Health for load balancers (HAProxy's httpchk) and people: 503 when this
 * node cannot serve, so a balancer stops sending it traffic: the cache
 * cannot be read, or a worker's event loop has not run its 2-second timer
 * for 10 s (stuck: its connections would hang).  An offline upstream is
 * not unhealthy: the node still serves what it has.  Nor is a cache that
 * refused writes (a full disk or map) in the last AL_STORE_DEGRADED_S: it
 * serves what it has and passes the rest through, so the status is
 * "degraded" (200), with why and since when, for people and monitors.
 */
static int health(const struct al_config *cfg, struct evbuffer *b)
{
	struct al_counters cnt;
	struct al_store_stats st = {0};
	struct al_store_health sh;
	char why[256] = "";
	int64_t now = (int64_t)time(NULL);
	int rc = al_store_stats(srv.store, &st), degraded;

	al_counters_sum(&cnt);
	if (rc != 0)
		snprintf(why, sizeof(why), "cache unreadable: %s", strerror(-rc));
	for (int i = 0; i < srv.nworkers && !why[0]; i++) {
		int64_t beat = atomic_load(&srv.workers[i].beat);
		if (now - beat > 10)
			snprintf(why, sizeof(why), "worker %d has not run its event loop for %lld s", i, (long long)(now - beat));
	}
	al_writer_health(&sh);
	degraded = !why[0] && sh.rc != 0;
	if (degraded)
		snprintf(why, sizeof(why), "the cache refuses writes: %s", sh.what);
	evbuffer_add_printf(b, "{\"status\":\"%s\",%s", why[0] ? (degraded ? "degraded" : "unhealthy") : "ok",
	    why[0] ? "\"reason\":" : "");
	if (why[0]) {
		al_json_str(b, why);
		evbuffer_add_printf(b, ",");
	}
	evbuffer_add_printf(b, "\"version\":\"%s\",\"uptime_s\":%lld,\"upstreams\":",
	    AIRLOCK_VERSION, (long long)(time(NULL) - srv.started));
	uplink_json(b);
	evbuffer_add_printf(b, ",\"cache\":{\"entries\":%llu,\"bytes\":%llu,\"max_size\":%llu,\"evictions\":%llu,"
	    "\"writes\":\"%s\",\"write_refusals\":%llu,\"passed_for_room\":%u",
	    (unsigned long long)st.entries, (unsigned long long)st.bytes,
	    (unsigned long long)cfg->cache_max_size, (unsigned long long)st.evictions,
	    sh.rc != 0 ? "refused" : "ok", sh.refusals, fill_backoff_count());
	if (sh.rc != 0) {
		char t[32];
		struct tm tm;
		time_t since = (time_t)sh.since;
		strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&since, &tm));
		evbuffer_add_printf(b, ",\"refusing_since\":\"%s\",\"last_refusal_s_ago\":%lld,\"error\":",
		    t, (long long)(now - sh.last));
		al_json_str(b, strerror(-sh.rc));
	}
	evbuffer_add_printf(b, "}");
	evbuffer_add_printf(b, ",\"requests\":{\"total\":%llu,\"hits\":%llu,\"misses\":%llu,"
	    "\"stale\":%llu,\"revalidated\":%llu,\"collapsed\":%llu,\"passed\":%llu,"
	    "\"upstream_fetches\":%llu,\"upstream_errors\":%llu},\"clients\":%lld}\n",
	    ld(&cnt.requests), ld(&cnt.hits), ld(&cnt.misses), ld(&cnt.stale),
	    ld(&cnt.revalidated), ld(&cnt.collapsed), ld(&cnt.passes),
	    ld(&cnt.upstream_fetches), ld(&cnt.upstream_errors), (long long)atomic_load(&srv.clients));
	return why[0] ? 503 : 200;
}

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help, unsigned long long v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

static void metrics(const struct al_config *cfg, struct evbuffer *b)
{
	struct al_counters cnt;
	struct al_store_stats st = {0};
	struct al_store_health sh;

	al_counters_sum(&cnt);
	al_store_stats(srv.store, &st);
	evbuffer_add_printf(b, "# HELP airlock_requests_total Requests answered, by how (result) .\n"
	    "# TYPE airlock_requests_total counter\n");
	for (int r = 0; r < R_COUNT; r++)
		evbuffer_add_printf(b, "airlock_requests_total{result=\"%s\"} %llu\n", al_result_names[r],
		    ld(&cnt.by_result[r]));
	evbuffer_add_printf(b, "# HELP airlock_responses_total Responses by status code.\n"
	    "# TYPE airlock_responses_total counter\n");
	for (int code = 100; code < 600; code++)
		if (ld(&cnt.by_status[code]))
			evbuffer_add_printf(b, "airlock_responses_total{code=\"%d\"} %llu\n", code, ld(&cnt.by_status[code]));
	metric(b, "airlock_cache_bytes_served_total", "counter", "Body bytes sent to clients from the cache.",
	    ld(&cnt.bytes_from_cache));
	metric(b, "airlock_upstream_bytes_total", "counter", "Body bytes received from upstreams.",
	    ld(&cnt.bytes_from_upstream));
	metric(b, "airlock_integrity_refused_total", "counter",
	    "Bodies not admitted: .sha512 mismatch or OpenPGP signature check failed.", ld(&cnt.integrity_refused));
	metric(b, "airlock_collapsed_requests_total", "counter", "Requests that joined another request's fill.",
	    ld(&cnt.collapsed));
	metric(b, "airlock_clients", "gauge", "Client connections open now.", (unsigned long long)atomic_load(&srv.clients));
	metric(b, "airlock_cache_entries", "gauge", "Complete entries in the cache.", (unsigned long long)st.entries);
	metric(b, "airlock_cache_bytes", "gauge", "Body bytes held in the cache.", (unsigned long long)st.bytes);
	metric(b, "airlock_cache_max_bytes", "gauge", "cache.max_size.", (unsigned long long)cfg->cache_max_size);
	metric(b, "airlock_cache_evictions_total", "counter", "Entries evicted to stay under cache.max_size.",
	    (unsigned long long)st.evictions);
	al_writer_health(&sh);
	metric(b, "airlock_cache_write_refusals_total", "counter",
	    "Writes the cache refused (a full file system or LMDB map: the log says which).", sh.refusals);
	metric(b, "airlock_cache_degraded", "gauge",
	    "1 while the cache refuses writes (a refusal in the last 5 minutes), else 0.", sh.rc != 0);
	metric(b, "airlock_cache_degraded_since_seconds", "gauge",
	    "When the cache began refusing writes (Unix time), 0 when it does not.", (unsigned long long)sh.since);
	metric(b, "airlock_cache_passed_for_room_keys", "gauge",
	    "Keys passed through without storing for now: the cache had no room for them.", fill_backoff_count());
	metric(b, "airlock_hot_sends_total", "counter", "Hits sent with sendfile from hot memory (cache.hot_memory).",
	    ld(&cnt.hot_sends));
	metric(b, "airlock_hot_copies_total", "counter", "Bodies copied into hot memory for sendfile.",
	    ld(&cnt.hot_copies));
	metric(b, "airlock_hot_rotations_total", "counter", "Hot memory generations retired (truncated whole).",
	    ld(&cnt.hot_rotations));
	metric(b, "airlock_hot_bytes", "gauge", "Bytes taken in hot memory now.", ld(&cnt.hot_bytes));
	uplink_metrics(b);
	readiness_metrics(b);
}

void admin_html_text(struct evbuffer *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': evbuffer_add(b, "&lt;", 4); break;
		case '>': evbuffer_add(b, "&gt;", 4); break;
		case '&': evbuffer_add(b, "&amp;", 5); break;
		case '"': evbuffer_add(b, "&quot;", 6); break;
		default: evbuffer_add(b, s, 1);
		}
	}
}

/* 2306867 -> "2.2 MiB" (binary units, as cache.max_size is written). */
static void human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/* <span title="exact">human</span>, with an id */
static void bytes_span(struct evbuffer *b, const char *id, uint64_t n)
{
	char h[32];

	human_bytes(n, h, sizeof(h));
	evbuffer_add_printf(b, "<span id=\"%s\" data-bytes=\"%llu\" title=\"%llu bytes\">%s</span>", id,
	    (unsigned long long)n, (unsigned long long)n, h);
}

/* The status page's Recent requests table, newest first. */
static void status_recent(struct evbuffer *b, const struct al_recent *rec, int n)
{
	evbuffer_add_printf(b, "<div class=\"card\"><h2>Recent requests</h2><table id=\"recent\"><tr><th>time (UTC)</th>"
	    "<th>method</th><th>path</th><th>status</th><th>result</th></tr>\n");
	for (int i = 0; i < n; i++) {
		char t[16];
		time_t sec = (time_t)(rec[i].t_us / 1000000);
		struct tm tm;
		gmtime_r(&sec, &tm);
		strftime(t, sizeof(t), "%H:%M:%S", &tm);
		evbuffer_add_printf(b, "<tr data-t=\"%lld\"><td>%s.%03d</td><td>", (long long)rec[i].t_us, t,
		    (int)(rec[i].t_us % 1000000 / 1000));
		admin_html_text(b, rec[i].method);
		evbuffer_add_printf(b, "</td><td>");
		admin_html_text(b, rec[i].url);
		evbuffer_add_printf(b, "</td><td>%d</td><td>%s</td></tr>\n", rec[i].status, al_result_names[rec[i].result]);
	}
}

/*
 * Plain server-rendered HTML with inline CSS: the site is air-gapped, so no
 * external assets, and an inline icon so the browser's /favicon.ico request
 * does not go to the package registry route.  The four cards an operator
 * looks at first (uplinks, cache, hit ratio, mirrored) fit a 1366x768 screen
 * above the fold; recent requests follow.
 */
static void status_page(const struct al_config *cfg, struct evbuffer *b)
{
	struct al_counters cnt;
	struct al_store_stats st = {0};
	struct al_recent rec[AL_RECENT];
	int n = al_recent_get(rec);
	uint64_t r5, h5, r15, h15;
	char up[32];
	double used;

	al_counters_sum(&cnt);
	al_store_stats(srv.store, &st);
	al_minutes(5, &r5, &h5);
	al_minutes(15, &r15, &h15);
	used = cfg->cache_max_size ? 100.0 * (double)st.bytes / (double)cfg->cache_max_size : 0;
	al_human_age((int64_t)(time(NULL) - srv.started), up, sizeof(up));
	evbuffer_add_printf(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>airlock status</title>"
	    "<link rel=\"icon\" href=\"data:image/svg+xml,%%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%%3E"
	    "%%3Crect width='16' height='16' rx='3' fill='%%233b6fd8'/%%3E%%3Cpath d='M4 8h8M8 4v8' stroke='white' "
	    "stroke-width='2'/%%3E%%3C/svg%%3E\">"
	    "<meta http-equiv=\"refresh\" content=\"10\"><style>"
	    "body{font:13px system-ui,sans-serif;margin:12px 16px;color:#222;background:#fafafa}"
	    "h1{font-size:17px;margin:0 0 8px}h2{font-size:13px;margin:0 0 6px;text-transform:uppercase;color:#555}"
	    ".grid{display:grid;grid-template-columns:2fr 1fr 1fr 1.4fr;gap:10px;margin-bottom:12px}"
	    ".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px}"
	    "table{border-collapse:collapse;width:100%%}td,th{padding:3px 6px;border-bottom:1px solid #eee;text-align:left}"
	    ".online .state{color:#0a7d28;font-weight:600}.offline .state{color:#b00020;font-weight:600}"
	    ".big{font-size:22px;font-weight:600}.bar{height:12px;background:#eee;border-radius:6px;overflow:hidden;margin:6px 0}"
	    ".bar div{height:100%%;background:#3b6fd8}.err{color:#666;font-size:11px}.warn{color:#b00020}"
	    "#recent td{font-size:12px}</style></head><body>"
	    "<h1>airlock %s <span class=\"err\">up <span id=\"uptime\">%s</span>; %lld client connections; %llu requests</span></h1>"
	    "<div class=\"grid\">",
	    AIRLOCK_VERSION, up, (long long)atomic_load(&srv.clients), ld(&cnt.requests));

	evbuffer_add_printf(b, "<div class=\"card\" id=\"uplinks\"><h2>Uplinks</h2><table id=\"upstreams\"><tr><th>upstream</th>"
	    "<th>state</th><th>for</th><th>fetches</th><th>errors</th></tr>\n");
	uplink_html(b);
	evbuffer_add_printf(b, "</table></div>");

	evbuffer_add_printf(b, "<div class=\"card\" id=\"cache\"><h2>Cache</h2><div class=\"big\">");
	bytes_span(b, "cache-bytes", st.bytes);
	evbuffer_add_printf(b, "</div>of ");
	bytes_span(b, "cache-max", cfg->cache_max_size);
	evbuffer_add_printf(b, " (%.1f%%)<div class=\"bar\"><div style=\"width:%.1f%%\"></div></div>"
	    "<span id=\"cache-entries\">%llu</span> entries, %llu evictions</div>",
	    used, used > 100 ? 100.0 : used, (unsigned long long)st.entries, (unsigned long long)st.evictions);

	evbuffer_add_printf(b, "<div class=\"card\" id=\"hitratio\"><h2>Hit ratio</h2><div class=\"big\">");
	if (r5)
		evbuffer_add_printf(b, "<span id=\"hit-ratio-5m\">%.0f%%</span>", 100.0 * (double)h5 / (double)r5);
	else
		evbuffer_add_printf(b, "<span id=\"hit-ratio-5m\">&ndash;</span>");
	evbuffer_add_printf(b, "</div>last 5 min (%llu of %llu requests from the cache)<br>last 15 min: %.0f%% of %llu"
	    "<br><span class=\"err\">since start: %llu hits, %llu stale, %llu revalidated, %llu misses, %llu collapsed</span></div>",
	    (unsigned long long)h5, (unsigned long long)r5, r15 ? 100.0 * (double)h15 / (double)r15 : 0.0,
	    (unsigned long long)r15, ld(&cnt.hits), ld(&cnt.stale), ld(&cnt.revalidated),
	    ld(&cnt.misses), ld(&cnt.collapsed));

	evbuffer_add_printf(b, "<div class=\"card\" id=\"mirrored\"><h2>Mirrored</h2>");
	readiness_mirrored_html(b); /* what the cache holds is read off the loop (proxy/front/readiness.c) */
	evbuffer_add_printf(b, "</div></div>");
	readiness_html(b);
	status_recent(b, rec, n);
	evbuffer_add_printf(b, "</table></div></body></html>\n");
}

/* One slice's matches, deleted by the slice; 1 (stop the slice) once full. */
static int purge_collect(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct admin_purge *ap = arg;
	char url[8192];
	size_t n = r->url_len < sizeof(url) - 1 ? r->url_len : sizeof(url) - 1;

	memcpy(url, r->url, n);
	url[n] = '\0';
	if (fnmatch(ap->pattern, url, 0) != 0)
		return 0;
	memcpy(ap->keys[ap->nkeys++], key, AL_KEY_LEN);
	return ap->nkeys == ADMIN_PURGE_SLICE_DELETES;
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

/* One slice, inside the writer's batch: the next entries of the scan, and the matching ones deleted. */
static void purge_run(struct al_writer_job *job)
{
	struct admin_purge *ap = (struct admin_purge *)job;
	int rc;

	ap->nkeys = 0;
	/* a read snapshot beside the writer's batch (MDB_NOTLS allows both on one thread) */
	rc = al_store_foreach_slice(srv.store, &ap->scan, ADMIN_PURGE_SLICE_ENTRIES, purge_collect, ap);
	if (rc < 0)
		ap->rc = rc;
	for (int i = 0; i < ap->nkeys; i++)
		if (al_store_delete(srv.store, ap->keys[i]) == 0) /* -ENOENT: another write deleted it meanwhile */
			ap->n++;
}

/*
 * The slice's deletions are committed (or rc says why not): the next slice
 * goes to the back of the queue, behind the jobs posted meanwhile (fills'
 * chunks), or the purge is over.  The writer touches the job no more after
 * done, so posting it again here is safe.
 */
static void purge_done(struct al_writer_job *job, int rc)
{
	struct admin_purge *ap = (struct admin_purge *)job;

	if (ap->rc == 0)
		ap->rc = rc;
	ap->slices++;
	if (ap->rc == 0 && !ap->scan.done) {
		al_writer_post(&ap->job);
		return;
	}
	ap->finished(ap);
}

int admin_purge_post(struct admin_purge *ap, const char *target, size_t len)
{
	if (query_param(target, len, "pattern", ap->pattern, sizeof(ap->pattern)) != 0)
		return -EINVAL;
	ap->n = ap->rc = ap->slices = 0;
	memset(&ap->scan, 0, sizeof(ap->scan));
	ap->job.run = purge_run;
	ap->job.done = purge_done;
	al_writer_post(&ap->job);
	return 0;
}

int admin_handle(const struct al_config *cfg, const char *target, size_t len, int post, int allowed, struct evbuffer *body, const char **ctype)
{
	*ctype = "text/plain; charset=utf-8";
	if (is(target, len, "health") && !post) {
		*ctype = "application/json";
		return health(cfg, body);
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
		metrics(cfg, body);
		return 200;
	}
	if (is(target, len, "status") && !post) {
		*ctype = "text/html; charset=utf-8";
		status_page(cfg, body);
		return 200;
	}
	if (is(target, len, "purge") && post) {
		char pattern[2048];
		if (query_param(target, len, "pattern", pattern, sizeof(pattern)) != 0) {
			evbuffer_add_printf(body, "purge needs ?pattern=<URL glob>\n");
			return 400;
		}
		return ADMIN_PURGE; /* the caller runs it with admin_purge_post, off its loop */
	}
	evbuffer_add_printf(body, "use GET for health, metrics and status, POST for purge\n");
	return 405;
}
