#include "proxy/cli/mirror.h"
#include "proxy/cli/plan.h"
#include "cache/store.h"
#include "policy/config.h"
#include "policy/geoip.h"
#include "policy/manifest.h"
#include "policy/plan.h"
#include "policy/pkgfiles.h"
#include "policy/s3listing.h"
#include "policy/route.h"
#include "proxy/runtime/server.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define CONCURRENCY 4
#define MAX_TRIES 3

struct job {
	char *path;               /* request path through the reverse routes */
	int tries;
	int status;
	long long bytes;
	char cache_status[160];
	time_t not_before;
	int had;                  /* in the cache before this run ... */
	uint8_t had_sha[32];      /* ... with this body */
	int outcome;              /* OUT_* once done */
	char why[240];            /* for OUT_FAILED */
	char text[160];           /* the start of the body: airlock's own error says why */
	size_t text_len;
	int rewritten;            /* served changed from what is stored (GeoIP's overview): lengths differ */
};

enum { OUT_NONE, OUT_FETCHED, OUT_PRESENT, OUT_MISSING, OUT_FAILED };

struct joblist {
	struct job *v;
	int n, cap;
};

struct summary {
	int fetched, present, missing, failed;
	long long bytes;
	char *report;             /* "failed: PATH (why)\n" and "missing: PATH\n" lines */
	size_t report_len;
};

static void report(struct summary *sum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct summary *sum, const char *fmt, ...)
{
	char line[2400];
	va_list ap;
	int n;
	char *r;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	r = realloc(sum->report, sum->report_len + (size_t)n + 1);
	if (r == NULL)
		return;
	memcpy(r + sum->report_len, line, (size_t)n + 1);
	sum->report = r;
	sum->report_len += (size_t)n;
}

/* The cache key of a request path (through the routes). */
static int path_key(const struct al_config *cfg, const char *path, uint8_t key[AL_KEY_LEN])
{
	const struct al_route *r = al_route_find(cfg, path, strlen(path));
	char url[4096];
	int n;

	if (r == NULL || (n = al_route_url(r, path, strlen(path), url, sizeof(url))) < 0)
		return -ENOENT;
	al_store_key(url, (size_t)n, key);
	return 0;
}

/* The stored 200 for path, if complete: 1 and its digest and length, else 0. */
static int stored_200(const struct al_config *cfg, const char *path, uint8_t sha[32], uint64_t *len)
{
	uint8_t key[AL_KEY_LEN];
	struct al_reader *rd;
	struct al_record rec;
	int found = 0;

	if (path_key(cfg, path, key) != 0 || al_reader_new(srv.store, &rd) != 0)
		return 0;
	if (al_lookup(rd, key, &rec) == 0 && rec.status == 200) {
		memcpy(sha, rec.sha256, 32);
		*len = rec.body_len;
		found = 1;
	}
	al_reader_free(rd);
	return found;
}

/*
 * A job is done: say what it came to.  Fetched means committed complete in
 * the cache (a 200 that was cut off, failed its .sha512 check or was passed
 * through unstored is failed, whatever its head said); present means the
 * same body was there before this run.
 */
/*
 * How a job is named in progress and failure lines: its path, unless it is
 * asked through a route of the mirror's own (MIRROR_PRIVATE, e.g. Kibana's
 * artifacts), whose path means nothing outside this run: then the URL it is
 * stored under.  buf: cap bytes.
 */
#define MIRROR_PRIVATE "/.airlock-mirror/"

static const char *job_name(const struct al_config *cfg, const struct job *j, char *buf, size_t cap)
{
	const struct al_route *r;

	if (strncmp(j->path, MIRROR_PRIVATE, strlen(MIRROR_PRIVATE)) != 0 ||
	    (r = al_route_find(cfg, j->path, strlen(j->path))) == NULL ||
	    al_route_url(r, j->path, strlen(j->path), buf, cap) < 0)
		return j->path;
	return buf;
}

static void judge(const struct al_config *cfg, struct job *j, CURLcode res, long code, struct summary *sum)
{
	char name[4096];

	uint8_t sha[32];
	uint64_t len = 0;

	if (res != CURLE_OK) {
		j->outcome = OUT_FAILED;
		snprintf(j->why, sizeof(j->why), "%s%s", code ? "after the response head: " : "", curl_easy_strerror(res));
	} else if (code == 404) {
		j->outcome = OUT_MISSING;
	} else if (code != 200) {
		size_t tl = strcspn(j->text, "\r\n");
		j->outcome = OUT_FAILED;
		snprintf(j->why, sizeof(j->why), "HTTP %ld%s%.*s", code, tl ? ": " : "", (int)(tl > 180 ? 180 : tl), j->text);
	} else if (!stored_200(cfg, j->path, sha, &len) || (len != (uint64_t)j->bytes && !j->rewritten)) {
		j->outcome = OUT_FAILED;
		snprintf(j->why, sizeof(j->why), "not stored in the cache (%s)",
		    j->cache_status[0] ? j->cache_status : "no Cache-Status");
	} else {
		j->outcome = j->had && memcmp(sha, j->had_sha, 32) == 0 ? OUT_PRESENT : OUT_FETCHED;
	}
	switch (j->outcome) {
	case OUT_FETCHED:
		sum->fetched++;
		sum->bytes += j->bytes;
		break;
	case OUT_PRESENT:
		sum->present++;
		break;
	case OUT_MISSING:
		sum->missing++;
		report(sum, "missing: %s (404)\n", job_name(cfg, j, name, sizeof(name)));
		break;
	default:
		sum->failed++;
		report(sum, "failed: %s (%s)\n", job_name(cfg, j, name, sizeof(name)), j->why);
	}
}

static const char *const BEATS[] = {"apm-server", "auditbeat", "elastic-agent", "filebeat", "heartbeat",
	"metricbeat", "osquerybeat", "packetbeat", NULL};
static const struct {
	const char *name, *dir;
} OTHERS[] = {
	{"cloudbeat", "cloudbeat"}, {"endpoint-security", "endpoint-dev"}, {"fleet-server", "fleet-server"},
	{"pf-host-agent", "prodfiler"}, {"pf-elastic-collector", "prodfiler"}, {"pf-elastic-symbolizer", "prodfiler"},
	{NULL, NULL},
};
/*
 * FIPS builds of the agent: elastic-agent's artifact.New (internal/pkg/agent/
 * application/upgrade/artifact/artifact.go at 137f0ac9) names the file
 * elastic-agent-fips-<version>-<packageArchMap suffix> in the agent's own
 * directory, and dev-tools/packaging/packages.yml (at 0138a771, settings.fips)
 * builds FIPS for linux x86_64 and arm64 only: so linux .tar.gz only, what an
 * agent's upgrade downloads.  Mirrored when --only names it.
 */
