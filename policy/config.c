/*
 * YAML configuration loader.
 *
 * The file is parsed with libyaml's document API, which keeps every node's
 * start mark, so each error can say file:line:column.  Scalar keys are rows
 * of config_keys[]: adding a key is adding a row.  Keys whose value is a list
 * or a map of the operator's own names (listen, routes, upstream.resolve,
 * cache.rules) have a handler each.  Unknown keys are errors.
 */
#include "policy/config.h"
#include "policy/freshness.h"
#include "policy/units.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

const char al_config_default_yaml[] =
	"# airlock embedded default configuration\n"
	"listen: [\"127.0.0.1:8080\"]\n"
	"cache:\n"
	"  path: ./airlock-cache\n"
	"  max_size: 20GiB\n"
	"upstream:\n"
	"  ca_file: /etc/ssl/certs/ca-certificates.crt\n"
	"  connect_timeout: 5s\n"
	"routes:\n"
	"  - prefix: /downloads/endpoint/\n"
	"    upstream: https://artifacts.security.elastic.co\n"
	"  - prefix: /downloads/kibana/manifest/\n"
	"    upstream: https://artifacts.security.elastic.co\n"
	"  - prefix: /downloads/\n"
	"    upstream: https://artifacts.elastic.co\n"
	"  - prefix: /GPG-KEY-elastic-agent\n"
	"    upstream: https://artifacts.elastic.co\n"
	"  - prefix: /ml-models/\n"
	"    upstream: https://ml-models.elastic.co\n"
	"    strip_prefix: true\n"
	"  - prefix: /geoip/\n"
	"    upstream: https://geoip.elastic.co\n"
	"    strip_prefix: true\n"
	"  - prefix: /product-docs\n"
	"    upstream: https://kibana-knowledge-base-artifacts.elastic.co\n"
	"    strip_prefix: true\n"
	"  - prefix: /\n"
	"    upstream: https://epr.elastic.co\n"
	"    registry: true\n";

enum key_type { K_STR, K_SIZE, K_DURATION, K_BOOL, K_INT };

struct config_key {
	const char *name;       /* dotted path */
	enum key_type type;
	size_t offset;
	const char *def;        /* default, in the same syntax as the file */
	int64_t min, max;       /* for K_INT */
	const char *help;
};

#define KEY(n, t, f, d, lo, hi, h) {n, t, offsetof(struct al_config, f), d, lo, hi, h}

static const struct config_key config_keys[] = {
	KEY("name", K_STR, name, "airlock", 0, 0, "this cache's name in Cache-Status; give each tier its own"),
	KEY("workers", K_INT, workers, "0", 0, 256, "event loops (threads); 0 = one per core"),
	KEY("max_connections", K_INT, max_connections, "10000", 1, 1000000, "client connections at once, all workers"),
	KEY("cache.path", K_STR, cache_path, "./airlock-cache", 0, 0, "LMDB environment directory"),
	KEY("cache.max_size", K_SIZE, cache_max_size, "20GiB", 0, 0, "bytes of bodies kept before LRU eviction"),
	KEY("cache.hot_memory", K_SIZE, cache_hot_memory, "32MiB", 0, 0,
	    "memory for copies of hot bodies sent with sendfile, split over the workers (each takes bodies of "
	    "32KiB up to an eighth of its share, at most 1MiB); 0 = off; read at start"),
	KEY("cache.max_object_size", K_SIZE, cache_max_object_size, "4GiB", 0, 0, "a larger response is not stored (and aborted)"),
	KEY("upstream.ca_file", K_STR, ca_file, "/etc/ssl/certs/ca-certificates.crt", 0, 0, "CA bundle trusted for upstream TLS"),
	KEY("upstream.connect_timeout", K_DURATION, connect_timeout_ms, "5s", 0, 0, "TCP+TLS connect bound"),
	KEY("upstream.first_byte_timeout", K_DURATION, first_byte_timeout_ms, "15s", 0, 0, "request start to response head bound (connect included)"),
	KEY("upstream.idle_timeout", K_DURATION, idle_timeout_ms, "30s", 0, 0, "abort a body that stalls this long"),
	KEY("upstream.probe_interval", K_DURATION, probe_interval_ms, "3s", 0, 0, "first probe of an offline upstream"),
	KEY("upstream.probe_max_interval", K_DURATION, probe_max_interval_ms, "60s", 0, 0, "probe backoff cap"),
	KEY("upstream.offline", K_BOOL, offline, "false", 0, 0, "never contact any upstream (air-gapped side)"),
	KEY("upstream.stale_on_5xx", K_BOOL, stale_on_5xx, "true", 0, 0, "serve a stale copy when revalidation gets 5xx"),
	KEY("upstream.proxy", K_STR, proxy, "", 0, 0, "parent proxy for airlock's own upstream traffic"),
	KEY("client.header_timeout", K_DURATION, client_header_timeout_ms, "30s", 0, 0, "bound on receiving a request head"),
	KEY("client.idle_timeout", K_DURATION, client_idle_timeout_ms, "120s", 0, 0, "keep-alive idle and stalled-reader bound"),
	KEY("client.max_header_bytes", K_SIZE, client_max_header_bytes, "16KiB", 0, 0, "request head size limit (431 beyond)"),
	KEY("client.max_headers", K_INT, client_max_headers, "100", 1, 1000, "request header field count limit"),
	KEY("forward.ca_cert", K_STR, forward_ca_cert, "", 0, 0, "CA certificate for TLS interception (airlock ca init)"),
	KEY("forward.ca_key", K_STR, forward_ca_key, "", 0, 0, "its private key (0600)"),
	KEY("clients.auth_required", K_BOOL, client_auth_required, "false", 0, 0,
	    "reverse-proxy requests need credentials from clients.users or clients.api_keys (401 without); "
	    "a route's auth: true/false overrides; /_airlock/ endpoints keep their own rules"),
	KEY("admin.token", K_STR, admin_token, "", 0, 0, "bearer token that opens admin endpoints from anywhere"),
	KEY("shutdown_timeout", K_DURATION, shutdown_timeout_ms, "30s", 0, 0, "SIGTERM: bound on finishing responses in flight"),
	KEY("log.level", K_STR, log_level, "info", 0, 0, "error, warn, info or debug"),
	KEY("log.access", K_STR, access_log, "off", 0, 0, "access log: off, - (stdout) or a file"),
};
#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Sections whose keys are rows of the table (or handled below). */
static const char *const sections[] = {"cache", "upstream", "client", "log", "forward", "clients", "admin", "import", NULL};

struct loader {
	const char *file;
	yaml_document_t *doc;
	struct al_config *c;
	char *err;
	size_t errlen;
	int failed;
};

static int fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!l->failed) {
		if (n != NULL)
			snprintf(l->err, l->errlen, "%s:%zu:%zu: %s", l->file,
			    n->start_mark.line + 1, n->start_mark.column + 1, msg);
		else
			snprintf(l->err, l->errlen, "%s: %s", l->file, msg);
	}
	l->failed = 1;
	return -EINVAL;
}

