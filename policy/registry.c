#include "policy/registry.h"
#include "policy/semver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int truthy(const char *v)
{
	return !strcasecmp(v, "true") || !strcmp(v, "1");
}

int al_registry_query_parse(const char *query, size_t len, struct al_registry_query *q)
{
	const char *p = query, *end = query + len;

	memset(q, 0, sizeof(*q));
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		char key[64], val[512];

		decode(p, eq ? (size_t)(eq - p) : (size_t)(e - p), key, sizeof(key));
		decode(eq ? eq + 1 : e, eq ? (size_t)(e - eq - 1) : 0, val, sizeof(val));
		if (!strcmp(key, "kibana.version"))
			copy(q->kibana_version, sizeof(q->kibana_version), val);
		else if (!strcmp(key, "agent.version"))
			copy(q->agent_version, sizeof(q->agent_version), val);
		else if (!strcmp(key, "package"))
			copy(q->package, sizeof(q->package), val);
		else if (!strcmp(key, "category"))
			copy(q->category, sizeof(q->category), val);
		else if (!strcmp(key, "type"))
			copy(q->type, sizeof(q->type), val);
		else if (!strcmp(key, "capabilities")) {
			copy(q->capabilities, sizeof(q->capabilities), val);
			q->has_capabilities = 1;
		} else if (!strcmp(key, "spec.min"))
			copy(q->spec_min, sizeof(q->spec_min), val);
		else if (!strcmp(key, "spec.max"))
			copy(q->spec_max, sizeof(q->spec_max), val);
		else if (!strcmp(key, "prerelease") || !strcmp(key, "experimental"))
			q->prerelease |= truthy(val);
		else if (!strcmp(key, "all"))
			q->all = truthy(val);
		else if (!strcmp(key, "include_policy_templates"))
			q->include_policy_templates = truthy(val);
		p = amp ? amp + 1 : end;
	}
	if (q->kibana_version[0]) {
		struct al_semver v;
		if (al_semver_parse(q->kibana_version, &v) != 0)
			return -EINVAL;
	}
	return 0;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A condition constraint at conditions.<a>.<b> (e.g. kibana.version), or NULL. */
static const char *condition(json_t *doc, const char *a, const char *b)
{
	json_t *c = json_object_get(doc, "conditions");
	const char *v;
	char dotted[64];

	if (c == NULL)
		return NULL;
	if ((v = str(json_object_get(c, a), b)) != NULL)
		return v;
	snprintf(dotted, sizeof(dotted), "%s.%s", a, b); /* older documents: "kibana.version" flat */
	return str(c, dotted);
}

static int version_ok(json_t *doc, const char *a, const char *want)
{
	struct al_semver v;
	const char *cons;

	if (!want[0] || (cons = condition(doc, a, "version")) == NULL)
		return 1;
	if (al_semver_parse(want, &v) != 0)
		return 0;
	return al_semver_satisfies(cons, &v) == 1;
}

