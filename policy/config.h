/*
 * airlock configuration: one YAML file (or the embedded default), loaded
 * into an immutable struct al_config.  Every scalar key lives in one table
 * in config.c (name, type, default, help); the loader, `airlock
 * check-config` and the error messages all read that table.
 *
 * Ownership: al_config_load() returns a config the caller frees with
 * al_config_free(); nothing in it points into the YAML text.
 */
#ifndef AIRLOCK_POLICY_CONFIG_H
#define AIRLOCK_POLICY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define AL_MAX_LISTEN 16
#define AL_MAX_ROUTES 64
#define AL_MAX_RESOLVE 64
#define AL_MAX_RULES 64

struct al_listen {
	char host[64];
	int port;
	char *tls_cert;            /* HTTPS listener when set */
	char *tls_key;
	int tls_min;               /* 10..13 for TLS 1.0..1.3 */
};

struct al_route {
	char *prefix;     /* path prefix, starts with '/' */
	char *upstream;   /* scheme://host[:port], no trailing slash */
	char *host;       /* host part of upstream, for upstream state */
	int port;
	int registry;     /* the upstream is a package registry (offline answers) */
	int auth;         /* client credentials: AL_ROUTE_AUTH_* (clients.auth_required when unset) */
	int strip_prefix; /* the upstream path is the request path less the prefix (its trailing '/' kept) */
};

enum { AL_ROUTE_AUTH_INHERIT, AL_ROUTE_AUTH_REQUIRED, AL_ROUTE_AUTH_OPEN };

struct al_resolve {
	char *from;       /* host:port as requested */
	char *to;         /* address:port to connect to instead */
};

/*
 * A freshness rule: the first rule whose glob (fnmatch with FNM_EXTMATCH)
 * matches the URL path decides, for 200 responses.  Neither immutable nor
 * a ttl: the upstream's own Cache-Control/Expires decide (RFC 9111), and
 * later rules are not consulted.
 */
struct al_rule {
	char *match;
	int immutable;    /* never stale */
	int64_t ttl_ms;   /* >= 0: freshness lifetime override; -1: unset */
};

enum al_fwd_mode { AL_FWD_TUNNEL, AL_FWD_INTERCEPT };

/* Forward-proxy allow rule: host is exact or "*.suffix" (any subdomain). */
struct al_forward_rule {
	char *host;
	enum al_fwd_mode mode;
	int ports[8];              /* allowed ports; default 443 only */
	int nports;
	int registry;
};

struct al_cidr {
	int family;                /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int bits;
};

struct al_user {
	char *name;
	char *hash;                /* pbkdf2-sha256$iterations$salt_hex$hash_hex */
};

/* A reverse-proxy client's API key (clients.api_keys): only its digest is kept. */
struct al_api_key {
	char *name;                /* for the access log */
	char *hash;                /* sha256$<64 hex> of the key as the client sends it */
};

#define AL_MAX_FORWARD 64
#define AL_MAX_CIDRS 64
#define AL_MAX_USERS 64

struct al_config {
	char *file;                       /* where it came from, for messages */
	struct al_listen listen[AL_MAX_LISTEN];
	int nlisten;
	int64_t workers;                  /* 0: one per core */
	int64_t max_connections;

	char *cache_path;
	uint64_t cache_max_size;
	uint64_t cache_max_object_size;
	uint64_t cache_hot_memory;        /* proxy/front/hot.h, split over the workers */
	struct al_rule rules[AL_MAX_RULES];
	int nrules;
	char *verify_sha512[AL_MAX_RULES];  /* URL globs whose body is checked against URL.sha512 */
	int nverify;
	char *verify_models[AL_MAX_RULES];  /* URL globs of model files (X.pt) checked against X.metadata.json */
	int nverify_models;

	char *ca_file;
	int64_t connect_timeout_ms;
	int64_t first_byte_timeout_ms;
	int64_t idle_timeout_ms;          /* upstream stalls mid-body */
	int64_t probe_interval_ms;
	int64_t probe_max_interval_ms;
	int offline;                      /* forced cache-only */
	int stale_on_5xx;
	char *proxy;                      /* parent proxy URL or NULL */
	/*
	 * Parent airlocks (upstream.parents), tried in order: the canonical URL is
	 * asked of the parent in absolute form, so cache keys stay the same on
	 * every tier.  base: "http(s)://host:port"; auth: "Basic ..." or NULL.
	 */
	struct al_parent {
		char *base;
		char *auth;
	} parents[8];
	int nparents;
	struct al_resolve resolve[AL_MAX_RESOLVE];
	int nresolve;

