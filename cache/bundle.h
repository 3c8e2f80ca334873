/*
 * Bundles: cache entries carried across an air gap in one file.
 *
 *   "ALKBNDL2"
 *   header:     'H' | u32 length | JSON {"format":2, "created", "key_id"?,
 *               "base"?: {"digest": hex, "entries": n}}
 *   per entry:  'E' | u32 record length | record (cache/record.h) | body
 *   trailer:    'T' | u64 entry count | SHA-256 of every byte before it
 *               (the header, the signer's key id and the count included)
 *   signature:  'S' | u16 length | Ed25519 signature of that SHA-256
 *               (signed bundles only)
 *
 * Version 1 files ("ALKBNDL1": no header, no signature) are still read.
 * The record carries the upstream's status, header lines and validators
 * exactly as stored, the body length and the body's SHA-256.  Writing and
 * reading both stream: no body is held whole.  A reader checks each body
 * against its record and the whole file against the trailer: integrity.
 * The signature, checked against the keys an operator trusts, is the
 * authenticity: whoever swaps the file cannot sign it.
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

#define AL_KEY_ID_LEN 16   /* hex digits of SHA-256(raw Ed25519 public key) */

struct al_bundle_stats {
	uint64_t entries, bytes;
	uint64_t unchanged;      /* with a base: entries left out, the same as in the base */
};

/* The entries of a bundle (read without its bodies), for --since. */
struct al_bundle_index;
int al_bundle_index_read(FILE *f, struct al_bundle_index **out, char *err, size_t errlen);
void al_bundle_index_free(struct al_bundle_index *ix);

struct al_export_opts {
	const char *match;                   /* URL glob, NULL: all */
	EVP_PKEY *sign;                      /* Ed25519 private key, NULL: unsigned */
	const struct al_bundle_index *base;  /* only what is new or changed against it, NULL: all */
};

/* Write a bundle to f.  0 or -errno; err says why. */
int al_bundle_export(struct al_store *s, FILE *f, const struct al_export_opts *o, struct al_bundle_stats *st,
    char *err, size_t errlen);

/* What a verified bundle is. */
struct al_bundle_info {
	int version;
	uint64_t entries, body_bytes;
	uint8_t digest[32];          /* over the whole file: the bundle's identity */
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

/*
 * Admit a bundle al_bundle_verify() accepted (f rewound by the caller or
 * not: it seeks to the start): entry by entry, each atomically, never
 * replacing a newer stored response with an older one; admitted entries
 * are pinned.  Then the bundle is noted as held by the cache.
 */
int al_bundle_admit(struct al_store *s, FILE *f, const struct al_bundle_info *info, struct al_import_stats *st,
    char *err, size_t errlen);

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
