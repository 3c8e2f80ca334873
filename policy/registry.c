/*
 * The package registry's /search and /categories rules, from
 * elastic/package-registry's source:
 *
 *   search.go      newSearchFilterFromQuery, getSpecVersion, getSearchOutput
 *   categories.go  newCategoriesFilterFromQuery, getCategories, getCategoriesOutput
 *   packages/packages.go   Filter.Apply, legacyApply, filterCategories,
 *                  filterPolicyTemplates, discoveryFilter, Packages.Less
 *   packages/package.go    IsPrerelease (isPrerelease), HasKibanaVersion,
 *                  WorksWithCapabilities, HasCompatibleSpec, HasCategory
 *                  (hasCategory), HasPolicyTemplateWithCategory, BasePackage
 *   storage/indexer.go     Indexer.Get: Filter.Apply over the whole list, so
 *                  the newest version is chosen before the category filter
 *   categories/categories.yml (commit c7e9d427): titles and parents
 *
 * A document here is the registry's own /package/<name>/<version>/ answer,
 * so it carries every field the registry filters on.
 */
#include "policy/registry.h"
#include "policy/semver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- query parsing ---- */

static void decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		if (s[i] == '%' && i + 2 < n) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	out[o] = '\0';
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
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

/* Masterminds' semver.NewVersion (lenient: "v8.13", "8"). */
static int loose_version(const char *s, struct al_semver *v)
{
	if (s[0] == '\0')
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!(*p >= '0' && *p <= '9') && !strchr(".-+v", *p) && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return -EINVAL;
	return al_semver_parse(s, v);
}

/* search.go getSpecVersion: exactly <major>.<minor>. */
static int spec_version(const char *key, const char *v, char *out, size_t cap, char *err, size_t errlen)
{
	struct al_semver sv;
	const char *dot = strchr(v, '.');

	if (dot == NULL || strchr(dot + 1, '.') != NULL) {
		snprintf(err, errlen, "invalid '%s' version: invalid version '%.100s': it should be <major.version>", key, v);
		return -EINVAL;
	}
	if (loose_version(v, &sv) != 0 || dot == v || dot[1] == '\0') {
		snprintf(err, errlen, "invalid '%s' version: invalid spec version '%.100s': Invalid Semantic Version", key, v);
		return -EINVAL;
	}
	copy(out, cap, v);
	return 0;
}

#define BAD_BOOL(k) do { snprintf(q->error, sizeof(q->error), "invalid '%s' query param: '%.200s'", k, val); \
	return -EINVAL; } while (0)