static void note_where(struct loader *l, const char *key, const yaml_node_t *n, const char *env)
{
	struct al_config *c = l->c;
	struct al_where *w = NULL;

	for (int i = 0; i < c->nwhere; i++)
		if (strcmp(c->where[i].key, key) == 0)
			w = &c->where[i];
	if (w == NULL) {
		if (c->nwhere >= (int)(sizeof(c->where) / sizeof(c->where[0])))
			return;
		w = &c->where[c->nwhere++];
		snprintf(w->key, sizeof(w->key), "%s", key);
	}
	w->line = n ? (unsigned)n->start_mark.line + 1 : 0;
	w->col = n ? (unsigned)n->start_mark.column + 1 : 0;
	w->env = env;
}

const char *al_config_where(const struct al_config *c, const char *key, char *buf, size_t len)
{
	for (int i = 0; i < c->nwhere; i++) {
		const struct al_where *w = &c->where[i];
		if (strcmp(w->key, key) != 0)
			continue;
		if (w->line == 0)
			snprintf(buf, len, "%s (environment)", w->env ? w->env : "?");
		else
			snprintf(buf, len, "%s:%u:%u", c->file, w->line, w->col);
		return buf;
	}
	snprintf(buf, len, "%s", c->file);
	return buf;
}

/*
 * YAML lets a map name a key twice and libyaml keeps both; the last would
 * silently win.  Refuse the second, at its place, naming the first.
 */
static int check_dup(struct loader *l, const yaml_node_t *map, const yaml_node_pair_t *pr)
{
	const yaml_node_t *kn = yaml_document_get_node(l->doc, pr->key);

	if (kn == NULL || kn->type != YAML_SCALAR_NODE)
		return 0;
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++) {
		const yaml_node_t *qk = yaml_document_get_node(l->doc, q->key);
		if (qk != NULL && qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value,
		    (const char *)kn->data.scalar.value) == 0)
			return fail(l, kn, "key '%s' is given twice in this map (first at line %zu); "
			    "remove one", (const char *)kn->data.scalar.value, qk->start_mark.line + 1);
	}
	return 0;
}

static const char *scalar(struct loader *l, const yaml_node_t *n, const char *what)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE) {
		fail(l, n, "%s must be a single value", what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")) {
		*out = 1;
		return 0;
	}
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")) {
		*out = 0;
		return 0;
	}
	return -EINVAL;
}

/* Store a scalar into the struct field a table row names. */
static int set_key(struct loader *l, const struct config_key *k, const char *v,
    const yaml_node_t *n)
{
	char *field = (char *)l->c + k->offset;
	char *end;
	long long iv;

	switch (k->type) {
	case K_STR: {
		char **sp = (char **)field;
		free(*sp);
		*sp = (v[0] != '\0') ? strdup(v) : NULL;
		if (n != NULL)
			note_where(l, k->name, n, NULL);
		return 0;
	}
	case K_SIZE:
		if (al_parse_size(v, (uint64_t *)field) != 0)
			return fail(l, n, "%s: '%s' is not a size (examples: 512MiB, 20GiB, 1000)", k->name, v);
		return 0;
	case K_DURATION:
		if (al_parse_duration_ms(v, (int64_t *)field) != 0)
			return fail(l, n, "%s: '%s' is not a duration (examples: 250ms, 5s, 10m, 1h)", k->name, v);
		return 0;
	case K_BOOL:
		if (parse_bool(v, (int *)field) != 0)
			return fail(l, n, "%s: '%s' is not true or false", k->name, v);
		return 0;
	case K_INT:
		errno = 0;
		iv = strtoll(v, &end, 10);
		if (errno || end == v || *end || iv < k->min || iv > k->max)
			return fail(l, n, "%s: '%s' is not a whole number from %lld to %lld",
			    k->name, v, (long long)k->min, (long long)k->max);
		*(int64_t *)field = iv;
		return 0;
	}
	return fail(l, n, "internal: bad key type");
}

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static int parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		if ((size_t)(rb - s - 1) >= hostlen)
			return -EINVAL;
		memcpy(host, s + 1, rb - s - 1);
		host[rb - s - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= hostlen)
			return -EINVAL;
		memcpy(host, s, colon - s);
		host[colon - s] = '\0';
	}
	p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

static int parse_tls_version(const char *v, int *out)
{
	static const char *const names[] = {"1.0", "1.1", "1.2", "1.3"};

	for (int i = 0; i < 4; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = 10 + i;
			return 0;
		}
	return -EINVAL;
}

/* {address: "0.0.0.0:8443", tls: {cert: ..., key: ..., min_version: "1.2"}} */
static int load_listen_map(struct loader *l, yaml_node_t *e, struct al_listen *ls, int idx)
{
	yaml_node_pair_t *pr;
	int have_addr = 0;
	char wk[40];

	for (pr = e->data.mapping.pairs.start; pr < e->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, pr->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, pr->value);
		const char *k = scalar(l, kn, "a listen key");
		if (k == NULL || check_dup(l, e, pr))
			return -EINVAL;
		if (strcmp(k, "address") == 0) {
			const char *v = scalar(l, vn, "listen.address");
			if (v == NULL || parse_hostport(v, ls->host, sizeof(ls->host), &ls->port))
				return fail(l, vn, "listen: address '%s' is not address:port", v ? v : "");
			have_addr = 1;
		} else if (strcmp(k, "tls") == 0) {
			yaml_node_pair_t *tp;
			if (vn->type != YAML_MAPPING_NODE)
				return fail(l, vn, "listen.tls must be a map {cert, key, min_version}");
			for (tp = vn->data.mapping.pairs.start; tp < vn->data.mapping.pairs.top; tp++) {
				yaml_node_t *tk = yaml_document_get_node(l->doc, tp->key);
				yaml_node_t *tv = yaml_document_get_node(l->doc, tp->value);
				const char *a = scalar(l, tk, "a tls key"), *b = scalar(l, tv, "a tls value");
				if (a == NULL || b == NULL || check_dup(l, vn, tp))
					return -EINVAL;
				if (strcmp(a, "cert") == 0) {
					free(ls->tls_cert);
					ls->tls_cert = strdup(b);
					snprintf(wk, sizeof(wk), "listen[%d].tls.cert", idx);
					note_where(l, wk, tv, NULL);
				} else if (strcmp(a, "key") == 0) {
					free(ls->tls_key);
					ls->tls_key = strdup(b);
					snprintf(wk, sizeof(wk), "listen[%d].tls.key", idx);
					note_where(l, wk, tv, NULL);
				} else if (strcmp(a, "min_version") == 0) {
					if (parse_tls_version(b, &ls->tls_min))
						return fail(l, tv, "listen.tls.min_version: '%s' is not 1.0, 1.1, 1.2 or 1.3", b);
				} else {
					return fail(l, tk, "unknown key '%s' in listen.tls (known: cert, key, min_version)", a);
				}
			}
			if (ls->tls_cert == NULL || ls->tls_key == NULL)
				return fail(l, vn, "listen.tls needs both cert and key");
		} else {
			return fail(l, kn, "unknown key '%s' in a listen entry (known: address, tls)", k);
		}
	}
	if (!have_addr)
		return fail(l, e, "a listen entry needs address");
	return 0;
}

