/*
 * Plans (policy/plan.h) on the command line.
 *
 * `airlock mirror --plan PLAN.yml` runs one mirror step per line of the
 * plan (artifacts per Stack version, endpoint per Endpoint version,
 * packages per Kibana version, one models step for every id, product-docs
 * per MAJOR.MINOR, geoip, kibana-artifacts per version), each as
 * `airlock mirror KIND ...` would, in
 * a child process of its own: a step starts and stops mirror's in-process
 * proxy, and a child keeps each step's state (the proxy's globals, a
 * crash) apart from the next.  The children's counts come back through a
 * pipe and are added up into one summary and one exit code.
 *
 * `airlock plan` reads the cache (one store, no network) and prints the
 * plan that matches what it holds: the Stack versions, platforms, formats
 * and products of its agent artifacts (FIPS builds are the product
 * elastic-agent-fips), its Endpoint manifests' versions, the Kibana
 * versions its cached /search answers were asked for, the trained models
 * whose metadata it holds, the product documentation versions of the
 * artifacts it holds, whether it holds GeoIP databases, and the versions of
 * Kibana's telemetry manifests it holds.
 */
#include "proxy/cli/plan.h"
#include "cache/readiness.h"
#include "cache/store.h"
#include "policy/artifact.h"
#include "policy/config.h"
#include "policy/geoip.h"
#include "policy/plan.h"
#include "policy/s3listing.h"
#include "proxy/cli/mirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct mirror_totals mirror_last_totals;

struct step {
	const char *argv[16];
	int argc;
	char name[96];
};

static void arg(struct step *s, const char *a)
{
	if (s->argc < 15)
		s->argv[s->argc++] = a;
	s->argv[s->argc] = NULL;
}

/* One step in a child: its exit code, and its counts added to t (a child that died adds none). */
static int run_step(struct step *s, struct mirror_totals *t)
{
	int fd[2], status = 0;
	pid_t pid;
	FILE *in;

	fflush(NULL);
	if (pipe(fd) != 0 || (pid = fork()) < 0) {
		fprintf(stderr, "airlock mirror --plan: %s: %s\n", s->name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		FILE *out;
		int rc;
		close(fd[0]);
		rc = mirror_main(s->argc, (char **)s->argv);
		fflush(NULL);
		if ((out = fdopen(fd[1], "w")) != NULL) {
			fprintf(out, "%d %d %d %d %lld\n", mirror_last_totals.fetched, mirror_last_totals.present,
			    mirror_last_totals.missing, mirror_last_totals.failed, mirror_last_totals.bytes);
			fclose(out);
		}
		_exit(rc);
	}
	close(fd[1]);
	if ((in = fdopen(fd[0], "r")) != NULL) {
		struct mirror_totals c = {0};
		if (fscanf(in, "%d %d %d %d %lld", &c.fetched, &c.present, &c.missing, &c.failed, &c.bytes) == 5) {
			t->fetched += c.fetched;
			t->present += c.present;
			t->missing += c.missing;
			t->failed += c.failed;
			t->bytes += c.bytes;
		}
		fclose(in);
	} else {
		close(fd[0]);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int plan_mirror(int argc, char **argv)
{
	const char *path = NULL, *config = NULL;
	struct al_plan *p;
	struct step *steps;
	struct mirror_totals t = {0};
	char err[1024], failed[2048] = "", ids[AL_PLAN_MAX * 130] = "";
	int n = 0, nfailed = 0, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plan") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else
			path = NULL, i = argc;
	}
	if (path == NULL) {
		fprintf(stderr, "Usage: airlock mirror --plan PLAN.yml [--config FILE]\n");
		return 2;
	}
	if (al_plan_load(path, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock mirror: plan error: %s\n", err);
		return 2;
	}
	if ((steps = calloc((size_t)(p->nstack + p->nendpoint + p->nkibana + 2 + p->nproduct_docs + p->nkibana_artifacts),
	    sizeof(*steps))) == NULL) {
		al_plan_free(p);
		return 1;
	}
	for (int i = 0; i < p->nstack; i++, n++) {
		struct step *s = &steps[n];
		arg(s, "mirror"), arg(s, "artifacts"), arg(s, "--version"), arg(s, p->stack[i]);
		if (p->platforms[0])
			arg(s, "--arch"), arg(s, p->platforms);
		if (p->formats[0])
			arg(s, "--format"), arg(s, p->formats);
		if (p->products[0])
			arg(s, "--only"), arg(s, p->products);
		snprintf(s->name, sizeof(s->name), "artifacts %s", p->stack[i]);
	}
	for (int i = 0; i < p->nendpoint; i++, n++) {
		struct step *s = &steps[n];
		arg(s, "mirror"), arg(s, "endpoint"), arg(s, "--version"), arg(s, p->endpoint[i]);
		snprintf(s->name, sizeof(s->name), "endpoint %s", p->endpoint[i]);
	}
	for (int i = 0; i < p->nkibana; i++, n++) {
		struct step *s = &steps[n];
		arg(s, "mirror"), arg(s, "packages"), arg(s, "--kibana-version"), arg(s, p->kibana[i]);
		if (p->prerelease)
			arg(s, "--prerelease");
		snprintf(s->name, sizeof(s->name), "packages %s", p->kibana[i]);
	}
	if (p->nmodels > 0) {
		struct step *s = &steps[n++];
		for (int i = 0; i < p->nmodels; i++)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s", i ? "," : "", p->models[i]);
		arg(s, "mirror"), arg(s, "models"), arg(s, "--id"), arg(s, ids);
		snprintf(s->name, sizeof(s->name), "models (%d)", p->nmodels);
	}
	for (int i = 0; i < p->nproduct_docs; i++, n++) {
		struct step *s = &steps[n];
		arg(s, "mirror"), arg(s, "product-docs"), arg(s, "--version"), arg(s, p->product_docs[i]);
		snprintf(s->name, sizeof(s->name), "product-docs %s", p->product_docs[i]);
	}
	if (p->geoip) {
		struct step *s = &steps[n++];
		arg(s, "mirror"), arg(s, "geoip");
		snprintf(s->name, sizeof(s->name), "geoip");
	}
	for (int i = 0; i < p->nkibana_artifacts; i++, n++) {
		struct step *s = &steps[n];
		arg(s, "mirror"), arg(s, "kibana-artifacts"), arg(s, "--version"), arg(s, p->kibana_artifacts[i]);
		snprintf(s->name, sizeof(s->name), "kibana-artifacts %s", p->kibana_artifacts[i]);
	}
	for (int i = 0; i < n; i++) {
		int src;
		if (config != NULL)
			arg(&steps[i], "--config"), arg(&steps[i], config);
		printf("== plan step %d of %d: mirror %s\n", i + 1, n, steps[i].name);
		if ((src = run_step(&steps[i], &t)) != 0) {
			nfailed++;
			snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s (exit %d)", nfailed > 1 ? ", " :
			    "", steps[i].name, src);
			rc = rc > src ? rc : src;
		}
	}
	printf("mirror --plan %s: %d steps, fetched %d, already present %d, missing %d, failed %d, %.1f MB downloaded; "
	    "%s%s\n", path, n, t.fetched, t.present, t.missing, t.failed, (double)t.bytes / 1e6,
	    nfailed ? "steps that failed: " : "every step succeeded", failed);
	free(steps);
	al_plan_free(p);
	return rc;
}

/* ---- airlock plan ---- */

struct scan {
	struct al_plan *p;
	char err[200];
};

static void add_version(char **v, int *n, const char *s)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(v[i], s))
			return;
	if (*n < AL_PLAN_MAX && al_plan_version_ok(s) && (v[*n] = strdup(s)) != NULL)
		(*n)++;
}

