#include "proxy/runtime/server.h"
#include "cache/bundle.h"
#include "cache/pgp.h"
#include "proxy/runtime/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct al_server srv;
static const struct al_server_parts *parts;   /* front and fetch, as runtime calls them */

void al_server_set_parts(const struct al_server_parts *p)
{
	parts = p;
}

static SSL_CTX *listener_ctx[AL_MAX_LISTEN];   /* HTTPS listeners; NULL for plain ones */

/*
 * A worker's loop goes back to epoll after at most 1 ms of callbacks.  A
 * connection whose socket took all it was given re-arms itself (conn.c
 * pump), and libevent runs events activated during a pass in that same
 * pass: without a bound, a worker streaming a fill to its followers read no
 * new request and woke no other follower until every one had caught up with
 * the committed bytes.  In a 30-client stampede that was the tail of the
 * first byte (bench/README.md, round 2).
 */
static struct event_base *worker_base_new(void)
{
	struct event_config *cfg = event_config_new();
	const struct timeval max_pass = {0, 1000};
	struct event_base *b;

	if (cfg == NULL)
		return NULL;
	if (event_config_set_max_dispatch_interval(cfg, &max_pass, -1, 0) != 0) {
		event_config_free(cfg);
		return NULL;
	}
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct worker *w = arg;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int one = 1;

	for (int i = 0; i < w->nlisteners; i++)
		if (w->listeners[i] == l)
			ctx = listener_ctx[i];
	if (ctx != NULL && (ssl = SSL_new(ctx)) == NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	parts->accept(w, fd, sa, salen, ssl);
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct worker *w = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, 100000};

	/* EMFILE/ENFILE: pause accepting for a moment instead of spinning on a ready listener. */
	al_warn("listen", "worker %d: accept: %s; pausing accepts for 100ms", w->id, strerror(err));
	evconnlistener_disable(l);
	event_base_once(w->base, -1, EV_TIMEOUT, resume_accepting, l, &tv);
}

static int bind_one(const struct al_listen *ls, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ls->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(ls->port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, ls->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(ls->port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		snprintf(err, errlen, "listen %s:%d: not an IP address", ls->host, ls->port);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		goto fail;
	}
	return fd;
fail:
	snprintf(err, errlen, "listen %s:%d: %s", ls->host, ls->port, strerror(errno));
	return -errno;
}

static void on_touch_flush(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	atomic_store(&w->beat, (int_fast64_t)time(NULL));
	worker_conf(w); /* an idle worker lets go of a replaced configuration too */
	if (w->ntouched == 0)
		return;
	parts->touch((const uint8_t (*)[AL_KEY_LEN])w->touched, w->ntouched); /* on the store writer */
	w->ntouched = 0;
}

void worker_touch(struct worker *w, const uint8_t key[AL_KEY_LEN])
{
	if (w->ntouched == (int)(sizeof(w->touched) / sizeof(w->touched[0])))
		on_touch_flush(-1, 0, w);
	memcpy(w->touched[w->ntouched++], key, AL_KEY_LEN);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	event_base_dispatch(w->base);
	return NULL;
}

static void worker_free(struct worker *w)
{
	for (int i = 0; i < w->nlisteners; i++)
		evconnlistener_free(w->listeners[i]);
	if (w->touch_ev) {
		on_touch_flush(-1, 0, w);
		event_free(w->touch_ev);
	}
	if (parts != NULL)
		parts->worker_fini(w); /* connections, fetches, the curl multi, hot bodies */
	al_conf_release(w->conf); /* after the connections and fetches that held it */
	w->conf = NULL;
	if (w->drain_ev)
		event_free(w->drain_ev);
	if (w->dns)
		evdns_base_free(w->dns, 0);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->base)
		event_base_free(w->base);
	al_recent_destroy(&w->recent);
}

struct al_conf *worker_conf(struct worker *w)
{
	if (w->conf == NULL || w->conf->gen != al_conf_current_gen()) {
		struct al_conf *c = al_conf_pin();

		if (c != NULL) { /* NULL: stopping; keep the one held */
			al_conf_release(w->conf);
			w->conf = c;
		}
	}
	return w->conf;
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->nlisteners; i++)
		evconnlistener_free(w->listeners[i]);
	w->nlisteners = 0;
	parts->drain(w);
}

