/*
 * The parts of the server above runtime, as runtime calls them: client
 * connections, TLS and hot bodies (front), the curl multi, uplinks, fills
 * and the store writer (fetch).  runtime/server.c includes none of their
 * headers: it calls this table (struct al_server_parts), which the program
 * (proxy/cli) hands it before it starts.
 */
#ifndef AIRLOCK_PROXY_SERVE_H
#define AIRLOCK_PROXY_SERVE_H

#include "proxy/runtime/server.h"

extern const struct al_server_parts al_serve_parts;

#endif
