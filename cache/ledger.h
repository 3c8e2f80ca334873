/*
 * The ledger of custody: one JSON line per export and import in the cache
 * directory (ledger.jsonl), append-only and hash-chained.
 *
 *   {"seq":N, "time", "host", "airlock", ...what happened...,
 *    "prev": digest of record N-1 (64 zeros for the first),
 *    "digest": SHA-256 of this line's bytes before ',"digest"'}
 *
 * A record edited by hand no longer matches its own digest; one whose
 * digest was recomputed breaks the next record's "prev"; a record removed
 * or inserted breaks "seq" and "prev".  The chain alone cannot tell that
 * records were cut from its end, so each append also writes the head's seq
 * and digest to a second file, ledger.head (a new file renamed over the old,
 * after the record is durable): a ledger shorter than its anchor, or whose
 * record at the anchor's seq has another digest, is reported as cut, naming
 * the records.  The anchor is written after the record, so it may be one
 * record behind (a crash between the two), never ahead.  Both files cut
 * together are caught by the second anchor, the same head kept in the
 * cache's LMDB (al_store_ledger_head_put, info "ledger_head"), written
 * after the file's anchor under the same lock and checked the same way
 * (when the caller passes the store).  A ledger without an anchor (written
 * by an airlock before it) still reads; what neither anchor catches is the
 * cache and the ledger replaced together, so `airlock ledger --verify`
 * still prints the head's digest to note elsewhere (the other side, a paper
 * log).  Appends are serialized with flock(2), so two imports at once still
 * chain, and the reader holds the lock while it reads both files.
 *
 * Across the gap: an export appends a "started" record before it writes
 * the bundle, and the bundle's header carries that record's line (under
 * the signature); import appends it, byte for byte, inside a "custody"
 * record ("record_line"), before its own.  The air-gapped side then holds
 * the connected side's record, checkable against its own digest and
 * against the connected side's ledger.
 */
#ifndef AIRLOCK_CACHE_LEDGER_H
#define AIRLOCK_CACHE_LEDGER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct al_store; /* cache/store.h: the cache whose ledger it is, which keeps a second anchor */

#define AL_LEDGER_FILE "ledger.jsonl"
#define AL_LEDGER_HEAD_FILE "ledger.head"

/*
 * Append rec (borrowed; its members follow seq, time, host, airlock; prev
 * and digest are added) to dir's ledger, creating it.  A ledger whose last
 * record is unreadable is not appended to (-EBADMSG): a break is never
 * buried under new records.  digest_out (65, may be NULL) gets the new
 * record's digest, line_out (may be NULL) the line written, without its
 * newline, malloc'd.  s (may be NULL) is the cache at dir: its anchor is
 * checked before and moved after, as ledger.head is.  0 or -errno with err.
 */
int al_ledger_append(const char *dir, struct al_store *s, json_t *rec, char digest_out[65], char **line_out, char *err,
    size_t errlen);

/*
 * A record carried from the other side (a bundle's "custody" line): does
 * it match its own digest?  0 yes (digest_out, 65, gets it), -EBADMSG no.
 */
int al_ledger_check_line(const char *line, char digest_out[65]);

/*
 * Read dir's ledger, calling fn (may be NULL) with each record in order
 * (borrowed) while the chain holds.  0 when intact (also when there is no
 * ledger yet); -EBADMSG at the first bad record: *bad is its number (1-based)
 * and err says what is wrong; other -errno for I/O.  *n gets the number of
 * good records, head (65) the last good digest.  s (may be NULL: then
 * ledger.head only) is the cache at dir, whose anchor is checked too.
 */
typedef int (*al_ledger_fn)(json_t *rec, void *arg);
int al_ledger_read(const char *dir, struct al_store *s, al_ledger_fn fn, void *arg, uint64_t *n, uint64_t *bad,
    char head[65], char *err, size_t errlen);

/*
 * Set a broken ledger aside to start a new chain (`airlock ledger
 * --new-chain`, run with no export or import under way): under its lock,
 * ledger.jsonl and ledger.head are renamed to <name>.<UTC time>.old and
 * the cache's anchor (s, may be NULL) is cleared.  moved (cap bytes) gets
 * the ledger's new path, "" when there was no ledger file.  0 or -errno
 * with err.  The caller appends the new chain's first record, which names
 * them.
 */
int al_ledger_new_chain(const char *dir, struct al_store *s, char *moved, size_t cap, char *err, size_t errlen);

#endif
