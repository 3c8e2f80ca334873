/*
 * Hot bodies, sent with sendfile: a worker's copy of the cached bodies it
 * serves most, in anonymous memory files (memfd) it only ever appends to.
 *
 * Why not sendfile straight from LMDB's data file: sendfile hands the
 * kernel references to the file's pages, and TCP keeps them until the data
 * is acknowledged -- on loopback, until the receiving process has read it.
 * LMDB rewrites freed pages in place, so an object replaced or evicted while
 * its pages still sit in a socket queue would reach that client with the
 * new bytes.  Here no byte of a memory file is ever written twice: a file is
 * filled front to back, and when it is retired it is truncated whole, which
 * takes its pages out of the file without touching them (pages the kernel
 * still references live on, unchanged, until it lets go).  Truncating only
 * part of a file could zero a huge page in place, so nothing here does.
 *
 * Two generations per worker, each at most `cap` bytes: bodies are appended
 * to the current one; when it is full the older one is truncated and becomes
 * the current.  An entry is found by object id and the body's SHA-256 from
 * its record, so a replaced object (new id, new digest) never matches old
 * bytes.  One worker owns one al_hot: no locks.
 */
#ifndef AIRLOCK_PROXY_HOT_H
#define AIRLOCK_PROXY_HOT_H

#include <stdint.h>

#include "cache/store.h"

/*
 * Bodies below this go out by writev from the map: on loopback a 16 KiB hit
 * ran ~5% slower by sendfile (74k against 78k req/s, 8 runs each), 32 KiB
 * level, 64 KiB and up faster or steadier (bench/README.md).
 */
#define AL_HOT_MIN_BODY (32 * 1024)

struct al_hot;
struct al_counters;

/*
 * A tier of 2 x cap bytes counting into stats (its worker's counters:
 * hot_sends, hot_copies, hot_rotations, hot_bytes); -errno when
 * memfd_create fails.
 */
int al_hot_new(uint64_t cap, struct al_counters *stats, struct al_hot **out);
void al_hot_free(struct al_hot *h);
/* The largest body taken: a quarter of a generation, at most 1 MiB. */
uint64_t al_hot_max_body(const struct al_hot *h);

/*
 * Where rec's body is in the tier: *fd and *off (the body's first byte),
 * copying it in from rd's snapshot (which must be active) when it is not
 * there yet.  -ENOENT when rec is outside the tier's sizes, or -errno when
 * the copy failed (the caller sends from the map as usual).  fd stays valid
 * until the next call on h.
 */
int al_hot_get(struct al_hot *h, struct al_reader *rd, const struct al_record *rec, int *fd, uint64_t *off);

#endif