static void listen_clear(struct al_config *c)
{
	for (int i = 0; i < c->nlisten; i++) {
		free(c->listen[i].tls_cert);
		free(c->listen[i].tls_key);
	}
	memset(c->listen, 0, sizeof(c->listen));
	c->nlisten = 0;
}

static int str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int al_listen_equal(const struct al_config *a, const struct al_config *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (int i = 0; i < a->nlisten; i++) {
		const struct al_listen *x = &a->listen[i], *y = &b->listen[i];
		if (strcmp(x->host, y->host) || x->port != y->port || x->tls_min != y->tls_min ||
		    !str_eq(x->tls_cert, y->tls_cert) || !str_eq(x->tls_key, y->tls_key))
			return 0;
	}
	return 1;
}

void al_listen_copy(struct al_config *dst, const struct al_config *src)
{
	listen_clear(dst);
	memcpy(dst->listen, src->listen, sizeof(src->listen));
	dst->nlisten = src->nlisten;
	for (int i = 0; i < dst->nlisten; i++) {
		dst->listen[i].tls_cert = src->listen[i].tls_cert ? strdup(src->listen[i].tls_cert) : NULL;
		dst->listen[i].tls_key = src->listen[i].tls_key ? strdup(src->listen[i].tls_key) : NULL;
	}
}

static int load_listen(struct loader *l, yaml_node_t *n)
{
	yaml_node_item_t *it;
	size_t lines[AL_MAX_LISTEN];

	listen_clear(l->c);
	if (n->type == YAML_SCALAR_NODE) {
		/* listen: "127.0.0.1:8080" is accepted as a list of one */
		const char *v = (const char *)n->data.scalar.value;
		if (parse_hostport(v, l->c->listen[0].host, sizeof(l->c->listen[0].host), &l->c->listen[0].port))
			return fail(l, n, "listen: '%s' is not address:port", v);
		l->c->listen[0].tls_min = 12;
		l->c->nlisten = 1;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, "listen must be a list of address:port");
	l->c->nlisten = 0;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		const char *v = e->type == YAML_SCALAR_NODE ? (const char *)e->data.scalar.value : NULL;
		struct al_listen *ls;
		if (v == NULL && e->type != YAML_MAPPING_NODE)
			return fail(l, e, "a listen entry is address:port or {address, tls}");
		if (l->c->nlisten >= AL_MAX_LISTEN)
			return fail(l, e, "listen: at most %d entries", AL_MAX_LISTEN);
		ls = &l->c->listen[l->c->nlisten];
		ls->tls_min = 12;
		if (v == NULL) {
			l->c->nlisten++;
			if (load_listen_map(l, e, ls, l->c->nlisten - 1))
				return -EINVAL;
		} else {
			if (parse_hostport(v, ls->host, sizeof(ls->host), &ls->port))
				return fail(l, e, "listen: '%s' is not address:port", v);
			l->c->nlisten++;
		}
		lines[l->c->nlisten - 1] = e->start_mark.line + 1;
		/* SO_REUSEPORT would let serve bind the same address twice without a word */
		for (int j = 0; j < l->c->nlisten - 1; j++)
			if (strcmp(l->c->listen[j].host, ls->host) == 0 && l->c->listen[j].port == ls->port)
				return fail(l, e, "listen: %s:%d is given twice (first at line %zu)", ls->host, ls->port,
				    lines[j]);
	}
	if (l->c->nlisten == 0)
		return fail(l, n, "listen: at least one address is needed");
	return 0;
}

/* "https://host[:port]" -> host, port; rejects paths, users and other schemes. */
static int parse_upstream_url(const char *u, char **host, int *port)
{
	const char *p;
	char hbuf[256];
	int defport;

	if (strncmp(u, "https://", 8) == 0) {
		p = u + 8;
		defport = 443;
	} else if (strncmp(u, "http://", 7) == 0) {
		p = u + 7;
		defport = 80;
	} else {
		return -EINVAL;
	}
	if (*p == '\0' || strpbrk(p, "/@?# ") != NULL)
		return -EINVAL;
	if (strchr(p, ':') != NULL && p[0] != '[') {
		if (parse_hostport(p, hbuf, sizeof(hbuf), port))
			return -EINVAL;
	} else {
		if (strlen(p) >= sizeof(hbuf))
			return -EINVAL;
		strcpy(hbuf, p);
		*port = defport;
	}
	*host = strdup(hbuf);
	return 0;
}

/*
 * A list of maps, such as routes: each entry must be a map, at most max
 * entries; every key goes to pair(), which returns 0, 1 for a key it does
 * not know (reported here with the known ones), or an error it reported.
 * done() checks the entry as a whole.
 */
struct map_list {
	const char *list;        /* the key, for messages: "routes" */
	const char *entry;       /* "a route" */
	const char *shape;       /* what an entry looks like, for messages */
	const char *known;       /* the keys an entry takes */
	int max;
	char *items;
	size_t size;
	int *count;
	int (*pair)(struct loader *l, void *item, const char *k, yaml_node_t *vn);
	int (*done)(struct loader *l, void *item, yaml_node_t *entry);
};

static int load_map_list(struct loader *l, yaml_node_t *n, const struct map_list *ml)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, "%s must be a list of %s", ml->list, ml->shape);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		yaml_node_pair_t *pr;
		void *item;

		if (e->type != YAML_MAPPING_NODE)
			return fail(l, e, "%s must be a map like %s", ml->entry, ml->shape);
		if (*ml->count >= ml->max)
			return fail(l, e, "%s: at most %d", ml->list, ml->max);
		item = ml->items + (size_t)(*ml->count)++ * ml->size;
		for (pr = e->data.mapping.pairs.start; pr < e->data.mapping.pairs.top; pr++) {
			yaml_node_t *kn = yaml_document_get_node(l->doc, pr->key);
			yaml_node_t *vn = yaml_document_get_node(l->doc, pr->value);
			const char *k = scalar(l, kn, "a key");
			int rc;
			if (k == NULL || check_dup(l, e, pr))
				return -EINVAL;
			if ((rc = ml->pair(l, item, k, vn)) < 0)
				return rc;
			if (rc == 1)
				return fail(l, kn, "unknown key '%s' in %s (known: %s)", k, ml->entry, ml->known);
		}
		if (ml->done(l, item, e) != 0)
			return -EINVAL;
	}
	return 0;
}

