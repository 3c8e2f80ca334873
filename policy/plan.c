#include "policy/plan.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct ld {
	const char *file;
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	int failed;
};

static int bad(struct ld *l, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct ld *l, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!l->failed)
		snprintf(l->err, l->errlen, "%s:%zu:%zu: %s", l->file, n->start_mark.line + 1, n->start_mark.column + 1, msg);
	l->failed = 1;
	return -EINVAL;
}

int al_plan_version_shape(const char *v)
{
	const char *p = v;

	if (p == NULL)
		return 0;
	for (int part = 0; part < 3; part++) {
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		if (part < 2 && *p++ != '.')
			return 0;
	}
	if (*p && *p != '-' && *p != '+')
		return 0;
	for (; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+'))
			return 0;
	return 1;
}

int al_plan_version_ok(const char *v)
{
	return al_plan_version_shape(v) && strlen(v) < 64;
}

int al_plan_in_list(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, item, n) == 0)
			return 1;
		p = c ? c + 1 : NULL;
	}
	return 0;
}

int al_plan_model_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n >= 128 || id[0] == '.')
		return 0;
	for (; *id; id++)
		if (!(isalnum((unsigned char)*id) || *id == '_' || *id == '.' || *id == '-'))
			return 0;
	return 1;
}

int al_plan_major_minor_ok(const char *v)
{
	const char *p = v;

	for (int part = 0; part < 2; part++) {
		if (p == NULL || !isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		if (part == 0 && *p++ != '.')
			return 0;
	}
	return *p == '\0' && p - v < 16;
}

static int product_ok(const char *s)
{
	if (!*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

enum { VERSIONS, PLATFORMS, FORMATS, PRODUCTS, MODELS, MAJOR_MINOR };

/* A scalar or a sequence of scalars, each checked for what it is, into a list or a comma list. */
static int items(struct ld *l, yaml_node_t *v, int what, const char *key, char **list, int *n, char *comma,
    size_t cap)
{
	yaml_node_item_t *it, *end;
	yaml_node_item_t one;

	if (v->type == YAML_SCALAR_NODE) {
		one = (yaml_node_item_t)(v - l->doc->nodes.start + 1);
		it = &one;
		end = it + 1;
	} else if (v->type == YAML_SEQUENCE_NODE) {
		it = v->data.sequence.items.start;
		end = v->data.sequence.items.top;
	} else {
		return bad(l, v, "%s: a list expected", key);
	}
	for (; it < end; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		const char *s;
		if (e == NULL || e->type != YAML_SCALAR_NODE)
			return bad(l, e ? e : v, "%s: each item is a single value", key);
		s = (const char *)e->data.scalar.value;
		if (what == VERSIONS && !al_plan_version_ok(s))
			return bad(l, e, "%s: '%s' is not a version (MAJOR.MINOR.PATCH, as 8.13.4)", key, s);
		if (what == PLATFORMS && !al_plan_in_list(AL_PLAN_PLATFORMS, s))
			return bad(l, e, "%s: '%s' is not one of %s", key, s, AL_PLAN_PLATFORMS);
		if (what == FORMATS && !al_plan_in_list(AL_PLAN_FORMATS, s))
			return bad(l, e, "%s: '%s' is not one of %s", key, s, AL_PLAN_FORMATS);
		if (what == MODELS && !al_plan_model_id_ok(s))
			return bad(l, e, "%s: '%s' is not a model id (as elser_model_2_linux-x86_64)", key, s);
		if (what == MAJOR_MINOR && !al_plan_major_minor_ok(s))
			return bad(l, e, "%s: '%s' is not MAJOR.MINOR (as 8.15; quote it in YAML)", key, s);
		if (what == PRODUCTS && !product_ok(s))
			return bad(l, e, "%s: '%s' is not an artifact name (as elastic-agent, fleet-server)", key, s);
		if (list != NULL) {
			int dup = 0;
			for (int i = 0; i < *n; i++)
				dup |= strcmp(list[i], s) == 0;
			if (dup)
				continue;
			if (*n >= AL_PLAN_MAX)
				return bad(l, e, "%s: more than %d versions", key, AL_PLAN_MAX);
			if ((list[(*n)++] = strdup(s)) == NULL)
				return -ENOMEM;
		} else if (comma != NULL && !al_plan_in_list(comma, s)) { /* callers give list or comma */
			if (strlen(comma) + strlen(s) + 2 > cap)
				return bad(l, e, "%s: too many items", key);
			if (*comma)
				strcat(comma, ",");
			strcat(comma, s);
		}
	}
	return 0;
}

/* Keys of a mapping: each known, none twice. */
static int mapping(struct ld *l, yaml_node_t *m, const char *where, const char *const *known)
{
	if (m->type != YAML_MAPPING_NODE)
		return bad(l, m, "%s: a mapping of keys expected", where);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		int ok = 0;
		if (k == NULL || k->type != YAML_SCALAR_NODE)
			return bad(l, m, "%s: keys are names", where);
		for (int i = 0; known[i]; i++)
			ok |= strcmp(known[i], (const char *)k->data.scalar.value) == 0;
		if (!ok) {
			char names[200] = "";
			for (int i = 0; known[i]; i++)
				snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "", known[i]);
			return bad(l, k, "unknown key '%s' in %s (known: %s)", (const char *)k->data.scalar.value, where, names);
		}
		for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(l->doc, q->key);
			if (qk && qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value,
			    (const char *)k->data.scalar.value))
				return bad(l, k, "'%s' given twice (first at line %zu)", (const char *)k->data.scalar.value,
				    qk->start_mark.line + 1);
		}
	}
	return 0;
}

