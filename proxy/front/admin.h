/*
 * airlock's own endpoints, under AL_RESERVED_PREFIX ("/_airlock/"):
 *   GET  health                  open to every client (container and load-balancer checks)
 *   GET  metrics                 Prometheus text format        } admin.allow CIDRs or
 *   GET  status                  HTML status page              } Authorization: Bearer admin.token
 *   POST purge?pattern=GLOB      delete entries by URL glob    }
 */
#ifndef AIRLOCK_PROXY_ADMIN_H
#define AIRLOCK_PROXY_ADMIN_H

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "cache/store.h"
#include "proxy/fetch/writer.h"

struct al_config;
struct al_reader;

/* s (NULL: nothing) into b as HTML text: <, >, & and " escaped. */
void admin_html_text(struct evbuffer *b, const char *s);

/*
 * Answer into body from the request's configuration cfg; returns the status
 * and sets *ctype, or ADMIN_PURGE for an allowed POST purge with a pattern:
 * the caller runs it with admin_purge_post and answers when it finished.
 */
#define ADMIN_PURGE 0
int admin_handle(const struct al_config *cfg, const char *target, size_t len, int post, int allowed, struct evbuffer *body, const char **ctype);


/*
 * POST purge?pattern=GLOB: the entries whose URL matches, found and deleted
 * on the store writer's thread, never on a worker's loop: the scan reads
 * every record and a commit's flush can take hundreds of ms.  The scan runs
 * in slices (al_store_foreach_slice): one writer job reads at most
 * ADMIN_PURGE_SLICE_ENTRIES records and deletes at most
 * ADMIN_PURGE_SLICE_DELETES of them in the writer's batch; once that batch
 * committed, the next slice goes behind the jobs queued meanwhile.  A purge
 * of a cache of 100,000 entries in one job held every fill's commit (and the
 * clients following a fill, who wait for committed chunks) for the whole
 * scan.  Each slice's deletions are durable when the next slice starts.
 *
 * What a purge deletes: every matching entry stored before it was asked
 * for (a 304 refreshing one meanwhile does not save it: the refresh keeps
 * the key, and finds the entry gone once the scan passed it).  An entry a fill commits while the purge runs is deleted when its
 * key comes after the scan's position, kept when before: it was fetched
 * while the purge ran, either way is a fresh copy.  Whatever is committed
 * after the answer stays.
 *
 * The caller owns ap and keeps it alive until ap->finished(ap) has been
 * called, on the writer's thread, after the last slice's commit: ap->n
 * entries deleted, ap->rc 0 or -errno (a slice's scan or commit failed: the
 * purge stops there, and that slice's deletions may be lost).
 * admin_purge_post returns 0, or -EINVAL without a pattern (finished is
 * then not called).
 */
#define ADMIN_PURGE_SLICE_ENTRIES 2048
#define ADMIN_PURGE_SLICE_DELETES 256

struct admin_purge {
	struct al_writer_job job;  /* first: the writer's callbacks find the struct from it */
	char pattern[2048];
	int n, rc;
	int slices;                /* slices committed, for the log */
	void (*finished)(struct admin_purge *ap);
	/* the writer's own */
	struct al_scan scan;
	uint8_t keys[ADMIN_PURGE_SLICE_DELETES][AL_KEY_LEN];
	int nkeys;
};
int admin_purge_post(struct admin_purge *ap, const char *target, size_t len);
#endif
