/*
 * The package registry's /search and /categories rules, from
 * elastic/package-registry's source at AL_REGISTRY_COMMIT (2026-08-19):
 *
 *   search.go      newSearchFilterFromQuery, getSpecVersion, getSearchOutput
 *   categories.go  newCategoriesFilterFromQuery (since #1059/#1061 it reads
 *                  spec, capabilities, discovery and agent.version too),
 *                  categoriesHandler (include_policy_templates),
 *                  getCategories, getCategoriesOutput
 *   packages/packages.go   Filter.Apply, legacyApply, filterCategories,
 *                  filterPolicyTemplates, discoveryFilter*.Matches,
 *                  Packages.Less (by name, then semver: #1585, #1689)
 *   packages/package.go    isPrerelease (a prerelease tag only, #1538),
 *                  isTechPreview (0.x), HasKibanaVersion, HasAgentVersion,
 *                  WorksWithCapabilities, HasCompatibleSpec, hasCategory,
 *                  HasPolicyTemplateWithCategory, BasePackage,
 *                  setBasePolicyTemplates, setBaseDataStreams
 *   packages/deprecated.go PropagateLatestDeprecatedInfoToPackageList
 *   categories/categories.yml: titles and parents
 *   FileSystemIndexer.Get / SQLIndexer.Get: Filter.Apply over the whole
 *                  list, so the newest version is chosen before the
 *                  category filter
 *
 * Version constraints are Masterminds/semver v3's (policy/semver.c).
 * A document here is the registry's own /package/<name>/<version>/ answer,
 * so it carries every field the registry filters on.
 * tests/integration/test_registry_conformance.py holds these rules to the
 * registry's own TestEndpoints goldens at that commit.
 */

/*
 * The elastic/package-registry commit whose rules this file follows (the
 * one place it is named in code; README says the same, and the conformance
 * test reads it from here).
 */
#define AL_REGISTRY_COMMIT "16f54b67017e16b2f3de7e888425b8e73fa7dd27"

#include "policy/registry.h"
#include "policy/semver.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- query parsing ---- */

/*
 * Go's url.QueryUnescape (net/url unescape, encodeQueryComponent): '+' is a
 * space, '%' must be followed by two hex digits.  -EINVAL for a bad escape:
 * url.ParseQuery then drops the pair (r.URL.Query() ignores the error).
 */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			char hex[3];
			if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
				return -EINVAL;
			hex[0] = s[i + 1], hex[1] = s[i + 2], hex[2] = 0;
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 < cap)
			out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* Copy, cut to cap - 1 bytes. */
static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False. */
static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False", NULL};

	for (int i = 0; yes[i]; i++)
		if (!strcmp(v, yes[i]))
			return *out = 1, 0;
	for (int i = 0; no[i]; i++)
		if (!strcmp(v, no[i]))
			return *out = 0, 0;
	return -EINVAL;
}

static int span(const char *s, const char *set)
{
	int n = 0;

	while (s[n] && strchr(set, s[n]))
		n++;
	return n;
}

#define DIGITS "0123456789"
#define IDENT DIGITS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"

/*
 * Masterminds/semver v3.5.0's NewVersion (package-registry's go.mod at
 * AL_REGISTRY_COMMIT), which with CoerceNewVersion (its default since
 * v3.4.0) is coerceNewVersion: looseSemVerRegex
 * v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-ids)?(\+ids)? with ids dot-separated
 * [0-9A-Za-z-]+, leading zeros coerced, then validatePrerelease.  Writes
 * the version as "major.minor.patch[-pre]" to norm; 0, or -EINVAL with
 * the error's text in why (its messages are lower case since v3.4.0, #269).
 */
#define NEW_VERSION_FAILS(msg) return snprintf(why, whylen, "%s", msg), -EINVAL
static int go_new_version(const char *s, char *norm, size_t cap, char *why, size_t whylen)
{
	unsigned long long seg[3] = {0, 0, 0};
	const char *p = s + (*s == 'v'), *pre = NULL;
	size_t prelen = 0;
	struct al_semver check;
	char digits[48];

	for (int i = 0; i < 3; i++) {
		int n;
		if (i > 0) {
			if (*p != '.' || span(p + 1, DIGITS) == 0)
				break;
			p++;
		}
		n = span(p, DIGITS);
		if (n == 0)
			NEW_VERSION_FAILS("invalid semantic version");
		while (n > 1 && *p == '0')
			p++, n--; /* coerced */
		if (n > 20 || (n == 20 && strncmp(p, "18446744073709551615", 20) > 0)) {
			snprintf(digits, sizeof(digits), "%.40s", p);
			snprintf(why, whylen, "error parsing version segment: strconv.ParseUint: parsing \"%s%s\": value out of range",
			    digits, n > 40 ? "..." : "");
			return -EINVAL;
		}
		seg[i] = strtoull(p, NULL, 10);
		p += n;
	}
	for (int part = 0; part < 2; part++) {
		char lead = part == 0 ? '-' : '+';
		const char *start;
		if (*p != lead)
			continue;
		start = ++p;
		for (;;) {
			int n = span(p, IDENT);
			if (n == 0)
				NEW_VERSION_FAILS("invalid semantic version");
			/* validatePrerelease: a numeric identifier has no leading zero */
			if (part == 0 && span(p, DIGITS) == n && n > 1 && *p == '0')
				NEW_VERSION_FAILS("version segment starts with 0");
			p += n;
			if (*p != '.')
				break;
			p++;
		}
		if (part == 0)
			pre = start, prelen = (size_t)(p - start);
	}
	if (*p != '\0')
		NEW_VERSION_FAILS("invalid semantic version");
	snprintf(norm, cap, "%llu.%llu.%llu%s%.*s", seg[0], seg[1], seg[2], pre ? "-" : "", (int)prelen, pre ? pre : "");
	/* what airlock's comparisons cannot hold (segments over 999999999, long tags) it refuses */
	if (al_semver_parse(norm, &check) != 0 || strlen(norm) + 1 >= cap)
		NEW_VERSION_FAILS("invalid semantic version");
	return 0;
}
#undef NEW_VERSION_FAILS

