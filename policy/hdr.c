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

/*
 * The next field named name (want bytes, no colon in it), its value trimmed.
 * Lines of other names are skipped at the colon test, before any trimming:
 * hits look up several fields in the stored block.
 */
static const char *next_named(struct al_hdr_iter *it, const char *name, size_t want, size_t *vlen)
{
	while (it->p < it->end) {
		const char *line = it->p, *eol = memchr(line, '\n', (size_t)(it->end - line));
		const char *le = eol ? eol : it->end, *v, *ve;

		it->p = eol ? eol + 1 : it->end;
		if ((size_t)(le - line) <= want || line[want] != ':' || !al_ascii_ieq(line, name, want))
			continue;
		v = trim(line + want + 1, le, &ve);
		*vlen = (size_t)(ve - v);
		return v;
	}
	return NULL;
}

const char *al_hdr_get(const char *block, size_t len, const char *name, size_t *vlen)
{
	struct al_hdr_iter it = {block, block + len};

	return next_named(&it, name, strlen(name), vlen);
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
		if ((size_t)(te - ts) >= tl && al_ascii_ieq(ts, token, tl) &&
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
	const char *v;
	size_t vl, want = strlen(field);

	while ((v = next_named(&it, field, want, &vl)) != NULL)
		if (list_token(v, v + vl, token, arg, alen))
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
		if (al_name_is(n, nl, hop[i]))
			return 1;
	return 0;
}

static int two(const char *p)
{
	return (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9') ? (p[0] - '0') * 10 + (p[1] - '0') : -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the days-from-civil formula). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT": what
 * servers send, parsed without strptime, which cost a fifth of a hit's
 * user-space instructions (its name matching).  -2: not this form.
 */
static time_t imf_fixdate(const char *s, size_t len)
{
	static const char days[] = "MonTueWedThuFriSatSun", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int d, mon = -1, y1, y2, h, mi, se, day = -1;

	if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
	    s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
		return -2;
	for (int i = 0; i < 7 && day < 0; i++)
		if (memcmp(s, days + 3 * i, 3) == 0)
			day = i;
	for (int i = 0; i < 12 && mon < 0; i++)
		if (memcmp(s + 8, months + 3 * i, 3) == 0)
			mon = i + 1;
	d = two(s + 5), y1 = two(s + 12), y2 = two(s + 14), h = two(s + 17), mi = two(s + 20), se = two(s + 23);
	if (day < 0 || mon < 0 || d < 1 || d > 31 || y1 < 0 || y2 < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60)
		return -2;
	return (time_t)(days_from_civil(y1 * 100 + y2, mon, d) * 86400 + h * 3600 + mi * 60 + se);
}

time_t al_http_date(const char *s, size_t len)
{
	time_t fast = imf_fixdate(s, len);
	static const char *const fmts[] = {"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y", NULL};
	char buf[64];

	if (fast != -2)
		return fast;
	/* the obsolete forms recipients must still accept (RFC 9110 5.6.7), and case variations */
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
