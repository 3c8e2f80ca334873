/*
 * Private to proxy/front/: the session and its request as conn.c (the request steps),
 * forward.c (CONNECT, interception, absolute-form requests), offline_registry.c,
 * offline_listing.c and geoip.c share it.  Nothing outside proxy/ includes this.
 */
#ifndef AIRLOCK_PROXY_CONN_IMPL_H
#define AIRLOCK_PROXY_CONN_IMPL_H

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache/store.h"
#include "policy/lookup.h"
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

/* What STP_LOOKUP needs to know of the request's earlier steps. */
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

/*
 * The steps of a request's life (conn.c req_run runs them; each returns the
 * next), in the manner of Varnish's cnt_* / vbf_stp_* functions.  STP_PARK
 * means "nothing to do until an event": a fill's progress re-enters at
 * STP_WAIT, a socket's writability continues delivery, a tunnel ends the
 * session.  README.md "What airlock does with a request" follows this list.
 */
enum req_step {
	STP_RECV,      /* a complete head: count, pin the configuration, the body's fate, the branch */
	STP_ROUTE,     /* origin-form: method and path checks, the route, url and key */
	STP_LOOKUP,    /* the cache's record and policy/lookup.h's decision */
	STP_HIT,       /* serve the stored record */
	STP_FETCH,     /* join or start the fill: a miss or a revalidation */
	STP_WAIT,      /* the fill moved: deliver, look again, refetch or fail */
	STP_DELIVER,   /* stream the fill's body from the cache as it is committed */
	STP_FORWARD,   /* CONNECT or absolute-form: authentication and the allow-list (forward.c) */
	STP_TUNNEL,    /* CONNECT, tunnel mode: the socket goes to a blind relay (forward.c) */
	STP_PROVE,     /* CONNECT, interception: a verified handshake with the upstream first (forward.c) */
	STP_PROVED,    /* the handshake ended: proven, refused, or the upstream unreachable (forward.c) */
	STP_INTERCEPT, /* CONNECT answered, the client's TLS terminated with a minted certificate (forward.c) */
	STP_REGISTRY,  /* nothing cached and the registry offline: a computed answer (offline_registry.c) */
	STP_ADMIN,     /* /_airlock/ endpoints (admin.c) */
	STP_ANSWERED,  /* an answer computed off the loop is back: its module queues it (r->answered) */
	STP_DONE,      /* the response is queued: the connection writes it and finishes */
	STP_PARK,
};

struct conn;

/*
 * A request: its head, route, key, pinned configuration, the lookup's
 * decision and the response's state.  One lives in each connection
 * (HTTP/1.1: one at a time) and is reset between requests; the session
 * (socket, TLS, peer, buffers) stays in struct conn.
 */
struct req {
	struct conn *conn;         /* the session it came on */
	enum req_step step;        /* the last step run (logs): where a parked request stopped */
	struct al_conf *conf;      /* pinned from STP_RECV to the end (finish) */
	int64_t t0_us;

	/* the head */
	char small[SMALL_HEAD];
	char *head;                /* small or malloc'ed */
	size_t head_len;
	struct http_req http;
	int keepalive;
	int head_only;

	/* route and key */
	struct uplink *uplink;
	char *url;                 /* kept across requests, grown only */
	size_t url_cap;
	size_t base_len;           /* url[base_len] starts the path */
	int registry;              /* the upstream is a package registry (offline answers) */
	char *fetch_url;           /* GeoIP: the signed URL a database is fetched from (url stays the key), or NULL */
	int geoip_overview;        /* url is GeoIP's overview: served with its database urls leading here */
	uint8_t key[AL_KEY_LEN];
	int attempts;
	enum conn_history history; /* what happened to this request before the current step */

	/* the lookup's decision, and what STP_HIT / STP_FETCH take from it */
	struct al_lookup_result look;
	struct al_record rec;      /* the stored record: valid while the snapshot is open */
	char inm[512], ims[64];    /* a revalidation's validators ("" for none) */

	/* a CONNECT's target between its steps, and its upstream's proof before interception (forward.c) */
	CURL *proof;
	CURLcode proof_res;        /* how the proof ended, for STP_PROVED */
	char proof_user[64];       /* who opened an intercepted tunnel: the requests inside are theirs */
	char proof_host[256];
	int proof_port;