/* search.go getSpecVersion: exactly <major>.<minor> (two parts split at '.'), then NewVersion. */
static int spec_version(const char *key, const char *v, char *out, size_t cap, char *err, size_t errlen)
{
	const char *dot = strchr(v, '.');
	char why[160];

	if (dot == NULL || strchr(dot + 1, '.') != NULL) {
		snprintf(err, errlen, "invalid '%s' version: invalid version '%.100s': it should be <major.version>", key, v);
		return -EINVAL;
	}
	if (go_new_version(v, out, cap, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "invalid '%s' version: invalid spec version '%.100s': %.120s", key, v, why);
		return -EINVAL;
	}
	return 0;
}

/*
 * The parameters newSearchFilterFromQuery (search.go) and
 * newCategoriesFilterFromQuery (categories.go) read; cats says which
 * endpoint reads it.  Both read each key as query.Get(key) would: the first
 * value only, and "" is no filter; discovery alone reads every value.
 */
enum { K_KIBANA, K_CATEGORY, K_PACKAGE, K_TYPE, K_CAPS, K_SPEC_MIN, K_SPEC_MAX, K_ALL, K_EXPERIMENTAL,
	K_PRERELEASE, K_DISCOVERY, K_AGENT, K_POLICY_TEMPLATES, K_N };
static const struct {
	const char *name;
	int search, cats;
} KEYS[K_N] = {
	[K_KIBANA] = {"kibana.version", 1, 1}, [K_CATEGORY] = {"category", 1, 0}, [K_PACKAGE] = {"package", 1, 0},
	[K_TYPE] = {"type", 1, 0}, [K_CAPS] = {"capabilities", 1, 1}, [K_SPEC_MIN] = {"spec.min", 1, 1},
	[K_SPEC_MAX] = {"spec.max", 1, 1}, [K_ALL] = {"all", 1, 0}, [K_EXPERIMENTAL] = {"experimental", 1, 1},
	[K_PRERELEASE] = {"prerelease", 1, 1}, [K_DISCOVERY] = {"discovery", 1, 1}, [K_AGENT] = {"agent.version", 1, 1},
	[K_POLICY_TEMPLATES] = {"include_policy_templates", 0, 1},
};

#define BAD_BOOL(k) do { snprintf(q->error, sizeof(q->error), "invalid '%s' query param: '%.200s'", k, val); \
	return -EINVAL; } while (0)

/* packages.go NewDiscoveryFilter: "<type>:<comma list>", cut at the first colon. */
static int discovery_filter(const char *val, struct al_registry_query *q)
{
	const char *colon = strchr(val, ':');
	int ds;

	if (colon == NULL) {
		snprintf(q->error, sizeof(q->error),
		    "invalid 'discovery' query param: '%.100s': could not parse filter \"%.100s\"", val, val);
		return -EINVAL;
	}
	if ((size_t)(colon - val) == 6 && !strncmp(val, "fields", 6))
		ds = 0;
	else if ((size_t)(colon - val) == 8 && !strncmp(val, "datasets", 8))
		ds = 1;
	else {
		snprintf(q->error, sizeof(q->error), "invalid 'discovery' query param: '%.100s': unknown discovery filter \"%.*s\"",
		    val, (int)(colon - val < 100 ? colon - val : 100), val);
		return -EINVAL;
	}
	if (q->ndiscovery < AL_REGISTRY_MAX_DISCOVERY) {
		q->discovery[q->ndiscovery].datasets = ds;
		copy(q->discovery[q->ndiscovery].names, sizeof(q->discovery[0].names), colon + 1);
		q->ndiscovery++;
	}
	return 0;
}

/* One parameter's first value (or, for discovery, any value), as the filter reads it. */
static int parse_param(int k, const char *val, struct al_registry_query *q)
{
	char why[160];

	if (k == K_DISCOVERY)
		return discovery_filter(val, q); /* every value, "" included: NewDiscoveryFilter("") fails */
	if (val[0] == '\0')
		return 0; /* if v != "" */
	switch (k) {
	case K_KIBANA:
		if (go_new_version(val, q->kibana_version, sizeof(q->kibana_version), why, sizeof(why)) != 0) {
			snprintf(q->error, sizeof(q->error), "invalid Kibana version '%.150s': %.110s", val, why);
			return -EINVAL;
		}
		break;
	case K_AGENT:
		/* search.go / categories.go since #1460 (agent.version against conditions.agent.version) */
		if (go_new_version(val, q->agent_version, sizeof(q->agent_version), why, sizeof(why)) != 0) {
			snprintf(q->error, sizeof(q->error), "invalid agent version '%.150s': %.110s", val, why);
			return -EINVAL;
		}
		break;
	case K_CATEGORY:
		copy(q->category, sizeof(q->category), val);
		break;
	case K_PACKAGE:
		copy(q->package, sizeof(q->package), val);
		break;
	case K_TYPE:
		copy(q->type, sizeof(q->type), val);
		break;
	case K_CAPS:
		copy(q->capabilities, sizeof(q->capabilities), val);
		q->has_capabilities = 1;
		break;
	case K_SPEC_MIN:
		return spec_version("spec.min", val, q->spec_min, sizeof(q->spec_min), q->error, sizeof(q->error));
	case K_SPEC_MAX:
		return spec_version("spec.max", val, q->spec_max, sizeof(q->spec_max), q->error, sizeof(q->error));
	case K_ALL:
		if (parse_bool(val, &q->all))
			BAD_BOOL("all");
		break;
	case K_EXPERIMENTAL:
		if (parse_bool(val, &q->experimental))
			BAD_BOOL("experimental");
		break;
	case K_PRERELEASE:
		if (parse_bool(val, &q->prerelease))
			BAD_BOOL("prerelease");
		break;
	}
	return 0;
}

