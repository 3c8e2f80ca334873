/*
 * Offline tools that open the cache directly.  LMDB lets them run while
 * `airlock serve` uses the same cache (readers and one writer at a time).
 */
#include "proxy/cli/tools.h"
#include "proxy/cli/listing.h"
#include "proxy/cli/split.h"
#include "cache/readiness.h"
#include "proxy/front/admin.h"
#include "cache/bundle.h"
#include "cache/ledger.h"
#include "cache/store.h"
#include "policy/config.h"
#include "policy/hdr.h"
#include "policy/manifest.h"
#include "policy/route.h"
#include "policy/units.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct ctx {
	struct al_store *s;
	struct al_reader *rd;
	const char *pattern;
	int n, bad;
	uint64_t bytes;
	uint8_t (*keys)[AL_KEY_LEN];
	int nkeys, capkeys;
};

static int url_matches(const struct al_record *r, const char *pat, char *url, size_t cap)
{
	size_t n = r->url_len < cap - 1 ? r->url_len : cap - 1;

	memcpy(url, r->url, n);
	url[n] = '\0';
	return pat == NULL || fnmatch(pat, url, 0) == 0 || strstr(url, pat) != NULL;
}

static void keep_key(struct ctx *c, const uint8_t *key)
{
	if (c->nkeys == c->capkeys) {
		c->capkeys = c->capkeys ? c->capkeys * 2 : 64;
		c->keys = realloc(c->keys, (size_t)c->capkeys * AL_KEY_LEN);
	}
	memcpy(c->keys[c->nkeys++], key, AL_KEY_LEN);
}

static int ls_one(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct ctx *c = arg;
	char url[8192], etag[128] = "-";
	const char *e;
	size_t el;
	time_t age = time(NULL) - r->response_time;

	if (!url_matches(r, c->pattern, url, sizeof(url)))
		return 0;
	if ((e = al_hdr_get(r->hdrs, r->hdrs_len, "ETag", &el)) != NULL)
		snprintf(etag, sizeof(etag), "%.*s", (int)(el < 120 ? el : 120), e);
	printf("%3d %12llu %8llds %-6s %s %s\n", r->status, (unsigned long long)r->body_len, (long long)age,
	    (r->flags & AL_REC_PINNED) ? "pinned" : "-", etag, url);
	c->n++;
	c->bytes += r->body_len;
	return 0;
}

static int collect(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct ctx *c = arg;
	char url[8192];

	if (url_matches(r, c->pattern, url, sizeof(url)))
		keep_key(c, key);
	return 0;
}

static int verify_one(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct ctx *c = arg;
	char url[8192];
	int rc;

	url_matches(r, NULL, url, sizeof(url));
	rc = al_store_check_body(c->rd, r);
	c->n++;
	if (rc != 0) {
		printf("corrupt: %s (%s)\n", url, rc == -EBADMSG ? "SHA-256 mismatch" :
		    rc == -ENOENT ? "chunks of its body are missing" :
		    rc == -EUCLEAN ? "LMDB found a damaged page on the way to its body" : strerror(-rc));
		keep_key(c, key);
		c->bad++;
	}
	return 0;
}

/* Per upstream: entries, bytes, oldest fetch; versions seen in pinned names. */
struct upstat {
	char name[256];
	uint64_t entries, bytes;
	time_t oldest;
};

struct status_ctx {
	struct upstat ups[64];
	int nups;
	char versions[64][32];
	int nversions;
	char manifests[32][256];   /* cached endpoint manifest paths */
	int nmanifests;
};

