#include "proxy/front/http1.h"
#include "policy/hdr.h"

#include <string.h>
#include <strings.h>

/* Byte classes, each exact: tchar and field bytes are policy/hdr.h's, shared with fetch/'s response parser. */
static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_tchar(unsigned char c)
{
	return al_http_tchar(c);
}

static int is_field_byte(unsigned char c)
{
	return al_http_field_byte(c);
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * RFC 3986 characters of a request-target (RFC 9112 3.2): unreserved,
 * sub-delims, ":" "@" "/" "?", and "%" only as pct-encoded "%" HEXDIG
 * HEXDIG.  "[" and "]" are let through anywhere rather than only around an
 * IPv6 literal in an authority: no parser reads them as a delimiter.  "#"
 * (a fragment is never sent), quotes, "<>\\^`{|}", spaces, controls and
 * bytes over 0x7e are refused.  Returns 1 when target[0..n) is all valid.
 */
static int target_ok(const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (is_alnum(c))
			continue;
		switch (c) {
		case '-': case '.': case '_': case '~':                         /* unreserved */
		case '!': case '$': case '&': case '\'': case '(': case ')':     /* sub-delims */
		case '*': case '+': case ',': case ';': case '=':
		case ':': case '@': case '/': case '?': case '[': case ']':
			continue;
		case '%':
			if (i + 2 < n && is_hex((unsigned char)t[i + 1]) && is_hex((unsigned char)t[i + 2])) {
				i += 2;
				continue;
			}
			return 0;
		default:
			return 0;
		}
	}
	return 1;
}

/* Find the end of the line at p: the index of its CR, with LF after it. -1: incomplete; -2: bare CR/LF. */
static long line_end(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n')
			return -2;
		if (p[i] == '\r') {
			if (i + 1 == len)
				return -1;
			return p[i + 1] == '\n' ? (long)i : -2;
		}
	}
	return -1;
}

static int name_is(const struct http_field *f, const char *n)
{
	return al_name_is(f->name, f->name_len, n);
}

/*
 * RFC 9112 3.2: a Host value that is not uri-host [":" port] gets 400,
 * even though routing ignores Host: a front proxy that reads it
 * differently must not be handed a request we took for another.  Empty
 * is allowed (a target without an authority).
 */
static int host_value_ok(const char *v, size_t n)
{
	static const char extra[] = "-._~%!$&'()*+,;=:[]";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!(is_alnum(c) || (c != 0 && strchr(extra, c) != NULL)))
			return 0;
	}
	return 1;
}

static int parse_fields_semantics(struct http_req *r)
{
	int keepalive = 0, close = 0, te = 0;

	r->content_length = -1;
	for (int i = 0; i < r->nfields; i++) {
		struct http_field *f = &r->fields[i];
		if (name_is(f, "content-length")) {
			int64_t v = 0;
			if (r->content_length >= 0 || f->value_len == 0 || f->value_len > 18)
				return -400; /* duplicate or absurd: smuggling shapes */
			for (size_t j = 0; j < f->value_len; j++) {
				if (f->value[j] < '0' || f->value[j] > '9')
					return -400;
				v = v * 10 + (f->value[j] - '0');
			}
			r->content_length = v;
		} else if (name_is(f, "transfer-encoding")) {
			if (te++)
				return -400;
			if (!(f->value_len == 7 && strncasecmp(f->value, "chunked", 7) == 0))
				return -501;
			r->chunked = 1;
		} else if (name_is(f, "host")) {
			if (r->host != NULL || !host_value_ok(f->value, f->value_len))
				return -400;
			r->host = f->value;
			r->host_len = f->value_len;
		} else if (name_is(f, "connection")) {
			if (al_list_has_token(f->value, f->value_len, "close"))
				close = 1;
			if (al_list_has_token(f->value, f->value_len, "keep-alive"))
				keepalive = 1;
		}
	}
	if (r->chunked && r->content_length >= 0)
		return -400;
	if (r->minor >= 1 && r->host == NULL)
		return -400;
	r->close = close || (r->minor == 0 && !keepalive);
	return 0;
}

static enum http_method method_of(const char *m, size_t n)
{
	if (n == 3 && memcmp(m, "GET", 3) == 0)
		return HTTP_GET;
	if (n == 4 && memcmp(m, "HEAD", 4) == 0)
		return HTTP_HEAD;
	if (n == 7 && memcmp(m, "CONNECT", 7) == 0)
		return HTTP_CONNECT;
	return HTTP_OTHER;
}

/*
 * The request line p[0..le) (RFC 9112 §3): method, target and version, and
 * the target's form, which decides whether the request is the origin's
 * (origin-form), the forward proxy's (absolute-form, CONNECT's
 * authority-form) or refused.  Returns 0, -400, or -505 for a version other
 * than HTTP/1.0 and 1.1.
 */
