/*
 * Bundles: cache entries carried across an air gap in one file.
 *
 *   "ALKBNDL3"
 *   header:     'H' | u32 length | JSON {"format":3, "created", "airlock": version,
 *               "entries", "body_bytes", "key_id"?, "base"?: {"digest": hex, "entries": n},
 *               "custody"?: the exporting side's ledger record of this export, as its line}
 *   listing:    'L' | u32 length | JSON {"entries": [{"url", "status", "size",
 *               "sha256": the body's, "record": SHA-256 of the entry's record}, ...]}
 *               in file order, sidecars (.sha512, .asc, .sig) first
 *   per entry:  'E' | u32 record length | record (cache/record.h) | body
 *   trailer:    'T' | u64 entry count | SHA-256 of every byte before it
 *   signature:  'S' | u16 length | Ed25519 signature of the SHA-256 of every
 *               byte up to the listing's end (signed bundles only)
 *
 * What the signature covers: the magic, the header (signer's key id, base)
 * and the listing; the listing names each entry's record and body by
 * SHA-256, and every reader holds each entry to it (same record digest, URL,
 * size and body digest, same count).  So a signed listing vouches for every
 * byte, and a reviewer can trust the list before any body is read; the
 * whole-file digest in the trailer still catches damage anywhere.
 *
 * Version 2 files ("ALKBNDL2": no listing; the signature signs the
 * whole-file digest) and version 1 ("ALKBNDL1": no header, no signature)
 * are still read.  The record carries the upstream's status, header lines
 * and validators exactly as stored, the body length and the body's SHA-256.
 * Writing and reading both stream: no body is held whole.
 *
 * An incremental bundle ("base" in its header) carries only the entries
 * that are new or changed (body digest or validators) against the base
 * bundle, named by the base's whole-file digest; a cache records the
 * digest of every bundle it admits (al_store_note_bundle), so a delta is
 * admitted only onto a cache that holds its base.
 */
#ifndef AIRLOCK_CACHE_BUNDLE_H
#define AIRLOCK_CACHE_BUNDLE_H

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "cache/store.h"

#define AL_KEY_ID_LEN 16
#define AL_CUSTODY_MAX 8192  /* a ledger record carried in a header */   /* hex digits of SHA-256(raw Ed25519 public key) */

struct al_bundle_stats {
	uint64_t entries, bytes;
	uint64_t added, changed; /* against the base (all added without one) */
	uint64_t unchanged;      /* with a base: entries left out, the same as in the base */
};

/* An entry's state against the base of a delta. */
enum { AL_ENTRY_ADDED = 1, AL_ENTRY_CHANGED, AL_ENTRY_UNCHANGED };

/* Called for each entry a bundle will carry, in file order; rec valid during the call. */
typedef void (*al_plan_fn)(const struct al_record *rec, int change, void *arg);

/* The entries of a bundle (read without its bodies), for --since. */
struct al_bundle_index;
int al_bundle_index_read(FILE *f, struct al_bundle_index **out, char *err, size_t errlen);
void al_bundle_index_free(struct al_bundle_index *ix);
/* The indexed bundle's whole-file digest (32 bytes, owned by ix). */
const uint8_t *al_bundle_index_digest(const struct al_bundle_index *ix);

struct al_export_opts {
	const char *match;                   /* URL glob, NULL: all */
	EVP_PKEY *sign;                      /* Ed25519 private key, NULL: unsigned */
	const struct al_bundle_index *base;  /* only what is new or changed against it, NULL: all */
	int dry_run;                         /* plan only: nothing is written, f may be NULL */
	al_plan_fn each;                     /* told each entry carried, NULL: nobody */
	void *arg;
	uint8_t *digest;                     /* [32]: the written bundle's whole-file digest, NULL: not wanted */
	/*
	 * Called once the entries are planned, before anything is written:
	 * returns a malloc'd line (the connected side's ledger record of this
	 * export) that the header carries, covered by the signature; or NULL
	 * with *failed set to stop the export (err filled by the callee).
	 */
	char *(*custody)(const struct al_bundle_stats *st, void *arg, int *failed, char *err, size_t errlen);
	void *custody_arg;
};

/* Write a bundle to f.  0 or -errno; err says why. */
int al_bundle_export(struct al_store *s, FILE *f, const struct al_export_opts *o, struct al_bundle_stats *st,
    char *err, size_t errlen);

/* What a verified bundle is. */
struct al_bundle_info {
	int version;
	uint64_t entries, body_bytes;
	uint8_t digest[32];          /* over the whole file: the bundle's identity */
	uint8_t signed_digest[32];   /* what a signature signs: v3 up to the listing's end, else = digest */
	char created[32], airlock[32]; /* from the header: when, by which airlock version ("" if absent) */
	uint64_t listed;             /* v3: entries in the listing */
	char custody[AL_CUSTODY_MAX]; /* v3: the exporting side's ledger record, as a line; "" if none */
	char key_id[AL_KEY_ID_LEN + 1]; /* the signer's, from the header; "" if none */
	int is_signed;
	unsigned char sig[128];
	size_t sig_len;
	int is_delta;
	uint8_t base[32];            /* a delta's base, by its digest */
	uint64_t base_entries;
};

/* Read the whole bundle and check every digest; admits nothing.  0 or -errno. */
int al_bundle_verify(FILE *f, struct al_bundle_info *info, char *err, size_t errlen);

