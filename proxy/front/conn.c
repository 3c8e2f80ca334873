/*
 * A client connection (struct conn, the session) and the life of each
 * request on it (struct req) as steps, run by req_run; each step returns
 * the next (conn_impl.h enum req_step):
 *
 *   try_parse -> RECV -+-> ADMIN ---------------------------------------------+
 *                      +-> FORWARD -+-> TUNNEL: a relay takes the session      |
 *                      |            +-> PROVE ... PROVED -> INTERCEPT: the     |
 *                      |            |   session reads the requests in TLS      |
 *                      |            +------------+                            +-> DONE -> finish
 *                      +-> ROUTE ----------------+-> LOOKUP -+-> HIT -> pump --+
 *                                                  ^         +-> REGISTRY ----+
 *                                                  |         +-> FETCH ... WAIT -+-> DELIVER -> pump
 *                                                  +-------------------------------+  (304 or failure: LOOKUP again)
 *
 * LOOKUP gathers the facts and policy/lookup.h decides: fresh hit, stale
 * hit (uplink offline), revalidation, miss, or 504/502.  Misses and
 * revalidations join a fill (proxy/fetch/fill.h); on_wake re-enters the
 * request at WAIT as the fill progresses.  A CONNECT that will be
 * intercepted proves its upstream first (PROVE); the handshake's end
 * re-enters it at PROVED (forward.c).
 *
 * Bodies of hits and fills go out by reference from LMDB's memory map
 * (evbuffer_add_reference): no copy into user space.  The references pin
 * the connection's read snapshot; `hold` counts them and the snapshot is
 * released when the last one has been written to the socket.  At most
 * OUT_HIGH bytes are queued per client, so a slow client costs a bounded
 * amount of memory and the snapshot is short-lived.
 */
#include "policy/access.h"
#include "policy/freshness.h"
#include "policy/geoip.h"
#include "policy/hdr.h"
#include "policy/lookup.h"
#include "policy/range.h"
#include "policy/route.h"
#include "proxy/front/admin.h"
#include "proxy/front/conn_impl.h"
#include "proxy/fetch/fill.h"
#include "proxy/front/hot.h"
#include "proxy/front/http1.h"
#include "proxy/runtime/log.h"
#include "proxy/runtime/server.h"
#include "proxy/front/tls.h"
#include "proxy/front/tunnel.h"
#include "proxy/fetch/upstream.h"
#include "proxy/fetch/uplink.h"

#include <arpa/inet.h>
#include <event2/bufferevent_ssl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

static void pump(struct conn *c);
static void finish(struct conn *c);

static int64_t now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

struct evbuffer * conn_out(struct conn *c)
{
	return c->tw != NULL ? tls_writer_buf(c->tw) : bufferevent_get_output(c->bev);
}

/*
 * Write what is queued at once, as nginx does, instead of registering for
 * writability and waiting a loop turn: a hit that fits the socket buffer
 * costs one writev and no epoll_ctl.  Only when bytes remain does libevent
 * get the write event (on_write turns it off again once drained).  The
 * HTTPS listener's connections write the same way through their TLS writer
 * (tls.h), and so do intercepted CONNECTs whose TLS runs on the socket
 * (forward.c tls_on_socket); the rest leave it to their bufferevent filter.
 */
void conn_write_now(struct conn *c)
{
	struct evbuffer *o = conn_out(c);
	int n;

	if (c->tw != NULL && evbuffer_get_length(o) > 0) {
		int64_t idle = worker_conf(c->w)->cfg->client_idle_timeout_ms;
		struct timeval tv = {idle / 1000, (idle % 1000) * 1000};

		if (tls_writer_flush(c->tw, &tv) != 0) {
			al_debug("conn", "%s: TLS write failed", c->peer);
			conn_close_soon(c);
		}
		return;
	}
	if (c->tls || evbuffer_get_length(o) == 0)
		return;
	/* bufferevent_socket freezes the start of its output so only it drains it; we own it here. */
	evbuffer_unfreeze(o, 1);
	errno = 0;
	n = evbuffer_write_atmost(o, bufferevent_getfd(c->bev), -1);
	evbuffer_freeze(o, 1);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		al_debug("conn", "%s: write: %s", c->peer, strerror(errno));
		c->rq.closed_by = "client";
		conn_close_soon(c);
		return;
	}
	if (evbuffer_get_length(o) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
}

void conn_set_head_timeout(struct conn *c, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	int64_t idle = worker_conf(c->w)->cfg->client_idle_timeout_ms;
	struct timeval wtv = {idle / 1000, (idle % 1000) * 1000};

	bufferevent_set_timeouts(c->bev, ms > 0 ? &tv : NULL, &wtv);
}

static void detach_fill(struct conn *c)
{
	if (c->rq.fill == NULL)
		return;
	fill_unwatch(c->rq.fill, c->wake);
	if (c->rq.origin)
		fill_pass_detach(c->rq.fill);
	fill_release(c->rq.fill);
	c->rq.fill = NULL;
	c->rq.origin = 0;
}

/*
 * The connection goes while a request is in progress (waiting for a fill,
 * mid-body, or its response not all written): still its access-log line,
 * as nginx logs 499.  The status is the one sent, or 499 when the client
 * hung up before the head went out; the body bytes are those handed to the
 * socket (queued but unwritten ones taken off); airlock.closed_by says who
 * ended it: "client", or "airlock" (an upstream cut mid-body, a shutdown).
 */
static void log_cut(struct conn *c)
{
	uint64_t unsent = c->bev != NULL ? evbuffer_get_length(conn_out(c)) : 0;

	if (c->rq.closed_by == NULL)
		c->rq.closed_by = "airlock";
	if (c->rq.status == 0 && strcmp(c->rq.closed_by, "client") == 0)
		c->rq.status = 499;
	c->rq.body_sent = c->rq.body_sent > unsent ? c->rq.body_sent - unsent : 0;
	conn_access_log(c);
}

static void conn_free(struct conn *c)
{
	if (c->magic != CONN_MAGIC)
		abort();
	if (c->prev)
		c->prev->next = c->next;
	else if (c->w->conns == c)
		c->w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->rq.conf != NULL && !c->rq.logged && c->state != C_HEAD && c->state != C_LINGER && c->state != C_TUNNEL)
		log_cut(c);
	detach_fill(c);
	if (c->tunnel != NULL)
		tunnel_abort(c->tunnel); /* frees the client socket too */
	if (c->rq.proof != NULL) {
		up_cancel(c->w->multi, c->rq.proof);
		curl_easy_cleanup(c->rq.proof);
	}
	c->hold->c = NULL;
	if (c->hold->refs == 0) {
		al_reader_free(c->hold->rd);
		free(c->hold);
	} /* else the last hold_cleanup frees it: now (the TLS writer's buffer) or later (the bufferevent's) */
	tls_writer_free(c->tw); /* before the bufferevent: it owns the SSL and the socket */
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* its buffers go later, from the loop */
	event_free(c->wake);
	if (c->rq.head != c->rq.small)
		free(c->rq.head);
	free(c->rq.url);
	free(c->rq.fetch_url);
	free(c->icpt_host);
	al_conf_release(c->rq.conf);
	c->w->nconns--;
	atomic_fetch_sub(&srv.clients, 1);
	c->magic = 0;
	free(c);
}

/* Close from a context that may still be using c: do it from the loop. */
void conn_close_soon(struct conn *c)
{
	c->state = C_CLOSE;
	event_active(c->wake, EV_TIMEOUT, 0);
}

static void hold_cleanup(const void *data, size_t len, void *arg)
{
	struct hold *h = arg;

	if (--h->refs > 0)
		return;
	al_reader_end(h->rd);
	if (h->c == NULL) {
		al_reader_free(h->rd);
		free(h);
	} else if (h->c->state == C_BODY) {
		event_active(h->c->wake, EV_READ, 0);
	}
}