	char user[64];             /* who this request's credentials named (client_auth.c, forward.c), for the access log */
	int login;                 /* a password checked on the login thread (login.c): 1 right, -1 wrong, 0 not yet */
	/* STP_ANSWERED: the parking module's step that queues its thread's answer, and that answer (offline_registry.c, purge.c) */
	enum req_step (*answered)(struct req *r, void *answer);
	void *answer;

	/* the response */
	enum al_result result;
	int status;
	int logged;                /* its access-log line is written (conn_access_log) */
	const char *closed_by;     /* the connection went mid-response: "client" (hung up) or NULL (airlock cut it) */
	char cstatus[192];         /* Cache-Status value */
	uint64_t body_sent;
	uint64_t req_body_bytes;   /* a tunnel's bytes from the client (access log) */
	uint64_t obj_id, pos, end;
	int end_known, chunked, follow;
	struct fill *fill;
	int origin;                /* this request started the fill (its pass sink) */
};

struct tls_writer;

/* The session: a client connection, over which its requests come one at a time. */
struct conn {
	unsigned magic;
	struct conn *next, *prev;  /* the worker's list */
	struct worker *w;
	struct sockaddr_storage sa;
	int tls;                 /* TLS below (listener or interception) */
	struct tls_writer *tw;   /* TLS on the socket (HTTPS listener, interception): writes conn_out (tls.h); NULL for the rest */
	struct tunnel *tunnel;     /* C_TUNNEL: the relay, which calls back when it ends */
	struct bufferevent *bev;
	char peer[64];
	enum conn_state state;
	struct event *wake;      /* fill progress, snapshot release, deferred close */
	struct hold *hold;
	uint64_t discard;        /* bytes of an unread request body to drop before the next head */
	int denied;              /* client address outside clients.allow */
	char *icpt_host;         /* inside an intercepted CONNECT: its host */
	int icpt_port;
	int64_t head_start_us;   /* first byte of the request head being read, 0 if none yet */
	struct req rq;           /* the request being read or answered */
};

/*
 * This cache's name in Cache-Status (config "name"), from the pinned
 * configuration of the request of the struct conn *c in scope.
 */
#define AL_NAME (c->rq.conf->cfg->name)

/* conn.c: take over an accepted socket on worker w (ssl: a TLS listener's, or NULL). */
void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen, void *ssl);
/* conn.c: SIGTERM: close idle keep-alive connections, close the others after their response. */
void conn_drain(struct worker *w);
/* Free every connection of a stopped worker (its loop no longer runs). */
void conn_close_all(struct worker *w);

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
/* A 200 whose whole body the caller built (and still owns): Content-Type ctype, no body on HEAD; the response is done. */
void conn_reply_body(struct req *r, const char *ctype, const char *body);
/* url = base + target; sets the key, the uplink and the registry flag.  Replies and returns -1 on failure. */
int req_set_url(struct req *r, const char *base, const char *target, size_t tlen, int registry);
void conn_access_log(struct conn *c);
void conn_on_read(struct bufferevent *bev, void *arg);
void conn_on_write(struct bufferevent *bev, void *arg);
void conn_on_event(struct bufferevent *bev, short what, void *arg);
/* The TLS writer's callback (tls_writer_new): the connection is arg. */
void conn_on_tls_writer(void *arg, short what);

/*
 * conn.c: run r from step s until a step parks it; the steps' own code
 * re-enters a parked request with it (a fill's progress at STP_WAIT, a
 * CONNECT's proof at STP_PROVED, a thread's answer at STP_ANSWERED, a
 * checked password at the step that asked).  r may be the next request's
 * after it.
 */
void req_run(struct req *r, enum req_step s);

/*
 * forward.c, the step STP_FORWARD: a CONNECT (STP_TUNNEL, STP_PROVE or
 * STP_INTERCEPT) or an absolute-form request (served through the cache:
 * STP_LOOKUP); STP_DONE when it answered itself.
 */
enum req_step stp_forward(struct req *r);
/* forward.c, the CONNECT's steps (see enum req_step); the session is taken over or the request answered. */
enum req_step stp_tunnel(struct req *r);
enum req_step stp_prove(struct req *r);
enum req_step stp_proved(struct req *r);
enum req_step stp_intercept(struct req *r);
/* forward.c: inside intercepted TLS, the rule (for its registry flag) of the CONNECT's host. */
int conn_forward_registry(const struct al_config *cfg, const char *host, int port);

