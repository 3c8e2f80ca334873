/*
 * Private to proxy/: the client connection as conn.c (the request steps),
 * forward.c (CONNECT, interception, absolute-form requests) and
 * offline_registry.c share it.  Nothing outside proxy/ includes this.
 */
#ifndef AIRLOCK_PROXY_CONN_IMPL_H
#define AIRLOCK_PROXY_CONN_IMPL_H

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache/store.h"
#include "proxy/fetch/fill.h"
#include "proxy/front/http1.h"
#include "proxy/runtime/server.h"
#include "proxy/fetch/uplink.h"

#define CONN_MAGIC 0x434f4e4eu
#define OUT_HIGH (512 * 1024)
#define OUT_LOW (128 * 1024)
#define FIRST_QUANTUM (64 * 1024)  /* a follower's first pass at most (conn.c pump) */
#define SMALL_HEAD 2048
/* A request body up to this size is read and dropped; a larger one closes the connection. */
#define DISCARD_MAX (64 * 1024)

/* What step_lookup needs to know of the request's earlier steps. */
enum conn_history {
	H_FIRST,          /* first look at the cache */
	H_REVALIDATING,   /* a stored copy exists and is being revalidated */
	H_REVALIDATED,    /* a 304 just refreshed the stored copy: serve it */
	H_UPSTREAM_DOWN,  /* the fetch failed as unreachable (or 5xx on revalidation): stale or error */
};

enum conn_state {
	C_HEAD,     /* reading a request head */
	C_WAIT,     /* waiting for a fill's head */
	C_BODY,     /* sending a body from the cache */
	C_PASS,     /* a pass-through response is flowing */
	C_DONE,     /* response queued; finish when written */
	C_CLOSE,    /* close as soon as the loop gets back here */
	C_LINGER,   /* response written, write side shut: drain input, then close */
	C_TUNNEL,   /* a CONNECT tunnel owns the socket; the conn stays for its log line */
};

/* Keeps the read snapshot alive while evbuffer references point into it. */
struct hold {
	struct al_reader *rd;
	int refs;
	struct conn *c;          /* NULL once the connection is gone */
};

struct conn {
	unsigned magic;
	struct conn *next, *prev;  /* the worker's list */
	struct worker *w;
	struct sockaddr_storage sa;
	int tls;                 /* TLS below (listener or interception): bufferevent does the writing */
	enum al_result result;
	uint64_t body_sent;
	uint64_t req_body_bytes;   /* a tunnel's bytes from the client (access log) */
	struct tunnel *tunnel;     /* C_TUNNEL: the relay, which calls back when it ends */
	struct bufferevent *bev;
	char peer[64];
	enum conn_state state;
	struct event *wake;      /* fill progress, snapshot release, deferred close */
	struct hold *hold;

	/* the request */
	char small[SMALL_HEAD];
	char *head;              /* small or malloc'ed */
	size_t head_len;
	struct http_req req;
	int keepalive;
	int head_only;
	uint64_t discard;        /* bytes of an unread request body to drop before the next head */
	struct uplink *uplink;
	char *url;
	size_t url_cap;
	char *fetch_url;         /* GeoIP: the signed URL a database is fetched from (url stays the key), or NULL */
	int geoip_overview;      /* url is GeoIP's overview: served with its database urls leading here */
	size_t base_len;         /* url[base_len] starts the path */
	int registry;            /* the upstream is a package registry (offline answers) */
	int denied;              /* client address outside clients.allow */
	char *icpt_host;         /* inside an intercepted CONNECT: its host */
	int icpt_port;
	CURL *proof;             /* proving the upstream's identity before interception */
	char proof_user[64];
	char proof_host[256];
	int proof_port;
	uint8_t key[AL_KEY_LEN];
	int64_t t0_us;
	int64_t head_start_us;   /* first byte of the request head being read, 0 if none yet */
	int attempts;

	/* the response */
	int status;
	char cstatus[192];       /* Cache-Status value */
	uint64_t obj_id, pos, end;
	int end_known, chunked, follow;
	struct fill *fill;
	int origin;              /* this request started the fill (its pass sink) */
	enum conn_history history; /* what happened to this request before the current step */
};

/* Shared steps and helpers (conn.c). */
struct evbuffer *conn_out(struct conn *c);
void conn_write_now(struct conn *c);
void conn_set_head_timeout(struct conn *c, int64_t ms);
void conn_close_soon(struct conn *c);
void conn_add_head(struct conn *c, int status, const char *hdrs, size_t hlen, int64_t clen, int64_t age,
    const char *extra);
void conn_reply_simple(struct conn *c, int status, const char *ctype, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void conn_reply_error(struct conn *c, int status, const char *why);
/* url = base + target; sets the key, the uplink and the registry flag.  Replies and returns -1 on failure. */
int conn_set_url(struct conn *c, const char *base, const char *target, size_t tlen, int registry);
void conn_step_lookup(struct conn *c);
void conn_access_log(struct conn *c);
void conn_on_read(struct bufferevent *bev, void *arg);
void conn_on_write(struct bufferevent *bev, void *arg);
void conn_on_event(struct bufferevent *bev, short what, void *arg);

/* forward.c: a CONNECT or absolute-form request.  0 when it took the connection over. */
int conn_forward(struct conn *c);
/* forward.c: inside intercepted TLS, the rule (for its registry flag) of the CONNECT's host. */
int conn_forward_registry(const char *host, int port);

/* offline_registry.c: answer /search or /categories from cached package documents; -1 if not one. */
int conn_registry_answer(struct conn *c);

/* geoip.c: the database URL of a GeoIP database path, from the cached overview (sets fetch_url). */
void conn_geoip_resolve(struct conn *c);
/* geoip.c: the stored overview with its database urls rewritten; -1 when it cannot be (serve it as it is). */
int conn_geoip_answer(struct conn *c);

/* offline_listing.c: a known bucket's listing written from the cached objects; -1 if not one. */
int conn_listing_answer(struct conn *c);

#endif
