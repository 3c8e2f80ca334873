/*
 * Readiness: is this cache enough for an air-gapped Stack of a version?
 * `airlock doctor` prints it; the server's status page and metrics show it
 * for each Stack version the cache holds Elastic Agent packages for
 * (proxy/front/readiness.c computes it there, on its own thread).
 *
 * Everything is read from the store, through the configured reverse
 * routes, the way the clients will ask for it:
 *
 *   Elastic Agent upgrades   /downloads/beats/elastic-agent/elastic-agent-V-P.tar.gz (zip on Windows),
 *                            its .sha512 and .asc, for each platform P, and /GPG-KEY-elastic-agent
 *   Elastic Defend           /downloads/endpoint/manifest/artifacts-E.zip, every relative_url it
 *                            lists, and how old it is (Elastic advises monthly updates)
 *   Kibana's Integrations    the list Kibana K is given by /search, as the offline registry answers
 *                            it from the registry index (cache/registry_query.h: skeletons and
 *                            rendered entries, no document parsed), plus the packages a cached
 *                            upstream /search answer named; for each, its document, its archive
 *                            ("download") and signature ("signature_path")
 *
 * and, when asked (struct al_readiness_more): FIPS agent builds, trained
 * models (metadata, .pt, vocabulary), GeoIP (the overview and each
 * database it lists) and the AI Assistant's product documentation (each
 * product's artifact of a MAJOR.MINOR), Kibana's telemetry manifest and
 * each artifact it lists, by their upstream URLs, which are
 * their cache keys whatever route prefix leads to them;
 *
 * and says, for each thing missing, which client fails and how.  It reads
 * many records (the registry index under the registry's base): never on
 * a worker's loop.
 */
#include "cache/readiness.h"
#include "cache/registry_query.h"
#include "policy/geoip.h"
#include "policy/hdr.h"
#include "policy/manifest.h"
#include "policy/registry.h"
#include "policy/route.h"
#include "policy/semver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	/* FIPS builds: the same agent code (artifact.New at 137f0ac9 names them elastic-agent-fips-...) */
	{"fips-agent-artifact", "Elastic Agent, FIPS build (upgrade from Fleet)",
	 "the download of the FIPS package fails (airlock answers 504 offline); the upgrade is reported failed"},
	{"fips-agent-artifact-sha512", "Elastic Agent, FIPS build (upgrade from Fleet)",
	 "the download is refused: the .sha512 sidecar cannot be fetched (verify.go VerifySHA512Hash)"},
	{"fips-agent-artifact-signature", "Elastic Agent, FIPS build (upgrade from Fleet)",
	 "the download is refused: the .asc signature cannot be fetched (verify.go FetchPGPSignature)"},
	/*
	 * Trained models: Elasticsearch's ml-package-loader reads <id>.metadata.json,
	 * then <id>.pt and the metadata's vocabulary_file, from xpack.ml.model_repository
	 * (ModelLoaderUtils at 01195333, ModelImporter at fb3ff2f3).
	 */
	{"model-metadata", "Elasticsearch (trained model download)",
	 "PUT _ml/trained_models/ID for this packaged model fails: its metadata cannot be read from the model "
	 "repository"},
	{"model-file", "Elasticsearch (trained model download)",
	 "the model's download fails: its definition (.pt) cannot be fetched, so the model cannot be deployed"},
	{"model-vocabulary", "Elasticsearch (trained model download)",
	 "the model's download fails: the vocabulary file its metadata names cannot be fetched"},
	/*
	 * GeoIP: GeoIpDownloader (at 612651a0) reads the overview, then each database;
	 * a geoip processor without its database tags documents
	 * _geoip_database_unavailable_<name> (GeoIpProcessor at 5a828567).
	 */
	{"geoip-overview", "Elasticsearch (GeoIP downloader)",
	 "the database list cannot be fetched: no database is downloaded or updated, and geoip processors without "
	 "one tag documents _geoip_database_unavailable_NAME instead of enriching them"},
	{"geoip-database", "Elasticsearch (GeoIP downloader)",
	 "the overview names a database the cache lacks: its download fails, and geoip processors that use it tag "
	 "documents _geoip_database_unavailable_NAME"},
	/*
	 * Product documentation: Kibana's PackageInstaller.installAll (kibana e5117132,
	 * product_doc_base/server/services/package_installer/package_installer.ts)
	 * installs, for each product, the listed version matching Kibana's
	 * MAJOR.MINOR, else the latest listed, else none ("No version found for
	 * product"); offline, airlock lists what its cache holds.
	 */
	{"product-doc", "Kibana (AI Assistant product documentation)",
	 "not listed offline: installing the documentation takes another version of this product if the cache "
	 "holds one, else skips the product ('No version found for product'), and the AI Assistant answers without "
	 "its documentation"},
	/*
	 * Kibana's telemetry artifacts (Security Solution, elastic/kibana 437def57,
	 * x-pack/solutions/security/plugins/security_solution/server/lib/telemetry/
	 * artifact.ts): getArtifact(name) GETs the manifest, then the artifact at
	 * the CDN URL + its relative_url; either missing makes it throw.
	 */
	{"kibana-telemetry-manifest", "Kibana (Security Solution telemetry artifacts)",
	 "the manifest cannot be fetched: every getArtifact fails, and the telemetry settings and lists Kibana reads "
	 "from these artifacts are not updated"},
	{"kibana-telemetry-artifact", "Kibana (Security Solution telemetry artifacts)",
	 "the manifest names an artifact the cache lacks: getArtifact for it fails, and what Kibana reads from it "
	 "is not updated"},
	{NULL, NULL, NULL},
};

