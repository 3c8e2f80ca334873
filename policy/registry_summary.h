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
#define AL_REGISTRY_SUMMARY_FORMAT 3

/* Longest index key (al_registry_index_key refuses longer URLs). */
#define AL_REGISTRY_INDEX_KEY_MAX 511

/* In a skeleton's compact JSON only as its own key (a quote in a string value is escaped). */
#define AL_REGISTRY_SKEL_DEPRECATED "\"deprecated\":true"

/*
 * url is <base>/package/<name>/<version> with an optional trailing slash
 * and no query: key gets "<base>\0<name>\0<version>" (so that one name's
 * versions are adjacent under one base).  The key's length, or -EINVAL
 * when url is not a package document's.
 */
int al_registry_index_key(const char *url, size_t len, char key[AL_REGISTRY_INDEX_KEY_MAX + 1]);

/*
 * The summary of a package document (body, len bytes): its skeleton (the
 * summary's scalar fields: what ordering reads; and "deprecated":true when
 * the document carries a deprecation notice, AL_REGISTRY_SKEL_DEPRECATED
 * in the compact text), a newline, then the
 * summary (the table's fields), both compact JSON.  NULL when body is not
 * a JSON object with a string name and version, or on ENOMEM.  Caller
 * frees.
 */
char *al_registry_summary(const char *body, size_t len, size_t *out_len);

#endif