	struct al_route routes[AL_MAX_ROUTES];
	int nroutes;

	int64_t client_header_timeout_ms;
	int64_t client_idle_timeout_ms;
	uint64_t client_max_header_bytes;
	int64_t client_max_headers;

	char *forward_ca_cert;
	char *forward_ca_key;
	struct al_forward_rule forward[AL_MAX_FORWARD];
	int nforward;
	struct al_user users[AL_MAX_USERS];
	int nusers;
	struct al_cidr clients[AL_MAX_CIDRS];
	int nclients;
	/* reverse-proxy client authentication (policy/access.h al_client_auth) */
	struct al_user client_users[AL_MAX_USERS];
	int nclient_users;
	struct al_api_key api_keys[AL_MAX_USERS];
	int napi_keys;
	int client_auth_required;         /* clients.auth_required: every route unless it says auth: false */

	struct al_cidr admin[AL_MAX_CIDRS];
	int nadmin;
	char *admin_token;                /* bearer token for admin endpoints, or NULL */
	int64_t shutdown_timeout_ms;      /* SIGTERM: how long in-flight responses may finish */

	char *name;                       /* this cache's name in Cache-Status (RFC 9211) */
	char *trusted_keys[16];           /* import.trusted_keys: bundle signers' public keys (paths) */
	char *verify_pgp[AL_MAX_RULES];   /* cache.verify_pgp: URL globs needing a valid OpenPGP signature */
	int nverify_pgp;
	char *pgp_keys[16];               /* upstream.pgp_keys: the pinned OpenPGP public keys (paths) */
	int npgp_keys;
	int ntrusted_keys;
	char *log_level;
	char *access_log;                 /* "-" stdout, path, or "off" */

	/* where keys that name files were set, for messages about those files (al_config_where) */
	struct al_where {
		char key[40];                 /* "upstream.ca_file", "listen[0].tls.key" */
		unsigned line, col;           /* 1-based; 0: set from the environment */
		const char *env;              /* the variable, when line is 0 */
	} where[AL_MAX_LISTEN * 2 + 16];
	int nwhere;
};

/* The built-in configuration used when no file is given. */
extern const char al_config_default_yaml[];

/*
 * Load from a file, or from the embedded default when path is NULL.
 * Returns 0 and sets *out, or -EINVAL and writes "file:line:col: what" to err.
 */
int al_config_load(const char *path, struct al_config **out, char *err, size_t errlen);
int al_config_load_string(const char *name, const char *text, size_t len,
    struct al_config **out, char *err, size_t errlen);
void al_config_free(struct al_config *c);

/*
 * "file:line:col" of the value of key (as recorded while loading: every
 * string key, listen[N].tls.cert/key), "VARIABLE (environment)", or the
 * file name alone.  Writes into buf and returns it.
 */
const char *al_config_where(const struct al_config *c, const char *key, char *buf, size_t len);

/* Listener lists: equal (addresses and TLS settings), and deep copy (dst's own are freed). */
int al_listen_equal(const struct al_config *a, const struct al_config *b);
void al_listen_copy(struct al_config *dst, const struct al_config *src);

/* "10.0.0.0/8", "::1" -> c; 0 or -EINVAL. */
int al_cidr_parse(const char *s, struct al_cidr *c);

/* Print every key with its default and help text (for --help). */
void al_config_describe(void *stream);

/*
 * One configuration key as `airlock help` and `airlock man` show it.  help may hold one '\n'
 * (two lines); def is the default as the file would write it, "unset", or NULL for none to show.
 * The strings are static.
 */
struct al_key_doc {
	const char *name, *help, *def;
};

/* Call fn for every key, list and map keys first, then the scalar table, in `airlock help` order. */
void al_config_each_key(void (*fn)(void *arg, const struct al_key_doc *k), void *arg);

#endif
