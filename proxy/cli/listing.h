/*
 * The reviewer's list of a bundle's entries, as `airlock inspect` and
 * `airlock export --dry-run` print it: text for a person, JSON or CSV for
 * a script.  Rows are collected, then checked against each other (an
 * artifact against its .sha512 in the same list) and printed once.
 */
#ifndef AIRLOCK_PROXY_LISTING_H
#define AIRLOCK_PROXY_LISTING_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include "cache/bundle.h"
#include "policy/artifact.h"

enum { LISTING_TEXT, LISTING_JSON, LISTING_CSV };

struct row {
	char *url;                 /* owned */
	struct al_artifact what;
	int status;
	uint64_t size, offset;
	uint8_t sha256[32], sha512[64];
	int have_sha512;           /* sha512 of the body known (inspect) */
	uint8_t file512[64];       /* a .sha512 entry: the digest it states */
	int file512_ok;
	int pgp;                   /* AL_PGP_* */
	char pgp_key[41], pgp_why[200];
	const char *change;        /* dry run: "added" / "changed", else NULL */
	uint32_t flags;            /* the record's (AL_REC_VERIFIED, AL_REC_SIGNED) */
	char check512[64], checksig[256];  /* filled by listing_check */
};

struct listing {
	struct row *v;
	size_t n, cap;
	int dry_run;
	uint64_t bad;              /* entries whose .sha512 or signature failed */
};

/* Append a row for rec (url copied); NULL when out of memory. */
struct row *listing_add(struct listing *l, const struct al_record *rec);
/* Decide each row's .sha512 and signature columns from the rows beside it. */
void listing_check(struct listing *l);
/* Print facts (an object of the bundle's facts, borrowed) and the rows; error: where it broke, or NULL. */
void listing_print(FILE *f, int fmt, const struct listing *l, json_t *facts, const char *const *fact_lines,
    const char *error);
void listing_free(struct listing *l);

#endif