static const char *fails_how(const char *kind)
{
	for (int i = 0; FAILS[i].kind; i++)
		if (!strcmp(FAILS[i].kind, kind))
			return FAILS[i].how;
	return "";
}

struct doctor {
	const struct al_config *cfg;
	struct al_store *s;
	struct al_reader *rd;
	json_t *missing;          /* [{url, kind, what, client, failure}] */
	int checked, present;
};

struct al_readiness {
	struct al_store *s;
	const struct al_config *cfg;
	struct al_reader *rd;
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

/* Is a 200 for url stored?  1 yes (and *rec, valid until al_reader_end), 0 no. */
static int have_url(struct doctor *d, const char *url, struct al_record *rec)
{
	uint8_t key[AL_KEY_LEN];
	struct al_record r;

	al_store_key(url, strlen(url), key);
	al_reader_begin(d->rd);
	if (al_lookup(d->rd, key, &r) != 0 || r.status != 200)
		return 0;
	if (rec)
		*rec = r;
	return 1;
}

/* The same for path, through the reverse routes. */
static int have(struct doctor *d, const char *path, struct al_record *rec)
{
	char url[4096];

	return path_url(d->cfg, path, url, sizeof(url)) >= 0 && have_url(d, url, rec);
}

/* Count url as checked; present, or missing with the client that fails and how. */
static void need_url(struct doctor *d, const char *url, const char *kind, const char *what)
{
	int i;

	d->checked++;
	if (have_url(d, url, NULL)) {
		d->present++;
		return;
	}
	for (i = 0; FAILS[i].kind && strcmp(FAILS[i].kind, kind); i++)
		;
	json_array_append_new(d->missing, json_pack("{s:s, s:s, s:s, s:s, s:s}", "url", url, "kind", kind, "what", what,
	    "client", FAILS[i].client ? FAILS[i].client : "", "failure", FAILS[i].how ? FAILS[i].how : ""));
}

static void need(struct doctor *d, const char *path, const char *kind, const char *what)
{
	char url[4096];

	if (path_url(d->cfg, path, url, sizeof(url)) < 0)
		snprintf(url, sizeof(url), "%s (no route)", path);
	need_url(d, url, kind, what);
}

/*
 * The agent's package name for a platform: elastic-agent's Artifact.FileName
 * (artifact.go at 07adab5bc3d2) joins name, version and a packageArchMap
 * suffix: "-windows-x86_64.zip" on Windows, "-<os>-<arch>.tar.gz" elsewhere.
 */
static void agent_files(struct doctor *d, const char *name, const char *v, const char *plat, const char *kind,
    const char *what)
{
	char path[512], k[64];

	snprintf(path, sizeof(path), "/downloads/beats/elastic-agent/%s-%s-%s.%s", name, v, plat,
	    strncmp(plat, "windows", 7) == 0 ? "zip" : "tar.gz");
	need(d, path, kind, what);
	strcat(path, ".sha512");
	snprintf(k, sizeof(k), "%s-sha512", kind);
	need(d, path, k, what);
	strcpy(path + strlen(path) - 7, ".asc");
	snprintf(k, sizeof(k), "%s-signature", kind);
	need(d, path, k, what);
}

static void agent(struct doctor *d, const char *v, const char *platforms)
{
	for (const char *p = platforms; p && *p;) {
		size_t len = strcspn(p, ",");
		char plat[64], what[200];
		if (len > 0 && len < sizeof(plat)) {
			snprintf(plat, sizeof(plat), "%.*s", (int)len, p);
			snprintf(what, sizeof(what), "Elastic Agent %s for %s", v, plat);
			agent_files(d, "elastic-agent", v, plat, "agent-artifact", what);
		}
		p = p[len] ? p + len + 1 : NULL;
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

/*
 * A listed package's download and signature_path, from its cached document
 * (with the trailing slash Kibana asks, else without): for the packages
 * only a cached upstream /search named.  Into dl and sig ("" when absent).
 */
static void doc_paths(struct doctor *d, const char *name, const char *ver, char *dl, char *sig, size_t cap)
{
	char path[700], *body = NULL;
	struct al_record rec;
	json_t *doc = NULL;
	int found;

	dl[0] = sig[0] = '\0';
	snprintf(path, sizeof(path), "/package/%s/%s/", name, ver);
	found = have(d, path, &rec);
	if (!found) {
		path[strlen(path) - 1] = '\0';
		found = have(d, path, &rec);
	}
	if (found && al_body_read(d->rd, &rec, 8u << 20, &body) == 0)
		doc = json_loadb(body, rec.body_len, 0, NULL);
	al_reader_end(d->rd);
	free(body);
	if (json_is_string(json_object_get(doc, "download")))
		snprintf(dl, cap, "%s", json_string_value(json_object_get(doc, "download")));
	if (json_is_string(json_object_get(doc, "signature_path")))
		snprintf(sig, cap, "%s", json_string_value(json_object_get(doc, "signature_path")));
	json_decref(doc);
}

static int safe_name(const char *s)
{
	return s != NULL && s[0] && !strpbrk(s, "/?#%") && !strstr(s, "..");
}

/* Kibana's list: computed from cached documents, with what a cached upstream /search named. */
static int packages(struct doctor *d, const char *k, json_t **list_out, char *err, size_t errlen)
{
	char q[200], path[300], prefix[4096], dpath[700], what[400];
	struct al_registry_query query;
	json_t *list = json_array(), *computed = NULL, *upstream = NULL, *e;
	json_t *paths = NULL; /* the computed entries listed, in list's order (they come first) */
	char *body = NULL;
	struct al_record rec;
	size_t i;
	int n;

	snprintf(q, sizeof(q), "kibana.version=%s&prerelease=false", k);
	if (al_registry_query_parse(q, strlen(q), 0, &query) != 0) {
		snprintf(err, errlen, "--kibana %s: %s", k, query.error);
		json_decref(list);
		return -EINVAL;
	}
	if ((n = path_url(d->cfg, "/package/", prefix, sizeof(prefix))) < 0) {
		snprintf(err, errlen, "no route serves /package/");
		json_decref(list);
		return -ENOENT;
	}
	paths = json_array();
	/*
	 * The list as the offline registry answers it: from the registry index
	 * (each version's skeleton and rendered entry, cache/registry_query.h),
	 * not by parsing every cached document.  The index's base is the URL
	 * before /package/.
	 */
	if ((size_t)n > 9 && !strcmp(prefix + n - 9, "/package/") &&
	    (body = al_registry_index_search(d->rd, prefix, (size_t)n - 9, &query, NULL)) != NULL)
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
			/* a computed entry is rendered from the document: its download and signature_path are the document's */
			if (!dup && pass == 0)
				json_array_append(paths, e);

		}
	}
	if (json_array_size(list) == 0) {
		snprintf(what, sizeof(what), "Kibana %s's list of packages", k);
		d->checked++;
		json_array_append_new(d->missing, json_pack("{s:s, s:s, s:s, s:s, s:s}", "url", prefix, "kind",
		    "package-list", "what", what, "client", "Kibana (Fleet)", "failure", fails_how("package-list")));
	}
	json_array_foreach(list, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *ver = json_string_value(json_object_get(e, "version"));
		char dl[1024], sig[1024];
		snprintf(what, sizeof(what), "package %s %s for Kibana %s", name, ver, k);
		snprintf(dpath, sizeof(dpath), "/package/%s/%s/", name, ver);
		need(d, dpath, "package-document", what);
		if (i < json_array_size(paths)) {
			json_t *c = json_array_get(paths, i);
			snprintf(dl, sizeof(dl), "%s", json_is_string(json_object_get(c, "download")) ?
			    json_string_value(json_object_get(c, "download")) : "");
			snprintf(sig, sizeof(sig), "%s", json_is_string(json_object_get(c, "signature_path")) ?
			    json_string_value(json_object_get(c, "signature_path")) : "");
		} else {
			doc_paths(d, name, ver, dl, sig, sizeof(dl));
		}
		if (dl[0] == '/' && !strstr(dl, ".."))
			need(d, dl, "package-archive", what);
		if (sig[0] == '/' && !strstr(sig, ".."))
			need(d, sig, "package-signature", what);
	}
	*list_out = list;
	json_decref(paths);
	json_decref(computed);
	json_decref(upstream);
	return 0;
}



/* elastic-agent-fips-V-P.tar.gz, .sha512, .asc: packages.yml builds FIPS for Linux only (mirror.c's FIPS[]). */
static void fips(struct doctor *d, const char *v, const char *platforms)
{
	for (const char *p = platforms; p && *p;) {
		size_t len = strcspn(p, ",");
		char plat[64], what[200];
		if (len > 6 && len < sizeof(plat) && strncmp(p, "linux-", 6) == 0) {
			snprintf(plat, sizeof(plat), "%.*s", (int)len, p);
			snprintf(what, sizeof(what), "Elastic Agent %s FIPS build for %s", v, plat);
			agent_files(d, "elastic-agent-fips", v, plat, "fips-agent-artifact", what);
		}
		p = p[len] ? p + len + 1 : NULL;
	}
}

/* Each model's metadata, its .pt and the vocabulary_file the metadata names (mirror models' files). */
static void models(struct doctor *d, const char *ids)
{
	for (const char *p = ids; p && *p;) {
		size_t len = strcspn(p, ",");
		char id[128], url[600], what[300];
		struct al_record rec;
		char *body = NULL;
		json_t *meta = NULL;
		const char *voc;
		if (len == 0 || len >= sizeof(id))
			goto next;
		snprintf(id, sizeof(id), "%.*s", (int)len, p);
		snprintf(what, sizeof(what), "trained model %s", id);
		snprintf(url, sizeof(url), "%s%s.metadata.json", AL_MODELS_BASE, id);
		need_url(d, url, "model-metadata", what);
		snprintf(url, sizeof(url), "%s%s.pt", AL_MODELS_BASE, id);
		need_url(d, url, "model-file", what);
		snprintf(url, sizeof(url), "%s%s.metadata.json", AL_MODELS_BASE, id);
		if (have_url(d, url, &rec) && al_body_read(d->rd, &rec, 8u << 20, &body) == 0)
			meta = json_loadb(body, rec.body_len, 0, NULL);
		al_reader_end(d->rd);
		voc = json_string_value(json_object_get(meta, "vocabulary_file"));
		if (voc != NULL && voc[0] && !strpbrk(voc, "/?#\\") && !strstr(voc, "..")) {
			snprintf(url, sizeof(url), "%s%s", AL_MODELS_BASE, voc);
			need_url(d, url, "model-vocabulary", what);
		}
		json_decref(meta);
		free(body);
	next:
		p = p[len] ? p + len + 1 : NULL;
	}
}

/* The overview (as GeoIpDownloader asks it) and every .tgz database it lists, under its stable key. */
static void geoip(struct doctor *d)
{
	struct al_record rec;
	char *body = NULL;
	json_t *list = NULL, *e;
	size_t i;

	need_url(d, AL_GEOIP_OVERVIEW, "geoip-overview", "the GeoIP database list");
	if (have_url(d, AL_GEOIP_OVERVIEW, &rec) && al_body_read(d->rd, &rec, 8u << 20, &body) == 0)
		list = json_loadb(body, rec.body_len, 0, NULL);
	al_reader_end(d->rd);
	json_array_foreach(list, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *md5 = json_string_value(json_object_get(e, "md5_hash"));
		char path[400], url[600], m[33], nm[256], what[300];
		size_t l = name ? strlen(name) : 0;
		if (name == NULL || md5 == NULL || l < 4 || strcmp(name + l - 4, ".tgz") != 0)
			continue; /* updateDatabases takes the names that end in .tgz */
		snprintf(path, sizeof(path), "/v1/db/%s/%s", md5, name);
		if (al_geoip_db_path(path, m, nm, sizeof(nm)) != 0)
			continue;
		snprintf(url, sizeof(url), "%s%s", AL_GEOIP_BASE, path);
		snprintf(what, sizeof(what), "GeoIP database %s", name);
		need_url(d, url, "geoip-database", what);
	}
	json_decref(list);
	free(body);
}

/* kb-product-doc-<product>-<MAJOR.MINOR>.zip for each documentation product (getArtifactName). */
static void product_docs(struct doctor *d, const char *versions)
{
	for (const char *p = versions; p && *p;) {
		size_t len = strcspn(p, ",");
		for (int i = 0; len > 0 && len < 16 && AL_PRODUCT_DOC_PRODUCTS[i]; i++) {
			char url[300], what[200];
			snprintf(url, sizeof(url), "%skb-product-doc-%s-%.*s.zip", AL_PRODUCT_DOCS_BASE, AL_PRODUCT_DOC_PRODUCTS[i],
			    (int)len, p);
			snprintf(what, sizeof(what), "%s product documentation %.*s", AL_PRODUCT_DOC_PRODUCTS[i], (int)len, p);
			need_url(d, url, "product-doc", what);
		}
		p = p[len] ? p + len + 1 : NULL;
	}
}

struct kibana_arts {
	struct doctor *d;
	const char *v;
};

static void kibana_artifact(const char *rel, void *arg)
{
	struct kibana_arts *k = arg;
	char url[2200], what[2300];

	snprintf(url, sizeof(url), "%s%s", AL_KIBANA_CDN, rel);
	snprintf(what, sizeof(what), "Kibana %s telemetry artifact %s", k->v, rel);
	need_url(k->d, url, "kibana-telemetry-artifact", what);
}

/*
 * artifacts-<v>.zip, v the Stack version up to its first '-' (Artifact.start,
 * as mirror kibana-artifacts asks it), then every artifact it lists.
 */
static void kibana_artifacts(struct doctor *d, const char *stack)
{
	struct al_record rec;
	struct kibana_arts k = {d, stack};
	char url[300], what[200], mv[128], err[300], *body = NULL;

	snprintf(url, sizeof(url), "%s%.*s.zip", AL_KIBANA_MANIFEST_BASE, (int)strcspn(stack, "-"), stack);
	snprintf(what, sizeof(what), "Kibana's telemetry manifest for %.*s", (int)strcspn(stack, "-"), stack);
	need_url(d, url, "kibana-telemetry-manifest", what);
	if (!have_url(d, url, &rec) || al_body_read(d->rd, &rec, 64u << 20, &body) != 0)
		body = NULL;
	al_reader_end(d->rd);
	/* a zip Kibana would refuse lists nothing (mirror kibana-artifacts says why) */
	if (body != NULL)
		al_kibana_manifest(body, rec.body_len, mv, sizeof(mv), kibana_artifact, &k, err, sizeof(err));
	free(body);
}

int al_readiness_new(struct al_store *s, const struct al_config *cfg, struct al_readiness **out)
{
	struct al_readiness *r = calloc(1, sizeof(*r));

	if (r == NULL || al_reader_new(s, &r->rd) != 0) {
		free(r);
		return -ENOMEM;
	}
	r->s = s;
	r->cfg = cfg;
	*out = r;
	return 0;
}

void al_readiness_free(struct al_readiness *r)
{
	if (r == NULL)
		return;
	al_reader_free(r->rd);
	free(r);
}

json_t *al_readiness_check(struct al_readiness *r, const char *stack, const char *platforms, const char *kibana,
    const char *ep, const struct al_readiness_more *more, char *err, size_t errlen)
{
	struct doctor d = {r->cfg, r->s, r->rd, json_array(), 0, 0};
	json_t *manifest = NULL, *pkgs = NULL, *out;
	int rc;

	agent(&d, stack, platforms);
	if (more != NULL && more->fips)
		fips(&d, stack, platforms);
	if (more != NULL && more->models != NULL)
		models(&d, more->models);
	if (more != NULL && more->geoip)
		geoip(&d);
	if (more != NULL && more->product_docs != NULL)
		product_docs(&d, more->product_docs);
	if (more != NULL && more->kibana_artifacts)
		kibana_artifacts(&d, stack);
	endpoint(&d, ep, &manifest);
	if ((rc = packages(&d, kibana, &pkgs, err, errlen)) == -EINVAL) {
		json_decref(d.missing);
		json_decref(manifest);
		return NULL;
	}
	if (rc != 0)
		pkgs = json_array();
	out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:o, s:o, s:o}", "stack", stack, "platforms", platforms,
	    "kibana", kibana, "endpoint", ep, "checked", d.checked, "present", d.present, "missing_count",
	    (int)json_array_size(d.missing), "missing", d.missing, "endpoint_manifest",
	    manifest ? manifest : json_null(), "packages", pkgs);
	if (manifest != NULL)
		json_object_set_new(out, "endpoint_manifest_old", json_boolean(time(NULL) -
		    (time_t)json_integer_value(json_object_get(manifest, "published")) > AL_MANIFEST_MAX_AGE));
	return out;
}

