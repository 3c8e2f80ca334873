/*
 * HTTP/1.1 request heads (RFC 9112), parsed strictly: anything that could
 * let two parsers disagree on where a request ends is refused.  Pure
 * function over a byte buffer, no allocation: the fuzz target calls it as
 * the server does.
 */
#ifndef AIRLOCK_PROXY_HTTP1_H
#define AIRLOCK_PROXY_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEADERS 128

enum http_method { HTTP_OTHER, HTTP_GET, HTTP_HEAD, HTTP_CONNECT };
enum http_form { FORM_ORIGIN, FORM_ABSOLUTE, FORM_AUTHORITY, FORM_ASTERISK };

struct http_field {
	const char *name, *value;
	size_t name_len, value_len;
};

struct http_req {
	enum http_method method;
	const char *method_s;
	size_t method_len;
	const char *target;
	size_t target_len;
	enum http_form form;
	int minor;                 /* HTTP/1.minor */
	int nfields;
	int64_t content_length;    /* -1 when absent */
	int chunked;
	int close;                 /* Connection: close, or HTTP/1.0 without keep-alive */
	const char *host;          /* Host field value */
	size_t host_len;
	struct http_field fields[HTTP1_MAX_HEADERS]; /* last: only the first nfields are set */
};

struct http_limits {
	size_t max_head;           /* bytes, request line included */
	int max_fields;
};

/*
 * Parse one request head at buf.  Returns its length (> 0) when complete,
 * 0 when more bytes are needed, or a negative HTTP status to answer with:
 * -400 malformed, -414 target too long, -431 head too large, -501 unknown
 * transfer coding, -505 version.  Fields point into buf.
 */
int http1_parse_request(const char *buf, size_t len, const struct http_limits *lim, struct http_req *r);

/* Move r's pointers from a head parsed at old to the same bytes copied to new. */
void http1_rebase(struct http_req *r, const char *old, const char *new);

/* First value of a field (case-insensitive), or NULL. */
const char *http1_field(const struct http_req *r, const char *name, size_t *vlen);

const char *http1_reason(int status);

#endif
