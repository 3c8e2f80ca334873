/*
 * airlock doctor: is this cache enough for an air-gapped Stack?
 *
 * Everything is read from the cache (one store, no network), through the
 * configured reverse routes, the way the clients will ask for it:
 *
 *   Elastic Agent upgrades   /downloads/beats/elastic-agent/elastic-agent-V-P.tar.gz (zip on Windows),
 *                            its .sha512 and .asc, for each platform P, and /GPG-KEY-elastic-agent
 *   Elastic Defend           /downloads/endpoint/manifest/artifacts-E.zip, every relative_url it
 *                            lists, and how old it is (Elastic advises monthly updates)
 *   Kibana's Integrations    the list Kibana K is given by /search, computed from the cached package
 *                            documents with the offline registry's rules (policy/registry.c), plus
 *                            the packages a cached upstream /search answer named; for each, its
 *                            document, its archive ("download") and signature ("signature_path")
 *
 * and says, for each thing missing, which client fails and how.  Exit 0
 * only when nothing is missing; 1 otherwise; 2 for a usage or config error.
 */
#include "proxy/cli/doctor.h"
#include "cache/store.h"
#include "policy/config.h"
#include "policy/manifest.h"
#include "policy/plan.h"
#include "policy/registry.h"
#include "policy/route.h"
#include "proxy/cli/tools.h"
#include "proxy/front/admin.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLATFORMS "linux-x86_64,linux-arm64,windows-x86_64,darwin-x86_64,darwin-aarch64"
#define MANIFEST_MAX_AGE (30 * 86400)

/*
 * Who fails, and how, when a thing is missing.  The agent's side is read
 * from elastic-agent at 07adab5bc3d2, internal/pkg/agent/application/
 * upgrade/artifact/download/verify.go: VerifySHA512Hash needs the .sha512
 * sidecar, FetchPGPSignature the .asc, and AppendFallbackPGP adds
 * https://artifacts.elastic.co/GPG-KEY-elastic-agent (defaultUpgradeFallbackPGP)
 * to the keys tried after the embedded one.  The package side follows the
 * fields of a package document (package-registry's Package: download,
 * signature_path) that Kibana's Fleet fetches to install a package.
 */
static const struct {
	const char *kind, *client, *how;
} FAILS[] = {
	{"agent-artifact", "Elastic Agent (upgrade from Fleet)",
	 "the download of the package fails (airlock answers 504 offline: not in the cache); the upgrade is "
	 "reported failed and the agent stays on its version"},
	{"agent-artifact-sha512", "Elastic Agent (upgrade from Fleet)",
	 "the download is refused: the .sha512 sidecar it checks the package against cannot be fetched "
	 "(verify.go VerifySHA512Hash)"},
	{"agent-artifact-signature", "Elastic Agent (upgrade from Fleet)",
	 "the download is refused: the .asc signature cannot be fetched (verify.go FetchPGPSignature)"},
	{"gpg-key", "Elastic Agent (upgrade from Fleet)",
	 "when the key embedded in the agent does not verify the package, the fallback key "
	 "(verify.go defaultUpgradeFallbackPGP) cannot be fetched and the upgrade fails"},
	{"endpoint-manifest", "Elastic Defend (Endpoint)",
	 "cannot download its global artifacts (protection rules, exception lists): it keeps what it has and "
	 "reports the failure in its policy response"},
	{"endpoint-artifact", "Elastic Defend (Endpoint)",
	 "the manifest names an artifact the cache lacks: its download fails and the artifact update is "
	 "reported failed"},
	{"package-document", "Kibana (Fleet)",
	 "installing or upgrading the package fails: its document (GET /package/NAME/VERSION/) is not in the cache"},
	{"package-archive", "Kibana (Fleet)",
	 "installing the package fails: its archive cannot be downloaded"},
	{"package-signature", "Kibana (Fleet)",
	 "the package cannot be verified: with package verification on, Fleet refuses to install it unverified "
	 "(unless forced)"},
	{"package-list", "Kibana (Fleet)",
	 "no package document for this Kibana version: the Integrations page is empty offline, and Fleet cannot "
	 "install the packages it needs (system, elastic_agent, fleet_server...)"},
	{NULL, NULL, NULL},
};