static int route_pair(struct loader *l, void *item, const char *k, yaml_node_t *vn)
{
	struct al_route *r = item;
	const char *v = scalar(l, vn, "a route value");

	if (v == NULL)
		return -EINVAL;
	if (strcmp(k, "prefix") == 0) {
		if (v[0] != '/')
			return fail(l, vn, "routes: prefix '%s' must start with /", v);
		free(r->prefix);
		r->prefix = strdup(v);
	} else if (strcmp(k, "upstream") == 0) {
		size_t len = strlen(v);
		free(r->upstream);
		free(r->host);
		r->host = NULL;
		r->upstream = strdup(v);
		if (len > 0 && r->upstream[len - 1] == '/')
			r->upstream[len - 1] = '\0';
		if (parse_upstream_url(r->upstream, &r->host, &r->port))
			return fail(l, vn, "routes: upstream '%s' must be http(s)://host[:port] with no path", v);
	} else if (strcmp(k, "registry") == 0) {
		if (parse_bool(v, &r->registry))
			return fail(l, vn, "routes: registry '%s' is not true or false", v);
	} else if (strcmp(k, "auth") == 0) {
		int b;
		if (parse_bool(v, &b))
			return fail(l, vn, "routes: auth '%s' is not true or false", v);
		r->auth = b ? AL_ROUTE_AUTH_REQUIRED : AL_ROUTE_AUTH_OPEN;
	} else if (strcmp(k, "strip_prefix") == 0) {
		if (parse_bool(v, &r->strip_prefix))
			return fail(l, vn, "routes: strip_prefix '%s' is not true or false", v);
	} else {
		return 1;
	}
	return 0;
}

static int route_done(struct loader *l, void *item, yaml_node_t *e)
{
	struct al_route *r = item;

	return r->prefix && r->upstream ? 0 : fail(l, e, "a route needs both prefix and upstream");
}

static int load_routes(struct loader *l, yaml_node_t *n)
{
	const struct map_list ml = {"routes", "a route", "{prefix, upstream}", "prefix, upstream, registry, auth, strip_prefix",
		AL_MAX_ROUTES, (char *)l->c->routes, sizeof(l->c->routes[0]), &l->c->nroutes, route_pair, route_done};

	for (int i = 0; i < l->c->nroutes; i++) {
		free(l->c->routes[i].prefix);
		free(l->c->routes[i].upstream);
		free(l->c->routes[i].host);
	}
	memset(l->c->routes, 0, sizeof(l->c->routes));
	l->c->nroutes = 0;
	return load_map_list(l, n, &ml);
}

static int load_resolve(struct loader *l, yaml_node_t *n)
{
	yaml_node_pair_t *pr;

	if (n->type != YAML_MAPPING_NODE)
		return fail(l, n, "upstream.resolve must map \"host:port\" to \"address:port\"");
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, pr->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, pr->value);
		const char *k = scalar(l, kn, "a resolve key");
		const char *v = scalar(l, vn, "a resolve value");
		char h[256];
		int port;
		struct al_resolve *r;

		if (k == NULL || v == NULL || check_dup(l, n, pr))
			return -EINVAL;
		if (parse_hostport(k, h, sizeof(h), &port))
			return fail(l, kn, "upstream.resolve: '%s' is not host:port", k);
		if (parse_hostport(v, h, sizeof(h), &port))
			return fail(l, vn, "upstream.resolve: '%s' is not address:port", v);
		if (l->c->nresolve >= AL_MAX_RESOLVE)
			return fail(l, kn, "upstream.resolve: at most %d entries", AL_MAX_RESOLVE);
		r = &l->c->resolve[l->c->nresolve++];
		r->from = strdup(k);
		r->to = strdup(v);
	}
	return 0;
}

static int rule_pair(struct loader *l, void *item, const char *k, yaml_node_t *vn)
{
	struct al_rule *r = item;
	const char *v = scalar(l, vn, "a rule value");

	if (v == NULL)
		return -EINVAL;
	if (strcmp(k, "match") == 0) {
		free(r->match);
		r->match = strdup(v);
	} else if (strcmp(k, "immutable") == 0) {
		if (parse_bool(v, &r->immutable))
			return fail(l, vn, "cache.rules: immutable '%s' is not true or false", v);
	} else if (strcmp(k, "ttl") == 0) {
		if (al_parse_duration_ms(v, &r->ttl_ms))
			return fail(l, vn, "cache.rules: ttl '%s' is not a duration", v);
	} else {
		return 1;
	}
	return 0;
}

static int rule_done(struct loader *l, void *item, yaml_node_t *e)
{
	const struct al_rule *r = item;

	if (r->match == NULL)
		return fail(l, e, "a rule needs match");
	if (r->immutable && r->ttl_ms >= 0)
		return fail(l, e, "a rule is either immutable or has a ttl, not both");
	return 0;
}

static int load_rules(struct loader *l, yaml_node_t *n)
{
	const struct map_list ml = {"cache.rules", "a rule", "{match: \"*.zip\", immutable: true}",
		"match, immutable, ttl", AL_MAX_RULES, (char *)l->c->rules, sizeof(l->c->rules[0]), &l->c->nrules,
		rule_pair, rule_done};

	for (int i = 0; i < l->c->nrules; i++)
		free(l->c->rules[i].match);
	memset(l->c->rules, 0, sizeof(l->c->rules));
	for (int i = 0; i < AL_MAX_RULES; i++)
		l->c->rules[i].ttl_ms = -1;
	l->c->nrules = 0;
	return load_map_list(l, n, &ml);
}

static int forward_pair(struct loader *l, void *item, const char *k, yaml_node_t *vn)
{
	struct al_forward_rule *r = item;
	const char *v;

	if (strcmp(k, "ports") == 0) {
		yaml_node_item_t *pi;
		if (vn->type != YAML_SEQUENCE_NODE)
			return fail(l, vn, "forward.allow: ports must be a list like [443, 8443]");
		r->nports = 0;
		for (pi = vn->data.sequence.items.start; pi < vn->data.sequence.items.top; pi++) {
			yaml_node_t *pn = yaml_document_get_node(l->doc, *pi);
			const char *pv = scalar(l, pn, "a port");
			char *end;
			long port;
			if (pv == NULL)
				return -EINVAL;
			port = strtol(pv, &end, 10);
			if (*end || port < 1 || port > 65535 || r->nports == 8)
				return fail(l, pn, "forward.allow: '%s' is not a port (at most 8)", pv);
			r->ports[r->nports++] = (int)port;
		}
		return 0;
	}
	if ((v = scalar(l, vn, "a forward rule value")) == NULL)
		return -EINVAL;
	if (strcmp(k, "host") == 0) {
		free(r->host);
		r->host = strdup(v);
	} else if (strcmp(k, "mode") == 0) {
		if (strcmp(v, "intercept") == 0)
			r->mode = AL_FWD_INTERCEPT;
		else if (strcmp(v, "tunnel") == 0)
			r->mode = AL_FWD_TUNNEL;
		else
			return fail(l, vn, "forward.allow: mode '%s' is not intercept or tunnel", v);
	} else if (strcmp(k, "registry") == 0) {
		if (parse_bool(v, &r->registry))
			return fail(l, vn, "forward.allow: registry '%s' is not true or false", v);
	} else {
		return 1;
	}
	return 0;
}

static int forward_done(struct loader *l, void *item, yaml_node_t *e)
{
	struct al_forward_rule *r = item;

	if (r->host == NULL)
		return fail(l, e, "a forward rule needs host");
	if (r->nports == 0) { /* ports other than 443 are denied unless listed */
		r->ports[0] = 443;
		r->nports = 1;
	}
	return 0;
}

