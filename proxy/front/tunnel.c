#include "proxy/front/tunnel.h"
#include "proxy/runtime/log.h"

#include <event2/buffer.h>
#include <event2/dns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RELAY_HIGH (256 * 1024)

struct tunnel {
	struct bufferevent *c, *u;
	int connected;
	int closing;             /* one side ended: flush the other, then free */
	char target[300];
	uint64_t up_bytes, down_bytes;
	tunnel_done_fn done;
	void *arg;
};

static void tunnel_free(struct tunnel *t)
{
	if (t->done != NULL)
		t->done(t->arg, t->connected ? 200 : 502, t->up_bytes, t->down_bytes);
	bufferevent_free(t->c);
	if (t->u)
		bufferevent_free(t->u);
	free(t);
}

static struct bufferevent *partner(struct tunnel *t, struct bufferevent *b)
{
	return b == t->c ? t->u : t->c;
}

static void relay(struct tunnel *t, struct bufferevent *from)
{
	struct bufferevent *to = partner(t, from);
	struct evbuffer *out = bufferevent_get_output(to);
	size_t n = evbuffer_get_length(bufferevent_get_input(from));

	if (to == NULL)
		return;
	*(from == t->c ? &t->up_bytes : &t->down_bytes) += n;
	evbuffer_add_buffer(out, bufferevent_get_input(from));
	if (evbuffer_get_length(out) >= RELAY_HIGH)
		bufferevent_disable(from, EV_READ); /* resumed by to's write callback */
}

static void on_read(struct bufferevent *b, void *arg)
{
	struct tunnel *t = arg;

	if (t->connected)
		relay(t, b);
}

static void on_write(struct bufferevent *b, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *from = partner(t, b);

	if (t->closing) {
		if (evbuffer_get_length(bufferevent_get_output(b)) == 0)
			tunnel_free(t);
		return;
	}
	if (from != NULL && t->connected)
		bufferevent_enable(from, EV_READ);
}

static void on_event(struct bufferevent *b, short what, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *other;

	if (what & BEV_EVENT_CONNECTED) {
		t->connected = 1;
		evbuffer_add_printf(bufferevent_get_output(t->c), "HTTP/1.1 200 Connection established\r\n\r\n");
		relay(t, t->c); /* bytes the client sent early */
		bufferevent_enable(t->c, EV_READ | EV_WRITE);
		bufferevent_enable(t->u, EV_READ | EV_WRITE);
		return;
	}
	if (!t->connected) {
		int err = EVUTIL_SOCKET_ERROR();
		const char *why = bufferevent_socket_get_dns_error(b) ?
		    evutil_gai_strerror(bufferevent_socket_get_dns_error(b)) : evutil_socket_error_to_string(err);
		char body[400];
		int n = snprintf(body, sizeof(body), "502 Bad Gateway: cannot reach %s: %s\n", t->target, why);
		al_warn("tunnel", "CONNECT %s failed: %s", t->target, why);
		evbuffer_add_printf(bufferevent_get_output(t->c),
		    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
		    "Connection: close\r\n\r\n%s", n, body);
		bufferevent_free(t->u);
		t->u = NULL;
		t->closing = 1;
		bufferevent_disable(t->c, EV_READ);
		bufferevent_setwatermark(t->c, EV_WRITE, 0, 0);
		bufferevent_enable(t->c, EV_WRITE);
		return;
	}
	/* One side is done: pass on what it sent, then close once the other has it. */
	other = partner(t, b);
	relay(t, b);
	bufferevent_disable(b, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		tunnel_free(t);
		return;
	}
	t->closing = 1;
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
	bufferevent_disable(other, EV_READ);
}

void tunnel_abort(struct tunnel *t)
{
	t->done = NULL;
	tunnel_free(t);
}

struct tunnel *tunnel_start(struct worker *w, const struct al_config *cfg, struct bufferevent *client, const char *host, int port,
    tunnel_done_fn done, void *arg)
{
	struct tunnel *t = calloc(1, sizeof(*t));
	char key[300], ahost[256];
	int aport = port, rc;
	struct timeval idle = {cfg->client_idle_timeout_ms / 1000, 0};

	if (t == NULL) {
		bufferevent_free(client);
		return NULL;
	}
	t->c = client;
	snprintf(t->target, sizeof(t->target), "%s:%d", host, port);
	snprintf(ahost, sizeof(ahost), "%s", host);
	snprintf(key, sizeof(key), "%s:%d", host, port);
	for (int i = 0; i < cfg->nresolve; i++) {
		if (strcasecmp(cfg->resolve[i].from, key) == 0) {
			const char *colon = strrchr(cfg->resolve[i].to, ':');
			snprintf(ahost, sizeof(ahost), "%.*s", (int)(colon - cfg->resolve[i].to), cfg->resolve[i].to);
			aport = atoi(colon + 1);
		}
	}
	t->u = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (t->u == NULL) {
		tunnel_free(t);
		return NULL;
	}
	t->done = done;
	t->arg = arg;
	bufferevent_setcb(t->c, on_read, on_write, on_event, t);
	bufferevent_setcb(t->u, on_read, on_write, on_event, t);
	bufferevent_setwatermark(t->c, EV_WRITE, RELAY_HIGH / 2, 0);
	bufferevent_setwatermark(t->u, EV_WRITE, RELAY_HIGH / 2, 0);
	bufferevent_setwatermark(t->c, EV_READ, 0, 0);
	bufferevent_set_timeouts(t->c, &idle, NULL);
	bufferevent_set_timeouts(t->u, &idle, NULL);
	bufferevent_disable(t->c, EV_READ);
	al_debug("tunnel", "CONNECT %s via %s:%d", t->target, ahost, aport);
	rc = bufferevent_socket_connect_hostname(t->u, w->dns, AF_UNSPEC, ahost, aport);
	if (rc != 0)
		on_event(t->u, BEV_EVENT_ERROR, t);
	return t;
}