struct doctor {
	const struct al_config *cfg;
	struct al_store *s;
	struct al_reader *rd;
	json_t *missing;          /* [{url, kind, what, client, failure}] */
	int checked, present;
};

/* path through the reverse routes -> the cached URL (the cache key's text) */
static int path_url(const struct al_config *cfg, const char *path, char *url, size_t cap)
{
	const struct al_route *r = al_route_find(cfg, path, strlen(path));
	int n;

	if (r == NULL || (n = al_route_url(r, path, strlen(path), url, cap)) < 0)
		return -ENOENT;
	return n;
}

/* Is a 200 for path stored?  1 yes (and *rec, valid until al_reader_end), 0 no. */
static int have(struct doctor *d, const char *path, struct al_record *rec)
{
	char url[4096];
	uint8_t key[AL_KEY_LEN];
	struct al_record r;
	int n;

	if ((n = path_url(d->cfg, path, url, sizeof(url))) < 0)
		return 0;
	al_store_key(url, (size_t)n, key);
	al_reader_begin(d->rd);
	if (al_lookup(d->rd, key, &r) != 0 || r.status != 200)
		return 0;
	if (rec)
		*rec = r;
	return 1;
}

static void need(struct doctor *d, const char *path, const char *kind, const char *what)
{
	char url[4096];
	int i;

	d->checked++;
	if (have(d, path, NULL)) {
		d->present++;
		return;
	}
	for (i = 0; FAILS[i].kind && strcmp(FAILS[i].kind, kind); i++)
		;
	if (path_url(d->cfg, path, url, sizeof(url)) < 0)
		snprintf(url, sizeof(url), "%s (no route)", path);
	json_array_append_new(d->missing, json_pack("{s:s, s:s, s:s, s:s, s:s}", "url", url, "kind", kind, "what", what,
	    "client", FAILS[i].client ? FAILS[i].client : "", "failure", FAILS[i].how ? FAILS[i].how : ""));
}

/*
 * The agent's package name for a platform: elastic-agent's Artifact.FileName
 * (artifact.go at 07adab5bc3d2) joins name, version and a packageArchMap
 * suffix: "-windows-x86_64.zip" on Windows, "-<os>-<arch>.tar.gz" elsewhere.
 */
static void agent(struct doctor *d, const char *v, const char *platforms)
{
	for (const char *p = platforms; p && *p;) {
		const char *c = strchr(p, ',');
		char plat[64], path[512], what[200];
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len > 0 && len < sizeof(plat)) {
			memcpy(plat, p, len);
			plat[len] = '\0';
			snprintf(path, sizeof(path), "/downloads/beats/elastic-agent/elastic-agent-%s-%s.%s", v, plat,
			    strncmp(plat, "windows", 7) == 0 ? "zip" : "tar.gz");
			snprintf(what, sizeof(what), "Elastic Agent %s for %s", v, plat);
			need(d, path, "agent-artifact", what);
			strcat(path, ".sha512");
			need(d, path, "agent-artifact-sha512", what);
			strcpy(path + strlen(path) - 7, ".asc");
			need(d, path, "agent-artifact-signature", what);
		}
		p = c ? c + 1 : NULL;
	}
	need(d, "/GPG-KEY-elastic-agent", "gpg-key", "Elastic's agent signing key");
}

struct arts {
	struct doctor *d;
	char what[200];
};

static void endpoint_artifact(const char *rel, void *arg)
{
	struct arts *a = arg;
	need(a->d, rel, "endpoint-artifact", a->what);
}

