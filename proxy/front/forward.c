/*
 * The forward proxy: CONNECT and absolute-form requests (Kibana's
 * registryProxyUrl, agent.download.proxy_url, HTTPS_PROXY).  Client and
 * proxy authentication first (a password not remembered is checked on the
 * login thread, login.c, and this step runs again), then the allow-list decides: intercept (TLS
 * with a minted certificate once the upstream proved its name; the inner
 * requests go through conn.c's steps, keyed https://host/path), tunnel
 * (blind relay, tunnel.c) or 403.  Each stage is a step run by conn.c's
 * req_run:
 *
 *   FORWARD -+-> TUNNEL                             (the relay owns the socket)
 *            +-> PROVE ... proof_done -> PROVED -+-> INTERCEPT  (the session reads TLS)
 *            +-----------------------------------+   (or DONE: 502, 503)
 *            +-> LOOKUP                          (absolute form: served like a route)
 *            +-> DONE                            (407, 403, 400, 405)
 */
#include "policy/access.h"
#include "policy/route.h"
#include "proxy/front/conn_impl.h"
#include "proxy/runtime/log.h"
#include "proxy/front/tls.h"
#include "proxy/front/tunnel.h"
#include "proxy/fetch/upstream.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int conn_forward_registry(const struct al_config *cfg, const char *host, int port)
{
	const char *why;
	const struct al_forward_rule *rule = al_forward_find(cfg, host, strlen(host), port, &why);

	return rule ? rule->registry : 0;
}

