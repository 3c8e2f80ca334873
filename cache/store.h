/*
 * The cache store: one LMDB environment shared by every worker thread.
 *
 * Layout (six named databases):
 *   meta     sha256(url) -> record (cache/record.h); present only for
 *            complete objects
 *   body     obj_id:be64 | offset:be64 -> bytes, variable-sized chunks
 *   pending  obj_id -> sha256(url) for fills under way; a crash leaves them
 *            here and al_store_open() deletes their chunks
 *   info     "bytes" -> total body bytes of complete objects;
 *            "ledger_head" -> the ledger of custody's head (seq, digest)
 *   regidx   the offline registry's index: "<base>\0<name>\0<version>" ->
 *            meta key (32 bytes) | skeleton "\n" summary of the package
 *            document stored at <base>/package/<name>/<version>/
 *            (policy/registry_summary.h);
 *            "<base>\0<name>" -> the name's record (its newest deprecated
 *            version and notice), when one of its versions is deprecated;
 *            "\0format" -> the summary format (u32) the entries follow and
 *            the id of the last transaction this airlock committed (u64:
 *            another writer since makes the index rebuilt at open);
 *            "\0gen" -> u64 changed by every change to the entries.
 *            Written and dropped in the transaction that commits, evicts or
 *            deletes the document; rebuilt at open when its format differs.
 *   rootidx  "<scheme>://<authority>/<leaf>" -> meta key (32 bytes) for
 *            every entry stored at its host's root (a leaf without '/',
 *            '?' or '#'): an S3 bucket's objects, in URL order, which
 *            meta's digest keys do not give (a URL over LMDB's key limit:
 *            its first 479 bytes and its digest); "\0format" once it
 *            covers meta.  Written and dropped with the entry; rebuilt at
 *            open when its format is missing or another.
 *
 * A fill writes chunks under a fresh obj_id while readers keep seeing the
 * old object (if any); al_fill_commit() switches the record to the new id
 * and deletes the old chunks in one transaction, so an object is visible as
 * complete only after its last byte is committed.
 *
 * Readers hold an al_reader (an MDB_NOTLS read transaction that is reset
 * between uses).  Pointers it returns point into LMDB's memory map and stay
 * valid until al_reader_end(): a hit is sent from the map without copying
 * it into user-space buffers.
 */
#ifndef AIRLOCK_CACHE_STORE_H
#define AIRLOCK_CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "cache/record.h"

#define AL_KEY_LEN 32

struct al_store;
struct al_reader;

struct al_store_stats {
	uint64_t entries;
	uint64_t bytes;
	uint64_t evictions;     /* since open */
	uint64_t map_size;
	uint64_t last_txnid;    /* LMDB's last committed write, by any process: changes when anything was written */
};

/*
 * Open (creating the directory if needed); 0 or -errno.  err gets a message.
 * readers: read snapshots open at once in this process.  Every client
 * connection keeps one (hits are served from the map), so the server asks
 * for max_connections plus a margin; LMDB sizes its lock file for the
 * first process that opens the environment, later ones share it.
 */
int al_store_open(const char *dir, uint64_t max_size, unsigned readers, struct al_store **out,
    char *err, size_t errlen);
void al_store_close(struct al_store *s);
void al_store_key(const char *url, size_t len, uint8_t key[AL_KEY_LEN]);
int al_store_stats(struct al_store *s, struct al_store_stats *st);
/*
 * Flush the newest commit's meta page (the environment runs with
 * MDB_NOMETASYNC: see "Durability" in store.c); a thread calls this once a
 * second.  Cheap when nothing was committed since its last call.
 */
int al_store_sync(struct al_store *s);

/*
 * Group commit, for the one thread that writes most (the store writer) and
 * for bulk writers (bundle import).  Between begin and end, every write call
 * this thread makes on s (al_fill_*, al_store_touch, ...) is a nested
 * transaction of one batch transaction: a call that fails undoes only its
 * own part.  Nothing of the batch is visible to readers before end (or
 * flush) commits it, with one fdatasync for the whole batch.  end/flush
 * return 0 or the batch's first failure (-errno): when not 0, the writes
 * made since begin may be lost, whatever each call returned.  Calls that
 * must commit on their own (making room in a full map) commit the batch so
 * far first.  Other threads' write calls wait for the batch to end.
 */
