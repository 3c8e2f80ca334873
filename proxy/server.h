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
	struct fetch *fetches;        /* running on this worker */
	int nconns;
	/* LRU: keys hit since the last flush, written in one transaction by a timer */
	uint8_t touched[256][AL_KEY_LEN];
	int ntouched;
	struct event *touch_ev;
};

/* Note a hit for LRU; flushed to the store every few seconds. */
void worker_touch(struct worker *w, const uint8_t key[AL_KEY_LEN]);

/* Counters, bumped where the event happens (Varnish's VSC style). */
struct al_counters {
	atomic_uint_fast64_t requests, hits, misses, stale, revalidated, collapsed, passes;
	atomic_uint_fast64_t upstream_fetches, upstream_errors, bytes_from_cache, bytes_from_upstream;
	atomic_int_fast64_t clients;
};

struct al_server {
	const struct al_config *cfg;
	struct al_store *store;
	struct worker *workers;
	int nworkers;
	struct al_counters stats;
	time_t started;
};

extern struct al_server srv;

/* Serve until SIGINT/SIGTERM.  Returns a process exit code. */
int al_server_run(const struct al_config *cfg);
/* The same in parts, for tools that run the proxy in-process (mirror). */
int al_server_start(const struct al_config *cfg);
int al_server_wait(void);
void al_server_stop(void);

/* conn.c: take over an accepted socket on worker w. */
void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen);

#endif