static const struct {
	const char *name, *dir;
} FIPS[] = {
	{"elastic-agent-fips", "beats/elastic-agent"},
	{NULL, NULL},
};
static const char *const ARCHES = "linux-x86_64,linux-arm64,windows-x86_64,darwin-x86_64,darwin-aarch64";
static const char *const FORMATS = "tar.gz,zip,deb,rpm";

static void add(struct joblist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct joblist *l, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, buf) == 0)
			return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, (size_t)l->cap * sizeof(*l->v));
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	l->v[l->n++].path = strdup(buf);
}

/*
 * The artifact registry's names: <name>-<version>-<os>-<arch>.tar.gz (zip on
 * Windows), <name>-<version>-amd64|arm64.deb, <name>-<version>-x86_64|aarch64.rpm.
 */
static void artifact_jobs(struct joblist *l, const char *dir, const char *name, const char *ver,
    const char *arches, const char *formats)
{
	static const char *const all[] = {"linux-x86_64", "linux-arm64", "windows-x86_64", "darwin-x86_64", "darwin-aarch64", NULL};

	for (int i = 0; all[i]; i++) {
		const char *a = all[i];
		char file[512];
		int linux_ = strncmp(a, "linux", 5) == 0, arm = strstr(a, "arm64") || strstr(a, "aarch64");
		if (!al_plan_in_list(arches, a))
			continue;
		file[0] = '\0';
		if (strncmp(a, "windows", 7) == 0) {
			if (al_plan_in_list(formats, "zip"))
				snprintf(file, sizeof(file), "%s-%s-%s.zip", name, ver, a);
		} else if (al_plan_in_list(formats, "tar.gz")) {
			snprintf(file, sizeof(file), "%s-%s-%s.tar.gz", name, ver, a);
		}
		for (int k = 0; k < 3; k++) {
			const char *f = k == 0 ? file : NULL;
			char pkg[512];
			if (k == 1 && linux_ && al_plan_in_list(formats, "deb"))
				snprintf(pkg, sizeof(pkg), "%s-%s-%s.deb", name, ver, arm ? "arm64" : "amd64"), f = pkg;
			if (k == 2 && linux_ && al_plan_in_list(formats, "rpm"))
				snprintf(pkg, sizeof(pkg), "%s-%s-%s.rpm", name, ver, arm ? "aarch64" : "x86_64"), f = pkg;
			if (f == NULL || !f[0])
				continue;
			add(l, "/downloads/%s/%s", dir, f);
			add(l, "/downloads/%s/%s.sha512", dir, f);
			add(l, "/downloads/%s/%s.asc", dir, f);
		}
	}
}

/* ---- the client side: requests through the in-process proxy ---- */

struct xfer {
	struct job *job;
	CURL *easy;
};

static size_t discard(char *p, size_t s, size_t n, void *arg)
{
	struct job *j = arg;
	size_t len = s * n, room = sizeof(j->text) - 1 - j->text_len;

	memcpy(j->text + j->text_len, p, len < room ? len : room);
	j->text_len += len < room ? len : room;
	j->text[j->text_len] = '\0';
	j->bytes += (long long)len;
	return len;
}

static size_t header(char *p, size_t s, size_t n, void *arg)
{
	struct job *j = arg;
	size_t len = s * n;

	if (len > 14 && strncasecmp(p, "Cache-Status:", 13) == 0) {
		size_t vl = len - 13;
		const char *v = p + 13;
		while (vl && (*v == ' '))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		snprintf(j->cache_status, sizeof(j->cache_status), "%.*s", (int)vl, v);
	}
	return len;
}

static int run_jobs(const struct al_config *cfg, int port, struct joblist *l, struct summary *sum, int tty,
    const char *what)
{
	CURLM *m = curl_multi_init();
	struct xfer running[CONCURRENCY] = {{0}};
	int next = 0, done = 0, active = 0;

	/* "already present" means: there when this run started */
	for (int i = 0; i < l->n; i++) {
		uint64_t len;
		l->v[i].had = stored_200(cfg, l->v[i].path, l->v[i].had_sha, &len);
	}

	while (done < l->n) {
		time_t now = time(NULL);
		for (int s = 0; s < CONCURRENCY; s++) {
			if (running[s].job != NULL)
				continue;
			for (int k = 0; k < l->n && running[s].job == NULL; k++) {
				int i = (next + k) % l->n;
				struct job *j = &l->v[i];
				char url[2300];
				if (j->status != 0 || j->tries == -1 || j->not_before > now)
					continue;
				if (j->tries > 0 && j->not_before == 0)
					continue;
				j->tries = j->tries > 0 ? j->tries : 0;
				running[s].job = j;
				j->not_before = 0;
				j->tries++;
				j->bytes = 0;
				j->text_len = 0;
				j->text[0] = '\0';
				j->status = -1; /* in flight */
				running[s].easy = curl_easy_init();
				snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, j->path);
				curl_easy_setopt(running[s].easy, CURLOPT_URL, url);
				curl_easy_setopt(running[s].easy, CURLOPT_PROXY, "");
				curl_easy_setopt(running[s].easy, CURLOPT_WRITEFUNCTION, discard);
				curl_easy_setopt(running[s].easy, CURLOPT_WRITEDATA, j);
				curl_easy_setopt(running[s].easy, CURLOPT_HEADERFUNCTION, header);
				curl_easy_setopt(running[s].easy, CURLOPT_HEADERDATA, j);
				curl_easy_setopt(running[s].easy, CURLOPT_USERAGENT, "airlock-mirror/" AIRLOCK_VERSION);
				curl_easy_setopt(running[s].easy, CURLOPT_PRIVATE, (char *)&running[s]);
				curl_multi_add_handle(m, running[s].easy);
				active++;
				next = i + 1;
			}
		}
		{
			int still, q;
			CURLMsg *msg;
			curl_multi_perform(m, &still);
			while ((msg = curl_multi_info_read(m, &q)) != NULL) {
				struct xfer *x;
				long code = 0;
				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
				struct job *j = x->job;
				int transient = msg->data.result != CURLE_OK || code >= 500 || code == 0;
				if (transient && j->tries < MAX_TRIES) {
					j->status = 0;
					j->not_before = time(NULL) + j->tries; /* 1 s, then 2 s */
				} else {
					j->status = code ? (int)code : 599;
					done++;
					judge(cfg, j, msg->data.result, code, sum);
					if (tty) {
						int w = 30, f = l->n ? done * w / l->n : w;
						fprintf(stderr, "\r%s [%.*s%*s] %d/%d", what, f, "##############################",
						    w - f, "", done, l->n);
					} else {
						char name[4096];
						fprintf(stderr, "%s %3d %s%s%s\n", what, j->status, job_name(cfg, j, name, sizeof(name)),
						    j->outcome == OUT_PRESENT ? " (present)" : j->outcome == OUT_FAILED ? " FAILED: " : "",
						    j->outcome == OUT_FAILED ? j->why : "");
					}
				}
				curl_multi_remove_handle(m, msg->easy_handle);
				curl_easy_cleanup(msg->easy_handle);
				x->job = NULL;
				active--;
			}
			if (active > 0)
				curl_multi_poll(m, NULL, 0, 200, NULL);
			else if (done < l->n)
				usleep(100000);
		}
	}
	if (tty)
		fprintf(stderr, "\n");
	curl_multi_cleanup(m);
	return 0;
}