int al_store_batch_begin(struct al_store *s);
int al_store_batch_flush(struct al_store *s);  /* commit what is there, go on in a new batch */
int al_store_batch_end(struct al_store *s);

int al_reader_new(struct al_store *s, struct al_reader **out);
void al_reader_free(struct al_reader *r);
/* Start a snapshot; no-op if one is active. */
int al_reader_begin(struct al_reader *r);
/* End the snapshot: every pointer it gave is invalid after this. */
void al_reader_end(struct al_reader *r);
int al_reader_active(const struct al_reader *r);

/* Look up; rec's url/hdrs point into the map (valid until al_reader_end). -ENOENT if absent. */
int al_lookup(struct al_reader *r, const uint8_t key[AL_KEY_LEN], struct al_record *rec);
/*
 * The stored bytes of obj_id from off to the end of the chunk holding off.
 * -ENOENT when that byte is not (yet, in this snapshot) stored.
 */
int al_body_at(struct al_reader *r, uint64_t obj_id, uint64_t off, const void **ptr, size_t *len);

/* Each of these is one write transaction (nested in the caller's batch, if it holds one: see below). */
int al_fill_begin(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint64_t *obj_id);
/* al_fill_begin in two: a new object id (random, never 0), then its pending entry, which must
 * come before its chunks (chunks of a pending object are dropped at the next open). */
int al_fill_new_id(uint64_t *obj_id);
int al_fill_pending(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint64_t obj_id);
int al_fill_append(struct al_store *s, uint64_t obj_id, uint64_t off, const void *data, size_t len);
/* Publish rec (rec->obj_id is the fill's) under key, replacing and freeing any older object. */
int al_fill_commit(struct al_store *s, const uint8_t key[AL_KEY_LEN], const struct al_record *rec);
int al_fill_abort(struct al_store *s, uint64_t obj_id);

/*
 * A 304 that selects the stored response arrived for key
 * (policy/freshness.h al_304_selects): replace stored fields named in
 * hdrs304 but those al_304_keeps_stored names (RFC 9111 §3.2, §4.3.4),
 * set the new times.  -ENOENT if the entry went away meanwhile.
 */
int al_refresh(struct al_store *s, const uint8_t key[AL_KEY_LEN], const char *hdrs304,
    size_t len, int64_t request_time, int64_t response_time, int64_t age_value);

/* Mark entries used at time t (LRU), in one write transaction.  Absent keys are skipped. */
int al_store_touch(struct al_store *s, const uint8_t (*keys)[AL_KEY_LEN], int n, int64_t t);

/*
 * Call fn for every entry, in key order, from one read snapshot; rec is
 * valid during the call only.  fn returns 0 to go on.  Returns 0, fn's
 * non-zero value, or -errno.
 */
typedef int (*al_entry_fn)(const uint8_t key[AL_KEY_LEN], const struct al_record *rec, void *arg);
int al_store_foreach(struct al_store *s, al_entry_fn fn, void *arg);

/*
 * al_store_foreach in slices, for a scan that must not hold its thread (the
 * store writer's purge: admin.h): each call visits at most max entries, in
 * key order, from a snapshot of its own, after the last key the previous
 * call visited (sc zeroed before the first).  An entry written between two
 * calls is visited if its key comes after sc's position.  Returns 0, fn's
 * non-zero value, or -errno; sets sc->done once the last entry was visited.
 */
struct al_scan {
	uint8_t pos[AL_KEY_LEN]; /* the last key visited */
	int started, done;
};
int al_store_foreach_slice(struct al_store *s, struct al_scan *sc, int max, al_entry_fn fn, void *arg);

/*
 * al_store_foreach for the entries stored at the root of base only
 * ("<scheme>://<authority>/", with its slash: urls base + a leaf without
 * '/', '?' or '#'), in URL order, from one snapshot: it reads those
 * entries and no others, through the root index (while the index is not
 * built yet, at the first open of an older cache by a process not alone
 * on it, every entry: fn still filters).  -EINVAL when base does not end
 * with '/'.
 */
