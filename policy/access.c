#include "policy/access.h"
#include "policy/units.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PBKDF2_ITER 20000

static int cidr_match(const struct al_cidr *c, const uint8_t *addr)
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

static int in_cidrs(const struct al_cidr *list, int n, const struct sockaddr *sa);

int al_client_allowed(const struct al_config *c, const struct sockaddr *sa)
{
	return in_cidrs(c->clients, c->nclients, sa);
}

int al_admin_allowed(const struct al_config *c, const struct sockaddr *sa, const char *authz, size_t len)
{
	if (c->admin_token != NULL && authz != NULL && len > 7 && strncasecmp(authz, "Bearer ", 7) == 0) {
		size_t tl = strlen(c->admin_token);
		if (len - 7 == tl && CRYPTO_memcmp(authz + 7, c->admin_token, tl) == 0)
			return 1;
	}
	return in_cidrs(c->admin, c->nadmin, sa);
}

static int in_cidrs(const struct al_cidr *list, int count, const struct sockaddr *sa)
{
	uint8_t v4[4], v6[16];
	int is4 = sa->sa_family == AF_INET, mapped = 0;

	if (is4) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(v6, pre, 12) == 0) { /* ::ffff:a.b.c.d */
			memcpy(v4, v6 + 12, 4);
			mapped = 1;
		}
	} else {
		return 0;
	}
	for (int i = 0; i < count; i++) {
		const struct al_cidr *r = &list[i];
		if (r->family == AF_INET && (is4 || mapped) && cidr_match(r, v4))
			return 1;
		if (r->family == AF_INET6 && !is4 && cidr_match(r, v6))
			return 1;
	}
	return 0;
}

static int host_match(const char *pat, const char *host, size_t hlen)
{
	size_t pl = strlen(pat);

	if (pl > 2 && pat[0] == '*' && pat[1] == '.') {
		/* "*.elastic.co": any subdomain, not the apex */
		return hlen > pl - 1 && strncasecmp(host + hlen - (pl - 1), pat + 1, pl - 1) == 0;
	}
	return pl == hlen && strncasecmp(pat, host, hlen) == 0;
}

const struct al_forward_rule *al_forward_find(const struct al_config *c, const char *host,
    size_t hlen, int port, const char **why)
{
	*why = "host not allowed";
	for (int i = 0; i < c->nforward; i++) {
		const struct al_forward_rule *r = &c->forward[i];
		if (!host_match(r->host, host, hlen))
			continue;
		for (int j = 0; j < r->nports; j++)
			if (r->ports[j] == port)
				return r;
		*why = "port not allowed";
		return NULL;
	}
	return NULL;
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int derive(const char *pw, const uint8_t *salt, size_t slen, int iter, uint8_t out[32])
{
	return PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)slen, iter, EVP_sha256(), 32, out) == 1 ? 0 : -EIO;
}

int al_password_hash(const char *pw, char *out, size_t outlen)
{
	uint8_t salt[16], dk[32];
	char sh[33], dh[65];

	if (RAND_bytes(salt, sizeof(salt)) != 1 || derive(pw, salt, sizeof(salt), PBKDF2_ITER, dk))
		return -EIO;
	al_hex(salt, sizeof(salt), sh);
	al_hex(dk, sizeof(dk), dh);
	if ((size_t)snprintf(out, outlen, "pbkdf2-sha256$%d$%s$%s", PBKDF2_ITER, sh, dh) >= outlen)
		return -ENOSPC;
	return 0;
}

int al_password_verify(const char *pw, const char *hash)
{
	int iter;
	char sh[65], dh[65];
	uint8_t salt[32], want[32], got[32];

	if (sscanf(hash, "pbkdf2-sha256$%d$%64[0-9a-f]$%64[0-9a-f]", &iter, sh, dh) != 3 ||
	    iter < 1000 || strlen(dh) != 64 || strlen(sh) % 2 || strlen(sh) == 0)
		return 0;
	if (unhex(sh, strlen(sh) / 2, salt) || unhex(dh, 32, want) ||
	    derive(pw, salt, strlen(sh) / 2, iter, got))
		return 0;
	return CRYPTO_memcmp(want, got, 32) == 0;
}

/*
 * PBKDF2 is slow on purpose, and clients send the same credentials on every
 * CONNECT: remember a few recently verified ones, by a digest of the header
 * value (never the password), for a few minutes.
 *
 * An entry also holds the stored hash it was verified against, and a hit
 * counts only while the configuration in hand still has that user with
 * that same hash: a reload that removes the user or changes the password
 * refuses the old credentials on the very next request, while a reload
 * that leaves a user alone keeps the entry (issue 29 item 2).  The check
 * is against the caller's configuration, so a request that pinned the old
 * one is judged by the old one, and the first request on the new one by
 * the new.
 */