/* Split "host:port" (CONNECT) or the authority of an absolute URL. */
static int split_authority(const char *a, size_t n, int defport, char *host, size_t hcap, int *port)
{
	const char *colon = NULL;
	size_t hl;

	if (n > 0 && a[0] == '[') {
		const char *rb = memchr(a, ']', n);
		if (rb == NULL)
			return -1;
		hl = (size_t)(rb - a - 1);
		if (hl == 0 || hl >= hcap)
			return -1;
		memcpy(host, a + 1, hl);
		colon = (rb + 1 < a + n && rb[1] == ':') ? rb + 1 : NULL;
		if (!colon && rb + 1 != a + n)
			return -1;
	} else {
		colon = memchr(a, ':', n);
		hl = colon ? (size_t)(colon - a) : n;
		if (hl == 0 || hl >= hcap)
			return -1;
		memcpy(host, a, hl);
	}
	host[hl] = '\0';
	for (size_t i = 0; i < hl; i++) {
		if (!(isalnum((unsigned char)host[i]) || host[i] == '.' || host[i] == '-' || host[i] == ':'))
			return -1;
		host[i] = (char)tolower((unsigned char)host[i]);
	}
	*port = defport;
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (end != a + n || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return 0;
}

/*
 * The intercepted TLS straight on the client's socket, as on the HTTPS
 * listener (issue 33): airlock's TLS writer (tls.h) then writes each
 * response as one record in one write(2), where libevent's filter over the
 * socket bufferevent made a record per chunk and wrote them a loop turn
 * later.  Only when the CONNECT's 200 is all written and nothing of the
 * client's is read past the CONNECT (a client that sent its ClientHello
 * before the 200 keeps the filter, which reads it from the socket
 * bufferevent's input): the socket bufferevent then holds no bytes and no
 * cache references, and is freed keeping its socket (a dup).  NULL: the
 * caller keeps the socket bufferevent and layers the filter on it, and
 * still owns ssl.
 */
static struct bufferevent *tls_on_socket(struct conn *c, SSL *ssl)
{
	struct bufferevent *tls;
	evutil_socket_t fd;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return NULL;
	fd = dup(bufferevent_getfd(c->bev));
	if (fd < 0)
		return NULL;
	if (evutil_make_socket_nonblocking(fd) != 0 ||
	    (tls = bufferevent_openssl_socket_new(c->w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return NULL;
	}
	bufferevent_free(c->bev); /* closes its descriptor; the socket stays open through fd */
	bufferevent_set_max_single_write(tls, OUT_HIGH);
	return tls;
}

/*
 * The step STP_INTERCEPT: answer the CONNECT and terminate the client's TLS
 * with a certificate minted for its host (policy: intercept).  The CONNECT
 * is logged here; the session then reads the requests inside the TLS, which
 * go through the steps keyed https://host/path (STP_ROUTE).  STP_DONE when
 * no certificate can be made (502).
 */
enum req_step stp_intercept(struct req *r)
{
	struct conn *c = r->conn;
	const char *host = r->proof_host;
	int port = r->proof_port;
	struct bufferevent *tls;
	SSL *ssl = tls_intercept_ssl(host);

	if (ssl == NULL) {
		conn_reply_error(c, 502, "cannot make an interception certificate for this host");
		return STP_DONE;
	}
	al_debug("access", "%s%s%s: CONNECT %s:%d intercepted", c->peer, r->proof_user[0] ? " user " : "",
	    r->proof_user, host, port);
	r->result = R_INTERCEPT;
	r->status = 200;
	conn_access_log(c);
	if (c->tw != NULL) {
		/* a CONNECT to the HTTPS listener: the inner TLS writes through the outer bufferevent (tw is empty) */
		tls_writer_free(c->tw);
		c->tw = NULL;
	}
	evbuffer_add_printf(conn_out(c), "HTTP/1.1 200 Connection established\r\n\r\n");
	conn_write_now(c);
	if (!c->tls && (tls = tls_on_socket(c, ssl)) != NULL) {
		c->bev = tls;
		c->tw = tls_writer_new(c->bev, OUT_LOW, conn_on_tls_writer, c);
		if (c->tw == NULL) {
			conn_close_soon(c);
			return STP_PARK;
		}
	} else {
		bufferevent_enable(c->bev, EV_READ | EV_WRITE); /* the TLS layer writes through it */
		tls = bufferevent_openssl_filter_new(c->w->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (tls == NULL) {
			SSL_free(ssl);
			conn_close_soon(c);
			return STP_PARK;
		}
		c->bev = tls;
	}
	c->tls = 1;
	free(c->icpt_host);
	c->icpt_host = strdup(host);
	c->icpt_port = port;
	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_setwatermark(c->bev, EV_READ, 0, r->conf->cfg->client_max_header_bytes + 4096);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = C_HEAD;
	r->keepalive = 1;
	conn_set_head_timeout(c, r->conf->cfg->client_header_timeout_ms);
	return STP_PARK;
}

/* curl ended the handshake STP_PROVE started: the request goes on at STP_PROVED. */
static void proof_done(CURL *easy, CURLcode res, int local_errno, void *arg)
{
	struct conn *c = arg;

	c->rq.proof = NULL;
	curl_easy_cleanup(easy);
	c->rq.proof_res = res;
	req_run(&c->rq, STP_PROVED);
}

/*
 * The step STP_PROVED: what the handshake with the upstream showed.  Its
 * certificate verified: the host is remembered as proven (tls.c), and
 * STP_INTERCEPT.  It did not verify: 502, and no certificate is minted for
 * a host that could not prove its name.  Anything else means the upstream
 * is out of reach: it is marked offline and the CONNECT intercepted all the
 * same, so that the cache answers the requests inside.
 */
enum req_step stp_proved(struct req *r)
{
	CURLcode res = r->proof_res;
	const char *h = r->proof_host;
	int port = r->proof_port;
	char base[300], why[200];
	struct uplink *u;

	if (res == CURLE_OK) {
		tls_upstream_prove(h, port);
		return STP_INTERCEPT;
	}
	if (res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_SSL_CACERT_BADFILE ||
	    res == CURLE_SSL_CERTPROBLEM || res == CURLE_SSL_ISSUER_ERROR || res == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
		al_warn("tls", "%s:%d did not prove its identity (%s): CONNECT refused, no certificate minted",
		    h, port, curl_easy_strerror(res));
		r->keepalive = 0;
		conn_reply_error(r->conn, 502, "the upstream could not prove it is this host (TLS verification failed)");
		return STP_DONE;
	}
	snprintf(base, sizeof(base), port == 443 ? "https://%s" : "https://%s:%d", h, port);
	snprintf(why, sizeof(why), "CONNECT proof: %s", curl_easy_strerror(res));
	if ((u = uplink_get(base)) != NULL)
		uplink_failed(u, why);
	return STP_INTERCEPT;
}

/*
 * The step STP_PROVE: a verified TLS handshake with the upstream, before a
 * certificate for its name is minted; the request parks and proof_done
 * re-enters it at STP_PROVED.  An upstream already offline is not tried,
 * nor one whose handshake cannot be started: STP_INTERCEPT, so that the
 * cache answers.
 */
enum req_step stp_prove(struct req *r)
{
	struct conn *c = r->conn;
	const char *host = r->proof_host;
	int port = r->proof_port;
	char url[320], base[300];
	struct uplink *u;

	snprintf(base, sizeof(base), port == 443 ? "https://%s" : "https://%s:%d", host, port);
	u = uplink_get(base);
	if (u != NULL && !uplink_online(u))
		return STP_INTERCEPT; /* offline: the cache answers */
	snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%d/" : "https://%s:%d/", host, port);
	r->proof = up_easy_new(r->conf->cfg, &r->conf->connect_to);
	if (r->proof == NULL) {
		conn_reply_error(c, 503, "out of memory");
		return STP_DONE;
	}
	curl_easy_setopt(r->proof, CURLOPT_URL, url);
	curl_easy_setopt(r->proof, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(r->proof, CURLOPT_TIMEOUT_MS, (long)r->conf->cfg->first_byte_timeout_ms);
	if (up_start(c->w->multi, r->proof, proof_done, c) != 0) {
		curl_easy_cleanup(r->proof);
		r->proof = NULL;
		return STP_INTERCEPT;
	}
	c->state = C_WAIT;
	return STP_PARK;
}

/* The route whose upstream is scheme://host[:port], or NULL. */
static const struct al_route *route_for(const struct al_config *cfg, int https, const char *host, int port)
{
	char base[300];

	if (port == (https ? 443 : 80))
		snprintf(base, sizeof(base), "%s://%s", https ? "https" : "http", host);
	else
		snprintf(base, sizeof(base), "%s://%s:%d", https ? "https" : "http", host, port);
	for (int i = 0; i < cfg->nroutes; i++)
		if (strcasecmp(cfg->routes[i].upstream, base) == 0)
			return &cfg->routes[i];
	return NULL;
}

/*
 * The tunnel ended: its access-log line now, with the bytes relayed each
 * way and the tunnel's whole duration (as Squid logs CONNECT), then the
 * connection goes.
 */
static void tunnel_closed(void *arg, int status, uint64_t client_to_target, uint64_t target_to_client)
{
	struct conn *c = arg;

	c->tunnel = NULL;
	c->rq.status = status;
	c->rq.body_sent = target_to_client;
	c->rq.req_body_bytes = client_to_target;
	conn_access_log(c);
	conn_close_soon(c);
}

/*
 * The allow-list's rule for host:port, or a reverse route's when a child
 * airlock (upstream.parents) asks in absolute form for the canonical URL of
 * a host this airlock serves through its routes: served like the route,
 * under the same cache key (*scratch holds that rule).  NULL: denied, why says so.
 */
static const struct al_forward_rule *forward_rule(const struct req *r, int https, const char *host, int port,
    struct al_forward_rule *scratch, const char **why)
{
	const struct al_forward_rule *rule = al_forward_find(r->conf->cfg, host, strlen(host), port, why);
	const struct al_route *route;

	if (rule == NULL && r->http.form == FORM_ABSOLUTE &&
	    (route = route_for(r->conf->cfg, https, host, port)) != NULL) {
		memset(scratch, 0, sizeof(*scratch));
		scratch->registry = route->registry;
		rule = scratch;
	}
	return rule;
}

/*
 * The step STP_TUNNEL: a CONNECT to a host the allow-list tunnels: the
 * socket goes to a blind relay (tunnel.c), whose end logs the request and
 * closes the session (tunnel_closed).
 */
enum req_step stp_tunnel(struct req *r)
{
	struct conn *c = r->conn;
	struct bufferevent *bev = c->bev;

	al_info("access", "%s%s%s: CONNECT %s:%d tunnel", c->peer, r->user[0] ? " user " : "", r->user,
	    r->proof_host, r->proof_port);
	r->result = R_TUNNEL;
	c->state = C_TUNNEL;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	c->bev = NULL;
	c->tunnel = tunnel_start(c->w, r->conf->cfg, bev, r->proof_host, r->proof_port, tunnel_closed, c);
	if (c->tunnel == NULL)
		conn_close_soon(c);
	return STP_PARK;
}

/*
 * A CONNECT to an allowed host: a blind tunnel, or interception, after
 * proving the upstream unless that is known or not ours to do.
 */
static enum req_step forward_connect(struct req *r, const struct al_forward_rule *rule, const char *host, int port)
{
	snprintf(r->proof_host, sizeof(r->proof_host), "%s", host);
	r->proof_port = port;
	if (rule->mode == AL_FWD_TUNNEL)
		return STP_TUNNEL;
	snprintf(r->proof_user, sizeof(r->proof_user), "%s", r->user);
	/* a child reaches upstreams only through its parents, which verify them */
	if (r->conf->cfg->offline || r->conf->cfg->nparents > 0 || tls_upstream_proven(host, port))
		return STP_INTERCEPT;
	return STP_PROVE;
}

/* Absolute form: served through the same cache as reverse routes. */
static enum req_step forward_absolute(struct req *r, const struct al_forward_rule *rule, int https,
    const char *host, int port, const char *path)
{
	struct conn *c = r->conn;
	const struct http_req *h = &r->http;
	size_t plen = (size_t)(h->target + h->target_len - path);
	char base[300];

	if (h->method != HTTP_GET && h->method != HTTP_HEAD) {
		conn_reply_simple(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
		    "405 Method Not Allowed: airlock forwards GET and HEAD\n");
		return STP_DONE;
	}
	if (h->content_length > 0 || h->chunked) {
		conn_reply_error(c, 400, "a GET or HEAD request must not carry a body");
		return STP_DONE;
	}
	if (plen == 0) {
		path = "/";
		plen = 1;
	}
	if (al_path_check(path, plen) != 0) {
		conn_reply_error(c, 400, "request path with dot segments, encoded slashes or control bytes");
		return STP_DONE;
	}
	if (port == (https ? 443 : 80))
		snprintf(base, sizeof(base), "%s://%s", https ? "https" : "http", host);
	else
		snprintf(base, sizeof(base), "%s://%s:%d", https ? "https" : "http", host, port);
	if (req_set_url(r, base, path, plen, rule->registry) != 0)
		return STP_DONE;
	return STP_LOOKUP;
}

/*
 * The step STP_FORWARD: CONNECT and absolute-form requests.  Client and
 * proxy authentication first (a password not remembered is checked on the
 * login thread, login.c, and this step runs again), then the allow-list decides: intercept (TLS
 * with a minted certificate, inner requests served through the cache),
 * tunnel (blind relay), or 403.
 */
enum req_step stp_forward(struct req *r)
{
	struct conn *c = r->conn;
	const struct http_req *h = &r->http;
	const struct al_forward_rule *rule;
	struct al_forward_rule scratch;
	const char *why, *auth, *authority = h->target;
	size_t alen, authority_len = h->target_len;
	char host[256], user[64];
	struct al_login login;
	int port, https = 0, ok;

	auth = http1_field(h, "Proxy-Authorization", &alen);
	if (r->login != 0) { /* checked on the login thread (login.c); this step runs again */
		ok = r->login > 0;
		snprintf(user, sizeof(user), "%s", ok ? r->user : "");
	} else if ((ok = al_proxy_auth_begin(r->conf->cfg, auth, auth ? alen : 0, user, sizeof(user), &login)) ==
	    AL_LOGIN_CHECK) {
		snprintf(r->user, sizeof(r->user), "%s", user);
		ok = conn_login_check(r, &login);
		OPENSSL_cleanse(&login, sizeof(login));
		if (ok > 0)
			return STP_PARK;
		conn_login_busy(r);
		return STP_DONE;
	}
	if (!ok) {
		r->user[0] = '\0';
		al_warn("access", "%s: proxy authentication %s for %.*s", c->peer, auth ? "failed" : "missing",
		    (int)h->target_len, h->target);
		conn_reply_simple(c, 407, "text/plain; charset=utf-8",
		    "Proxy-Authenticate: Basic realm=\"airlock\", charset=\"UTF-8\"\r\n",
		    "407 Proxy Authentication Required\n");
		return STP_DONE;
	}
	snprintf(r->user, sizeof(r->user), "%s", user); /* the access log's user.name */
	if (h->form == FORM_ABSOLUTE) {
		https = h->target[4] == 's' || h->target[4] == 'S';
		authority = h->target + (https ? 8 : 7);
		authority_len = strcspn(authority, "/?#");
		if (authority + authority_len > h->target + h->target_len)
			authority_len = (size_t)(h->target + h->target_len - authority);
	}
	if (split_authority(authority, authority_len, https || h->method == HTTP_CONNECT ? 443 : 80,
	    host, sizeof(host), &port) != 0) {
		conn_reply_error(c, 400, "bad host in the request target");
		return STP_DONE;
	}
	rule = forward_rule(r, https, host, port, &scratch, &why);
	if (rule == NULL && https && h->method != HTTP_CONNECT) {
		/* a GeoIP database by its signed URL (a child airlock): served under its stable key */
		int g = conn_geoip_signed(r);
		if (g >= 0)
			return g == 0 ? STP_LOOKUP : STP_DONE;
	}
	if (rule == NULL) {
		al_warn("access", "%s%s%s: denied %s %s:%d (%s)", c->peer, user[0] ? " user " : "", user,
		    h->method == HTTP_CONNECT ? "CONNECT" : "request for", host, port, why);
		r->keepalive = 0;
		conn_reply_error(c, 403, why[0] == 'p' ? "airlock does not allow this port for this host (forward.allow)"
		    : "airlock's egress policy does not allow this host (forward.allow)");
		return STP_DONE;
	}
	if (h->method == HTTP_CONNECT)
		return forward_connect(r, rule, host, port);
	return forward_absolute(r, rule, https, host, port, authority + authority_len);
}
