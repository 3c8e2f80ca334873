/*
 * The readiness thread (see readiness.h).  When to compute: only while
 * someone looks (the status page or the metrics were asked for in the last
 * WATCH_S: a Prometheus scrape keeps it going; `airlock mirror`'s own
 * in-process proxy, which nobody asks, never computes it): at the first
 * ask, then whenever the store has changed (LMDB's last transaction id,
 * which any process's write moves: a fill, an import, a mirror run beside
 * the server), but not sooner than MIN_GAP_S after the last computation
 * nor sooner than 20 times its duration after it, so that a busy cache
 * (whose last-use times are written every few seconds) spends at most
 * about 5% of one core on it.  Ages are computed when shown, from the
 * publication time.
 *
 * Which versions: those the cache holds Elastic Agent packages for
 * (al_readiness_versions, at most MAX_VERSIONS, newest first), each
 * checked for the platforms the cache holds agent packages for, with
 * Kibana and Endpoint of the same version: what the site chose to carry,
 * without a setting to keep in step with it.  A version the cache holds
 * nothing for is `airlock doctor --stack V`'s to answer.
 */
#include "proxy/front/readiness.h"
#include "proxy/front/admin.h"
#include "cache/readiness.h"
#include "proxy/runtime/conf.h"
#include "proxy/runtime/log.h"
#include "proxy/runtime/server.h"
#include "policy/route.h"
#include "policy/units.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_GAP_S 5
#define WATCH_S 600
#define MAX_VERSIONS 16

static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int running, stopping;
static json_t *result;          /* [{doctor's object}], under mu; replaced whole, never edited */
static int64_t computed_at;     /* under mu; 0 before the first */
static int64_t asked_at;        /* under mu: when the pages last asked for it, 0 never */

/* The status page's Mirrored card: pinned agent versions, package documents, Endpoint manifests. */
struct mirrored {
	char v[32][32];
	int n, pinned, packages;
	char manifests[8][256];
	int nmanifests;
	char mv[8][200];           /* each manifest's manifest_version, or why it is unreadable */
	time_t published[8];
};

static struct mirrored *mirrored_last; /* under mu; replaced whole */

static int collect_mirrored(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct mirrored *m = arg;
	char url[1024], v[32];
	size_t ul = r->url_len < sizeof(url) - 1 ? r->url_len : sizeof(url) - 1;
	int k;

	(void)key;
	memcpy(url, r->url, ul);
	url[ul] = '\0';
	if (r->status == 200 && strstr(url, "/package/") != NULL && ul > 0 && url[ul - 1] == '/')
		m->packages++;
	if (r->status == 200 && strstr(url, "/downloads/endpoint/manifest/artifacts-") != NULL && m->nmanifests < 8)
		snprintf(m->manifests[m->nmanifests++], sizeof(m->manifests[0]), "%.255s", url);
	if (!(r->flags & AL_REC_PINNED))
		return 0;
	m->pinned++;
	if (r->status != 200 || al_agent_version_of(r->url, r->url_len, v, sizeof(v)) != 0)
		return 0;
	for (k = 0; k < m->n && strcmp(m->v[k], v); k++)
		;
	if (k == m->n && m->n < 32)
		memcpy(m->v[m->n++], v, sizeof(v));
	return 0;
}

/* m, counted by collect_mirrored in compute's walk: each manifest's version and age. */
static void finish_mirrored(struct mirrored *m)
{
	struct al_reader *rd;
	int n = 0;

	if (al_reader_new(srv.store, &rd) == 0) {
		for (int i = 0; i < m->nmanifests; i++) {
			/* a manifest gone since the scan is left out */
			if (al_manifest_info(rd, m->manifests[i], m->mv[n], sizeof(m->mv[n]), &m->published[n]) == -ENOENT)
				continue;
			if (n != i)
				memcpy(m->manifests[n], m->manifests[i], sizeof(m->manifests[0]));
			n++;
		}
		al_reader_free(rd);
	}
	m->nmanifests = n;
}

/*
 * The readiness of each version held, and (m, when not NULL) the Mirrored
 * card's counts: both from one walk of the cache.
 */
static json_t *compute(struct mirrored *m)
{
	struct al_conf *c = al_conf_pin();
	char v[MAX_VERSIONS][32], plats[512], err[300];
	struct al_readiness *rd;
	json_t *out = json_array();
	int n = al_readiness_versions(srv.store, c->cfg, v, MAX_VERSIONS, plats, sizeof(plats),
	    m != NULL ? collect_mirrored : NULL, m);

	if (m != NULL)
		finish_mirrored(m);

	if (n > 0 && al_readiness_new(srv.store, c->cfg, &rd) == 0) {
		for (int i = 0; i < n; i++) {
			json_t *one = al_readiness_check(rd, v[i], plats, v[i], v[i], NULL, err, sizeof(err));
			if (one != NULL)
				json_array_append_new(out, one);
		}
		al_readiness_free(rd);
	}
	al_conf_release(c);
	return out;
}

