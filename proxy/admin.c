#include "proxy/admin.h"
#include "policy/route.h"
#include "proxy/server.h"
#include "proxy/uplink.h"

#include <string.h>
#include <time.h>

static int is(const char *path, size_t len, const char *name)
{
	size_t pl = strlen(AL_RESERVED_PREFIX), nl = strlen(name);

	if (len < pl + nl || memcmp(path + pl, name, nl) != 0)
		return 0;
	return len == pl + nl || path[pl + nl] == '?';
}

static void health(struct evbuffer *b)
{
	struct al_store_stats st = {0};

	al_store_stats(srv.store, &st);
	evbuffer_add_printf(b, "{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%lld,\"upstreams\":",
	    AIRLOCK_VERSION, (long long)(time(NULL) - srv.started));
	uplink_json(b);
	evbuffer_add_printf(b, ",\"cache\":{\"entries\":%llu,\"bytes\":%llu,\"max_size\":%llu,\"evictions\":%llu}",
	    (unsigned long long)st.entries, (unsigned long long)st.bytes,
	    (unsigned long long)srv.cfg->cache_max_size, (unsigned long long)st.evictions);
	evbuffer_add_printf(b, ",\"requests\":{\"total\":%llu,\"hits\":%llu,\"misses\":%llu,"
	    "\"stale\":%llu,\"revalidated\":%llu,\"collapsed\":%llu,\"passed\":%llu,"
	    "\"upstream_fetches\":%llu,\"upstream_errors\":%llu}}\n",
	    (unsigned long long)srv.stats.requests, (unsigned long long)srv.stats.hits,
	    (unsigned long long)srv.stats.misses, (unsigned long long)srv.stats.stale,
	    (unsigned long long)srv.stats.revalidated, (unsigned long long)srv.stats.collapsed,
	    (unsigned long long)srv.stats.passes, (unsigned long long)srv.stats.upstream_fetches,
	    (unsigned long long)srv.stats.upstream_errors);
}

int admin_handle(const char *path, size_t len, struct evbuffer *body, const char **ctype)
{
	if (is(path, len, "health")) {
		*ctype = "application/json";
		health(body);
		return 200;
	}
	*ctype = "text/plain";
	evbuffer_add_printf(body, "unknown airlock endpoint; try %shealth\n", AL_RESERVED_PREFIX);
	return 404;
}