/* Pin what was fetched or found (the cache keys are the upstream URLs). */
static void pin_jobs(const struct al_config *cfg, struct joblist *l)
{
	for (int i = 0; i < l->n; i++) {
		uint8_t key[AL_KEY_LEN];
		if (l->v[i].outcome != OUT_FETCHED && l->v[i].outcome != OUT_PRESENT)
			continue;
		if (path_key(cfg, l->v[i].path, key) == 0)
			al_store_pin(srv.store, key, 1);
	}
}

/* The body of a cached path, into memory (small documents: manifests, JSON). */
static char *cached_body(const struct al_config *cfg, const char *path, size_t *len)
{
	uint8_t key[AL_KEY_LEN];
	char *out = NULL;

	if (path_key(cfg, path, key) != 0 || al_read_small(srv.store, key, 64u << 20, &out, len) != 0)
		return NULL;
	return out;
}

/* One registry image (icons[], screenshots[]): Kibana's toPackageImage takes
 * src under /package/<name>/<version>, else path. */
static void add_image(struct joblist *l, json_t *img, const char *name, const char *ver)
{
	const char *src = json_string_value(json_object_get(img, "src"));
	const char *path = json_string_value(json_object_get(img, "path"));

	if (src && src[0] == '/' && !strstr(src, ".."))
		add(l, "/package/%s/%s%s", name, ver, src);
	else if (path && strncmp(path, "/package/", 9) == 0 && !strstr(path, ".."))
		add(l, "%s", path);
}

static void add_images(struct joblist *l, json_t *arr, const char *name, const char *ver)
{
	size_t i;
	json_t *img;

	json_array_foreach(arr, i, img)
		add_image(l, img, name, ver);
}

/*
 * The files Kibana's Integrations pages ask the registry for, for a package
 * that is not installed.  Read at elastic/kibana 027ff216 (use_links.tsx)
 * and 1f564c50 (the detail screens) under x-pack/platform/plugins/shared/
 * fleet/public/applications/integrations/: images go through useLinks'
 * toPackageImage (hooks/use_links.tsx: src under /package/<name>/<version>,
 * else path), files through the file route (sendGetFileByPath /
 * useGetFileByPathQuery; the server's getFile fetches
 * ${registryUrl}/package/<name>/<version>/<relPath>):
 * - icons and screenshots, the policy templates' too;
 * - readme (overview/readme.tsx, documentation/), and a policy template's
 *   own readme when it has one (overview/overview.tsx reads
 *   integrationInfo.readme before packageInfo.readme);
 * - notice and licensePath (overview/details.tsx NoticeModal, LicenseModal);
 * - changelog.yml, always (detail/hooks/use_change_log.ts useChangelog:
 *   /package/<name>/<version>/changelog.yml, for the details' "View
 *   Changelog" and the settings tab);
 * - the images a README shows: readme_images below.
 */
static void package_ui_files(struct joblist *l, json_t *doc)
{
	static const char *const docs[] = {"readme", "notice", "licensePath", NULL};
	const char *name = json_string_value(json_object_get(doc, "name"));
	const char *ver = json_string_value(json_object_get(doc, "version"));
	size_t i;
	json_t *pt;

	if (name == NULL || ver == NULL || strpbrk(name, "/?#") || strpbrk(ver, "/?#"))
		return;
	add_images(l, json_object_get(doc, "icons"), name, ver);
	add_images(l, json_object_get(doc, "screenshots"), name, ver);
	json_array_foreach(json_object_get(doc, "policy_templates"), i, pt) {
		const char *r = json_string_value(json_object_get(pt, "readme"));
		add_images(l, json_object_get(pt, "icons"), name, ver);
		add_images(l, json_object_get(pt, "screenshots"), name, ver);
		if (r && strncmp(r, "/package/", 9) == 0 && !strstr(r, ".."))
			add(l, "%s", r);
	}
	for (int k = 0; docs[k] != NULL; k++) {
		const char *d = json_string_value(json_object_get(doc, docs[k]));
		if (d && strncmp(d, "/package/", 9) == 0 && !strstr(d, ".."))
			add(l, "%s", d);
	}
	add(l, "/package/%s/%s/changelog.yml", name, ver);
}

struct image_ctx {
	struct joblist *l;
	const struct joblist *done;   /* already fetched (an image that is also an icon) */
	const char *name, *ver;
};

static void add_readme_image(const char *path, void *arg)
{
	struct image_ctx *c = arg;
	char full[2048];

	snprintf(full, sizeof(full), "/package/%s/%s%s", c->name, c->ver, path);
	for (int i = 0; i < c->done->n; i++)
		if (strcmp(c->done->v[i].path, full) == 0)
			return;
	add(c->l, "%s", full);
}