int al_registry_query_parse(const char *query, size_t len, int categories, struct al_registry_query *q)
{
	const char *p = query, *end = query + len;
	unsigned seen = 0;
	char ipt[512] = "";

	memset(q, 0, sizeof(*q));
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		char key[64], val[512];
		int k;

		/* net/url parseQuery: empty pairs skipped; a pair with ';' or a bad escape is dropped */
		const char *pair = p;
		p = amp ? amp + 1 : end;
		if (e == pair || memchr(pair, ';', (size_t)(e - pair)) != NULL)
			continue;
		if (unescape(pair, eq ? (size_t)(eq - pair) : (size_t)(e - pair), key, sizeof(key)) != 0 ||
		    unescape(eq ? eq + 1 : e, eq ? (size_t)(e - eq - 1) : 0, val, sizeof(val)) != 0)
			continue;
		for (k = 0; k < K_N && strcmp(key, KEYS[k].name) != 0; k++)
			;
		if (k == K_N || !(categories ? KEYS[k].cats : KEYS[k].search))
			continue; /* allowUnknownQueryParameters: true, the registry's default */
		if (k != K_DISCOVERY && (seen & (1u << k)))
			continue; /* values[0] */
		seen |= 1u << k;
		if (k == K_POLICY_TEMPLATES) {
			copy(ipt, sizeof(ipt), val); /* categoriesHandler reads it after the filter */
			continue;
		}
		if (parse_param(k, val, q) != 0)
			return -EINVAL;
	}
	if (ipt[0] && parse_bool(ipt, &q->include_policy_templates)) {
		const char *val = ipt;
		BAD_BOOL("include_policy_templates");
	}
	return 0;
}

/* ---- the package predicates (packages/package.go) ---- */

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int version_of(json_t *doc, struct al_semver *v)
{
	const char *s = str(doc, "version");
	return s != NULL ? al_semver_parse(s, v) : -EINVAL;
}

/*
 * packages/package.go isPrerelease: version.Prerelease() != "" (since
 * #1538).  A 0.x version is not a prerelease but a tech preview
 * (isTechPreview), which only legacyApply with all=true reads.
 */
static int is_prerelease(json_t *doc)
{
	struct al_semver v;

	if (version_of(doc, &v) != 0)
		return 1;
	return v.pre[0] != '\0';
}

static int is_tech_preview(json_t *doc)
{
	struct al_semver v;

	return version_of(doc, &v) == 0 && v.major < 1;
}

/* HasKibanaVersion / HasAgentVersion: no constraint qualifies. */
static int condition_ok(json_t *doc, const char *who, const char *want)
{
	json_t *k = json_object_get(json_object_get(doc, "conditions"), who);
	const char *cons = str(k, "version");
	struct al_semver v;

	if (!want[0] || cons == NULL)
		return 1;
	if (al_semver_parse(want, &v) != 0)
		return 0;
	return al_semver_satisfies(cons, &v) == 1;
}

static int in_comma_list(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == n && !strncmp(p, item, n))
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

/* WorksWithCapabilities: every capability the package requires is offered. */
static int capabilities_ok(json_t *doc, const struct al_registry_query *q)
{
	json_t *need = json_object_get(json_object_get(json_object_get(doc, "conditions"), "elastic"), "capabilities"), *e;
	size_t i;

	if (!q->has_capabilities || need == NULL)
		return 1;
	json_array_foreach(need, i, e)
		if (json_string_value(e) && !in_comma_list(q->capabilities, json_string_value(e)))
			return 0;
	return 1;
}

/* HasCompatibleSpec: format_version's major.minor within [spec.min, spec.max]. */
static int spec_ok(json_t *doc, const struct al_registry_query *q)
{
	struct al_semver fv, lo, hi;

	if (!q->spec_min[0] && !q->spec_max[0])
		return 1;
	if (str(doc, "format_version") == NULL || al_semver_parse(str(doc, "format_version"), &fv) != 0)
		return 0;
	fv.patch = 0;
	fv.pre[0] = '\0';
	if (q->spec_min[0] && al_semver_parse(q->spec_min, &lo) == 0 && al_semver_cmp(&fv, &lo) < 0)
		return 0;
	if (q->spec_max[0] && al_semver_parse(q->spec_max, &hi) == 0 && al_semver_cmp(&fv, &hi) > 0)
		return 0;
	return 1;
}

/*
 * packages.go discoveryFilter.Matches, every filter of the query in turn:
 * discoveryFilterFields.Matches wants the package to declare discovery
 * fields and every one of them in the query's list;
 * discoveryFilterDatasets.Matches (#1338) wants the package to declare
 * datasets and at least one of them in the query's list.
 */
static int discovery_ok(json_t *doc, const struct al_registry_query *q)
{
	for (int k = 0; k < q->ndiscovery; k++) {
		int ds = q->discovery[k].datasets, any = 0;
		json_t *list = json_object_get(json_object_get(doc, "discovery"), ds ? "datasets" : "fields"), *e;
		size_t i;

		if (json_array_size(list) == 0)
			return 0;
		json_array_foreach(list, i, e) {
			const char *name = str(e, "name");
			int in = name != NULL && in_comma_list(q->discovery[k].names, name);
			if (!ds && !in)
				return 0;
			any |= in;
		}
		if (ds && !any)
			return 0;
	}
	return 1;
}

/*
 * categories/categories.yml at AL_REGISTRY_COMMIT: id, title, parent.
 * Since #970 web, kubernetes, message_queue and the other former
 * infrastructure subcategories are observability's; infrastructure stays
 * as a top-level category "kept for BWC".
 */
