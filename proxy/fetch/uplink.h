/*
 * Uplink state: each upstream (scheme://host:port) is online or offline on
 * its own.  Workers read the state lock-free on every request; a transfer
 * that fails to connect, resolve, handshake or answer in time marks its
 * upstream offline at once; the probe loop (main thread) brings it back.
 */
#ifndef AIRLOCK_PROXY_UPLINK_H
#define AIRLOCK_PROXY_UPLINK_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>
#include "policy/config.h"

struct uplink;

/* Build the table from the configured routes; forced offline when cfg->offline. */
int uplink_init(const struct al_config *cfg);
void uplink_shutdown(void);
/* A reloaded configuration for the probes (main thread). */
void uplink_set_config(const struct al_config *cfg);
/* Start probing from the main thread's loop. */
int uplink_start_probes(struct event_base *base, const struct al_config *cfg);

struct uplink *uplink_find(const char *upstream_base);
/* Find or add (forward-proxy hosts appear at run time); NULL if the table is full. */
struct uplink *uplink_get(const char *upstream_base);
const char *uplink_name(const struct uplink *u);
int uplink_online(const struct uplink *u);
int uplink_forced(const struct uplink *u);
void uplink_failed(struct uplink *u, const char *why);
void uplink_succeeded(struct uplink *u);

/* Append the "upstreams" JSON array to buf. */
void uplink_json(struct evbuffer *buf);
/* Prometheus lines: per-upstream state, fetches, errors. */
void uplink_metrics(struct evbuffer *buf);
/* HTML table rows for the status page. */
void uplink_html(struct evbuffer *buf);
void uplink_count_fetch(struct uplink *u);
void uplink_count_error(struct uplink *u);

#endif