/* Decimal digits of v at p, returning the end: the head is built without printf, a tenth of a hit's work. */
static char *put_dec(char *p, uint64_t v)
{
	char t[20];
	int n = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = t[--n];
	return p;
}

static char *put_str(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT_LIT(p, lit) put_str((p), (lit), sizeof(lit) - 1)

/* Response head: status line, the stored or upstream fields, our own. */
void conn_add_head(struct conn *c, int status, const char *hdrs, size_t hlen,
    int64_t clen, int64_t age, const char *extra)
{
	struct evbuffer *o = conn_out(c);
	const char *reason = http1_reason(status);
	char buf[64 + sizeof(c->rq.cstatus) + 128], *p = buf;
	size_t rl = strlen(reason);

	c->rq.status = status;
	if (rl > 40)
		rl = 40;
	p = PUT_LIT(p, "HTTP/1.1 ");
	p = put_dec(p, (uint64_t)(status >= 100 && status <= 999 ? status : 500));
	*p++ = ' ';
	p = put_str(p, reason, rl);
	p = PUT_LIT(p, "\r\n");
	evbuffer_add(o, buf, (size_t)(p - buf));
	if (hlen)
		evbuffer_add(o, hdrs, hlen);
	p = buf;
	if (clen >= 0 && status != 304 && status != 204) {
		p = PUT_LIT(p, "Content-Length: ");
		p = PUT_LIT(put_dec(p, (uint64_t)clen), "\r\n");
	} else if (clen < 0 && status != 304 && status != 204 && !c->rq.head_only) {
		if (c->rq.http.minor >= 1)
			c->rq.chunked = 1, p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
		else
			c->rq.keepalive = 0; /* HTTP/1.0: the end of the body is the close */
	}
	if (age >= 0) {
		p = PUT_LIT(p, "Age: ");
		p = PUT_LIT(put_dec(p, (uint64_t)age), "\r\n");
	}
	if (c->rq.cstatus[0]) {
		p = PUT_LIT(p, "Cache-Status: ");
		p = PUT_LIT(put_str(p, c->rq.cstatus, strnlen(c->rq.cstatus, sizeof(c->rq.cstatus) - 1)), "\r\n");
	}
	if (extra) {
		evbuffer_add(o, buf, (size_t)(p - buf));
		evbuffer_add(o, extra, strlen(extra));
		p = buf;
	}
	if (!c->rq.keepalive)
		p = PUT_LIT(p, "Connection: close\r\n");
	else if (c->rq.http.minor == 0)
		p = PUT_LIT(p, "Connection: keep-alive\r\n");
	p = PUT_LIT(p, "\r\n");
	evbuffer_add(o, buf, (size_t)(p - buf));
}

/* A short response of our own making. */
void conn_reply_simple(struct conn *c, int status, const char *ctype, const char *extra,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void conn_reply_simple(struct conn *c, int status, const char *ctype, const char *extra,
    const char *fmt, ...)
{
	char body[1024], hdrs[1400];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n >= (int)sizeof(body))
		n = sizeof(body) - 1;
	snprintf(hdrs, sizeof(hdrs), "Content-Type: %s\r\nCache-Control: no-store\r\n%s", ctype, extra ? extra : "");
	conn_add_head(c, status, hdrs, strlen(hdrs), n, -1, NULL);
	if (!c->rq.head_only) {
		evbuffer_add(conn_out(c), body, n);
		c->rq.body_sent += (uint64_t)n;
	}
	if (status >= 400)
		c->rq.result = R_ERROR;
	c->state = C_DONE;
}

void conn_reply_body(struct req *r, const char *ctype, const char *body)
{
	struct conn *c = r->conn;
	char hdrs[160];
	size_t len = strlen(body);

	snprintf(hdrs, sizeof(hdrs), "Content-Type: %s\r\n", ctype);
	conn_add_head(c, 200, hdrs, strlen(hdrs), (int64_t)len, -1, NULL);
	if (!r->head_only) {
		evbuffer_add(conn_out(c), body, len);
		r->body_sent = len;
	}
	c->state = C_DONE;
}

void conn_reply_error(struct conn *c, int status, const char *why)
{
	if (status >= 400 && status < 500 && status != 404 && status != 405)
		c->rq.keepalive = 0;
	conn_reply_simple(c, status, "text/plain; charset=utf-8", NULL, "%d %s: %s\n",
	    status, http1_reason(status), why);
}

/* RFC 9110 §13: If-None-Match (weak), else If-Modified-Since. */
static int not_modified(struct conn *c, const char *hdrs, size_t hlen)
{
	const char *inm, *ims, *etag, *lm;
	size_t inml, imsl, el, lml;

	inm = http1_field(&c->rq.http, "If-None-Match", &inml);
	if (inm != NULL) {
		etag = al_hdr_get(hdrs, hlen, "ETag", &el);
		return etag != NULL && al_etag_match_weak(inm, inml, etag, el);
	}
	ims = http1_field(&c->rq.http, "If-Modified-Since", &imsl);
	if (ims != NULL && (lm = al_hdr_get(hdrs, hlen, "Last-Modified", &lml)) != NULL) {
		time_t a = al_http_date(ims, imsl), b = al_http_date(lm, lml);
		return a >= 0 && b >= 0 && b <= a;
	}
	return 0;
}

/* The fields a 304 carries (RFC 9110 §15.4.5), copied from hdrs into buf. */
static size_t fields_for_304(const char *hdrs, size_t hlen, char *buf, size_t cap)
{
	static const char *const keep[] = {"ETag", "Cache-Control", "Expires", "Date",
		"Last-Modified", "Vary", "Content-Location", NULL};
	struct al_hdr_iter it = {hdrs, hdrs + hlen};
	const char *line = hdrs;
	size_t used = 0;

	while (it.p < it.end) {
		const char *n, *v, *eol;
		size_t nl, vl, ll;
		line = it.p;
		eol = memchr(line, '\n', it.end - line);
		ll = eol ? (size_t)(eol + 1 - line) : (size_t)(it.end - line);
		{
			struct al_hdr_iter one = {line, line + ll};
			if (al_hdr_next(&one, &n, &nl, &v, &vl)) {
				for (int i = 0; keep[i]; i++) {
					if (strlen(keep[i]) == nl && strncasecmp(n, keep[i], nl) == 0 && used + ll <= cap) {
						memcpy(buf + used, line, ll);
						used += ll;
					}
				}
			}
		}
		it.p = line + ll;
	}
	return used;
}

/*
 * Start the response for a body of `total` bytes (or unknown, -1) with head
 * fields hdrs: 304 for a matching conditional, 206/416 for a Range, else
 * the whole thing.  Sets pos/end for pump().  Returns 0 when a body follows.
 */
static int begin_response(struct conn *c, int status, const char *hdrs, size_t hlen,
    int64_t total, int64_t age)
{
	const char *rv, *ir;
	size_t rvl, irl;
	uint64_t first, last;

	if (status == 200 && not_modified(c, hdrs, hlen)) {
		char buf[4096];
		size_t n = fields_for_304(hdrs, hlen, buf, sizeof(buf));
		conn_add_head(c, 304, buf, n, -1, age, NULL);
		c->state = C_DONE;
		return 1;
	}
	c->rq.pos = 0;
	c->rq.end = total >= 0 ? (uint64_t)total : 0;
	c->rq.end_known = total >= 0;
	rv = http1_field(&c->rq.http, "Range", &rvl);
	if (status == 200 && rv != NULL && total >= 0) {
		int use = 1;
		ir = http1_field(&c->rq.http, "If-Range", &irl);
		if (ir != NULL) {
			size_t el;
			const char *etag = al_hdr_get(hdrs, hlen, "ETag", &el);
			if (ir[0] == '"')
				use = etag != NULL && el == irl && memcmp(etag, ir, el) == 0; /* strong */
			else {
				const char *lm = al_hdr_get(hdrs, hlen, "Last-Modified", &el);
				use = lm != NULL && el == irl && memcmp(lm, ir, el) == 0;
			}
		}
		switch (use ? al_range_parse(rv, rvl, (uint64_t)total, &first, &last) : AL_RANGE_NONE) {
		case AL_RANGE_OK: {
			char cr[96];
			snprintf(cr, sizeof(cr), "Content-Range: bytes %llu-%llu/%lld\r\n",
			    (unsigned long long)first, (unsigned long long)last, (long long)total);
			conn_add_head(c, 206, hdrs, hlen, (int64_t)(last - first + 1), age, cr);
			c->rq.pos = first;
			c->rq.end = last + 1;
			goto body;
		}
		case AL_RANGE_UNSATISFIABLE: {
			char cr[64];
			snprintf(cr, sizeof(cr), "Content-Range: bytes */%lld\r\n", (long long)total);
			conn_add_head(c, 416, NULL, 0, 0, -1, cr);
			c->state = C_DONE;
			return 1;
		}
		case AL_RANGE_NONE:
			break;
		}
	}
	/* the origin's Accept-Ranges is not stored (fill.c header_cb): this is the one */
	conn_add_head(c, status, hdrs, hlen, total, age, status == 200 ? "Accept-Ranges: bytes\r\n" : NULL);
body:
	if (c->rq.head_only || (c->rq.end_known && c->rq.pos == c->rq.end)) {
		c->state = C_DONE;
		return 1;
	}
	c->state = C_BODY;
	return 0;
}

/*
 * A hot body (proxy/front/hot.h) goes out as the head with MSG_MORE, then the body
 * by sendfile from the worker's memory file: no copy in the sender, and TCP
 * still sends head and body start in one segment.  Only for a response that
 * is first in line (nothing queued before its head) on a plain socket.
 * Whatever the socket does not take now is left for pump() (the rest of the
 * head in the output buffer, the rest of the body from the map), so a slow
 * client pins nothing here.
 */
static void hot_send(struct conn *c, const struct al_record *rec)
{
	struct evbuffer *o = conn_out(c);
	size_t hl = evbuffer_get_length(o);
	struct evbuffer_iovec v[8];
	struct iovec iov[8];
	struct msghdr mh = {.msg_iov = iov};
	ssize_t n;
	uint64_t off;
	off_t at;
	int fd, sock, nv;

	if (c->w->hot == NULL || c->tls || c->rq.chunked || c->rq.pos >= c->rq.end ||
	    al_hot_get(c->w->hot, c->hold->rd, rec, &fd, &off) != 0)
		return;
	sock = bufferevent_getfd(c->bev);
	/* the head where it lies in the output buffer: no copy, no allocation */
	if ((nv = evbuffer_peek(o, -1, NULL, v, 8)) < 1 || nv > 8)
		return;
	for (int i = 0; i < nv; i++)
		iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
	mh.msg_iovlen = (size_t)nv;
	n = sendmsg(sock, &mh, MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0) {
		evbuffer_unfreeze(o, 1); /* as in conn_write_now: we own the output here */
		evbuffer_drain(o, (size_t)n);
		evbuffer_freeze(o, 1);
	}
	if (n != (ssize_t)hl)
		return;
	at = (off_t)(off + c->rq.pos);
	n = sendfile(sock, fd, &at, (size_t)(c->rq.end - c->rq.pos));
	if (n <= 0)
		return;
	c->rq.pos += (uint64_t)n;
	c->rq.body_sent += (uint64_t)n;
	al_count(&c->w->stats.bytes_from_cache, (uint64_t)n);
}

/* Serve the stored record the lookup found (its snapshot is open): counters and Cache-Status from the decision. */
static enum req_step stp_hit(struct req *r)
{
	struct conn *c = r->conn;
	const struct al_lookup_result *d = &r->look;
	long long ttl = (long long)(d->lifetime - d->age);
	int first = evbuffer_get_length(conn_out(c)) == 0;

	if (d->verdict == AL_SERVE_REVALIDATED) {
		r->result = R_REVALIDATED;
		snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=stale; fwd-status=304", AL_NAME);
		al_count(&c->w->stats.hits, 1);
	} else if (d->verdict == AL_SERVE_FRESH) {
		if (d->why == AL_WHY_FOREVER)
			snprintf(r->cstatus, sizeof(r->cstatus), "%s; hit", AL_NAME);
		else
			snprintf(r->cstatus, sizeof(r->cstatus), "%s; hit; ttl=%lld", AL_NAME, ttl);
		al_count(&c->w->stats.hits, 1);
		r->result = R_HIT;
	} else {
		r->result = R_STALE;
		snprintf(r->cstatus, sizeof(r->cstatus), "%s; hit; ttl=%lld; detail=\"stale: %s\"", AL_NAME, ttl,
		    al_lookup_why_text(d->why));
		al_count(&c->w->stats.stale, 1);
	}
	if (r->rec.last_used < (int64_t)time(NULL) - 60)
		worker_touch(c->w, r->key); /* LRU, written in batches; hot entries cost nothing */
	if (r->geoip_overview && r->rec.status == 200 && conn_geoip_answer(r, &r->rec) == 0) {
		al_reader_end(c->hold->rd);
		return STP_DONE; /* its database urls lead to airlock (geoip.c) */
	}
	r->follow = 0;
	r->obj_id = r->rec.obj_id;
	if (begin_response(c, r->rec.status, r->rec.hdrs, r->rec.hdrs_len, (int64_t)r->rec.body_len, d->age) != 0) {
		al_reader_end(c->hold->rd);
		return STP_DONE;
	}
	if (first)
		hot_send(c, &r->rec);
	pump(c); /* may finish the request and start the next: r is not ours after this */
	return STP_PARK;
}

/*
 * How far a request that follows a fill (c->rq.follow) may send now: the
 * bytes the fill has committed, within the body's end once that is known,
 * never the last byte before the fill is done, and at first no more than
 * FIRST_QUANTUM.  Sets *avail; returns -1 (the response aborted) when the
 * fill failed.
 */
static int follow_avail(struct conn *c, uint64_t *avail)
{
	struct fill_view v;

	fill_view(c->rq.fill, &v);
	if (v.state == FILL_FAILED) {
		al_warn("conn", "%s: fill failed mid-body (%s); aborting the response", c->rq.url, v.error);
		conn_close_soon(c); /* never a short response that looks complete */
		return -1;
	}
	*avail = v.committed;
	if (!c->rq.end_known && v.state == FILL_DONE) {
		c->rq.end = (uint64_t)v.content_length;
		c->rq.end_known = 1;
	}
	if (c->rq.end_known && *avail > c->rq.end)
		*avail = c->rq.end;
	/*
	 * The last byte waits for the commit: a client never receives a
	 * complete body for an object that was not admitted (length or
	 * SHA-512 check failed); it sees the transfer abort instead.
	 */
	if (v.state != FILL_DONE && c->rq.end_known && c->rq.end > 0 && *avail >= c->rq.end &&
	    (uint64_t)v.content_length == c->rq.end)
		*avail = c->rq.end - 1;
	/*
	 * A follower's first pass takes a small share: with hundreds
	 * joining one fill, each one's first bytes go out before any one
	 * is handed half a megabyte (pump then goes on next turn, after
	 * the others woken with it).
	 */
	if (c->rq.body_sent == 0 && *avail > c->rq.pos + FIRST_QUANTUM)
		*avail = c->rq.pos + FIRST_QUANTUM;
	return 0;
}

/*
 * Move cached bytes into the output by reference until OUT_HIGH is queued,
 * the stored part runs out (a fill: wait for the next commit) or the body
 * ends.
 */
static void pump(struct conn *c)
{
	struct evbuffer *o = conn_out(c);
	uint64_t avail = c->rq.end;
	int renewed = 0;

	if (c->rq.follow && follow_avail(c, &avail) != 0)
		return;
	while (evbuffer_get_length(o) < OUT_HIGH && c->rq.pos < avail) {
		const void *p;
		size_t n;
		int rc = al_body_at(c->hold->rd, c->rq.obj_id, c->rq.pos, &p, &n);

		if (rc == -ENOENT && c->rq.follow && c->hold->refs == 0 && !renewed) {
			al_reader_end(c->hold->rd); /* the bytes came after our snapshot */
			renewed = 1;
			continue;
		}
		if (rc == -ENOENT && c->rq.follow)
			break; /* wait until our references drain, then renew */
		if (rc != 0) {
			al_warn("conn", "%s: body vanished at %llu (%s); aborting the response", c->rq.url,
			    (unsigned long long)c->rq.pos, strerror(-rc));
			conn_close_soon(c);
			return;
		}
		if (n > avail - c->rq.pos)
			n = (size_t)(avail - c->rq.pos);
		if (c->rq.chunked)
			evbuffer_add_printf(o, "%zx\r\n", n);
		evbuffer_add_reference(o, p, n, hold_cleanup, c->hold);
		c->hold->refs++;
		c->rq.body_sent += n;
		if (c->rq.chunked)
			evbuffer_add(o, "\r\n", 2);
		c->rq.pos += n;
		al_count(&c->w->stats.bytes_from_cache, n);
	}
	if (c->rq.end_known && c->rq.pos >= c->rq.end) {
		if (c->rq.chunked)
			evbuffer_add(o, "0\r\n\r\n", 5);
		c->state = C_DONE;
	}
	conn_write_now(c);
	if (c->hold->refs == 0)
		al_reader_end(c->hold->rd);
	if (c->state == C_DONE && evbuffer_get_length(o) == 0)
		finish(c);
	else if (c->state == C_BODY && evbuffer_get_length(o) < OUT_LOW && c->hold->refs == 0 && c->rq.pos < avail)
		event_active(c->wake, EV_READ, 0); /* the socket took it all: go on next turn */
}

/* ---- pass-through sink: the fill's response may not be stored ---- */

static void sink_head(void *arg, int status, const char *hdrs, size_t len, int64_t clen, int64_t age)
{
	struct conn *c = arg;

	snprintf(c->rq.cstatus, sizeof(c->rq.cstatus), "%s; fwd=%s; fwd-status=%d; detail=not-stored", AL_NAME,
	    c->rq.history == H_REVALIDATING ? "stale" : "miss", status);
	c->rq.result = R_PASS;
	c->rq.end_known = clen >= 0;
	conn_add_head(c, status, hdrs, len, clen, age, NULL);
	c->state = C_PASS;
	conn_write_now(c);
}

static int sink_full(void *arg)
{
	struct conn *c = arg;

	return evbuffer_get_length(conn_out(c)) >= OUT_HIGH;
}

static void sink_body(void *arg, const void *data, size_t len)
{
	struct conn *c = arg;

	if (c->rq.head_only || len == 0)
		return;
	c->rq.body_sent += len;
	if (c->rq.chunked)
		evbuffer_add_printf(conn_out(c), "%zx\r\n", len);
	evbuffer_add(conn_out(c), data, len);
	if (c->rq.chunked)
		evbuffer_add(conn_out(c), "\r\n", 2);
	conn_write_now(c);
}

static void sink_end(void *arg, int ok)
{
	struct conn *c = arg;

	if (!ok) {
		conn_close_soon(c);
		return;
	}
	if (c->rq.chunked && !c->rq.head_only)
		evbuffer_add(conn_out(c), "0\r\n\r\n", 5);
	c->state = C_DONE;
	event_active(c->wake, EV_READ, 0);
}

/* Join (or start) the fill for this key, with r->inm / r->ims as validators; STP_WAIT takes it from there. */
static enum req_step stp_fetch(struct req *r)
{
	struct conn *c = r->conn;
	struct fetch_params p = {0};
	struct pass_sink sink = {sink_head, sink_full, sink_body, sink_end, c};
	const char *ua;
	char uabuf[512];
	size_t ual;
	int created;

	r->fill = fill_acquire(r->key, r->attempts > 1, &created);
	if (r->fill == NULL) {
		conn_reply_error(c, 503, "out of memory");
		return STP_DONE;
	}
	c->state = C_WAIT;
	if (!created)
		al_count(&c->w->stats.collapsed, 1);
	fill_watch(r->fill, c->wake);
	if (!created)
		return STP_PARK;
	r->origin = 1;
	/* only the request that goes upstream reads where a GeoIP database comes from: hits never do */
	if (r->fetch_url == NULL)
		conn_geoip_resolve(r);
	ua = http1_field(&r->http, "User-Agent", &ual);
	if (ua != NULL && ual < sizeof(uabuf)) {
		memcpy(uabuf, ua, ual);
		uabuf[ual] = '\0';
		p.user_agent = uabuf;
	}
	p.url = r->url;
	p.fetch_url = r->fetch_url;
	p.uplink = r->uplink;
	p.if_none_match = r->inm[0] ? r->inm : NULL;
	p.if_modified_since = r->ims[0] ? r->ims : NULL;
	p.revalidating = r->history == H_REVALIDATING;
	p.conf = r->conf;
	fill_start(r->fill, c->w, &p, &sink);
	return STP_PARK;
}

/* The fill has a storable head: stream its body from the cache as it is committed. */
static enum req_step stp_deliver(struct req *r)
{
	struct conn *c = r->conn;
	struct fill_view v;

	fill_view(r->fill, &v);
	/*
	 * RFC 9211 §2.5: `stored` says the cache stored the response.  A body
	 * streamed while it is filled is not stored yet when its head goes out
	 * (the cache may still refuse it: a full disk), so only a fill already
	 * committed says so; later requests say `hit`.
	 */
	snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=%s; fwd-status=%d%s%s", AL_NAME,
	    r->history == H_REVALIDATING ? "stale" : "miss", v.status, v.state == FILL_DONE ? "; stored" : "",
	    r->origin ? "" : "; collapsed");
	al_count(&c->w->stats.misses, 1);
	r->result = r->origin ? R_MISS : R_COLLAPSED;
	r->follow = 1;
	r->obj_id = v.obj_id;
	/* a miss relays the upstream's Age (RFC 9111 §5.1): the response may be old already */
	if (begin_response(c, v.status, v.hdrs, v.hdrs_len, v.content_length, v.age) != 0)
		return STP_DONE;
	pump(c); /* may finish the request and start the next: r is not ours after this */
	return STP_PARK;
}