static const struct category {
	const char *id, *title, *parent;
} CATEGORIES[] = {
	{"aws", "AWS", NULL}, {"azure", "Azure", NULL}, {"cloud", "Cloud", NULL},
	{"config_management", "Config management", NULL}, {"containers", "Containers", NULL}, {"crm", "CRM", NULL},
	{"custom", "Custom", NULL}, {"custom_logs", "Custom Logs", "custom"}, {"datastore", "Database", NULL},
	{"elastic_stack", "Elastic Stack", NULL}, {"elasticsearch_sdk", "Elasticsearch SDK", NULL},
	{"enterprise_search", "Enterprise Search", NULL}, {"app_search", "Application Search", "enterprise_search"},
	{"connector", "Connector", "enterprise_search"}, {"connector_client", "Connector Client", "enterprise_search"},
	{"connector_package", "Connector Package", "enterprise_search"},
	{"content_source", "Content Source", "enterprise_search"}, {"crawler", "Crawler", "enterprise_search"},
	{"language_client", "Language Client", "enterprise_search"},
	{"native_search", "Native Search", "enterprise_search"}, {"sdk_search", "SDK", "enterprise_search"},
	{"workplace_search", "Workplace Search", "enterprise_search"}, {"google_cloud", "Google Cloud", NULL},
	{"infrastructure", "Infrastructure", NULL}, {"languages", "Languages", NULL}, {"network", "Network", NULL},
	{"observability", "Observability", NULL},
	{"application_observability", "Application", "observability"},
	{"analytics_engine", "Analytics Engine", "observability"}, {"big_data", "Big Data", "observability"},
	{"java_observability", "Java", "observability"}, {"kubernetes", "Kubernetes", "observability"},
	{"load_balancer", "Load Balancer", "observability"}, {"message_queue", "Message Broker", "observability"},
	{"monitoring", "Monitoring", "observability"}, {"notification", "Notification", "observability"},
	{"process_manager", "Process Manager", "observability"},
	{"stream_processing", "Stream Processing", "observability"},
	{"virtualization", "Virtualization Platform", "observability"}, {"web", "Web Server", "observability"},
	{"websphere", "WebSphere Application Server", "observability"}, {"opentelemetry", "OpenTelemetry", NULL},
	{"os_system", "Operating Systems", NULL}, {"productivity", "Productivity", NULL}, {"security", "Security", NULL},
	{"advanced_analytics_ueba", "Advanced Analytics (UEBA)", "security"},
	{"asset_inventory", "Asset Inventory", "security"}, {"auditd", "AuditD", "security"},
	{"authentication", "Authentication", "security"}, {"cdn_security", "Content Delivery Network", "security"},
	{"cloudsecurity_cdr", "Cloud Security/CDR", "security"},
	{"credential_management", "Credential Management", "security"}, {"database_security", "Database", "security"},
	{"dns_security", "DNS", "security"}, {"edr_xdr", "EDR/XDR", "security"}, {"email_security", "Email", "security"},
	{"firewall_security", "Firewall", "security"}, {"iam", "Identity and Access Management", "security"},
	{"ids_ips", "IDS/IPS", "security"}, {"misconfiguration_workflow", "Misconfiguration Workflow", "security"},
	{"network_security", "Network", "security"}, {"productivity_security", "Productivity", "security"},
	{"proxy_security", "Proxy", "security"}, {"siem", "SIEM", "security"},
	{"threat_intel", "Threat Intelligence", "security"}, {"vpn_security", "VPN", "security"},
	{"vulnerability_management", "Vulnerability Management", "security"},
	{"vulnerability_workflow", "Vulnerability Workflow", "security"},
	{"web_application_firewall", "Web Application Firewall", "security"}, {"support", "Support", NULL},
	{"ticketing", "Ticketing", NULL}, {"version_control", "Version Control", NULL}, {NULL, NULL, NULL},
};

static const struct category *category_of(const char *id)
{
	for (int i = 0; CATEGORIES[i].id; i++)
		if (!strcmp(CATEGORIES[i].id, id))
			return &CATEGORIES[i];
	return NULL;
}

static int array_has(json_t *arr, const char *s)
{
	size_t i;
	json_t *e;

	json_array_foreach(arr, i, e)
		if (json_string_value(e) && !strcmp(json_string_value(e), s))
			return 1;
	return 0;
}

/* hasCategory: the category itself, or any of its subcategories. */
static int has_category(json_t *cats, const char *cat)
{
	if (array_has(cats, cat))
		return 1;
	for (int i = 0; CATEGORIES[i].id; i++)
		if (CATEGORIES[i].parent && !strcmp(CATEGORIES[i].parent, cat) && array_has(cats, CATEGORIES[i].id))
			return 1;
	return 0;
}

static int pt_has_category(json_t *doc, const char *cat)
{
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(doc, "policy_templates"), i, t)
		if (has_category(json_object_get(t, "categories"), cat))
			return 1;
	return 0;
}

/* ---- Filter.Apply / legacyApply (packages/packages.go) ---- */

struct pick {
	json_t *doc;
	struct al_semver v;
	int pre, preview;
};

/*
 * The per-package checks, in Filter.Apply's order: release experimental and
 * prereleases dropped unless prerelease=true, Kibana version, agent
 * version, package, type, capabilities, discovery, spec.  legacyApply
 * (experimental=true) drops neither (its "release experimental" check tests
 * f.Experimental, true there) and reads only Kibana version, package and type.
 */
static int first_phase(json_t *doc, const struct al_registry_query *q)
{
	const char *name = str(doc, "name"), *type = str(doc, "type");

	if (name == NULL || str(doc, "version") == NULL)
		return 0;
	if (!q->experimental) {
		if (str(doc, "release") && !strcmp(str(doc, "release"), "experimental") && !q->prerelease)
			return 0;
		if (is_prerelease(doc) && !q->prerelease)
			return 0;
	}
	if (!condition_ok(doc, "kibana", q->kibana_version))
		return 0;
	if (!q->experimental && !condition_ok(doc, "agent", q->agent_version))
		return 0;
	if (q->package[0] && strcmp(q->package, name))
		return 0;
	if (q->type[0] && strcmp(q->type, type ? type : "integration"))
		return 0;
	if (q->experimental)
		return 1;
	/*
	 * HasCompatibleSpec fails for a package without format_version (the
	 * registry then answers the whole query 404); such a document is left
	 * out here instead.
	 */
	return capabilities_ok(doc, q) && discovery_ok(doc, q) && spec_ok(doc, q);
}

/*
 * The packages the registry answers with: the first phase per package, then
 * (unless all) the newest version of each name (Filter.Apply: replaced only
 * by a strictly newer one; legacyApply prefers a release to a newer
 * prerelease), with legacyApply's all=true dropping the prereleases and tech
 * previews (0.x) of names that have a version that is neither, then
 * filterCategories.  *n entries; the array is the caller's to free.
 */
static struct pick *apply(json_t *docs, const struct al_registry_query *q, const char *category, size_t *n)
{
	size_t i, k = 0, cap = json_array_size(docs);
	struct pick *v = calloc(cap ? cap : 1, sizeof(*v));
	json_t *slot = json_object(), *d; /* name -> index in v of its newest version (latestIdx) */