/* Milliseconds on a clock that does not jump. */
static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *readiness_main(void *arg)
{
	uint64_t seen = 0;
	int64_t last = 0, took = 0; /* ms, mono_ms() */
	int first = 1;

	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		struct al_store_stats st = {0};
		int64_t now = mono_ms();
		int watched = asked_at != 0 && (int64_t)time(NULL) - asked_at < WATCH_S;
		struct timespec until;
		pthread_mutex_unlock(&mu);
		if (watched && al_store_stats(srv.store, &st) == 0 &&
		    (first || (st.last_txnid != seen && now - last >= MIN_GAP_S * 1000 && now - last >= 20 * took))) {
			struct mirrored *mi = calloc(1, sizeof(*mi)), *old_mi;
			json_t *r = compute(mi), *old;
			int64_t done = (int64_t)time(NULL);
			last = mono_ms();
			took = last - now;
			seen = st.last_txnid;
			first = 0;
			pthread_mutex_lock(&mu);
			old = result;
			result = r;
			old_mi = mirrored_last;
			mirrored_last = mi;
			computed_at = done;
			pthread_mutex_unlock(&mu);
			json_decref(old);
			free(old_mi);
		}
		pthread_mutex_lock(&mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!stopping)
			pthread_cond_timedwait(&cv, &mu, &until);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int readiness_start(void)
{
	int rc;

	stopping = 0;
	if ((rc = pthread_create(&thread, NULL, readiness_main, NULL)) != 0)
		return -rc;
	running = 1;
	return 0;
}

void readiness_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	stopping = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	running = 0;
	json_decref(result);
	result = NULL;
	free(mirrored_last);
	mirrored_last = NULL;
	computed_at = asked_at = 0;
}

/* The last result, referenced for the caller (json_decref), and when it was computed; the thread is woken if idle. */
static json_t *last_result(int64_t *at)
{
	json_t *r;
	int64_t now = (int64_t)time(NULL);

	pthread_mutex_lock(&mu);
	r = json_incref(result);
	*at = computed_at;
	if (asked_at == 0 || now - asked_at >= WATCH_S)
		pthread_cond_signal(&cv); /* it was idle: compute now, not at its next wake */
	asked_at = now;
	pthread_mutex_unlock(&mu);
	return r;
}

static int64_t manifest_age(json_t *one)
{
	json_t *m = json_object_get(one, "endpoint_manifest");

	return json_is_object(m) ? (int64_t)time(NULL) - (int64_t)json_integer_value(json_object_get(m, "published")) : -1;
}

void readiness_metrics(struct evbuffer *b)
{
	static const char *const what[][2] = {
	    {"checked", "Things an air-gapped Stack of this version needs that airlock doctor checks."},
	    {"present", "Of those, the ones the cache holds."},
	    {"missing", "Of those, the ones the cache lacks (airlock doctor --stack VERSION names them)."},
	};
	int64_t at;
	json_t *r = last_result(&at), *one;
	size_t i;

	evbuffer_add_printf(b, "# HELP airlock_readiness_computed_seconds When the readiness below was computed (Unix "
	    "time), 0 before the first time.\n# TYPE airlock_readiness_computed_seconds gauge\n"
	    "airlock_readiness_computed_seconds %lld\n", (long long)at);
	for (int k = 0; k < 3; k++) {
		evbuffer_add_printf(b, "# HELP airlock_stack_coverage_%s %s\n# TYPE airlock_stack_coverage_%s gauge\n",
		    what[k][0], what[k][1], what[k][0]);
		json_array_foreach(r, i, one) {
			const char *key = k == 0 ? "checked" : k == 1 ? "present" : "missing_count";
			evbuffer_add_printf(b, "airlock_stack_coverage_%s{version=\"%s\"} %lld\n", what[k][0],
			    json_string_value(json_object_get(one, "stack")),
			    (long long)json_integer_value(json_object_get(one, key)));
		}
	}
	evbuffer_add_printf(b, "# HELP airlock_endpoint_manifest_age_seconds Age of the cached Endpoint artifacts "
	    "manifest of this version (from its Last-Modified); Elastic advises monthly updates.\n"
	    "# TYPE airlock_endpoint_manifest_age_seconds gauge\n");
	json_array_foreach(r, i, one) {
		int64_t age = manifest_age(one);
		if (age >= 0)
			evbuffer_add_printf(b, "airlock_endpoint_manifest_age_seconds{version=\"%s\"} %lld\n",
			    json_string_value(json_object_get(one, "endpoint")), (long long)age);
	}
	json_decref(r);
}

