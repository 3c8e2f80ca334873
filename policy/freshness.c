#include "policy/freshness.h"
#include "policy/units.h"
#include "policy/artifact.h"
#include "policy/hdr.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 64 lower-case hex digits: a SHA-256 in a path segment. */
#define HEX "[0-9a-f]"
#define HEX4 HEX HEX HEX HEX
#define HEX16 HEX4 HEX4 HEX4 HEX4
#define SHA256_HEX HEX16 HEX16 HEX16 HEX16

/*
 * Order matters: the first match decides.  The Endpoint manifest is a .zip
 * named by the Endpoint version, yet Elastic republishes it in place as
 * global artifacts change (manifest_version moves, the ETag changes), and
 * Endpoint re-downloads by ETag alone: it must be revalidated, never
 * frozen.  Snapshot builds are rebuilt under one name.
 */
const struct al_default_rule al_default_rules[] = {
	{"/downloads/endpoint/manifest/*", 0,
	    "Endpoint's manifest is republished in place: the upstream's Cache-Control and ETag decide"},
	/*
	 * Kibana's own telemetry manifest: Security Solution's artifact service
	 * (elastic/kibana 437def57, x-pack/solutions/security/plugins/
	 * security_solution/server/lib/telemetry/artifact.ts, Artifact.start and
	 * getArtifact) builds <cdn>/downloads/kibana/manifest/artifacts-<version>.zip
	 * and polls it with If-None-Match: the ETag it kept; a 304 means unchanged.
	 * Republished in place like Endpoint's.
	 */
	{"/downloads/kibana/manifest/*", 0,
	    "Kibana's telemetry manifest is republished in place and polled by ETag: the upstream's headers decide"},
	{"*-SNAPSHOT*", 0, "snapshot builds are rebuilt under the same name: the upstream's headers decide"},
	{"/downloads/endpoint/artifacts/*/" SHA256_HEX, 1, "an Endpoint artifact is named by the SHA-256 of its content"},
	{AL_GLOB_AGENT_ARTIFACT, 1,
	    "an agent or beat artifact (and its .sha512, .asc) is named by version and platform, never republished"},
	{AL_GLOB_PACKAGE_ARCHIVE, 1,
	    "a package archive (and its .sig) is named by package version, published once"},
	/* airlock's own key for a GeoIP database (policy/geoip.c): the MD5 of its content is in it */
	{"/v1/db/" HEX16 HEX16 "/*.tgz", 1, "a GeoIP database under airlock's key /v1/db/<md5_hash>/<name> is named by its content"},
	{NULL, 0, NULL},
};

const char *al_uncacheable_reason(int status, const char *h, size_t len)
{
	struct al_hdr_iter it = {h, h + len};
	size_t vl, nl;
	const char *v, *n;

	switch (status) {
	case 200: case 203: case 204: case 300: case 301: case 308: case 404: case 410:
		break;
	default:
		return "status";
	}
	if (al_hdr_token(h, len, "Cache-Control", "no-store", NULL, NULL))
		return "no-store";
	if (al_hdr_token(h, len, "Cache-Control", "private", NULL, NULL))
		return "private";
	if (al_hdr_get(h, len, "Set-Cookie", &vl) != NULL)
		return "set-cookie";
	/*
	 * Requests go upstream without Accept-Encoding, so only that Vary is
	 * harmless.  Every Vary line counts: "Vary:" (empty) then "Vary: *" is a
	 * Vary of * (RFC 9110 §5.3 joins the lines into one list).
	 */
	while (al_hdr_next(&it, &n, &nl, &v, &vl)) {
		const char *p = v, *end = v + vl;
		if (!al_name_is(n, nl, "Vary"))
			continue;
		while (p < end) {
			const char *c = memchr(p, ',', end - p);
			const char *e = c ? c : end;
			while (p < e && (*p == ' ' || *p == '\t'))
				p++;
			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e > p && !((size_t)(e - p) == 15 && al_ascii_ieq(p, "Accept-Encoding", 15)))
				return "vary";
			p = c ? c + 1 : end;
		}
	}
	return NULL;
}

