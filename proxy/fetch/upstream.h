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

/*
 * Called once when a transfer ends (any result); the easy handle is already removed.
 * local_errno: the transfer could not connect because airlock could not open a socket
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM: this host's limits, not the upstream's fault, which
 * libcurl reports as CURLE_COULDNT_CONNECT all the same); else 0.
 */
typedef void (*up_done_fn)(CURL *easy, CURLcode result, int local_errno, void *arg);

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

/*
 * Aim e at url: directly, or, with upstream.parents, at parent number
 * `parent` (the connection goes to the parent; the request line carries url
 * in absolute form, Host names url's authority, and the parent's
 * credentials go as Proxy-Authorization), so every tier caches under the
 * canonical URL.  parent < 0: directly.  Returns hdrs with the added fields
 * (the caller owns it and sets CURLOPT_HTTPHEADER).
 */
struct curl_slist *up_target(CURL *e, const struct al_config *cfg, const char *url, int parent,
    struct curl_slist *hdrs);

/* Start easy on m; done(easy, result, arg) runs when it ends. */
int up_start(struct up_multi *m, CURL *easy, up_done_fn done, void *arg);
/* Stop a running transfer without its done callback.  The caller then frees easy. */
void up_cancel(struct up_multi *m, CURL *easy);

/*
 * One raw line of an upstream response head (HTTP/1), as libcurl hands it over
 * (line ending included).  Returns RESP_STATUS (sets *status), RESP_END
 * (the empty line), RESP_FIELD (name/value trimmed, pointing into line) or
 * RESP_BAD (*why says what is wrong: obs-fold, a control byte inside, no name).
 */
enum up_resp_line { RESP_STATUS, RESP_END, RESP_FIELD, RESP_BAD };
enum up_resp_line up_response_line(const char *line, size_t len, int *status,
    const char **name, size_t *nlen, const char **value, size_t *vlen, const char **why);

#endif