static const char *config_path;
/* The main thread's reference to the current configuration (signals, probes, the banner). */
static struct al_conf *running;
static struct event *drain_timer;
static int64_t drain_deadline_ms;
static int draining;

void al_server_set_config_path(const char *path)
{
	config_path = path;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	long long left = (long long)atomic_load(&srv.clients);

	if (left == 0 || mono_ms() >= drain_deadline_ms) {
		if (left)
			al_warn("server", "shutdown_timeout reached with %lld connections still open; closing them", left);
		event_base_loopexit(arg, NULL);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tick = {0, 50000};

	const struct al_config *cfg = running->cfg;

	if (draining || cfg->shutdown_timeout_ms == 0) {
		al_info("server", "signal %d: stopping now", (int)sig);
		event_base_loopexit(arg, NULL);
		return;
	}
	draining = 1;
	al_info("server", "signal %d: no new connections; letting %lld finish (at most %lld ms)", (int)sig,
	    (long long)atomic_load(&srv.clients), (long long)cfg->shutdown_timeout_ms);
	for (int i = 0; i < srv.nworkers; i++)
		event_active(srv.workers[i].drain_ev, EV_READ, 0);
	drain_deadline_ms = mono_ms() + cfg->shutdown_timeout_ms;
	drain_timer = event_new(arg, -1, EV_PERSIST, on_drain_tick, arg);
	event_add(drain_timer, &tick);
}

static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
	al_access_reopen();
}

/*
 * SIGHUP: load the file again.  An invalid file is refused and the running
 * configuration stays.  Keys that shape what was built at start (listen,
 * workers, cache path and size, the interception CA) keep their running
 * values, with a warning.  Requests and fills already under way finish with
 * the configuration they pinned (proxy/runtime/conf.h); the old one is freed
 * when the last of them lets go.
 */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct al_config *nc;
	const struct al_config *oc = running->cfg;
	struct al_pgp *np = NULL;
	char err[1400];

	if (al_config_load(config_path, &nc, err, sizeof(err)) != 0) {
		al_err("config", "reload refused: %s; the running configuration stays", err);
		return;
	}
	if (al_server_preflight(nc, err, sizeof(err), &np) != 0) {
		al_err("config", "reload refused: %s; the running configuration stays", err);
		al_config_free(nc);
		return;
	}
#define KEEP_STR(f) do { if ((oc->f == NULL) != (nc->f == NULL) || (oc->f && strcmp(oc->f, nc->f))) { \
		al_warn("config", #f " changes only at restart; keeping the running value"); \
		free(nc->f); nc->f = oc->f ? strdup(oc->f) : NULL; } } while (0)
	if (!al_listen_equal(nc, oc)) {
		al_warn("config", "listen changes only at restart; keeping the running listeners");
		al_listen_copy(nc, oc);
	}
	if (nc->workers != oc->workers || nc->cache_max_size != oc->cache_max_size || nc->offline != oc->offline ||
	    nc->cache_hot_memory != oc->cache_hot_memory)
		al_warn("config", "workers, cache.max_size, cache.hot_memory and upstream.offline change only at restart");
	nc->workers = oc->workers;
	nc->cache_max_size = oc->cache_max_size;
	nc->cache_hot_memory = oc->cache_hot_memory;
	nc->offline = oc->offline;
	KEEP_STR(cache_path);
	KEEP_STR(forward_ca_cert);
	KEEP_STR(forward_ca_key);
#undef KEEP_STR
	if ((oc->access_log == NULL) != (nc->access_log == NULL) ||
	    (oc->access_log && strcmp(oc->access_log, nc->access_log))) {
		al_access_close();
		if (al_access_open(nc->access_log) != 0)
			al_err("log", "cannot open the access log %s", nc->access_log);
	}
	al_log_set_level(nc->log_level);
	/* the pinned keys go with their file: one object, published at once */
	if (al_conf_publish(nc, np, 1) != 0) {
		al_err("config", "reload refused: out of memory; the running configuration stays");
		al_pgp_free(np);
		al_config_free(nc);
		return;
	}
	parts->reload(nc);
	al_conf_release(running);
	running = al_conf_pin();
	al_info("config", "reloaded %s: %d routes, %d forward rules", nc->file, nc->nroutes, nc->nforward);
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
	al_store_sync(srv.store);
}

