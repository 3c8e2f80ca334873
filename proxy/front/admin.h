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

struct al_config;
struct al_reader;

/*
 * The cached Endpoint manifest at url: its manifest_version into mv and when
 * it was published (Last-Modified, else when airlock fetched it).  0, or
 * -ENOENT when not cached, -EINVAL when unreadable (mv says why).  Uses and
 * ends r's snapshot.  For the status page and `airlock status`.
 */
int al_manifest_info(struct al_reader *r, const char *url, char *mv, size_t mvlen, time_t *published);

/* Answer into body from the request's configuration cfg; returns the status and sets *ctype. */
int admin_handle(const struct al_config *cfg, const char *target, size_t len, int post, int allowed, struct evbuffer *body, const char **ctype);

#endif
