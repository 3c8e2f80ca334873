/*
 * The lookup decision: what becomes of a request given what the cache holds
 * for its key, what happened to the request so far, the freshness rules and
 * the state of its upstream.  A pure function: no I/O, no counters, no
 * text for the client.  The caller (proxy/front/conn.c, the lookup step)
 * counts and writes Cache-Status from the result, as knot-resolver's cache
 * checks leave the answer to their caller.
 *
 *   stored?  fresh?  revalidated?  upstream failed/offline?  only-if-cached?  -> verdict (why)
 *   yes      -       yes           -                         -                -> REVALIDATED
 *   yes      yes     no            -                         -                -> FRESH (FOREVER or TTL)
 *   yes      no      no            yes or offline            -                -> STALE (UNREACHABLE, FORCED_OFFLINE)
 *   yes      no      no            no                        yes              -> STALE (ONLY_IF_CACHED)
 *   yes      no      no            no                        no               -> REVALIDATE (its validators)
 *   no       -       -             -                         yes              -> 504 (ONLY_IF_CACHED)
 *   no       -       -             failed                    no               -> 502 (UNREACHABLE)
 *   no       -       -             offline                   no               -> 504 (OFFLINE)
 *   no       -       -             no                        no               -> MISS
 *
 * Not stored, upstream failed or offline, and a package registry behind the
 * route: registry_first says a computed registry answer may stand in before
 * the 504 or 502.
 */
#ifndef AIRLOCK_POLICY_LOOKUP_H
#define AIRLOCK_POLICY_LOOKUP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy/config.h"

/* The stored record's facts (cache/store.h struct al_record); found = 0: nothing stored. */
struct al_lookup_record {
	int found;
	int status;
	const char *hdrs;          /* the stored head's header block; borrowed */
	size_t hdrs_len;
	int64_t request_time, response_time, age_value;
	int marked_stale;          /* AL_REC_STALE: asked to revalidate (mirror) */
};

/* What happened to the request before this look at the cache. */
enum al_lookup_history {
	AL_LOOKUP_FIRST,           /* first look */
	AL_LOOKUP_AFTER_304,       /* a revalidation just refreshed the stored copy */
	AL_LOOKUP_AFTER_FAILURE,   /* the fetch failed as unreachable (or 5xx on revalidation) */
};

struct al_lookup_request {
	const char *path;          /* the URL's path without its query: what the rules match */
	enum al_lookup_history history;
	int only_if_cached;        /* Cache-Control: only-if-cached (RFC 9111 5.2.1.7) */
	int registry;              /* the route's upstream is a package registry */
};

struct al_lookup_uplink {
	int online;
	int forced;                /* offline by configuration (upstream.offline) */
};

enum al_lookup_verdict {
	AL_SERVE_FRESH,
	AL_SERVE_REVALIDATED,
	AL_SERVE_STALE,
	AL_REVALIDATE,
	AL_MISS,
	AL_GATEWAY_TIMEOUT,        /* 504 */
	AL_BAD_GATEWAY,            /* 502 */
};

enum al_lookup_why {
	AL_WHY_NONE,
	AL_WHY_FOREVER,            /* fresh: an immutable rule */
	AL_WHY_TTL,                /* fresh: lifetime - age seconds left */
	AL_WHY_ONLY_IF_CACHED,
	AL_WHY_FORCED_OFFLINE,     /* upstream offline by configuration */
	AL_WHY_UNREACHABLE,        /* the upstream cannot be reached (or failed this request) */
	AL_WHY_OFFLINE,            /* nothing stored and the upstream is offline */
	AL_WHY_EXPIRED,            /* stale: revalidate, or fetch without validators */
	AL_WHY_NOT_STORED,
};

struct al_lookup_result {
	enum al_lookup_verdict verdict;
	enum al_lookup_why why;
	int registry_first;        /* try a computed registry answer before the 504/502 */
	int64_t lifetime, age;     /* found only: seconds */
	/* AL_REVALIDATE: the upstream's own validators, pointing into rec->hdrs (NULL: none) */
	const char *etag, *last_modified;
	size_t etag_len, last_modified_len;
};

/* Decide for req under cfg's rules at time now.  rec->hdrs must outlive out's validators. */
void al_lookup_decide(const struct al_config *cfg, const struct al_lookup_record *rec,
    const struct al_lookup_request *req, const struct al_lookup_uplink *up, time_t now,
    struct al_lookup_result *out);

/* The words of a reason in Cache-Status detail ("upstream unreachable"...). */
const char *al_lookup_why_text(enum al_lookup_why why);

#endif
