/*
 * Header blocks: the response header section as stored in the cache and
 * sent to clients, exactly as the upstream wrote it: "Name: value\r\n" lines,
 * name case and repeated lines preserved.  These helpers read such a block;
 * none of them allocates.
 */
#ifndef AIRLOCK_POLICY_HDR_H
#define AIRLOCK_POLICY_HDR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

struct al_hdr_iter {
	const char *p, *end;
};

/* Next field; name and value trimmed, pointing into the block.  0 at end. */
int al_hdr_next(struct al_hdr_iter *it, const char **name, size_t *nlen,
    const char **value, size_t *vlen);

/* First value of a field (case-insensitive name), or NULL. */
const char *al_hdr_get(const char *block, size_t len, const char *name, size_t *vlen);

/*
 * Find a comma-list token in all lines of a field, e.g. Cache-Control's
 * "max-age".  Returns 1 when present; its "=arg" (quotes removed) goes to
 * arg/alen when given.
 */
int al_hdr_token(const char *block, size_t len, const char *field, const char *token,
    const char **arg, size_t *alen);

/* Does a comma list (one field value) contain token, case-insensitive, with or without =arg? */
int al_list_has_token(const char *v, size_t vlen, const char *token);

/*
 * The upstream's Age (RFC 9111 §5.1) from one Age line's value: the leading
 * digits of its first list member, capped at 2^31 (§1.2.2); -1 when it does
 * not start with a digit.  "7200.0", "7200,0" and "7200;x=1" read as 7200:
 * read so, a malformed Age makes a response older, never younger, as Squid,
 * Traffic Server and Varnish read it (cache-tests.fyi age-parse-*).  The
 * caller reads the first Age line only (§5.1: the first member of a list).
 */
int64_t al_age_value(const char *v, size_t vlen);

/* RFC 9110 hop-by-hop fields, which a proxy must not forward or store. */
int al_hdr_is_hop(const char *name, size_t nlen);

/* HTTP-date (exactly IMF-fixdate, RFC 850 or asctime; names in any case) -> time_t, -1 if invalid. */
time_t al_http_date(const char *s, size_t len);
/* IMF-fixdate into buf (at least 30 bytes). */
void al_http_date_fmt(time_t t, char *buf);

/* Weak comparison of an If-None-Match list against one entity tag. */
int al_etag_match_weak(const char *inm, size_t inm_len, const char *etag, size_t elen);

/*
 * Case-insensitive equality of n bytes in ASCII, for field names and
 * tokens (RFC 9110 5.1: names are tokens; no locale applies).  On every
 * hit: glibc's locale-aware strncasecmp was 6% of a 100 KiB hit's CPU.
 */
static inline int al_ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x != y && ((x ^ y) != 0x20 || (unsigned char)((x | 0x20) - 'a') > 'z' - 'a'))
			return 0;
	}
	return 1;
}

/* Is the field name n (nl bytes) name, in any case? */
static inline int al_name_is(const char *n, size_t nl, const char *name)
{
	return strlen(name) == nl && al_ascii_ieq(n, name, nl);
}

/*
 * HTTP byte classes, each exact (no strchr: it also matches the terminator,
 * so a NUL would pass as a token character).  Shared by the request parser
 * (proxy/front/http1.c) and the upstream response parser (proxy/fetch/upstream.c).
 *
 * RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
 */
static inline int al_http_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return 1;
	default:
		return 0;
	}
}

/*
 * RFC 9110 5.5: field-value bytes are field-vchar (VCHAR / obs-text), SP
 * and HTAB.  NUL, CR, LF and every other control (and DEL) are refused:
 * a field value is stored and replayed to clients whose parsers may cut
 * at a NUL or read a CR as a line end.  Also the reason phrase's class
 * (RFC 9112 4: HTAB / SP / VCHAR / obs-text).
 */
static inline int al_http_field_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

#endif