	if (v == NULL || slot == NULL) {
		free(v);
		json_decref(slot);
		return NULL;
	}
	json_array_foreach(docs, i, d) {
		struct pick p = {d, {0}, 0, 0};
		json_t *at;

		if (!json_is_object(d) || !first_phase(d, q) || version_of(d, &p.v) != 0)
			continue;
		p.pre = is_prerelease(d);
		p.preview = is_tech_preview(d);
		if (!q->all && (at = json_object_get(slot, str(d, "name"))) != NULL) {
			struct pick *cur = &v[json_integer_value(at)];
			if (q->experimental) {
				/* legacyApply: keep the current one if newer or equal, unless a prerelease; a release wins */
				if (cur->pre == p.pre && al_semver_cmp(&cur->v, &p.v) >= 0)
					continue;
				if (!cur->pre && p.pre)
					continue;
			} else if (al_semver_cmp(&cur->v, &p.v) >= 0) {
				continue; /* Filter.Apply: replaced only by a strictly newer version */
			}
			*cur = p;
			continue;
		}
		if (!q->all)
			json_object_set_new(slot, str(d, "name"), json_integer((json_int_t)k));
		v[k++] = p;
	}
	if (q->experimental && q->all) {
		/* packageHasNonPrereleaseAndTechPreview */
		json_t *ga = json_object();
		size_t w = 0;
		for (size_t r = 0; r < k; r++)
			if (!v[r].pre && !v[r].preview)
				json_object_set_new(ga, str(v[r].doc, "name"), json_true());
		for (size_t r = 0; r < k; r++)
			if (!((v[r].pre || v[r].preview) && json_object_get(ga, str(v[r].doc, "name"))))
				v[w++] = v[r];
		k = w;
		json_decref(ga);
	}
	json_decref(slot);
	if (category != NULL && category[0]) {
		size_t w = 0;
		for (size_t r = 0; r < k; r++)
			if (has_category(json_object_get(v[r].doc, "categories"), category) || pt_has_category(v[r].doc, category))
				v[w++] = v[r];
		k = w;
	}
	*n = k;
	return v;
}

/* Packages.Less (#1585, #1689): by name, then by semver. */
static int by_registry_order(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;
	int c = strcmp(str(x->doc, "name"), str(y->doc, "name"));

	return c != 0 ? c : al_semver_cmp(&x->v, &y->v);
}

/* Copy the listed fields of from into a new object, in that order; "!" before a name: always, "" if absent. */
static json_t *project(json_t *from, const char *const *fields)
{
	json_t *o = json_object();

	for (int f = 0; fields[f]; f++) {
		const char *k = fields[f] + (fields[f][0] == '!');
		json_t *val = json_object_get(from, k);
		if (val != NULL)
			json_object_set(o, k, val);
		else if (fields[f][0] == '!')
			json_object_set_new(o, k, json_string(""));
	}
	return o;
}

/* BasePolicyTemplate (packages/package.go setBasePolicyTemplates), in its field order. */
static json_t *base_policy_templates(json_t *pts, const char *only_category)
{
	static const char *const keep[] = {"!name", "!title", "!description", "icons", "categories",
		"deployment_modes", "data_streams", "deprecated", NULL};
	json_t *out = json_array(), *t;
	size_t i;

	json_array_foreach(pts, i, t) {
		/* filterPolicyTemplates: when only templates matched the category, only those (exact match) */
		if (only_category != NULL && !array_has(json_object_get(t, "categories"), only_category))
			continue;
		json_array_append_new(out, project(t, keep));
	}
	return out;
}

/* BaseDataStream (packages/datastream.go setBaseDataStreams): type, dataset, title, deprecated. */
static json_t *base_data_streams(json_t *dss)
{
	static const char *const keep[] = {"type", "!dataset", "!title", "deprecated", NULL};
	json_t *out = json_array(), *d;
	size_t i;

	json_array_foreach(dss, i, d) {
		json_t *o = project(d, keep);
		if (json_string_length(json_object_get(o, "type")) == 0)
			json_object_del(o, "type"); /* omitempty */
		json_array_append_new(out, o);
	}
	return out;
}

/*
 * packages/deprecated.go UpdateLatestDeprecatedPackagesMapByName and
 * PropagateLatestDeprecatedInfoToPackageList: every version of a package
 * carries the deprecation notice of its newest deprecated version.  The
 * registry does it over everything it indexes; here over every document
 * given, so an older cached version learns of a newer one's notice.
 */
static void note_deprecated(json_t *by_name, json_t *d)
{
	json_t *dep = json_object_get(d, "deprecated"), *best;
	const char *name = str(d, "name");
	struct al_semver v, bv;

	if (!json_is_object(dep) || name == NULL || version_of(d, &v) != 0)
		return;
	best = json_object_get(by_name, name);
	if (best == NULL || (version_of(best, &bv) == 0 && al_semver_cmp(&v, &bv) > 0))
		json_object_set(by_name, name, d);
}

static json_t *latest_deprecated(json_t *docs)
{
	json_t *by_name = json_object(), *d;
	size_t i;

	json_array_foreach(docs, i, d)
		note_deprecated(by_name, d);
	return by_name; /* name -> the document whose notice every version carries */
}

/* BasePackage (packages/package.go), in its field order */
static const char *const BASE_FIELDS[] = {"name", "title", "version", "release", "source", "!description", "type",
	"!download", "path", "icons", "policy_templates_behavior", "policy_templates", "conditions", "owner",
	"categories", "signature_path", "discovery", "data_streams", "deprecated", "requires", "group", NULL};

/* One /search entry for doc; notice: the deprecation notice it carries (its name's newest), or NULL. */
static json_t *render_item(json_t *doc, const struct al_registry_query *q, json_t *notice)
{
	const char *const *fields = BASE_FIELDS;
	json_t *item = json_object();
	const char *only = q->category[0] && !has_category(json_object_get(doc, "categories"), q->category) ?
	    q->category : NULL;

	for (int f = 0; fields[f]; f++) {
		const char *k = fields[f] + (fields[f][0] == '!');
		json_t *val = json_object_get(doc, k);
		if (!strcmp(k, "policy_templates")) {
			json_t *pts = json_array_size(val) > 0 ? base_policy_templates(val, only) : NULL;
			if (json_array_size(pts) > 0)
				json_object_set(item, k, pts);
			json_decref(pts);
		} else if (!strcmp(k, "data_streams")) {
			if (json_array_size(val) > 0)
				json_object_set_new(item, k, base_data_streams(val));
		} else if (!strcmp(k, "discovery")) {
			/* omitzero: Discovery.IsZero, no fields and no datasets */
			if (json_array_size(json_object_get(val, "fields")) + json_array_size(json_object_get(val, "datasets")) > 0)
				json_object_set(item, k, val);
		} else if (!strcmp(k, "deprecated")) {
			if (notice != NULL)
				json_object_set(item, k, notice);
		} else if (val != NULL) {
			json_object_set(item, k, val);
		} else if (fields[f][0] == '!') {
			json_object_set_new(item, k, json_string(""));
		} else if (!strcmp(k, "type")) {
			json_object_set_new(item, "type", json_string("integration"));
		} else if (!strcmp(k, "path")) {
			char p[512];
			snprintf(p, sizeof(p), "/package/%s/%s", str(doc, "name"), str(doc, "version"));
			json_object_set_new(item, "path", json_string(p));
		}
	}
	return item;
}