static int64_t number(const char *s, size_t n)
{
	int64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > INT64_MAX / 20)
			return INT64_MAX / 2;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int64_t al_freshness_lifetime(const struct al_config *c, const char *path, int status,
    const char *h, size_t len)
{
	const char *a, *v;
	size_t al, vl;
	time_t date = -1, t;

	/* Rules describe the objects; a 404 for one not yet published must not be frozen. */
	for (int i = 0; c != NULL && status == 200 && i < c->nrules; i++) {
		if (fnmatch(c->rules[i].match, path, FNM_EXTMATCH) == 0) {
			if (c->rules[i].immutable)
				return AL_LIFETIME_FOREVER;
			if (c->rules[i].ttl_ms >= 0)
				return c->rules[i].ttl_ms / 1000;
			break; /* the upstream's headers decide */
		}
	}
	if (al_hdr_token(h, len, "Cache-Control", "s-maxage", &a, &al) && number(a, al) >= 0)
		return number(a, al);
	if (al_hdr_token(h, len, "Cache-Control", "max-age", &a, &al) && number(a, al) >= 0)
		return number(a, al);
	if ((v = al_hdr_get(h, len, "Date", &vl)) != NULL)
		date = al_http_date(v, vl);
	if ((v = al_hdr_get(h, len, "Expires", &vl)) != NULL) {
		t = al_http_date(v, vl);
		if (t < 0 || date < 0)
			return 0; /* invalid Expires means already expired */
		return t > date ? (int64_t)(t - date) : 0;
	}
	if (date >= 0 && (v = al_hdr_get(h, len, "Last-Modified", &vl)) != NULL) {
		t = al_http_date(v, vl);
		if (t >= 0 && t < date) {
			int64_t lm = (int64_t)(date - t) / 10;
			return lm > 86400 ? 86400 : lm;
		}
	}
	return 0;
}

/* Times from a record are outside input: keep them in a range where sums cannot overflow. */
static int64_t clamp(int64_t v)
{
	const int64_t lim = (int64_t)1 << 40; /* about 35,000 years of seconds */

	return v < -lim ? -lim : v > lim ? lim : v;
}

int64_t al_current_age(const char *h, size_t len, int64_t request_time,
    int64_t response_time, int64_t age_value, time_t now)
{
	const char *v;
	size_t vl;
	int64_t apparent = 0, corrected, resident;

	request_time = clamp(request_time);
	response_time = clamp(response_time);
	age_value = clamp(age_value);
	if ((v = al_hdr_get(h, len, "Date", &vl)) != NULL) {
		int64_t d = clamp((int64_t)al_http_date(v, vl));
		if (d >= 0 && response_time > d)
			apparent = response_time - d;
	}
	corrected = age_value + (response_time - request_time);
	if (apparent > corrected)
		corrected = apparent;
	resident = clamp((int64_t)now) - response_time;
	return corrected + (resident > 0 ? resident : 0);
}

int al_must_revalidate(const char *h, size_t len)
{
	return al_hdr_token(h, len, "Cache-Control", "no-cache", NULL, NULL);
}

const char *al_needs_pgp(const struct al_config *c, const char *url)
{
	for (int i = 0; i < c->nverify_pgp; i++)
		if (fnmatch(c->verify_pgp[i], url, 0) == 0)
			return strstr(url, "/epr/") != NULL ? ".sig" : ".asc";
	return NULL;
}

int al_needs_sha512(const struct al_config *c, const char *url)
{
	for (int i = 0; i < c->nverify; i++)
		if (fnmatch(c->verify_sha512[i], url, 0) == 0)
			return 1;
	return 0;
}

int al_parse_sha512_file(const char *t, size_t len, unsigned char out[64])
{
	size_t i = 0;

	while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n'))
		i++;
	if (len - i < 128)
		return -EINVAL;
	for (int k = 0; k < 64; k++) {
		int hi = al_hex_digit(t[i + 2 * k]), lo = al_hex_digit(t[i + 2 * k + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[k] = (unsigned char)(hi << 4 | lo);
	}
	i += 128;
	/* the digest must end there: a space, a line end, or the end of the file */
	if (i < len && t[i] != ' ' && t[i] != '\t' && t[i] != '\r' && t[i] != '\n')
		return -EINVAL;
	return 0;
}

int al_304_selects(const char *etag, const char *last_modified, const char *h304, size_t len)
{
	size_t el = etag ? strlen(etag) : 0, ll = last_modified ? strlen(last_modified) : 0, vl;
	const char *v = al_hdr_get(h304, len, "ETag", &vl);

	if (v != NULL)
		return el > 0 && vl == el && memcmp(v, etag, el) == 0;
	if ((v = al_hdr_get(h304, len, "Last-Modified", &vl)) != NULL)
		return ll > 0 && vl == ll && memcmp(v, last_modified, ll) == 0;
	return 1;
}

int al_304_keeps_stored(const char *name, size_t nl)
{
	static const char *const kept[] = {"Content-Length", "Content-Encoding", "ETag", "Content-MD5", "Content-Range"};

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (nl == strlen(kept[i]) && strncasecmp(name, kept[i], nl) == 0)
			return 1;
	return 0;
}
