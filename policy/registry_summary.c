/*
 * The offline registry index's summary of a package document.  A query
 * parses summaries, never whole documents (a real document carries every
 * data stream's fields and variables: 1-20 KB, against a few hundred bytes
 * kept here), so the table below must hold every field the rules in
 * registry.c read and every field /search answers with.
 */
#include "policy/registry_summary.h"
#include "policy/registry.h"
#include "policy/semver.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Of each policy template: BasePolicyTemplate's fields (/search) and the categories the filters read. */
static const char *const PT_KEEP[] = {"name", "title", "description", "icons", "categories", "deployment_modes",
	"data_streams", "deprecated", NULL};

/* Of each data stream: BaseDataStream's fields (packages/datastream.go at AL_REGISTRY_COMMIT). */
static const char *const DS_KEEP[] = {"type", "dataset", "title", "deprecated", NULL};

/*
 * The summary's fields: a field of the document, kept whole (keep NULL) or,
 * for an array of objects, each trimmed to keep.  Adding a field is one row
 * here and a bump of AL_REGISTRY_SUMMARY_FORMAT.
 */
static const struct summary_field {
	const char *name;
	const char *const *keep;
} SUMMARY[] = {
	{"name", NULL}, {"title", NULL}, {"version", NULL}, {"release", NULL}, {"description", NULL},
	{"type", NULL}, {"download", NULL}, {"path", NULL}, {"icons", NULL}, {"source", NULL}, {"owner", NULL},
	{"categories", NULL}, {"conditions", NULL}, {"signature_path", NULL}, {"discovery", NULL},
	{"deprecated", NULL}, {"format_version", NULL}, {"policy_templates", PT_KEEP},
	{"policy_templates_behavior", NULL}, {"data_streams", DS_KEEP}, {"requires", NULL}, {"group", NULL},
	{NULL, NULL},
};

int al_registry_index_key(const char *url, size_t len, char key[AL_REGISTRY_INDEX_KEY_MAX + 1])
{
	const char *end = url + len, *v, *n, *p;
	size_t bl, nl, vl;

	if (len == 0 || memchr(url, '?', len) != NULL || memchr(url, '\0', len) != NULL)
		return -EINVAL;
	if (end[-1] == '/')
		end--;
	for (v = end; v > url && v[-1] != '/'; v--)
		;
	if (v == end || v == url)
		return -EINVAL;
	for (n = v - 1; n > url && n[-1] != '/'; n--)
		;
	if (n == v - 1 || n - url < 9)
		return -EINVAL;
	p = n - 9;
	if (memcmp(p, "/package/", 9) != 0)
		return -EINVAL;
	bl = (size_t)(p - url);
	nl = (size_t)(v - 1 - n);
	vl = (size_t)(end - v);
	if (bl + nl + vl + 2 > AL_REGISTRY_INDEX_KEY_MAX)
		return -EINVAL;
	memcpy(key, url, bl);
	key[bl] = '\0';
	memcpy(key + bl + 1, n, nl);
	key[bl + 1 + nl] = '\0';
	memcpy(key + bl + nl + 2, v, vl);
	key[bl + nl + vl + 2] = '\0';
	return (int)(bl + nl + vl + 2);
}

static json_t *trimmed(json_t *arr, const char *const *keep)
{
	json_t *out = json_array(), *e;
	size_t i;

	if (out == NULL)
		return NULL;
	json_array_foreach(arr, i, e) {
		json_t *o;
		if (!json_is_object(e)) {
			json_array_append(out, e);
			continue;
		}
		if ((o = json_object()) == NULL)
			break;
		for (int k = 0; keep[k]; k++) {
			json_t *val = json_object_get(e, keep[k]);
			if (val != NULL)
				json_object_set(o, keep[k], val);
		}
		json_array_append_new(out, o);
	}
	return out;
}

/*
 * What the filters read (policy/registry.c first_phase) and the order
 * (name, then version): a query parses this, never the summary, unless
 * it asks for a category, /categories or the legacy rules.
 */
static const char *const SKELETON[] = {"name", "version", "release", "type", "format_version", "conditions",
	"discovery", NULL};

