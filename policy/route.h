/*
 * Routing: which upstream serves a request path, and the cache key for it.
 * The cache key is the absolute upstream URL, so an object fetched through a
 * reverse route and the same URL fetched through the forward proxy are one
 * entry.
 */
#ifndef AIRLOCK_POLICY_ROUTE_H
#define AIRLOCK_POLICY_ROUTE_H

#include <stddef.h>
#include "policy/config.h"

#define AL_RESERVED_PREFIX "/_airlock/"

/* Longest prefix wins; NULL when nothing matches. */
const struct al_route *al_route_find(const struct al_config *c, const char *path, size_t len);

/*
 * Refuse targets that could escape a route or smuggle bytes into the key:
 * dot segments ("..", "%2e%2e" in any case), backslashes, CTLs, a missing
 * leading slash.  Returns 0 or -EINVAL.
 */
int al_path_check(const char *target, size_t len);

/*
 * How many leading bytes of target (a path the route matched) the upstream
 * does not see: 0, or with strip_prefix the prefix less its trailing '/'
 * ("/ml-models/x.pt" under "/ml-models/" -> "/x.pt"), so the cache key is
 * the canonical upstream URL whatever prefix the operator chose.
 */
size_t al_route_skip(const struct al_route *r, const char *target, size_t tlen);

/*
 * The path the upstream sees for target, into buf (NUL-terminated): target
 * less al_route_skip, with a '/' put before a query that would otherwise
 * start it ("/product-docs?max-keys=1000" under "/product-docs" ->
 * "/?max-keys=1000").  Returns its length or -ENAMETOOLONG.
 */
int al_route_path(const struct al_route *r, const char *target, size_t tlen, char *buf, size_t cap);

/* Writes upstream + al_route_path into buf; returns its length or -ENAMETOOLONG. */
int al_route_url(const struct al_route *r, const char *target, size_t tlen, char *buf, size_t buflen);

/*
 * The Stack version in an artifact registry URL (".../elastic-agent-8.13.4-linux-x86_64.tar.gz"
 * -> "8.13.4"; a FIPS build's elastic-agent-fips-9.1.0-... too), into buf.  0, or -ENOENT when the URL is not an Elastic Agent package.
 */
int al_agent_version_of(const char *url, size_t len, char *buf, size_t cap);

#endif
