/* Access decisions: proxy logins across reloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "policy/access.h"

/* "Basic base64(user:pass)" into out. */
static const char *basic(const char *user, const char *pass, char *out, size_t outlen)
{
	char plain[128];
	int n = snprintf(plain, sizeof(plain), "%s:%s", user, pass);

	assert_true(outlen > 6 + 4 * ((size_t)n + 2) / 3 + 1);
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
	return out;
}

static struct al_config *users(const char *n1, const char *h1, const char *n2, const char *h2)
{
	struct al_config *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	if (n1) {
		c->users[c->nusers].name = (char *)n1;
		c->users[c->nusers++].hash = (char *)h1;
	}
	if (n2) {
		c->users[c->nusers].name = (char *)n2;
		c->users[c->nusers++].hash = (char *)h2;
	}
	return c;
}

/*
 * A verified login is remembered (PBKDF2 is slow on purpose), but never
 * past a configuration that no longer admits it: after a reload removes
 * the user or changes the password, the very next check fails (issue 29
 * item 2; the old cache answered yes for 300 s whatever the configuration).
 */
static void test_proxy_login_follows_reload(void **state)
{
	char h1[256], h2[256], hb[256], a[256], b[256], user[64];
	struct al_config *v1, *removed, *changed, *v1again;
	size_t al;

	(void)state;
	assert_int_equal(al_password_hash("first-pw", h1, sizeof(h1)), 0);
	assert_int_equal(al_password_hash("second-pw", h2, sizeof(h2)), 0);
	assert_int_equal(al_password_hash("bob-pw", hb, sizeof(hb)), 0);
	v1 = users("alice", h1, "bob", hb);
	removed = users("bob", hb, NULL, NULL);
	changed = users("alice", h2, "bob", hb);
	v1again = users("bob", hb, "alice", h1); /* same user and hash, another order: a reload that kept her */

	basic("alice", "first-pw", a, sizeof(a));
	al = strlen(a);
	assert_int_equal(al_proxy_auth_ok(v1, a, al, user, sizeof(user)), 1);
	assert_string_equal(user, "alice");
	assert_int_equal(al_proxy_auth_ok(v1, a, al, user, sizeof(user)), 1); /* the remembered path */
	assert_string_equal(user, "alice");

	/* alice removed: refused at once, though her login was remembered */
	assert_int_equal(al_proxy_auth_ok(removed, a, al, user, sizeof(user)), 0);
	assert_string_equal(user, "");
	/* password changed: the old one is refused, the new one admitted */
	assert_int_equal(al_proxy_auth_ok(v1, a, al, user, sizeof(user)), 1);
	assert_int_equal(al_proxy_auth_ok(changed, a, al, user, sizeof(user)), 0);
	basic("alice", "second-pw", b, sizeof(b));
	assert_int_equal(al_proxy_auth_ok(changed, b, strlen(b), user, sizeof(user)), 1);
	assert_int_equal(al_proxy_auth_ok(v1, b, strlen(b), user, sizeof(user)), 0);
	/* a reload that keeps her as she was keeps her login */
	assert_int_equal(al_proxy_auth_ok(v1again, a, al, user, sizeof(user)), 1);
	assert_string_equal(user, "alice");
	/* wrong password, unknown user, no users configured */
	basic("alice", "nope", b, sizeof(b));
	assert_int_equal(al_proxy_auth_ok(v1, b, strlen(b), user, sizeof(user)), 0);
	basic("carol", "first-pw", b, sizeof(b));
	assert_int_equal(al_proxy_auth_ok(v1, b, strlen(b), user, sizeof(user)), 0);
	free(v1);
	v1 = users(NULL, NULL, NULL, NULL);
	assert_int_equal(al_proxy_auth_ok(v1, NULL, 0, user, sizeof(user)), 1);
	free(v1);
	free(removed);
	free(changed);
	free(v1again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_login_follows_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
