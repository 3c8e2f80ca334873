/* Request-head parser: valid shapes, and every smuggling shape refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proxy/front/http1.h"
#include "proxy/fetch/upstream.h"

static const struct http_limits lim = {16384, 100};

static int parse(const char *s, struct http_req *r)
{
	return http1_parse_request(s, strlen(s), &lim, r);
}

static void test_simple_get(void **state)
{
	struct http_req r;
	const char *s = "GET /search?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: Kibana/8.13.4 node-fetch\r\n\r\nrest";
	size_t vl;
	const char *ua;

	assert_int_equal(parse(s, &r), (int)(strlen(s) - 4));
	assert_int_equal(r.method, HTTP_GET);
	assert_int_equal(r.form, FORM_ORIGIN);
	assert_int_equal(r.target_len, strlen("/search?x=1"));
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.close, 0);
	ua = http1_field(&r, "user-agent", &vl);
	assert_non_null(ua);
	assert_int_equal(vl, strlen("Kibana/8.13.4 node-fetch"));
}

/* The server parses in the input buffer, copies the head and re-points (proxy/front/conn.c). */
static void test_rebase(void **state)
{
	struct http_req r;
	char a[] = "GET http://epr.elastic.co/search HTTP/1.1\r\nHost: epr.elastic.co\r\nAccept: */*\r\n\r\n";
	char b[sizeof(a)];
	size_t vl;
	const char *v;

	assert_int_equal(parse(a, &r), (int)strlen(a));
	memcpy(b, a, sizeof(a));
	http1_rebase(&r, a, b);
	memset(a, 'x', sizeof(a));
	assert_ptr_equal(r.method_s, b);
	assert_memory_equal(r.target, "http://epr.elastic.co/search", r.target_len);
	assert_memory_equal(r.host, "epr.elastic.co", r.host_len);
	v = http1_field(&r, "accept", &vl);
	assert_true(v >= b && v < b + sizeof(b));
	assert_memory_equal(v, "*/*", vl);
}

static void test_incomplete(void **state)
{
	struct http_req r;

	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n", &r), 0);
	assert_int_equal(parse("GET / HT", &r), 0);
}

static void test_forms(void **state)
{
	struct http_req r;

	assert_true(parse("CONNECT epr.elastic.co:443 HTTP/1.1\r\nHost: epr.elastic.co:443\r\n\r\n", &r) > 0);
	assert_int_equal(r.method, HTTP_CONNECT);
	assert_int_equal(r.form, FORM_AUTHORITY);
	assert_true(parse("GET http://epr.elastic.co/search HTTP/1.1\r\nHost: epr.elastic.co\r\n\r\n", &r) > 0);
	assert_int_equal(r.form, FORM_ABSOLUTE);
	assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
	assert_int_equal(r.close, 1);
	assert_true(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0);
	assert_int_equal(r.close, 0);
	assert_int_equal(parse("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", &r), -400);
}

