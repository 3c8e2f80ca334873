#include "policy/hdr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *trim(const char *s, const char *e, const char **oe)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*oe = e;
	return s;
}

int al_hdr_next(struct al_hdr_iter *it, const char **name, size_t *nlen,
    const char **value, size_t *vlen)
{
	while (it->p < it->end) {
		const char *eol = memchr(it->p, '\n', it->end - it->p);
		const char *line = it->p, *le, *colon, *ve;

		le = eol ? eol : it->end;
		it->p = eol ? eol + 1 : it->end;
		colon = memchr(line, ':', le - line);
		if (colon == NULL || colon == line)
			continue;
		*name = line;
		*nlen = colon - line;
		*value = trim(colon + 1, le, &ve);
		*vlen = ve - *value;
		return 1;
	}
	return 0;
}

static int name_eq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

const char *al_hdr_get(const char *block, size_t len, const char *name, size_t *vlen)
{
	struct al_hdr_iter it = {block, block + len};
	const char *n, *v;
	size_t nl, vl;

	while (al_hdr_next(&it, &n, &nl, &v, &vl)) {
		if (name_eq(n, nl, name)) {
			*vlen = vl;
			return v;
		}
	}
	return NULL;
}

/* Find token in one comma list [p, end); its "=arg" (quotes removed) into arg/alen. */
static int list_token(const char *p, const char *end, const char *token, const char **arg, size_t *alen)
{
	size_t tl = strlen(token);

	while (p < end) {
		const char *comma = p, *ts, *te;
		int inq = 0;
		while (comma < end && (inq || *comma != ',')) {
			if (*comma == '"')
				inq = !inq;
			comma++;
		}
		ts = trim(p, comma, &te);
		if ((size_t)(te - ts) >= tl && strncasecmp(ts, token, tl) == 0 &&
		    (ts + tl == te || ts[tl] == '=' || ts[tl] == ' ')) {
			if (arg != NULL) {
				const char *a = ts + tl, *ae = te;
				while (a < ae && (*a == ' ' || *a == '='))
					a++;
				if (a < ae && *a == '"') {
					a++;
					if (ae > a && ae[-1] == '"')
						ae--;
				}
				*arg = a;
				*alen = (size_t)(ae - a);
			}
			return 1;
		}
		p = comma + 1;
	}
	return 0;
}

int al_hdr_token(const char *block, size_t len, const char *field, const char *token,
    const char **arg, size_t *alen)
{
	struct al_hdr_iter it = {block, block + len};
	const char *n, *v;
	size_t nl, vl;

	while (al_hdr_next(&it, &n, &nl, &v, &vl))
		if (name_eq(n, nl, field) && list_token(v, v + vl, token, arg, alen))
			return 1;
	return 0;
}

int al_list_has_token(const char *v, size_t vlen, const char *token)
{
	return list_token(v, v + vlen, token, NULL, NULL);
}

int al_hdr_is_hop(const char *n, size_t nl)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
		"proxy-authenticate", "proxy-authorization", "te", "trailer",
		"transfer-encoding", "upgrade", NULL};

	for (int i = 0; hop[i] != NULL; i++)
		if (name_eq(n, nl, hop[i]))
			return 1;
	return 0;
}

time_t al_http_date(const char *s, size_t len)
{
	static const char *const fmts[] = {"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y", NULL};
	char buf[64];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (int i = 0; fmts[i] != NULL; i++) {
		struct tm tm;
		const char *end;
		memset(&tm, 0, sizeof(tm));
		end = strptime(buf, fmts[i], &tm);
		if (end != NULL && *end == '\0')
			return timegm(&tm);
	}
	return -1;
}

void al_http_date_fmt(time_t t, char *buf)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Strip W/ so that weak comparison compares the opaque tags. */
static void opaque(const char **s, size_t *n)
{
	if (*n >= 2 && (*s)[0] == 'W' && (*s)[1] == '/') {
		*s += 2;
		*n -= 2;
	}
}

int al_etag_match_weak(const char *inm, size_t inm_len, const char *etag, size_t elen)
{
	const char *p = inm, *end = inm + inm_len;

	opaque(&etag, &elen);
	while (p < end) {
		const char *comma = p, *ts, *te;
		int inq = 0;
		size_t tl;
		while (comma < end && (inq || *comma != ',')) {
			if (*comma == '"')
				inq = !inq;
			comma++;
		}
		ts = trim(p, comma, &te);
		tl = te - ts;
		if (tl == 1 && ts[0] == '*')
			return 1;
		opaque(&ts, &tl);
		if (tl == elen && memcmp(ts, etag, tl) == 0)
			return 1;
		p = comma + 1;
	}
	return 0;
}