/* Stack versions and platforms of the Elastic Agent packages held (not their .sha512/.asc, not FIPS builds). */
struct held {
	const char *prefix;
	size_t plen;
	char (*v)[32];
	int n, max;
	char *platforms;
	size_t cap;
	al_entry_fn also;
	void *also_arg;
};

static int collect_held(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct held *h = arg;
	char name[256], v[32];
	const char *p, *plat;
	size_t nl;
	int k;

	if (h->also != NULL)
		h->also(key, r, h->also_arg);
	if (h->plen == 0 || r->status != 200 || r->url_len <= h->plen || memcmp(r->url, h->prefix, h->plen) != 0 ||
	    (nl = r->url_len - h->plen) >= sizeof(name))
		return 0;
	memcpy(name, r->url + h->plen, nl);
	name[nl] = '\0';
	if (strchr(name, '/') || (!(nl > 7 && !strcmp(name + nl - 7, ".tar.gz")) && !(nl > 4 && !strcmp(name + nl - 4, ".zip"))))
		return 0;
	if (al_agent_version_of(r->url, r->url_len, v, sizeof(v)) != 0 || strncmp(name, "elastic-agent-", 14) != 0 ||
	    strncmp(name + 14, v, strlen(v)) != 0 || name[14 + strlen(v)] != '-')
		return 0;
	/* elastic-agent-V-PLATFORM.ext: the platform is what lies between */
	plat = name + 14 + strlen(v) + 1;
	p = strrchr(name, '.');
	if (p > name && !strcmp(p, ".gz"))
		p -= 4;
	if (p > plat && (size_t)(p - plat) < 64) {
		char pl[64];
		snprintf(pl, sizeof(pl), "%.*s", (int)(p - plat), plat);
		if (al_plan_in_list(AL_PLAN_PLATFORMS, pl) && !al_plan_in_list(h->platforms, pl) &&
		    strlen(h->platforms) + strlen(pl) + 2 <= h->cap)
			snprintf(h->platforms + strlen(h->platforms), h->cap - strlen(h->platforms), "%s%s",
			    h->platforms[0] ? "," : "", pl);
	}
	for (k = 0; k < h->n && strcmp(h->v[k], v); k++)
		;
	if (k == h->n && h->n < h->max)
		memcpy(h->v[h->n++], v, sizeof(v));
	return 0;
}