struct al_pgp;
/* What inspect learns of one entry, as it passes; valid during the call. */
enum { AL_PGP_ABSENT, AL_PGP_NOT_CHECKED, AL_PGP_VERIFIED, AL_PGP_BAD };
struct al_inspect_entry {
	const struct al_record *rec;
	uint64_t offset;             /* of the entry in the file */
	int index;                   /* 1-based, in file order */
	uint8_t sha512[64];          /* of the body (checked against a .sha512 by the caller) */
	int pgp;                     /* its .asc/.sig met earlier in the file: checked, or not (no keys) */
	char pgp_key[41];            /* the signing key's id when checked */
	char pgp_why[200];
	const unsigned char *small;  /* a sidecar's body (.sha512, .asc, .sig up to 64 KiB), else NULL */
	size_t small_len;
};
typedef int (*al_inspect_fn)(const struct al_inspect_entry *e, void *arg);
typedef void (*al_listing_fn)(uint64_t listed, void *arg);

/*
 * al_bundle_verify() that also reports each entry as its body is read and
 * checked (digests; OpenPGP with keys, when its signature came first).  On
 * a damaged bundle, the entries before the damage have been reported and
 * err says where it broke.  listing (may be NULL) is told the listing's
 * size once read.  0 or -errno.
 */
int al_bundle_inspect(FILE *f, const struct al_pgp *keys, al_inspect_fn fn, al_listing_fn listing, void *arg,
    struct al_bundle_info *info, char *err, size_t errlen);

/*
 * Is a verified bundle signed by one of the trusted keys?  0 yes;
 * -ENOKEY unsigned; -EKEYREJECTED signed by a key not trusted;
 * -EBADMSG the signature does not verify (altered after signing).
 */
int al_bundle_check_signature(const struct al_bundle_info *info, EVP_PKEY *const *trusted, int ntrusted,
    char *err, size_t errlen);

/* What import did, entry by entry. */
struct al_import_stats {
	uint64_t added, updated, skipped, rejected, bytes;
};

struct al_import_opts {
	EVP_PKEY *const *trusted;    /* a valid signature by one of these is required; none: not checked */
	int ntrusted;
	/*
	 * May be NULL.  Called once the whole bundle checked out, before anything
	 * is published: the source's own say (a split bundle: every part is the
	 * one its index names).  0 publishes; -errno refuses, with err.
	 */
	int (*source_ok)(void *arg, char *err, size_t errlen);
	void *source_arg;
};

/* How an import ended, for the caller's words and the ledger. */
enum {
	AL_IMPORT_ADMITTED,          /* every entry checked out and is in the cache */
	AL_IMPORT_REFUSED,           /* not a sound bundle (damaged, truncated, altered): nothing admitted */
	AL_IMPORT_UNTRUSTED,         /* unsigned, or not signed by a trusted key: nothing admitted */
	AL_IMPORT_NO_BASE,           /* a delta whose base this cache has not imported: nothing admitted */
	AL_IMPORT_FAILED,            /* a sound bundle the cache could not take (disk full...): st says how far */
};

/*
 * Verify and admit a bundle in one read of f (from its start; a pipe will
 * do).  A version-3 bundle's signed listing is checked first (the signature
 * against trusted keys, read from the file's end, and a delta's base); then
 * each entry is held to the listing and its body to its digest as it
 * streams into a pending object of the store.  Only when the whole file,
 * its trailer and (with trusted keys) its signature checked out are the
 * entries published, each through al_fill_commit(), never replacing a newer
 * stored response with an older one; admitted entries are pinned and the
 * bundle is noted as held (al_store_note_bundle).  Otherwise, and when the
 * process dies before that, nothing is published: the pending objects are
 * dropped (by the next al_store_open() after a crash).  Older formats are
 * read the same way; their signature covers the whole file and is checked
 * at its end, still before anything is published.
 * info is filled as al_bundle_verify() does (as far as the file was read);
 * *outcome says how it ended.  0 or -errno; err says why.
 */
int al_bundle_import(struct al_store *s, FILE *f, const struct al_import_opts *o, struct al_bundle_info *info,
    struct al_import_stats *st, int *outcome, char *err, size_t errlen);

/* Ed25519 keys: the key id, a new pair written to dir (bundle.key 0600, bundle.pub), loading. */
void al_bundle_key_id(EVP_PKEY *pk, char out[AL_KEY_ID_LEN + 1]);
int al_bundle_keygen(const char *dir, char key_id[AL_KEY_ID_LEN + 1], char *err, size_t errlen);

/*
 * pk's private key as PEM in a new file at path, created 0600 and only if
 * absent (never readable by others, never over an existing key): the
 * bundle signing key and the interception CA's key.  0 or -errno.
 */
int al_write_private_key(const char *path, EVP_PKEY *pk, char *err, size_t errlen);
/*
 * Before writing a new key pair a and b into dir: dir made (mode) if
 * missing, and neither file there yet (airlock never overwrites a key).
 * "what" names the pair in the message ("key", "CA").
 */
int al_new_key_files(const char *dir, mode_t mode, const char *a, const char *b, const char *what,
    char *err, size_t errlen);
int al_bundle_load_key(const char *path, int private_key, EVP_PKEY **out, char *err, size_t errlen);

#endif
