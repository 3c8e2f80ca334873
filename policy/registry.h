/*
 * Answers to the package registry's /search and /categories computed from
 * package documents (/package/<name>/<version>/), for when the registry
 * cannot be reached.  The rules follow Elastic's package-registry; what is
 * honoured and what differs is listed in the README ("Offline package
 * registry").  Pure functions over jansson values.
 */
#ifndef AIRLOCK_POLICY_REGISTRY_H
#define AIRLOCK_POLICY_REGISTRY_H

#include <jansson.h>
#include <stddef.h>

struct al_registry_query {
	char kibana_version[64];
	char agent_version[64];
	char package[128];
	char category[128];
	char type[64];
	char capabilities[512];     /* comma list; "" = no filter */
	int has_capabilities;
	char spec_min[32], spec_max[32];
	int prerelease;             /* include prerelease versions */
	int all;                    /* every qualifying version, not only the newest */
	int include_policy_templates;
};

/* From a query string ("a=b&c=d", %XX and + decoded).  0, or -EINVAL for a bad value. */
int al_registry_query_parse(const char *query, size_t len, struct al_registry_query *q);

/* The /search answer (a JSON array) for docs (an array of package documents); caller frees. */
char *al_registry_search(json_t *docs, const struct al_registry_query *q);
/* The /categories answer; caller frees. */
char *al_registry_categories(json_t *docs, const struct al_registry_query *q);

#endif