static int newest_first(const void *a, const void *b)
{
	struct al_semver x, y;

	if (al_semver_parse(a, &x) != 0 || al_semver_parse(b, &y) != 0)
		return strcmp(b, a);
	return al_semver_cmp(&y, &x);
}

int al_readiness_versions(struct al_store *s, const struct al_config *cfg, char (*v)[32], int max, char *platforms,
    size_t cap, al_entry_fn also, void *also_arg)
{
	char prefix[4096];
	int n = path_url(cfg, "/downloads/beats/elastic-agent/", prefix, sizeof(prefix));
	/* no route for agents (plen 0): no version is held, only also's walk is made */
	struct held h = {prefix, n > 0 ? (size_t)n : 0, v, 0, max, platforms, cap, also, also_arg};

	platforms[0] = '\0';
	if (n < 0 && also == NULL)
		return 0;
	al_store_foreach(s, collect_held, &h);
	qsort(v, (size_t)h.n, sizeof(v[0]), newest_first);
	return h.n;
}

int al_manifest_info(struct al_reader *r, const char *url, char *mv, size_t mvlen, time_t *published)
{
	uint8_t key[AL_KEY_LEN];
	struct al_record rec;
	char *buf = NULL, err[256];
	const char *lm;
	size_t lml;
	int rc = -ENOENT;

	al_store_key(url, strlen(url), key);
	if (al_reader_begin(r) != 0 || al_lookup(r, key, &rec) != 0 || rec.status != 200)
		goto out;
	*published = (time_t)rec.response_time;
	if ((lm = al_hdr_get(rec.hdrs, rec.hdrs_len, "Last-Modified", &lml)) != NULL && al_http_date(lm, lml) > 0)
		*published = al_http_date(lm, lml);
	rc = -EINVAL;
	if (al_body_read(r, &rec, 64u << 20, &buf) != 0) {
		snprintf(mv, mvlen, "(unreadable: body)");
		goto out;
	}
	if (al_endpoint_manifest(buf, rec.body_len, mv, mvlen, NULL, NULL, err, sizeof(err)) < 0)
		snprintf(mv, mvlen, "(unreadable: %s)", err);
	else
		rc = 0;
out:
	al_reader_end(r);
	free(buf);
	return rc;
}
