/*
 * Which images a package README shows, read as Fleet's Integrations UI reads
 * them (elastic/kibana 027ff216 x-pack/platform/plugins/shared/fleet/public/
 * applications/integrations/hooks/use_links.tsx toRelativeImage and
 * removeRelativePath; sections/epm/screens/detail/overview/readme.tsx
 * handleImageUri, which ReactMarkdown calls for every image): a destination
 * that does not start with http:// or https:// is taken as relative to the
 * package and fetched from the registry as
 * /package/<name>/<version><pathname of the destination>.
 *
 * The markdown reading is the subset of CommonMark that decides which
 * images exist: inline and reference images, with code spans and fenced
 * blocks skipped.  What it misses costs a 504 offline for one image; what it
 * invents costs one 404 at mirror time, never a wrong answer.
 */
#include "policy/pkgfiles.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* WHATWG's path percent-encode set, plus bytes >= 0x7f. */
static int must_escape(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || c == '"' || c == '#' || c == '<' || c == '>' || c == '?' ||
	    c == '`' || c == '{' || c == '}';
}

int al_url_pathname(const char *uri, size_t len, char *out, size_t cap)
{
	char seg[1024];
	size_t o = 0, i = 0, n = 0;
	char buf[2048];

	/* the URL parser trims leading/trailing C0 and space, and drops tabs and newlines */
	while (len > 0 && (unsigned char)uri[0] <= 0x20)
		uri++, len--;
	while (len > 0 && (unsigned char)uri[len - 1] <= 0x20)
		len--;
	for (size_t k = 0; k < len && n + 1 < sizeof(buf); k++) {
		char c = uri[k];
		if (c == '\t' || c == '\n' || c == '\r')
			continue;
		buf[n++] = c == '\\' ? '/' : c; /* special schemes read '\' as '/' */
	}
	if (n + 1 >= sizeof(buf))
		return -ENAMETOOLONG;
	buf[n] = '\0';
	n = strcspn(buf, "?#");
	buf[n] = '\0';
	/* a scheme: [A-Za-z][A-Za-z0-9+.-]*: */
	if (isalpha((unsigned char)buf[0])) {
		size_t k = 1;
		while (isalnum((unsigned char)buf[k]) || buf[k] == '+' || buf[k] == '-' || buf[k] == '.')
			k++;
		if (buf[k] == ':')
			return -EINVAL;
	}
	if (buf[0] == '/' && buf[1] == '/') {
		/* //host/path: another host, whose pathname Kibana still puts under the package */
		const char *p = strchr(buf + 2, '/');
		i = p ? (size_t)(p - buf) + 1 : n + 1;
	}
	if (cap < 2)
		return -ENAMETOOLONG;
	out[o++] = '/';
	out[o] = '\0';
	/* resolve segment by segment against "/" (RFC 3986 remove_dot_segments) */
	while (i <= n) {
		size_t s, sl, end = i;
		while (end < n && buf[end] != '/')
			end++;
		s = i;
		sl = end - s;
		if (sl >= sizeof(seg))
			return -ENAMETOOLONG;
		memcpy(seg, buf + s, sl);
		seg[sl] = '\0';
		i = end + 1;
		if (s == 0 && sl == 0 && n > 0 && buf[0] == '/')
			continue; /* the leading slash of an absolute path */
		if (strcmp(seg, ".") == 0 || strcasecmp(seg, "%2e") == 0) {
			if (end >= n && o > 0 && out[o - 1] != '/')
				out[o++] = '/';
			continue;
		}
		if (strcmp(seg, "..") == 0 || strcasecmp(seg, ".%2e") == 0 || strcasecmp(seg, "%2e.") == 0 ||
		    strcasecmp(seg, "%2e%2e") == 0) {
			/* drop the last segment: out is "/a/b/" or "/a/b" */
			if (o > 1 && out[o - 1] == '/')
				o--;
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o == 0)
				o = 1;
			out[o] = '\0';
			continue;
		}
		if (o > 0 && out[o - 1] != '/') {
			if (o + 1 >= cap)
				return -ENAMETOOLONG;
			out[o++] = '/';
		}
		for (size_t k = 0; k < sl; k++) {
			unsigned char c = (unsigned char)seg[k];
			if (must_escape(c)) {
				if (o + 4 >= cap)
					return -ENAMETOOLONG;
				o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
			} else {
				if (o + 2 >= cap)
					return -ENAMETOOLONG;
				out[o++] = (char)c;
			}
		}
		if (end < n) {
			if (o + 2 >= cap)
				return -ENAMETOOLONG;
			out[o++] = '/';
		}
		out[o] = '\0';
		if (end >= n)
			break;
	}
	out[o] = '\0';
	return 0;
}

/* Is this destination loaded by the browser from elsewhere (readme.tsx's isRelative test)? */
static int absolute_url(const char *d, size_t n)
{
	return (n >= 7 && memcmp(d, "http://", 7) == 0) || (n >= 8 && memcmp(d, "https://", 8) == 0);
}

static int emit(const char *d, size_t n, void (*cb)(const char *, void *), void *arg)
{
	char path[2048];

	if (n == 0 || absolute_url(d, n) || al_url_pathname(d, n, path, sizeof(path)) != 0 || strcmp(path, "/") == 0)
		return 0;
	cb(path, arg);
	return 1;
}

