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
 * on the store writer's thread in its batch (one durable commit, one
 * fdatasync, for the whole purge), never on a worker's loop: the scan reads
 * every record and the flush can take hundreds of ms.  The caller owns ap
 * and keeps it alive until ap->finished(ap) has been called, on the
 * writer's thread, after the commit: ap->n entries deleted, ap->rc 0 or
 * -errno (then the deletions may be lost).  admin_purge_post returns 0, or
 * -EINVAL without a pattern (finished is then not called).
 */
struct admin_purge {
	struct al_writer_job job;  /* first: the writer's callbacks find the struct from it */
	char pattern[2048];
	int n, rc;
	void (*finished)(struct admin_purge *ap);
};
int admin_purge_post(struct admin_purge *ap, const char *target, size_t len);
#endif
