/*
 * Blind CONNECT tunnels: bytes relayed both ways, not cached.  The tunnel
 * takes over the client's bufferevent, connects to host:port (through
 * upstream.resolve when it names that host:port), answers the client 200
 * or 502, and frees everything when either side is done.
 */
#ifndef AIRLOCK_PROXY_TUNNEL_H
#define AIRLOCK_PROXY_TUNNEL_H

#include <event2/bufferevent.h>
#include "proxy/server.h"

/* Takes ownership of client (its callbacks are replaced). */
void tunnel_start(struct worker *w, struct bufferevent *client, const char *host, int port);

#endif