static int load_forward(struct loader *l, yaml_node_t *n)
{
	const struct map_list ml = {"forward.allow", "a forward rule", "{host: epr.elastic.co, mode: intercept}",
		"host, mode, ports, registry", AL_MAX_FORWARD, (char *)l->c->forward, sizeof(l->c->forward[0]),
		&l->c->nforward, forward_pair, forward_done};

	return load_map_list(l, n, &ml);
}

int al_cidr_parse(const char *s, struct al_cidr *c)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	long bits;
	char *end;

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c->addr) == 1)
		c->family = AF_INET6;
	else
		return -EINVAL;
	bits = c->family == AF_INET ? 32 : 128;
	if (slash) {
		long b = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || b < 0 || b > bits)
			return -EINVAL;
		bits = b;
	}
	c->bits = (int)bits;
	return 0;
}

static int load_cidrs(struct loader *l, yaml_node_t *n, const char *key, struct al_cidr *out, int *count)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, "%s must be a list of CIDRs like [\"10.0.0.0/8\"]", key);
	*count = 0;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		const char *v = scalar(l, e, "a CIDR");
		if (v == NULL)
			return -EINVAL;
		if (*count >= AL_MAX_CIDRS)
			return fail(l, e, "%s: at most %d", key, AL_MAX_CIDRS);
		if (al_cidr_parse(v, &out[*count]))
			return fail(l, e, "%s: '%s' is not an address or CIDR", key, v);
		(*count)++;
	}
	return 0;
}

/*
 * upstream.parents: ["http://hq-airlock:8080", "https://user:pw@hq2:8443"].
 * Credentials become Proxy-Authorization on requests to that parent.
 */
static int load_parents(struct loader *l, yaml_node_t *n)
{
	yaml_node_item_t *it;
	struct al_config *c = l->c;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, "upstream.parents must be a list of URLs like [\"http://hq-airlock:8080\"]");
	for (int i = 0; i < c->nparents; i++)
		free(c->parents[i].base), free(c->parents[i].auth);
	c->nparents = 0;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		const char *v = scalar(l, e, "a parent URL"), *rest, *at, *end;
		struct al_parent *p;
		char *host = NULL;
		int port, https;

		if (v == NULL)
			return -EINVAL;
		if (c->nparents >= (int)(sizeof(c->parents) / sizeof(c->parents[0])))
			return fail(l, e, "upstream.parents: at most %d", (int)(sizeof(c->parents) / sizeof(c->parents[0])));
		https = strncmp(v, "https://", 8) == 0;
		if (!https && strncmp(v, "http://", 7) != 0)
			return fail(l, e, "upstream.parents: '%s' is not an http:// or https:// URL", v);
		rest = v + (https ? 8 : 7);
		end = rest + strcspn(rest, "/");
		if (*end == '/' && end[1] != '\0')
			return fail(l, e, "upstream.parents: '%s' has a path; give scheme://host:port only", v);
		at = memchr(rest, '@', (size_t)(end - rest));
		p = &c->parents[c->nparents];
		memset(p, 0, sizeof(*p));
		if (at != NULL) {
			unsigned char raw[256];
			char b64[400];
			int rl = (int)(at - rest);
			if (rl >= (int)sizeof(raw) || memchr(rest, ':', (size_t)rl) == NULL)
				return fail(l, e, "upstream.parents: credentials in '%s' must be user:password", v);
			memcpy(raw, rest, (size_t)rl);
			EVP_EncodeBlock((unsigned char *)b64, raw, rl);
			p->auth = malloc(strlen(b64) + 7);
			if (p->auth != NULL)
				sprintf(p->auth, "Basic %s", b64);
			rest = at + 1;
		}
		{
			char tmp[600];
			snprintf(tmp, sizeof(tmp), "%s://%.*s", https ? "https" : "http", (int)(end - rest), rest);
			if (parse_upstream_url(tmp, &host, &port) != 0) {
				free(p->auth);
				return fail(l, e, "upstream.parents: '%s' is not scheme://host[:port]", v);
			}
			free(host);
			p->base = strdup(tmp);
		}
		c->nparents++;
	}
	return 0;
}

/* import.trusted_keys: paths of Ed25519 public keys (airlock keygen's bundle.pub). */

static int load_clients(struct loader *l, yaml_node_t *n)
{
	return load_cidrs(l, n, "clients.allow", l->c->clients, &l->c->nclients);
}

static int load_admin(struct loader *l, yaml_node_t *n)
{
	return load_cidrs(l, n, "admin.allow", l->c->admin, &l->c->nadmin);
}

static int user_pair_in(struct loader *l, void *item, const char *k, yaml_node_t *vn, const char *list)
{
	struct al_user *u = item;
	const char *v = scalar(l, vn, "a user value");

	if (v == NULL)
		return -EINVAL;
	if (strcmp(k, "name") == 0) {
		free(u->name);
		u->name = strdup(v);
	} else if (strcmp(k, "password_hash") == 0) {
		if (strncmp(v, "pbkdf2-sha256$", 14) != 0)
			return fail(l, vn, "%s: password_hash must come from 'airlock passwd' (pbkdf2-sha256$...)", list);
		free(u->hash);
		u->hash = strdup(v);
	} else {
		return 1;
	}
	return 0;
}

static int user_pair(struct loader *l, void *item, const char *k, yaml_node_t *vn)
{
	return user_pair_in(l, item, k, vn, "forward.users");
}

static int client_user_pair(struct loader *l, void *item, const char *k, yaml_node_t *vn)
{
	return user_pair_in(l, item, k, vn, "clients.users");
}

static int user_done(struct loader *l, void *item, yaml_node_t *e)
{
	struct al_user *u = item;

	if (u->name == NULL || u->hash == NULL || strchr(u->name, ':') != NULL)
		return fail(l, e, "a user needs a name without ':' and a password_hash");
	return 0;
}

static void free_users(struct al_user *u, int *n)
{
	for (int i = 0; i < *n; i++) {
		free(u[i].name);
		free(u[i].hash);
	}
	memset(u, 0, sizeof(*u) * (size_t)*n);
	*n = 0;
}

static int load_users(struct loader *l, yaml_node_t *n)
{
	const struct map_list ml = {"forward.users", "a user", "{name, password_hash} (airlock passwd makes the hash)",
		"name, password_hash", AL_MAX_USERS, (char *)l->c->users, sizeof(l->c->users[0]), &l->c->nusers,
		user_pair, user_done};

	free_users(l->c->users, &l->c->nusers);
	return load_map_list(l, n, &ml);
}

static int load_client_users(struct loader *l, yaml_node_t *n)
{
	const struct map_list ml = {"clients.users", "a user", "{name, password_hash} (airlock passwd makes the hash)",
		"name, password_hash", AL_MAX_USERS, (char *)l->c->client_users, sizeof(l->c->client_users[0]),
		&l->c->nclient_users, client_user_pair, user_done};

	free_users(l->c->client_users, &l->c->nclient_users);
	return load_map_list(l, n, &ml);
}