/* The manifest, what it lists, and its age; *manifest gets {url, manifest_version, published, age_days}. */
static void endpoint(struct doctor *d, const char *v, json_t **manifest)
{
	char path[300], url[4096], mv[400], err[300];
	struct al_record rec;
	struct arts a = {d, ""};
	time_t when = 0;
	char *zip = NULL;

	snprintf(path, sizeof(path), "/downloads/endpoint/manifest/artifacts-%s.zip", v);
	snprintf(a.what, sizeof(a.what), "Endpoint artifacts manifest %s", v);
	need(d, path, "endpoint-manifest", a.what);
	*manifest = NULL;
	if (path_url(d->cfg, path, url, sizeof(url)) < 0 || !have(d, path, &rec))
		return;
	if (al_body_read(d->rd, &rec, 64u << 20, &zip) == 0) {
		snprintf(a.what, sizeof(a.what), "an artifact listed by Endpoint manifest %s", v);
		if (al_endpoint_manifest(zip, rec.body_len, mv, sizeof(mv), endpoint_artifact, &a, err, sizeof(err)) < 0)
			snprintf(mv, sizeof(mv), "(unreadable: %s)", err);
		free(zip);
	}
	al_reader_end(d->rd);
	if (al_manifest_info(d->rd, url, mv, sizeof(mv), &when) == 0)
		*manifest = json_pack("{s:s, s:s, s:I, s:I}", "url", url, "manifest_version", mv, "published",
		    (json_int_t)when, "age_days", (json_int_t)((time(NULL) - when) / 86400));
}

/* Cached package documents under prefix (as proxy/front/offline_registry.c gathers them). */
struct docs {
	const char *prefix;
	size_t plen;
	struct al_reader *rd;
	json_t *v;
};

static int collect_doc(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct docs *d = arg;
	const char *rest = r->url + d->plen, *end = r->url + r->url_len, *slash;
	char *buf;
	json_t *j;

	(void)key;
	if (r->status != 200 || r->url_len <= d->plen || memcmp(r->url, d->prefix, d->plen) != 0 ||
	    memchr(rest, '?', (size_t)(end - rest)) != NULL)
		return 0;
	slash = memchr(rest, '/', (size_t)(end - rest));
	if (slash == NULL || slash == rest || slash + 1 >= end)
		return 0;
	slash = memchr(slash + 1, '/', (size_t)(end - slash - 1));
	if (slash != NULL && slash + 1 != end)
		return 0;
	if (al_body_read(d->rd, r, 8u << 20, &buf) != 0)
		return 0;
	if ((j = json_loadb(buf, r->body_len, 0, NULL)) != NULL && json_is_object(j))
		json_array_append(d->v, j);
	json_decref(j);
	free(buf);
	return 0;
}

static json_t *find_doc(json_t *docs, const char *name, const char *version)
{
	size_t i;
	json_t *doc;

	json_array_foreach(docs, i, doc) {
		const char *n = json_string_value(json_object_get(doc, "name"));
		const char *v = json_string_value(json_object_get(doc, "version"));
		if (n && v && !strcmp(n, name) && !strcmp(v, version))
			return doc;
	}
	return NULL;
}

static int safe_name(const char *s)
{
	return s != NULL && s[0] && !strpbrk(s, "/?#%") && !strstr(s, "..");
}