static struct event_base *main_base;
static struct event *sigint_ev, *sigterm_ev, *sync_ev, *sighup_ev, *sigusr1_ev;
static int nstarted;

/* A path airlock will write a file into: the file writable if it exists, else its directory. */
static int check_writable_file(const char *what, const char *path, char *msg, size_t len)
{
	const char *slash = strrchr(path, '/');
	struct stat st;
	char *dir;
	int rc = 0;

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			snprintf(msg, len, "%s %s is a directory, not a file", what, path);
			return -EISDIR;
		}
		if (access(path, W_OK) != 0) {
			snprintf(msg, len, "%s %s: %s", what, path, strerror(errno));
			return -errno;
		}
		return 0;
	}
	dir = slash == NULL ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (dir == NULL)
		return -ENOMEM;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(msg, len, "%s %s: directory %.200s does not exist", what, path, dir);
		rc = -ENOENT;
	} else if (access(dir, W_OK | X_OK) != 0) {
		snprintf(msg, len, "%s %s: directory %.200s is not writable: %s", what, path, dir, strerror(errno));
		rc = -EACCES;
	}
	free(dir);
	return rc;
}

/*
 * Everything serve checks before it accepts, without binding a port or
 * opening the cache for writing: check-config runs this too, so a file it
 * passes is one serve starts with (dist/airlock.service runs check-config
 * as ExecStartPre; a difference would be a restart loop).  The message
 * starts with file:line:col of the key that names the offending path.
 */
int al_server_preflight(const struct al_config *cfg, char *err, size_t errlen, struct al_pgp **pgp)
{
	char msg[1100], where[300], key[48] = "";
	struct stat st;

	if (cfg->access_log != NULL && strcmp(cfg->access_log, "-") != 0 && strcmp(cfg->access_log, "off") != 0 &&
	    check_writable_file("log.access", cfg->access_log, msg, sizeof(msg)) != 0) {
		snprintf(key, sizeof(key), "log.access");
	} else if (cfg->ca_file != NULL) {
		FILE *f = fopen(cfg->ca_file, "r");
		X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f == NULL)
			snprintf(msg, sizeof(msg), "upstream.ca_file %s: %s", cfg->ca_file, strerror(errno));
		else if (x == NULL)
			snprintf(msg, sizeof(msg), "upstream.ca_file %s: no PEM certificate in it", cfg->ca_file);
		if (f == NULL || x == NULL)
			snprintf(key, sizeof(key), "upstream.ca_file");
		X509_free(x);
		if (f != NULL)
			fclose(f);
		ERR_clear_error();
	}
	if (!key[0] && parts->preflight(cfg, msg, sizeof(msg), key, sizeof(key)) == 0)
		key[0] = '\0';
	if (!key[0]) {
		if (stat(cfg->cache_path, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				snprintf(msg, sizeof(msg), "cache.path %s is not a directory", cfg->cache_path), snprintf(key, sizeof(key), "cache.path");
			else if (access(cfg->cache_path, W_OK | X_OK) != 0)
				snprintf(msg, sizeof(msg), "cache.path %s: %s", cfg->cache_path, strerror(errno)), snprintf(key, sizeof(key), "cache.path");
		} else if (check_writable_file("cache.path", cfg->cache_path, msg, sizeof(msg)) != 0) {
			snprintf(key, sizeof(key), "cache.path");
		}
	}
	for (int i = 0; !key[0] && i < cfg->ntrusted_keys; i++) {
		EVP_PKEY *pk;
		char m[900];
		if (al_bundle_load_key(cfg->trusted_keys[i], 0, &pk, m, sizeof(m)) != 0) {
			snprintf(msg, sizeof(msg), "import.trusted_keys: %s", m);
			snprintf(key, sizeof(key), "import.trusted_keys");
		} else {
			EVP_PKEY_free(pk);
		}
	}
	if (!key[0] && cfg->npgp_keys > 0) {
		struct al_pgp *pg;
		char m[900];
		if (al_pgp_load(cfg->pgp_keys, cfg->npgp_keys, &pg, m, sizeof(m)) != 0) {
			snprintf(msg, sizeof(msg), "upstream.pgp_keys: %s", m);
			snprintf(key, sizeof(key), "upstream.pgp_keys");
		} else if (pgp != NULL) {
			*pgp = pg; /* the last check: nothing after it can fail */
		} else {
			al_pgp_free(pg);
		}
	}
	if (!key[0])
		return 0;
	snprintf(err, errlen, "%s: %s", al_config_where(cfg, key, where, sizeof(where)), msg);
	return -EINVAL;
}

