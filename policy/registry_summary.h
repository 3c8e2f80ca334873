/*
 * What the offline registry keeps of a package document: the index key
 * that places it (base, name, version) and its summary, a projection of
 * the document onto the fields the /search and /categories rules
 * (policy/registry.c) read and answer with.  cache/store.c calls these in
 * the transaction that admits or drops a document; proxy/ reads the
 * summaries back.  Pure functions: no I/O.
 */
#ifndef AIRLOCK_POLICY_REGISTRY_SUMMARY_H
#define AIRLOCK_POLICY_REGISTRY_SUMMARY_H

#include <stddef.h>

/*
 * The summary's format: bump it with every change to the field table in
 * registry_summary.c, and every store rebuilds its index at the next start.
 */
#define AL_REGISTRY_SUMMARY_FORMAT 4

/* Longest index key (al_registry_index_key refuses longer URLs). */
#define AL_REGISTRY_INDEX_KEY_MAX 511


/*
 * url is <base>/package/<name>/<version> with an optional trailing slash
 * and no query: key gets "<base>\0<name>\0<version>" (so that one name's
 * versions are adjacent under one base).  The key's length, or -EINVAL
 * when url is not a package document's.
 */
int al_registry_index_key(const char *url, size_t len, char key[AL_REGISTRY_INDEX_KEY_MAX + 1]);

/*
 * What the index holds of a package document (body, len bytes): a line
 * "<klen> <slen> <hole> <dlen>\n", then four parts back to back: its
 * skeleton (klen bytes of compact JSON of what the filters and the order
 * read: name, version, release, type, format_version, conditions,
 * discovery), the summary (slen bytes, compact JSON of the table's
 * fields), its rendered /search entry (the rest, the notice's hole at
 * offset hole) and its own notice (dlen bytes, 0 when it carries none: a
 * name's newest deprecated version is found without parsing anything;
 * al_registry_render, policy/registry.h).  NULL when body is not a JSON
 * object with a string name and version, or on ENOMEM.  Caller frees.
 */
char *al_registry_summary(const char *body, size_t len, size_t *out_len);

/* The parts of al_registry_summary's text (pointers into it); -EINVAL when it is not of this format. */
struct al_registry_summary_parts {
	const char *skel, *summary, *entry, *dep; /* dep NULL when the document carries no notice */
	size_t klen, slen, elen, hole, dlen;
};
int al_registry_summary_split(const char *text, size_t len, struct al_registry_summary_parts *p);

#endif