static int api_key_pair(struct loader *l, void *item, const char *k, yaml_node_t *vn)
{
	struct al_api_key *a = item;
	const char *v = scalar(l, vn, "an API key value");

	if (v == NULL)
		return -EINVAL;
	if (strcmp(k, "name") == 0) {
		free(a->name);
		a->name = strdup(v);
	} else if (strcmp(k, "key_hash") == 0) {
		size_t n = strlen(v);
		if (n != 7 + 64 || strncmp(v, "sha256$", 7) != 0 || strspn(v + 7, "0123456789abcdef") != 64)
			return fail(l, vn, "clients.api_keys: key_hash must come from 'airlock passwd --api-key' (sha256$<64 hex>)");
		free(a->hash);
		a->hash = strdup(v);
	} else {
		return 1;
	}
	return 0;
}

static int api_key_done(struct loader *l, void *item, yaml_node_t *e)
{
	struct al_api_key *a = item;

	return a->name && a->hash ? 0 : fail(l, e, "an API key needs a name and a key_hash");
}

static int load_api_keys(struct loader *l, yaml_node_t *n)
{
	const struct map_list ml = {"clients.api_keys", "an API key", "{name, key_hash} (airlock passwd --api-key makes the hash)",
		"name, key_hash", AL_MAX_USERS, (char *)l->c->api_keys, sizeof(l->c->api_keys[0]), &l->c->napi_keys,
		api_key_pair, api_key_done};

	for (int i = 0; i < l->c->napi_keys; i++) {
		free(l->c->api_keys[i].name);
		free(l->c->api_keys[i].hash);
	}
	memset(l->c->api_keys, 0, sizeof(l->c->api_keys));
	l->c->napi_keys = 0;
	return load_map_list(l, n, &ml);
}

/*
 * A list of strings (globs or paths) into arr[0..max), replacing what was
 * there; the key's place is remembered for messages about what it names.
 */
static int load_strings(struct loader *l, yaml_node_t *n, const char *key, const char *what, char **arr,
    int *count, int max)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, "%s must be a list of %ss", key, what);
	for (int i = 0; i < *count; i++)
		free(arr[i]);
	*count = 0;
	note_where(l, key, n, NULL);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		const char *v = scalar(l, e, what);
		if (v == NULL)
			return -EINVAL;
		if (*count >= max)
			return fail(l, e, "%s: at most %d", key, max);
		arr[(*count)++] = strdup(v);
	}
	return 0;
}

static int load_verify(struct loader *l, yaml_node_t *n)
{
	return load_strings(l, n, "cache.verify_sha512", "URL glob", l->c->verify_sha512, &l->c->nverify, AL_MAX_RULES);
}

static int load_verify_models(struct loader *l, yaml_node_t *n)
{
	return load_strings(l, n, "cache.verify_models", "URL glob", l->c->verify_models, &l->c->nverify_models,
	    AL_MAX_RULES);
}

static int load_verify_pgp(struct loader *l, yaml_node_t *n)
{
	return load_strings(l, n, "cache.verify_pgp", "URL glob", l->c->verify_pgp, &l->c->nverify_pgp, AL_MAX_RULES);
}

static int load_pgp_keys(struct loader *l, yaml_node_t *n)
{
	return load_strings(l, n, "upstream.pgp_keys", "key file", l->c->pgp_keys, &l->c->npgp_keys, 16);
}

static int load_trusted(struct loader *l, yaml_node_t *n)
{
	return load_strings(l, n, "import.trusted_keys", "public key file", l->c->trusted_keys, &l->c->ntrusted_keys, 16);
}

/* Names a handler takes, with the handler. */
struct list_key {
	const char *name;
	int (*load)(struct loader *, yaml_node_t *);
};
static const struct list_key list_keys[] = {
	{"listen", load_listen},
	{"routes", load_routes},
	{"upstream.resolve", load_resolve},
	{"cache.rules", load_rules},
	{"cache.verify_sha512", load_verify},
	{"cache.verify_pgp", load_verify_pgp},
	{"cache.verify_models", load_verify_models},
	{"upstream.pgp_keys", load_pgp_keys},
	{"upstream.parents", load_parents},
	{"import.trusted_keys", load_trusted},
	{"forward.allow", load_forward},
	{"forward.users", load_users},
	{"clients.allow", load_clients},
	{"clients.users", load_client_users},
	{"clients.api_keys", load_api_keys},
	{"admin.allow", load_admin},
};

static int is_section(const char *name)
{
	for (int i = 0; sections[i] != NULL; i++)
		if (strcmp(sections[i], name) == 0)
			return 1;
	return 0;
}

static void known_keys(const char *prefix, char *buf, size_t len)
{
	size_t plen = strlen(prefix), used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		const char *nm = config_keys[i].name;
		if (plen ? (strncmp(nm, prefix, plen) == 0 && nm[plen] == '.') : strchr(nm, '.') == NULL) {
			const char *tail = plen ? nm + plen + 1 : nm;
			used += snprintf(buf + used, used < len ? len - used : 0, "%s%s", used ? ", " : "", tail);
		}
	}
	for (size_t i = 0; i < sizeof(list_keys) / sizeof(list_keys[0]); i++) {
		const char *nm = list_keys[i].name;
		if (plen ? (strncmp(nm, prefix, plen) == 0 && nm[plen] == '.') : strchr(nm, '.') == NULL) {
			const char *tail = plen ? nm + plen + 1 : nm;
			used += snprintf(buf + used, used < len ? len - used : 0, "%s%s", used ? ", " : "", tail);
		}
	}
	if (!plen)
		for (int i = 0; sections[i] != NULL; i++)
			used += snprintf(buf + used, used < len ? len - used : 0, ", %s", sections[i]);
}

static int load_map(struct loader *l, yaml_node_t *n, const char *prefix)
{
	yaml_node_pair_t *pr;

	if (n->type != YAML_MAPPING_NODE)
		return fail(l, n, "%s must be a map of keys", prefix[0] ? prefix : "the configuration");
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, pr->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, pr->value);
		const char *k = scalar(l, kn, "a key");
		char full[128];
		const struct config_key *ck;
		int handled = 0;

		if (k == NULL || check_dup(l, n, pr))
			return -EINVAL;
		snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", k);
		for (size_t i = 0; i < sizeof(list_keys) / sizeof(list_keys[0]); i++) {
			if (strcmp(list_keys[i].name, full) == 0) {
				if (list_keys[i].load(l, vn))
					return -EINVAL;
				handled = 1;
			}
		}
		if (handled)
			continue;
		if ((ck = find_key(full)) != NULL) {
			const char *v = scalar(l, vn, full);
			if (v == NULL || set_key(l, ck, v, vn))
				return -EINVAL;
			continue;
		}
		if (!prefix[0] && is_section(k)) {
			if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0)
				continue; /* "cache:" with nothing under it */
			if (load_map(l, vn, k))
				return -EINVAL;
			continue;
		}
		{
			char known[512];
			known_keys(prefix, known, sizeof(known));
			return fail(l, kn, "unknown key '%s'%s%s%s (known: %s)", k,
			    prefix[0] ? " in '" : "", prefix, prefix[0] ? "'" : "", known);
		}
	}
	return 0;
}