#define AUTH_CACHE 16
static struct {
	uint8_t digest[32];
	time_t until;
	char user[64];
	char hash[AL_PASSWORD_HASH_MAX];
} auth_cache[AUTH_CACHE];
static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1 when the list still admits user with exactly this stored hash. */
static int user_has_hash(const struct al_user *users, int n, const char *user, const char *hash)
{
	for (int i = 0; i < n; i++)
		if (strcmp(users[i].name, user) == 0)
			return strcmp(users[i].hash, hash) == 0;
	return 0;
}

/*
 * The cheap part of "Basic base64(user:pass)" against a list of users
 * (forward.users or clients.users), never PBKDF2: 1 and *user when the
 * login is remembered and still valid, 0 when it cannot be right
 * (malformed, unknown user), AL_LOGIN_CHECK with *user and *pending filled
 * when the password must be checked (al_login_check).
 */
static int basic_begin(const struct al_user *users, int nusers, const char *v, size_t len, char *user,
    size_t ulen, struct al_login *pending)
{
	uint8_t d[32], dec[512];
	unsigned dl = 32;
	int n, rc = 0;
	time_t now = time(NULL);
	char *colon;

	user[0] = '\0';
	if (v == NULL || len < 7 || strncasecmp(v, "Basic ", 6) != 0 || len - 6 > 600 ||
	    len >= sizeof(pending->value))
		return 0;
	EVP_Digest(v, len, d, &dl, EVP_sha256(), NULL);
	pthread_mutex_lock(&auth_mu);
	for (int i = 0; i < AUTH_CACHE; i++) {
		if (auth_cache[i].until > now && memcmp(auth_cache[i].digest, d, 32) == 0) {
			if (!user_has_hash(users, nusers, auth_cache[i].user, auth_cache[i].hash)) {
				auth_cache[i].until = 0; /* verified against a configuration gone since */
				break;
			}
			snprintf(user, ulen, "%s", auth_cache[i].user);
			pthread_mutex_unlock(&auth_mu);
			return 1;
		}
	}
	pthread_mutex_unlock(&auth_mu);
	n = EVP_DecodeBlock(dec, (const unsigned char *)v + 6, (int)(len - 6));
	if (n <= 0)
		return 0;
	/* EVP_DecodeBlock counts padding as output bytes: take them off again. */
	for (size_t i = len; i > 6 && v[i - 1] == '='; i--)
		n--;
	if (n <= 0)
		return 0;
	dec[n] = '\0';
	colon = strchr((char *)dec, ':');
	if (colon == NULL)
		goto out;
	*colon = '\0';
	for (int i = 0; i < nusers; i++) {
		if (strcmp(users[i].name, (char *)dec) != 0)
			continue;
		if (strlen(users[i].name) >= sizeof(pending->user) || strlen(users[i].hash) >= sizeof(pending->hash))
			break;
		snprintf(pending->user, sizeof(pending->user), "%s", users[i].name);
		snprintf(pending->hash, sizeof(pending->hash), "%s", users[i].hash);
		memcpy(pending->value, v, len);
		pending->value[len] = '\0';
		pending->len = len;
		snprintf(user, ulen, "%s", users[i].name);
		rc = AL_LOGIN_CHECK;
		break;
	}
out:
	OPENSSL_cleanse(dec, sizeof(dec));
	return rc;
}

int al_login_check(const struct al_login *l)
{
	uint8_t d[32], dec[512];
	unsigned dl = 32;
	int n, ok;
	char *colon;

	n = EVP_DecodeBlock(dec, (const unsigned char *)l->value + 6, (int)(l->len - 6));
	for (size_t i = l->len; i > 6 && l->value[i - 1] == '='; i--)
		n--;
	if (n <= 0)
		return 0;
	dec[n] = '\0';
	if ((colon = strchr((char *)dec, ':')) == NULL) {
		OPENSSL_cleanse(dec, sizeof(dec));
		return 0;
	}
	ok = al_password_verify(colon + 1, l->hash);
	OPENSSL_cleanse(dec, sizeof(dec));
	if (ok) {
		time_t now = time(NULL);
		int slot = 0;
		EVP_Digest(l->value, l->len, d, &dl, EVP_sha256(), NULL);
		pthread_mutex_lock(&auth_mu);
		for (int i = 1; i < AUTH_CACHE; i++)
			if (auth_cache[i].until < auth_cache[slot].until)
				slot = i;
		memcpy(auth_cache[slot].digest, d, 32);
		auth_cache[slot].until = now + 300;
		snprintf(auth_cache[slot].user, sizeof(auth_cache[slot].user), "%s", l->user);
		snprintf(auth_cache[slot].hash, sizeof(auth_cache[slot].hash), "%s", l->hash);
		pthread_mutex_unlock(&auth_mu);
	}
	return ok;
}

