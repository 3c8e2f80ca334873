#include "proxy/fetch/upstream.h"
#include "policy/hdr.h"
#include "proxy/runtime/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

struct up_fd {
	curl_socket_t fd;
	int port;                /* its local port, once connected (0: not looked up yet) */
};

struct up_multi {
	CURLM *multi;
	struct event_base *base;
	struct event *timer;
	struct up_fd *fds;       /* every socket libcurl opened through this multi and has not closed */
	int nfds, capfds;
};

/* One per socket curl watches: its libevent event. */
struct up_sock {
	struct event *ev;
	curl_socket_t fd;
	struct up_multi *m;
};

/* Per easy: what to call when it ends. */
struct up_xfer {
	up_done_fn done;
	void *arg;
	CURL *easy;
	struct up_multi *m;
	int dirty;               /* the reused connection had bytes pending: retry on a fresh one */
	int local_errno;         /* socket() failed here (EMFILE...): curl says only COULDNT_CONNECT */
};

/*
 * The sockets of a multi's connections.  libcurl names the connection a
 * prereq callback is about only by its addresses (CURLINFO_ACTIVESOCKET is
 * the last *finished* connection, unset during a new handle's first
 * transfer), so each multi keeps the sockets libcurl opened for it.  The
 * callbacks' data is the multi, which outlives every connection in its
 * pool (curl_multi_cleanup closes them first).
 */
static curl_socket_t open_sock(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct up_xfer *x = arg;    /* the transfer connecting: alive for this call */
	struct up_multi *m = x->m;
	curl_socket_t fd;

	if (m->nfds == m->capfds) {
		int cap = m->capfds ? m->capfds * 2 : 64;
		struct up_fd *n = realloc(m->fds, (size_t)cap * sizeof(*n));
		if (n == NULL) {
			x->local_errno = ENOMEM;
			return CURL_SOCKET_BAD;
		}
		m->fds = n;
		m->capfds = cap;
	}
	fd = socket(a->family, a->socktype, a->protocol);
	/* the last attempt's word: happy eyeballs may open several, and only these errors are ours */
	x->local_errno = 0;
	if (fd != CURL_SOCKET_BAD)
		m->fds[m->nfds++] = (struct up_fd){fd, 0};
	else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
		x->local_errno = errno;
	return fd;
}

static int close_sock(void *arg, curl_socket_t fd)
{
	struct up_multi *m = arg;

	for (int i = 0; i < m->nfds; i++) {
		if (m->fds[i].fd == fd) {
			m->fds[i] = m->fds[--m->nfds];
			break;
		}
	}
	return close(fd);
}

/* The socket bound to local port `port`; each socket's port is asked of the kernel once. */
static curl_socket_t sock_by_local_port(struct up_multi *m, int port)
{
	for (int i = 0; i < m->nfds; i++) {
		struct up_fd *e = &m->fds[i];

		if (e->port == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			if (getsockname(e->fd, (struct sockaddr *)&ss, &sl) != 0)
				continue;
			if (ss.ss_family == AF_INET)
				e->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				e->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
		if (e->port == port)
			return e->fd;
	}
	return CURL_SOCKET_BAD;
}

/*
 * A kept-alive upstream connection must be silent between responses.
 * Bytes waiting on it when libcurl is about to reuse it (a stray second
 * response, a body longer than its Content-Length that arrived late) would
 * be read as the next URL's response and stored under that URL, and so on
 * down the line.  libcurl does not look: it checks a pooled connection
 * only for being closed.  So just before the request is sent
 * (CURLOPT_PREREQFUNCTION, the one hook that runs for reused connections
 * too, with the connection picked) a reused connection is peeked at; one
 * with bytes pending, or closed, is refused: the transfer is aborted
 * before anything is sent (libcurl closes a connection whose transfer
 * ended prematurely) and started again with CURLOPT_FRESH_CONNECT.
 * Fresh connections are not peeked: a TLS 1.3 server's session tickets
 * may legitimately be waiting there.  CURLINFO_NUM_CONNECTS counts the
 * connections made for this transfer, so 0 means "reused".
 */
static int prereq_cb(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	struct up_xfer *x = arg;
	curl_socket_t fd = CURL_SOCKET_BAD;
	long made = 1;
	char b;
	ssize_t n;

	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &made) != CURLE_OK || made > 0)
		return CURL_PREREQFUNC_OK;
	fd = sock_by_local_port(x->m, local_port);
	if (fd == CURL_SOCKET_BAD)
		return CURL_PREREQFUNC_OK;
	n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return CURL_PREREQFUNC_OK;
	al_warn("upstream", "%s:%d: a reused connection %s before the request was sent; closed, "
	    "retrying on a new connection", primary_ip, primary_port,
	    n > 0 ? "had unexpected bytes pending (a stray response after the last one)" : "was closed");
	x->dirty = 1;
	return CURL_PREREQFUNC_ABORT;
}

