/*
 * Client authentication for the reverse proxy: the request step that asks
 * policy/access.c whether the route needs credentials and whether the
 * request's Authorization carries valid ones, and answers 401 when not.
 *
 * What Elastic Agent sends (elastic-agent 07adab5b internal/pkg/agent/
 * application/upgrade/artifact/config.go Config embeds
 * httpcommon.HTTPTransportSettings, so agent.download.auth.{username,
 * password,api_key,headers} apply; download/fetch.go download() and
 * verify.go build their client with config.Client, so the package, its
 * .sha512 and its .asc all carry them): elastic-agent-libs 2238ac8b
 * transport/httpcommon/httpcommon.go HTTPAuthorization.ToMap puts
 * "Authorization: ApiKey <api_key>" (preferred) or "Basic ..." on every
 * request, unasked.  A 401 is permanent for the Agent (fetch.go: 400, 401,
 * 403, 404, 410 are ErrPermanentHTTP): it does not retry.
 *
 * The credentials never reach an upstream: airlock builds upstream
 * requests itself and copies no client header but the User-Agent
 * (proxy/fetch/upstream.c).  /_airlock/ endpoints are answered before
 * routing, under admin.allow/admin.token, so health stays open.
 *
 * A password not remembered is checked on the login thread (login.c):
 * the request parks and this step runs again with r->login set.
 */
#include "policy/access.h"
#include "proxy/front/conn_impl.h"
#include "proxy/front/http1.h"
#include "proxy/runtime/log.h"
#include "proxy/runtime/server.h"

#include <openssl/crypto.h>

/* The login queue is full: a flood of password checks is refused, not queued without end. */
void conn_login_busy(struct req *r)
{
	al_warn("access", "%s: too many password checks queued, refused %.*s", r->conn->peer,
	    (int)r->http.target_len, r->http.target);
	r->user[0] = '\0';
	conn_reply_simple(r->conn, 503, "text/plain; charset=utf-8", "Retry-After: 1\r\n",
	    "503 Service Unavailable: too many password checks in progress, retry\n");
}

int conn_client_auth(struct req *r, const struct al_route *route)
{
	struct conn *c = r->conn;
	const struct al_config *cfg = r->conf->cfg;
	size_t alen = 0;
	const char *authz = http1_field(&r->http, "Authorization", &alen);
	char hdrs[160];
	struct al_login login;
	enum al_client_verdict v;

	if (r->login != 0) /* checked on the login thread; this step runs again */
		v = r->login > 0 ? AL_CLIENT_OK : AL_CLIENT_REFUSED;
	else
		v = al_client_auth_begin(cfg, route, authz, authz ? alen : 0, r->user, sizeof(r->user), &login);
	switch (v) {
	case AL_CLIENT_OPEN:
	case AL_CLIENT_OK:
		return 0;
	case AL_CLIENT_CHECK:
		if (conn_login_check(r, &login) > 0) {
			OPENSSL_cleanse(&login, sizeof(login));
			return 1;
		}
		OPENSSL_cleanse(&login, sizeof(login));
		conn_login_busy(r);
		return -1;
	case AL_CLIENT_MISSING:
	case AL_CLIENT_REFUSED:
		break;
	}
	r->user[0] = '\0';
	al_warn("access", "%s: client authentication %s for %.*s", c->peer, authz ? "failed" : "missing",
	    (int)r->http.target_len, r->http.target);
	snprintf(hdrs, sizeof(hdrs), "WWW-Authenticate: Basic realm=\"airlock\", charset=\"UTF-8\"\r\n%s",
	    cfg->napi_keys > 0 ? "WWW-Authenticate: ApiKey realm=\"airlock\"\r\n" : "");
	conn_reply_simple(c, 401, "text/plain; charset=utf-8", hdrs, "401 Unauthorized: %s\n",
	    authz ? "these credentials are not valid here" : "credentials are required (clients.users or clients.api_keys)");
	return -1;
}