int al_registry_query_parse(const char *query, size_t len, int categories, struct al_registry_query *q)
{
	const char *p = query, *end = query + len;

	memset(q, 0, sizeof(*q));
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		char key[64], val[512];

		decode(p, eq ? (size_t)(eq - p) : (size_t)(e - p), key, sizeof(key));
		decode(eq ? eq + 1 : e, eq ? (size_t)(e - eq - 1) : 0, val, sizeof(val));
		p = amp ? amp + 1 : end;
		if (val[0] == '\0')
			continue; /* the registry reads query.Get(k) != "" */
		if (!strcmp(key, "kibana.version")) {
			struct al_semver v;
			if (loose_version(val, &v) != 0) {
				snprintf(q->error, sizeof(q->error), "invalid Kibana version '%.200s': Invalid Semantic Version", val);
				return -EINVAL;
			}
			copy(q->kibana_version, sizeof(q->kibana_version), val);
		} else if (!strcmp(key, "experimental")) {
			if (parse_bool(val, &q->experimental))
				BAD_BOOL("experimental");
		} else if (!strcmp(key, "prerelease")) {
			if (parse_bool(val, &q->prerelease))
				BAD_BOOL("prerelease");
		} else if (categories) {
			if (!strcmp(key, "include_policy_templates") && parse_bool(val, &q->include_policy_templates))
				BAD_BOOL("include_policy_templates");
		} else if (!strcmp(key, "category")) {
			copy(q->category, sizeof(q->category), val);
		} else if (!strcmp(key, "package")) {
			copy(q->package, sizeof(q->package), val);
		} else if (!strcmp(key, "type")) {
			copy(q->type, sizeof(q->type), val);
		} else if (!strcmp(key, "capabilities")) {
			copy(q->capabilities, sizeof(q->capabilities), val);
			q->has_capabilities = 1;
		} else if (!strcmp(key, "spec.min") || !strcmp(key, "spec.max")) {
			int min = key[5] == 'm' && key[6] == 'i';
			if (spec_version(key, val, min ? q->spec_min : q->spec_max, sizeof(q->spec_min), q->error,
			    sizeof(q->error)))
				return -EINVAL;
		} else if (!strcmp(key, "all")) {
			if (parse_bool(val, &q->all))
				BAD_BOOL("all");
		} else if (!strcmp(key, "discovery")) {
			/* packages.go NewDiscoveryFilter: "<type>:<comma list>"; every filter must match */
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
				snprintf(q->error, sizeof(q->error),
				    "invalid 'discovery' query param: '%.100s': unknown discovery filter \"%.*s\"", val,
				    (int)(colon - val < 100 ? colon - val : 100), val);
				return -EINVAL;
			}
			if (q->ndiscovery < AL_REGISTRY_MAX_DISCOVERY) {
				q->discovery[q->ndiscovery].datasets = ds;
				copy(q->discovery[q->ndiscovery].names, sizeof(q->discovery[0].names), colon + 1);
				q->ndiscovery++;
			}
		}
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

/* isPrerelease: a 0.x version, or one with a prerelease tag. */
static int is_prerelease(json_t *doc)
{
	struct al_semver v;

	if (version_of(doc, &v) != 0)
		return 1;
	return v.major < 1 || v.pre[0] != '\0';
}

/* HasKibanaVersion: no constraint qualifies. */
static int kibana_ok(json_t *doc, const char *want)
{
	json_t *k = json_object_get(json_object_get(doc, "conditions"), "kibana");
	const char *cons = str(k, "version");
	struct al_semver v;

	if (!want[0] || cons == NULL)
		return 1;
	if (loose_version(want, &v) != 0)
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
 * discoveryFilterFields.Matches: the package declares discovery fields (or
 * datasets) and every one of them is in the query's list.
 */
static int discovery_ok(json_t *doc, const struct al_registry_query *q)
{
	for (int k = 0; k < q->ndiscovery; k++) {
		json_t *list = json_object_get(json_object_get(doc, "discovery"), q->discovery[k].datasets ? "datasets" : "fields"), *e;
		size_t i;

		if (json_array_size(list) == 0)
			return 0;
		json_array_foreach(list, i, e) {
			const char *name = str(e, "name");
			if (name == NULL || !in_comma_list(q->discovery[k].names, name))
				return 0;
		}
	}
	return 1;
}

/* categories/categories.yml (package-registry commit c7e9d427): id, title, parent. */
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
	{"infrastructure", "Infrastructure", NULL}, {"analytics_engine", "Analytics Engine", "infrastructure"},
	{"big_data", "Big Data", "infrastructure"}, {"kubernetes", "Kubernetes", "infrastructure"},
	{"load_balancer", "Load Balancer", "infrastructure"}, {"message_queue", "Message Broker", "infrastructure"},
	{"monitoring_infrastructure", "Monitoring", "infrastructure"}, {"notification", "Notification", "infrastructure"},
	{"process_manager", "Process Manager", "infrastructure"}, {"stream_processing", "Stream Processing", "infrastructure"},
	{"virtualization", "Virtualization Platform", "infrastructure"}, {"web", "Web Server", "infrastructure"},
	{"websphere", "WebSphere Application Server", "infrastructure"}, {"languages", "Languages", NULL},
	{"network", "Network", NULL}, {"observability", "Observability", NULL},
	{"application_observability", "Application", "observability"}, {"java_observability", "Java", "observability"},
	{"monitoring", "Monitoring", "observability"}, {"os_system", "Operating Systems", NULL},
	{"productivity", "Productivity", NULL}, {"security", "Security", NULL}, {"auditd", "AuditD", "security"},
	{"authentication", "Authentication", "security"}, {"cdn_security", "Content Delivery Network", "security"},
	{"credential_management", "Credential Management", "security"}, {"database_security", "Database", "security"},
	{"dns_security", "DNS", "security"}, {"edr_xdr", "EDR/XDR", "security"}, {"email_security", "e-mail", "security"},
	{"firewall_security", "Firewall", "security"}, {"iam", "Identity and Access Management", "security"},
	{"ids_ips", "IDS/IPS", "security"}, {"network_security", "Network", "security"},
	{"productivity_security", "Productivity", "security"}, {"proxy_security", "Proxy", "security"},
	{"threat_intel", "Threat Intelligence", "security"}, {"vpn_security", "VPN", "security"},
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

/* ---- Filter.Apply / legacyApply ---- */

struct pick {
	json_t *doc;
	struct al_semver v;
	int pre;
};

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
	if (!kibana_ok(doc, q->kibana_version))
		return 0;
	if (q->package[0] && strcmp(q->package, name))
		return 0;
	if (q->type[0] && strcmp(q->type, type ? type : "integration"))
		return 0;
	if (q->experimental)
		return 1; /* legacyApply reads no capabilities, discovery or spec */
	return capabilities_ok(doc, q) && discovery_ok(doc, q) && spec_ok(doc, q);
}