char *al_registry_summary(const char *body, size_t len, size_t *out_len)
{
	json_t *doc = json_loadb(body, len, 0, NULL), *sum, *skel;
	struct al_registry_rendered rd = {0};
	char *s = NULL, *a = NULL, *b = NULL;

	if (doc == NULL || !json_is_object(doc) || !json_is_string(json_object_get(doc, "name")) ||
	    !json_is_string(json_object_get(doc, "version")) || (sum = json_object()) == NULL) {
		json_decref(doc);
		return NULL;
	}
	for (int f = 0; SUMMARY[f].name; f++) {
		json_t *val = json_object_get(doc, SUMMARY[f].name);
		if (val == NULL)
			continue;
		if (SUMMARY[f].keep != NULL && json_is_array(val))
			json_object_set_new(sum, SUMMARY[f].name, trimmed(val, SUMMARY[f].keep));
		else
			json_object_set(sum, SUMMARY[f].name, val);
	}
	if ((skel = json_object()) != NULL) {
		for (int f = 0; SKELETON[f]; f++)
			if (json_object_get(sum, SKELETON[f]) != NULL)
				json_object_set(skel, SKELETON[f], json_object_get(sum, SKELETON[f]));
		a = json_dumps(skel, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(skel);
	}
	b = json_dumps(sum, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (a != NULL && b != NULL && al_registry_render(sum, &rd) == 0) {
		/* the parts' lengths first: a reader finds each part without scanning 20,000 summaries */
		size_t kl = strlen(a), sl = strlen(b), n;
		char head[96];
		int hl = snprintf(head, sizeof(head), "%zu %zu %zu %zu\n", kl, sl, rd.hole, rd.dlen);
		n = (size_t)hl + kl + sl + rd.elen + rd.dlen;
		if ((s = malloc(n + 1)) != NULL) {
			char *o = s;
			memcpy(o, head, (size_t)hl);
			o += hl;
			memcpy(o, a, kl);
			o += kl;
			memcpy(o, b, sl);
			o += sl;
			memcpy(o, rd.entry, rd.elen);
			o += rd.elen;
			if (rd.dlen > 0)
				memcpy(o, rd.dep, rd.dlen);
			s[n] = '\0';
			*out_len = n;
		}
	}
	free(rd.entry);
	free(rd.dep);
	free(a);
	free(b);
	json_decref(sum);
	json_decref(doc);
	return s;
}

int al_registry_summary_split(const char *text, size_t len, struct al_registry_summary_parts *p)
{
	const char *nl = memchr(text, '\n', len < 96 ? len : 96);
	unsigned long long v[4];
	char head[96], *e = head;

	if (nl == NULL)
		return -EINVAL;
	memcpy(head, text, (size_t)(nl - text));
	head[nl - text] = '\0';
	for (int i = 0; i < 4; i++) {
		if (*e < '0' || *e > '9')
			return -EINVAL;
		v[i] = strtoull(e, &e, 10);
		if (*e != (i < 3 ? ' ' : '\0'))
			return -EINVAL;
		e++;
	}
	len -= (size_t)(nl + 1 - text);
	/* skeleton, summary and notice within the rest, the hole within the entry */
	if (v[0] > len || v[1] > len - v[0] || v[3] > len - v[0] - v[1] || v[2] > len - v[0] - v[1] - v[3])
		return -EINVAL;
	p->skel = nl + 1;
	p->klen = v[0];
	p->summary = p->skel + v[0];
	p->slen = v[1];
	p->entry = p->summary + v[1];
	p->elen = len - v[0] - v[1] - v[3];
	p->hole = v[2];
	p->dlen = v[3];
	p->dep = v[3] ? p->entry + p->elen : NULL;
	return 0;
}

/*
 * "major.minor.patch", each 1 to 9 digits and nothing else, as
 * al_semver_parse reads it (strtol of at most 9 digits, the rest zero):
 * nearly every package version, and a list parses every cached one.  1
 * when it is of that form (*v set), else 0.
 */
static int plain_version(const char *ver, size_t vlen, struct al_semver *v)
{
	long part[3] = {0, 0, 0};
	size_t i = 0;

	for (int k = 0; k < 3; k++) {
		size_t start = i;
		for (; i < vlen && ver[i] >= '0' && ver[i] <= '9'; i++)
			part[k] = part[k] * 10 + (ver[i] - '0');
		if (i == start || i - start > 9 || (k < 2 ? i >= vlen || ver[i] != '.' : i != vlen))
			return 0;
		i++;
	}
	memset(v, 0, sizeof(*v));
	v->major = part[0];
	v->minor = part[1];
	v->patch = part[2];
	return 1;
}

int al_registry_index_version(const char *ver, size_t vlen, struct al_semver *v)
{
	char b[64];

	if (plain_version(ver, vlen, v))
		return 0;
	if (vlen >= sizeof(b) || memchr(ver, '\0', vlen) != NULL)
		return -EINVAL;
	memcpy(b, ver, vlen);
	b[vlen] = '\0';
	return al_semver_parse(b, v) == 0 ? 0 : -EINVAL;
}

int al_registry_index_version_cmp(const struct al_semver *a, const char *as, size_t al, const struct al_semver *b,
    const char *bs, size_t bl)
{
	int c = al_semver_cmp(a, b);

	if (c != 0)
		return c;
	c = memcmp(as, bs, al < bl ? al : bl);
	return c != 0 ? c : (al > bl) - (al < bl);
}

char *al_registry_name_record(const char *version, size_t vlen, const char *dep, size_t dlen, size_t *out_len)
{
	char head[48];
	int hl = snprintf(head, sizeof(head), "%zu %zu\n", vlen, dlen);
	char *s = malloc((size_t)hl + vlen + dlen + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, head, (size_t)hl);
	memcpy(s + hl, version, vlen);
	if (dlen > 0)
		memcpy(s + hl + vlen, dep, dlen);
	s[hl + vlen + dlen] = '\0';
	*out_len = (size_t)hl + vlen + dlen;
	return s;
}

int al_registry_name_record_split(const char *text, size_t len, struct al_registry_name_parts *p)
{
	const char *nl = memchr(text, '\n', len < 48 ? len : 48);
	unsigned long long v[2];
	char head[48], *e = head;

	if (nl == NULL)
		return -EINVAL;
	memcpy(head, text, (size_t)(nl - text));
	head[nl - text] = '\0';
	for (int i = 0; i < 2; i++) {
		if (*e < '0' || *e > '9')
			return -EINVAL;
		v[i] = strtoull(e, &e, 10);
		if (*e != (i < 1 ? ' ' : '\0'))
			return -EINVAL;
		e++;
	}
	len -= (size_t)(nl + 1 - text);
	if (v[0] == 0 || v[0] > len || v[1] != len - v[0])
		return -EINVAL;
	p->version = nl + 1;
	p->vlen = v[0];
	p->dep = p->version + v[0];
	p->dlen = v[1];
	return 0;
}
