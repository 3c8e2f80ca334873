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

/* s (NULL: nothing) into b as HTML text: <, >, & and " escaped. */
void admin_html_text(struct evbuffer *b, const char *s);

/* Answer into body from the request's configuration cfg; returns the status and sets *ctype. */
int admin_handle(const struct al_config *cfg, const char *target, size_t len, int post, int allowed, struct evbuffer *body, const char **ctype);

#endif
