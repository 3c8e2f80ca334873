#include "proxy/fetch/uplink.h"
#include "policy/units.h"
#include "proxy/runtime/log.h"
#include "proxy/fetch/upstream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_UPLINKS 64

struct uplink {
	char name[300];              /* scheme://host:port as configured */
	atomic_int online;
	int forced;
	atomic_uint_fast64_t fetches, errors;
	pthread_mutex_t mu;          /* guards the fields below */
	time_t since;
	char last_error[256];
	/* probe state, main thread only */
	int64_t probe_delay_ms;
	int64_t next_probe_ms;
	CURL *probe;
	struct curl_slist *probe_hdrs;  /* Host etc. when probing through a parent */
	int probe_parent;               /* upstream.parents: the next one a probe asks */
};

static struct uplink uplinks[MAX_UPLINKS];
static atomic_int nuplinks;          /* entries below it are fully set up */
static pthread_mutex_t add_mu = PTHREAD_MUTEX_INITIALIZER;
static int forced_all;
static struct event *probe_tick;
static const struct al_config *probe_cfg;
static struct up_multi *probe_multi;
static struct curl_slist *probe_connect_to;

struct uplink *uplink_get(const char *base)
{
	struct uplink *u = uplink_find(base);
	int n;

	if (u != NULL)
		return u;
	pthread_mutex_lock(&add_mu);
	if ((u = uplink_find(base)) == NULL && (n = atomic_load(&nuplinks)) < MAX_UPLINKS) {
		u = &uplinks[n];
		memset(u, 0, sizeof(*u));
		snprintf(u->name, sizeof(u->name), "%s", base);
		pthread_mutex_init(&u->mu, NULL);
		u->since = time(NULL);
		u->probe_delay_ms = probe_cfg ? probe_cfg->probe_interval_ms : 3000;
		u->forced = forced_all;
		atomic_store(&u->online, !forced_all);
		if (forced_all)
			snprintf(u->last_error, sizeof(u->last_error), "forced offline (upstream.offline)");
		atomic_store(&nuplinks, n + 1);
	}
	pthread_mutex_unlock(&add_mu);
	return u; /* NULL only when the table is full */
}

int uplink_init(const struct al_config *cfg)
{
	atomic_store(&nuplinks, 0);
	forced_all = cfg->offline;
	for (int i = 0; i < cfg->nroutes; i++)
		if (uplink_get(cfg->routes[i].upstream) == NULL)
			return -1;
	return 0;
}

void uplink_shutdown(void)
{
	for (int i = 0; i < atomic_load(&nuplinks); i++) {
		struct uplink *u = &uplinks[i];
		if (u->probe != NULL) {
			up_cancel(probe_multi, u->probe);
			curl_easy_cleanup(u->probe);
			u->probe = NULL;
			curl_slist_free_all(u->probe_hdrs);
			u->probe_hdrs = NULL;
		}
	}
	if (probe_tick)
		event_free(probe_tick);
	probe_tick = NULL;
	up_multi_free(probe_multi);
	probe_multi = NULL;
	curl_slist_free_all(probe_connect_to);
	probe_connect_to = NULL;
}

struct uplink *uplink_find(const char *base)
{
	for (int i = 0; i < atomic_load(&nuplinks); i++)
		if (strcmp(uplinks[i].name, base) == 0)
			return &uplinks[i];
	return NULL;
}

const char *uplink_name(const struct uplink *u)
{
	return u->name;
}

int uplink_online(const struct uplink *u)
{
	return atomic_load(&u->online);
}

int uplink_forced(const struct uplink *u)
{
	return u->forced;
}

void uplink_failed(struct uplink *u, const char *why)
{
	int was = atomic_exchange(&u->online, 0);

	pthread_mutex_lock(&u->mu);
	snprintf(u->last_error, sizeof(u->last_error), "%s", why);
	if (was)
		u->since = time(NULL);
	pthread_mutex_unlock(&u->mu);
	if (was)
		al_warn("uplink", "%s is offline: %s; serving from cache", u->name, why);
}

