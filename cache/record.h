/*
 * The stored form of a cache entry's metadata.  Encoding is explicit
 * little-endian with a magic and a version, so a record written by one build
 * is read (or refused) safely by another, and so the decoder can be fuzzed.
 */
#ifndef AIRLOCK_CACHE_RECORD_H
#define AIRLOCK_CACHE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define AL_REC_PINNED   0x1u   /* mirrored on purpose: never evicted */
#define AL_REC_VERIFIED 0x2u   /* body checked against the upstream's .sha512 */
#define AL_REC_SIGNED   0x8u   /* its OpenPGP signature verified with a pinned key */
#define AL_REC_STALE    0x4u   /* revalidate before serving, whatever the rules say (mirror asks
                                  for it); a refresh or a new response clears it */

struct al_record {
	uint32_t flags;
	int status;
	uint64_t obj_id;         /* body chunks live under this id */
	uint64_t body_len;
	int64_t request_time;    /* when the request that got this response was sent */
	int64_t response_time;   /* when its head arrived (or the last 304's) */
	int64_t age_value;       /* the upstream's Age field, 0 if none */
	int64_t last_used;
	uint8_t sha256[32];
	const char *url;         /* the cache key in clear */
	size_t url_len;
	const char *hdrs;        /* the upstream's end-to-end header lines, as sent */
	size_t hdrs_len;
};

/* Bytes needed to encode r. */
size_t al_record_size(const struct al_record *r);
/* Encode into buf (al_record_size bytes). */
void al_record_encode(const struct al_record *r, uint8_t *buf);
/*
 * Decode; url and hdrs point into buf, so they live as long as buf does.
 * Returns 0 or -EBADMSG for anything malformed.
 */
int al_record_decode(const uint8_t *buf, size_t len, struct al_record *r);
/* Patch last_used in an encoded record in place. */
void al_record_set_last_used(uint8_t *buf, int64_t t);

#endif