/*
 * GeoIP's overview is served rewritten (geoip.c), from the store once the
 * fill has committed it all; one that cannot be rewritten goes out as it is.
 */
static enum req_step geoip_overview_filled(struct req *r, const struct fill_view *v)
{
	struct conn *c = r->conn;

	if (v->state == FILL_STREAM)
		return STP_PARK;
	snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=%s; fwd-status=%d; stored", AL_NAME,
	    r->history == H_REVALIDATING ? "stale" : "miss", v->status);
	if (conn_geoip_answer(r, NULL) != 0)
		return STP_DELIVER;
	al_count(&c->w->stats.misses, 1);
	r->result = r->origin ? R_MISS : R_COLLAPSED;
	detach_fill(c);
	return STP_DONE;
}

/* The fill moved (re-entered from on_wake): deliver, look again, refetch privately, or fail. */
static enum req_step stp_wait(struct req *r)
{
	struct fill_view v;
	size_t rl;

	fill_view(r->fill, &v);
	switch (v.state) {
	case FILL_WAIT:
		return STP_PARK;
	case FILL_STREAM:
	case FILL_DONE:
		/*
		 * A Range needs the length: on an object whose length is not known
		 * yet (a chunked upstream) wait for the end rather than send the
		 * whole body under a 200, which Elasticsearch's ranged model
		 * download (ModelLoaderUtils.HttpStreamChunker, elasticsearch
		 * 01195333) would index as its range's bytes.
		 */
		if (v.state == FILL_STREAM && v.content_length < 0 && http1_field(&r->http, "Range", &rl) != NULL)
			return STP_PARK;
		if (r->geoip_overview && v.status == 200)
			return geoip_overview_filled(r, &v);
		return STP_DELIVER;
	case FILL_REFRESHED:
		detach_fill(r->conn);
		r->history = H_REVALIDATED;
		return STP_LOOKUP;
	case FILL_PASS:
		if (r->origin)
			return STP_PARK; /* the sink callbacks drive this one */
		detach_fill(r->conn);
		r->attempts++;
		r->inm[0] = r->ims[0] = '\0';
		return STP_FETCH; /* a private fill of our own */
	case FILL_FAILED:
		detach_fill(r->conn);
		if (v.failure == FAIL_UNSELECTED) {
			/* the 304 named another representation (policy/freshness.h al_304_selects): all of it again */
			r->inm[0] = r->ims[0] = '\0';
			r->history = H_FIRST;
			return STP_FETCH;
		}
		if (v.failure == FAIL_UNREACHABLE || v.failure == FAIL_UPSTREAM_5XX) {
			r->history = H_UPSTREAM_DOWN;
			return STP_LOOKUP; /* serves the stale copy, if there is one */
		}
		if (v.failure == FAIL_LOCAL) {
			conn_reply_error(r->conn, 503, v.error);
			return STP_DONE;
		}
		conn_reply_error(r->conn, 502, v.error);
		return STP_DONE;
	}
	return STP_PARK;
}