static int status_one(const uint8_t *key, const struct al_record *r, void *arg)
{
	struct status_ctx *s = arg;
	char url[8192], host[256];
	const char *p;
	char v[32];
	int i, k;

	url_matches(r, NULL, url, sizeof(url));
	p = strstr(url, "://");
	snprintf(host, sizeof(host), "%.*s", p ? (int)(strcspn(p + 3, "/") + (p + 3 - url)) : 0, url);
	for (i = 0; i < s->nups && strcmp(s->ups[i].name, host) != 0; i++)
		;
	if (i == s->nups && s->nups < 64) {
		snprintf(s->ups[s->nups].name, sizeof(s->ups[0].name), "%s", host);
		s->ups[s->nups++].oldest = r->response_time;
	}
	if (i < 64) {
		s->ups[i].entries++;
		s->ups[i].bytes += r->body_len;
		if (r->response_time < s->ups[i].oldest)
			s->ups[i].oldest = r->response_time;
	}
	if ((r->flags & AL_REC_PINNED) && r->status == 200 && al_agent_version_of(url, strlen(url), v, sizeof(v)) == 0) {
		for (k = 0; k < s->nversions && strcmp(s->versions[k], v); k++)
			;
		if (k == s->nversions && s->nversions < 64)
			snprintf(s->versions[s->nversions++], 32, "%s", v);
	}
	if (strstr(url, "/downloads/endpoint/manifest/artifacts-") && s->nmanifests < 32)
		snprintf(s->manifests[s->nmanifests++], 256, "%.255s", url);
	return 0;
}

static void endpoint_manifest(struct ctx *c, const char *url)
{
	char mv[400];
	time_t when = 0;

	if (al_manifest_info(c->rd, url, mv, sizeof(mv), &when) == -ENOENT)
		return;
	printf("  %s\n    manifest_version %s, published %lld days ago%s\n", url, mv,
	    (long long)((time(NULL) - when) / 86400),
	    time(NULL) - when > 30 * 86400 ? "  WARNING: older than 30 days; Elastic advises monthly updates" : "");
}

static int usage(void)
{
	fprintf(stderr, "Usage:\n"
	    "  airlock ls [PATTERN] [--config FILE]       list entries (PATTERN: URL glob or substring)\n"
	    "  airlock purge PATTERN [--config FILE]      delete matching entries\n"
	    "  airlock verify [--config FILE]             re-digest every body; drop corrupt entries\n"
	    "  airlock status [--config FILE]             per upstream: entries, bytes, oldest; versions; Endpoint manifests\n"
	    "  airlock export FILE [--match PATTERN] [--sign DIR/bundle.key] [--since OLD] [--config FILE]\n"
	    "  airlock export FILE --dry-run [--since OLD] [--match PATTERN] [--json | --csv]   list, write nothing\n"
	    "  airlock export FILE --split SIZE ...           FILE.001, FILE.002... of at most SIZE, and FILE.index\n"
	    "  airlock import FILE [--trust PUB ...] [--config FILE]   (FILE: a bundle, or a split one's index or first part)\n");
	return 2;
}

/* export and import options */
struct bundle_opts {
	const char *match, *sign, *since;
	int dry_run, fmt;
	uint64_t split;             /* --split SIZE: parts of at most this, 0: one file */
	const char *trust[16];
	int ntrust;
};

static void plan_row(const struct al_record *rec, int change, void *arg)
{
	struct row *r = listing_add(arg, rec);

	if (r != NULL)
		r->change = change == AL_ENTRY_CHANGED ? "changed" : "added";
}

/* export --dry-run: the listing export would write, and its counts against the base; no file. */
static int dry_run(struct ctx *c, const char *path, const struct bundle_opts *bo, struct al_export_opts *o)
{
	struct listing l = {.dry_run = 1};
	struct al_bundle_stats bs;
	char err[1024], lines[3][1200], kid[AL_KEY_ID_LEN + 1] = "";
	const char *fl[4] = {lines[0], lines[1], lines[2], NULL};
	json_t *facts;
	int rc;

	o->dry_run = 1;
	o->each = plan_row;
	o->arg = &l;
	if ((rc = al_bundle_export(c->s, NULL, o, &bs, err, sizeof(err))) != 0) {
		fprintf(stderr, "airlock export --dry-run: %s\n", err);
		listing_free(&l);
		return 1;
	}
	listing_check(&l);
	if (o->sign)
		al_bundle_key_id(o->sign, kid);
	snprintf(lines[0], sizeof(lines[0]), "dry run: export %s would write a format 3 bundle, %s%s; nothing was written",
	    path, kid[0] ? "signed by key " : "unsigned", kid);
	snprintf(lines[1], sizeof(lines[1]), "base: %s%s", bo->since ? "incremental on " : "none (a full bundle)",
	    bo->since ? bo->since : "");
	snprintf(lines[2], sizeof(lines[2]), "totals: %llu entries, %llu body bytes: added %llu, changed %llu, unchanged %llu",
	    (unsigned long long)bs.entries, (unsigned long long)bs.bytes, (unsigned long long)bs.added,
	    (unsigned long long)bs.changed, (unsigned long long)bs.unchanged);
	facts = json_pack("{s:s, s:b, s:i, s:s, s:s?, s:I, s:I, s:I, s:I, s:I}", "file", path, "dry_run", 1, "format", 3,
	    "signer_key_id", kid, "base", bo->since, "entries", (json_int_t)bs.entries, "body_bytes", (json_int_t)bs.bytes,
	    "added", (json_int_t)bs.added, "changed", (json_int_t)bs.changed, "unchanged", (json_int_t)bs.unchanged);
	listing_print(stdout, bo->fmt, &l, facts, fl, NULL);
	json_decref(facts);
	listing_free(&l);
	return 0;
}