/*
 * The packages the registry answers with, in its order of selection: the
 * first phase per package, then (unless all) the newest version of each
 * name (legacyApply prefers a release to a newer prerelease, and with all
 * drops the prereleases of names that have a release), then the category
 * filter.  *n entries; the array is the caller's to free.
 */
static struct pick *apply(json_t *docs, const struct al_registry_query *q, const char *category, size_t *n)
{
	size_t i, k = 0, cap = json_array_size(docs);
	struct pick *v = calloc(cap ? cap : 1, sizeof(*v));
	json_t *d;

	if (v == NULL)
		return NULL;
	json_array_foreach(docs, i, d) {
		struct pick p = {d, {0}, 0};
		int add = 1;

		if (!json_is_object(d) || !first_phase(d, q) || version_of(d, &p.v) != 0)
			continue;
		p.pre = is_prerelease(d);
		if (!q->all) {
			for (size_t j = 0; j < k; j++) {
				if (strcmp(str(v[j].doc, "name"), str(d, "name")) != 0)
					continue;
				add = 0;
				if (q->experimental) {
					if (v[j].pre == p.pre && al_semver_cmp(&v[j].v, &p.v) >= 0)
						continue;
					if (!v[j].pre && p.pre)
						continue;
				} else if (al_semver_cmp(&v[j].v, &p.v) >= 0) {
					continue;
				}
				v[j] = p;
			}
		}
		if (add)
			v[k++] = p;
	}
	if (q->experimental && q->all) {
		size_t w = 0;
		for (size_t r = 0; r < k; r++) {
			int has_release = 0;
			for (size_t j = 0; j < k && v[r].pre; j++)
				has_release |= !v[j].pre && !strcmp(str(v[j].doc, "name"), str(v[r].doc, "name"));
			if (!has_release)
				v[w++] = v[r];
		}
		k = w;
	}
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

/* Packages.Less: by title when both have one and they differ, else by version as a string. */
static int by_registry_order(const void *a, const void *b)
{
	json_t *x = ((const struct pick *)a)->doc, *y = ((const struct pick *)b)->doc;
	const char *tx = str(x, "title"), *ty = str(y, "title");
	int c;

	if (tx && ty && (c = strcmp(tx, ty)) != 0)
		return c;
	return strcmp(str(x, "version"), str(y, "version"));
}

/* BasePolicyTemplate: the fields /search keeps of a policy template. */
static json_t *base_policy_templates(json_t *pts, const char *only_category)
{
	static const char *const keep[] = {"name", "title", "description", "icons", "categories",
		"deployment_modes", "data_streams", NULL};
	json_t *out = json_array(), *t;
	size_t i;

	json_array_foreach(pts, i, t) {
		json_t *o;
		/* filterPolicyTemplates: when only templates matched the category, only those (exact match) */
		if (only_category != NULL && !array_has(json_object_get(t, "categories"), only_category))
			continue;
		o = json_object();
		for (int f = 0; keep[f]; f++) {
			json_t *val = json_object_get(t, keep[f]);
			if (val != NULL)
				json_object_set(o, keep[f], val);
			else if (!strcmp(keep[f], "name") || !strcmp(keep[f], "title") || !strcmp(keep[f], "description"))
				json_object_set_new(o, keep[f], json_string(""));
		}
		json_array_append_new(out, o);
	}
	return out;
}

char *al_registry_search(json_t *docs, const struct al_registry_query *q)
{
	/* BasePackage, in its field order; "deprecated" where newer registries set it */
	static const char *const fields[] = {"name", "title", "version", "release", "source", "description", "type",
		"download", "path", "icons", "policy_templates_behavior", "policy_templates", "conditions", "owner",
		"categories", "signature_path", "discovery", "deprecated", NULL};
	size_t n;
	struct pick *v = apply(docs, q, q->category, &n);
	json_t *out = json_array();
	char *s;

	if (v != NULL)
		qsort(v, n, sizeof(*v), by_registry_order);
	for (size_t i = 0; v && i < n; i++) {
		json_t *doc = v[i].doc, *item = json_object();
		const char *only = q->category[0] && !has_category(json_object_get(doc, "categories"), q->category) ?
		    q->category : NULL;

		for (int f = 0; fields[f]; f++) {
			json_t *val = json_object_get(doc, fields[f]);
			if (!strcmp(fields[f], "policy_templates")) {
				if (json_array_size(val) > 0) {
					json_t *pts = base_policy_templates(val, only);
					if (json_array_size(pts) > 0)
						json_object_set_new(item, "policy_templates", pts);
					else
						json_decref(pts);
				}
			} else if (val != NULL) {
				json_object_set(item, fields[f], val);
			} else if (!strcmp(fields[f], "description") || !strcmp(fields[f], "download")) {
				json_object_set_new(item, fields[f], json_string(""));
			} else if (!strcmp(fields[f], "type")) {
				json_object_set_new(item, "type", json_string("integration"));
			} else if (!strcmp(fields[f], "path")) {
				char p[512];
				snprintf(p, sizeof(p), "/package/%s/%s", str(doc, "name"), str(doc, "version"));
				json_object_set_new(item, "path", json_string(p));
			}
		}
		json_array_append_new(out, item);
	}
	free(v);
	s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(out);
	return s;
}

static void count(json_t *counts, const char *c, int by)
{
	json_object_set_new(counts, c, json_integer(json_integer_value(json_object_get(counts, c)) + by));
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

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
		 * the package is not already in it.
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

struct al_registry_run {
	struct al_registry_query q;
	int categories;
	json_t *docs;
	char name[256];          /* the name being fed */
	int name_pre;            /* legacy: a prerelease of it is kept */
	struct skel *skel;       /* all: the kept documents' skeletons */
	size_t nskel, capskel, batch;
	int failed;
};

struct al_registry_run *al_registry_run_new(const struct al_registry_query *q, int categories)
{
	struct al_registry_run *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->docs = json_array()) == NULL) {
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

	if (!json_is_object(doc) || !first_phase(doc, &r->q))
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
		s = batch ? al_registry_search(batch, q) : NULL;
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
	else if (r->nskel > 0)
		body = finish_in_batches(r, &q);
	else
		body = r->categories ? al_registry_categories(r->docs, &q) : al_registry_search(r->docs, &q);
	for (size_t k = 0; k < r->nskel; k++)
		json_decref(r->skel[k].p.doc);
	free(r->skel);
	json_decref(r->docs);
	free(r);
	return body;
}
