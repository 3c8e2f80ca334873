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

/*
 * What the parts above runtime do at runtime's turns: front (connections,
 * TLS, hot bodies) and fetch (the curl multi, uplinks, fills, the store
 * writer).  runtime includes none of their headers and calls this table,
 * which the program sets before anything starts (al_server_set_parts;
 * proxy/front/serve.c fills it), so no include goes back up from runtime.
 */
struct al_listen;
struct al_server_parts {
	/* the parts' own checks for preflight (TLS files): 0, or -errno with msg and the config key */
	int (*preflight)(const struct al_config *cfg, char *msg, size_t len, char *key, size_t keylen);
	/* once, before the workers: 0, or -errno with err */
	int (*start)(const struct al_config *cfg, char *err, size_t errlen);
	/* an HTTPS listener's SSL_CTX, or NULL with err */
	void *(*listener_ctx)(const struct al_listen *ls, char *err, size_t errlen);
	/* a worker's own share (its loop exists, does not run yet): 0 or -errno */
	int (*worker_init)(struct worker *w, uint64_t hot_bytes);
	/* and its end, after its loop stopped: connections, fetches */
	void (*worker_fini)(struct worker *w);
	/* on the main loop, once the workers exist: 0 or -errno */
	int (*run)(struct event_base *main_base, const struct al_config *cfg);
	/* before the workers stop: threads of the parts that wake worker loops end first */
	void (*quiesce)(void);
	/* after every worker stopped */
	void (*stop)(void);
	/* on w's thread: take over an accepted socket (ssl: a TLS listener's SSL, or NULL) */
	void (*accept)(struct worker *w, int fd, const struct sockaddr *sa, int salen, void *ssl);
	/* on w's thread, SIGTERM: close idle keep-alive connections, the others after their response */
	void (*drain)(struct worker *w);
	/* on the main thread: nc is the configuration now */
	void (*reload)(const struct al_config *nc);
	/* on a worker's thread: write the last-use times of these keys (LRU) */
	void (*touch)(const uint8_t (*keys)[AL_KEY_LEN], int n);
};
/* Set the table before al_server_preflight / al_server_start / al_server_run. */
void al_server_set_parts(const struct al_server_parts *parts);

#endif
