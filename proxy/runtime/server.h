/*
 * Process-wide state and the per-core worker.  Each worker is a thread with
 * its own event loop, its own listening sockets (SO_REUSEPORT: the kernel
 * spreads connections), its own curl multi handle and its own clients.
 * Workers share the LMDB environment, the uplink table and the fill
 * registry, and nothing else.
 */
#ifndef AIRLOCK_PROXY_SERVER_H
#define AIRLOCK_PROXY_SERVER_H

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cache/store.h"
#include "policy/config.h"

struct up_multi;
struct fetch;

/* How a request was answered: the label of airlock_requests_total{result=...}. */
enum al_result { R_HIT, R_STALE, R_REVALIDATED, R_MISS, R_COLLAPSED, R_PASS, R_ERROR, R_ADMIN, R_TUNNEL,
	R_INTERCEPT, R_COUNT };
extern const char *const al_result_names[R_COUNT];

/* The recent-requests ring shown on the status page: one per worker, so no lock is shared. */
struct al_recent {
	int64_t t_us;                 /* microseconds: the order across workers is true to the request */
	char method[8];
	char url[160];
	int status;
	enum al_result result;
};
#define AL_RECENT 50

/*
 * Counters, bumped where the event happens (Varnish's VSC style), one set
 * per worker: only the worker writes its own (al_count: a plain load and
 * store, no locked instruction, no cache line shared with another core on
 * the request path) and readers sum them (al_counters_sum).  Every member
 * is an atomic_uint_fast64_t: the sum walks them as an array.
 */
struct al_counters {
	atomic_uint_fast64_t by_status[600];
	atomic_uint_fast64_t by_result[R_COUNT];
	atomic_uint_fast64_t requests, hits, misses, stale, revalidated, collapsed, passes;
	atomic_uint_fast64_t upstream_fetches, upstream_errors, bytes_from_cache, bytes_from_upstream;
	atomic_uint_fast64_t integrity_refused;   /* bodies refused: .sha512 mismatch or OpenPGP signature */
	atomic_uint_fast64_t hot_sends, hot_copies, hot_rotations;  /* proxy/front/hot.h */
	atomic_uint_fast64_t hot_bytes;           /* a gauge: hot memory taken now (summed like the rest) */
};

/* Add n to a counter of the calling worker's own set. */
static inline void al_count(atomic_uint_fast64_t *v, uint64_t n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}
/* All workers' counters added up into out (a reader's copy). */
void al_counters_sum(struct al_counters *out);

/*
 * The last AL_MINUTES minutes of one worker, one bucket each (slot = minute %
 * AL_MINUTES, reset by the worker's first request of a new minute): requests
 * answered through the cache path and those of them served from the cache,
 * for the hit ratio of the last few minutes.  Only the worker writes its
 * buckets (no shared cache line on the request path); the status page sums
 * the workers and may read a bucket mid-reset: a figure for operators, not
 * accounting.
 */
#define AL_MINUTES 16
struct al_minutes {
	atomic_int_fast64_t minute[AL_MINUTES];
	atomic_uint_fast64_t requests[AL_MINUTES], hits[AL_MINUTES];
};

struct worker {
	int id;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener *listeners[AL_MAX_LISTEN];
	int nlisteners;
	struct up_multi *multi;
	struct evdns_base *dns;       /* for CONNECT tunnels */
	struct curl_slist *connect_to;
	struct event *stop_ev;
	struct event *drain_ev;
	const struct al_config *connect_to_cfg;   /* the config connect_to was built from */
	struct curl_slist *retired[16];           /* older connect_to lists: transfers may still use them */
	int nretired;
	struct fetch *fetches;        /* running on this worker */
	int nconns;
	int draining;
	struct conn *conns;           /* every open client connection of this worker */
	/* LRU: keys hit since the last flush, written in one transaction by a timer */
	uint8_t touched[256][AL_KEY_LEN];
	int ntouched;
	struct event *touch_ev;       /* every 2 s: LRU flush, and the heartbeat below */
	atomic_int_fast64_t beat;     /* when this worker's loop last ran its timer: health tells a stuck loop */
	struct al_hot *hot;           /* copies of hot bodies for sendfile, or NULL (proxy/front/hot.h) */
	struct al_counters stats __attribute__((aligned(64)));  /* written by this worker only */
	struct al_minutes minutes;    /* hit ratio of the last minutes, written by this worker only */
	pthread_mutex_t recent_mu;    /* taken by this worker and, rarely, the status page */
	struct al_recent recent[AL_RECENT];
	int recent_next, recent_n;
};

/* Note a hit for LRU; flushed to the store every few seconds. */
void worker_touch(struct worker *w, const uint8_t key[AL_KEY_LEN]);



/* Count one proxied request answered at t_us (hit: served from the cache) in w's bucket. */
void al_count_minute(struct worker *w, int64_t t_us, int hit);
/* Requests and hits over the last n minutes (this one included), all workers. */
void al_minutes(int n, uint64_t *requests, uint64_t *hits);

struct al_server {
	const struct al_config *cfg;  /* swapped on SIGHUP; old ones are kept until exit */
	struct al_store *store;
	struct worker *workers;
	int nworkers;
	atomic_int_fast64_t clients;  /* connections open now, all workers (max_connections) */
	struct al_pgp *pgp;           /* upstream.pgp_keys of the starting configuration; NULL without */
	time_t started;
};

extern struct al_server srv;

/* This cache's name in Cache-Status (config "name"). */
#define AL_NAME (srv.cfg->name)

/* Serve until SIGINT/SIGTERM.  Returns a process exit code. */
int al_server_run(const struct al_config *cfg);
/*
 * The pinned OpenPGP keys loaded with cfg (its upstream.pgp_keys), or NULL.
 * A reload swaps the configuration and its keys together only through this:
 * whoever holds one configuration gets that configuration's keys.
 */
const struct al_pgp *al_server_pgp(const struct al_config *cfg);
/* Where the configuration came from (NULL: embedded), for SIGHUP. */
void al_server_set_config_path(const char *path);
/* The per-worker connect-to list for the current configuration (rebuilt after a reload). */
struct curl_slist **worker_connect_to(struct worker *w);
/* The same in parts, for tools that run the proxy in-process (mirror). */
int al_server_start(const struct al_config *cfg);
/*
 * Every check serve makes before accepting, touching nothing: 0, or -EINVAL
 * with "file:line:col: what".  pgp: NULL, or where to keep the pinned
 * OpenPGP keys it loaded (NULL when the configuration names none).
 */
int al_server_preflight(const struct al_config *cfg, char *err, size_t errlen, struct al_pgp **pgp);
int al_server_wait(void);
void al_server_stop(void);

/* conn.c: take over an accepted socket on worker w (ssl: a TLS listener's, or NULL). */
void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen, void *ssl);
/* conn.c: SIGTERM: close idle keep-alive connections, close the others after their response. */
void conn_drain(struct worker *w);
/* Free every connection of a stopped worker (its loop no longer runs). */
void conn_close_all(struct worker *w);
/* offline_registry.c: end the query threads (the answers in flight are dropped); before the workers stop. */
void conn_registry_stop(void);

/* Copy out up to AL_RECENT of the latest requests (all workers), newest first; returns how many. */
int al_recent_get(struct al_recent *out);

#endif
