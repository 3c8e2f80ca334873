/*
 * Bundles: cache entries carried across an air gap in one file.
 *
 *   "ALKBNDL1"
 *   per entry:  'E' | u32 record length | record (cache/record.h) | body
 *   trailer:    'T' | u64 entry count | SHA-256 of every byte before 'T'
 *
 * The record carries the upstream's status, header lines and validators
 * exactly as stored, the body length and the body's SHA-256.  Writing and
 * reading both stream: no body is held whole.  A reader checks each body
 * against its record and the whole file against the trailer, so a
 * truncated or altered bundle is refused.  (Integrity, not authenticity:
 * whoever can write a bundle can write a valid one.)
 */
#ifndef AIRLOCK_CACHE_BUNDLE_H
#define AIRLOCK_CACHE_BUNDLE_H

#include <stdint.h>
#include <stdio.h>
#include "cache/store.h"

struct al_bundle_stats {
	uint64_t entries, bytes;
};

/* Write entries whose URL matches the glob (NULL: all) to f.  0 or -errno; err says why. */
int al_bundle_export(struct al_store *s, FILE *f, const char *match, struct al_bundle_stats *st,
    char *err, size_t errlen);

/* What import did, entry by entry. */
struct al_import_stats {
	uint64_t added, updated, skipped, rejected, bytes;
};

/*
 * Read a bundle.  With s == NULL it only verifies (every digest, the
 * trailer).  With s, it verifies the whole file first and admits nothing
 * unless all of it is sound; then admits entry by entry, each atomically,
 * never replacing a newer stored response with an older one; admitted
 * entries are pinned.  f must be seekable for the second pass.
 */
int al_bundle_import(struct al_store *s, FILE *f, struct al_import_stats *st, char *err, size_t errlen);

#endif