void uplink_succeeded(struct uplink *u)
{
	if (u->forced)
		return;
	if (!atomic_exchange(&u->online, 1)) {
		pthread_mutex_lock(&u->mu);
		u->since = time(NULL);
		pthread_mutex_unlock(&u->mu);
		al_info("uplink", "%s is back online", u->name);
	}
}

void uplink_count_fetch(struct uplink *u)
{
	if (u)
		atomic_fetch_add(&u->fetches, 1);
}

void uplink_count_error(struct uplink *u)
{
	if (u)
		atomic_fetch_add(&u->errors, 1);
}

void uplink_metrics(struct evbuffer *b)
{
	evbuffer_add_printf(b, "# HELP airlock_upstream_up 1 while the upstream is online, 0 while airlock serves it from cache only.\n"
	    "# TYPE airlock_upstream_up gauge\n");
	for (int i = 0; i < atomic_load(&nuplinks); i++)
		evbuffer_add_printf(b, "airlock_upstream_up{upstream=\"%s\"} %d\n", uplinks[i].name, atomic_load(&uplinks[i].online));
	evbuffer_add_printf(b, "# HELP airlock_upstream_fetches_total Transfers started to the upstream.\n"
	    "# TYPE airlock_upstream_fetches_total counter\n");
	for (int i = 0; i < atomic_load(&nuplinks); i++)
		evbuffer_add_printf(b, "airlock_upstream_fetches_total{upstream=\"%s\"} %llu\n", uplinks[i].name,
		    (unsigned long long)atomic_load(&uplinks[i].fetches));
	evbuffer_add_printf(b, "# HELP airlock_upstream_errors_total Transfers that failed (unreachable, broken, refused by the cache).\n"
	    "# TYPE airlock_upstream_errors_total counter\n");
	for (int i = 0; i < atomic_load(&nuplinks); i++)
		evbuffer_add_printf(b, "airlock_upstream_errors_total{upstream=\"%s\"} %llu\n", uplinks[i].name,
		    (unsigned long long)atomic_load(&uplinks[i].errors));
}

void uplink_html(struct evbuffer *b)
{
	for (int i = 0; i < atomic_load(&nuplinks); i++) {
		struct uplink *u = &uplinks[i];
		char since[32], age[32], err[300];
		struct tm tm;
		int on = atomic_load(&u->online);
		time_t t;
		pthread_mutex_lock(&u->mu);
		t = u->since;
		gmtime_r(&t, &tm);
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		/* the error text is ours or curl's, but escape it all the same */
		size_t k = 0;
		for (const char *p = u->last_error; *p && k < sizeof(err) - 7; p++) {
			const char *rep = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : *p == '"' ? "&quot;" : NULL;
			if (rep) {
				memcpy(err + k, rep, strlen(rep));
				k += strlen(rep);
			} else {
				err[k++] = *p;
			}
		}
		err[k] = '\0';
		pthread_mutex_unlock(&u->mu);
		al_human_age((int64_t)(time(NULL) - t), age, sizeof(age));
		evbuffer_add_printf(b, "<tr class=\"upstream %s\"><td class=\"name\">%s</td><td class=\"state\">%s%s</td>"
		    "<td title=\"since %s\">%s</td><td>%llu</td><td title=\"%s\">%llu</td></tr>\n",
		    on ? "online" : "offline", u->name, on ? "online" : "offline", u->forced ? " (forced)" : "", since, age,
		    (unsigned long long)atomic_load(&u->fetches), err, (unsigned long long)atomic_load(&u->errors));
	}
}

void uplink_json(struct evbuffer *b)
{
	evbuffer_add_printf(b, "[");
	for (int i = 0; i < atomic_load(&nuplinks); i++) {
		struct uplink *u = &uplinks[i];
		char since[32];
		struct tm tm;
		pthread_mutex_lock(&u->mu);
		gmtime_r(&u->since, &tm);
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		evbuffer_add_printf(b, "%s{\"upstream\":", i ? "," : "");
		al_json_str(b, u->name);
		evbuffer_add_printf(b, ",\"state\":\"%s\",\"forced\":%s,\"since\":\"%s\",\"last_error\":",
		    atomic_load(&u->online) ? "online" : "offline", u->forced ? "true" : "false", since);
		al_json_str(b, u->last_error);
		evbuffer_add_printf(b, "}");
		pthread_mutex_unlock(&u->mu);
	}
	evbuffer_add_printf(b, "]");
}

