/*
 * Elastic's OpenPGP signatures checked before an object is admitted: the
 * detached signature (URL.asc for agent and beat artifacts, URL.sig for
 * package archives) must verify with one of the keys the operator pinned
 * (upstream.pgp_keys).  RNP (librnp, Debian's librnp-dev) does the OpenPGP:
 * a library with no agent, keyring directory or subprocess, that takes keys
 * and data from memory or callbacks.  A fresh RNP context per check: no
 * state is shared between worker threads.
 */
#ifndef AIRLOCK_CACHE_PGP_H
#define AIRLOCK_CACHE_PGP_H

#include <stddef.h>
#include <stdint.h>
#include "cache/store.h"

struct al_pgp;

/* Read the armored (or binary) public keys; each must hold a key.  0 or -errno with err. */
int al_pgp_load(char *const *paths, int n, struct al_pgp **out, char *err, size_t errlen);
void al_pgp_free(struct al_pgp *p);

/*
 * Does sig (a detached signature) verify over the body of obj_id, len bytes
 * read through r (streamed from the map, never held whole), with a pinned
 * key?  0 yes; -EBADMSG no (err says why).  Ends r's snapshot.
 */
int al_pgp_verify_object(const struct al_pgp *p, struct al_reader *r, uint64_t obj_id, uint64_t len,
    const void *sig, size_t siglen, char *err, size_t errlen);

/*
 * The same check over a body pulled through rd (0, or -errno to stop),
 * for bodies that are not in the cache (a bundle being inspected).  RNP
 * reads until rd gives 0 bytes.  keyid[41] gets the signing key's id
 * (hex) when the signature names one.  0 verified; -EBADMSG no.
 */
typedef int (*al_pgp_read_fn)(void *ctx, void *buf, size_t want, size_t *got);
int al_pgp_verify_stream(const struct al_pgp *p, al_pgp_read_fn rd, void *ctx, const void *sig, size_t siglen,
    char keyid[41], char *err, size_t errlen);

#endif