/* The fill changed, references drained, or a close was asked for. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_CLOSE) {
		conn_free(c);
		return;
	}
	if (c->state == C_BODY) {
		pump(c);
		return;
	}
	if (c->state == C_DONE) {
		conn_write_now(c);
		if (c->state == C_DONE && evbuffer_get_length(conn_out(c)) == 0)
			finish(c);
		return;
	}
	if (c->state == C_PASS) {
		conn_write_now(c);
		return;
	}
	if (c->state == C_WAIT && c->rq.fill != NULL)
		req_run(&c->rq, STP_WAIT);
}

/* Nothing stored (or the lookup failed): a fetch, or the 504 / 502 the decision names. */
static enum req_step lookup_absent(struct req *r)
{
	struct conn *c = r->conn;

	switch (r->look.verdict) {
	case AL_MISS:
		r->inm[0] = r->ims[0] = '\0';
		return STP_FETCH;
	case AL_BAD_GATEWAY:
		conn_reply_error(c, 502, "upstream unreachable and nothing cached");
		return STP_DONE;
	default:
		break;
	}
	if (r->look.why == AL_WHY_ONLY_IF_CACHED) {
		snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=miss; detail=only-if-cached", AL_NAME);
		conn_reply_simple(c, 504, "text/plain; charset=utf-8", NULL,
		    "504 Gateway Timeout: %s is not in airlock's cache (only-if-cached)\n", r->url);
	} else {
		snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=miss; detail=upstream-offline", AL_NAME);
		conn_reply_simple(c, 504, "text/plain; charset=utf-8", NULL,
		    "504 Gateway Timeout: %s is not in airlock's cache and upstream %s is offline\n",
		    r->url, uplink_name(r->uplink));
	}
	return STP_DONE;
}

