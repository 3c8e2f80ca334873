/*
 * Who may use airlock, and for what: client address ranges, the forward
 * proxy's allow-list, and proxy users.  Pure decisions; no I/O.
 */
#ifndef AIRLOCK_POLICY_ACCESS_H
#define AIRLOCK_POLICY_ACCESS_H

#include <stddef.h>
#include <sys/socket.h>
#include "policy/config.h"

int al_client_allowed(const struct al_config *c, const struct sockaddr *sa);

/* Admin endpoints: from admin.allow, or with "Authorization: Bearer <admin.token>". */
int al_admin_allowed(const struct al_config *c, const struct sockaddr *sa, const char *authz, size_t len);

/*
 * The allow rule for host:port, or NULL (denied).  *why gets the reason for
 * a denial: "host not allowed" or "port not allowed".
 */
const struct al_forward_rule *al_forward_find(const struct al_config *c, const char *host,
    size_t hlen, int port, const char **why);

/*
 * Check a Proxy-Authorization value ("Basic base64(user:pass)").  Returns 1
 * when no users are configured or the credentials match, else 0.  *user
 * gets the user name (for logs; never the password).
 */
int al_proxy_auth_ok(const struct al_config *c, const char *value, size_t len, char *user, size_t ulen);

/*
 * A Basic login whose password must still be checked: PBKDF2, ~5 ms by
 * design, so a server checks it off its event loop.  A copy of all the
 * check needs (the header value, the user and the stored hash it is
 * checked against), so it outlives the configuration it came from.
 */
#define AL_PASSWORD_HASH_MAX 192 /* "pbkdf2-sha256$" iterations "$" <= 64 hex "$" 64 hex */
struct al_login {
	char user[64];
	char hash[AL_PASSWORD_HASH_MAX];
	char value[616];           /* "Basic base64(user:pass)" as sent, NUL-terminated */
	size_t len;
};
#define AL_LOGIN_CHECK 2

/*
 * The cheap part of al_proxy_auth_ok, never PBKDF2: 1 (no users, or a
 * login remembered and still valid under c), 0 (cannot be right: missing,
 * malformed, unknown user) or AL_LOGIN_CHECK: *pending filled, the answer
 * is al_login_check(pending).  *user as al_proxy_auth_ok.
 */
int al_proxy_auth_begin(const struct al_config *c, const char *value, size_t len, char *user, size_t ulen,
    struct al_login *pending);
/*
 * The slow part: 1 when the password is right (the login is then
 * remembered for a few minutes, by a digest of the value), else 0.  Safe
 * on any thread; reads nothing but *l.
 */
int al_login_check(const struct al_login *l);

/*
 * Client authentication for the reverse proxy (clients.users,
 * clients.api_keys), as Elastic Agent sends it to its download source:
 * elastic-agent-libs transport/httpcommon/httpcommon.go (commit 2238ac8b),
 * HTTPAuthorization.ToMap: "Authorization: ApiKey <api_key>" when api_key
 * is set, else "Authorization: Basic base64(username:password)", added to
 * every request by headerRoundTripper (no challenge first).
 *
 * route is the matched route (its auth setting, else clients.auth_required);
 * authz/len the Authorization value or NULL.  Returns AL_CLIENT_OPEN when
 * the route asks for no credentials (nothing is checked), AL_CLIENT_OK with
 * *user set to the user's or the key's name, AL_CLIENT_MISSING (no
 * Authorization) or AL_CLIENT_REFUSED (present but not valid).  Pure: the
 * caller answers 401 and logs.
 */
enum al_client_verdict { AL_CLIENT_OPEN, AL_CLIENT_OK, AL_CLIENT_MISSING, AL_CLIENT_REFUSED, AL_CLIENT_CHECK };
enum al_client_verdict al_client_auth(const struct al_config *c, const struct al_route *route,
    const char *authz, size_t len, char *user, size_t ulen);
/*
 * The same without PBKDF2: AL_CLIENT_CHECK (*user and *pending filled) when
 * Basic credentials name a user whose password must still be checked
 * (al_login_check: OK when it returns 1, else REFUSED).
 */
enum al_client_verdict al_client_auth_begin(const struct al_config *c, const struct al_route *route,
    const char *authz, size_t len, char *user, size_t ulen, struct al_login *pending);

/* The stored form of an API key: "sha256$<64 hex>" of the key as sent.  0 or -ENOSPC. */
int al_api_key_hash(const char *key, size_t len, char *out, size_t outlen);

/* A password hash for the configuration: pbkdf2-sha256$iter$salt$hash.  0 or -errno. */
int al_password_hash(const char *password, char *out, size_t outlen);
int al_password_verify(const char *password, const char *hash);

#endif
