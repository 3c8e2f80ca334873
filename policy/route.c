#include "policy/route.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

const struct al_route *al_route_find(const struct al_config *c, const char *path, size_t len)
{
	const struct al_route *best = NULL;
	size_t bestlen = 0;

	for (int i = 0; i < c->nroutes; i++) {
		const struct al_route *r = &c->routes[i];
		size_t pl = strlen(r->prefix);
		if (pl <= len && memcmp(path, r->prefix, pl) == 0 && (best == NULL || pl > bestlen)) {
			best = r;
			bestlen = pl;
		}
	}
	return best;
}

/* Is [s, s+n) a dot segment once %2e is decoded: "." or ".."? */
static int is_dot_segment(const char *s, size_t n)
{
	int dots = 0;
	size_t i = 0;

	while (i < n) {
		if (s[i] == '.') {
			i++;
		} else if (i + 2 < n && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'e' || s[i + 2] == 'E')) {
			i += 3;
		} else {
			return 0;
		}
		dots++;
	}
	return dots == 1 || dots == 2;
}

int al_path_check(const char *t, size_t len)
{
	size_t plen = len, seg = 1;

	if (len == 0 || t[0] != '/')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)t[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '\\')
			return -EINVAL;
		if (ch == '?' || ch == '#') {
			plen = i;
			break;
		}
		/* an encoded slash or backslash could build a dot segment upstream */
		if (ch == '%' && i + 2 < len && t[i + 1] == '2' && (t[i + 2] == 'f' || t[i + 2] == 'F'))
			return -EINVAL;
		if (ch == '%' && i + 2 < len && t[i + 1] == '5' && (t[i + 2] == 'c' || t[i + 2] == 'C'))
			return -EINVAL;
	}
	for (size_t i = 1; i <= plen; i++) {
		if (i == plen || t[i] == '/') {
			if (is_dot_segment(t + seg, i - seg))
				return -EINVAL;
			seg = i + 1;
		}
	}
	return 0;
}

size_t al_route_skip(const struct al_route *r, const char *target, size_t tlen)
{
	size_t pl = strlen(r->prefix);

	if (!r->strip_prefix || pl > tlen || memcmp(target, r->prefix, pl) != 0)
		return 0;
	/* keep a '/' to start the upstream path: the prefix's own trailing one, or none to keep */
	if (pl > 0 && r->prefix[pl - 1] == '/')
		return pl - 1;
	return pl < tlen && (target[pl] == '/' || target[pl] == '?') ? pl : 0;
}

int al_route_path(const struct al_route *r, const char *target, size_t tlen, char *buf, size_t cap)
{
	size_t skip = al_route_skip(r, target, tlen), n = tlen - skip, o = 0;

	if (n + 2 > cap)
		return -ENAMETOOLONG;
	if (n == 0 || target[skip] != '/')
		buf[o++] = '/';
	memcpy(buf + o, target + skip, n);
	buf[o + n] = '\0';
	return (int)(o + n);
}

int al_route_url(const struct al_route *r, const char *target, size_t tlen, char *buf, size_t buflen)
{
	size_t ul = strlen(r->upstream);
	int n;

	if (ul + 1 > buflen)
		return -ENAMETOOLONG;
	memcpy(buf, r->upstream, ul);
	if ((n = al_route_path(r, target, tlen, buf + ul, buflen - ul)) < 0)
		return n;
	return (int)ul + n;
}

int al_agent_version_of(const char *url, size_t len, char *buf, size_t cap)
{
	static const char marker[] = "/elastic-agent-";
	const char *p = NULL, *v, *end = url + len;
	size_t n = 0;

	for (const char *q = url; q + sizeof(marker) - 1 <= end; q++)
		if (memcmp(q, marker, sizeof(marker) - 1) == 0)
			p = q;
	if (p == NULL)
		return -ENOENT;
	v = p + sizeof(marker) - 1;
	/* a FIPS build: elastic-agent's artifact.New (internal/pkg/agent/application/upgrade/
	 * artifact/artifact.go at 137f0ac9) joins name, "fips", version and platform with '-' */
	if ((size_t)(end - v) > 5 && memcmp(v, "fips-", 5) == 0)
		v += 5;
	/* digits.digits.digits, then an optional -SNAPSHOT / +build, up to the next '-' */
	while (v + n < end && (isdigit((unsigned char)v[n]) || v[n] == '.'))
		n++;
	if (n < 5 || v + n >= end || v[n] != '-' || n >= cap)
		return -ENOENT;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return 0;
}