static int apply_defaults(struct loader *l)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (set_key(l, &config_keys[i], config_keys[i].def, NULL))
			return -EINVAL;
	for (int i = 0; al_default_rules[i].match != NULL; i++) {
		l->c->rules[i].match = strdup(al_default_rules[i].match);
		l->c->rules[i].immutable = al_default_rules[i].immutable;
		l->c->rules[i].ttl_ms = -1;
		l->c->nrules++;
	}
	{
		/* The artifact registry publishes URL.sha512 for every package. */
		static const char *const verify[] = {"https://artifacts.elastic.co/downloads/*.tar.gz",
			"https://artifacts.elastic.co/downloads/*.zip", "https://artifacts.elastic.co/downloads/*.deb",
			"https://artifacts.elastic.co/downloads/*.rpm", "https://artifacts.elastic.co/downloads/*.msi", NULL};
		for (int i = 0; verify[i] != NULL; i++)
			l->c->verify_sha512[l->c->nverify++] = strdup(verify[i]);
	}
	/* Elastic's trained models: the metadata names the .pt's sha256 and size (policy/models.c). */
	l->c->verify_models[l->c->nverify_models++] = strdup("https://ml-models.elastic.co/*.pt");
	{
		/* Who may use airlock by default: loopback and private networks. */
		static const char *const nets[] = {"127.0.0.0/8", "::1/128", "10.0.0.0/8",
			"172.16.0.0/12", "192.168.0.0/16", "fc00::/7", NULL};
		for (int i = 0; nets[i] != NULL; i++)
			al_cidr_parse(nets[i], &l->c->clients[l->c->nclients++]);
	}
	al_cidr_parse("127.0.0.0/8", &l->c->admin[l->c->nadmin++]);
	al_cidr_parse("::1/128", &l->c->admin[l->c->nadmin++]);
	strcpy(l->c->listen[0].host, "127.0.0.1");
	l->c->listen[0].port = 8080;
	l->c->listen[0].tls_min = 12;
	l->c->nlisten = 1;
	return 0;
}

/*
 * Environment overrides, in the style of the package registry's EPR_ADDRESS,
 * EPR_TLS_CERT, EPR_TLS_KEY and EPR_TLS_MIN_VERSION: they replace the first
 * listener, for containers configured by environment.
 */
static int apply_env(struct loader *l)
{
	const char *addr = getenv("AIRLOCK_ADDRESS"), *cert = getenv("AIRLOCK_TLS_CERT");
	const char *key = getenv("AIRLOCK_TLS_KEY"), *minv = getenv("AIRLOCK_TLS_MIN_VERSION");
	struct al_listen *ls = &l->c->listen[0];

	if (addr && *addr) {
		listen_clear(l->c);
		l->c->nlisten = 1;
		ls->tls_min = 12;
		if (parse_hostport(addr, ls->host, sizeof(ls->host), &ls->port))
			return fail(l, NULL, "AIRLOCK_ADDRESS: '%s' is not address:port", addr);
	}
	if (cert && *cert) {
		free(ls->tls_cert);
		ls->tls_cert = strdup(cert);
		note_where(l, "listen[0].tls.cert", NULL, "AIRLOCK_TLS_CERT");
	}
	if (key && *key) {
		free(ls->tls_key);
		ls->tls_key = strdup(key);
		note_where(l, "listen[0].tls.key", NULL, "AIRLOCK_TLS_KEY");
	}
	if (minv && *minv && parse_tls_version(minv, &ls->tls_min))
		return fail(l, NULL, "AIRLOCK_TLS_MIN_VERSION: '%s' is not 1.0, 1.1, 1.2 or 1.3", minv);
	if ((ls->tls_cert == NULL) != (ls->tls_key == NULL))
		return fail(l, NULL, "the first listener needs both a TLS certificate and key (AIRLOCK_TLS_CERT, AIRLOCK_TLS_KEY)");
	return 0;
}

/* Checks that span keys: run after the whole file is read. */
static int validate(struct loader *l)
{
	if (l->c->nroutes == 0)
		return fail(l, NULL, "no routes: add at least one {prefix, upstream} under routes");
	if (l->c->nverify_pgp > 0 && l->c->npgp_keys == 0)
		return fail(l, NULL, "cache.verify_pgp needs upstream.pgp_keys: the OpenPGP keys (Elastic's, from "
		    "/GPG-KEY-elastic-agent) the signatures must verify with");
	if (l->c->nparents > 0 && l->c->proxy != NULL)
		return fail(l, NULL, "upstream.parents and upstream.proxy both set: a child airlock reaches its "
		    "parents directly; give one of them");
	if (l->c->name == NULL || strpbrk(l->c->name, " ;,\"=") != NULL)
		return fail(l, NULL, "name must be a token (no spaces, ';', ',', '\"' or '='): it is this cache's "
		    "identifier in Cache-Status");
	if (l->c->cache_path == NULL)
		return fail(l, NULL, "cache.path must not be empty");
	if (l->c->cache_max_size < (1u << 20))
		return fail(l, NULL, "cache.max_size must be at least 1MiB");
	for (int i = 0; i < l->c->nforward; i++)
		if (l->c->forward[i].mode == AL_FWD_INTERCEPT &&
		    (l->c->forward_ca_cert == NULL || l->c->forward_ca_key == NULL))
			return fail(l, NULL, "forward.allow: %s is intercepted, which needs forward.ca_cert and "
			    "forward.ca_key (create them with 'airlock ca init')", l->c->forward[i].host);
	for (int i = 0; i < l->c->nroutes; i++)
		if (strncmp(l->c->routes[i].prefix, "/_airlock/", 10) == 0 ||
		    strcmp(l->c->routes[i].prefix, "/_airlock") == 0)
			return fail(l, NULL, "routes: prefix %s is reserved for airlock's own endpoints",
			    l->c->routes[i].prefix);
	if (l->c->nclient_users == 0 && l->c->napi_keys == 0) {
		int asks = l->c->client_auth_required;
		for (int i = 0; i < l->c->nroutes; i++)
			asks |= l->c->routes[i].auth == AL_ROUTE_AUTH_REQUIRED;
		if (asks)
			return fail(l, NULL, "client authentication is required (clients.auth_required or a route's "
			    "auth: true) but neither clients.users nor clients.api_keys is given: nobody could get in");
	}
	return 0;
}

int al_config_load_string(const char *name, const char *text, size_t len,
    struct al_config **out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct loader l = {.file = name, .err = err, .errlen = errlen};
	yaml_node_t *root;
	int rc = -EINVAL;

	l.c = calloc(1, sizeof(*l.c));
	if (l.c == NULL)
		return -ENOMEM;
	l.c->file = strdup(name);
	if (apply_defaults(&l))
		goto err_config;
	/* The embedded default carries the default routes; a file brings its own. */
	if (!yaml_parser_initialize(&parser))
		goto err_config;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", name, parser.problem_mark.line + 1,
		    parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
		    parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		goto err_config;
	}
	l.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		fail(&l, NULL, "the file is empty");
	else
		load_map(&l, root, "");
	if (!l.failed)
		apply_env(&l);
	if (!l.failed)
		validate(&l);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (l.failed)
		goto err_config;
	*out = l.c;
	return 0;