/*
 * client_auth.c: a reverse-proxy request on route needs client credentials
 * (policy/access.h al_client_auth)?  1: parked while the login thread
 * checks the password (the step runs again, r->login set); 0: go on (r->user names who, or is
 * empty for an open route); -1: it was answered 401 and logged.
 */
struct al_route;
int conn_client_auth(struct req *r, const struct al_route *route);

/*
 * login.c: check l's password on the login thread (PBKDF2 stays off the
 * worker's loop).  1: r is parked (C_WAIT); when the check is done, r->login
 * is 1 (right) or -1 (wrong) and r runs again from the step that parked it
 * (r->step), which must then read r->login instead of asking again.  -1:
 * the login queue is full or the thread could not start (answer 503).
 */
struct al_login;
int conn_login_check(struct req *r, const struct al_login *l);
/* client_auth.c: answer 503 (Retry-After) when conn_login_check refused for a full queue. */
void conn_login_busy(struct req *r);
/* login.c: end the login thread (checks in flight are dropped); before the workers stop. */
void conn_login_stop(void);
/*
 * purge.c, in STP_ADMIN: an allowed POST /_airlock/purge?pattern=GLOB run by
 * the store writer; 1: r waits (C_WAIT) and is answered from its loop once
 * the purge is committed; -1: it could not start.
 */
int conn_purge(struct req *r);
/* purge.c, before the workers stop: wait (30 s at most) for the purges in flight to be answered. */
void conn_purge_quiesce(void);

/*
 * offline_registry.c, behind the step STP_REGISTRY: answer /search or
 * /categories from the registry index (cache/store.h regidx), computed on a
 * query thread: 1, the request waits (C_WAIT, no fill) and the answer comes
 * back to the worker's loop; 0, answered at once (a 400, the StrictSlash
 * redirect); -1 if this is not such a request.
 */
int conn_registry_answer(struct req *r);
/* offline_registry.c: end the query threads (the answers in flight are dropped); before the workers stop. */
void conn_registry_stop(void);

/*
 * geoip.c, in STP_FETCH, by the request that starts the upstream fetch
 * only (a hit or a request joining the fill never reads the overview): the
 * signed URL a GeoIP database path is fetched from, read from the cached
 * overview (sets r->fetch_url; the key stays the stable url).  One small
 * record read per upstream fetch of a database, which happens once per
 * md5_hash.
 */
void conn_geoip_resolve(struct req *r);
/*
 * geoip.c, in STP_FORWARD, for an absolute-form GET that no rule allows:
 * a child airlock (upstream.parents) or a caching proxy asks for a
 * database by the signed URL the upstream's overview names (which a child
 * sees: absolute-form requests get the overview as it is, conn.c
 * req_set_url).  When the cached overview names that URL, r is set to the
 * database's stable key, fetched from that URL (r->fetch_url): 0, go to
 * STP_LOOKUP; 1, a reply is queued (out of memory): STP_DONE.  -1: not
 * such a request, deny it as before.  Reads the overview: only
 * requests otherwise denied pay for it.
 */
int conn_geoip_signed(struct req *r);
/*
 * geoip.c, in STP_HIT / STP_WAIT: answer with the stored overview, its
 * database urls rewritten to lead here (r->cstatus gets a detail); 0 when
 * answered (C_DONE), -1 when it cannot be (serve it as it is).  rec: the
 * hit's record, read in the connection's snapshot; NULL after a fill (read
 * by key).
 */
int conn_geoip_answer(struct req *r, const struct al_record *rec);

/*
 * offline_listing.c, in STP_LOOKUP while the upstream is offline: a known
 * bucket's listing written from the cached objects, on the query threads
 * (it reads the whole store): 1 when the request waits for it, -1 if not one.
 */
int conn_listing_answer(struct req *r);
/*
 * offline_registry.c: compute an answer on the query threads, off the
 * worker's loop; compute(arg, &n) returns a malloc'ed body (NULL: 503) and
 * n for the Cache-Status detail (a format with one %zu).  Takes arg (and
 * frees it with free_arg, also on failure).  1: the request waits (C_WAIT)
 * and is answered from the worker's loop; -1: could not start.
 */
int conn_offload_answer(struct req *r, char *(*compute)(void *arg, size_t *n), void *arg,
    void (*free_arg)(void *arg), const char *ctype, const char *detail);

#endif
