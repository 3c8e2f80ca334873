/*
 * Process-wide state and the per-core worker.  Each worker is a thread with
 * its own event loop, its own listening sockets (SO_REUSEPORT: the kernel
 * spreads connections), its own curl multi handle and its own clients.
 * Workers share the LMDB environment, the uplink table and the fill
 * registry, and nothing else.  What they count is in stats.h; the
 * configuration they read, in conf.h.
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
#include "proxy/runtime/conf.h"
#include "proxy/runtime/stats.h"

struct up_multi;
struct fetch;

struct worker {
	int id;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener *listeners[AL_MAX_LISTEN];
	int nlisteners;
	struct up_multi *multi;
	struct evdns_base *dns;       /* for CONNECT tunnels */
	struct event *stop_ev;
	struct event *drain_ev;
	struct al_conf *conf;         /* the worker's reference to the configuration: see worker_conf() */
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
	struct al_counters stats __attribute__((aligned(64)));  /* written by this worker only (stats.h) */
	struct al_minutes minutes;    /* hit ratio of the last minutes, written by this worker only */
	struct al_recent_ring recent; /* the status page's last requests of this worker */
};

/* Note a hit for LRU; flushed to the store every few seconds. */
void worker_touch(struct worker *w, const uint8_t key[AL_KEY_LEN]);


struct al_server {
	struct al_store *store;
	struct worker *workers;
	int nworkers;
	atomic_int_fast64_t clients;  /* connections open now, all workers (max_connections) */
	time_t started;
};

extern struct al_server srv;

/* Serve until SIGINT/SIGTERM.  Returns a process exit code. */
int al_server_run(const struct al_config *cfg);
/* Where the configuration came from (NULL: embedded), for SIGHUP. */
void al_server_set_config_path(const char *path);
/*
 * The configuration w works with now: the current one, pinned by the worker
 * (taken again when a reload made its old one stale, so a worker never reads
 * a configuration nobody holds).  Call on w's thread.  A request or a fill
 * takes its own reference on it (al_conf_hold) and reads only that one.
 */
struct al_conf *worker_conf(struct worker *w);
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

#endif