/* Nothing cached and the registry out of reach: a computed answer, else what the decision said. */
static enum req_step stp_registry(struct req *r)
{
	switch (conn_registry_answer(r)) {
	case 0:
		return STP_DONE;
	case 1:
		return STP_PARK; /* on a query thread; its answer comes back at STP_ANSWERED (offline_registry.c on_done) */
	default:
		return lookup_absent(r);
	}
}

/*
 * Look the key up and let policy/lookup.h decide from the stored record,
 * what happened before (r->history: just revalidated, upstream failed, or a
 * first look), the request's rules and the uplink state.
 */
static enum req_step stp_lookup(struct req *r)
{
	static const enum al_lookup_history hist[] = {
		[H_FIRST] = AL_LOOKUP_FIRST, [H_REVALIDATING] = AL_LOOKUP_FIRST,
		[H_REVALIDATED] = AL_LOOKUP_AFTER_304, [H_UPSTREAM_DOWN] = AL_LOOKUP_AFTER_FAILURE,
	};
	struct conn *c = r->conn;
	struct al_lookup_record lr = {0};
	struct al_lookup_request q = {0};
	struct al_lookup_uplink u = {uplink_online(r->uplink), uplink_forced(r->uplink)};
	const char *cc, *path = r->url + r->base_len;
	char pathbuf[2048];
	size_t ccl;
	int rc, after_failure = r->history == H_UPSTREAM_DOWN;

	q.history = hist[r->history];
	r->history = H_FIRST;
	if (++r->attempts > 4) {
		conn_reply_error(c, 502, "the entry kept changing under this request");
		return STP_DONE;
	}
	/* a bucket's listing while its upstream is offline names only what is cached (offline_listing.c) */
	if ((after_failure || !u.online) && conn_listing_answer(r) == 1)
		return STP_PARK; /* computed on a query thread: on_done (offline_registry.c) answers it */
	cc = http1_field(&r->http, "Cache-Control", &ccl);
	q.only_if_cached = cc != NULL && al_list_has_token(cc, ccl, "only-if-cached");
	q.registry = r->registry;
	snprintf(pathbuf, sizeof(pathbuf), "%.*s", (int)strcspn(path, "?"), path);
	q.path = pathbuf;
	rc = al_lookup(c->hold->rd, r->key, &r->rec);
	if (rc == 0)
		lr = (struct al_lookup_record){1, r->rec.status, r->rec.hdrs, r->rec.hdrs_len, r->rec.request_time,
		    r->rec.response_time, r->rec.age_value, (r->rec.flags & AL_REC_STALE) != 0};
	al_lookup_decide(r->conf->cfg, &lr, &q, &u, time(NULL), &r->look);
	if (r->look.verdict == AL_REVALIDATE) {
		/* the upstream's own validators, copied before the snapshot closes */
		snprintf(r->inm, sizeof(r->inm), "%.*s", r->look.etag && r->look.etag_len < sizeof(r->inm) ?
		    (int)r->look.etag_len : 0, r->look.etag ? r->look.etag : "");
		snprintf(r->ims, sizeof(r->ims), "%.*s", r->look.last_modified && r->look.last_modified_len <
		    sizeof(r->ims) ? (int)r->look.last_modified_len : 0, r->look.last_modified ? r->look.last_modified : "");
		al_reader_end(c->hold->rd);
		r->history = H_REVALIDATING;
		return STP_FETCH;
	}
	if (rc == 0)
		return STP_HIT; /* fresh, just revalidated or stale */
	al_reader_end(c->hold->rd);
	if (rc != -ENOENT)
		al_warn("conn", "%s: cache lookup failed: %s", r->url, strerror(-rc));
	return r->look.registry_first ? STP_REGISTRY : lookup_absent(r);
}

/* url = base + target; sets the key and the uplink.  Replies and returns -1 on failure. */
int req_set_url(struct req *r, const char *base, const char *target, size_t tlen, int registry)
{
	size_t bl = strlen(base);

	/* Kept across requests and grown only: the fill copies what it needs. */
	if (bl + tlen + 1 > r->url_cap) {
		char *buf = realloc(r->url, bl + tlen + 1);

		if (buf == NULL) {
			conn_reply_error(r->conn, 503, "out of memory");
			return -1;
		}
		r->url = buf;
		r->url_cap = bl + tlen + 1;
	}
	memcpy(r->url, base, bl);
	memcpy(r->url + bl, target, tlen);
	r->url[bl + tlen] = '\0';
	r->base_len = bl;
	r->registry = registry;
	free(r->fetch_url);
	r->fetch_url = NULL;
	/*
	 * Rewritten for clients that came by a route (Elasticsearch); as it is in
	 * absolute form: a child airlock or a caching proxy then sees the signed
	 * URLs, which any parent can fetch (conn_geoip_signed).
	 */
	r->geoip_overview = al_geoip_is_overview(r->url, bl + tlen) && r->http.form != FORM_ABSOLUTE;
	al_store_key(r->url, bl + tlen, r->key);
	r->uplink = uplink_get(base);
	r->attempts = 0;
	r->history = H_FIRST;
	if (r->uplink == NULL) {
		conn_reply_error(r->conn, 503, "too many distinct upstream hosts");
		return -1;
	}
	return 0;
}

