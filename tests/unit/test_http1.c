/* Request-head parser: valid shapes, and every smuggling shape refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proxy/front/http1.h"

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

/* Every status airlock may send or relay has its RFC 9110 phrase (Go shows it as the error). */
static void test_reasons(void **state)
{
	(void)state;
	assert_string_equal(http1_reason(407), "Proxy Authentication Required");
	assert_string_equal(http1_reason(401), "Unauthorized");
	assert_string_equal(http1_reason(429), "Too Many Requests");
	assert_string_equal(http1_reason(451), "Unavailable For Legal Reasons");
	assert_string_equal(http1_reason(308), "Permanent Redirect");
	assert_string_equal(http1_reason(413), "Content Too Large");
	for (int s = 100; s < 600; s++)
		assert_string_not_equal(http1_reason(s), "Status");
	assert_string_equal(http1_reason(499), "Client Error");
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
