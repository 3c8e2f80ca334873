#include "policy/hdr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

int64_t al_age_value(const char *v, size_t vl)
{
	const int64_t cap = (int64_t)1 << 31;
	int64_t a = 0;
	size_t i = 0;

	while (i < vl && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == vl || v[i] < '0' || v[i] > '9')
		return -1;
	for (; i < vl && v[i] >= '0' && v[i] <= '9'; i++)
		if ((a = a * 10 + (v[i] - '0')) >= cap)
			return cap;
	return a;
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
 * HTTP-date (RFC 9110 5.6.7), exactly one of its three forms, parsed by hand:
 *
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"
 *   asctime-date "Sun Nov  6 08:49:37 1994"
 *
 * Anything else is invalid, and an invalid Expires means already expired
 * (RFC 9111 5.3): strptime, used before, read "Thu, 18  Aug  2050 ..."
 * (several spaces) and "... 2:01:18 GMT" (a one-digit hour) as dates in
 * 2050, so such an Expires became a lifetime of decades.  Day and month
 * names and "GMT" are taken in any case (the community's cache tests ask
 * for that, as a "should"); digits, spaces and punctuation are exact.
 */
static int name_at(const char *s, const char *names, int count, int len)
{
	for (int i = 0; i < count; i++)
		if (al_ascii_ieq(s, names + len * i, (size_t)len))
			return i;
	return -1;
}

static const char wkday[] = "MonTueWedThuFriSatSun", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* "HH:MM:SS" at p (8 bytes): seconds of the day, or -1. */
static int time_of_day(const char *p)
{
	int h = two(p), mi = two(p + 3), se = two(p + 6);

	if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
		return -1;
	return h * 3600 + mi * 60 + se;
}

static time_t civil(int64_t y, int mon, int d, int tod)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (mon < 0 || d < 1 || d > mdays[mon] || tod < 0 ||
	    (mon == 1 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return -1;
	return (time_t)(days_from_civil(y, mon + 1, d) * 86400 + tod);
}

static time_t imf_fixdate(const char *s, size_t len)
{
	int y1, y2;

	if (len != 29 || name_at(s, wkday, 7, 3) < 0 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
	    s[11] != ' ' || s[16] != ' ' || s[25] != ' ' || !al_ascii_ieq(s + 26, "GMT", 3))
		return -1;
	y1 = two(s + 12), y2 = two(s + 14);
	if (two(s + 5) < 0 || y1 < 0 || y2 < 0)
		return -1;
	return civil(y1 * 100 + y2, name_at(s + 8, months, 12, 3), two(s + 5), time_of_day(s + 17));
}

static time_t rfc850_date(const char *s, size_t len, time_t now)
{
	static const char *const days[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
	size_t dl = 0;
	int yy;
	time_t t;

	for (int i = 0; i < 7 && dl == 0; i++) {
		size_t n = strlen(days[i]);
		if (len > n && al_ascii_ieq(s, days[i], n) && s[n] == ',')
			dl = n;
	}
	/* ", 06-Nov-94 08:49:37 GMT" */
	if (dl == 0 || len != dl + 24)
		return -1;
	s += dl;
	if (s[1] != ' ' || s[4] != '-' || s[8] != '-' || s[11] != ' ' || s[20] != ' ' ||
	    !al_ascii_ieq(s + 21, "GMT", 3) || two(s + 2) < 0 || (yy = two(s + 9)) < 0)
		return -1;
	/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead is the past century's */
	{
		struct tm tm;
		int64_t cy, y;
		gmtime_r(&now, &tm);
		cy = (int64_t)tm.tm_year + 1900;
		y = cy - cy % 100 + yy;
		if (y > cy + 50)
			y -= 100;
		t = civil(y, name_at(s + 5, months, 12, 3), two(s + 2), time_of_day(s + 12));
	}
	return t;
}

static time_t asctime_date(const char *s, size_t len)
{
	int d, y1, y2;

	/* "Sun Nov  6 08:49:37 1994": the day is SP DIGIT or 2DIGIT */
	if (len != 24 || name_at(s, wkday, 7, 3) < 0 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' ||
	    s[19] != ' ')
		return -1;
	if (s[8] == ' ')
		d = s[9] >= '0' && s[9] <= '9' ? s[9] - '0' : -1;
	else
		d = two(s + 8);
	y1 = two(s + 20), y2 = two(s + 22);
	if (d < 0 || y1 < 0 || y2 < 0)
		return -1;
	return civil(y1 * 100 + y2, name_at(s + 4, months, 12, 3), d, time_of_day(s + 11));
}

time_t al_http_date(const char *s, size_t len)
{
	time_t t;

	if ((t = imf_fixdate(s, len)) >= 0 || len == 0)
		return len == 0 ? -1 : t;
	if ((t = asctime_date(s, len)) >= 0)
		return t;
	return rfc850_date(s, len, time(NULL));
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