/* The /search answer for docs, each version carrying the notice of deprecated[its name] (see latest_deprecated). */
static char *search_with(json_t *docs, const struct al_registry_query *q, json_t *deprecated)
{
	size_t n;
	struct pick *v = apply(docs, q, q->category, &n);
	json_t *out = json_array();
	char *s;

	if (v != NULL)
		qsort(v, n, sizeof(*v), by_registry_order);
	for (size_t i = 0; v && i < n; i++) {
		json_t *doc = v[i].doc;
		json_t *notice = json_object_get(json_object_get(deprecated, str(doc, "name")), "deprecated");
		json_array_append_new(out, render_item(doc, q, notice));
	}
	free(v);
	s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(out);
	return s;
}

char *al_registry_search(json_t *docs, const struct al_registry_query *q)
{
	json_t *deprecated = latest_deprecated(docs);
	char *s = search_with(docs, q, deprecated);

	json_decref(deprecated);
	return s;
}

/* doc's element as json_dumps writes it inside the answer's array (indented, no "[\n" or "\n]"); caller frees. */
static char *dump_element(json_t *item, size_t *len)
{
	json_t *a = json_array();
	char *s;
	size_t l;

	if (a == NULL || json_array_append(a, item) != 0 || (s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(a);
		return NULL;
	}
	json_decref(a);
	l = strlen(s);
	if (l < 4) {
		free(s);
		return NULL;
	}
	memmove(s, s + 2, l - 4);
	s[l - 4] = '\0';
	*len = l - 4;
	return s;
}

#define HOLE_MARK ",\n    \"deprecated\": \"\\u0001\""

int al_registry_render(json_t *doc, struct al_registry_rendered *out)
{
	static const struct al_registry_query none; /* no category: every policy template listed */
	json_t *mark = json_string("\x01"), *item, *notice = json_object_get(doc, "deprecated");
	char *at;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(doc) || mark == NULL || (item = render_item(doc, &none, mark)) == NULL) {
		json_decref(mark);
		return -ENOMEM;
	}
	json_decref(mark);
	out->entry = dump_element(item, &out->elen);
	json_decref(item);
	if (out->entry == NULL || (at = strstr(out->entry, HOLE_MARK)) == NULL) {
		free(out->entry);
		return -ENOMEM;
	}
	out->hole = (size_t)(at - out->entry);
	memmove(at, at + strlen(HOLE_MARK), out->elen - out->hole - strlen(HOLE_MARK) + 1);
	out->elen -= strlen(HOLE_MARK);
	if (json_is_object(notice)) {
		/* ",\n    \"deprecated\": {...}" as the hole wants it: from {"deprecated": notice}'s element */
		json_t *o = json_object();
		size_t l;
		char *e;
		json_object_set(o, "deprecated", notice);
		e = dump_element(o, &l);
		json_decref(o);
		/* e is "  {\n    \"deprecated\": ...\n  }" */
		if (e == NULL || l < 10 || (out->dep = malloc(l)) == NULL) {
			free(e);
			free(out->entry);
			return -ENOMEM;
		}
		out->dlen = (size_t)sprintf(out->dep, ",\n%.*s", (int)(l - 4 - 4), e + 4);
		free(e);
	}
	return 0;
}

static void count(json_t *counts, const char *c, int by)
{
	json_object_set_new(counts, c, json_integer(json_integer_value(json_object_get(counts, c)) + by));
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * categories.go: the packages Filter.Apply (newCategoriesFilterFromQuery:
 * Kibana and agent version, prerelease, experimental, capabilities, spec,
 * discovery) chooses, counted by getCategories, titled by
 * getCategoriesOutput.
 */
char *al_registry_categories(json_t *docs, const struct al_registry_query *q)
{
	size_t n, i, nk = 0;
	struct pick *v = apply(docs, q, NULL, &n);
	json_t *counts = json_object(), *out = json_array(), *val;
	const char *id, **keys;
	char *s;

	for (i = 0; v && i < n; i++) {
		json_t *doc = v[i].doc, *cats = json_object_get(doc, "categories"), *pts = json_object_get(doc, "policy_templates"), *e, *t;
		json_t *extra = json_array();
		size_t j, m;

		json_array_foreach(cats, j, e)
			if (json_string_value(e))
				count(counts, json_string_value(e), 1);
		/*
		 * getCategories with include_policy_templates: the package's own
		 * categories count once more per policy template, and a template's
		 * category counts for the template and, once, for the package when
		 * the package is not already in it (HasCategory, subcategories too).
		 */
		if (q->include_policy_templates) {
			json_array_foreach(pts, j, t) {
				json_t *tc = json_object_get(t, "categories");
				if (tc == NULL && json_array_size(pts) == 1)
					break;
				json_array_foreach(cats, m, e)
					if (json_string_value(e))
						count(counts, json_string_value(e), 1);
				json_array_foreach(tc, m, e) {
					const char *c = json_string_value(e);
					if (c == NULL)
						continue;
					if (json_object_get(counts, c) == NULL)
						json_object_set_new(counts, c, json_integer(0));
					if (!has_category(cats, c) && !array_has(extra, c)) {
						json_array_append_new(extra, json_string(c));
						count(counts, c, 1);
					}
					count(counts, c, 1);
				}
			}
		}
		json_decref(extra);
	}
	free(v);
	keys = calloc(json_object_size(counts) + 1, sizeof(*keys));
	json_object_foreach(counts, id, val)
		if (keys)
			keys[nk++] = id;
	if (keys)
		qsort(keys, nk, sizeof(*keys), by_key);
	for (i = 0; keys && i < nk; i++) {
		const struct category *c = category_of(keys[i]);
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(keys[i]));
		json_object_set_new(o, "title", json_string(c ? c->title : keys[i]));
		json_object_set(o, "count", json_object_get(counts, keys[i]));
		if (c && c->parent) {
			json_object_set_new(o, "parent_id", json_string(c->parent));
			json_object_set_new(o, "parent_title", json_string(category_of(c->parent)->title));
		}
		json_array_append_new(out, o);
	}
	free(keys);
	s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(out);
	json_decref(counts);
	return s;
}