/* The blocking form (tests and tools): the cheap part, then the check at once. */
static int basic_ok(const struct al_user *users, int nusers, const char *v, size_t len, char *user, size_t ulen)
{
	struct al_login l;
	int rc = basic_begin(users, nusers, v, len, user, ulen, &l);

	if (rc == AL_LOGIN_CHECK)
		rc = al_login_check(&l);
	if (!rc)
		user[0] = '\0';
	OPENSSL_cleanse(&l, sizeof(l));
	return rc;
}

int al_proxy_auth_begin(const struct al_config *c, const char *v, size_t len, char *user, size_t ulen,
    struct al_login *pending)
{
	user[0] = '\0';
	if (c->nusers == 0)
		return 1;
	return basic_begin(c->users, c->nusers, v, len, user, ulen, pending);
}

int al_proxy_auth_ok(const struct al_config *c, const char *v, size_t len, char *user, size_t ulen)
{
	user[0] = '\0';
	if (c->nusers == 0)
		return 1;
	return basic_ok(c->users, c->nusers, v, len, user, ulen);
}

int al_api_key_hash(const char *key, size_t len, char *out, size_t outlen)
{
	uint8_t d[32];
	unsigned dl = 32;

	if (outlen < 7 + 64 + 1)
		return -ENOSPC;
	EVP_Digest(key, len, d, &dl, EVP_sha256(), NULL);
	memcpy(out, "sha256$", 7);
	al_hex(d, sizeof(d), out + 7);
	return 0;
}

/*
 * API keys are long random strings, so one SHA-256 is the right cost (no
 * PBKDF2 per request); the comparison is constant-time and runs over every
 * key, so timing does not say which prefix matched.
 */
static int api_key_ok(const struct al_config *c, const char *key, size_t len, char *user, size_t ulen)
{
	char want[80];
	int found = -1;

	if (len == 0 || al_api_key_hash(key, len, want, sizeof(want)) != 0)
		return 0;
	for (int i = 0; i < c->napi_keys; i++)
		if (CRYPTO_memcmp(want, c->api_keys[i].hash, 7 + 64) == 0 && found < 0)
			found = i;
	if (found < 0)
		return 0;
	snprintf(user, ulen, "%s", c->api_keys[found].name);
	return 1;
}

enum al_client_verdict al_client_auth_begin(const struct al_config *c, const struct al_route *route,
    const char *v, size_t len, char *user, size_t ulen, struct al_login *pending)
{
	int need = c->client_auth_required;

	user[0] = '\0';
	if (route != NULL && route->auth != AL_ROUTE_AUTH_INHERIT)
		need = route->auth == AL_ROUTE_AUTH_REQUIRED;
	if (!need)
		return AL_CLIENT_OPEN;
	if (v == NULL)
		return AL_CLIENT_MISSING;
	/* RFC 9110 11.1: the scheme is case-insensitive, one space before the credentials */
	if (len > 7 && strncasecmp(v, "ApiKey ", 7) == 0)
		return api_key_ok(c, v + 7, len - 7, user, ulen) ? AL_CLIENT_OK : AL_CLIENT_REFUSED;
	if (c->nclient_users > 0) {
		switch (basic_begin(c->client_users, c->nclient_users, v, len, user, ulen, pending)) {
		case 1:
			return AL_CLIENT_OK;
		case AL_LOGIN_CHECK:
			return AL_CLIENT_CHECK;
		}
	}
	return AL_CLIENT_REFUSED;
}

enum al_client_verdict al_client_auth(const struct al_config *c, const struct al_route *route,
    const char *v, size_t len, char *user, size_t ulen)
{
	struct al_login l;
	enum al_client_verdict rc = al_client_auth_begin(c, route, v, len, user, ulen, &l);

	if (rc == AL_CLIENT_CHECK) {
		rc = al_login_check(&l) ? AL_CLIENT_OK : AL_CLIENT_REFUSED;
		if (rc == AL_CLIENT_REFUSED)
			user[0] = '\0';
		OPENSSL_cleanse(&l, sizeof(l));
	}
	return rc;
}