static void test_refused(void **state)
{
	struct http_req r;
	static const struct {
		const char *req;
		int want;
	} cases[] = {
		{"GET / HTTP/1.1\r\n\r\n", -400},
		{"GET / HTTP/1.1\nHost: a\n\n", -400},
		{"GET / HTTP/1.1\rHost: a\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
		{"GET / HTTP/1.2x\r\nHost: a\r\n\r\n", -400},
		{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505},
		{"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
		{"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
		{"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", -400},
		{"GET / HTTP/1.1\r\n: v\r\nHost: a\r\n\r\n", -400},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].req, &r);
		if (rc != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, rc, cases[i].want);
	}
}

/* RFC 9112 3.2: Host must be uri-host [":" port] (RFC 3986 characters); empty is allowed. */
static void test_host_value(void **state)
{
	static const char *const bad[] = {"a b", "a\tb", "a/b", "user@host", "\"x\"", "a<b", "a\\b", NULL};
	static const char *const good[] = {"epr.elastic.co", "127.0.0.1:8080", "[::1]:8080", "", "a-b_c~d", NULL};
	char buf[256];
	struct http_req r;

	(void)state;
	for (int i = 0; bad[i]; i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		assert_int_equal(parse(buf, &r), -400);
	}
	for (int i = 0; good[i]; i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
		assert_true(parse(buf, &r) > 0);
	}
}

/*
 * Every status airlock makes has its own RFC 9110 phrase, not the class
 * fallback (Go's net/http shows the phrase as the error: a refused proxy
 * login must read "Proxy Authentication Required"), and every phrase,
 * fallbacks included, is one the response parser itself accepts.  The
 * list is what proxy/ answers with (grep its respond calls) plus 206/304/
 * 416 for ranges and revalidation.
 */
static void test_reasons(void **state)
{
	static const struct { int status; const char *phrase; } made[] = {
		{200, "OK"}, {204, "No Content"}, {206, "Partial Content"}, {301, "Moved Permanently"},
		{304, "Not Modified"}, {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"},
		{404, "Not Found"}, {405, "Method Not Allowed"}, {407, "Proxy Authentication Required"},
		{408, "Request Timeout"}, {414, "URI Too Long"}, {416, "Range Not Satisfiable"},
		{431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
		{501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
		{504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
	};
	const char *name, *value, *why;
	size_t nl, vl;
	char line[128];

	(void)state;
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
		assert_string_equal(http1_reason(made[i].status), made[i].phrase);
	/* an unknown code reads as the x00 of its class (RFC 9110 15) */
	assert_string_equal(http1_reason(499), "Client Error");
	assert_string_equal(http1_reason(299), "Success");
	assert_string_equal(http1_reason(599), "Server Error");
	for (int s = 100; s < 600; s++) {
		int got = 0;
		int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", s, http1_reason(s));
		assert_true(strlen(http1_reason(s)) > 0);
		assert_int_equal(up_response_line(line, (size_t)n, &got, &name, &nl, &value, &vl, &why), RESP_STATUS);
		assert_int_equal(got, s);
	}
}

/*
 * Every byte value in every class, against the RFC's own lists written out
 * here (memchr with an explicit length: strchr would match the NUL that
 * let "G\0T" through as a method and "X\0Y" as a field name).
 */
static int in_set(unsigned char c, const char *set)
{
	return memchr(set, c, strlen(set)) != NULL;
}

static int rfc_tchar(unsigned char c)
{
	return in_set(c, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
}

static int rfc_target(unsigned char c) /* RFC 3986 unreserved, sub-delims, ":@/?[]" (% tested apart) */
{
	return in_set(c, "-._~!$&'()*+,;=:@/?[]0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
}

static int parse_n(const char *s, size_t n, struct http_req *r)
{
	return http1_parse_request(s, n, &lim, r);
}

static void test_byte_classes(void **state)
{
	struct http_req r;
	char buf[128];
	int n;

	(void)state;
	for (int c = 0; c < 256; c++) {
		int rc;

		/* method: tchar only; a non-tchar is 400, never 405 */
		n = snprintf(buf, sizeof(buf), "G%cT / HTTP/1.1\r\nHost: a\r\n\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = parse_n(buf, (size_t)n, &r);
		if (c == ' ')
			assert_int_equal(rc, -400); /* "G T / ..." has two targets */
		else if (rfc_tchar((unsigned char)c) ? rc <= 0 : rc != -400)
			fail_msg("method byte 0x%02x: got %d", c, rc);
		/* field name */
		n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX%cY: 1\r\n\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = parse_n(buf, (size_t)n, &r);
		if (c == ':')
			assert_true(rc > 0); /* "X:Y: 1" is the field X */
		else if (rfc_tchar((unsigned char)c) ? rc <= 0 : rc != -400)
			fail_msg("field-name byte 0x%02x: got %d", c, rc);
		/* field value: VCHAR, obs-text, SP, HTAB */
		n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: a%cb\r\n\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = parse_n(buf, (size_t)n, &r);
		if ((c == '\t' || (c >= 0x20 && c != 0x7f)) ? rc <= 0 : rc != -400)
			fail_msg("field-value byte 0x%02x: got %d", c, rc);
		/* request-target */
		n = snprintf(buf, sizeof(buf), "GET /a%cb HTTP/1.1\r\nHost: a\r\n\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = parse_n(buf, (size_t)n, &r);
		if (c != '%' && (rfc_target((unsigned char)c) ? rc <= 0 : rc != -400))
			fail_msg("target byte 0x%02x: got %d", c, rc);
	}
	/* the issue's own shapes */
	assert_int_equal(parse_n("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &r), -400);
	assert_int_equal(parse_n("GET /x HTTP/1.1\r\nHost: a\r\nX\0Y: 1\r\n\r\n", 36, &r), -400);
	assert_int_equal(parse_n("GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent\0: evil\r\n\r\n", 47, &r), -400);
	/* pct-encoded needs two hex digits */
	assert_true(parse("GET /a%2Db%c3%A9 HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(parse("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a%4 HTTP/1.1\r\nHost: a\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", &r), -400);
	assert_true(parse("GET http://[::1]:8080/x?a=1&b=2 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &r) > 0);
}

/* Upstream response lines: the same classes, and a status line in its exact shape. */
static void test_response_classes(void **state)
{
	const char *name, *value, *why;
	size_t nl, vl;
	int status = 0;
	char buf[64];

	(void)state;
	for (int c = 0; c < 256; c++) {
		enum up_resp_line rc;
		int n = snprintf(buf, sizeof(buf), "X%cY: 1\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = up_response_line(buf, (size_t)n, &status, &name, &nl, &value, &vl, &why);
		if (c == ':')
			assert_int_equal(rc, RESP_FIELD);
		else if (rfc_tchar((unsigned char)c) ? rc != RESP_FIELD : rc != RESP_BAD)
			fail_msg("response field-name byte 0x%02x: got %d", c, rc);
		n = snprintf(buf, sizeof(buf), "X: a%cb\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = up_response_line(buf, (size_t)n, &status, &name, &nl, &value, &vl, &why);
		if ((c == '\t' || (c >= 0x20 && c != 0x7f)) ? rc != RESP_FIELD : rc != RESP_BAD)
			fail_msg("response field-value byte 0x%02x: got %d", c, rc);
		n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 O%cK\r\n", 'x');
		*strchr(buf, 'x') = (char)c; /* the one lower-case x */
		rc = up_response_line(buf, (size_t)n, &status, &name, &nl, &value, &vl, &why);
		if ((c == '\t' || (c >= 0x20 && c != 0x7f)) ? rc != RESP_STATUS : rc != RESP_BAD)
			fail_msg("reason-phrase byte 0x%02x: got %d", c, rc);
	}
	assert_int_equal(up_response_line("HTTP/1.1 204\r\n", 14, &status, &name, &nl, &value, &vl, &why), RESP_STATUS);
	assert_int_equal(status, 204);
	assert_int_equal(up_response_line("HTTP/1.1 200 OK\r\n", 17, &status, &name, &nl, &value, &vl, &why), RESP_STATUS);
	assert_int_equal(status, 200);
	static const char *const bad[] = {"HTTP/1.1  200 OK\r\n", "HTTP/x.1 200 OK\r\n", "HTTP/1.1 2000 OK\r\n",
	    "HTTP/1.1 20 OK\r\n", "HTTP/1.1 600 OK\r\n", "HTTP/1.1 200OK\r\n", "HTTP/1.1 200 OK", NULL};
	for (int i = 0; bad[i]; i++)
		if (up_response_line(bad[i], strlen(bad[i]), &status, &name, &nl, &value, &vl, &why) != RESP_BAD)
			fail_msg("status line %d accepted: %s", i, bad[i]);
	assert_int_equal(up_response_line("X: a\0b\r\n", 8, &status, &name, &nl, &value, &vl, &why), RESP_BAD);
}

static void test_limits(void **state)
{
	struct http_limits small = {64, 3};
	struct http_req r;
	const char *big = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	const char *many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	char line[200];

	assert_int_equal(http1_parse_request(big, strlen(big), &small, &r), -431);
	assert_int_equal(http1_parse_request(many, strlen(many), &(struct http_limits){1000, 3}, &r), -431);
	memset(line, 'a', sizeof(line));
	memcpy(line, "GET /", 5);
	assert_int_equal(http1_parse_request(line, sizeof(line), &small, &r), -414);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_rebase),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_host_value),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_byte_classes),
		cmocka_unit_test(test_response_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
