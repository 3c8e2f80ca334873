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
#define AL_REGISTRY_SUMMARY_FORMAT 5

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

/*
 * A version as the index orders a name's versions (its key's, not the
 * document's): 0 and *v when it parses as semver in under 64 bytes, else
 * -EINVAL (such a version sorts last and is never a name's newest
 * deprecated one).  cmp: >0 when a is newer than b, by semver then by
 * bytes, so that two spellings of one semver ("1.0.0", "1.0.0+b") keep one
 * order in the store and in a query.
 */
struct al_semver;
int al_registry_index_version(const char *ver, size_t vlen, struct al_semver *v);
int al_registry_index_version_cmp(const struct al_semver *a, const char *as, size_t al, const struct al_semver *b,
    const char *bs, size_t bl);

/*
 * The per-name record (format 5): what a list needs of a name's versions
 * besides the newest qualifying one, so that a query reads one record per
 * name instead of every version's summary: the name's newest deprecated
 * version (al_registry_index_version_cmp's order) and its notice as the
 * hole of a rendered entry takes it (packages/deprecated.go
 * PropagateLatestDeprecatedInfoToPackageList at AL_REGISTRY_COMMIT: every
 * version carries it).  Text: "<vlen> <dlen>\n" then the version and the
 * notice.  cache/store.c keeps it under "<base>\0<name>" (so it sorts just
 * before the name's versions) when at least one version is deprecated.
 */
struct al_registry_name_parts {
	const char *version, *dep;
	size_t vlen, dlen;
};
/* The record's text for version (vlen bytes) and notice (dlen bytes); caller frees; NULL on ENOMEM. */
char *al_registry_name_record(const char *version, size_t vlen, const char *dep, size_t dlen, size_t *out_len);
/* Its parts (pointers into text); -EINVAL when text is not such a record. */
int al_registry_name_record_split(const char *text, size_t len, struct al_registry_name_parts *p);

#endif
