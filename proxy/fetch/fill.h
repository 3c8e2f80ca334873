/*
 * Fills: one upstream transfer per cache key, shared by every client that
 * wants that key while it runs ("collapsed forwarding"), across workers.
 *
 * The fetch writes the body into the cache in chunks; each commit bumps
 * `committed` and wakes the waiters, who read those bytes from LMDB at their
 * own pace.  So a slow client costs no memory, the fetch runs at upstream
 * speed, and a client that joins late reads what is stored and then follows.
 *
 * A response that may not be stored is "passed": it goes to the client that
 * started the fill through a pass_sink, with curl paused while that client's
 * buffer is full.  Other waiters then start private fills of their own.
 *
 * Threads: struct fill is shared and guarded by its mutex; struct fetch
 * belongs to the worker that started it.  Waiters hold a reference; the
 * registry holds none (a fill leaves it when it ends).
 */
#ifndef AIRLOCK_PROXY_FILL_H
#define AIRLOCK_PROXY_FILL_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store.h"
#include "proxy/runtime/server.h"
#include "proxy/fetch/uplink.h"

enum fill_state {
	FILL_WAIT,       /* no response head yet */
	FILL_STREAM,     /* storable; body arriving into obj_id */
	FILL_DONE,       /* stored and committed */
	FILL_REFRESHED,  /* a 304 refreshed the stored entry */
	FILL_PASS,       /* not storable; went to the pass sink */
	FILL_FAILED,
};

enum fill_failure {
	FAIL_NONE,
	FAIL_UNREACHABLE,  /* connect/DNS/TLS/timeout: the upstream is offline */
	FAIL_UPSTREAM_5XX, /* a revalidation got 5xx */
	FAIL_BROKEN,       /* the upstream broke off or sent garbage mid-response */
	FAIL_STORE,        /* the cache refused the bytes */
	FAIL_LOCAL,        /* no socket for the upstream on this host (EMFILE...): 503, the uplink stays up */
	FAIL_UNSELECTED,   /* a revalidation's 304 does not select the stored response: fetch again in full */
};

struct fill;

/* What a waiter sees; hdrs stay valid while it holds its reference. */
struct fill_view {
	enum fill_state state;
	enum fill_failure failure;
	int status;
	uint64_t obj_id;
	uint64_t committed;        /* body bytes readable from the cache */
	int64_t content_length;    /* -1 until known (chunked upstream: at DONE) */
	int64_t age;               /* the upstream's Age, for a miss's head; -1 for none */
	const char *hdrs;
	size_t hdrs_len;
	char error[160];
};

/* The pass-through consumer (the originating client). All calls on its worker. */
struct pass_sink {
	/* age: the upstream's Age (relayed as it came), -1 for none */
	void (*head)(void *arg, int status, const char *hdrs, size_t len, int64_t content_length, int64_t age);
	/* 1 when its buffer is full: the fetch pauses until fill_pass_resume(). */
	int (*full)(void *arg);
	void (*body)(void *arg, const void *data, size_t len);
	void (*end)(void *arg, int ok);
	void *arg;
};

struct fetch_params {
	const char *url;
	struct uplink *uplink;
	const char *user_agent;      /* forwarded from the client, may be NULL */
	const char *if_none_match;   /* revalidation validators, may be NULL */
	const char *if_modified_since;
	int revalidating;            /* a stored copy exists: a 5xx may serve it instead */
	const char *path;            /* for freshness rules, unused by the fetch itself */
	struct al_conf *conf;        /* the requester's configuration: the fetch takes its own reference */
	const char *fetch_url;       /* fetched instead of url, which stays the record's (GeoIP's signed URLs); or NULL */
};

/*
 * Find the running fill for key or make a new one (*created = 1: the caller
 * must fill_start() it).  private_fill: never registered, never joined.
 * Returns with one reference held for the caller.
 */
struct fill *fill_acquire(const uint8_t key[AL_KEY_LEN], int private_fill, int *created);
void fill_release(struct fill *f);

/* ev is made active on this worker's loop after every change of the fill. */
void fill_watch(struct fill *f, struct event *ev);
void fill_unwatch(struct fill *f, struct event *ev);
void fill_view(struct fill *f, struct fill_view *v);

/* Start the upstream transfer on worker w.  sink may be NULL. Returns 0 or -errno. */
int fill_start(struct fill *f, struct worker *w, const struct fetch_params *p, const struct pass_sink *sink);
/* The pass sink drained its buffer / went away. Call on the fill's worker. */
void fill_pass_resume(struct fill *f);
void fill_pass_detach(struct fill *f);

/* Stop every fetch of worker w (shutdown). */
void fill_worker_shutdown(struct worker *w);

/* How many keys are passed through now because the cache had no room for them (fill.c's backoff). */
unsigned fill_backoff_count(void);

#endif