static void check_done(struct up_multi *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			CURL *easy = msg->easy_handle;
			CURLcode res = msg->data.result;
			struct up_xfer *x = NULL;

			curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
			curl_multi_remove_handle(m->multi, easy);
			if (x != NULL && x->dirty && res == CURLE_ABORTED_BY_CALLBACK) {
				/* nothing was sent or received: the same transfer on a new connection */
				x->dirty = 0;
				curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
				if (curl_multi_add_handle(m->multi, easy) == CURLM_OK)
					continue;
			}
			curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
			if (x != NULL) {
				up_done_fn done = x->done;
				void *arg = x->arg;
				int local = res == CURLE_COULDNT_CONNECT ? x->local_errno : 0;

				free(x);
				done(easy, res, local, arg);
			}
		}
	}
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct up_multi *m = arg;
	int running, flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(m->multi, fd, flags, &running);
	check_done(m);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct up_multi *m = arg;
	int running;

	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(m);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct up_multi *m = userp;
	struct up_sock *us = socketp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (us != NULL) {
			event_free(us->ev);
			free(us);
			curl_multi_assign(m->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (us == NULL) {
		us = calloc(1, sizeof(*us));
		if (us == NULL)
			return -1;
		us->fd = s;
		us->m = m;
		curl_multi_assign(m->multi, s, us);
	} else {
		event_free(us->ev);
	}
	us->ev = event_new(m->base, s, kind, on_sock_event, m);
	event_add(us->ev, NULL);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct up_multi *m = userp;

	if (timeout_ms < 0) {
		evtimer_del(m->timer);
	} else {
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		evtimer_add(m->timer, &tv);
	}
	return 0;
}

struct up_multi *up_multi_new(struct event_base *base)
{
	struct up_multi *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->base = base;
	m->multi = curl_multi_init();
	m->timer = evtimer_new(base, on_timer, m);
	if (m->multi == NULL || m->timer == NULL) {
		up_multi_free(m);
		return NULL;
	}
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
	return m;
}

void up_multi_free(struct up_multi *m)
{
	if (m == NULL)
		return;
	if (m->multi != NULL)
		curl_multi_cleanup(m->multi);
	if (m->timer != NULL)
		event_free(m->timer);
	free(m->fds);
	free(m);
}

CURL *up_easy_new(const struct al_config *cfg, struct curl_slist **connect_to)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy != NULL ? cfg->proxy : "");
	/* a parent proxy's "200 Connection established" is not the upstream's response head */
	curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 128L * 1024);
	if (cfg->idle_timeout_ms > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((cfg->idle_timeout_ms + 999) / 1000));
	}
	if (*connect_to == NULL) {
		for (int i = 0; i < cfg->nresolve; i++) {
			char buf[600];
			snprintf(buf, sizeof(buf), "%s:%s", cfg->resolve[i].from, cfg->resolve[i].to);
			*connect_to = curl_slist_append(*connect_to, buf);
		}
	}
	if (*connect_to != NULL)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to);
	return e;
}

struct curl_slist *up_target(CURL *e, const struct al_config *cfg, const char *url, int parent,
    struct curl_slist *hdrs)
{
	const struct al_parent *p;
	const char *auth = strstr(url, "://");
	char h[600];