/*
 * The one place that decides what becomes of a request's body (RFC 9112
 * 6.3, 9.6).  airlock uses no request body: every answer it gives to a
 * request with one is an early answer.  A body of known length up to
 * DISCARD_MAX is read and dropped before the next head is parsed
 * (drop_body); a chunked body or a larger one means Connection: close.
 * Either way its bytes can never be parsed as a request of their own.
 * CONNECT is special: what follows it is the tunnel's, so a CONNECT that
 * declares a body is refused and the connection closed.
 */
static int request_body_policy(struct conn *c)
{
	const struct http_req *r = &c->rq.http;

	c->discard = 0;
	if (!r->chunked && r->content_length <= 0)
		return 0;
	if (r->method == HTTP_CONNECT) {
		c->rq.keepalive = 0;
		conn_reply_error(c, 400, "a CONNECT request must not carry a body");
		return -1;
	}
	if (r->chunked || r->content_length > DISCARD_MAX)
		c->rq.keepalive = 0;
	else
		c->discard = (uint64_t)r->content_length;
	return 0;
}

/* Drop what is due of an unread request body from the input (see request_body_policy). */
static void drop_body(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);

	if (c->discard == 0 || n == 0)
		return;
	if ((uint64_t)n > c->discard)
		n = (size_t)c->discard;
	evbuffer_drain(in, n);
	c->discard -= n;
}

/* A complete head is in r->head: count it, pin the configuration, decide its body, pick the branch. */
static enum req_step stp_recv(struct req *r)
{
	struct conn *c = r->conn;
	const struct http_req *h = &r->http;

	al_count(&c->w->stats.requests, 1);
	/* every decision of this request reads this one configuration (conf.h) */
	al_conf_release(r->conf);
	r->conf = al_conf_hold(worker_conf(c->w));
	r->t0_us = now_us();
	r->user[0] = '\0';
	r->login = 0;
	r->logged = 0;
	r->closed_by = NULL;
	r->result = R_MISS; /* until a step says otherwise (a client may leave before one does) */
	r->keepalive = !h->close;
	r->head_only = h->method == HTTP_HEAD;
	if (request_body_policy(c) != 0)
		return STP_DONE;
	if (h->form == FORM_ORIGIN && h->target_len >= strlen(AL_RESERVED_PREFIX) &&
	    memcmp(h->target, AL_RESERVED_PREFIX, strlen(AL_RESERVED_PREFIX)) == 0)
		return STP_ADMIN;
	if (c->denied) {
		al_warn("access", "%s: refused, address not in clients.allow", c->peer);
		r->keepalive = 0;
		conn_reply_error(c, 403, "this client address may not use airlock (clients.allow)");
		return STP_DONE;
	}
	if (h->method == HTTP_CONNECT || h->form == FORM_ABSOLUTE)
		return STP_FORWARD;
	return STP_ROUTE;
}

/* /_airlock/...: admin.c answers into a buffer; the head and body go out from here. */
static enum req_step stp_admin(struct req *r)
{
	struct conn *c = r->conn;
	const struct http_req *h = &r->http;
	struct evbuffer *body;
	const char *ctype = "text/plain", *authz;
	size_t al;
	int status, post = h->method_len == 4 && memcmp(h->method_s, "POST", 4) == 0;
	char hd[160];

	r->result = R_ADMIN;
	if (h->method != HTTP_GET && h->method != HTTP_HEAD && !post) {
		conn_reply_simple(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD, POST\r\n", "405 Method Not Allowed\n");
		return STP_DONE;
	}
	if ((body = evbuffer_new()) == NULL) {
		conn_reply_error(c, 503, "out of memory");
		return STP_DONE;
	}
	authz = http1_field(h, "Authorization", &al);
	status = admin_handle(r->conf->cfg, h->target, h->target_len, post,
	    al_admin_allowed(r->conf->cfg, (struct sockaddr *)&c->sa, authz, authz ? al : 0), body, &ctype);
	if (status == ADMIN_PURGE) { /* on the store writer; purge.c answers when it is committed */
		evbuffer_free(body);
		if (conn_purge(r) > 0)
			return STP_PARK;
		conn_reply_error(c, 503, "out of memory");
		return STP_DONE;
	}
	snprintf(hd, sizeof(hd), "Content-Type: %s\r\nCache-Control: no-store\r\n%s", ctype,
	    status == 401 ? "WWW-Authenticate: Bearer realm=\"airlock\"\r\n" : "");
	conn_add_head(c, status, hd, strlen(hd), (int64_t)evbuffer_get_length(body), -1, NULL);
	r->body_sent = evbuffer_get_length(body);
	if (!r->head_only)
		evbuffer_add_buffer(conn_out(c), body);
	evbuffer_free(body);
	c->state = C_DONE;
	return STP_DONE;
}

/* An origin-form request: method, body and path checks, then its route (or the intercepted host). */
static enum req_step stp_route(struct req *r)
{
	struct conn *c = r->conn;
	const struct http_req *h = &r->http;
	const struct al_route *route;
	char base[300], *path;
	int n, rc;

	if (h->form != FORM_ORIGIN) {
		conn_reply_error(c, 400, "bad request target");
		return STP_DONE;
	}
	if (h->method != HTTP_GET && h->method != HTTP_HEAD) {
		conn_reply_simple(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
		    "405 Method Not Allowed: airlock serves GET and HEAD\n");
		return STP_DONE;
	}
	if (h->content_length > 0 || h->chunked) {
		conn_reply_error(c, 400, "a GET or HEAD request must not carry a body");
		return STP_DONE;
	}
	if (al_path_check(h->target, h->target_len) != 0) {
		conn_reply_error(c, 400, "request path with dot segments, encoded slashes or control bytes");
		return STP_DONE;
	}
	if (c->icpt_host != NULL) {
		/* Inside an intercepted tunnel: the key is https://host[:port]/path. */
		snprintf(r->user, sizeof(r->user), "%s", r->proof_user); /* who opened the tunnel */
		if (c->icpt_port == 443)
			snprintf(base, sizeof(base), "https://%s", c->icpt_host);
		else
			snprintf(base, sizeof(base), "https://%s:%d", c->icpt_host, c->icpt_port);
		if (req_set_url(r, base, h->target, h->target_len,
		    conn_forward_registry(r->conf->cfg, c->icpt_host, c->icpt_port)) != 0)
			return STP_DONE;
		return STP_LOOKUP;
	}
	route = al_route_find(r->conf->cfg, h->target, h->target_len);
	if (route == NULL) {
		conn_reply_error(c, 404, "no route for this path");
		return STP_DONE;
	}
	if ((rc = conn_client_auth(r, route)) != 0)
		return rc > 0 ? STP_PARK : STP_DONE; /* parked: the login thread runs this step again */
	/* a strip_prefix route changes the path (policy/route.h al_route_path) */
	if ((path = malloc(h->target_len + 2)) == NULL ||
	    (n = al_route_path(route, h->target, h->target_len, path, h->target_len + 2)) < 0) {
		free(path);
		conn_reply_error(c, 503, "out of memory");
		return STP_DONE;
	}
	rc = req_set_url(r, route->upstream, path, (size_t)n, route->registry);
	free(path);
	if (rc != 0)
		return STP_DONE;
	return STP_LOOKUP;
}

/* The response is queued: the connection writes it and finishes the request from its loop. */
/*
 * ANSWERED: what a thread computed for a parked request (the offline
 * registry's query threads, the store writer's purge) is back on this loop;
 * the module that parked it queues the answer in a step of its own.
 */
static enum req_step stp_answered(struct req *r)
{
	enum req_step (*answered)(struct req *, void *) = r->answered;