/*
 * The ledger must be intact before an export or import adds to it: a
 * broken chain is reported, never buried under new records.
 */
static int ledger_ok(const char *cmd, const char *dir, struct al_store *s)
{
	char err[600], head[65];
	uint64_t n, bad;

	if (al_ledger_read(dir, s, NULL, NULL, &n, &bad, head, err, sizeof(err)) == 0)
		return 1;
	fprintf(stderr, "airlock %s: the ledger of custody in %s is broken: %s.\n"
	    "Nothing was done. See it with `airlock ledger`; keep the file for review and move it aside to start a new "
	    "chain.\n", cmd, dir, err);
	return 0;
}

static void ledger_add(const char *cmd, const char *dir, struct al_store *s, json_t *rec)
{
	char err[600], dg[65];

	if (al_ledger_append(dir, s, rec, dg, NULL, err, sizeof(err)) != 0)
		fprintf(stderr, "airlock %s: WARNING: not recorded in the ledger of custody: %s\n", cmd, err);
	else
		printf("ledger of custody: record %.16s... appended\n", dg);
	json_decref(rec);
}

static json_t *hexj(const uint8_t *d, int have)
{
	char h[65];

	if (!have)
		return json_null();
	al_hex(d, 32, h);
	return json_string(h);
}

/* An export's first ledger record, appended once its entries are planned; the bundle carries it. */
struct started {
	const char *dir, *path, *match;
	char kid[AL_KEY_ID_LEN + 1];
	const struct al_bundle_index *base;
	char digest[65];
	struct al_store *s;          /* the cache at dir, which keeps the ledger's second anchor */
};

static json_t *export_counts(const struct al_bundle_stats *bs)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "carried", (json_int_t)bs->entries, "added", (json_int_t)bs->added,
	    "changed", (json_int_t)bs->changed, "unchanged", (json_int_t)bs->unchanged);
}

static char *export_started(const struct al_bundle_stats *bs, void *arg, int *failed, char *err, size_t errlen)
{
	struct started *x = arg;
	json_t *rec = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:s?}", "command", "export", "result", "started", "file",
	    x->path, "format", 3, "signer", x->kid[0] ? json_string(x->kid) : json_null(), "base",
	    hexj(x->base ? al_bundle_index_digest(x->base) : NULL, x->base != NULL), "match", x->match);
	char *line = NULL;

	json_object_set_new(rec, "entries", export_counts(bs));
	json_object_set_new(rec, "body_bytes", json_integer((json_int_t)bs->bytes));
	if (al_ledger_append(x->dir, x->s, rec, x->digest, &line, err, errlen) != 0)
		*failed = 1;
	json_decref(rec);
	return line;
}

