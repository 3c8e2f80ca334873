/* RFC 9111 freshness and storability, header-block helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "policy/config.h"
#include "policy/freshness.h"
#include "policy/hdr.h"

#define H(s) s, strlen(s)

static void test_lifetime(void **state)
{
	struct al_config *c;
	char err[256];

	assert_int_equal(al_config_load(NULL, &c, err, sizeof(err)), 0);
	/* Two Cache-Control lines, as the registry sends them. */
	assert_int_equal(al_freshness_lifetime(c, "/search", 200, H("Cache-Control: max-age=600\r\nCache-Control: public\r\n")), 600);
	assert_int_equal(al_freshness_lifetime(c, "/search", 200, H("Cache-Control: public, max-age=60, s-maxage=30\r\n")), 30);
	assert_int_equal(al_freshness_lifetime(c, "/x", 200, H("Date: Tue, 14 May 2024 10:00:00 GMT\r\nExpires: Tue, 14 May 2024 10:05:00 GMT\r\n")), 300);
	assert_int_equal(al_freshness_lifetime(c, "/x", 200, H("Date: Tue, 14 May 2024 10:00:00 GMT\r\nExpires: 0\r\n")), 0);
	assert_int_equal(al_freshness_lifetime(c, "/x", 200, H("Date: Tue, 14 May 2024 10:00:00 GMT\r\nLast-Modified: Tue, 14 May 2024 00:00:00 GMT\r\n")), 3600);
	assert_int_equal(al_freshness_lifetime(c, "/x", 200, H("Content-Type: a/b\r\n")), 0);
	assert_true(al_freshness_lifetime(c, "/epr/nginx/nginx-1.20.0.zip", 200, H("Cache-Control: max-age=0\r\n")) == AL_LIFETIME_FOREVER);
	assert_true(al_freshness_lifetime(c, "/downloads/a.tar.gz.sha512", 200, H("")) == AL_LIFETIME_FOREVER);
	/* a 404 is not frozen by the *.tar.gz rule */
	assert_int_equal(al_freshness_lifetime(c, "/downloads/a.tar.gz", 404, H("")), 0);
	al_config_free(c);
}

static void test_storable(void **state)
{
	assert_null(al_uncacheable_reason(200, H("Cache-Control: public\r\n")));
	assert_null(al_uncacheable_reason(404, H("")));
	assert_null(al_uncacheable_reason(200, H("Vary: Accept-Encoding\r\n")));
	assert_string_equal(al_uncacheable_reason(200, H("Cache-Control: no-store\r\n")), "no-store");
	assert_string_equal(al_uncacheable_reason(200, H("Cache-Control: private\r\n")), "private");
	assert_string_equal(al_uncacheable_reason(200, H("Set-Cookie: a=b\r\n")), "set-cookie");
	assert_string_equal(al_uncacheable_reason(200, H("Vary: Accept-Encoding, User-Agent\r\n")), "vary");
	assert_string_equal(al_uncacheable_reason(500, H("")), "status");
	assert_string_equal(al_uncacheable_reason(206, H("")), "status");
}

static void test_age(void **state)
{
	const char *h = "Date: Tue, 14 May 2024 10:00:00 GMT\r\n";
	time_t d = al_http_date(H("Tue, 14 May 2024 10:00:00 GMT"));

	assert_true(d > 0);
	/* received 2s after Date, 10s ago, upstream Age 5 */
	assert_int_equal(al_current_age(h, strlen(h), d + 1, d + 2, 5, d + 12), 5 + 1 + 10);
	assert_int_equal(al_current_age(h, strlen(h), d, d + 30, 0, d + 30), 30);
}

static void test_etags(void **state)
{
	assert_true(al_etag_match_weak(H("\"a\""), H("\"a\"")));
	assert_true(al_etag_match_weak(H("W/\"a\""), H("\"a\"")));
	assert_true(al_etag_match_weak(H("\"x\", W/\"a\""), H("W/\"a\"")));
	assert_true(al_etag_match_weak(H("*"), H("\"a\"")));
	assert_false(al_etag_match_weak(H("\"ab\""), H("\"a\"")));
	assert_false(al_etag_match_weak(H("\"a,b\""), H("\"a\"")));
}

static void test_dates(void **state)
{
	time_t a = al_http_date(H("Sun, 06 Nov 1994 08:49:37 GMT"));
	char buf[32];

	assert_true(a == 784111777);
	assert_true(al_http_date(H("Sunday, 06-Nov-94 08:49:37 GMT")) == a);
	assert_true(al_http_date(H("Sun Nov  6 08:49:37 1994")) == a);
	assert_true(al_http_date(H("yesterday")) == -1);
	al_http_date_fmt(a, buf);
	assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_storable),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_etags),
		cmocka_unit_test(test_dates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
