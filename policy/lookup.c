#include "policy/lookup.h"
#include "policy/freshness.h"
#include "policy/hdr.h"

#include <string.h>

static void stored(const struct al_config *cfg, const struct al_lookup_record *rec,
    const struct al_lookup_request *req, const struct al_lookup_uplink *up, time_t now,
    struct al_lookup_result *out)
{
	int64_t lifetime = al_freshness_lifetime(cfg, req->path, rec->status, rec->hdrs, rec->hdrs_len);

	out->age = al_current_age(rec->hdrs, rec->hdrs_len, rec->request_time, rec->response_time,
	    rec->age_value, now);
	out->lifetime = lifetime;
	if (req->history == AL_LOOKUP_AFTER_304) {
		out->verdict = AL_SERVE_REVALIDATED;
		return;
	}
	if (rec->marked_stale)
		lifetime = out->lifetime = 0;
	if (lifetime == AL_LIFETIME_FOREVER) {
		out->verdict = AL_SERVE_FRESH;
		out->why = AL_WHY_FOREVER;
		return;
	}
	if (out->age < lifetime && !al_must_revalidate(rec->hdrs, rec->hdrs_len)) {
		out->verdict = AL_SERVE_FRESH;
		out->why = AL_WHY_TTL;
		return;
	}
	if (req->history == AL_LOOKUP_AFTER_FAILURE || !up->online || req->only_if_cached) {
		/* stale-if-error (RFC 5861), or the client asked for the cache alone */
		out->verdict = AL_SERVE_STALE;
		out->why = req->only_if_cached && up->online ? AL_WHY_ONLY_IF_CACHED :
		    up->forced ? AL_WHY_FORCED_OFFLINE : AL_WHY_UNREACHABLE;
		return;
	}
	out->verdict = AL_REVALIDATE;
	out->why = AL_WHY_EXPIRED;
	out->etag = al_hdr_get(rec->hdrs, rec->hdrs_len, "ETag", &out->etag_len);
	out->last_modified = al_hdr_get(rec->hdrs, rec->hdrs_len, "Last-Modified", &out->last_modified_len);
}

void al_lookup_decide(const struct al_config *cfg, const struct al_lookup_record *rec,
    const struct al_lookup_request *req, const struct al_lookup_uplink *up, time_t now,
    struct al_lookup_result *out)
{
	int down = req->history == AL_LOOKUP_AFTER_FAILURE || !up->online;

	memset(out, 0, sizeof(*out));
	if (rec->found) {
		stored(cfg, rec, req, up, now, out);
		return;
	}
	out->registry_first = down && req->registry;
	if (req->only_if_cached) {
		out->verdict = AL_GATEWAY_TIMEOUT;
		out->why = AL_WHY_ONLY_IF_CACHED;
	} else if (req->history == AL_LOOKUP_AFTER_FAILURE) {
		out->verdict = AL_BAD_GATEWAY;
		out->why = AL_WHY_UNREACHABLE;
	} else if (!up->online) {
		out->verdict = AL_GATEWAY_TIMEOUT;
		out->why = AL_WHY_OFFLINE;
	} else {
		out->verdict = AL_MISS;
		out->why = AL_WHY_NOT_STORED;
	}
}

const char *al_lookup_why_text(enum al_lookup_why why)
{
	switch (why) {
	case AL_WHY_FOREVER: return "immutable";
	case AL_WHY_TTL: return "fresh";
	case AL_WHY_ONLY_IF_CACHED: return "only-if-cached";
	case AL_WHY_FORCED_OFFLINE: return "upstream offline by configuration";
	case AL_WHY_UNREACHABLE: return "upstream unreachable";
	case AL_WHY_OFFLINE: return "upstream-offline";
	case AL_WHY_EXPIRED: return "stale";
	case AL_WHY_NOT_STORED: return "not stored";
	case AL_WHY_NONE: break;
	}
	return "";
}