/*
 * Each client is a descriptor, and so is each upstream transfer (a fill, a
 * check, a forward-proxy tunnel's far end), besides the cache's and the
 * listeners' few.  A shell or a container often starts a process with a soft
 * open-files limit of 1024: with a thousand agents at once accept() failed
 * with EMFILE, and so did the fills' upstream sockets, which then read as the
 * upstream being unreachable (the whole fleet got 504).  The soft limit is
 * raised, at start, towards the hard one, as far as max_connections can use;
 * a hard limit too low to hold max_connections clients is said once.
 */
static void raise_open_files(const struct al_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections * 2 + 256, need = (rlim_t)cfg->max_connections + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
		if (rl.rlim_cur > was)
			al_info("server", "open-files limit raised from %llu to %llu", (unsigned long long)was,
			    (unsigned long long)rl.rlim_cur);
	}
	if (rl.rlim_cur < need)
		al_warn("server", "the open-files limit is %llu (hard limit %llu): too few for max_connections %lld, "
		    "which needs about %llu; raise it (LimitNOFILE= in the systemd unit, ulimit -n)",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, (long long)cfg->max_connections,
		    (unsigned long long)need);
}

int al_server_start(const struct al_config *cfg)
{
	char err[1400];
	struct al_pgp *pgp = NULL;
	uint64_t hot_share;
	int nw, rc;

	if (al_server_preflight(cfg, err, sizeof(err), &pgp) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return -1;
	}
	memset(&srv, 0, sizeof(srv));
	/* the keys loaded once, by the preflight; the configuration stays the caller's */
	if (al_conf_publish((struct al_config *)cfg, pgp, 0) != 0) {
		al_pgp_free(pgp);
		return -1;
	}
	running = al_conf_pin();
	srv.started = time(NULL);
	nstarted = 0;
	draining = 0;
	if (al_access_open(cfg->access_log) != 0) {
		al_err("log", "cannot open the access log %s: %s", cfg->access_log, strerror(errno));
		return -1;
	}
	al_log_set_level(cfg->log_level);
	raise_open_files(cfg);
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* a snapshot per client connection, plus fills, checks and tools working beside them */
	if (al_store_open(cfg->cache_path, cfg->cache_max_size, (unsigned)cfg->max_connections + 512, &srv.store,
	    err, sizeof(err)) != 0) {
		al_err("cache", "%s", err);
		return -1;
	}
	if (parts->start(cfg, err, sizeof(err)) != 0) {
		al_err("server", "%s", err);
		return -1;
	}
	for (int j = 0; j < cfg->nlisten; j++) {
		if (cfg->listen[j].tls_cert == NULL)
			continue;
		if ((listener_ctx[j] = parts->listener_ctx(&cfg->listen[j], err, sizeof(err))) == NULL) {
			al_err("tls", "listen %s:%d: %s", cfg->listen[j].host, cfg->listen[j].port, err);
			return -1;
		}
	}
	nw = cfg->workers > 0 ? (int)cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nw < 1)
		nw = 1;
	srv.workers = calloc((size_t)nw, sizeof(*srv.workers));
	if (srv.workers == NULL)
		return -1;
	srv.nworkers = nw;
	hot_share = cfg->cache_hot_memory / (uint64_t)nw; /* two generations of half each */
	for (int i = 0; i < nw; i++) {
		struct worker *w = &srv.workers[i];
		w->id = i;
		al_recent_init(&w->recent);
		w->base = worker_base_new();
		w->dns = w->base ? evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE) : NULL;
		w->stop_ev = w->base ? event_new(w->base, -1, 0, on_stop, w) : NULL;
		w->touch_ev = w->base ? event_new(w->base, -1, EV_PERSIST, on_touch_flush, w) : NULL;
		w->drain_ev = w->base ? event_new(w->base, -1, 0, on_drain, w) : NULL;
		if (w->stop_ev == NULL || w->touch_ev == NULL || w->drain_ev == NULL ||
		    (rc = parts->worker_init(w, hot_share)) != 0) {
			al_err("server", "cannot create worker %d", i);
			return -1;
		}
		{
			struct timeval two = {2, 0};
			event_add(w->touch_ev, &two);
			atomic_store(&w->beat, (int_fast64_t)time(NULL));
		}
		for (int j = 0; j < cfg->nlisten; j++) {
			int fd = bind_one(&cfg->listen[j], err, sizeof(err));
			if (fd < 0) {
				al_err("listen", "%s", err);
				return -1;
			}
			w->listeners[j] = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
			if (w->listeners[j] == NULL) {
				close(fd);
				return -1;
			}
			evconnlistener_set_error_cb(w->listeners[j], on_accept_error);
			w->nlisteners++;
		}
	}
	main_base = event_base_new();
	if (main_base == NULL)
		return -1;
	sigint_ev = evsignal_new(main_base, SIGINT, on_signal, main_base);
	sigterm_ev = evsignal_new(main_base, SIGTERM, on_signal, main_base);
	sync_ev = event_new(main_base, -1, EV_PERSIST, on_sync, NULL);
	sighup_ev = evsignal_new(main_base, SIGHUP, on_hup, NULL);
	sigusr1_ev = evsignal_new(main_base, SIGUSR1, on_usr1, NULL);
	if (!sigint_ev || !sigterm_ev || !sync_ev || !sighup_ev || !sigusr1_ev)
		return -1;
	event_add(sigint_ev, NULL);
	event_add(sigterm_ev, NULL);
	event_add(sighup_ev, NULL);
	event_add(sigusr1_ev, NULL);
	{
		struct timeval one = {1, 0};
		event_add(sync_ev, &one);
	}
	if (parts->run(main_base, cfg) != 0)
		return -1;
	for (int i = 0; i < nw; i++) {
		if (pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]) != 0)
			return -1;
		nstarted++;
	}
	return 0;
}

