/*
 * The configuration as requests and fills see it: pinned.
 *
 * A reload (SIGHUP) makes a new struct al_conf current; it never changes
 * one in use.  A request takes a reference when it starts (al_conf_hold on
 * its worker's) and drops it when it ends; a fill does the same for its
 * transfer.  Every decision of theirs reads the one configuration they
 * pinned, so a parent index, a rule or a timeout chosen under one
 * configuration is never applied under another (Varnish's VCL_Ref/VCL_Rel).
 * A configuration is freed, with its OpenPGP keys and its connect-to list,
 * when the last holder lets go and it is no longer current: reloads are
 * unlimited and cost no memory once the requests of the old one are done.
 */
#ifndef AIRLOCK_PROXY_CONF_H
#define AIRLOCK_PROXY_CONF_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdint.h>

#include "policy/config.h"

struct al_pgp;

struct al_conf {
	const struct al_config *cfg;
	const struct al_pgp *pgp;          /* cfg's upstream.pgp_keys, loaded with it; NULL without */
	struct curl_slist *connect_to;     /* upstream.resolve as curl's CONNECT_TO list, built once */
	uint64_t gen;                      /* 1, 2, ...: which reload made it */
	atomic_int refs;                   /* holders, the "current" slot counting as one */
	int owns_cfg;                      /* cfg is freed with it (reloads; not the starting one) */
};

/*
 * Make cfg (with its keys pgp) the current configuration.  The conf takes
 * pgp; it takes cfg only when owns_cfg (the starting configuration stays the
 * caller's, who frees it after al_conf_shutdown).  The previous current one
 * loses its "current" reference.  Returns 0 or -ENOMEM (nothing changed,
 * pgp still the caller's).
 */
int al_conf_publish(struct al_config *cfg, struct al_pgp *pgp, int owns_cfg);
/* The current configuration, pinned for the caller: one reference, for al_conf_release.  Any thread. */
struct al_conf *al_conf_pin(void);
/* The generation of the current configuration: cheap, to tell whether a pinned one is still current. */
uint64_t al_conf_current_gen(void);
/* One more reference on a configuration the caller already holds. */
struct al_conf *al_conf_hold(struct al_conf *c);
/* Drop one reference (NULL: nothing); frees c when it was the last and c is no longer current. */
void al_conf_release(struct al_conf *c);
/* Drop the current configuration's "current" reference (stop, after every holder let go). */
void al_conf_shutdown(void);
/* How many configurations are alive now (current and pinned old ones): for tests and the status page. */
int al_conf_alive(void);

#endif