/*
 * The images the package's READMEs (its own and its policy templates')
 * show: overview/readme.tsx handleImageUri hands each image destination
 * that does not start with http(s):// to toRelativeImage, which fetches
 * /package/<name>/<version><new URL(uri, base).pathname> through the file
 * route.  The READMEs must be in the cache already.
 */
static void readme_images(const struct al_config *cfg, struct joblist *l, const struct joblist *done, json_t *doc)
{
	struct image_ctx c = {l, done, json_string_value(json_object_get(doc, "name")),
		json_string_value(json_object_get(doc, "version"))};
	const char *paths[33];
	int n = 0;
	size_t i;
	json_t *pt;

	if (c.name == NULL || c.ver == NULL || strpbrk(c.name, "/?#") || strpbrk(c.ver, "/?#"))
		return;
	paths[n++] = json_string_value(json_object_get(doc, "readme"));
	json_array_foreach(json_object_get(doc, "policy_templates"), i, pt)
		if (n < 33)
			paths[n++] = json_string_value(json_object_get(pt, "readme"));
	for (int k = 0; k < n; k++) {
		char *md;
		size_t ml;
		if (paths[k] == NULL || strncmp(paths[k], "/package/", 9) != 0 || strstr(paths[k], "..") ||
		    (md = cached_body(cfg, paths[k], &ml)) == NULL)
			continue;
		al_readme_images(md, ml, add_readme_image, &c);
		free(md);
	}
}

static void add_artifact(const char *rel, void *arg)
{
	add(arg, "%s", rel);
}

/* Every name --only knows, comma-separated, into buf. */
static void known_names(char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; BEATS[i]; i++)
		n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "", BEATS[i]);
	for (int i = 0; OTHERS[i].name; i++)
		n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, ",%s", OTHERS[i].name);
	for (int i = 0; FIPS[i].name; i++)
		n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, ",%s", FIPS[i].name);
}

/* 0 when every name in list is one mirror artifacts knows; else -ENOENT and the first unknown in bad. */
static int check_only(const char *list, char *bad, size_t cap)
{
	char known[1024];

	known_names(known, sizeof(known));
	for (const char *p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		char one[128];
		snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) ? len : sizeof(one) - 1), p);
		if (len == 0 || len >= sizeof(one) || !al_plan_in_list(known, one)) {
			snprintf(bad, cap, "%.*s", (int)len, p);
			return -ENOENT;
		}
		p = c ? c + 1 : NULL;
	}
	if (list[0] == '\0' || list[strlen(list) - 1] == ',') {
		snprintf(bad, cap, "(an empty name)");
		return -ENOENT;
	}
	return 0;
}

/*
 * The prefix of the route to host that strips it (the last one, as the route
 * table reads them), for the mirror commands that build upstream paths under
 * it; with slash, only a prefix that ends in '/' and kept so, else without its
 * trailing '/'.  0, or -ENOENT after saying which route to add.
 */
