/*
 * A package registry query (/search, /categories) answered from the
 * registry index the store keeps (cache/store.h regidx) with the
 * registry's rules (policy/registry.h): the scan that feeds an
 * al_registry_run each name's versions, newest first, reading only what
 * the run needs.  Shared by the offline registry's query threads
 * (proxy/front/offline_registry.c) and readiness (cache/readiness.c,
 * Kibana's list).  Reads many records: never on a worker's loop.
 */
#ifndef AIRLOCK_CACHE_REGISTRY_QUERY_H
#define AIRLOCK_CACHE_REGISTRY_QUERY_H

#include "cache/store.h"
#include "policy/registry.h"

#include <stddef.h>

/*
 * Feed run every indexed version under base (blen bytes: the URL before
 * /package/) in rd's snapshot (begun if needed).  The run must be
 * finished (al_registry_run_finish) before rd's snapshot ends: it keeps
 * pointers into it.  *ndocs gets how many versions were offered.  stop
 * (may be NULL) is read at every entry: non-zero cancels (-ECANCELED).
 * 0 or -errno.
 */
int al_registry_index_feed(struct al_reader *rd, const char *base, size_t blen, struct al_registry_run *run,
    const int *stop, size_t *ndocs);

/*
 * The /search answer to q (the caller's parsed query) from rd's snapshot,
 * a new string (caller frees); rd's snapshot is ended.  NULL on failure
 * (*rc says why when rc is not NULL).
 */
char *al_registry_index_search(struct al_reader *rd, const char *base, size_t blen, const struct al_registry_query *q,
    int *rc);

#endif