/*
 * Probing.  While an upstream is offline the main loop sends it a HEAD /
 * at probe_interval, doubling up to probe_max_interval; any HTTP answer at
 * all (even 404) proves the path works and switches it back online.  One
 * tick walks the table, so uplinks added later (forward hosts) are probed too.
 */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe_done(CURL *easy, CURLcode res, int local_errno, void *arg)
{
	struct uplink *u = arg;
	long code = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(easy);
	u->probe = NULL;
	curl_slist_free_all(u->probe_hdrs);
	u->probe_hdrs = NULL;
	if (res == CURLE_OK && code > 0) {
		uplink_succeeded(u);
		u->probe_delay_ms = probe_cfg->probe_interval_ms;
	} else {
		char why[256];
		snprintf(why, sizeof(why), "probe: %s", curl_easy_strerror(res));
		pthread_mutex_lock(&u->mu);
		snprintf(u->last_error, sizeof(u->last_error), "%s", why);
		pthread_mutex_unlock(&u->mu);
		al_debug("uplink", "%s still offline: %s", u->name, why);
		u->probe_delay_ms *= 2;
		if (u->probe_delay_ms > probe_cfg->probe_max_interval_ms)
			u->probe_delay_ms = probe_cfg->probe_max_interval_ms;
	}
	u->next_probe_ms = mono_ms() + u->probe_delay_ms;
}

static void start_probe(struct uplink *u)
{
	char url[320];

	u->probe = up_easy_new(probe_cfg, &probe_connect_to);
	if (u->probe == NULL)
		return;
	snprintf(url, sizeof(url), "%s/", u->name);
	/* with parents, any parent that answers is an uplink (it has its own offline logic) */
	u->probe_hdrs = up_target(u->probe, probe_cfg, url,
	    probe_cfg->nparents > 0 ? u->probe_parent++ % probe_cfg->nparents : -1, NULL);
	curl_easy_setopt(u->probe, CURLOPT_HTTPHEADER, u->probe_hdrs);
	curl_easy_setopt(u->probe, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(u->probe, CURLOPT_USERAGENT, "airlock/" AIRLOCK_VERSION " (probe)");
	curl_easy_setopt(u->probe, CURLOPT_TIMEOUT_MS, (long)probe_cfg->first_byte_timeout_ms);
	if (up_start(probe_multi, u->probe, probe_done, u) != 0) {
		curl_easy_cleanup(u->probe);
		u->probe = NULL;
		curl_slist_free_all(u->probe_hdrs);
		u->probe_hdrs = NULL;
	}
}

static void on_probe_tick(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = mono_ms();

	for (int i = 0; i < atomic_load(&nuplinks); i++) {
		struct uplink *u = &uplinks[i];
		if (atomic_load(&u->online) || u->forced) {
			u->probe_delay_ms = probe_cfg->probe_interval_ms;
			u->next_probe_ms = 0;
			continue;
		}
		if (u->probe != NULL)
			continue;
		if (u->next_probe_ms == 0) /* just went offline: first probe after one interval */
			u->next_probe_ms = now + u->probe_delay_ms;
		if (now >= u->next_probe_ms)
			start_probe(u);
	}
}

void uplink_set_config(const struct al_config *cfg)
{
	probe_cfg = cfg;
	curl_slist_free_all(probe_connect_to); /* no probe runs between ticks on this thread */
	probe_connect_to = NULL;
}

int uplink_start_probes(struct event_base *base, const struct al_config *cfg)
{
	struct timeval tick = {0, 100000};

	probe_cfg = cfg;
	if (cfg->offline)
		return 0; /* forced cache-only never contacts anyone */
	probe_multi = up_multi_new(base);
	probe_tick = event_new(base, -1, EV_PERSIST, on_probe_tick, NULL);
	if (probe_multi == NULL || probe_tick == NULL)
		return -1;
	for (int i = 0; i < atomic_load(&nuplinks); i++)
		uplinks[i].probe_delay_ms = cfg->probe_interval_ms;
	event_add(probe_tick, &tick);
	return 0;
}