static int route_prefix(const struct al_config *cfg, const char *kind, const char *host, const char *dflt, int slash,
    char *out, size_t cap)
{
	int n;

	out[0] = '\0';
	for (int i = 0; i < cfg->nroutes; i++) {
		size_t pl = strlen(cfg->routes[i].prefix);
		if (strcmp(cfg->routes[i].upstream, host) == 0 && cfg->routes[i].strip_prefix &&
		    (!slash || (pl > 0 && cfg->routes[i].prefix[pl - 1] == '/')))
			snprintf(out, cap, "%s", cfg->routes[i].prefix);
	}
	n = (int)strlen(out);
	while (!slash && n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
	if (n == 0) {
		fprintf(stderr, "airlock mirror %s: no route to %s with strip_prefix in %s (the default is "
		    "{prefix: %s, upstream: %s, strip_prefix: true})\n", kind, host, cfg->file, dflt, host);
		return -ENOENT;
	}
	return 0;
}

/* Reads the index documents just fetched and adds the files they name; 0, or 1 after saying what is wrong. */
typedef int (*index_pick_fn)(const struct al_config *cfg, struct joblist *index, struct joblist *files, void *arg);

/*
 * What models, product-docs and geoip share: the index documents (asked
 * again every run: they are what names the files, and new files appear),
 * then the files pick finds in them; both pinned.  Takes index's paths and
 * frees them.  The exit code: pick's.
 */
static int mirror_indexed(const struct al_config *cfg, int port, const char *kind, struct joblist *index,
    index_pick_fn pick, void *arg, struct summary *sum, int tty)
{
	struct joblist files = {0};
	int rc;

	for (int i = 0; i < index->n; i++) {
		uint8_t key[AL_KEY_LEN];
		if (path_key(cfg, index->v[i].path, key) == 0)
			al_store_expire(srv.store, key);
	}
	run_jobs(cfg, port, index, sum, tty, kind);
	rc = pick(cfg, index, &files, arg);
	run_jobs(cfg, port, &files, sum, tty, kind);
	pin_jobs(cfg, index);
	pin_jobs(cfg, &files);
	for (int i = 0; i < index->n; i++)
		free(index->v[i].path);
	for (int i = 0; i < files.n; i++)
		free(files.v[i].path);
	free(index->v);
	free(files.v);
	return rc;
}

/* Each model's .pt, and the vocabulary_file its metadata names (under prefix, arg). */
static int pick_model_files(const struct al_config *cfg, struct joblist *meta, struct joblist *files, void *arg)
{
	const char *prefix = arg;
	int rc = 0;

	for (int i = 0; i < meta->n; i++) {
		char *body;
		size_t bl;
		json_t *doc;
		const char *voc;
		size_t pl = strlen(meta->v[i].path) - strlen(".metadata.json");
		if (meta->v[i].outcome != OUT_FETCHED && meta->v[i].outcome != OUT_PRESENT)
			continue;
		add(files, "%.*s.pt", (int)pl, meta->v[i].path);
		if ((body = cached_body(cfg, meta->v[i].path, &bl)) == NULL)
			continue;
		if ((doc = json_loadb(body, bl, 0, NULL)) == NULL) {
			fprintf(stderr, "airlock mirror models: %s is not JSON\n", meta->v[i].path);
			rc = 1;
		} else if ((voc = json_string_value(json_object_get(doc, "vocabulary_file"))) != NULL) {
			/* resolvePackageLocation refuses a file outside the repository: so does mirror */
			if (voc[0] == '\0' || strpbrk(voc, "/?#\\") || strstr(voc, ".."))
				fprintf(stderr, "airlock mirror models: %s: vocabulary_file '%s' is not a file name\n",
				    meta->v[i].path, voc), rc = 1;
			else
				add(files, "%s%s", prefix, voc);
		}
		json_decref(doc);
		free(body);
	}
	return rc;
}

/*
 * Trained models: for each id, <id>.metadata.json (always asked again: it is
 * what pins the .pt), then <id>.pt and the vocabulary_file it names, the
 * files Elasticsearch's ml-package-loader reads (TransportGetTrainedModel
 * PackageConfigAction, ModelImporter at fb3ff2f3: <packaged_model_id>.pt,
 * config.getVocabularyFile()), through the route that leads to
 * https://ml-models.elastic.co.  The .pt is checked against the metadata on
 * its way in (cache.verify_models).
 */
static int mirror_models(const struct al_config *cfg, int port, const char *ids, struct summary *sum, int tty)
{
	static const char host[] = "https://ml-models.elastic.co";
	char prefix[2048]; /* add()'s bound: the route's prefix was used whole before route_prefix */
	struct joblist meta = {0};

	if (route_prefix(cfg, "models", host, "/ml-models/", 1, prefix, sizeof(prefix)) < 0)
		return 2;
	for (const char *p = ids; *p;) {
		size_t n = strcspn(p, ",");
		add(&meta, "%s%.*s.metadata.json", prefix, (int)n, p);
		p += n + (p[n] == ',');
	}
	return mirror_indexed(cfg, port, "models", &meta, pick_model_files, prefix, sum, tty);
}

struct docs_pick {
	struct joblist *l;
	const char *prefix, *version;
	int listed;
};

static void pick_doc(const char *key, void *arg)
{
	struct docs_pick *d = arg;
	char v[32];

	d->listed++;
	if (al_product_doc_version(key, v, sizeof(v)) && strcmp(v, d->version) == 0 && !strpbrk(key, "/?#\\"))
		add(d->l, "%s/%s", d->prefix, key);
}

/* The artifacts the bucket's listing names for the version (arg, a struct docs_pick). */
static int pick_doc_files(const struct al_config *cfg, struct joblist *list, struct joblist *files, void *arg)
{
	struct docs_pick *d = arg;
	char *xml;
	size_t xl;
	int rc = 0;

	d->l = files;
	if (list->v[0].status != 200 || (xml = cached_body(cfg, list->v[0].path, &xl)) == NULL) {
		fprintf(stderr, "airlock mirror product-docs: no listing (HTTP %d)\n", list->v[0].status);
		return 1;
	}
	if (al_s3_keys(xml, xl, pick_doc, d) < 0) {
		fprintf(stderr, "airlock mirror product-docs: the listing is not a ListBucketResult\n");
		rc = 1;
	}
	printf("product-docs listing: %d artifacts, %d for %s\n", d->listed, files->n, d->version);
	if (files->n == 0 && rc == 0) {
		fprintf(stderr, "airlock mirror product-docs: the listing names no artifact for %s\n", d->version);
		rc = 1;
	}
	free(xml);
	return rc;
}

/*
 * The AI Assistant's product documentation for one Stack MAJOR.MINOR: the
 * bucket's listing (asked again every run: new artifacts appear), then each
 * artifact it lists whose name parseArtifactName reads with that version
 * (policy/s3listing.c), through the route to the bucket.
 */
static int mirror_product_docs(const struct al_config *cfg, int port, const char *version, struct summary *sum, int tty)
{
	static const char host[] = "https://kibana-knowledge-base-artifacts.elastic.co";
	char prefix[256];
	struct joblist list = {0};
	struct docs_pick d = {NULL, prefix, version, 0};

	if (route_prefix(cfg, "product-docs", host, "/product-docs", 0, prefix, sizeof(prefix)) < 0)
		return 2;
	add(&list, "%s?max-keys=1000", prefix); /* fetchArtifactVersions' own request */
	return mirror_indexed(cfg, port, "product-docs", &list, pick_doc_files, &d, sum, tty);
}

/* Every .tgz database the overview lists, under prefix (arg). */
static int pick_geoip_dbs(const struct al_config *cfg, struct joblist *ov, struct joblist *dbs, void *arg)
{
	const char *prefix = arg;
	json_t *list, *e;
	char *json;
	size_t jl, i;
	int rc = 0;

	if (ov->v[0].status != 200 || (json = cached_body(cfg, ov->v[0].path, &jl)) == NULL) {
		fprintf(stderr, "airlock mirror geoip: no overview (HTTP %d)\n", ov->v[0].status);
		return 1;
	}
	list = json_loadb(json, jl, 0, NULL);
	json_array_foreach(list, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *md5 = json_string_value(json_object_get(e, "md5_hash"));
		char m[33], nm[256], path[300];
		size_t l = name ? strlen(name) : 0;
		/* updateDatabases takes the names that end in .tgz */
		if (name == NULL || md5 == NULL || l < 4 || strcmp(name + l - 4, ".tgz") != 0)
			continue;
		snprintf(path, sizeof(path), "/v1/db/%s/%s", md5, name);
		if (al_geoip_db_path(path, m, nm, sizeof(nm)) == 0)
			add(dbs, "%s%s", prefix, path);
	}
	if (!json_is_array(list)) {
		fprintf(stderr, "airlock mirror geoip: the overview is not a JSON list\n");
		rc = 1;
	}
	printf("geoip overview: %d databases\n", dbs->n);
	json_decref(list);
	free(json);
	return rc;
}

/*
 * GeoIP: the overview (asked again every run: new databases get a new
 * md5_hash), then every .tgz database it lists, by the path the overview
 * airlock serves leads to (db/<md5_hash>/<name>, proxy/front/geoip.c), so
 * each is stored under its stable key, fetched from its signed URL.
 */
static int mirror_geoip(const struct al_config *cfg, int port, struct summary *sum, int tty)
{
	char prefix[256];
	struct joblist ov = {0};

	if (route_prefix(cfg, "geoip", AL_GEOIP_BASE, "/geoip/", 0, prefix, sizeof(prefix)) < 0)
		return 2;
	add(&ov, "%s/v1/database?elastic_geoip_service_tos=agree", prefix);
	ov.v[0].rewritten = 1; /* served with its urls leading to airlock; stored as the upstream sent it */
	return mirror_indexed(cfg, port, "geoip", &ov, pick_geoip_dbs, prefix, sum, tty);
}

/*
 * Kibana's own telemetry artifacts (Security Solution: elastic/kibana
 * 437def57, x-pack/solutions/security/plugins/security_solution/server/lib/
 * telemetry/artifact.ts).  Artifact.start names the manifest
 * https://artifacts.security.elastic.co/downloads/kibana/manifest/
 * artifacts-<version>.zip, <version> being Elasticsearch's version up to its
 * first '-'; getArtifact(name) reads it (getManifest: manifest.json and
 * manifest.sig) and GETs the cdn URL followed by artifacts[name].relative_url.
 * The manifest is asked again every run (republished in place, by ETag),
 * then every artifact it lists, each stored under the URL Kibana asks for
 * through the forward proxy.  Their paths are under /downloads/, which the
 * operator's routes lead to artifacts.elastic.co: so they are asked through
 * a route of the mirror's own (KIBANA_ARTS_PREFIX, prefix stripped, to
 * Kibana's CDN host), added to the in-process proxy's configuration only.
 */
#define KIBANA_CDN "https://artifacts.security.elastic.co"
#define KIBANA_ARTS_PREFIX MIRROR_PRIVATE "kibana-artifacts/"

static void add_kibana_artifact(const char *rel, void *arg)
{
	add(arg, "%.*s%s", (int)strlen(KIBANA_ARTS_PREFIX) - 1, KIBANA_ARTS_PREFIX, rel);
}

/*
 * The mirror's route to Kibana's CDN host, open (no client credentials: the
 * in-process proxy listens on loopback for this run only), beside a route
 * of the operator's to that host: 0, or 2 after saying what is missing.
 */
static int kibana_route(struct al_config *cfg)
{
	const struct al_route *to = NULL;
	struct al_route *r;

	for (int i = 0; i < cfg->nroutes; i++)
		if (strcmp(cfg->routes[i].upstream, KIBANA_CDN) == 0)
			to = &cfg->routes[i];
	if (to == NULL) {
		fprintf(stderr, "airlock mirror kibana-artifacts: no route to %s in %s (the default is {prefix: "
		    "/downloads/kibana/manifest/, upstream: %s})\n", KIBANA_CDN, cfg->file, KIBANA_CDN);
		return 2;
	}
	if (cfg->nroutes == AL_MAX_ROUTES) {
		fprintf(stderr, "airlock mirror kibana-artifacts: %s has %d routes, the most there can be; one is needed "
		    "for this run\n", cfg->file, AL_MAX_ROUTES);
		return 2;
	}
	r = &cfg->routes[cfg->nroutes];
	memset(r, 0, sizeof(*r));
	r->prefix = strdup(KIBANA_ARTS_PREFIX);
	r->upstream = strdup(KIBANA_CDN);
	r->host = strdup(to->host);
	if (r->prefix == NULL || r->upstream == NULL || r->host == NULL) {
		free(r->prefix);
		free(r->upstream);
		free(r->host);
		return 2;
	}
	r->port = to->port;
	r->auth = AL_ROUTE_AUTH_OPEN;
	r->strip_prefix = 1;
	cfg->nroutes++;
	return 0;
}

static int mirror_kibana_artifacts(const struct al_config *cfg, int port, const char *version, struct joblist *jobs,
    struct summary *sum, int tty)
{
	struct joblist arts = {0};
	uint8_t mkey[AL_KEY_LEN];
	char *zip, mv[128], err[512];
	size_t zl;
	int n, rc = 0;

	add(jobs, "/downloads/kibana/manifest/artifacts-%.*s.zip", (int)strcspn(version, "-"), version);
	if (path_key(cfg, jobs->v[0].path, mkey) == 0)
		al_store_expire(srv.store, mkey);
	run_jobs(cfg, port, jobs, sum, tty, "kibana-artifacts");
	if (jobs->v[0].status != 200 || (zip = cached_body(cfg, jobs->v[0].path, &zl)) == NULL) {
		fprintf(stderr, "airlock mirror kibana-artifacts: no manifest for %s (HTTP %d)\n", version, jobs->v[0].status);
		return 1;
	}
	if ((n = al_kibana_manifest(zip, zl, mv, sizeof(mv), add_kibana_artifact, &arts, err, sizeof(err))) < 0) {
		fprintf(stderr, "airlock mirror kibana-artifacts: %s: %s (Kibana refuses it too)\n", jobs->v[0].path, err);
		rc = 1;
	}
	printf("kibana telemetry manifest %s: %d artifacts\n", n < 0 ? "(unreadable)" : mv, arts.n);
	run_jobs(cfg, port, &arts, sum, tty, "kibana-artifacts");
	pin_jobs(cfg, &arts);
	for (int i = 0; i < arts.n; i++)
		free(arts.v[i].path);
	free(arts.v);
	free(zip);
	return rc;
}

static int usage(void)
{
	char known[1024];

	known_names(known, sizeof(known));
	fprintf(stderr,
	    "Usage:\n"
	    "  airlock mirror artifacts --version V [--arch LIST] [--format LIST] [--only LIST] [--config FILE]\n"
	    "      LIST is comma-separated; arches: %s; formats: %s;\n"
	    "      --only names: %s (elastic-agent-fips only when named: linux tar.gz)\n"
	    "  airlock mirror endpoint --version V [--config FILE]\n"
	    "  airlock mirror packages --kibana-version V [--prerelease] [--config FILE]\n"
	    "  airlock mirror models --id ID[,ID...] [--config FILE]   (e.g. elser_model_2_linux-x86_64)\n"
	    "  airlock mirror product-docs --version MAJOR.MINOR [--config FILE]\n"
	    "  airlock mirror geoip [--config FILE]\n"
	    "  airlock mirror kibana-artifacts --version V [--config FILE]   (Kibana's telemetry manifest and artifacts)\n"
	    "  airlock mirror --plan PLAN.yml [--config FILE]   every step of a plan (airlock plan prints one)\n",
	    ARCHES, FORMATS, known);
	return 2;
}

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int mirror_main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "", *version = NULL, *config = NULL;
	const char *arches = ARCHES, *formats = FORMATS, *only = NULL;
	int prerelease = 0, tty = isatty(2), port, rc = 0;
	struct al_config *cfg;
	struct joblist jobs = {0};
	struct summary sum = {0};
	char err[1024];

	if (!strcmp(kind, "--plan"))
		return plan_mirror(argc, argv);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if ((!strcmp(a, "--version") || !strcmp(a, "--kibana-version")) && v)
			version = v, i++;
		else if (!strcmp(a, "--id") && v && !strcmp(kind, "models"))
			version = v, i++; /* the model ids stand where the others name a version */
		else if (!strcmp(a, "--arch") && v)
			arches = v, i++;
		else if (!strcmp(a, "--format") && v)
			formats = v, i++;
		else if (!strcmp(a, "--only") && v)
			only = v, i++;
		else if (!strcmp(a, "--config") && v)
			config = v, i++;
		else if (!strcmp(a, "--prerelease"))
			prerelease = 1;
		else
			return usage();
	}
	if (!strcmp(kind, "geoip") && version == NULL)
		version = ""; /* one overview, whatever the Stack version */
	if (version == NULL || (strcmp(kind, "artifacts") && strcmp(kind, "endpoint") && strcmp(kind, "packages") &&
	    strcmp(kind, "models") && strcmp(kind, "product-docs") && strcmp(kind, "geoip") &&
	    strcmp(kind, "kibana-artifacts")))
		return usage();
	if (!strcmp(kind, "product-docs")) {
		size_t a = strspn(version, "0123456789"), b = a && version[a] == '.' ? strspn(version + a + 1, "0123456789") : 0;
		if (a == 0 || b == 0 || version[a + 1 + b] != '\0')
			return fprintf(stderr, "airlock mirror product-docs: '%s' is not MAJOR.MINOR\n", version), 2;
	}
	if (!strcmp(kind, "models")) {
		for (const char *p = version; *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_' || *p == ','))
				return fprintf(stderr, "airlock mirror models: '%s' is not a list of model ids\n", version), 2;
		if (version[0] == '\0' || version[0] == ',' || version[strlen(version) - 1] == ',' || strstr(version, ",,") ||
		    strstr(version, ".."))
			return fprintf(stderr, "airlock mirror models: '%s' is not a list of model ids\n", version), 2;
	}
	if (only != NULL) {
		char bad[160], known[1024];
		if (strcmp(kind, "artifacts") != 0)
			return fprintf(stderr, "airlock mirror %s: --only applies to mirror artifacts\n", kind), 2;
		if (check_only(only, bad, sizeof(bad)) != 0) {
			known_names(known, sizeof(known));
			fprintf(stderr, "airlock mirror artifacts: --only: unknown name '%s'; known names: %s\n", bad, known);
			return 2;
		}
	}
	for (const char *p = version; strcmp(kind, "models") && *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+'))
			return fprintf(stderr, "airlock mirror: '%s' is not a version\n", version), 2;
	if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return 2;
	}
	if (cfg->offline) {
		fprintf(stderr, "airlock mirror: upstream.offline is set in %s; mirroring needs the uplink\n", cfg->file);
		al_config_free(cfg);
		return 2;
	}
	if (!strcmp(kind, "kibana-artifacts") && (rc = kibana_route(cfg)) != 0) {
		al_config_free(cfg);
		return rc;
	}
	/* The in-process proxy: loopback only, on a free port, one worker. */
	port = free_port();
	strcpy(cfg->listen[0].host, "127.0.0.1");
	cfg->listen[0].port = port;
	cfg->nlisten = 1;
	cfg->workers = 1;
	if (port < 0 || al_server_start(cfg) != 0) {
		fprintf(stderr, "airlock mirror: cannot start the in-process proxy\n");
		al_server_stop();
		al_config_free(cfg);
		return 1;
	}
	if (!strcmp(kind, "artifacts")) {
		for (int i = 0; BEATS[i]; i++) {
			char dir[128];
			snprintf(dir, sizeof(dir), "beats/%s", BEATS[i]);
			if (only == NULL || al_plan_in_list(only, BEATS[i]))
				artifact_jobs(&jobs, dir, BEATS[i], version, arches, formats);
		}
		for (int i = 0; OTHERS[i].name; i++)
			if (only == NULL || al_plan_in_list(only, OTHERS[i].name))
				artifact_jobs(&jobs, OTHERS[i].dir, OTHERS[i].name, version, arches, formats);
		for (int i = 0; FIPS[i].name; i++) {
			char linux_arches[64];
			snprintf(linux_arches, sizeof(linux_arches), "%s%s%s", al_plan_in_list(arches, "linux-x86_64") ? "linux-x86_64" : "",
			    al_plan_in_list(arches, "linux-arm64") ? "," : "", al_plan_in_list(arches, "linux-arm64") ? "linux-arm64" : "");
			if (only != NULL && al_plan_in_list(only, FIPS[i].name) && al_plan_in_list(formats, "tar.gz"))
				artifact_jobs(&jobs, FIPS[i].dir, FIPS[i].name, version, linux_arches, "tar.gz");
		}
		add(&jobs, "/GPG-KEY-elastic-agent");
		run_jobs(cfg, port, &jobs, &sum, tty, "artifacts");
	} else if (!strcmp(kind, "endpoint")) {
		char *zipdata, mv[128], old_mv[128] = "";
		size_t zl;
		int n;
		uint8_t mkey[AL_KEY_LEN];

		add(&jobs, "/downloads/endpoint/manifest/artifacts-%s.zip", version);
		/*
		 * The manifest is republished in place: whatever its freshness, ask
		 * the upstream again (with its ETag) and note the version we had.
		 */
		if ((zipdata = cached_body(cfg, jobs.v[0].path, &zl)) != NULL) {
			if (al_endpoint_manifest(zipdata, zl, old_mv, sizeof(old_mv), NULL, NULL, err, sizeof(err)) < 0)
				old_mv[0] = '\0';
			free(zipdata);
		}
		if (path_key(cfg, jobs.v[0].path, mkey) == 0)
			al_store_expire(srv.store, mkey);
		run_jobs(cfg, port, &jobs, &sum, tty, "endpoint");
		err[0] = '\0';
		if (jobs.v[0].status != 200 || (zipdata = cached_body(cfg, jobs.v[0].path, &zl)) == NULL) {
			fprintf(stderr, "airlock mirror endpoint: no manifest for %s (HTTP %d)\n", version, jobs.v[0].status);
			rc = 1;
		} else {
			struct joblist arts_jobs = {0};
			int before = sum.fetched, added;
			n = al_endpoint_manifest(zipdata, zl, mv, sizeof(mv), add_artifact, &arts_jobs, err, sizeof(err));
			if (n < 0) {
				fprintf(stderr, "airlock mirror endpoint: %s\n", err);
				rc = 1;
			}
			printf("endpoint manifest_version %s: %d artifacts\n", n < 0 ? "(unreadable)" : mv, arts_jobs.n);
			run_jobs(cfg, port, &arts_jobs, &sum, tty, "endpoint");
			added = sum.fetched - before;
			if (old_mv[0] && n >= 0 && strcmp(old_mv, mv) != 0)
				printf("manifest updated %s \u2192 %s, %d new artifacts\n", old_mv, mv, added);
			else if (old_mv[0] && n >= 0)
				printf("manifest %s unchanged (revalidated), %d new artifacts\n", mv, added);
			pin_jobs(cfg, &arts_jobs);
			for (int i = 0; i < arts_jobs.n; i++)
				free(arts_jobs.v[i].path);
			free(arts_jobs.v);
			free(zipdata);
		}
	} else if (!strcmp(kind, "models")) {
		rc = mirror_models(cfg, port, version, &sum, tty);
	} else if (!strcmp(kind, "product-docs")) {
		rc = mirror_product_docs(cfg, port, version, &sum, tty);
	} else if (!strcmp(kind, "geoip")) {
		rc = mirror_geoip(cfg, port, &sum, tty);
	} else if (!strcmp(kind, "kibana-artifacts")) {
		rc = mirror_kibana_artifacts(cfg, port, version, &jobs, &sum, tty);
	} else {
		char *body;
		size_t bl;
		json_t *list;
		json_error_t je;
		struct joblist pkgs = {0}, files = {0}, ui = {0}, imgs = {0};

		add(&jobs, "/search?kibana.version=%s&prerelease=%s", version, prerelease ? "true" : "false");
		add(&jobs, "/categories?kibana.version=%s&prerelease=%s&include_policy_templates=true", version,
		    prerelease ? "true" : "false");
		add(&jobs, "/categories?kibana.version=%s&prerelease=%s", version, prerelease ? "true" : "false");
		run_jobs(cfg, port, &jobs, &sum, tty, "packages");
		if ((body = cached_body(cfg, jobs.v[0].path, &bl)) == NULL || (list = json_loadb(body, bl, 0, &je)) == NULL ||
		    !json_is_array(list)) {
			fprintf(stderr, "airlock mirror packages: /search did not give a JSON list\n");
			free(body);
			rc = 1;
		} else {
			size_t i;
			json_t *p;
			json_array_foreach(list, i, p) {
				const char *n = json_string_value(json_object_get(p, "name"));
				const char *ver = json_string_value(json_object_get(p, "version"));
				if (n && ver && !strpbrk(n, "/?#") && !strpbrk(ver, "/?#"))
					add(&pkgs, "/package/%s/%s/", n, ver);
			}
			run_jobs(cfg, port, &pkgs, &sum, tty, "packages");
			for (int k = 0; k < pkgs.n; k++) {
				char *info;
				size_t il;
				json_t *doc;
				if (pkgs.v[k].status != 200 || (info = cached_body(cfg, pkgs.v[k].path, &il)) == NULL)
					continue;
				if ((doc = json_loadb(info, il, 0, &je)) != NULL) {
					const char *dl = json_string_value(json_object_get(doc, "download"));
					const char *sig = json_string_value(json_object_get(doc, "signature_path"));
					if (dl && dl[0] == '/')
						add(&files, "%s", dl);
					if (sig && sig[0] == '/')
						add(&files, "%s", sig);
					package_ui_files(&ui, doc);
					json_decref(doc);
				}
				free(info);
			}
			run_jobs(cfg, port, &files, &sum, tty, "packages");
			run_jobs(cfg, port, &ui, &sum, tty, "packages");
			/* the READMEs are in the cache now: the images they show */
			for (int k = 0; k < pkgs.n; k++) {
				char *info;
				size_t il;
				json_t *doc;
				if (pkgs.v[k].status != 200 || (info = cached_body(cfg, pkgs.v[k].path, &il)) == NULL)
					continue;
				if ((doc = json_loadb(info, il, 0, &je)) != NULL) {
					readme_images(cfg, &imgs, &ui, doc);
					json_decref(doc);
				}
				free(info);
			}
			run_jobs(cfg, port, &imgs, &sum, tty, "packages");
			printf("package files for Kibana's Integrations pages (icons, screenshots, docs): %d\n", ui.n + imgs.n);
			pin_jobs(cfg, &pkgs);
			pin_jobs(cfg, &files);
			pin_jobs(cfg, &ui);
			pin_jobs(cfg, &imgs);
			json_decref(list);
			free(body);
		}
		for (int k = 0; k < pkgs.n; k++)
			free(pkgs.v[k].path);
		for (int k = 0; k < files.n; k++)
			free(files.v[k].path);
		for (int k = 0; k < ui.n; k++)
			free(ui.v[k].path);
		for (int k = 0; k < imgs.n; k++)
			free(imgs.v[k].path);
		free(ui.v);
		free(imgs.v);
		free(pkgs.v);
		free(files.v);
	}
	pin_jobs(cfg, &jobs);
	printf("mirror %s%s%s: fetched %d, already present %d, missing %d, failed %d, %.1f MB downloaded\n",
	    kind, version[0] ? " " : "", version, sum.fetched, sum.present, sum.missing, sum.failed, (double)sum.bytes / 1e6);
	if (sum.report != NULL)
		fputs(sum.report, stdout); /* named here, on a terminal too: the progress bar hid them */
	if (sum.failed)
		printf("mirror %s %s: %d failed; the cache lacks them (a bundle exported now would too); run mirror again\n",
		    kind, version, sum.failed);
	free(sum.report);
	mirror_last_totals = (struct mirror_totals){sum.fetched, sum.present, sum.missing, sum.failed, sum.bytes};
	for (int i = 0; i < jobs.n; i++)
		free(jobs.v[i].path);
	free(jobs.v);
	al_server_stop();
	al_config_free(cfg);
	return rc ? rc : (sum.failed ? 1 : 0);
}
