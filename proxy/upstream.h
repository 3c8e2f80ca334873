/*
 * The upstream client: one libcurl multi handle per event loop, driven by
 * that loop through CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION (curl's
 * "multi-socket" pattern).  No call here blocks; no thread per request.
 */
#ifndef AIRLOCK_PROXY_UPSTREAM_H
#define AIRLOCK_PROXY_UPSTREAM_H

#include <curl/curl.h>
#include <event2/event.h>
#include "policy/config.h"

struct up_multi;

/* Called once when a transfer ends (any result); the easy handle is already removed. */
typedef void (*up_done_fn)(CURL *easy, CURLcode result, void *arg);

struct up_multi *up_multi_new(struct event_base *base);
/* Aborts (without callbacks) and frees what is still running. */
void up_multi_free(struct up_multi *m);

/*
 * A new easy handle with the options every upstream request shares: TLS
 * verification on with cfg's CA file, connect timeout, connect-to overrides
 * (upstream.resolve), the parent proxy or none (the environment's *_proxy
 * variables are ignored), no redirects, no content decoding.  Caller owns it.
 */
CURL *up_easy_new(const struct al_config *cfg, struct curl_slist **connect_to);

/* Start easy on m; done(easy, result, arg) runs when it ends. */
int up_start(struct up_multi *m, CURL *easy, up_done_fn done, void *arg);
/* Stop a running transfer without its done callback.  The caller then frees easy. */
void up_cancel(struct up_multi *m, CURL *easy);

#endif
