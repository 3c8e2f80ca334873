/*
 * What the cache holds, for the status page and /_airlock/metrics: the
 * Mirrored card, and readiness: for each Stack
 * version the cache holds Elastic Agent packages for, what `airlock doctor
 * --stack V` says (cache/readiness.c), and the age of its Endpoint manifest.
 * It reads every package document, so it is computed on a thread of its
 * own, never on a worker's loop, and only while the pages are asked for;
 * they show its last result.
 */
#ifndef AIRLOCK_PROXY_READINESS_H
#define AIRLOCK_PROXY_READINESS_H

#include <event2/buffer.h>

/* Start the thread (after the store is open); 0 or -errno.  Stop joins it (before the store closes). */
int readiness_start(void);
void readiness_stop(void);

/* The last result, as Prometheus lines / as the status page's card, into b.  Any thread; never blocks on a read. */
void readiness_metrics(struct evbuffer *b);
void readiness_html(struct evbuffer *b);
/* The status page's Mirrored card's content (pinned agent versions, package documents, Endpoint manifests). */
void readiness_mirrored_html(struct evbuffer *b);

#endif
