/*
 * Answers to the package registry's /search and /categories computed from
 * package documents (/package/<name>/<version>/), for when the registry
 * cannot be reached.  The rules are elastic/package-registry's, read from
 * its source (each rule in registry.c names the file and function it
 * follows); what still differs is listed in the README ("Offline package
 * registry").  Pure functions over jansson values.
 */
#ifndef AIRLOCK_POLICY_REGISTRY_H
#define AIRLOCK_POLICY_REGISTRY_H

#include <jansson.h>
#include <stddef.h>

#define AL_REGISTRY_MAX_DISCOVERY 8

struct al_registry_query {
	char kibana_version[64];    /* "" = no filter; else major.minor.patch[-pre] as parsed */
	char agent_version[64];     /* the same, against conditions.agent.version */
	char package[128];
	char category[128];
	char type[64];
	char capabilities[512];     /* comma list */
	int has_capabilities;       /* capabilities= given and not empty */
	char spec_min[32], spec_max[32]; /* "major.minor.0" as parsed */
	int prerelease;
	int experimental;           /* legacy clients (Kibana < 8.6): the registry's legacyApply */
	int all;                    /* every qualifying version, not only the newest */
	int include_policy_templates;
	struct {
		int datasets;           /* 0: fields:a,b  1: datasets:a,b */
		char names[480];        /* comma list */
	} discovery[AL_REGISTRY_MAX_DISCOVERY];
	int ndiscovery;
	char error[300];            /* the registry's 400 message when parsing fails */
};

/*
 * From a query string ("a=b&c=d", %XX and + decoded), as the registry's
 * newSearchFilterFromQuery (categories = 0) or newCategoriesFilterFromQuery
 * plus include_policy_templates (categories = 1) read it: parameters the
 * endpoint does not read are ignored.  0, or -EINVAL with q->error set to
 * the message the registry answers 400 with.
 */
int al_registry_query_parse(const char *query, size_t len, int categories, struct al_registry_query *q);

/* The /search answer (a JSON array) for docs (an array of package documents); caller frees. */
char *al_registry_search(json_t *docs, const struct al_registry_query *q);
/* The /categories answer; caller frees. */
char *al_registry_categories(json_t *docs, const struct al_registry_query *q);

/*
 * The same answers fed one document at a time (the offline registry's
 * index hands summaries over this way), keeping only the documents the
 * answer can use: with `all`, every document that passes the first phase;
 * otherwise, per name, the newest that does (legacy rules: the newest
 * release and the newest prerelease).  Feed each name's versions one
 * after another, newest first by semver; al_registry_run_add returns 1
 * when no older version of this name can change the answer (the caller
 * may skip them), else 0.  It takes its own reference to doc when it
 * keeps it.  text (len bytes) is the JSON doc was parsed from, or NULL:
 * given, it must stay valid until run_finish, and with `all` the run keeps
 * a skeleton of doc instead of doc itself and parses text again when it
 * answers (memory bounded by the answer, not by every parsed document).
 * run_finish gives the /search (categories 0) or /categories body (caller
 * frees; NULL on ENOMEM) and frees the run in any case.
 */
struct al_registry_run;
struct al_registry_run *al_registry_run_new(const struct al_registry_query *q, int categories);
int al_registry_run_add(struct al_registry_run *r, json_t *doc, const char *text, size_t len);
/*
 * Every version of a name carries the deprecation notice of the newest
 * deprecated version of that name among all of them, qualifying or not
 * (packages/deprecated.go PropagateLatestDeprecatedInfoToPackageList at
 * AL_REGISTRY_COMMIT).  The run learns of the documents given to run_add;
 * a caller that skips versions (or feeds skeletons) gives it each name's
 * newest deprecated version here.  The run takes its own reference.
 */
void al_registry_run_add_deprecated(struct al_registry_run *r, json_t *doc);
char *al_registry_run_finish(struct al_registry_run *r);
/*
 * 1 when this run answers from skeletons (every version, current rules,
 * /search): then the caller may feed each document as its skeleton (its
 * scalar fields) and text with run_add_skeleton, in any order, without
 * parsing the whole: the rules are applied when the run answers.  The run
 * takes a reference to skel.
 */
int al_registry_run_skeletons(const struct al_registry_run *r);
void al_registry_run_add_skeleton(struct al_registry_run *r, json_t *skel, const char *text, size_t len);
/*
 * A package document's /search entry rendered once, when it is admitted:
 * entry (elen bytes) is its element of the answer's array as
 * al_registry_search writes it (no category asked, no deprecation
 * notice), hole the offset where a notice goes, and dep (dlen bytes, NULL
 * when doc is not deprecated) its own notice as the hole takes it.  A
 * query then joins entries instead of parsing and dumping documents.
 * 0 or -ENOMEM; the caller frees entry and dep.
 */
struct al_registry_rendered {
	char *entry, *dep;
	size_t elen, hole, dlen;
};
int al_registry_render(json_t *doc, struct al_registry_rendered *out);
/*
 * 1 when this run answers from rendered entries (/search, current rules,
 * no category): then feed each name's versions newest first with
 * run_add_rendered: skel holds what the filters read (name, version,
 * release, type, format_version, conditions, discovery), entry and hole
 * as al_registry_render gave them, dep/dlen the notice of the name's
 * newest deprecated version (NULL if none).  Returns 1 when the name is
 * settled, as run_add.  The texts must stay valid until run_finish; the
 * run takes a reference to skel.
 */
int al_registry_run_rendered(const struct al_registry_run *r);
int al_registry_run_add_rendered(struct al_registry_run *r, json_t *skel, const char *entry, size_t elen,
    size_t hole, const char *dep, size_t dlen);
/* Documents per batch when answering from skeletons (tests make it small). */
void al_registry_run_set_batch(struct al_registry_run *r, size_t n);

#endif