/* Kibana's list: computed from cached documents, with what a cached upstream /search named. */
static int packages(struct doctor *d, const char *k, json_t **list_out)
{
	char q[200], path[300], prefix[4096], dpath[700], what[400];
	struct al_registry_query query;
	struct docs docs = {prefix, 0, NULL, json_array()};
	json_t *list = json_array(), *computed = NULL, *upstream = NULL, *e;
	char *body = NULL;
	struct al_record rec;
	size_t i;
	int n;

	snprintf(q, sizeof(q), "kibana.version=%s&prerelease=false", k);
	if (al_registry_query_parse(q, strlen(q), 0, &query) != 0) {
		fprintf(stderr, "airlock doctor: --kibana %s: %s\n", k, query.error);
		json_decref(list);
		json_decref(docs.v);
		return -EINVAL;
	}
	if ((n = path_url(d->cfg, "/package/", prefix, sizeof(prefix))) < 0 || al_reader_new(d->s, &docs.rd) != 0) {
		json_decref(list);
		json_decref(docs.v);
		return -ENOENT;
	}
	docs.plen = (size_t)n;
	al_reader_begin(docs.rd);
	al_store_foreach(d->s, collect_doc, &docs);
	al_reader_free(docs.rd);
	if ((body = al_registry_search(docs.v, &query)) != NULL)
		computed = json_loads(body, 0, NULL);
	free(body);
	body = NULL;
	/* what the registry itself answered Kibana, if mirror kept it: the same path mirror asks */
	snprintf(path, sizeof(path), "/search?%s", q);
	if (have(d, path, &rec) && al_body_read(d->rd, &rec, 64u << 20, &body) == 0)
		upstream = json_loads(body, 0, NULL);
	al_reader_end(d->rd);
	free(body);
	for (int pass = 0; pass < 2; pass++) {
		json_t *src = pass == 0 ? computed : upstream;
		if (!json_is_array(src))
			continue;
		json_array_foreach(src, i, e) {
			const char *name = json_string_value(json_object_get(e, "name"));
			const char *ver = json_string_value(json_object_get(e, "version"));
			int dup = 0;
			size_t j;
			json_t *x;
			if (!safe_name(name) || !safe_name(ver))
				continue;
			json_array_foreach(list, j, x)
				if (!strcmp(json_string_value(json_object_get(x, "name")), name) &&
				    !strcmp(json_string_value(json_object_get(x, "version")), ver))
					dup = 1;
			if (!dup)
				json_array_append_new(list, json_pack("{s:s, s:s}", "name", name, "version", ver));
		}
	}
	if (json_array_size(list) == 0) {
		snprintf(what, sizeof(what), "Kibana %s's list of packages", k);
		d->checked++;
		json_array_append_new(d->missing, json_pack("{s:s, s:s, s:s, s:s, s:s}", "url", prefix, "kind",
		    "package-list", "what", what, "client", "Kibana (Fleet)", "failure", FAILS[9].how));
	}
	json_array_foreach(list, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *ver = json_string_value(json_object_get(e, "version"));
		json_t *doc = find_doc(docs.v, name, ver);
		snprintf(what, sizeof(what), "package %s %s for Kibana %s", name, ver, k);
		snprintf(dpath, sizeof(dpath), "/package/%s/%s/", name, ver);
		need(d, dpath, "package-document", what);
		if (doc != NULL) {
			const char *dl = json_string_value(json_object_get(doc, "download"));
			const char *sig = json_string_value(json_object_get(doc, "signature_path"));
			if (dl && dl[0] == '/' && !strstr(dl, ".."))
				need(d, dl, "package-archive", what);
			if (sig && sig[0] == '/' && !strstr(sig, ".."))
				need(d, sig, "package-signature", what);
		}
	}
	*list_out = list;
	json_decref(computed);
	json_decref(upstream);
	json_decref(docs.v);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "Usage:\n"
	    "  airlock doctor --stack VERSION [--platforms LIST] [--kibana VERSION] [--endpoint VERSION] [--json]"
	    " [--config FILE]\n"
	    "      LIST is comma-separated (default %s);\n"
	    "      --kibana and --endpoint default to the Stack version.  Exit 0 only when nothing is missing.\n",
	    PLATFORMS);
	return 2;
}