static int parse_request_line(const char *p, long le, struct http_req *r)
{
	const char *sp1, *sp2;

	sp1 = memchr(p, ' ', le);
	if (sp1 == NULL || sp1 == p)
		return -400;
	for (const char *q = p; q < sp1; q++)
		if (!is_tchar((unsigned char)*q))
			return -400;
	sp2 = memchr(sp1 + 1, ' ', le - (sp1 + 1 - p));
	if (sp2 == NULL || sp2 == sp1 + 1)
		return -400;
	if (p + le - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return (p + le - (sp2 + 1) == 8 && memcmp(sp2 + 1, "HTTP/", 5) == 0) ? -505 : -400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return -505;
	r->minor = sp2[8] - '0';
	r->method_s = p;
	r->method_len = sp1 - p;
	r->method = method_of(p, r->method_len);
	r->target = sp1 + 1;
	r->target_len = sp2 - (sp1 + 1);
	if (!target_ok(r->target, r->target_len))
		return -400;
	if (r->target[0] == '/')
		r->form = FORM_ORIGIN;
	else if (r->method == HTTP_CONNECT)
		r->form = FORM_AUTHORITY;
	else if (r->target_len == 1 && r->target[0] == '*')
		r->form = FORM_ASTERISK;
	else if ((r->target_len > 7 && strncasecmp(r->target, "http://", 7) == 0) ||
	    (r->target_len > 8 && strncasecmp(r->target, "https://", 8) == 0))
		r->form = FORM_ABSOLUTE;
	else
		return -400;
	if (r->method == HTTP_CONNECT && r->form != FORM_AUTHORITY)
		return -400;
	return 0;
}

/*
 * One field line p[0..le) (RFC 9112 §5): whether it is well formed (no
 * obs-fold, a token name with nothing before the colon, field bytes only)
 * and whether there is room for it (-431 past lim->max_fields).  The value
 * is kept without its surrounding whitespace.  Returns 0, -400 or -431.
 */
static int parse_field_line(const char *p, long le, const struct http_limits *lim, struct http_req *r)
{
	const char *colon, *v, *ve;
	struct http_field *f;

	if (p[0] == ' ' || p[0] == '\t')
		return -400; /* obs-fold */
	colon = memchr(p, ':', le);
	if (colon == NULL || colon == p)
		return -400;
	for (const char *q = p; q < colon; q++)
		if (!is_tchar((unsigned char)*q))
			return -400; /* includes whitespace before the colon */
	v = colon + 1;
	ve = p + le;
	for (const char *q = v; q < ve; q++)
		if (!is_field_byte((unsigned char)*q))
			return -400;
	while (v < ve && (*v == ' ' || *v == '\t'))
		v++;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	if (r->nfields >= lim->max_fields || r->nfields >= HTTP1_MAX_HEADERS)
		return -431;
	f = &r->fields[r->nfields++];
	f->name = p;
	f->name_len = colon - p;
	f->value = v;
	f->value_len = ve - v;
	return 0;
}

/*
 * The head as lines: where each line ends, and whether the bytes so far are
 * enough (0: read more; -414 or -431 when the head would pass
 * lim->max_head first).  Each line goes to its parser above; the empty line
 * ends the head and the fields' meaning is checked as a whole.
 */
int http1_parse_request(const char *buf, size_t len, const struct http_limits *lim, struct http_req *r)
{
	const char *p = buf;
	size_t avail = len > lim->max_head ? lim->max_head : len;
	long le;
	int rc;

	memset(r, 0, offsetof(struct http_req, fields)); /* 6 KiB of fields: set as they are read */
	/* Tolerate (RFC 9112 §2.2) empty lines before the request line. */
	while ((size_t)(p - buf) + 2 <= avail && p[0] == '\r' && p[1] == '\n')
		p += 2;
	le = line_end(p, avail - (size_t)(p - buf));
	if (le == -2)
		return -400;
	if (le == -1)
		return len >= lim->max_head ? -414 : 0;
	if ((rc = parse_request_line(p, le, r)) != 0)
		return rc;
	p += le + 2;
	for (;;) {
		le = line_end(p, avail - (size_t)(p - buf));
		if (le == -2)
			return -400;
		if (le == -1)
			return len >= lim->max_head ? -431 : 0;
		if (le == 0) {
			p += 2;
			if ((rc = parse_fields_semantics(r)) != 0)
				return rc;
			return (int)(p - buf);
		}
		if ((rc = parse_field_line(p, le, lim, r)) != 0)
			return rc;
		p += le + 2;
	}
}

void http1_rebase(struct http_req *r, const char *old, const char *new)
{
#define REBASE(ptr) ((ptr) = (ptr) != NULL ? new + ((ptr) - old) : NULL)
	REBASE(r->method_s);
	REBASE(r->target);
	REBASE(r->host);
	for (int i = 0; i < r->nfields; i++) {
		REBASE(r->fields[i].name);
		REBASE(r->fields[i].value);
	}
#undef REBASE
}

const char *http1_field(const struct http_req *r, const char *name, size_t *vlen)
{
	size_t want = strlen(name);

	for (int i = 0; i < r->nfields; i++) {
		if (r->fields[i].name_len == want && al_ascii_ieq(r->fields[i].name, name, want)) {
			*vlen = r->fields[i].value_len;
			return r->fields[i].value;
		}
	}
	return NULL;
}

/*
 * RFC 9110 section 15 reason phrases, for every status airlock makes or
 * relays.  Clients show the phrase: Go's net/http reports a refused proxy
 * login as the bare phrase, so "Status" would read as the whole error.
 */
const char *http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 511: return "Network Authentication Required";
	default:
		/* RFC 9110 15: an unknown code is read as the x00 of its class */
		switch (status / 100) {
		case 1: return "Informational";
		case 2: return "Success";
		case 3: return "Redirection";
		case 4: return "Client Error";
		default: return "Server Error";
		}
	}
}