int al_store_root_scan(struct al_store *s, const char *base, size_t blen, al_entry_fn fn, void *arg);

/* Set or clear AL_REC_PINNED on an entry. -ENOENT if absent. */
int al_store_pin(struct al_store *s, const uint8_t key[AL_KEY_LEN], int pinned);

/*
 * Set AL_REC_STALE: the next lookup revalidates the entry with the
 * upstream (or serves it stale while offline), even under an immutable
 * rule.  -ENOENT if absent.
 */
int al_store_expire(struct al_store *s, const uint8_t key[AL_KEY_LEN]);

/*
 * A whole body in a new NUL-terminated buffer (for small documents: JSON,
 * manifests; the serving path never does this).  Refuses bodies over max.
 * 0 with *out (caller frees) or -ENOENT, -EFBIG, -ENOMEM.
 */
int al_body_read(struct al_reader *r, const struct al_record *rec, uint64_t max, char **out);

/*
 * The same for the stored 200 under key, in a snapshot of its own:
 * 0 with *out and *len, -ENOENT (absent or not a 200), -EFBIG, or -errno.
 */
int al_read_small(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint64_t max, char **out, size_t *len);

/*
 * Re-digest rec's body (read through r) and compare with the stored
 * SHA-256.  0 when it matches, -EBADMSG when not, -ENOENT when chunks are
 * missing.
 */
int al_store_check_body(struct al_reader *r, const struct al_record *rec);

/*
 * Bundles admitted into this cache, by the digest over the whole bundle
 * file (its trailer): an incremental bundle names its base this way.
 * note: 0 or -errno.  has: 1 (and *when, the import time), 0, or -errno.
 */
int al_store_note_bundle(struct al_store *s, const uint8_t digest[32]);
int al_store_has_bundle(struct al_store *s, const uint8_t digest[32], uint64_t *when);

/*
 * The ledger of custody's head (cache/ledger.h), kept in info under
 * "ledger_head" (seq u64, then the digest's 64 hex digits) beside the
 * ledger's own anchor file: cutting the ledger's two files together does
 * not reach it.  put: seq 0 clears it (a new chain); 0 or -errno.  get: 1
 * and *seq/digest (65), 0 when there is none, -EBADMSG when unreadable,
 * other -errno.
 */
int al_store_ledger_head_put(struct al_store *s, uint64_t seq, const char digest[65]);
int al_store_ledger_head_get(struct al_store *s, uint64_t *seq, char digest[65]);

/*
 * The registry index's entries under base (the URL before /package/), in
 * key order: one name's versions one after another (in byte order, not
 * semver's), each name's record first when it has one (version NULL,
 * vlen 0, summary the record: al_registry_name_record_split).  Reads
 * through r's snapshot (begun if needed): name, version and summary point
 * into the map and stay valid until al_reader_end(r); the scan itself
 * reads no summary (a caller that reads few of them touches few pages).
 * fn returns 0 to go on.  Returns 0, fn's non-zero value, or -errno.
 */
typedef int (*al_index_fn)(const char *name, size_t nlen, const char *version, size_t vlen, const char *summary,
    size_t slen, void *arg);
int al_store_index_scan(struct al_reader *r, const char *base, size_t blen, al_index_fn fn, void *arg);
/* The index's generation in r's snapshot (begun if needed): equal generations, equal entries. */
int al_store_index_gen(struct al_reader *r, uint64_t *gen);
/* The index's format in r's snapshot (0 when unstamped): a query trusts name records only at the current one. */
int al_store_index_format(struct al_reader *r, uint32_t *format);

/* Delete one entry; -ENOENT if absent. */
int al_store_delete(struct al_store *s, const uint8_t key[AL_KEY_LEN]);

/*
 * rc as the operator should read it: a write's -EIO is -ENOSPC when the
 * cache's file system has less than AL_STORE_FULL_MARGIN bytes left (LMDB
 * says EIO for the short write a full file system gives).  Other rc as is.
 */
#define AL_STORE_FULL_MARGIN (4u << 20)
int al_store_explain(struct al_store *s, int rc);

#endif
