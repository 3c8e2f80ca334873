/*
 * Blind CONNECT tunnels: bytes relayed both ways, not cached.  The tunnel
 * takes over the client's bufferevent, connects to host:port (through
 * upstream.resolve when it names that host:port), answers the client 200
 * or 502, and frees everything when either side is done.
 */
#ifndef AIRLOCK_PROXY_TUNNEL_H
#define AIRLOCK_PROXY_TUNNEL_H

#include <event2/bufferevent.h>
#include <stdint.h>
#include "proxy/runtime/server.h"

struct tunnel;

/*
 * Called once when the tunnel ends, just before it frees itself: the status
 * the client got (200, or 502 when the target could not be reached) and the
 * bytes relayed each way.  Not called after tunnel_abort().
 */
typedef void (*tunnel_done_fn)(void *arg, int status, uint64_t client_to_target, uint64_t target_to_client);

/* Takes ownership of client (its callbacks are replaced).  NULL if out of memory (client freed, done not called). */
struct tunnel *tunnel_start(struct worker *w, const struct al_config *cfg, struct bufferevent *client, const char *host, int port,
    tunnel_done_fn done, void *arg);
/* End the tunnel now (shutdown, the owner goes away); done is not called. */
void tunnel_abort(struct tunnel *t);

#endif
