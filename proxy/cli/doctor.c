/*
 * airlock doctor: is this cache enough for an air-gapped Stack (and, when
 * asked, its FIPS agents, trained models, product documentation, GeoIP
 * databases)?  What is checked, and how, is cache/readiness.c's (the status page and metrics
 * show the same); this is the command: its arguments, the store opened
 * read-only, the words.  Exit 0 only when nothing is missing; 1 otherwise;
 * 2 for a usage or config error.
 */
#include "proxy/cli/doctor.h"
#include "cache/readiness.h"
#include "cache/store.h"
#include "policy/config.h"
#include "policy/plan.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLATFORMS AL_PLAN_PLATFORMS

/* Is any item of the comma list not ok?  Then say so (1). */
static int bad_list(const char *list, int (*ok)(const char *), const char *flag, const char *what)
{
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		char item[160];
		snprintf(item, sizeof(item), "%.*s", (int)(len < 159 ? len : 159), p);
		if (len >= sizeof(item) || !ok(item)) {
			fprintf(stderr, "airlock doctor: %s: '%s' is not %s\n", flag, item, what);
			return 1;
		}
		p = p[len] ? p + len + 1 : NULL;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "Usage:\n"
	    "  airlock doctor --stack VERSION [--platforms LIST] [--kibana VERSION] [--endpoint VERSION]\n"
	    "                 [--fips] [--models ID,...] [--product-docs MAJOR.MINOR,...] [--geoip] [--kibana-artifacts]\n"
	    "                 [--json] [--config FILE]\n"
	    "      LIST is comma-separated (default %s);\n"
	    "      --kibana and --endpoint default to the Stack version; --fips adds the FIPS agent builds (Linux),\n"
	    "      --models trained models, --product-docs the AI Assistant's documentation, --geoip the GeoIP\n"
	    "      databases, --kibana-artifacts Kibana's telemetry manifest of the Stack version and its artifacts.\n"
	    "      Exit 0 only when nothing is missing.\n",
	    PLATFORMS);
	return 2;
}

int doctor_main(int argc, char **argv)
{
	const char *stack = NULL, *platforms = PLATFORMS, *kibana = NULL, *ep = NULL, *config = NULL;
	struct al_readiness_more more = {0};
	struct al_readiness *rd = NULL;
	struct al_store *s = NULL;
	struct al_config *cfg;
	json_t *manifest, *pkgs, *missing, *out;
	char err[1024];
	int json = 0, rc;
	size_t i;

	for (int k = 1; k < argc; k++) {
		const char *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
		if (!strcmp(a, "--stack") && v)
			stack = v, k++;
		else if (!strcmp(a, "--platforms") && v)
			platforms = v, k++;
		else if (!strcmp(a, "--kibana") && v)
			kibana = v, k++;
		else if (!strcmp(a, "--endpoint") && v)
			ep = v, k++;
		else if (!strcmp(a, "--config") && v)
			config = v, k++;
		else if (!strcmp(a, "--models") && v)
			more.models = v, k++;
		else if (!strcmp(a, "--product-docs") && v)
			more.product_docs = v, k++;
		else if (!strcmp(a, "--geoip"))
			more.geoip = 1;
		else if (!strcmp(a, "--fips"))
			more.fips = 1;
		else if (!strcmp(a, "--kibana-artifacts"))
			more.kibana_artifacts = 1;
		else if (!strcmp(a, "--json"))
			json = 1;
		else
			return usage();
	}
	kibana = kibana ? kibana : stack;
	ep = ep ? ep : stack;
	if (!al_plan_version_shape(stack) || !al_plan_version_shape(kibana) || !al_plan_version_shape(ep)) {
		if (stack == NULL)
			return usage();
		fprintf(stderr, "airlock doctor: '%s' is not a version\n",
		    !al_plan_version_shape(stack) ? stack : !al_plan_version_shape(kibana) ? kibana : ep);
		return 2;
	}
	for (const char *p = platforms; *p;) {
		const char *c = strchr(p, ',');
		char plat[64];
		size_t len = c ? (size_t)(c - p) : strlen(p);
		snprintf(plat, sizeof(plat), "%.*s", (int)(len < 63 ? len : 63), p);
		if (!al_plan_in_list(PLATFORMS, plat)) {
			fprintf(stderr, "airlock doctor: --platforms: '%s' is not one of %s\n", plat, PLATFORMS);
			return 2;
		}
		p = c ? c + 1 : p + len;
	}
	if (bad_list(more.models, al_plan_model_id_ok, "--models", "a model id (as elser_model_2_linux-x86_64)") ||
	    bad_list(more.product_docs, al_plan_major_minor_ok, "--product-docs", "MAJOR.MINOR (as 8.15)"))
		return 2;
	if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return 2;
	}
	if (al_store_open(cfg->cache_path, cfg->cache_max_size, 126, &s, err, sizeof(err)) != 0 ||
	    al_readiness_new(s, cfg, &rd) != 0) {
		fprintf(stderr, "airlock doctor: %s\n", err);
		al_store_close(s);
		al_config_free(cfg);
		return 2;
	}
	if ((out = al_readiness_check(rd, stack, platforms, kibana, ep, &more, err, sizeof(err))) == NULL) {
		fprintf(stderr, "airlock doctor: %s\n", err);
		al_readiness_free(rd);
		al_store_close(s);
		al_config_free(cfg);
		return 2;
	}
	missing = json_object_get(out, "missing");
	manifest = json_object_get(out, "endpoint_manifest");
	pkgs = json_object_get(out, "packages");
	if (json) {
		char *text = json_dumps(out, JSON_INDENT(2));
		puts(text);
		free(text);
	} else {
		json_t *m;
		printf("airlock doctor: Stack %s (agents for %s), Kibana %s, Endpoint %s, from the cache %s\n", stack,
		    platforms, kibana, ep, cfg->cache_path);
		json_array_foreach(missing, i, m) {
			printf("MISSING %s\n    %s\n    %s: %s\n", json_string_value(json_object_get(m, "url")),
			    json_string_value(json_object_get(m, "what")), json_string_value(json_object_get(m, "client")),
			    json_string_value(json_object_get(m, "failure")));
		}
		if (json_is_object(manifest)) {
			json_int_t age = json_integer_value(json_object_get(manifest, "age_days"));
			printf("Endpoint manifest %s: manifest_version %s, published %lld days ago%s\n", ep,
			    json_string_value(json_object_get(manifest, "manifest_version")), (long long)age,
			    json_is_true(json_object_get(out, "endpoint_manifest_old")) ?
			    "  WARNING: older than 30 days; Elastic advises monthly updates" : "");
		}
		printf("Kibana %s's packages: %zu\n", kibana, json_array_size(pkgs));
		printf("%s: %d of %d present, %zu missing\n", json_array_size(missing) ? "NOT READY" : "ready",
		    (int)json_integer_value(json_object_get(out, "present")),
		    (int)json_integer_value(json_object_get(out, "checked")), json_array_size(missing));
	}
	rc = json_array_size(missing) ? 1 : 0;
	json_decref(out);
	al_readiness_free(rd);
	al_store_close(s);
	al_config_free(cfg);
	return rc;
}
