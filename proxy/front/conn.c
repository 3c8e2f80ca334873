/*
 * A client connection and the life of each request on it, as steps:
 *
 *   conn_on_read -> step_request -> step_lookup -+-> step_hit ------------+
 *                                                +-> step_fetch -> on_wake +-> pump -> finish
 *
 * step_lookup decides from the stored record and the uplink state: fresh
 * hit, stale hit (uplink offline), revalidation or miss.  Misses and
 * revalidations join a fill (proxy/fetch/fill.h) and are woken as it progresses.
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
#include "policy/hdr.h"
#include "policy/geoip.h"
#include "policy/range.h"
#include "policy/route.h"
#include "proxy/front/admin.h"
#include "proxy/front/conn_impl.h"
#include "proxy/fetch/fill.h"
#include "proxy/front/hot.h"
#include "proxy/front/http1.h"
#include "proxy/runtime/log.h"
#include "proxy/runtime/server.h"
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
static void recent_add(struct worker *w, const struct al_recent *r);

static int64_t now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

struct evbuffer * conn_out(struct conn *c)
{
	return bufferevent_get_output(c->bev);
}

/*
 * Write what is queued at once, as nginx does, instead of registering for
 * writability and waiting a loop turn: a hit that fits the socket buffer
 * costs one writev and no epoll_ctl.  Only when bytes remain does libevent
 * get the write event (on_write turns it off again once drained).  TLS
 * connections leave it all to their bufferevent.
 */
void conn_write_now(struct conn *c)
{
	struct evbuffer *o = conn_out(c);
	int n;

	if (c->tls || evbuffer_get_length(o) == 0)
		return;
	/* bufferevent_socket freezes the start of its output so only it drains it; we own it here. */
	evbuffer_unfreeze(o, 1);
	errno = 0;
	n = evbuffer_write_atmost(o, bufferevent_getfd(c->bev), -1);
	evbuffer_freeze(o, 1);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		al_debug("conn", "%s: write: %s", c->peer, strerror(errno));
		conn_close_soon(c);
		return;
	}
	if (evbuffer_get_length(o) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
}

void conn_set_head_timeout(struct conn *c, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct timeval wtv = {srv.cfg->client_idle_timeout_ms / 1000, (srv.cfg->client_idle_timeout_ms % 1000) * 1000};

	bufferevent_set_timeouts(c->bev, ms > 0 ? &tv : NULL, &wtv);
}

static void detach_fill(struct conn *c)
{
	if (c->fill == NULL)
		return;
	fill_unwatch(c->fill, c->wake);
	if (c->origin)
		fill_pass_detach(c->fill);
	fill_release(c->fill);
	c->fill = NULL;
	c->origin = 0;
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
	detach_fill(c);
	if (c->tunnel != NULL)
		tunnel_abort(c->tunnel); /* frees the client socket too */
	if (c->proof != NULL) {
		up_cancel(c->w->multi, c->proof);
		curl_easy_cleanup(c->proof);
	}
	c->hold->c = NULL;
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* may run hold_cleanup for queued references */
	if (c->hold->refs == 0) {
		al_reader_free(c->hold->rd);
		free(c->hold);
	}
	event_free(c->wake);
	if (c->head != c->small)
		free(c->head);
	free(c->url);
	free(c->fetch_url);
	free(c->icpt_host);
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
	char buf[64 + sizeof(c->cstatus) + 128], *p = buf;
	size_t rl = strlen(reason);

	c->status = status;
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
	} else if (clen < 0 && status != 304 && status != 204 && !c->head_only) {
		if (c->req.minor >= 1)
			c->chunked = 1, p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
		else
			c->keepalive = 0; /* HTTP/1.0: the end of the body is the close */
	}
	if (age >= 0) {
		p = PUT_LIT(p, "Age: ");
		p = PUT_LIT(put_dec(p, (uint64_t)age), "\r\n");
	}
	if (c->cstatus[0]) {
		p = PUT_LIT(p, "Cache-Status: ");
		p = PUT_LIT(put_str(p, c->cstatus, strnlen(c->cstatus, sizeof(c->cstatus) - 1)), "\r\n");
	}
	if (extra) {
		evbuffer_add(o, buf, (size_t)(p - buf));
		evbuffer_add(o, extra, strlen(extra));
		p = buf;
	}
	if (!c->keepalive)
		p = PUT_LIT(p, "Connection: close\r\n");
	else if (c->req.minor == 0)
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
	if (!c->head_only) {
		evbuffer_add(conn_out(c), body, n);
		c->body_sent += (uint64_t)n;
	}
	if (status >= 400)
		c->result = R_ERROR;
	c->state = C_DONE;
}

void conn_reply_error(struct conn *c, int status, const char *why)
{
	if (status >= 400 && status < 500 && status != 404 && status != 405)
		c->keepalive = 0;
	conn_reply_simple(c, status, "text/plain; charset=utf-8", NULL, "%d %s: %s\n",
	    status, http1_reason(status), why);
}