static int is_prerelease(json_t *doc)
{
	struct al_semver v;
	const char *rel = str(doc, "release");

	if (al_semver_parse(str(doc, "version") ? str(doc, "version") : "", &v) != 0 || v.pre[0])
		return 1;
	return rel != NULL && (!strcmp(rel, "beta") || !strcmp(rel, "experimental"));
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

static int capabilities_ok(json_t *doc, const struct al_registry_query *q)
{
	json_t *c = json_object_get(json_object_get(doc, "conditions"), "elastic"), *need, *e;
	size_t i;

	if (!q->has_capabilities || c == NULL || (need = json_object_get(c, "capabilities")) == NULL)
		return 1;
	json_array_foreach(need, i, e)
		if (json_string_value(e) && !in_comma_list(q->capabilities, json_string_value(e)))
			return 0;
	return 1;
}

/* spec.min/spec.max ("major.minor") against format_version. */
static int spec_ok(json_t *doc, const struct al_registry_query *q)
{
	struct al_semver fv, lo, hi;

	if (!q->spec_min[0] && !q->spec_max[0])
		return 1;
	if (al_semver_parse(str(doc, "format_version") ? str(doc, "format_version") : "", &fv) != 0)
		return 0;
	fv.patch = 0;
	fv.pre[0] = '\0';
	if (q->spec_min[0] && al_semver_parse(q->spec_min, &lo) == 0 && al_semver_cmp(&fv, &lo) < 0)
		return 0;
	if (q->spec_max[0] && al_semver_parse(q->spec_max, &hi) == 0 && al_semver_cmp(&fv, &hi) > 0)
		return 0;
	return 1;
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

static int category_ok(json_t *doc, const char *cat)
{
	json_t *pt, *t;
	size_t i;

	if (!cat[0] || array_has(json_object_get(doc, "categories"), cat))
		return 1;
	pt = json_object_get(doc, "policy_templates");
	json_array_foreach(pt, i, t)
		if (array_has(json_object_get(t, "categories"), cat))
			return 1;
	return 0;
}

static int qualifies(json_t *doc, const struct al_registry_query *q, int with_category)
{
	const char *name = str(doc, "name");

	if (name == NULL || str(doc, "version") == NULL)
		return 0;
	if (q->package[0] && strcmp(q->package, name))
		return 0;
	if (q->type[0] && (!str(doc, "type") || strcmp(q->type, str(doc, "type"))))
		return 0;
	if (!q->prerelease && is_prerelease(doc))
		return 0;
	return version_ok(doc, "kibana", q->kibana_version) && version_ok(doc, "agent", q->agent_version) &&
	    capabilities_ok(doc, q) && spec_ok(doc, q) && (!with_category || category_ok(doc, q->category));
}

static int by_name_then_newest(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	struct al_semver vx, vy;
	int c = strcmp(str(x, "name"), str(y, "name"));

	if (c)
		return c;
	al_semver_parse(str(x, "version"), &vx);
	al_semver_parse(str(y, "version"), &vy);
	return -al_semver_cmp(&vx, &vy);
}

/* Qualifying documents, sorted by name then newest first; only the newest of each name unless all. */
static json_t **select_docs(json_t *docs, const struct al_registry_query *q, int with_category, size_t *n)
{
	size_t i, k = 0, cap = json_array_size(docs);
	json_t *d, **v = calloc(cap ? cap : 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	json_array_foreach(docs, i, d)
		if (json_is_object(d) && qualifies(d, q, with_category))
			v[k++] = d;
	qsort(v, k, sizeof(*v), by_name_then_newest);
	if (!q->all) {
		size_t w = 0;
		for (size_t r = 0; r < k; r++)
			if (w == 0 || strcmp(str(v[w - 1], "name"), str(v[r], "name")))
				v[w++] = v[r];
		k = w;
	}
	*n = k;
	return v;
}

char *al_registry_search(json_t *docs, const struct al_registry_query *q)
{
	static const char *const fields[] = {"name", "title", "version", "release", "description", "type",
		"download", "path", "icons", "policy_templates", "conditions", "owner", "categories",
		"signature_path", "format_version", "data_streams", NULL};
	size_t n;
	json_t **v = select_docs(docs, q, 1, &n), *out = json_array();
	char *s;

	for (size_t i = 0; v && i < n; i++) {
		json_t *item = json_object();
		for (int f = 0; fields[f]; f++) {
			json_t *val = json_object_get(v[i], fields[f]);
			if (val)
				json_object_set(item, fields[f], val);
		}
		if (!json_object_get(item, "path")) {
			char p[512];
			snprintf(p, sizeof(p), "/package/%s/%s", str(v[i], "name"), str(v[i], "version"));
			json_object_set_new(item, "path", json_string(p));
		}
		json_array_append_new(out, item);
	}
	free(v);
	s = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	return s;
}

static const char *category_title(const char *id)
{
	static const struct {
		const char *id, *title;
	} t[] = {
		{"aws", "AWS"}, {"azure", "Azure"}, {"cloud", "Cloud"}, {"config_management", "Config management"},
		{"containers", "Containers"}, {"crm", "CRM"}, {"custom", "Custom"}, {"datastore", "Database"},
		{"elastic_stack", "Elastic Stack"}, {"google_cloud", "Google Cloud"}, {"kubernetes", "Kubernetes"},
		{"message_queue", "Message queue"}, {"monitoring", "Monitoring"}, {"network", "Network"},
		{"notification", "Notification"}, {"observability", "Observability"}, {"os_system", "OS & System"},
		{"productivity", "Productivity"}, {"security", "Security"}, {"threat_intel", "Threat intelligence"},
		{"ticketing", "Ticketing"}, {"version_control", "Version control"}, {"web", "Web"}, {NULL, NULL},
	};

	for (int i = 0; t[i].id; i++)
		if (!strcmp(t[i].id, id))
			return t[i].title;
	return id;
}

static void count_into(json_t *counts, json_t *cats)
{
	size_t i;
	json_t *e;

	json_array_foreach(cats, i, e) {
		const char *id = json_string_value(e);
		if (id)
			json_object_set_new(counts, id, json_integer(json_integer_value(json_object_get(counts, id)) + 1));
	}
}

static int by_id(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "id")),
	    json_string_value(json_object_get(*(json_t *const *)b, "id")));
}

char *al_registry_categories(json_t *docs, const struct al_registry_query *q)
{
	size_t n, i;
	json_t **v = select_docs(docs, q, 0, &n), *counts = json_object(), *out = json_array(), *val, **items;
	const char *id;
	char *s;

	for (i = 0; v && i < n; i++) {
		json_t *pt, *t;
		size_t j;
		count_into(counts, json_object_get(v[i], "categories"));
		if (q->include_policy_templates) {
			pt = json_object_get(v[i], "policy_templates");
			json_array_foreach(pt, j, t)
				count_into(counts, json_object_get(t, "categories"));
		}
	}
	items = calloc(json_object_size(counts) + 1, sizeof(*items));
	i = 0;
	json_object_foreach(counts, id, val) {
		json_t *c = json_object();
		json_object_set_new(c, "id", json_string(id));
		json_object_set_new(c, "title", json_string(category_title(id)));
		json_object_set(c, "count", val);
		items[i++] = c;
	}
	qsort(items, i, sizeof(*items), by_id);
	for (size_t k = 0; k < i; k++)
		json_array_append_new(out, items[k]);
	free(items);
	free(v);
	s = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	json_decref(counts);
	return s;
}