static int cmd_export(struct ctx *c, const char *dir, const char *path, const struct bundle_opts *bo)
{
	struct al_export_opts o = {bo->match, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
	struct started x = {dir, path, bo->match, "", NULL, "", c->s};
	struct split_writer *sw = NULL;
	int nparts = 0;
	struct al_bundle_index *base = NULL;
	struct al_bundle_stats bs = {0};
	char err[1024], kid[AL_KEY_ID_LEN + 1] = "";
	uint8_t digest[32];
	json_t *rec;
	FILE *f;
	int rc;

	if (bo->sign != NULL && al_bundle_load_key(bo->sign, 1, &o.sign, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock export: --sign %s\n", err);
		return 1;
	}
	if (bo->since != NULL) {
		FILE *old = fopen(bo->since, "rb");
		if (old == NULL || al_bundle_index_read(old, &base, err, sizeof(err)) != 0) {
			fprintf(stderr, "airlock export: --since %s: %s\n", bo->since, old ? err : strerror(errno));
			if (old)
				fclose(old);
			EVP_PKEY_free(o.sign);
			return 1;
		}
		fclose(old);
		o.base = base;
	}
	if (bo->dry_run) {
		rc = dry_run(c, path, bo, &o);
		al_bundle_index_free(base);
		EVP_PKEY_free(o.sign);
		return rc;
	}
	if (!ledger_ok("export", dir, c->s)) {
		al_bundle_index_free(base);
		EVP_PKEY_free(o.sign);
		return 1;
	}
	if (o.sign)
		al_bundle_key_id(o.sign, kid);
	o.digest = digest;
	memcpy(x.kid, kid, sizeof(kid));
	x.base = base;
	o.custody = export_started;
	o.custody_arg = &x;
	f = bo->split ? split_write_open(path, bo->split, &sw, err, sizeof(err)) : fopen(path, "wb");
	if (f == NULL) {
		if (!bo->split)
			snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
		fprintf(stderr, "airlock export: %s\n", err);
		rc = -EIO;
	} else {
		rc = al_bundle_export(c->s, f, &o, &bs, err, sizeof(err));
		if (fclose(f) != 0 && rc == 0)
			rc = -EIO, snprintf(err, sizeof(err), "writing %s: %s", path, strerror(errno));
		if (rc == 0 && sw != NULL) {
			char dg[65];
			al_hex(digest, 32, dg);
			rc = split_write_index(sw, dg, &nparts, err, sizeof(err));
		}
		if (rc != 0) {
			fprintf(stderr, "airlock export: %s%s\n", err, sw != NULL && sw_full(sw) ?
			    " (more than 999 parts: choose a larger --split)" : "");
			if (sw != NULL)
				split_write_abort(sw), sw = NULL;
			else
				remove(path);
		} else {
			struct stat st;
			char what[4300];
			if (sw != NULL)
				snprintf(what, sizeof(what), "%s.001 ... %s.%03d (%d parts of at most %llu bytes) and %s.index", path,
				    path, nparts, nparts, (unsigned long long)bo->split, path);
			else
				snprintf(what, sizeof(what), "%s (%lld bytes)", path, stat(path, &st) == 0 ? (long long)st.st_size : -1LL);
			printf("exported %llu entries, %llu body bytes to %s%s%s\n", (unsigned long long)bs.entries,
			    (unsigned long long)bs.bytes, what, kid[0] ? ", signed by key " : ", unsigned", kid);
			if (base != NULL)
				printf("incremental on %s: %llu new or changed entries carried, %llu unchanged left out\n",
				    bo->since, (unsigned long long)bs.entries, (unsigned long long)bs.unchanged);
		}
	}
	rec = json_pack("{s:s, s:s, s:s, s:o, s:i, s:o, s:o, s:s?}", "command", "export", "result",
	    rc == 0 ? "written" : "failed", "file", path, "bundle_digest", hexj(digest, rc == 0), "format", 3, "signer",
	    kid[0] ? json_string(kid) : json_null(), "base", hexj(base ? al_bundle_index_digest(base) : NULL, base != NULL),
	    "match", bo->match);
	json_object_set_new(rec, "entries", export_counts(&bs));
	json_object_set_new(rec, "body_bytes", json_integer((json_int_t)bs.bytes));
	json_object_set_new(rec, "started", x.digest[0] ? json_string(x.digest) : json_null());
	if (sw != NULL)
		json_object_set_new(rec, "parts", json_integer(nparts));
	split_write_free(sw);
	if (rc != 0)
		json_object_set_new(rec, "reason", json_string(err));
	ledger_add("export", dir, c->s, rec);
	al_bundle_index_free(base);
	EVP_PKEY_free(o.sign);
	return rc ? 1 : 0;
}

/* import's source_ok for a split bundle: every part read is the one its index names. */
static int split_ok(void *arg, char *err, size_t errlen)
{
	return split_read_check(arg, err, errlen);
}

/*
 * One read of the bundle verifies and admits it (al_bundle_import): trusted
 * keys (config and --trust) mean a valid signature by one of them is
 * required; a delta needs its base in this cache; entries are published
 * only once all of it checked out.  Whatever the outcome, the ledger
 * records it.
 */
static int cmd_import(struct ctx *c, const struct al_config *cfg, const char *path, const struct bundle_opts *bo)
{
	EVP_PKEY *trusted[32];
	struct al_bundle_info info;
	struct al_import_stats is = {0};
	struct al_import_opts io;
	char err[1024] = "", sigstate[300] = "", custody_dg[65], ixp[4200];
	const char *result = "refused";
	int nt = 0, rc = 0, verified = 0, custody_bad = 0, outcome;
	json_t *rec;
	FILE *f;
	struct split_reader *sr = NULL;

	memset(&info, 0, sizeof(info));
	if (!ledger_ok("import", cfg->cache_path, c->s))
		return 1;
	for (int i = 0; i < cfg->ntrusted_keys + bo->ntrust && nt < 32; i++) {
		const char *kp = i < cfg->ntrusted_keys ? cfg->trusted_keys[i] : bo->trust[i - cfg->ntrusted_keys];
		if (al_bundle_load_key(kp, 0, &trusted[nt], err, sizeof(err)) != 0) {
			fprintf(stderr, "airlock import: trusted key %s\n", err);
			rc = 1;
			goto out;
		}
		nt++;
	}
	if ((rc = split_open_read(path, &f, &sr, ixp, sizeof(ixp), err, sizeof(err))) < 0) {
		/* a split bundle with a part missing, short or altered: named, nothing read */
		fprintf(stderr, "airlock import: rejected %s: %s; the cache was not changed\n", path, err);
		rc = 1;
		goto record;
	}
	if (rc == 0 && (f = fopen(path, "rb")) == NULL) {
		snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
		fprintf(stderr, "airlock import: %s\n", err);
		rc = 1;
		goto record;
	}
	rc = 0;
	io.trusted = trusted;
	io.ntrusted = nt;
	io.source_ok = sr != NULL ? split_ok : NULL;
	io.source_arg = sr;
	al_bundle_import(c->s, f, &io, &info, &is, &outcome, err, sizeof(err));
	if (sr != NULL && outcome == AL_IMPORT_REFUSED) {
		/* a part not the index's may have stopped the read anywhere in it: name the part, not the bytes it broke */
		char perr[1024];
		if (split_read_check(sr, perr, sizeof(perr)) != 0)
			snprintf(err, sizeof(err), "%s", perr);
	}
	fclose(f);
	verified = outcome == AL_IMPORT_ADMITTED || outcome == AL_IMPORT_UNTRUSTED || outcome == AL_IMPORT_NO_BASE ||
	    outcome == AL_IMPORT_FAILED;
	snprintf(sigstate, sizeof(sigstate), "%s", nt == 0 ? "not checked (no trusted keys)" :
	    outcome == AL_IMPORT_UNTRUSTED ? "refused" : outcome == AL_IMPORT_REFUSED ? "not checked" :
	    "verified by a trusted key");
	switch (outcome) {
	case AL_IMPORT_REFUSED:
	case AL_IMPORT_UNTRUSTED:
		fprintf(stderr, "airlock import: rejected %s: %s; the cache was not changed\n", path, err);
		rc = 1;
		goto record;
	case AL_IMPORT_NO_BASE:
		fprintf(stderr, "airlock import: rejected %s: %s. The cache was not changed\n", path, err);
		rc = 1;
		goto record;
	}
	if (nt == 0)
		printf("the bundle's origin was not checked: no trusted keys (import.trusted_keys, --trust)%s%s\n",
		    info.is_signed ? "; it is signed by key " : "", info.is_signed ? info.key_id : "");
	else
		printf("signature by trusted key %s verified\n", info.key_id);
	if (outcome == AL_IMPORT_FAILED) {
		/* verified whole, then the cache could not take it all (disk full...): say what went in */
		fprintf(stderr, "airlock import: %s: stopped after admitting %llu entries: %s; run it again once fixed\n",
		    path, (unsigned long long)(is.added + is.updated), err);
		result = "failed";
		rc = 1;
	} else {
		printf("imported %s%s: added %llu, updated %llu, skipped %llu (same or newer in the cache), "
		    "rejected 0, %llu body bytes\n", path, info.is_delta ? " (incremental)" : "", (unsigned long long)is.added,
		    (unsigned long long)is.updated, (unsigned long long)is.skipped, (unsigned long long)is.bytes);
		result = "admitted";
	}
	if (rc == 0 && info.custody[0] && al_ledger_check_line(info.custody, custody_dg) == 0) {
		/* the connected side's record of this export, byte for byte, before our own */
		json_t *j = json_loads(info.custody, 0, NULL);
		rec = json_pack("{s:s, s:s, s:s?, s:o, s:s, s:s}", "command", "custody", "result", "carried", "from_host",
		    json_string_value(json_object_get(j, "host")), "bundle_digest", hexj(info.digest, 1), "record_digest",
		    custody_dg, "record_line", info.custody);
		json_decref(j);
		ledger_add("import", cfg->cache_path, c->s, rec);
	} else if (rc == 0 && info.custody[0]) {
		custody_bad = 1;
	}
record:
	rec = json_pack("{s:s, s:s, s:s, s:o, s:i, s:o, s:s, s:o}", "command", "import", "result", result, "file", path,
	    "bundle_digest", hexj(info.digest, verified), "format", info.version, "signer",
	    info.key_id[0] ? json_string(info.key_id) : json_null(), "signature", info.is_signed ? sigstate : "unsigned",
	    "base", hexj(info.base, info.is_delta));
	json_object_set_new(rec, "entries", json_pack("{s:I, s:I, s:I, s:I}", "added", (json_int_t)is.added, "updated",
	    (json_int_t)is.updated, "skipped", (json_int_t)is.skipped, "refused",
	    (json_int_t)(strcmp(result, "refused") == 0 ? info.entries : 0)));
	json_object_set_new(rec, "body_bytes", json_integer((json_int_t)is.bytes));
	if (strcmp(result, "admitted") != 0)
		json_object_set_new(rec, "reason", json_string(err));
	if (custody_bad)
		json_object_set_new(rec, "custody", json_string("the exporting side's record in the bundle does not match its "
		    "own digest; not carried"));
	ledger_add("import", cfg->cache_path, c->s, rec);
out:
	for (int i = 0; i < nt; i++)
		EVP_PKEY_free(trusted[i]);
	return rc;
}

int tools_main(int argc, char **argv)
{
	const char *cmd = argv[0], *config = NULL, *arg = NULL;
	struct bundle_opts o = {0};
	struct al_config *cfg;
	struct ctx c = {0};
	char err[1024];
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--match") && i + 1 < argc)
			o.match = argv[++i];
		else if (!strcmp(argv[i], "--sign") && i + 1 < argc && !strcmp(cmd, "export"))
			o.sign = argv[++i];
		else if (!strcmp(argv[i], "--since") && i + 1 < argc && !strcmp(cmd, "export"))
			o.since = argv[++i];
		else if (!strcmp(argv[i], "--dry-run") && !strcmp(cmd, "export"))
			o.dry_run = 1;
		else if (!strcmp(argv[i], "--split") && i + 1 < argc && !strcmp(cmd, "export")) {
			if (al_parse_size(argv[++i], &o.split) != 0 || o.split < 4096) {
				fprintf(stderr, "airlock export: --split %s: a size of at least 4KiB (650MB, 4GiB...)\n", argv[i]);
				return 2;
			}
		}
		else if (!strcmp(argv[i], "--json") && !strcmp(cmd, "export"))
			o.fmt = LISTING_JSON;
		else if (!strcmp(argv[i], "--csv") && !strcmp(cmd, "export"))
			o.fmt = LISTING_CSV;
		else if (!strcmp(argv[i], "--trust") && i + 1 < argc && !strcmp(cmd, "import") && o.ntrust < 16)
			o.trust[o.ntrust++] = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1] == '-')
			return usage();
		else if (arg == NULL)
			arg = argv[i];
		else
			return usage();
	}
	if ((!strcmp(cmd, "purge") || !strcmp(cmd, "export") || !strcmp(cmd, "import")) && arg == NULL)
		return usage();
	if ((o.fmt != LISTING_TEXT && !o.dry_run) || (o.dry_run && o.split)) {
		fprintf(stderr, "airlock export: --json and --csv go with --dry-run, and --dry-run writes no parts\n");
		return 2;
	}
	if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return 2;
	}
	if (al_store_open(cfg->cache_path, cfg->cache_max_size, 126, &c.s, err, sizeof(err)) != 0 ||
	    al_reader_new(c.s, &c.rd) != 0) {
		fprintf(stderr, "airlock %s: %s\n", cmd, err);
		al_config_free(cfg);
		return 1;
	}
	c.pattern = arg;
	if (!strcmp(cmd, "ls")) {
		rc = al_store_foreach(c.s, ls_one, &c);
		printf("%d entries, %llu bytes\n", c.n, (unsigned long long)c.bytes);
	} else if (!strcmp(cmd, "purge")) {
		rc = al_store_foreach(c.s, collect, &c);
		int batched = al_store_batch_begin(c.s) == 0; /* one durable commit for all, not one per entry */
		for (int i = 0; i < c.nkeys; i++)
			al_store_delete(c.s, c.keys[i]);
		if (batched && al_store_batch_end(c.s) != 0 && rc == 0)
			rc = -EIO;
		printf("purged %d entries\n", c.nkeys);
	} else if (!strcmp(cmd, "verify")) {
		al_reader_begin(c.rd);
		rc = al_store_foreach(c.s, verify_one, &c);
		al_reader_end(c.rd);
		int batched = al_store_batch_begin(c.s) == 0;
		for (int i = 0; i < c.nkeys; i++)
			al_store_delete(c.s, c.keys[i]);
		if (batched && al_store_batch_end(c.s) != 0 && rc == 0)
			rc = -EIO;
		printf("verified %d entries: %d corrupt%s\n", c.n, c.bad, c.bad ? " (dropped; the next request refetches)" : "");
		rc = c.bad ? 1 : rc;
	} else if (!strcmp(cmd, "status")) {
		struct status_ctx *s = calloc(1, sizeof(*s));
		struct al_store_stats st;
		rc = al_store_foreach(c.s, status_one, s);
		al_store_stats(c.s, &st);
		printf("cache %s: %llu entries, %llu of %llu bytes\n", cfg->cache_path, (unsigned long long)st.entries,
		    (unsigned long long)st.bytes, (unsigned long long)cfg->cache_max_size);
		for (int i = 0; i < s->nups; i++) {
			char when[32];
			struct tm tm;
			gmtime_r(&s->ups[i].oldest, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
			printf("  %-44s %6llu entries %14llu bytes  oldest fetch %s UTC\n", s->ups[i].name,
			    (unsigned long long)s->ups[i].entries, (unsigned long long)s->ups[i].bytes, when);
		}
		printf("mirrored Elastic Agent versions:");
		for (int i = 0; i < s->nversions; i++)
			printf(" %s", s->versions[i]);
		printf("%s\n", s->nversions ? "" : " none");
		printf("Endpoint manifests:%s\n", s->nmanifests ? "" : " none");
		for (int i = 0; i < s->nmanifests; i++)
			endpoint_manifest(&c, s->manifests[i]);
		free(s);
	} else if (!strcmp(cmd, "export")) {
		rc = cmd_export(&c, cfg->cache_path, arg, &o);
	} else if (!strcmp(cmd, "import")) {
		rc = cmd_import(&c, cfg, arg, &o);
	} else {
		rc = usage();
	}
	if (rc < 0 && strcmp(cmd, "export") != 0 && strcmp(cmd, "import") != 0)
		/* the index itself could not be read to its end: say so, not just the exit code */
		fprintf(stderr, "airlock %s: reading the cache's index stopped: %s%s\n", cmd,
		    rc == -EUCLEAN ? "LMDB found a damaged page" : strerror(-rc),
		    rc == -EUCLEAN ? "; move the cache directory aside and start with an empty one "
		    "(refill, or airlock import a bundle)" : "");
	free(c.keys);
	al_reader_free(c.rd);
	al_store_close(c.s);
	al_config_free(cfg);
	return rc < 0 ? 1 : rc;
}
