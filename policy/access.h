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
enum al_client_verdict { AL_CLIENT_OPEN, AL_CLIENT_OK, AL_CLIENT_MISSING, AL_CLIENT_REFUSED };
enum al_client_verdict al_client_auth(const struct al_config *c, const struct al_route *route,
    const char *authz, size_t len, char *user, size_t ulen);

/* The stored form of an API key: "sha256$<64 hex>" of the key as sent.  0 or -ENOSPC. */
int al_api_key_hash(const char *key, size_t len, char *out, size_t outlen);

/* A password hash for the configuration: pbkdf2-sha256$iter$salt$hash.  0 or -errno. */
int al_password_hash(const char *password, char *out, size_t outlen);
int al_password_verify(const char *password, const char *hash);

#endif