int al_server_wait(void)
{
	const struct al_config *cfg = running->cfg;

	for (int j = 0; j < cfg->nlisten; j++)
		al_info("server", "airlock %s listening on %s://%s:%d (%d workers, cache %s%s)", AIRLOCK_VERSION,
		    cfg->listen[j].tls_cert ? "https" : "http", cfg->listen[j].host, cfg->listen[j].port,
		    srv.nworkers, cfg->cache_path, cfg->offline ? ", cache-only" : "");
	return event_base_dispatch(main_base) < 0 ? 1 : 0;
}

void al_server_stop(void)
{
	if (parts != NULL && parts->quiesce != NULL)
		parts->quiesce(); /* e.g. the offline registry's query threads, which wake worker loops */
	for (int i = 0; i < nstarted; i++) {
		event_active(srv.workers[i].stop_ev, EV_READ, 0);
		pthread_join(srv.workers[i].thread, NULL);
	}
	nstarted = 0;
	for (int i = 0; srv.workers != NULL && i < srv.nworkers; i++)
		worker_free(&srv.workers[i]);
	free(srv.workers);
	srv.workers = NULL;
	if (parts != NULL)
		parts->stop(); /* after the workers: what they handed the store writer is written before the store closes */
	/* every worker, connection and fetch has let go: this frees the current one (and its keys) */
	al_conf_release(running);
	running = NULL;
	al_conf_shutdown();
	{
		struct event **evs[] = {&sigint_ev, &sigterm_ev, &sync_ev, &sighup_ev, &sigusr1_ev, &drain_timer};
		for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
			if (*evs[i] != NULL)
				event_free(*evs[i]);
			*evs[i] = NULL;
		}
	}
	if (main_base)
		event_base_free(main_base);
	main_base = NULL;
	al_store_close(srv.store);
	srv.store = NULL;
	al_access_close();
	for (int j = 0; j < AL_MAX_LISTEN; j++) {
		SSL_CTX_free(listener_ctx[j]);
		listener_ctx[j] = NULL;
	}
	curl_global_cleanup();
}

int al_server_run(const struct al_config *cfg)
{
	int rc = al_server_start(cfg) == 0 ? al_server_wait() : 1;

	al_server_stop();
	return rc;
}
