/*
 * A mirror plan: one YAML file that says what a site carries across the
 * gap, read by `airlock mirror --plan` and written by `airlock plan`:
 *
 *   stack: [8.13.4, 8.14.0]          Elastic Agent and Beats artifacts of these versions
 *   agents:
 *     platforms: [linux-x86_64, windows-x86_64]
 *     formats: [tar.gz, zip]
 *     products: [elastic-agent]      the artifact names (mirror artifacts --only); default: all
 *   endpoint: [8.13.4]               Endpoint manifests (and every artifact each lists)
 *   kibana: [8.13.4]                 the registry's packages for these Kibana versions
 *   prerelease: false
 *   models: [elser_model_2_linux-x86_64]   trained models by id (mirror models --id)
 *   product_docs: ["8.15"]           the AI Assistant's product documentation, by MAJOR.MINOR
 *   geoip: true                      Elasticsearch's GeoIP databases (mirror geoip)
 *   kibana_artifacts: [8.13.4]       Kibana's telemetry manifest and artifacts (mirror kibana-artifacts)
 *
 * FIPS agent builds are a product like any other: agents.products:
 * [elastic-agent-fips] (linux .tar.gz only: mirror artifacts --only).
 * Every key is optional; a scalar stands for a list of one.  Errors say
 * file:line:column: what, as configuration errors do.  Pure: reads the
 * file, does no network I/O.
 */
#ifndef AIRLOCK_POLICY_PLAN_H
#define AIRLOCK_POLICY_PLAN_H

#include <stdio.h>

#define AL_PLAN_MAX 32
#define AL_PLAN_PLATFORMS "linux-x86_64,linux-arm64,windows-x86_64,darwin-x86_64,darwin-aarch64"
#define AL_PLAN_FORMATS "tar.gz,zip,deb,rpm"

struct al_plan {
	char *stack[AL_PLAN_MAX], *endpoint[AL_PLAN_MAX], *kibana[AL_PLAN_MAX];
	int nstack, nendpoint, nkibana;
	char *models[AL_PLAN_MAX], *product_docs[AL_PLAN_MAX];
	int nmodels, nproduct_docs;
	int geoip;
	char *kibana_artifacts[AL_PLAN_MAX];
	int nkibana_artifacts;
	char platforms[512];   /* comma lists, "" when not given (mirror's defaults) */
	char formats[128];
	char products[1024];
	int prerelease;
};

/* Read path into a new plan (caller frees with al_plan_free); 0 or -errno with err "file:line:col: what". */
int al_plan_load(const char *path, struct al_plan **out, char *err, size_t errlen);
void al_plan_free(struct al_plan *p);
/* Write p as a plan file that al_plan_load reads back the same. */
void al_plan_print(FILE *f, const struct al_plan *p);
/* MAJOR.MINOR.PATCH[-pre][+build]: the shape artifact names are built from (0 for NULL), of any length. */
int al_plan_version_shape(const char *v);
/* al_plan_version_shape, and under 64 characters: what a plan may hold. */
int al_plan_version_ok(const char *v);
/* A trained model's id as ml-models.elastic.co names its files: [A-Za-z0-9_.-], not starting with '.', under 128. */
int al_plan_model_id_ok(const char *id);
/* MAJOR.MINOR, as the product documentation artifacts are versioned. */
int al_plan_major_minor_ok(const char *v);
/* 1 when item is one of the comma-separated names in list (exactly, not a prefix); NULL list holds nothing. */
int al_plan_in_list(const char *list, const char *item);

#endif