	r->answered = NULL;
	return answered(r, r->answer);
}

static enum req_step stp_done(struct req *r)
{
	event_active(r->conn->wake, EV_READ, 0);
	return STP_PARK;
}

typedef enum req_step req_step_fn(struct req *r);

static req_step_fn *const steps[STP_PARK] = {
	[STP_RECV] = stp_recv, [STP_ROUTE] = stp_route, [STP_LOOKUP] = stp_lookup, [STP_HIT] = stp_hit,
	[STP_FETCH] = stp_fetch, [STP_WAIT] = stp_wait, [STP_DELIVER] = stp_deliver, [STP_FORWARD] = stp_forward,
	[STP_TUNNEL] = stp_tunnel, [STP_PROVE] = stp_prove, [STP_PROVED] = stp_proved, [STP_INTERCEPT] = stp_intercept,
	[STP_REGISTRY] = stp_registry, [STP_ADMIN] = stp_admin,
	[STP_ANSWERED] = stp_answered, [STP_DONE] = stp_done,
};

/*
 * Run r from step s until a step parks it (Varnish's CNT_Request).  Entered
 * when a head is complete (STP_RECV) and again when its fill moves
 * (STP_WAIT) or a CONNECT's proof ends (STP_PROVED, forward.c).  A step
 * that hands the connection on (pump, which may finish this request and
 * start the next) returns STP_PARK at once: after it, r may be the next
 * request's.
 */
void req_run(struct req *r, enum req_step s)
{
	while (s != STP_PARK) {
		r->step = s;
		s = steps[s](r);
	}
}

/* JSON string body (no quotes) of s[0..n) into o. */
static void json_escaped(struct evbuffer *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			evbuffer_add_printf(o, "\\u%04x", ch);
		else
			evbuffer_add(o, &s[i], 1);
	}
}

/*
 * One request is done: counters, the recent-requests ring, and an access
 * log line in Elastic Common Schema field names (nested objects), which
 * Elastic Agent's filestream input reads as it is.  Credentials never
 * appear: no request header is logged but the User-Agent.
 */
void conn_access_log(struct conn *c)
{
	struct al_recent rr;
	int st = c->rq.status;

	c->rq.logged = 1;
	al_count(&c->w->stats.by_status[st >= 100 && st < 600 ? st : 0], 1);
	al_count(&c->w->stats.by_result[c->rq.result], 1);
	memset(&rr, 0, sizeof(rr));
	rr.t_us = now_us();
	if (c->rq.result != R_ADMIN && c->rq.result != R_TUNNEL && c->rq.result != R_INTERCEPT)
		al_count_minute(&c->w->minutes, rr.t_us, c->rq.result == R_HIT || c->rq.result == R_STALE || c->rq.result == R_REVALIDATED);
	snprintf(rr.method, sizeof(rr.method), "%.*s", (int)(c->rq.http.method_len < 7 ? c->rq.http.method_len : 7), c->rq.http.method_s ? c->rq.http.method_s : "");
	snprintf(rr.url, sizeof(rr.url), "%.*s", (int)(c->rq.http.target_len < 159 ? c->rq.http.target_len : 159), c->rq.http.target ? c->rq.http.target : "");
	rr.status = st;
	rr.result = c->rq.result;
	al_recent_add(&c->w->recent, &rr);
	if (al_access_enabled()) {
		struct evbuffer *o = evbuffer_new();
		struct timeval tv;
		struct tm tm;
		char ts[40];
		const char *ua;
		size_t ual, len;
		char *line;

		if (o == NULL)
			return;
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		evbuffer_add_printf(o, "{\"@timestamp\":\"%s.%03dZ\",\"ecs\":{\"version\":\"8.11.0\"},"
		    "\"event\":{\"dataset\":\"airlock.access\",\"duration\":%lld},\"client\":{\"ip\":\"%s\"},"
		    "\"http\":{\"version\":\"1.%d\",\"request\":{\"method\":\"", ts, (int)(tv.tv_usec / 1000),
		    (long long)(now_us() - c->rq.t0_us) * 1000, c->peer, c->rq.http.minor);
		json_escaped(o, c->rq.http.method_s ? c->rq.http.method_s : "", c->rq.http.method_len);
		if (c->rq.result == R_TUNNEL)
			evbuffer_add_printf(o, "\",\"body\":{\"bytes\":%llu}", (unsigned long long)c->rq.req_body_bytes);
		else
			evbuffer_add(o, "\"", 1);
		evbuffer_add_printf(o, "},\"response\":{\"status_code\":%d,\"body\":{\"bytes\":%llu}}},"
		    "\"url\":{\"original\":\"", st, (unsigned long long)c->rq.body_sent);
		json_escaped(o, c->rq.http.target ? c->rq.http.target : "", c->rq.http.target_len);
		evbuffer_add_printf(o, "\"},\"user_agent\":{\"original\":\"");
		ua = http1_field(&c->rq.http, "User-Agent", &ual);
		json_escaped(o, ua ? ua : "", ua ? ual : 0);
		if (c->rq.user[0] != '\0') {
			evbuffer_add_printf(o, "\"},\"user\":{\"name\":\"");
			json_escaped(o, c->rq.user, strlen(c->rq.user));
		}
		evbuffer_add_printf(o, "\"},\"airlock\":{\"cache_status\":\"");
		json_escaped(o, c->rq.cstatus, strlen(c->rq.cstatus));
		evbuffer_add_printf(o, "\",\"result\":\"%s\",\"upstream\":\"%s\"%s%s%s}}\n", al_result_names[c->rq.result],
		    c->rq.uplink ? uplink_name(c->rq.uplink) : "", c->rq.closed_by ? ",\"closed_by\":\"" : "",
		    c->rq.closed_by ? c->rq.closed_by : "", c->rq.closed_by ? "\"" : "");
		len = evbuffer_get_length(o);
		line = (char *)evbuffer_pullup(o, -1);
		al_access_write(line, len);
		evbuffer_free(o);
	}
	al_debug("access", "%s%s%s \"%.*s %.*s\" %d %lldus cache-status=\"%s\"", c->peer,
	    c->rq.user[0] ? " user " : "", c->rq.user,
	    (int)c->rq.http.method_len, c->rq.http.method_s, (int)c->rq.http.target_len, c->rq.http.target,
	    c->rq.status, (long long)(now_us() - c->rq.t0_us), c->rq.cstatus);
}

static void try_parse(struct conn *c);

/*
 * Close after the response without destroying it: closing a socket with
 * unread input makes the kernel send RST, which can discard our answer
 * before the client reads it.  Shut our side, drain for a moment, close.
 */
static void linger(struct conn *c)
{
	struct timeval tv = {2, 0};
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	c->state = C_LINGER;
	shutdown(fd, SHUT_WR);
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_enable(c->bev, EV_READ);
}