/* ---- one document at a time (the offline registry's index) ---- */

/*
 * With all (and the current rules), every kept document is listed on its
 * own: 20,000 parsed documents held together took 400 MB.  So a run with
 * all keeps, per document, only a skeleton (its scalar fields, which
 * by_registry_order reads) and the caller's text of it; run_finish sorts
 * the skeletons in the registry's order and answers RUN_BATCH documents at
 * a time, parsed again from their text, splicing the batches' arrays.
 */
#define RUN_BATCH 256

struct skel {
	struct pick p;           /* p.doc: the document's scalar fields only */
	const char *text;        /* the caller's text of the whole document */
	size_t len;
};

static int by_skel_order(const void *a, const void *b)
{
	return by_registry_order(&((const struct skel *)a)->p, &((const struct skel *)b)->p);
}

/* A version kept by a run answered from rendered entries. */
struct rent {
	struct pick p;           /* p.doc: the skeleton (a reference) */
	const char *entry, *dep; /* the caller's: valid until run_finish */
	size_t elen, hole, dlen;
};

static int by_rent_order(const void *a, const void *b)
{
	return by_registry_order(&((const struct rent *)a)->p, &((const struct rent *)b)->p);
}

struct al_registry_run {
	struct al_registry_query q;
	struct rent *rent;
	size_t nrent, caprent;
	int fed_rendered;        /* run_add_rendered was called */
	int categories;
	json_t *docs;
	json_t *deprecated;      /* name -> its newest deprecated version seen (latest_deprecated) */
	char name[256];          /* the name being fed */
	int name_pre;            /* legacy: a prerelease of it is kept */
	struct skel *skel;       /* all: the kept documents' skeletons */
	size_t nskel, capskel, batch;
	int failed;
};

struct al_registry_run *al_registry_run_new(const struct al_registry_query *q, int categories)
{
	struct al_registry_run *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->docs = json_array()) == NULL || (r->deprecated = json_object()) == NULL) {
		if (r != NULL)
			json_decref(r->docs);
		free(r);
		return NULL;
	}
	r->q = *q;
	r->categories = categories;
	r->batch = RUN_BATCH;
	return r;
}

void al_registry_run_set_batch(struct al_registry_run *r, size_t n)
{
	r->batch = n ? n : 1;
}

static int keep_skeleton(struct al_registry_run *r, json_t *doc, const char *text, size_t len)
{
	json_t *sk, *v;
	const char *k;

	if (r->nskel == r->capskel) {
		size_t cap = r->capskel ? r->capskel * 2 : 1024;
		struct skel *ns = realloc(r->skel, cap * sizeof(*ns));
		if (ns == NULL)
			return -ENOMEM;
		r->skel = ns;
		r->capskel = cap;
	}
	if ((sk = json_object()) == NULL)
		return -ENOMEM;
	json_object_foreach(doc, k, v)
		if (!json_is_object(v) && !json_is_array(v))
			json_object_set(sk, k, v);
	r->skel[r->nskel].p.doc = sk;
	version_of(doc, &r->skel[r->nskel].p.v);
	r->skel[r->nskel].p.pre = is_prerelease(doc);
	r->skel[r->nskel].text = text;
	r->skel[r->nskel].len = len;
	r->nskel++;
	return 0;
}

int al_registry_run_skeletons(const struct al_registry_run *r)
{
	return r->q.all && !r->q.experimental && !r->categories;
}

/* first_phase is left to the batches' apply(): with all, it decides per document. */
void al_registry_run_add_skeleton(struct al_registry_run *r, json_t *skel, const char *text, size_t len)
{
	if (!json_is_object(skel) || keep_skeleton(r, skel, text, len) != 0)
		r->failed = 1;
}

int al_registry_run_add(struct al_registry_run *r, json_t *doc, const char *text, size_t len)
{
	const char *name;
	int pre;

	if (!json_is_object(doc))
		return 0;
	note_deprecated(r->deprecated, doc);
	if (!first_phase(doc, &r->q))
		return 0;
	name = str(doc, "name");
	if (strcmp(name, r->name) != 0) {
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->name_pre = 0;
	}
	if (r->q.all) {
		if (text == NULL || !al_registry_run_skeletons(r))
			json_array_append(r->docs, doc);
		else if (keep_skeleton(r, doc, text, len) != 0)
			r->failed = 1;
		return 0;
	}
	if (!r->q.experimental) {
		json_array_append(r->docs, doc); /* the newest that qualifies */
		return 1;
	}
	/* legacyApply: a release wins over a newer prerelease, else the newest prerelease */
	pre = is_prerelease(doc);
	if (pre && r->name_pre)
		return 0;
	json_array_append(r->docs, doc);
	r->name_pre |= pre;
	return !pre;
}

void al_registry_run_add_deprecated(struct al_registry_run *r, json_t *doc)
{
	if (json_is_object(doc))
		note_deprecated(r->deprecated, doc);
}

int al_registry_run_rendered(const struct al_registry_run *r)
{
	return !r->categories && !r->q.experimental && !r->q.category[0];
}