/* RFC 9110 §13: If-None-Match (weak), else If-Modified-Since. */
static int not_modified(struct conn *c, const char *hdrs, size_t hlen)
{
	const char *inm, *ims, *etag, *lm;
	size_t inml, imsl, el, lml;

	inm = http1_field(&c->req, "If-None-Match", &inml);
	if (inm != NULL) {
		etag = al_hdr_get(hdrs, hlen, "ETag", &el);
		return etag != NULL && al_etag_match_weak(inm, inml, etag, el);
	}
	ims = http1_field(&c->req, "If-Modified-Since", &imsl);
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
	c->pos = 0;
	c->end = total >= 0 ? (uint64_t)total : 0;
	c->end_known = total >= 0;
	rv = http1_field(&c->req, "Range", &rvl);
	if (status == 200 && rv != NULL && total >= 0) {
		int use = 1;
		ir = http1_field(&c->req, "If-Range", &irl);
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
			c->pos = first;
			c->end = last + 1;
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
	if (c->head_only || (c->end_known && c->pos == c->end)) {
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

	if (c->w->hot == NULL || c->tls || c->chunked || c->pos >= c->end ||
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
	at = (off_t)(off + c->pos);
	n = sendfile(sock, fd, &at, (size_t)(c->end - c->pos));
	if (n <= 0)
		return;
	c->pos += (uint64_t)n;
	c->body_sent += (uint64_t)n;
	al_count(&c->w->stats.bytes_from_cache, (uint64_t)n);
}

/* Serve a stored record (the reader's snapshot is active). */
static void step_hit(struct conn *c, const struct al_record *rec, int64_t age)
{
	int first = evbuffer_get_length(conn_out(c)) == 0;

	if (c->geoip_overview && rec->status == 200 && conn_geoip_answer(c) == 0)
		return; /* its database urls lead to airlock (geoip.c) */

	if (rec->last_used < (int64_t)time(NULL) - 60)
		worker_touch(c->w, c->key); /* LRU, written in batches; hot entries cost nothing */
	c->follow = 0;
	c->obj_id = rec->obj_id;
	if (begin_response(c, rec->status, rec->hdrs, rec->hdrs_len, (int64_t)rec->body_len, age) == 0) {
		if (first)
			hot_send(c, rec);
		pump(c);
	} else {
		al_reader_end(c->hold->rd);
		event_active(c->wake, EV_READ, 0);
	}
}

/*
 * Move cached bytes into the output by reference until OUT_HIGH is queued,
 * the stored part runs out (a fill: wait for the next commit) or the body
 * ends.
 */
static void pump(struct conn *c)
{
	struct evbuffer *o = conn_out(c);
	struct fill_view v;
	uint64_t avail = c->end;
	int renewed = 0;

	if (c->follow) {
		fill_view(c->fill, &v);
		if (v.state == FILL_FAILED) {
			al_warn("conn", "%s: fill failed mid-body (%s); aborting the response", c->url, v.error);
			conn_close_soon(c); /* never a short response that looks complete */
			return;
		}
		avail = v.committed;
		if (!c->end_known && v.state == FILL_DONE) {
			c->end = (uint64_t)v.content_length;
			c->end_known = 1;
		}
		if (c->end_known && avail > c->end)
			avail = c->end;
		/*
		 * The last byte waits for the commit: a client never receives a
		 * complete body for an object that was not admitted (length or
		 * SHA-512 check failed); it sees the transfer abort instead.
		 */
		if (v.state != FILL_DONE && c->end_known && c->end > 0 && avail >= c->end &&
		    (uint64_t)v.content_length == c->end)
			avail = c->end - 1;
		/*
		 * A follower's first pass takes a small share: with hundreds
		 * joining one fill, each one's first bytes go out before any one
		 * is handed half a megabyte (pump then goes on next turn, after
		 * the others woken with it).
		 */
		if (c->body_sent == 0 && avail > c->pos + FIRST_QUANTUM)
			avail = c->pos + FIRST_QUANTUM;
	}
	while (evbuffer_get_length(o) < OUT_HIGH && c->pos < avail) {
		const void *p;
		size_t n;
		int rc = al_body_at(c->hold->rd, c->obj_id, c->pos, &p, &n);

		if (rc == -ENOENT && c->follow && c->hold->refs == 0 && !renewed) {
			al_reader_end(c->hold->rd); /* the bytes came after our snapshot */
			renewed = 1;
			continue;
		}
		if (rc == -ENOENT && c->follow)
			break; /* wait until our references drain, then renew */
		if (rc != 0) {
			al_warn("conn", "%s: body vanished at %llu (%s); aborting the response", c->url,
			    (unsigned long long)c->pos, strerror(-rc));
			conn_close_soon(c);
			return;
		}
		if (n > avail - c->pos)
			n = (size_t)(avail - c->pos);
		if (c->chunked)
			evbuffer_add_printf(o, "%zx\r\n", n);
		evbuffer_add_reference(o, p, n, hold_cleanup, c->hold);
		c->hold->refs++;
		c->body_sent += n;
		if (c->chunked)
			evbuffer_add(o, "\r\n", 2);
		c->pos += n;
		al_count(&c->w->stats.bytes_from_cache, n);
	}
	if (c->end_known && c->pos >= c->end) {
		if (c->chunked)
			evbuffer_add(o, "0\r\n\r\n", 5);
		c->state = C_DONE;
	}
	conn_write_now(c);
	if (c->hold->refs == 0)
		al_reader_end(c->hold->rd);
	if (c->state == C_DONE && evbuffer_get_length(o) == 0)
		finish(c);
	else if (c->state == C_BODY && evbuffer_get_length(o) < OUT_LOW && c->hold->refs == 0 && c->pos < avail)
		event_active(c->wake, EV_READ, 0); /* the socket took it all: go on next turn */
}

/* ---- pass-through sink: the fill's response may not be stored ---- */

static void sink_head(void *arg, int status, const char *hdrs, size_t len, int64_t clen)
{
	struct conn *c = arg;

	snprintf(c->cstatus, sizeof(c->cstatus), "%s; fwd=%s; fwd-status=%d; detail=not-stored", AL_NAME,
	    c->history == H_REVALIDATING ? "stale" : "miss", status);
	c->result = R_PASS;
	c->end_known = clen >= 0;
	conn_add_head(c, status, hdrs, len, clen, -1, NULL);
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

	if (c->head_only || len == 0)
		return;
	c->body_sent += len;
	if (c->chunked)
		evbuffer_add_printf(conn_out(c), "%zx\r\n", len);
	evbuffer_add(conn_out(c), data, len);
	if (c->chunked)
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
	if (c->chunked && !c->head_only)
		evbuffer_add(conn_out(c), "0\r\n\r\n", 5);
	c->state = C_DONE;
	event_active(c->wake, EV_READ, 0);
}

/* Join (or start) the fill for this key; on_wake takes it from there. */
static void step_fetch(struct conn *c, const char *inm, const char *ims)
{
	struct fetch_params p = {0};
	struct pass_sink sink = {sink_head, sink_full, sink_body, sink_end, c};
	const char *ua;
	char uabuf[512];
	size_t ual;
	int created;

	c->fill = fill_acquire(c->key, c->attempts > 1, &created);
	if (c->fill == NULL) {
		conn_reply_error(c, 503, "out of memory");
		return;
	}
	c->state = C_WAIT;
	if (!created)
		al_count(&c->w->stats.collapsed, 1);
	fill_watch(c->fill, c->wake);
	if (!created)
		return;
	c->origin = 1;
	ua = http1_field(&c->req, "User-Agent", &ual);
	if (ua != NULL && ual < sizeof(uabuf)) {
		memcpy(uabuf, ua, ual);
		uabuf[ual] = '\0';
		p.user_agent = uabuf;
	}
	p.url = c->url;
	p.fetch_url = c->fetch_url;
	p.uplink = c->uplink;
	p.if_none_match = inm;
	p.if_modified_since = ims;
	p.revalidating = c->history == H_REVALIDATING;
	fill_start(c->fill, c->w, &p, &sink);
}

/* The fill changed (or references drained, or a close was asked for). */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct fill_view v;
	size_t rl;

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
	if (c->state != C_WAIT || c->fill == NULL)
		return;
	fill_view(c->fill, &v);
	switch (v.state) {
	case FILL_WAIT:
		return;
	case FILL_STREAM:
	case FILL_DONE:
		/*
		 * A Range needs the length: on an object whose length is not known
		 * yet (a chunked upstream) wait for the end rather than send the
		 * whole body under a 200, which Elasticsearch's ranged model
		 * download (ModelLoaderUtils.HttpStreamChunker) would index as its
		 * range's bytes.
		 */
		if (v.state == FILL_STREAM && v.content_length < 0 && http1_field(&c->req, "Range", &rl) != NULL)
			return;
		/* GeoIP's overview is served rewritten, from the store once it is there (geoip.c) */
		if (c->geoip_overview && v.status == 200) {
			if (v.state == FILL_STREAM)
				return;
			snprintf(c->cstatus, sizeof(c->cstatus), "%s; fwd=%s; fwd-status=%d; stored", AL_NAME,
			    c->history == H_REVALIDATING ? "stale" : "miss", v.status);
			c->result = c->origin ? R_MISS : R_COLLAPSED;
			if (conn_geoip_answer(c) == 0) {
				detach_fill(c);
				return;
			}
		}
		snprintf(c->cstatus, sizeof(c->cstatus), "%s; fwd=%s; fwd-status=%d; stored%s", AL_NAME,
		    c->history == H_REVALIDATING ? "stale" : "miss", v.status, c->origin ? "" : "; collapsed");
		al_count(&c->w->stats.misses, 1);
		c->result = c->origin ? R_MISS : R_COLLAPSED;
		c->follow = 1;
		c->obj_id = v.obj_id;
		if (begin_response(c, v.status, v.hdrs, v.hdrs_len, v.content_length, -1) == 0)
			pump(c);
		else
			event_active(c->wake, EV_READ, 0);
		return;
	case FILL_REFRESHED:
		detach_fill(c);
		c->state = C_WAIT;
		c->history = H_REVALIDATED;
		conn_step_lookup(c);
		return;
	case FILL_PASS:
		if (c->origin)
			return; /* the sink callbacks drive this one */
		detach_fill(c);
		c->attempts++;
		step_fetch(c, NULL, NULL); /* a private fill of our own */
		return;
	case FILL_FAILED:
		detach_fill(c);
		if (v.failure == FAIL_UNREACHABLE || v.failure == FAIL_UPSTREAM_5XX) {
			c->history = H_UPSTREAM_DOWN;
			conn_step_lookup(c); /* serves the stale copy, if there is one */
			return;
		}
		conn_reply_error(c, 502, v.error);
		event_active(c->wake, EV_READ, 0);
		return;
	}
}

/*
 * Decide from the cache, knowing what happened before (c->history):
 * just revalidated (serve what is stored), upstream failed (serve stale or
 * error), or a first look.
 */
void conn_step_lookup(struct conn *c)
{
	struct al_record rec;
	enum conn_history after = c->history;
	int rc, only_cached;
	const char *cc;
	size_t ccl;

	c->history = H_FIRST;
	if (++c->attempts > 4) {
		conn_reply_error(c, 502, "the entry kept changing under this request");
		event_active(c->wake, EV_READ, 0);
		return;
	}
	/* Cache-Control: only-if-cached (RFC 9111 5.2.1.7): answer from the cache or 504, never go upstream. */
	cc = http1_field(&c->req, "Cache-Control", &ccl);
	only_cached = cc != NULL && al_list_has_token(cc, ccl, "only-if-cached");
	/* a bucket's listing while its upstream is offline names only what is cached (offline_listing.c) */
	if ((after == H_UPSTREAM_DOWN || !uplink_online(c->uplink)) && conn_listing_answer(c) == 0)
		return;
	rc = al_lookup(c->hold->rd, c->key, &rec);
	if (rc == 0) {
		const char *path = c->url + c->base_len;
		char pathbuf[2048];
		size_t pl = strcspn(path ? path : "/", "?");
		int64_t lifetime, age;

		snprintf(pathbuf, sizeof(pathbuf), "%.*s", (int)pl, path ? path : "/");
		lifetime = al_freshness_lifetime(srv.cfg, pathbuf, rec.status, rec.hdrs, rec.hdrs_len);
		age = al_current_age(rec.hdrs, rec.hdrs_len, rec.request_time, rec.response_time,
		    rec.age_value, time(NULL));
		if (after == H_REVALIDATED) {
			c->result = R_REVALIDATED;
			snprintf(c->cstatus, sizeof(c->cstatus), "%s; fwd=stale; fwd-status=304", AL_NAME);
			al_count(&c->w->stats.hits, 1);
			step_hit(c, &rec, age);
			return;
		}
		if (rec.flags & AL_REC_STALE)
			lifetime = 0; /* asked to revalidate (mirror) */
		if (lifetime == AL_LIFETIME_FOREVER ||
		    (age < lifetime && !al_must_revalidate(rec.hdrs, rec.hdrs_len))) {
			if (lifetime == AL_LIFETIME_FOREVER)
				snprintf(c->cstatus, sizeof(c->cstatus), "%s; hit", AL_NAME);
			else
				snprintf(c->cstatus, sizeof(c->cstatus), "%s; hit; ttl=%lld", AL_NAME,
				    (long long)(lifetime - age));
			al_count(&c->w->stats.hits, 1);
			c->result = R_HIT;
			step_hit(c, &rec, age);
			return;
		}
		if (after == H_UPSTREAM_DOWN || !uplink_online(c->uplink) || only_cached) {
			c->result = R_STALE;
			/* stale-if-error (RFC 5861): the upstream cannot be reached */
			snprintf(c->cstatus, sizeof(c->cstatus),
			    "%s; hit; ttl=%lld; detail=\"stale: %s\"", AL_NAME, (long long)(lifetime - age),
			    only_cached && uplink_online(c->uplink) ? "only-if-cached" :
			    uplink_forced(c->uplink) ? "upstream offline by configuration" : "upstream unreachable");
			al_count(&c->w->stats.stale, 1);
			step_hit(c, &rec, age);
			return;
		}
		{
			/* Stale: revalidate with the upstream's own validators, if it gave any. */
			char inm[512], ims[64];
			const char *etag, *lm;
			size_t el, ll;
			etag = al_hdr_get(rec.hdrs, rec.hdrs_len, "ETag", &el);
			lm = al_hdr_get(rec.hdrs, rec.hdrs_len, "Last-Modified", &ll);
			snprintf(inm, sizeof(inm), "%.*s", etag && el < sizeof(inm) ? (int)el : 0, etag ? etag : "");
			snprintf(ims, sizeof(ims), "%.*s", lm && ll < sizeof(ims) ? (int)ll : 0, lm ? lm : "");
			al_reader_end(c->hold->rd);
			c->history = H_REVALIDATING;
			step_fetch(c, inm[0] ? inm : NULL, ims[0] ? ims : NULL);
			return;
		}
	}
	al_reader_end(c->hold->rd);
	if (rc != -ENOENT)
		al_warn("conn", "%s: cache lookup failed: %s", c->url, strerror(-rc));
	if ((after == H_UPSTREAM_DOWN || !uplink_online(c->uplink)) && c->registry && conn_registry_answer(c) == 0)
		return;
	if (only_cached) {
		snprintf(c->cstatus, sizeof(c->cstatus), "%s; fwd=miss; detail=only-if-cached", AL_NAME);
		conn_reply_simple(c, 504, "text/plain; charset=utf-8", NULL,
		    "504 Gateway Timeout: %s is not in airlock's cache (only-if-cached)\n", c->url);
		event_active(c->wake, EV_READ, 0);
		return;
	}
	if (after == H_UPSTREAM_DOWN) {
		conn_reply_error(c, 502, "upstream unreachable and nothing cached");
		event_active(c->wake, EV_READ, 0);
		return;
	}
	if (!uplink_online(c->uplink)) {
		snprintf(c->cstatus, sizeof(c->cstatus), "%s; fwd=miss; detail=upstream-offline", AL_NAME);
		conn_reply_simple(c, 504, "text/plain; charset=utf-8", NULL,
		    "504 Gateway Timeout: %s is not in airlock's cache and upstream %s is offline\n",
		    c->url, uplink_name(c->uplink));
		event_active(c->wake, EV_READ, 0);
		return;
	}
	step_fetch(c, NULL, NULL);
}

/* url = base + target; sets the key and the uplink.  Replies and returns -1 on failure. */
int conn_set_url(struct conn *c, const char *base, const char *target, size_t tlen, int registry)
{
	size_t bl = strlen(base);

	/* Kept across requests and grown only: the fill copies what it needs. */
	if (bl + tlen + 1 > c->url_cap) {
		char *buf = realloc(c->url, bl + tlen + 1);

		if (buf == NULL) {
			conn_reply_error(c, 503, "out of memory");
			return -1;
		}
		c->url = buf;
		c->url_cap = bl + tlen + 1;
	}
	memcpy(c->url, base, bl);
	memcpy(c->url + bl, target, tlen);
	c->url[bl + tlen] = '\0';
	c->base_len = bl;
	c->registry = registry;
	free(c->fetch_url);
	c->fetch_url = NULL;
	c->geoip_overview = al_geoip_is_overview(c->url, bl + tlen);
	al_store_key(c->url, bl + tlen, c->key);
	c->uplink = uplink_get(base);
	c->attempts = 0;
	c->history = H_FIRST;
	if (c->uplink == NULL) {
		conn_reply_error(c, 503, "too many distinct upstream hosts");
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
	const struct http_req *r = &c->req;

	c->discard = 0;
	if (!r->chunked && r->content_length <= 0)
		return 0;
	if (r->method == HTTP_CONNECT) {
		c->keepalive = 0;
		conn_reply_error(c, 400, "a CONNECT request must not carry a body");
		return -1;
	}
	if (r->chunked || r->content_length > DISCARD_MAX)
		c->keepalive = 0;
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

/* A complete request head is in c->head: route it. */
static void step_request(struct conn *c)
{
	struct http_req *r = &c->req;

	al_count(&c->w->stats.requests, 1);
	c->t0_us = now_us();
	c->keepalive = !r->close;
	c->head_only = r->method == HTTP_HEAD;
	if (request_body_policy(c) != 0)
		goto done;
	if (r->form == FORM_ORIGIN && r->target_len >= strlen(AL_RESERVED_PREFIX) &&
	    memcmp(r->target, AL_RESERVED_PREFIX, strlen(AL_RESERVED_PREFIX)) == 0) {
		struct evbuffer *body = evbuffer_new();
		const char *ctype = "text/plain", *authz;
		size_t al;
		int status, post = r->method_len == 4 && memcmp(r->method_s, "POST", 4) == 0;
		char h[160];

		c->result = R_ADMIN;
		authz = http1_field(r, "Authorization", &al);
		if (r->method != HTTP_GET && r->method != HTTP_HEAD && !post) {
			evbuffer_free(body);
			conn_reply_simple(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD, POST\r\n", "405 Method Not Allowed\n");
			goto done;
		}
		status = admin_handle(r->target, r->target_len, post,
		    al_admin_allowed(srv.cfg, (struct sockaddr *)&c->sa, authz, authz ? al : 0), body, &ctype);
		snprintf(h, sizeof(h), "Content-Type: %s\r\nCache-Control: no-store\r\n%s", ctype,
		    status == 401 ? "WWW-Authenticate: Bearer realm=\"airlock\"\r\n" : "");
		conn_add_head(c, status, h, strlen(h), (int64_t)evbuffer_get_length(body), -1, NULL);
		c->body_sent = evbuffer_get_length(body);
		if (!c->head_only)
			evbuffer_add_buffer(conn_out(c), body);
		evbuffer_free(body);
		c->state = C_DONE;
		goto done;
	}
	if (c->denied) {
		al_warn("access", "%s: refused, address not in clients.allow", c->peer);
		c->keepalive = 0;
		conn_reply_error(c, 403, "this client address may not use airlock (clients.allow)");
		goto done;
	}
	if (r->method == HTTP_CONNECT || r->form == FORM_ABSOLUTE) {
		if (conn_forward(c) == 0)
			return;
		goto done;
	}
	if (r->form != FORM_ORIGIN) {
		conn_reply_error(c, 400, "bad request target");
		goto done;
	}
	if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
		conn_reply_simple(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
		    "405 Method Not Allowed: airlock serves GET and HEAD\n");
		goto done;
	}
	if (r->content_length > 0 || r->chunked) {
		conn_reply_error(c, 400, "a GET or HEAD request must not carry a body");
		goto done;
	}
	if (al_path_check(r->target, r->target_len) != 0) {
		conn_reply_error(c, 400, "request path with dot segments, encoded slashes or control bytes");
		goto done;
	}
	if (c->icpt_host != NULL) {
		/* Inside an intercepted tunnel: the key is https://host[:port]/path. */
		char base[300];
		if (c->icpt_port == 443)
			snprintf(base, sizeof(base), "https://%s", c->icpt_host);
		else
			snprintf(base, sizeof(base), "https://%s:%d", c->icpt_host, c->icpt_port);
		if (conn_set_url(c, base, r->target, r->target_len, conn_forward_registry(c->icpt_host, c->icpt_port)) != 0)
			goto done;
		conn_step_lookup(c);
		return;
	}
	{
		const struct al_route *route = al_route_find(srv.cfg, r->target, r->target_len);
		if (route == NULL) {
			conn_reply_error(c, 404, "no route for this path");
			goto done;
		}
		char *path = malloc(r->target_len + 2); /* strip_prefix routes change the path */
		int rc, n = path ? al_route_path(route, r->target, r->target_len, path, r->target_len + 2) : -ENOMEM;
		if (n < 0) {
			free(path);
			conn_reply_error(c, 503, "out of memory");
			goto done;
		}
		rc = conn_set_url(c, route->upstream, path, (size_t)n, route->registry);
		free(path);
		if (rc != 0)
			goto done;
		conn_geoip_resolve(c);
	}
	conn_step_lookup(c);
	return;
done:
	event_active(c->wake, EV_READ, 0);
}
const char *const al_result_names[R_COUNT] = {"hit", "stale", "revalidated", "miss", "collapsed",
	"pass", "error", "admin", "tunnel", "intercept"};

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
	int st = c->status;

	al_count(&c->w->stats.by_status[st >= 100 && st < 600 ? st : 0], 1);
	al_count(&c->w->stats.by_result[c->result], 1);
	memset(&rr, 0, sizeof(rr));
	rr.t_us = now_us();
	if (c->result != R_ADMIN && c->result != R_TUNNEL && c->result != R_INTERCEPT)
		al_count_minute(c->w, rr.t_us, c->result == R_HIT || c->result == R_STALE || c->result == R_REVALIDATED);
	snprintf(rr.method, sizeof(rr.method), "%.*s", (int)(c->req.method_len < 7 ? c->req.method_len : 7), c->req.method_s ? c->req.method_s : "");
	snprintf(rr.url, sizeof(rr.url), "%.*s", (int)(c->req.target_len < 159 ? c->req.target_len : 159), c->req.target ? c->req.target : "");
	rr.status = st;
	rr.result = c->result;
	recent_add(c->w, &rr);
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
		    (long long)(now_us() - c->t0_us) * 1000, c->peer, c->req.minor);
		json_escaped(o, c->req.method_s ? c->req.method_s : "", c->req.method_len);
		if (c->result == R_TUNNEL)
			evbuffer_add_printf(o, "\",\"body\":{\"bytes\":%llu}", (unsigned long long)c->req_body_bytes);
		else
			evbuffer_add(o, "\"", 1);
		evbuffer_add_printf(o, "},\"response\":{\"status_code\":%d,\"body\":{\"bytes\":%llu}}},"
		    "\"url\":{\"original\":\"", st, (unsigned long long)c->body_sent);
		json_escaped(o, c->req.target ? c->req.target : "", c->req.target_len);
		evbuffer_add_printf(o, "\"},\"user_agent\":{\"original\":\"");
		ua = http1_field(&c->req, "User-Agent", &ual);
		json_escaped(o, ua ? ua : "", ua ? ual : 0);
		evbuffer_add_printf(o, "\"},\"airlock\":{\"cache_status\":\"");
		json_escaped(o, c->cstatus, strlen(c->cstatus));
		evbuffer_add_printf(o, "\",\"result\":\"%s\",\"upstream\":\"%s\"}}\n", al_result_names[c->result],
		    c->uplink ? uplink_name(c->uplink) : "");
		len = evbuffer_get_length(o);
		line = (char *)evbuffer_pullup(o, -1);
		al_access_write(line, len);
		evbuffer_free(o);
	}
	al_debug("access", "%s \"%.*s %.*s\" %d %lldus cache-status=\"%s\"", c->peer,
	    (int)c->req.method_len, c->req.method_s, (int)c->req.target_len, c->req.target,
	    c->status, (long long)(now_us() - c->t0_us), c->cstatus);
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
	if (c->w->draining)
		c->keepalive = 0;
	if (!c->keepalive && !c->tls) {
		linger(c);
		return;
	}
	if (!c->keepalive && c->w->draining) {
		conn_free(c);
		return;
	}
	if (!c->keepalive) {
		/*
		 * TLS (listener or interception): a raw shutdown would cut the
		 * encrypted reply still queued below the TLS layer.  Parse nothing
		 * more (what follows may be an unread body), drain, and wait for
		 * the client to close, at most the linger time.
		 */
		struct timeval tv = {2, 0};
		struct evbuffer *in = bufferevent_get_input(c->bev);
		c->state = C_LINGER;
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_set_timeouts(c->bev, &tv, NULL);
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	c->state = C_HEAD;
	c->cstatus[0] = '\0';
	c->chunked = c->follow = c->end_known = 0;
	c->status = 0;
	c->body_sent = 0;
	c->result = R_MISS;
	c->uplink = NULL;
	conn_set_head_timeout(c, srv.cfg->client_idle_timeout_ms);
	bufferevent_enable(c->bev, EV_READ);
	try_parse(c);
}

static void try_parse(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct http_limits lim = {srv.cfg->client_max_header_bytes, (int)srv.cfg->client_max_headers};
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
		int64_t left = srv.cfg->client_header_timeout_ms - (now_us() - c->head_start_us) / 1000;
		conn_set_head_timeout(c, left > 1 ? left : 1);
	}
	take = len > lim.max_head ? lim.max_head : len;
	p = (const char *)evbuffer_pullup(in, take);
	rc = http1_parse_request(p, take, &lim, &c->req);
	if (rc == 0 && len >= lim.max_head)
		rc = -431;
	if (rc == 0)
		return;
	if (rc < 0) {
		memset(&c->req, 0, sizeof(c->req));
		c->req.minor = 1;
		c->keepalive = 0;
		c->t0_us = now_us();
		bufferevent_disable(c->bev, EV_READ);
		conn_reply_error(c, -rc, rc == -431 ? "request head too large" :
		    rc == -414 ? "request line too long" : "malformed request");
		event_active(c->wake, EV_READ, 0);
		return;
	}
	/* Keep the head stable (the input buffer moves on): copy, then re-point. */
	if (c->head != c->small)
		free(c->head);
	c->head = (size_t)rc <= sizeof(c->small) ? c->small : malloc((size_t)rc);
	if (c->head == NULL) {
		c->head = c->small;
		conn_close_soon(c);
		return;
	}
	memcpy(c->head, p, (size_t)rc);
	c->head_len = (size_t)rc;
	http1_rebase(&c->req, p, c->head); /* before the drain: p is still the input's */
	c->head_start_us = 0;
	evbuffer_drain(in, (size_t)rc);
	conn_set_head_timeout(c, 0);
	c->state = C_WAIT;
	step_request(c);
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
	else if (c->state == C_PASS && c->fill != NULL)
		fill_pass_resume(c->fill);
	else if (c->state == C_DONE && evbuffer_get_length(conn_out(c)) == 0)
		finish(c);
}

void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return; /* the interception handshake finished */
	al_debug("conn", "%s: connection event 0x%x in state %d%s", c->peer, what, c->state,
	    c->icpt_host ? " (intercepted)" : "");
	if (c->state == C_LINGER) {
		conn_free(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state != C_HEAD && !(what & BEV_EVENT_WRITING)) {
		/* Half-close after a request: finish the response, then close. */
		c->keepalive = 0;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->state == C_HEAD &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		c->keepalive = 0;
		memset(&c->req, 0, sizeof(c->req));
		c->req.minor = 1;
		bufferevent_disable(bev, EV_READ);
		conn_reply_error(c, 408, "request head not received in time");
		event_active(c->wake, EV_READ, 0);
		return;
	}
	conn_free(c);
}

void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen, void *ssl)
{
	struct conn *c;

	if (atomic_load(&srv.clients) >= srv.cfg->max_connections) {
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
	c->head = c->small;
	c->hold = calloc(1, sizeof(*c->hold));
	if (ssl != NULL) {
		c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		c->tls = 1;
	} else {
		c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	c->wake = event_new(w->base, -1, 0, on_wake, c);
	if (c->hold == NULL || c->bev == NULL || c->wake == NULL || al_reader_new(srv.store, &c->hold->rd) != 0) {
		al_warn("conn", "cannot set up a client connection (out of memory or LMDB readers)");
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
	c->denied = !al_client_allowed(srv.cfg, sa);
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
	bufferevent_setwatermark(c->bev, EV_READ, 0, srv.cfg->client_max_header_bytes + 4096);
	/* libevent writes 16 KiB per syscall by default: let one writev take what is queued. */
	bufferevent_set_max_single_write(c->bev, OUT_HIGH);
	conn_set_head_timeout(c, srv.cfg->client_header_timeout_ms);
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
			c->keepalive = 0;
	}
}

void conn_close_all(struct worker *w)
{
	while (w->conns != NULL)
		conn_free(w->conns);
}

static void recent_add(struct worker *w, const struct al_recent *r)
{
	pthread_mutex_lock(&w->recent_mu);
	w->recent[w->recent_next] = *r;
	w->recent_next = (w->recent_next + 1) % AL_RECENT;
	if (w->recent_n < AL_RECENT)
		w->recent_n++;
	pthread_mutex_unlock(&w->recent_mu);
}

static int by_time_desc(const void *a, const void *b)
{
	const struct al_recent *x = a, *y = b;

	return x->t_us < y->t_us ? 1 : x->t_us > y->t_us ? -1 : 0;
}

void al_count_minute(struct worker *w, int64_t t_us, int hit)
{
	struct al_minutes *mb = &w->minutes;
	int64_t m = t_us / 60000000;
	int slot = (int)(m % AL_MINUTES);

	if (atomic_load_explicit(&mb->minute[slot], memory_order_relaxed) != m) {
		atomic_store_explicit(&mb->requests[slot], 0, memory_order_relaxed);
		atomic_store_explicit(&mb->hits[slot], 0, memory_order_relaxed);
		atomic_store_explicit(&mb->minute[slot], m, memory_order_release);
	}
	al_count(&mb->requests[slot], 1);
	if (hit)
		al_count(&mb->hits[slot], 1);
}

void al_counters_sum(struct al_counters *out)
{
	atomic_uint_fast64_t *o = (atomic_uint_fast64_t *)out;
	const size_t n = sizeof(*out) / sizeof(*o);

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < srv.nworkers; k++) {
		const atomic_uint_fast64_t *v = (const atomic_uint_fast64_t *)&srv.workers[k].stats;
		for (size_t i = 0; i < n; i++)
			atomic_store_explicit(&o[i], atomic_load_explicit(&o[i], memory_order_relaxed) +
			    atomic_load_explicit(&v[i], memory_order_relaxed), memory_order_relaxed);
	}
}

void al_minutes(int n, uint64_t *requests, uint64_t *hits)
{
	int64_t now = now_us() / 60000000;

	*requests = *hits = 0;
	for (int k = 0; k < srv.nworkers; k++) {
		struct al_minutes *mb = &srv.workers[k].minutes;
		for (int i = 0; i < AL_MINUTES; i++) {
			int64_t m = atomic_load_explicit(&mb->minute[i], memory_order_acquire);
			if (m > now - n && m <= now) {
				*requests += (uint64_t)atomic_load_explicit(&mb->requests[i], memory_order_relaxed);
				*hits += (uint64_t)atomic_load_explicit(&mb->hits[i], memory_order_relaxed);
			}
		}
	}
}

int al_recent_get(struct al_recent *conn_out)
{
	struct al_recent *all = calloc((size_t)srv.nworkers * AL_RECENT, sizeof(*all));
	int n = 0;

	if (all == NULL)
		return 0;
	for (int i = 0; i < srv.nworkers; i++) {
		struct worker *w = &srv.workers[i];
		pthread_mutex_lock(&w->recent_mu);
		for (int k = 0; k < w->recent_n; k++)
			all[n++] = w->recent[(w->recent_next - 1 - k + AL_RECENT) % AL_RECENT];
		pthread_mutex_unlock(&w->recent_mu);
	}
	qsort(all, (size_t)n, sizeof(*all), by_time_desc);
	if (n > AL_RECENT)
		n = AL_RECENT;
	memcpy(conn_out, all, (size_t)n * sizeof(*conn_out));
	free(all);
	return n;
}