/* The response is fully written: next request or close. */
static void finish(struct conn *c)
{
	conn_access_log(c);
	detach_fill(c);
	al_conf_release(c->rq.conf);
	c->rq.conf = NULL;
	if (c->w->draining)
		c->rq.keepalive = 0;
	if (!c->rq.keepalive && !c->tls) {
		linger(c);
		return;
	}
	if (!c->rq.keepalive && c->w->draining) {
		conn_free(c);
		return;
	}
	if (!c->rq.keepalive && c->tw != NULL && tls_close_notify(c->bev) == 0) {
		linger(c); /* TLS on the socket (HTTPS listener, most interceptions): close_notify is out, shut as over TCP (issue 33) */
		return;
	}
	if (!c->rq.keepalive) {
		/*
		 * TLS interception through a filter: close_notify goes after the encrypted reply
		 * still queued below the TLS layer, and tls.c shuts the socket's
		 * write side once it is written (a raw shutdown now would cut
		 * the reply).  So too for a close_notify that did not fit the
		 * socket buffer, without the shutdown.  Parse nothing more (what
		 * follows may be an unread body), drain, and wait for the client
		 * to close, at most the linger time.
		 */
		if (c->tw == NULL && c->icpt_host != NULL)
			tls_close_notify(c->bev);
		struct timeval tv = {2, 0};
		struct evbuffer *in = bufferevent_get_input(c->bev);
		c->state = C_LINGER;
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_set_timeouts(c->bev, &tv, NULL);
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	c->state = C_HEAD;
	c->rq.cstatus[0] = '\0';
	c->rq.chunked = c->rq.follow = c->rq.end_known = 0;
	c->rq.status = 0;
	c->rq.body_sent = 0;
	c->rq.result = R_MISS;
	c->rq.uplink = NULL;
	conn_set_head_timeout(c, worker_conf(c->w)->cfg->client_idle_timeout_ms);
	bufferevent_enable(c->bev, EV_READ);
	try_parse(c);
}

static void try_parse(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	const struct al_config *cfg = worker_conf(c->w)->cfg;
	struct http_limits lim = {cfg->client_max_header_bytes, (int)cfg->client_max_headers};
	size_t len = evbuffer_get_length(in), take;
	const char *p;
	int rc;

	drop_body(c);
	len = evbuffer_get_length(in);
	if (c->state != C_HEAD || len == 0 || c->discard > 0)
		return;
	/*
	 * The head must arrive within client.header_timeout of its first byte,
	 * however it trickles in (slowloris): the read timeout is what is left.
	 */
	if (c->head_start_us == 0)
		c->head_start_us = now_us();
	{
		int64_t left = cfg->client_header_timeout_ms - (now_us() - c->head_start_us) / 1000;
		conn_set_head_timeout(c, left > 1 ? left : 1);
	}
	take = len > lim.max_head ? lim.max_head : len;
	p = (const char *)evbuffer_pullup(in, take);
	rc = http1_parse_request(p, take, &lim, &c->rq.http);
	if (rc == 0 && len >= lim.max_head)
		rc = -431;
	if (rc == 0)
		return;
	if (rc < 0) {
		memset(&c->rq.http, 0, sizeof(c->rq.http));
		c->rq.http.minor = 1;
		c->rq.keepalive = 0;
		c->rq.t0_us = now_us();
		bufferevent_disable(c->bev, EV_READ);
		conn_reply_error(c, -rc, rc == -431 ? "request head too large" :
		    rc == -414 ? "request line too long" : "malformed request");
		event_active(c->wake, EV_READ, 0);
		return;
	}
	/* Keep the head stable (the input buffer moves on): copy, then re-point. */
	if (c->rq.head != c->rq.small)
		free(c->rq.head);
	c->rq.head = (size_t)rc <= sizeof(c->rq.small) ? c->rq.small : malloc((size_t)rc);
	if (c->rq.head == NULL) {
		c->rq.head = c->rq.small;
		conn_close_soon(c);
		return;
	}
	memcpy(c->rq.head, p, (size_t)rc);
	c->rq.head_len = (size_t)rc;
	http1_rebase(&c->rq.http, p, c->rq.head); /* before the drain: p is still the input's */
	c->head_start_us = 0;
	evbuffer_drain(in, (size_t)rc);
	conn_set_head_timeout(c, 0);
	c->state = C_WAIT;
	req_run(&c->rq, STP_RECV);
}

void conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_LINGER) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	drop_body(c);
	try_parse(c);
}

void conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->tls && evbuffer_get_length(conn_out(c)) == 0)
		bufferevent_disable(bev, EV_WRITE); /* conn_write_now() writes first from here on */
	if (c->state == C_BODY)
		pump(c);
	else if (c->state == C_PASS && c->rq.fill != NULL)
		fill_pass_resume(c->rq.fill);
	else if (c->state == C_DONE && evbuffer_get_length(conn_out(c)) == 0)
		finish(c);
}

void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return; /* the interception handshake finished */
	al_debug("conn", "%s: connection event 0x%x in state %d, step %d%s", c->peer, what, c->state, c->rq.step,
	    c->icpt_host ? " (intercepted)" : "");
	if (c->state == C_LINGER) {
		conn_free(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state != C_HEAD && !(what & BEV_EVENT_WRITING)) {
		/* Half-close after a request: finish the response, then close (its log line says the client closed). */
		c->rq.keepalive = 0;
		c->rq.closed_by = "client";
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->state == C_HEAD &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		c->rq.keepalive = 0;
		memset(&c->rq.http, 0, sizeof(c->rq.http));
		c->rq.http.minor = 1;
		bufferevent_disable(bev, EV_READ);
		conn_reply_error(c, 408, "request head not received in time");
		event_active(c->wake, EV_READ, 0);
		return;
	}
	c->rq.closed_by = "client"; /* if a request is in progress, its client hung up (conn_free logs it) */
	conn_free(c);
}

/* The TLS writer waited for the socket: as libevent's write and event callbacks would be called. */
void conn_on_tls_writer(void *arg, short what)
{
	struct conn *c = arg;

	if (what & EV_WRITE)
		conn_on_write(c->bev, c);
	else
		conn_on_event(c->bev, BEV_EVENT_WRITING | (what & EV_TIMEOUT ? BEV_EVENT_TIMEOUT : BEV_EVENT_ERROR), c);
}

void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen, void *ssl)
{
	const struct al_config *cfg = worker_conf(w)->cfg;
	struct conn *c;

	if (atomic_load(&srv.clients) >= cfg->max_connections) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->magic = CONN_MAGIC;
	c->w = w;
	c->rq.conn = c;
	c->rq.step = STP_PARK;
	c->rq.head = c->rq.small;
	c->hold = calloc(1, sizeof(*c->hold));
	if (ssl != NULL) {
		c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		c->tls = 1;
		if (c->bev != NULL)
			c->tw = tls_writer_new(c->bev, OUT_LOW, conn_on_tls_writer, c);
	} else {
		c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	c->wake = event_new(w->base, -1, 0, on_wake, c);
	if (c->hold == NULL || c->bev == NULL || (c->tls && c->tw == NULL) || c->wake == NULL ||
	    al_reader_new(srv.store, &c->hold->rd) != 0) {
		al_warn("conn", "cannot set up a client connection (out of memory or LMDB readers)");
		tls_writer_free(c->tw);
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->wake)
			event_free(c->wake);
		free(c->hold);
		free(c);
		return;
	}
	c->hold->c = c;
	c->denied = !al_client_allowed(cfg, sa);
	memcpy(&c->sa, sa, (size_t)salen < sizeof(c->sa) ? (size_t)salen : sizeof(c->sa));
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof(c->peer));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer, sizeof(c->peer));
	w->nconns++;
	atomic_fetch_add(&srv.clients, 1);
	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->client_max_header_bytes + 4096);
	/* libevent writes 16 KiB per syscall by default: let one writev take what is queued. */
	bufferevent_set_max_single_write(c->bev, OUT_HIGH);
	conn_set_head_timeout(c, cfg->client_header_timeout_ms);
	bufferevent_enable(c->bev, c->tls ? EV_READ | EV_WRITE : EV_READ);
}

void conn_drain(struct worker *w)
{
	struct conn *c = w->conns, *next;

	w->draining = 1;
	for (; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_HEAD && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
			conn_free(c); /* idle keep-alive: nothing in flight */
		else
			c->rq.keepalive = 0;
	}
}

void conn_close_all(struct worker *w)
{
	while (w->conns != NULL)
		conn_free(w->conns);
}