static int load(struct ld *l, yaml_node_t *root, struct al_plan *p)
{
	static const char *const top[] = {"stack", "agents", "endpoint", "kibana", "prerelease", "models", "product_docs",
	    "geoip", "kibana_artifacts", NULL};
	static const char *const agents[] = {"platforms", "formats", "products", NULL};
	int rc;

	if ((rc = mapping(l, root, "the plan", top)) != 0)
		return rc;
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, pr->key), *v = yaml_document_get_node(l->doc, pr->value);
		const char *key = (const char *)k->data.scalar.value;
		if (!strcmp(key, "stack"))
			rc = items(l, v, VERSIONS, "stack", p->stack, &p->nstack, NULL, 0);
		else if (!strcmp(key, "endpoint"))
			rc = items(l, v, VERSIONS, "endpoint", p->endpoint, &p->nendpoint, NULL, 0);
		else if (!strcmp(key, "kibana"))
			rc = items(l, v, VERSIONS, "kibana", p->kibana, &p->nkibana, NULL, 0);
		else if (!strcmp(key, "kibana_artifacts"))
			rc = items(l, v, VERSIONS, "kibana_artifacts", p->kibana_artifacts, &p->nkibana_artifacts, NULL, 0);
		else if (!strcmp(key, "models"))
			rc = items(l, v, MODELS, "models", p->models, &p->nmodels, NULL, 0);
		else if (!strcmp(key, "product_docs"))
			rc = items(l, v, MAJOR_MINOR, "product_docs", p->product_docs, &p->nproduct_docs, NULL, 0);
		else if (!strcmp(key, "prerelease") || !strcmp(key, "geoip")) {
			const char *s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
			if (strcmp(s, "true") && strcmp(s, "false"))
				return bad(l, v, "%s: true or false", key);
			*(!strcmp(key, "geoip") ? &p->geoip : &p->prerelease) = !strcmp(s, "true");
		} else {
			if ((rc = mapping(l, v, "agents", agents)) != 0)
				return rc;
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top && rc == 0; q++) {
				yaml_node_t *ak = yaml_document_get_node(l->doc, q->key), *av = yaml_document_get_node(l->doc, q->value);
				const char *a = (const char *)ak->data.scalar.value;
				if (!strcmp(a, "platforms"))
					rc = items(l, av, PLATFORMS, "agents.platforms", NULL, NULL, p->platforms, sizeof(p->platforms));
				else if (!strcmp(a, "formats"))
					rc = items(l, av, FORMATS, "agents.formats", NULL, NULL, p->formats, sizeof(p->formats));
				else
					rc = items(l, av, PRODUCTS, "agents.products", NULL, NULL, p->products, sizeof(p->products));
			}
		}
		if (rc != 0)
			return rc;
	}
	if (p->nstack == 0 && (p->platforms[0] || p->formats[0] || p->products[0]))
		return bad(l, root, "agents: given without stack versions to mirror them for");
	if (p->nstack == 0 && p->nendpoint == 0 && p->nkibana == 0 && p->nmodels == 0 && p->nproduct_docs == 0 &&
	    !p->geoip && p->nkibana_artifacts == 0)
		return bad(l, root, "the plan names nothing to mirror: give stack, endpoint or kibana versions, models, "
		    "product_docs, geoip or kibana_artifacts");
	return 0;
}