int al_registry_run_add_rendered(struct al_registry_run *r, json_t *skel, const char *entry, size_t elen,
    size_t hole, const char *dep, size_t dlen)
{
	struct rent *e;

	r->fed_rendered = 1;
	if (!json_is_object(skel) || hole > elen || !first_phase(skel, &r->q))
		return 0;
	if (r->nrent == r->caprent) {
		size_t cap = r->caprent ? r->caprent * 2 : 1024;
		struct rent *nr = realloc(r->rent, cap * sizeof(*nr));
		if (nr == NULL) {
			r->failed = 1;
			return 0;
		}
		r->rent = nr;
		r->caprent = cap;
	}
	e = &r->rent[r->nrent];
	if (version_of(skel, &e->p.v) != 0)
		return 0; /* apply() skips it too */
	e->p.doc = json_incref(skel);
	e->entry = entry;
	e->elen = elen;
	e->hole = hole;
	e->dep = dep;
	e->dlen = dep != NULL ? dlen : 0;
	r->nrent++;
	return !r->q.all; /* Filter.Apply: the newest that qualifies (fed newest first) */
}

/* The rendered entries in the registry's order, joined as json_dumps joins an array's elements. */
static char *finish_rendered(struct al_registry_run *r)
{
	size_t total = 3, k;
	char *body, *o;

	if (r->nrent == 0)
		return strdup("[]");
	/*
	 * Fed one name after another in the index's key order, which is
	 * strcmp's: without all (one version per name) already in the
	 * registry's order, and checking is n compares where sorting was n log n
	 * (a tenth of a list's CPU at 2,000 names).  qsort is glibc's merge
	 * sort, stable: skipping it on sorted input changes nothing.
	 */
	for (k = 1; k < r->nrent && by_rent_order(&r->rent[k - 1], &r->rent[k]) <= 0; k++)
		;
	if (k < r->nrent)
		qsort(r->rent, r->nrent, sizeof(*r->rent), by_rent_order);
	for (k = 0; k < r->nrent; k++)
		total += r->rent[k].elen + r->rent[k].dlen + 2;
	if ((body = malloc(total)) == NULL)
		return NULL;
	o = body;
	*o++ = '[';
	for (k = 0; k < r->nrent; k++) {
		const struct rent *e = &r->rent[k];
		if (k > 0)
			*o++ = ',';
		*o++ = '\n';
		memcpy(o, e->entry, e->hole);
		o += e->hole;
		if (e->dlen > 0) {
			memcpy(o, e->dep, e->dlen);
			o += e->dlen;
		}
		memcpy(o, e->entry + e->hole, e->elen - e->hole);
		o += e->elen - e->hole;
	}
	*o++ = '\n';
	*o++ = ']';
	*o = '\0';
	return body;
}

/* Batches' answers, each a JSON array dumped with JSON_INDENT(2). */
struct pieces {
	char **p;
	size_t *len, n, cap, total;
};

static int add_piece(struct pieces *ps, char *s)
{
	size_t l = strlen(s);

	if (l <= 4 || s[0] != '[' || s[1] != '\n' || s[l - 1] != ']' || s[l - 2] != '\n') {
		free(s); /* "[]": nothing in this batch */
		return 0;
	}
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;
		char **np = realloc(ps->p, cap * sizeof(*np));
		size_t *nl = np ? realloc(ps->len, cap * sizeof(*nl)) : NULL;
		if (np != NULL)
			ps->p = np;
		if (nl == NULL) {
			free(s);
			return -ENOMEM;
		}
		ps->len = nl;
		ps->cap = cap;
	}
	ps->p[ps->n] = s;
	ps->len[ps->n++] = l;
	ps->total += l - 4;
	return 0;
}

/*
 * The skeletons in the registry's order, answered a batch at a time: each
 * batch's array (the same rules over its documents) is spliced into one,
 * as json_dumps would have written the whole: "[\n" elements joined by
 * ",\n" then "\n]".
 */
static char *finish_in_batches(struct al_registry_run *r, const struct al_registry_query *q)
{
	struct pieces ps = {0};
	char *body = NULL, *o;
	int rc = 0;

	qsort(r->skel, r->nskel, sizeof(*r->skel), by_skel_order);
	for (size_t i = 0; i < r->nskel && rc == 0; i += r->batch) {
		json_t *batch = json_array();
		char *s;
		for (size_t j = i; batch != NULL && j < r->nskel && j < i + r->batch; j++) {
			json_t *d = json_loadb(r->skel[j].text, r->skel[j].len, 0, NULL);
			if (d != NULL)
				json_array_append_new(batch, d);
		}
		s = batch ? search_with(batch, q, r->deprecated) : NULL;
		json_decref(batch);
		rc = s ? add_piece(&ps, s) : -ENOMEM;
	}
	/* "[", n - 1 commas, n newlines, the elements, "\n]" and the NUL */
	if (rc == 0 && (body = malloc(ps.n ? 1 + (ps.n - 1) + ps.n + ps.total + 3 : 3)) != NULL) {
		if (ps.n == 0) {
			memcpy(body, "[]", 3);
		} else {
			o = body;
			*o++ = '[';
			for (size_t k = 0; k < ps.n; k++) {
				if (k > 0)
					*o++ = ',';
				*o++ = '\n';
				memcpy(o, ps.p[k] + 2, ps.len[k] - 4);
				o += ps.len[k] - 4;
			}
			*o++ = '\n';
			*o++ = ']';
			*o = '\0';
		}
	}
	for (size_t k = 0; k < ps.n; k++)
		free(ps.p[k]);
	free(ps.p);
	free(ps.len);
	return body;
}

char *al_registry_run_finish(struct al_registry_run *r)
{
	struct al_registry_query q;
	char *body;

	if (r == NULL)
		return NULL;
	q = r->q;
	/*
	 * Without all, only the newest qualifying version of each name was
	 * kept, so apply()'s choice of the newest among them (a scan of all
	 * kept names per document) has nothing left to choose: skip it.
	 * Legacy rules keep up to two per name and still choose.
	 */
	if (!q.experimental)
		q.all = 1;
	if (r->failed)
		body = NULL;
	else if (r->fed_rendered)
		body = finish_rendered(r);
	else if (r->nskel > 0)
		body = finish_in_batches(r, &q);
	else
		body = r->categories ? al_registry_categories(r->docs, &q) : search_with(r->docs, &q, r->deprecated);
	for (size_t k = 0; k < r->nskel; k++)
		json_decref(r->skel[k].p.doc);
	free(r->skel);
	for (size_t k = 0; k < r->nrent; k++)
		json_decref(r->rent[k].p.doc);
	free(r->rent);
	json_decref(r->docs);
	json_decref(r->deprecated);
	free(r);
	return body;
}
