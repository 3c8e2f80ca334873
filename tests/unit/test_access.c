/* Access decisions: proxy logins across reloads, reverse-proxy client authentication. */
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
	/* the split form a server uses (PBKDF2 off its loop): not remembered -> a check to run */
	{
		struct al_login l;
		basic("bob", "bob-pw", b, sizeof(b));
		assert_int_equal(al_proxy_auth_begin(v1, b, strlen(b), user, sizeof(user), &l), AL_LOGIN_CHECK);
		assert_string_equal(user, "bob");
		assert_string_equal(l.hash, hb);
		assert_int_equal(al_login_check(&l), 1);
		assert_int_equal(al_proxy_auth_begin(v1, b, strlen(b), user, sizeof(user), &l), 1); /* remembered */
		basic("bob", "wrong", b, sizeof(b));
		assert_int_equal(al_proxy_auth_begin(v1, b, strlen(b), user, sizeof(user), &l), AL_LOGIN_CHECK);
		assert_int_equal(al_login_check(&l), 0);
		assert_int_equal(al_proxy_auth_begin(v1, b, strlen(b), user, sizeof(user), &l), AL_LOGIN_CHECK);
		basic("carol", "x", b, sizeof(b));
		assert_int_equal(al_proxy_auth_begin(v1, b, strlen(b), user, sizeof(user), &l), 0); /* no check needed */
	}
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

static struct al_config *load(const char *yaml, char *err, size_t errlen)
{
	struct al_config *c = NULL;

	if (al_config_load_string("test.yml", yaml, strlen(yaml), &c, err, errlen) != 0)
		return NULL;
	return c;
}

/*
 * Reverse-proxy client authentication, as Elastic Agent sends it
 * (elastic-agent-libs 2238ac8b transport/httpcommon/httpcommon.go
 * HTTPAuthorization.ToMap: "ApiKey <key>" or "Basic base64(user:pass)").
 */
static void test_client_auth(void **state)
{
	char h[256], kh[80], yaml[2048], err[512], user[64], a[256];
	const char *key = "k3y-0f-the-fleet-agents-0123456789";
	struct al_config *c;
	const struct al_route *dl, *open, *root;

	(void)state;
	assert_int_equal(al_password_hash("agent-pw", h, sizeof(h)), 0);
	assert_int_equal(al_api_key_hash(key, strlen(key), kh, sizeof(kh)), 0);
	assert_int_equal(strncmp(kh, "sha256$", 7), 0);
	assert_int_equal(strlen(kh), 7 + 64);
	snprintf(yaml, sizeof(yaml),
	    "routes:\n"
	    "  - {prefix: /downloads/, upstream: \"https://artifacts.elastic.co\", auth: true}\n"
	    "  - {prefix: /open/, upstream: \"https://artifacts.elastic.co\", auth: false}\n"
	    "  - {prefix: /, upstream: \"https://epr.elastic.co\"}\n"
	    "forward:\n  users:\n    - {name: kibana, password_hash: \"%s\"}\n"
	    "clients:\n  users:\n    - {name: agent, password_hash: \"%s\"}\n"
	    "  api_keys:\n    - {name: fleet-agents, key_hash: \"%s\"}\n", h, h, kh);
	c = load(yaml, err, sizeof(err));
	if (c == NULL)
		fail_msg("config: %s", err);
	assert_int_equal(c->nroutes, 3);
	dl = &c->routes[0], open = &c->routes[1], root = &c->routes[2];

	/* a route that asks */
	assert_int_equal(al_client_auth(c, dl, NULL, 0, user, sizeof(user)), AL_CLIENT_MISSING);
	basic("agent", "agent-pw", a, sizeof(a));
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_OK);
	assert_string_equal(user, "agent");
	basic("agent", "wrong", a, sizeof(a));
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	assert_string_equal(user, "");
	/* a forward-proxy user is not a client of the reverse proxy */
	basic("kibana", "agent-pw", a, sizeof(a));
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	snprintf(a, sizeof(a), "ApiKey %s", key);
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_OK);
	assert_string_equal(user, "fleet-agents");
	snprintf(a, sizeof(a), "apikey %s", key); /* RFC 9110 11.1: schemes are case-insensitive */
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_OK);
	snprintf(a, sizeof(a), "ApiKey %sx", key);
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	snprintf(a, sizeof(a), "ApiKey %.*s", (int)strlen(key) - 1, key);
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	assert_int_equal(al_client_auth(c, dl, "ApiKey ", 7, user, sizeof(user)), AL_CLIENT_REFUSED);
	snprintf(a, sizeof(a), "Bearer %s", key);
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	/* the key's hash itself is not the key */
	snprintf(a, sizeof(a), "ApiKey %s", kh);
	assert_int_equal(al_client_auth(c, dl, a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	/* routes that do not ask: nothing is checked */
	assert_int_equal(al_client_auth(c, open, NULL, 0, user, sizeof(user)), AL_CLIENT_OPEN);
	assert_int_equal(al_client_auth(c, root, NULL, 0, user, sizeof(user)), AL_CLIENT_OPEN);
	al_config_free(c);

	/* clients.auth_required: every route unless it says auth: false */
	snprintf(yaml, sizeof(yaml),
	    "routes:\n"
	    "  - {prefix: /open/, upstream: \"https://artifacts.elastic.co\", auth: false}\n"
	    "  - {prefix: /, upstream: \"https://epr.elastic.co\"}\n"
	    "clients:\n  auth_required: true\n  api_keys:\n    - {name: fleet-agents, key_hash: \"%s\"}\n", kh);
	c = load(yaml, err, sizeof(err));
	if (c == NULL)
		fail_msg("config: %s", err);
	assert_int_equal(al_client_auth(c, &c->routes[1], NULL, 0, user, sizeof(user)), AL_CLIENT_MISSING);
	assert_int_equal(al_client_auth(c, &c->routes[0], NULL, 0, user, sizeof(user)), AL_CLIENT_OPEN);
	basic("agent", "agent-pw", a, sizeof(a)); /* no clients.users at all */
	assert_int_equal(al_client_auth(c, &c->routes[1], a, strlen(a), user, sizeof(user)), AL_CLIENT_REFUSED);
	al_config_free(c);

	/* configurations that could not work are refused, saying why */
	assert_null(load("routes:\n  - {prefix: /, upstream: \"https://epr.elastic.co\", auth: true}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "neither clients.users nor clients.api_keys"));
	assert_null(load("routes:\n  - {prefix: /, upstream: \"https://epr.elastic.co\"}\nclients:\n  auth_required: true\n",
	    err, sizeof(err)));
	assert_non_null(strstr(err, "neither clients.users nor clients.api_keys"));
	assert_null(load("clients:\n  api_keys:\n    - {name: x, key_hash: \"plain-key\"}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "airlock passwd --api-key"));
	assert_null(load("clients:\n  users:\n    - {name: x, password_hash: \"secret\"}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "clients.users: password_hash must come from 'airlock passwd'"));
	assert_null(load("routes:\n  - {prefix: /, upstream: \"https://epr.elastic.co\", auth: maybe}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "auth 'maybe' is not true or false"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_login_follows_reload),
		cmocka_unit_test(test_client_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
