#include "policy/artifact.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

/* Words that start a platform in an artifact name (packageArchMap's OS names and the package arches). */
static const char *const platform_words[] = {"linux", "windows", "darwin", "amd64", "arm64", "x86_64", "aarch64",
	"i386", "i686", "x86", "noarch", NULL};

static int is_platform(const char *p)
{
	for (int i = 0; platform_words[i] != NULL; i++) {
		size_t n = strlen(platform_words[i]);
		if (strncmp(p, platform_words[i], n) == 0 && (p[n] == '-' || p[n] == '.' || p[n] == '\0'))
			return 1;
	}
	return 0;
}

static void copy(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* "x.y.z" digits at p: its length, else 0. */
static size_t xyz(const char *p)
{
	size_t n = 0;

	for (int part = 0; part < 3; part++) {
		size_t d = 0;
		while (isdigit((unsigned char)p[n + d]))
			d++;
		if (d == 0)
			return 0;
		n += d;
		if (part < 2) {
			if (p[n] != '.')
				return 0;
			n++;
		}
	}
	return n;
}

/*
 * <name>[-fips]-<version>-<platform>.<ext> (Artifact.FileName): the name ends
 * where "-x.y.z" starts; the version runs on (a prerelease such as -SNAPSHOT)
 * until a '-' that starts a platform word; the platform runs to the
 * extension.
 */
static void agent_name(const char *base, size_t len, struct al_artifact *a)
{
	static const char *const exts[] = {".tar.gz", ".zip", ".deb", ".rpm", ".msi", NULL};
	const char *end = base + len, *v = NULL, *pl = NULL;

	for (int i = 0; exts[i] != NULL; i++) {
		size_t n = strlen(exts[i]);
		if (len > n && memcmp(end - n, exts[i], n) == 0) {
			end -= n;
			break;
		}
	}
	for (const char *p = base; p < end; p++)
		if (*p == '-' && xyz(p + 1) > 0) {
			v = p + 1;
			break;
		}
	if (v == NULL)
		return;
	for (const char *p = v + xyz(v); p < end; p++)
		if (*p == '-' && is_platform(p + 1)) {
			pl = p + 1;
			break;
		}
	copy(a->product, sizeof(a->product), base, (size_t)(v - 1 - base));
	if (pl == NULL) {
		copy(a->version, sizeof(a->version), v, (size_t)(end - v));
		return;
	}
	copy(a->version, sizeof(a->version), v, (size_t)(pl - 1 - v));
	copy(a->platform, sizeof(a->platform), pl, (size_t)(end - pl));
}

static int ends(const char *s, size_t n, const char *suf)
{
	size_t m = strlen(suf);
	return n >= m && memcmp(s + n - m, suf, m) == 0;
}

void al_classify_url(const char *url, struct al_artifact *a)
{
	char path[4096];
	const char *p = strstr(url, "://"), *q, *base;
	size_t n;

	memset(a, 0, sizeof(*a));
	a->kind = "other";
	p = p ? strchr(p + 3, '/') : url;
	if (p == NULL)
		return;
	n = strcspn(p, "?#");
	copy(path, sizeof(path), p, n);
	n = strlen(path);
	base = strrchr(path, '/') + 1;
	if (strcmp(path, "/search") == 0 || strcmp(path, "/categories") == 0) {
		a->kind = "registry-query";
		return;
	}
	if (strcmp(path, "/GPG-KEY-elastic-agent") == 0) {
		a->kind = "gpg-key";
		return;
	}
	if (strncmp(path, "/downloads/endpoint/manifest/artifacts-", 39) == 0 && ends(path, n, ".zip")) {
		a->kind = "endpoint-manifest";
		copy(a->product, sizeof(a->product), "endpoint", 8);
		copy(a->version, sizeof(a->version), path + 39, n - 39 - 4);
		return;
	}
	if (strncmp(path, "/downloads/endpoint/artifacts/", 30) == 0) {
		/* /downloads/endpoint/artifacts/<identifier>/<sha256>: the identifier names the artifact */
		a->kind = "endpoint-artifact";
		q = path + 30;
		copy(a->product, sizeof(a->product), q, strcspn(q, "/"));
		return;
	}
	if (fnmatch(AL_GLOB_AGENT_ARTIFACT, path, FNM_EXTMATCH) == 0) {
		size_t bl = strlen(base);
		a->kind = ends(base, bl, ".sha512") ? "agent-artifact-sha512"
		    : ends(base, bl, ".asc") ? "agent-artifact-signature" : "agent-artifact";
		if (ends(base, bl, ".sha512"))
			bl -= 7;
		else if (ends(base, bl, ".asc"))
			bl -= 4;
		agent_name(base, bl, a);
		return;
	}
	if (fnmatch(AL_GLOB_PACKAGE_ARCHIVE, path, FNM_EXTMATCH) == 0) {
		size_t bl = strlen(base);
		const char *dir = path + 5;
		size_t dl = strcspn(dir, "/");
		a->kind = ends(base, bl, ".sig") ? "package-signature" : "package-archive";
		if (ends(base, bl, ".sig"))
			bl -= 4;
		bl -= ends(base, bl, ".tar.gz") ? 7 : 4;
		copy(a->product, sizeof(a->product), dir, dl);
		if (bl > dl + 1 && strncmp(base, dir, dl) == 0 && base[dl] == '-')
			copy(a->version, sizeof(a->version), base + dl + 1, bl - dl - 1);
		return;
	}
	if (strncmp(path, "/package/", 9) == 0) {
		/* /package/<name>/<version>/ is the document; anything deeper a file of it */
		const char *name = path + 9, *ver, *rest;
		size_t nl = strcspn(name, "/"), vl;
		if (name[nl] != '/')
			return;
		ver = name + nl + 1;
		vl = strcspn(ver, "/");
		rest = ver + vl;
		copy(a->product, sizeof(a->product), name, nl);
		copy(a->version, sizeof(a->version), ver, vl);
		a->kind = (*rest == '\0' || strcmp(rest, "/") == 0) ? "package-document" : "package-file";
		return;
	}
}