int doctor_main(int argc, char **argv)
{
	const char *stack = NULL, *platforms = PLATFORMS, *kibana = NULL, *ep = NULL, *config = NULL;
	struct doctor d = {0};
	struct al_config *cfg;
	json_t *manifest = NULL, *pkgs = NULL, *out;
	char err[1024];
	int json = 0, rc;
	size_t i;

	for (int k = 1; k < argc; k++) {
		const char *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
		if (!strcmp(a, "--stack") && v)
			stack = v, k++;
		else if (!strcmp(a, "--platforms") && v)
			platforms = v, k++;
		else if (!strcmp(a, "--kibana") && v)
			kibana = v, k++;
		else if (!strcmp(a, "--endpoint") && v)
			ep = v, k++;
		else if (!strcmp(a, "--config") && v)
			config = v, k++;
		else if (!strcmp(a, "--json"))
			json = 1;
		else
			return usage();
	}
	kibana = kibana ? kibana : stack;
	ep = ep ? ep : stack;
	if (!al_plan_version_shape(stack) || !al_plan_version_shape(kibana) || !al_plan_version_shape(ep)) {
		if (stack == NULL)
			return usage();
		fprintf(stderr, "airlock doctor: '%s' is not a version\n",
		    !al_plan_version_shape(stack) ? stack : !al_plan_version_shape(kibana) ? kibana : ep);
		return 2;
	}
	for (const char *p = platforms; *p;) {
		const char *c = strchr(p, ',');
		char plat[64];
		size_t len = c ? (size_t)(c - p) : strlen(p);
		snprintf(plat, sizeof(plat), "%.*s", (int)(len < 63 ? len : 63), p);
		if (!al_plan_in_list(PLATFORMS, plat)) {
			fprintf(stderr, "airlock doctor: --platforms: '%s' is not one of %s\n", plat, PLATFORMS);
			return 2;
		}
		p = c ? c + 1 : p + len;
	}
	if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return 2;
	}
	if (al_store_open(cfg->cache_path, cfg->cache_max_size, 126, &d.s, err, sizeof(err)) != 0 ||
	    al_reader_new(d.s, &d.rd) != 0) {
		fprintf(stderr, "airlock doctor: %s\n", err);
		al_store_close(d.s);
		al_config_free(cfg);
		return 2;
	}
	d.cfg = cfg;
	d.missing = json_array();
	agent(&d, stack, platforms);
	endpoint(&d, ep, &manifest);
	if (packages(&d, kibana, &pkgs) != 0)
		pkgs = json_array();
	out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:O, s:o, s:o}", "stack", stack, "platforms", platforms,
	    "kibana", kibana, "endpoint", ep, "checked", d.checked, "present", d.present, "missing_count",
	    (int)json_array_size(d.missing), "missing", d.missing, "endpoint_manifest",
	    manifest ? manifest : json_null(), "packages", pkgs);
	if (manifest != NULL)
		json_object_set_new(out, "endpoint_manifest_old",
		    json_boolean(json_integer_value(json_object_get(manifest, "age_days")) * 86400 > MANIFEST_MAX_AGE));
	if (json) {
		char *s = json_dumps(out, JSON_INDENT(2));
		puts(s);
		free(s);
	} else {
		json_t *m;
		printf("airlock doctor: Stack %s (agents for %s), Kibana %s, Endpoint %s, from the cache %s\n", stack,
		    platforms, kibana, ep, cfg->cache_path);
		json_array_foreach(d.missing, i, m) {
			printf("MISSING %s\n    %s\n    %s: %s\n", json_string_value(json_object_get(m, "url")),
			    json_string_value(json_object_get(m, "what")), json_string_value(json_object_get(m, "client")),
			    json_string_value(json_object_get(m, "failure")));
		}
		if (manifest != NULL) {
			json_int_t age = json_integer_value(json_object_get(manifest, "age_days"));
			printf("Endpoint manifest %s: manifest_version %s, published %lld days ago%s\n", ep,
			    json_string_value(json_object_get(manifest, "manifest_version")), (long long)age,
			    age * 86400 > MANIFEST_MAX_AGE ? "  WARNING: older than 30 days; Elastic advises monthly updates"
			    : "");
		}
		printf("Kibana %s's packages: %zu\n", kibana, json_array_size(pkgs));
		printf("%s: %d of %d present, %zu missing\n", json_array_size(d.missing) ? "NOT READY" : "ready",
		    d.present, d.checked, json_array_size(d.missing));
	}
	rc = json_array_size(d.missing) ? 1 : 0;
	json_decref(out);
	json_decref(d.missing);
	al_reader_free(d.rd);
	al_store_close(d.s);
	al_config_free(cfg);
	return rc;
}