static void add_name(char **v, int *n, const char *s)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(v[i], s))
			return;
	if (*n < AL_PLAN_MAX && (v[*n] = strdup(s)) != NULL)
		(*n)++;
}

static void add_item(char *list, size_t cap, const char *s)
{
	size_t n = strlen(s);

	for (const char *q = list; *q;) {
		const char *c = strchr(q, ',');
		size_t len = c ? (size_t)(c - q) : strlen(q);
		if (len == n && !strncmp(q, s, n))
			return;
		q = c ? c + 1 : q + len;
	}
	if (strlen(list) + n + 2 <= cap)
		snprintf(list + strlen(list), cap - strlen(list), "%s%s", *list ? "," : "", s);
}

/*
 * mirror's names for what an artifact's name says: the .deb and .rpm arches
 * (amd64/x86_64, arm64/aarch64) are Linux's platforms as mirror --arch names them.
 */
static int scan_one(const uint8_t *key, const struct al_record *rec, void *arg)
{
	struct scan *sc = arg;
	struct al_plan *p = sc->p;
	struct al_artifact a;
	char url[4096];

	(void)key;
	if (rec->status != 200 || rec->url_len >= sizeof(url))
		return 0;
	memcpy(url, rec->url, rec->url_len);
	url[rec->url_len] = '\0';
	al_classify_url(url, &a);
	if (!strcmp(a.kind, "agent-artifact") && a.version[0] && a.platform[0]) {
		const char *plat = a.platform, *fmt = NULL;
		size_t ul = rec->url_len;
		if (ul > 7 && !strcmp(url + ul - 7, ".tar.gz"))
			fmt = "tar.gz";
		else if (ul > 4 && !strcmp(url + ul - 4, ".zip"))
			fmt = "zip";
		else if (ul > 4 && !strcmp(url + ul - 4, ".deb"))
			fmt = "deb";
		else if (ul > 4 && !strcmp(url + ul - 4, ".rpm"))
			fmt = "rpm";
		if (!strcmp(plat, "amd64") || !strcmp(plat, "x86_64"))
			plat = "linux-x86_64";
		else if (!strcmp(plat, "arm64") || !strcmp(plat, "aarch64"))
			plat = "linux-arm64";
		if (fmt == NULL || strstr(AL_PLAN_PLATFORMS, plat) == NULL)
			return 0;
		add_version(p->stack, &p->nstack, a.version);
		add_item(p->platforms, sizeof(p->platforms), plat);
		add_item(p->formats, sizeof(p->formats), fmt);
		add_item(p->products, sizeof(p->products), a.product);
	} else if (!strcmp(a.kind, "endpoint-manifest")) {
		add_version(p->endpoint, &p->nendpoint, a.version);
	} else if (!strncmp(url, AL_MODELS_BASE, strlen(AL_MODELS_BASE))) {
		/* a model's metadata: what mirror models --id asks first, and what names its other files */
		const char *id = url + strlen(AL_MODELS_BASE);
		size_t il = strlen(id), ml = strlen(".metadata.json");
		char v[128];
		if (il > ml && il - ml < sizeof(v) && !strcmp(id + il - ml, ".metadata.json")) {
			snprintf(v, sizeof(v), "%.*s", (int)(il - ml), id);
			if (al_plan_model_id_ok(v))
				add_name(p->models, &p->nmodels, v);
		}
	} else if (!strncmp(url, AL_PRODUCT_DOCS_BASE, strlen(AL_PRODUCT_DOCS_BASE))) {
		char v[32];
		if (!strchr(url + strlen(AL_PRODUCT_DOCS_BASE), '?') && al_product_doc_version(url + strlen(AL_PRODUCT_DOCS_BASE), v, sizeof(v)) &&
		    al_plan_major_minor_ok(v))
			add_name(p->product_docs, &p->nproduct_docs, v);
	} else if (!strncmp(url, AL_GEOIP_BASE "/v1/db/", strlen(AL_GEOIP_BASE "/v1/db/"))) {
		p->geoip = 1;
	} else if (!strncmp(url, AL_KIBANA_MANIFEST_BASE, strlen(AL_KIBANA_MANIFEST_BASE))) {
		/* artifacts-<v>.zip, v Elasticsearch's version up to its '-' (mirror kibana-artifacts --version v) */
		const char *v = url + strlen(AL_KIBANA_MANIFEST_BASE);
		size_t vl = strlen(v);
		char ver[64];
		if (vl > 4 && vl - 4 < sizeof(ver) && !strcmp(v + vl - 4, ".zip")) {
			snprintf(ver, sizeof(ver), "%.*s", (int)(vl - 4), v);
			if (al_plan_version_ok(ver))
				add_version(p->kibana_artifacts, &p->nkibana_artifacts, ver);
		}
	} else if (!strcmp(a.kind, "registry-query") && strstr(url, "/search?") != NULL) {
		const char *k = strstr(url, "kibana.version=");
		char v[64];
		if (k != NULL) {
			size_t n = strcspn(k + 15, "&#");
			if (n < sizeof(v)) {
				memcpy(v, k + 15, n);
				v[n] = '\0';
				add_version(p->kibana, &p->nkibana, v);
			}
		}
		if (strstr(url, "prerelease=true") != NULL)
			p->prerelease = 1;
	}
	return 0;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int plan_main(int argc, char **argv)
{
	const char *config = NULL;
	struct al_config *cfg;
	struct al_store *s = NULL;
	struct scan sc = {0};
	char err[1024];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else {
			fprintf(stderr, "Usage: airlock plan [--config FILE]   the mirror plan matching what the cache holds\n");
			return 2;
		}
	}
	if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return 2;
	}
	if (al_store_open(cfg->cache_path, cfg->cache_max_size, 126, &s, err, sizeof(err)) != 0 ||
	    (sc.p = calloc(1, sizeof(*sc.p))) == NULL) {
		fprintf(stderr, "airlock plan: %s\n", err);
		al_store_close(s);
		al_config_free(cfg);
		return 1;
	}
	rc = al_store_foreach(s, scan_one, &sc);
	qsort(sc.p->stack, (size_t)sc.p->nstack, sizeof(char *), by_str);
	qsort(sc.p->endpoint, (size_t)sc.p->nendpoint, sizeof(char *), by_str);
	qsort(sc.p->kibana, (size_t)sc.p->nkibana, sizeof(char *), by_str);
	qsort(sc.p->models, (size_t)sc.p->nmodels, sizeof(char *), by_str);
	qsort(sc.p->product_docs, (size_t)sc.p->nproduct_docs, sizeof(char *), by_str);
	qsort(sc.p->kibana_artifacts, (size_t)sc.p->nkibana_artifacts, sizeof(char *), by_str);
	al_plan_print(stdout, sc.p);
	if (sc.p->nstack + sc.p->nendpoint + sc.p->nkibana + sc.p->nmodels + sc.p->nproduct_docs +
	    sc.p->nkibana_artifacts == 0 && !sc.p->geoip)
		fprintf(stderr, "airlock plan: the cache %s holds no agent artifact, Endpoint manifest, package list, model, "
		    "product documentation, GeoIP database or Kibana telemetry manifest: an empty plan\n", cfg->cache_path);
	al_plan_free(sc.p);
	al_store_close(s);
	al_config_free(cfg);
	return rc != 0 ? 1 : 0;
}