void readiness_html(struct evbuffer *b)
{
	int64_t at;
	json_t *r = last_result(&at), *one, *m;
	size_t i, j;

	evbuffer_add_printf(b, "<div class=\"card\" id=\"readiness\"><h2>Readiness</h2>");
	if (at == 0) {
		evbuffer_add_printf(b, "being computed</div>");
		json_decref(r);
		return;
	}
	if (json_array_size(r) == 0)
		evbuffer_add_printf(b, "no Elastic Agent packages in the cache: nothing to check "
		    "(airlock doctor --stack VERSION)");
	else
		evbuffer_add_printf(b, "<table id=\"coverage\"><tr><th>Stack</th><th>present</th><th>missing</th>"
		    "<th>Endpoint manifest</th></tr>\n");
	json_array_foreach(r, i, one) {
		const char *v = json_string_value(json_object_get(one, "stack"));
		long long miss = (long long)json_integer_value(json_object_get(one, "missing_count"));
		int64_t age = manifest_age(one);
		evbuffer_add_printf(b, "<tr class=\"coverage\" data-version=\"");
		admin_html_text(b, v);
		evbuffer_add_printf(b, "\" data-checked=\"%lld\" data-present=\"%lld\" data-missing=\"%lld\"><td>",
		    (long long)json_integer_value(json_object_get(one, "checked")),
		    (long long)json_integer_value(json_object_get(one, "present")), miss);
		admin_html_text(b, v);
		evbuffer_add_printf(b, "</td><td>%lld of %lld</td><td%s>", (long long)json_integer_value(json_object_get(one,
		    "present")), (long long)json_integer_value(json_object_get(one, "checked")), miss ? " class=\"warn\"" : "");
		json_array_foreach(json_object_get(one, "missing"), j, m) {
			if (j == 3) {
				evbuffer_add_printf(b, " and %lld more", miss - 3);
				break;
			}
			evbuffer_add_printf(b, "%s<span class=\"missing\" title=\"", j ? ", " : "");
			admin_html_text(b, json_string_value(json_object_get(m, "url")));
			evbuffer_add_printf(b, "\">");
			admin_html_text(b, json_string_value(json_object_get(m, "kind")));
			evbuffer_add_printf(b, "</span>");
		}
		if (miss == 0)
			evbuffer_add_printf(b, "none");
		if (age >= 0) {
			char h[32];
			al_human_age(age, h, sizeof(h));
			evbuffer_add_printf(b, "</td><td data-age=\"%lld\"%s>%s old%s</td></tr>\n", (long long)age,
			    age > AL_MANIFEST_MAX_AGE ? " class=\"warn\"" : "", h,
			    age > AL_MANIFEST_MAX_AGE ? ": Elastic advises monthly updates" : "");
		} else {
			evbuffer_add_printf(b, "</td><td>not cached</td></tr>\n");
		}
	}
	if (json_array_size(r) > 0)
		evbuffer_add_printf(b, "</table>");
	evbuffer_add_printf(b, "<span class=\"err\">computed %lld s ago, off the request path</span></div>",
	    (long long)((int64_t)time(NULL) - at));
	json_decref(r);
}

void readiness_mirrored_html(struct evbuffer *b)
{
	struct mirrored *m = malloc(sizeof(*m));
	int64_t at;

	json_decref(last_result(&at)); /* an ask, as the readiness card's */
	pthread_mutex_lock(&mu);
	if (m != NULL && mirrored_last != NULL)
		memcpy(m, mirrored_last, sizeof(*m));
	else if (m != NULL)
		m->n = -1;
	pthread_mutex_unlock(&mu);
	if (m == NULL || m->n < 0) {
		evbuffer_add_printf(b, "being computed");
		free(m);
		return;
	}
	evbuffer_add_printf(b, "Elastic Agent versions:");
	for (int i = 0; i < m->n; i++)
		evbuffer_add_printf(b, " <span class=\"version\">%s</span>", m->v[i]);
	evbuffer_add_printf(b, "%s<br>Package documents: <span id=\"packages\">%d</span>; pinned entries: %d",
	    m->n ? "" : " none", m->packages, m->pinned);
	for (int i = 0; i < m->nmanifests; i++) {
		char age[32];
		const char *base = strrchr(m->manifests[i], '/');
		int64_t old = (int64_t)time(NULL) - (int64_t)m->published[i];
		al_human_age(old, age, sizeof(age));
		evbuffer_add_printf(b, "<br>Endpoint <span class=\"manifest\">");
		admin_html_text(b, base ? base + 1 : m->manifests[i]);
		evbuffer_add_printf(b, "</span>: manifest_version <span class=\"manifest-version\">");
		admin_html_text(b, m->mv[i]);
		evbuffer_add_printf(b, "</span>, published <span class=\"%s\">%s ago</span>",
		    old > AL_MANIFEST_MAX_AGE ? "warn" : "age", age);
	}
	free(m);
}