int al_plan_load(const char *path, struct al_plan **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	yaml_parser_t parser;
	yaml_document_t doc;
	struct al_plan *p;
	struct ld l = {path, &doc, err, errlen, 0};
	yaml_node_t *root;
	int rc;

	*out = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || !yaml_parser_initialize(&parser)) {
		free(p);
		fclose(f);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		    parser.problem ? parser.problem : "not YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		free(p);
		return -EINVAL;
	}
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		snprintf(err, errlen, "%s: empty plan: give stack, endpoint or kibana versions, models, product_docs, geoip "
		    "or kibana_artifacts", path);
		rc = -EINVAL;
	} else {
		rc = load(&l, root, p);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	if (rc != 0) {
		al_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void al_plan_free(struct al_plan *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->nstack; i++)
		free(p->stack[i]);
	for (int i = 0; i < p->nendpoint; i++)
		free(p->endpoint[i]);
	for (int i = 0; i < p->nkibana; i++)
		free(p->kibana[i]);
	for (int i = 0; i < p->nmodels; i++)
		free(p->models[i]);
	for (int i = 0; i < p->nproduct_docs; i++)
		free(p->product_docs[i]);
	for (int i = 0; i < p->nkibana_artifacts; i++)
		free(p->kibana_artifacts[i]);
	free(p);
}

static void list(FILE *f, const char *key, char *const *v, int n)
{
	fprintf(f, "%s: [", key);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? ", " : "", v[i]);
	fprintf(f, "]\n");
}

static void comma(FILE *f, const char *key, const char *s)
{
	fprintf(f, "  %s: [", key);
	for (const char *p = s; *p; p++)
		fputs(*p == ',' ? ", " : (char[]){*p, 0}, f);
	fprintf(f, "]\n");
}

void al_plan_print(FILE *f, const struct al_plan *p)
{
	fprintf(f, "# airlock plan: what this cache carries (airlock mirror --plan FILE fills a cache with it)\n");
	list(f, "stack", p->stack, p->nstack);
	if (p->nstack > 0 && (p->platforms[0] || p->formats[0] || p->products[0])) {
		fprintf(f, "agents:\n");
		if (p->platforms[0])
			comma(f, "platforms", p->platforms);
		if (p->formats[0])
			comma(f, "formats", p->formats);
		if (p->products[0])
			comma(f, "products", p->products);
	}
	list(f, "endpoint", p->endpoint, p->nendpoint);
	list(f, "kibana", p->kibana, p->nkibana);
	fprintf(f, "prerelease: %s\n", p->prerelease ? "true" : "false");
	list(f, "models", p->models, p->nmodels);
	fprintf(f, "product_docs: [");
	for (int i = 0; i < p->nproduct_docs; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", p->product_docs[i]); /* quoted: 8.10 is not the number 8.1 */
	fprintf(f, "]\n");
	fprintf(f, "geoip: %s\n", p->geoip ? "true" : "false");
	list(f, "kibana_artifacts", p->kibana_artifacts, p->nkibana_artifacts);
}
