/*
 * What may be stored, and for how long it stays fresh (RFC 9111 §3, §4.2),
 * with the operator's rules on top.  Pure functions of header blocks and
 * times; the caller supplies "now".
 */
#ifndef AIRLOCK_POLICY_FRESHNESS_H
#define AIRLOCK_POLICY_FRESHNESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "policy/config.h"

#define AL_LIFETIME_FOREVER INT64_MAX

/*
 * The default freshness rules (used when cache.rules is not given), from
 * how each Elastic host publishes: immutable only what is named by its
 * version or its content.  why says so, for `airlock help` and the docs.
 */
struct al_default_rule {
	const char *match;
	int immutable;
	const char *why;
};
extern const struct al_default_rule al_default_rules[];

/*
 * Does a 304 select the stored response it answers (RFC 9111 §4.3.4)?
 * etag and last_modified are the stored response's validators as airlock
 * sent them in If-None-Match / If-Modified-Since (NULL or "" for none),
 * h304 the 304's header block.  1: it may refresh the stored response; 0:
 * it must not (the caller fetches in full instead).
 *
 * - A 304 with an ETag selects only a stored response with that very tag,
 *   byte for byte: a strong "x" only "x" (§4.3.4's first rule); a weak
 *   W/"x" only a stored W/"x".  A weak W/"x" does not select a stored
 *   strong "x", though §4.3.4's second rule would let a weak match update
 *   it: airlock serves stored bytes under their strong tag (Ranges,
 *   If-Range need one, RFC 9110 §13.1.5) and Elastic Endpoint decides
 *   whether to download again by the ETag it stored, so a body the origin
 *   vouches for only weakly is fetched again rather than kept as strong.
 * - A 304 with no ETag but a Last-Modified selects a stored response with
 *   that same Last-Modified.
 * - A 304 with neither selects (the answer to airlock's own conditional
 *   request; §4.3.4's third rule, kept as airlock always did).
 */
int al_304_selects(const char *etag, const char *last_modified, const char *h304, size_t len);

/*
 * Fields of a stored response a selecting 304 does not replace (RFC 9111
 * §3.2): Content-Length and Content-Encoding (the stored body's), and the
 * stored validators and body facts airlock keeps byte for byte: ETag,
 * Content-MD5, Content-Range.  name is nl bytes, any case.
 */
int al_304_keeps_stored(const char *name, size_t nl);

/* Why a response is not stored (for logs and Cache-Status detail); NULL if storable. */
const char *al_uncacheable_reason(int status, const char *hdrs, size_t len);

/*
 * Freshness lifetime in seconds: for a 200, the first rule matching the
 * path decides (immutable, a ttl, or "the upstream's headers"); then
 * s-maxage, max-age, Expires - Date, then 10% of Date - Last-Modified
 * (capped at a day), else 0.  AL_LIFETIME_FOREVER for immutable rules.
 */
int64_t al_freshness_lifetime(const struct al_config *c, const char *url_path, int status,
    const char *hdrs, size_t len);

/*
 * Current age (RFC 9111 §4.2.3) from the stored response and request times
 * and the upstream's Date and Age fields.
 */
int64_t al_current_age(const char *hdrs, size_t len, int64_t request_time,
    int64_t response_time, int64_t age_value, time_t now);

/* no-cache or must-revalidate-when-stale style directives that forbid serving stale online. */
int al_must_revalidate(const char *hdrs, size_t len);

/* Must this URL's body match its sibling URL.sha512 before it is admitted? */
int al_needs_sha512(const struct al_config *c, const char *url);

/*
 * Must this URL's body carry a valid OpenPGP signature (cache.verify_pgp)?
 * The signature's suffix then: ".sig" for the registry's package archives
 * (under /epr/), ".asc" for everything else (the artifact registry).
 */
const char *al_needs_pgp(const struct al_config *c, const char *url);

/*
 * The digest in a .sha512 file ("<128 hex>  name\n", as the artifact
 * registry writes it) into out[64].  0 or -EINVAL.
 */
int al_parse_sha512_file(const char *text, size_t len, unsigned char out[64]);

#endif
