#include "proxy/front/serve.h"
#include "proxy/front/conn_impl.h"
#include "proxy/fetch/fill.h"
#include "proxy/fetch/uplink.h"
#include "proxy/fetch/upstream.h"
#include "proxy/fetch/writer.h"
#include "proxy/front/hot.h"
#include "proxy/front/readiness.h"
#include "proxy/front/tls.h"
#include "proxy/runtime/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int serve_start(const struct al_config *cfg, char *err, size_t errlen)
{
	if (tls_init(cfg, err, errlen) != 0)
		return -EINVAL;
	if (uplink_init(cfg) != 0) {
		snprintf(err, errlen, "too many distinct upstreams");
		return -ENOSPC;
	}
	return 0;
}

static void *serve_listener_ctx(const struct al_listen *ls, char *err, size_t errlen)
{
	return tls_listener_ctx(ls, err, errlen);
}

/* A worker's curl multi and hot-body copies (hot_bytes: its share of cache.hot_memory, 0 for none). */
static int serve_worker_init(struct worker *w, uint64_t hot_bytes)
{
	int rc;

	if ((w->multi = up_multi_new(w->base)) == NULL)
		return -ENOMEM;
	if (hot_bytes > 0 && (rc = al_hot_new(hot_bytes / 2, &w->stats, &w->hot)) != 0)
		al_warn("server", "worker %d: no hot-body copies (memfd: %s); hits are sent from the map", w->id,
		    strerror(-rc));
	if (w->id == 0 && w->hot != NULL && al_hot_max_body(w->hot) < AL_HOT_MIN_BODY) {
		struct al_conf *c = al_conf_pin();
		al_warn("server", "cache.hot_memory %llu over %d workers leaves no room for a %d KiB body: raise it or set 0",
		    (unsigned long long)c->cfg->cache_hot_memory, srv.nworkers, AL_HOT_MIN_BODY / 1024);
		al_conf_release(c);
	} else if (w->id == 0 && w->hot != NULL)
		al_info("server", "hot memory: %llu KiB per worker, bodies of %d KiB to %llu KiB",
		    (unsigned long long)(hot_bytes / 1024), AL_HOT_MIN_BODY / 1024,
		    (unsigned long long)(al_hot_max_body(w->hot) / 1024));
	return 0;
}

/* Its loop no longer runs: connections, then fetches, then the multi they used. */
static void serve_worker_fini(struct worker *w)
{
	conn_close_all(w);
	if (w->multi) {
		fill_worker_shutdown(w);
		up_multi_free(w->multi);
		w->multi = NULL;
	}
	al_hot_free(w->hot);
	w->hot = NULL;
}

static int serve_run(struct event_base *main_base, const struct al_config *cfg)
{
	if (uplink_start_probes(main_base, cfg) != 0 || al_writer_start(srv.store) != 0 || readiness_start() != 0)
		return -EIO;
	return 0;
}

static void serve_stop(void)
{
	readiness_stop(); /* it reads the store: before the store closes */
	al_writer_stop(); /* after the workers: what they handed it is written before the store closes */
	uplink_shutdown();
	tls_shutdown();
}

static void serve_reload(const struct al_config *nc)
{
	for (int i = 0; i < nc->nroutes; i++)
		uplink_get(nc->routes[i].upstream);
	uplink_set_config(nc);
}

/* Last-use times, written by the store writer: a write transaction may wait for another's. */
struct touch_job {
	struct al_writer_job job;
	time_t now;
	int n;
	uint8_t keys[][AL_KEY_LEN];
};

static void touch_write(struct al_writer_job *job)
{
	struct touch_job *t = (struct touch_job *)job;

	al_store_touch(srv.store, (const uint8_t (*)[AL_KEY_LEN])t->keys, t->n, t->now);
	free(t);
}

static void serve_touch(const uint8_t (*keys)[AL_KEY_LEN], int n)
{
	struct touch_job *t = malloc(sizeof(*t) + (size_t)n * AL_KEY_LEN);

	if (t == NULL) { /* write them here, as before the writer */
		al_store_touch(srv.store, keys, n, time(NULL));
		return;
	}
	t->job.run = touch_write;
	t->job.done = NULL;
	t->now = time(NULL);
	t->n = n;
	memcpy(t->keys, keys, (size_t)n * AL_KEY_LEN);
	al_writer_post(&t->job);
}

/* Before the workers stop: the threads that wake worker loops. */
static void serve_quiesce(void)
{
	conn_registry_stop();
	conn_login_stop();
	conn_purge_quiesce(); /* their ends wake worker loops too */
}

const struct al_server_parts al_serve_parts = {
	.preflight = tls_check_files,
	.start = serve_start,
	.listener_ctx = serve_listener_ctx,
	.worker_init = serve_worker_init,
	.worker_fini = serve_worker_fini,
	.run = serve_run,
	.quiesce = serve_quiesce,
	.stop = serve_stop,
	.accept = conn_accept,
	.drain = conn_drain,
	.reload = serve_reload,
	.touch = serve_touch,
};