err_config:
	al_config_free(l.c);
	return rc;
}

int al_config_load(const char *path, struct al_config **out, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	int rc;

	if (path == NULL)
		return al_config_load_string("(embedded default)", al_config_default_yaml,
		    strlen(al_config_default_yaml), out, err, errlen);
	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -errno;
	}
	for (;;) {
		size_t n;
		if (len + 4096 > cap) {
			char *nb;
			if (cap > (4u << 20)) {
				snprintf(err, errlen, "%s: larger than 4 MiB", path);
				free(buf);
				fclose(f);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	rc = al_config_load_string(path, buf ? buf : "", len, out, err, errlen);
	free(buf);
	return rc;
}

void al_config_free(struct al_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		if (config_keys[i].type == K_STR)
			free(*(char **)((char *)c + config_keys[i].offset));
	listen_clear(c);
	for (int i = 0; i < c->nroutes; i++) {
		free(c->routes[i].prefix);
		free(c->routes[i].upstream);
		free(c->routes[i].host);
	}
	for (int i = 0; i < c->nresolve; i++) {
		free(c->resolve[i].from);
		free(c->resolve[i].to);
	}
	for (int i = 0; i < c->nrules; i++)
		free(c->rules[i].match);
	for (int i = 0; i < c->nforward; i++)
		free(c->forward[i].host);
	for (int i = 0; i < c->nverify; i++)
		free(c->verify_sha512[i]);
	for (int i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		free(c->users[i].hash);
	}
	for (int i = 0; i < c->nclient_users; i++) {
		free(c->client_users[i].name);
		free(c->client_users[i].hash);
	}
	for (int i = 0; i < c->napi_keys; i++) {
		free(c->api_keys[i].name);
		free(c->api_keys[i].hash);
	}
	for (int i = 0; i < c->nparents; i++)
		free(c->parents[i].base), free(c->parents[i].auth);
	for (int i = 0; i < c->ntrusted_keys; i++)
		free(c->trusted_keys[i]);
	for (int i = 0; i < c->nverify_pgp; i++)
		free(c->verify_pgp[i]);
	for (int i = 0; i < c->nverify_models; i++)
		free(c->verify_models[i]);
	for (int i = 0; i < c->npgp_keys; i++)
		free(c->pgp_keys[i]);
	free(c->file);
	free(c);
}

/*
 * Keys whose value is a list or a map have handlers, not rows of config_keys[]; their
 * descriptions live here so that `airlock help` and `airlock man` read one place.
 * cache.rules' default rules come from al_default_rules[] (policy/freshness.c).
 */
static const struct al_key_doc list_key_docs[] = {
	{"listen", "list of address:port or {address, tls: {cert, key, min_version}}", "127.0.0.1:8080"},
	{"routes", "list of {prefix, upstream, registry, auth: true|false (clients.auth_required when absent),\n"
	    "strip_prefix}; longest prefix wins; default routes:", NULL},
	{"cache.rules", "list of {match: glob, immutable: bool, ttl: duration}; first match decides,\n"
	    "{match} alone: the upstream's headers decide.  Defaults:", NULL},
	{"cache.verify_sha512", "URL globs checked against URL.sha512 before admission", NULL},
	{"cache.verify_models", "URL globs of model files X.pt checked against X.metadata.json's sha256 and size before admission",
	    "https://ml-models.elastic.co/*.pt"},
	{"cache.verify_pgp", "URL globs admitted only with a valid URL.asc (URL.sig under /epr/)", "none"},
	{"upstream.pgp_keys", "armored OpenPGP public keys those signatures must verify with", "none"},
	{"upstream.resolve", "map \"host:port\": \"address:port\"", NULL},
	{"import.trusted_keys", "Ed25519 public keys (airlock keygen) a bundle must be signed by", "none: not checked"},
	{"upstream.parents", "list of parent airlocks http(s)://[user:pw@]host:port, tried in order", "none"},
	{"forward.allow", "list of {host: name or *.suffix, mode: intercept|tunnel, ports, registry}", NULL},
	{"forward.users", "list of {name, password_hash} (airlock passwd); empty: no proxy auth", NULL},
	{"clients.allow", "CIDRs that may use airlock", "loopback and private networks"},
	{"clients.users", "list of {name, password_hash} (airlock passwd): Basic credentials for the reverse proxy", NULL},
	{"clients.api_keys", "list of {name, key_hash} (airlock passwd --api-key): \"Authorization: ApiKey <key>\"", NULL},
	{"admin.allow", "CIDRs that may use metrics, status and purge", "loopback"},
};

void al_config_each_key(void (*fn)(void *arg, const struct al_key_doc *k), void *arg)
{
	for (size_t i = 0; i < sizeof(list_key_docs) / sizeof(list_key_docs[0]); i++)
		fn(arg, &list_key_docs[i]);
	for (size_t i = 0; i < NKEYS; i++) {
		struct al_key_doc k = {config_keys[i].name, config_keys[i].help,
		    config_keys[i].def[0] ? config_keys[i].def : "unset"};
		fn(arg, &k);
	}
}

static void describe_key(void *stream, const struct al_key_doc *k)
{
	FILE *f = stream;
	struct al_config *def;
	char err[256];
	const char *nl = strchr(k->help, '\n');

	if (nl != NULL) /* a help text of two lines: the second under the first */
		fprintf(f, "  %-28s %.*s\n  %-28s %s", k->name, (int)(nl - k->help), k->help, "", nl + 1);
	else
		fprintf(f, "  %-28s %s", k->name, k->help);
	fprintf(f, k->def != NULL ? " [%s]\n" : "\n", k->def);
	if (strcmp(k->name, "routes") == 0 && al_config_load(NULL, &def, err, sizeof(err)) == 0) {
		for (int i = 0; i < def->nroutes; i++)
			fprintf(f, "  %-28s   %-30s %s%s%s\n", "", def->routes[i].prefix, def->routes[i].upstream,
			    def->routes[i].registry ? "  (registry)" : "", def->routes[i].strip_prefix ? "  (prefix stripped)" : "");
		al_config_free(def);
	}
	if (strcmp(k->name, "cache.rules") == 0)
		for (int i = 0; al_default_rules[i].match != NULL; i++)
			fprintf(f, "  %-28s   %s%s\n  %-28s     (%s)\n", "", al_default_rules[i].match,
			    al_default_rules[i].immutable ? "  immutable" : "", "", al_default_rules[i].why);
}

void al_config_describe(void *stream)
{
	FILE *f = stream;

	fprintf(f, "Configuration keys (YAML; sizes take B/KiB/MiB/GiB, durations ms/s/m/h):\n");
	al_config_each_key(describe_key, f);
}