	if (parent < 0 || parent >= cfg->nparents || auth == NULL) {
		curl_easy_setopt(e, CURLOPT_URL, url);
		return hdrs;
	}
	p = &cfg->parents[parent];
	auth += 3;
	/* the parent is the origin of this connection; the request line carries the canonical URL */
	curl_easy_setopt(e, CURLOPT_URL, p->base);
	curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, url);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	snprintf(h, sizeof(h), "Host: %.*s", (int)strcspn(auth, "/?#"), auth);
	hdrs = curl_slist_append(hdrs, h);
	if (p->auth != NULL) {
		snprintf(h, sizeof(h), "Proxy-Authorization: %s", p->auth);
		hdrs = curl_slist_append(hdrs, h);
	}
	return hdrs;
}

int up_start(struct up_multi *m, CURL *easy, up_done_fn done, void *arg)
{
	struct up_xfer *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -ENOMEM;
	x->done = done;
	x->arg = arg;
	x->easy = easy;
	x->m = m;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_sock);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_sock);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, m);
	curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(easy, CURLOPT_PREREQDATA, x);
	if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
		free(x);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		return -EIO;
	}
	return 0;
}

void up_cancel(struct up_multi *m, CURL *easy)
{
	struct up_xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	curl_multi_remove_handle(m->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(x);
}

enum up_resp_line up_response_line(const char *buf, size_t len, int *status,
    const char **name, size_t *nlen, const char **value, size_t *vlen, const char **why)
{
	const char *colon, *v;
	size_t content;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/*
		 * RFC 9112 4: HTTP-version SP 3DIGIT SP [reason-phrase], the
		 * reason in the field-value class.  A missing SP before an empty
		 * reason is tolerated (common and harmless).
		 */
		content = len >= 2 && buf[len - 1] == '\n' ? (buf[len - 2] == '\r' ? len - 2 : len - 1) : 0;
		if (content < 12 || buf[5] < '0' || buf[5] > '9' || buf[6] != '.' || buf[7] < '0' ||
		    buf[7] > '9' || buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
		    buf[10] > '9' || buf[11] < '0' || buf[11] > '9' || (content > 12 && buf[12] != ' ')) {
			*why = "malformed status line";
			return RESP_BAD;
		}
		for (size_t i = 13; i < content; i++) {
			if (!al_http_field_byte((unsigned char)buf[i])) {
				*why = "status line with a control character";
				return RESP_BAD;
			}
		}
		*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
		return RESP_STATUS;
	}
	if ((len == 2 && buf[0] == '\r' && buf[1] == '\n') || (len == 1 && buf[0] == '\n'))
		return RESP_END;
	/* A field line: exactly one line ending, no NUL or stray CR, no obs-fold. */
	if (len < 2 || buf[len - 1] != '\n' || buf[0] == ' ' || buf[0] == '\t') {
		*why = "malformed header line";
		return RESP_BAD;
	}
	content = buf[len - 2] == '\r' ? len - 2 : len - 1;
	for (size_t i = 0; i < content; i++) {
		if (!al_http_field_byte((unsigned char)buf[i])) {
			*why = "header line with a control character (NUL, CR, LF ...)";
			return RESP_BAD;
		}
	}
	colon = memchr(buf, ':', content);
	if (colon == NULL || colon == buf) {
		*why = "header line without a name";
		return RESP_BAD;
	}
	for (const char *q = buf; q < colon; q++) {
		if (!al_http_tchar((unsigned char)*q)) {
			*why = "header name with a space or a separator";
			return RESP_BAD;
		}
	}
	v = colon + 1;
	while (v < buf + content && (*v == ' ' || *v == '\t'))
		v++;
	*vlen = (size_t)(buf + content - v);
	while (*vlen > 0 && (v[*vlen - 1] == ' ' || v[*vlen - 1] == '\t'))
		(*vlen)--;
	*name = buf;
	*nlen = (size_t)(colon - buf);
	*value = v;
	return RESP_FIELD;
}