/* Bytes at p start a fence line (``` or ~~~ after up to 3 spaces)? */
static int fence_at(const char *p, const char *end, char *ch)
{
	int sp = 0;

	while (p < end && *p == ' ' && sp < 4)
		p++, sp++;
	if (sp > 3 || end - p < 3 || (p[0] != '`' && p[0] != '~') || p[1] != p[0] || p[2] != p[0])
		return 0;
	*ch = p[0];
	return 1;
}

/* Link label comparison: case-insensitive, runs of whitespace as one space, trimmed. */
static int label_eq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0;

	while (1) {
		while (i < an && isspace((unsigned char)a[i]) && (i == 0 || i + 1 == an || isspace((unsigned char)a[i + 1])))
			i++;
		while (j < bn && isspace((unsigned char)b[j]) && (j == 0 || j + 1 == bn || isspace((unsigned char)b[j + 1])))
			j++;
		if (i >= an || j >= bn)
			return i >= an && j >= bn;
		if (isspace((unsigned char)a[i]) && isspace((unsigned char)b[j])) {
			i++, j++;
			continue;
		}
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[j]))
			return 0;
		i++, j++;
	}
}

/* The destination of definition [label]: dest, searched line by line; 0 and *d, *dn if found. */
static int definition(const char *md, size_t len, const char *label, size_t ll, const char **d, size_t *dn)
{
	const char *p = md, *end = md + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *q = p, *l;
		int sp = 0;
		if (eol == NULL)
			eol = end;
		while (q < eol && *q == ' ' && sp < 4)
			q++, sp++;
		if (sp <= 3 && q < eol && *q == '[') {
			l = ++q;
			while (q < eol && *q != ']')
				q++;
			if (q + 1 < eol && q[1] == ':' && label_eq(l, (size_t)(q - l), label, ll)) {
				q += 2;
				while (q < eol && (*q == ' ' || *q == '\t'))
					q++;
				if (q < eol && *q == '<') {
					const char *s = ++q;
					while (q < eol && *q != '>')
						q++;
					*d = s, *dn = (size_t)(q - s);
				} else {
					const char *s = q;
					while (q < eol && !isspace((unsigned char)*q))
						q++;
					*d = s, *dn = (size_t)(q - s);
				}
				return 0;
			}
		}
		p = eol + 1;
	}
	return -ENOENT;
}

int al_readme_images(const char *md, size_t len, void (*cb)(const char *path, void *arg), void *arg)
{
	const char *p = md, *end = md + len;
	int calls = 0, bol = 1;
	char fence = 0;

	while (p < end) {
		char ch;
		if (bol && fence_at(p, end, &ch)) {
			/* a fence opens or closes a code block; the rest of its line is its info string */
			fence = fence == 0 ? ch : (fence == ch ? 0 : fence);
			p = memchr(p, '\n', (size_t)(end - p));
			p = p ? p + 1 : end;
			continue;
		}
		bol = 0;
		if (fence) {
			const char *eol = memchr(p, '\n', (size_t)(end - p));
			p = eol ? eol + 1 : end;
			bol = 1;
			continue;
		}
		if (*p == '\n') {
			p++;
			bol = 1;
			continue;
		}
		if (*p == '\\' && p + 1 < end) {
			p += 2;
			continue;
		}
		if (*p == '`') {
			/* a code span: as many backticks close it as opened it */
			size_t ticks = 0;
			const char *q;
			while (p + ticks < end && p[ticks] == '`')
				ticks++;
			for (q = p + ticks; q < end; q++) {
				size_t t = 0;
				while (q + t < end && q[t] == '`')
					t++;
				if (t == ticks)
					break;
				q += t ? t - 1 : 0;
			}
			p = q < end ? q + ticks : p + ticks;
			continue;
		}
		if (*p == '!' && p + 1 < end && p[1] == '[') {
			const char *alt = p + 2, *q = alt;
			int depth = 1;
			while (q < end && depth > 0) {
				if (*q == '\\' && q + 1 < end)
					q++;
				else if (*q == '[')
					depth++;
				else if (*q == ']')
					depth--;
				if (depth > 0)
					q++;
			}
			if (q >= end) {
				p += 2;
				continue;
			}
			{
				size_t altn = (size_t)(q - alt);
				const char *after = q + 1;
				if (after < end && *after == '(') {
					const char *d = after + 1, *e;
					while (d < end && (*d == ' ' || *d == '\t' || *d == '\n'))
						d++;
					if (d < end && *d == '<') {
						e = ++d;
						while (e < end && *e != '>' && *e != '\n')
							e++;
						calls += emit(d, (size_t)(e - d), cb, arg);
					} else {
						int par = 0;
						e = d;
						while (e < end && !isspace((unsigned char)*e)) {
							if (*e == '\\' && e + 1 < end) {
								e += 2;
								continue;
							}
							if (*e == '(')
								par++;
							else if (*e == ')' && par-- == 0)
								break;
							e++;
						}
						calls += emit(d, (size_t)(e - d), cb, arg);
					}
					p = e < end ? e + 1 : end;
					continue;
				} else {
					/* ![alt][label], ![label][] or ![label] */
					const char *label = alt, *dd;
					size_t ll = altn, dn;
					p = after;
					if (after < end && *after == '[') {
						const char *r = after + 1, *s = r;
						while (r < end && *r != ']' && *r != '\n')
							r++;
						if (r < end && *r == ']') {
							if (r > s)
								label = s, ll = (size_t)(r - s);
							p = r + 1;
						}
					}
					if (definition(md, len, label, ll, &dd, &dn) == 0)
						calls += emit(dd, dn, cb, arg);
					continue;
				}
			}
		}
		p++;
	}
	return calls;
}
