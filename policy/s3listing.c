/*
 * Kibana's AI Assistant reads its product documentation from an S3 bucket
 * (xpack.productDocBase.artifactRepositoryUrl, default
 * https://kibana-knowledge-base-artifacts.elastic.co): fetchArtifactVersions
 * (kibana 156fdbc6, x-pack/platform/plugins/shared/ai_infra/product_doc_base/
 * server/services/package_installer/steps/fetch_artifact_versions.ts) GETs
 * ${url}?max-keys=1000, parses it with xml2js and reads only
 * ListBucketResult.IsTruncated and each Contents' Key, which it passes to
 * parseArtifactName; it then downloads ${url}/<artifact>.  Offline, airlock
 * writes the listing itself from what its cache holds (proxy/front/
 * offline_listing.c), so Kibana never picks an artifact that would fail.
 */
#include "policy/s3listing.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value between <Key> and </Key> at p (entities decoded) into out. */
static int decode(const char *p, size_t n, char *out, size_t cap)
{
	static const struct {
		const char *ent;
		char ch;
	} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		char ch = p[i];
		size_t step = 1;
		if (ch == '&') {
			size_t k;
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].ent);
				if (n - i >= el && memcmp(p + i, ents[k].ent, el) == 0) {
					ch = ents[k].ch;
					step = el;
					break;
				}
			}
			if (k == sizeof(ents) / sizeof(ents[0]))
				return -EINVAL; /* numeric references and others: not a key we use */
		}
		if (o + 1 >= cap)
			return -ENAMETOOLONG;
		out[o++] = ch;
		i += step;
	}
	out[o] = '\0';
	return 0;
}

int al_s3_keys(const char *xml, size_t len, void (*cb)(const char *key, void *arg), void *arg)
{
	const char *end = xml + len, *p;
	int count = 0;
	char key[1100];

	/* the document element: <ListBucketResult ...> after an optional declaration */
	for (p = xml; p + 17 <= end; p++)
		if (memcmp(p, "<ListBucketResult", 17) == 0 && (p[17] == '>' || isspace((unsigned char)p[17])))
			break;
	if (p + 17 > end)
		return -EINVAL;
	while (p < end) {
		const char *c = NULL, *k, *ke, *ce;
		for (; p + 10 <= end; p++)
			if (memcmp(p, "<Contents>", 10) == 0) {
				c = p + 10;
				break;
			}
		if (c == NULL)
			break;
		for (ce = c; ce + 11 <= end && memcmp(ce, "</Contents>", 11) != 0; ce++)
			;
		if (ce + 11 > end)
			break;
		for (k = c; k + 5 <= ce && memcmp(k, "<Key>", 5) != 0; k++)
			;
		if (k + 5 <= ce) {
			k += 5;
			for (ke = k; ke + 6 <= ce && memcmp(ke, "</Key>", 6) != 0; ke++)
				;
			if (ke + 6 <= ce && decode(k, (size_t)(ke - k), key, sizeof(key)) == 0) {
				cb(key, arg);
				count++;
			}
		}
		p = ce + 11;
	}
	return count;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct al_s3_object *)a)->key, ((const struct al_s3_object *)b)->key);
}

/* text with &, <, >, " escaped, appended at *o of buf (cap bytes); -1 when full */
static int put_escaped(char *buf, size_t cap, size_t *o, const char *s)
{
	for (; *s; s++) {
		const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : NULL;
		size_t rl = rep ? strlen(rep) : 1;
		if (*o + rl + 1 > cap)
			return -1;
		memcpy(buf + *o, rep ? rep : s, rl);
		*o += rl;
	}
	buf[*o] = '\0';
	return 0;
}

/* raw text appended at *o of buf (cap bytes); -1 when full */
static int put(char *buf, size_t cap, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (*o + n + 1 > cap)
		return -1;
	memcpy(buf + *o, s, n + 1);
	*o += n;
	return 0;
}

char *al_s3_listing(const char *bucket, struct al_s3_object *objs, size_t n)
{
	size_t cap = 512 + strlen(bucket) * 6, o = 0;
	char *buf, num[32];
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		cap += 256 + strlen(objs[i].key) * 6 + (objs[i].etag ? strlen(objs[i].etag) * 6 : 0) +
		    (objs[i].last_modified ? strlen(objs[i].last_modified) * 6 : 0);
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	if (n > 0) /* qsort must not be handed a NULL array, even empty */
		qsort(objs, n, sizeof(*objs), by_key);
	bad |= put(buf, cap, &o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>");
	bad |= put_escaped(buf, cap, &o, bucket);
	bad |= put(buf, cap, &o, "</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys>"
	    "<IsTruncated>false</IsTruncated>");
	for (size_t i = 0; i < n && !bad; i++) {
		bad |= put(buf, cap, &o, "<Contents><Key>");
		bad |= put_escaped(buf, cap, &o, objs[i].key);
		bad |= put(buf, cap, &o, "</Key>");
		if (objs[i].last_modified) {
			bad |= put(buf, cap, &o, "<LastModified>");
			bad |= put_escaped(buf, cap, &o, objs[i].last_modified);
			bad |= put(buf, cap, &o, "</LastModified>");
		}
		if (objs[i].etag) {
			bad |= put(buf, cap, &o, "<ETag>");
			bad |= put_escaped(buf, cap, &o, objs[i].etag);
			bad |= put(buf, cap, &o, "</ETag>");
		}
		snprintf(num, sizeof(num), "%llu", (unsigned long long)objs[i].size);
		bad |= put(buf, cap, &o, "<Size>");
		bad |= put(buf, cap, &o, num);
		bad |= put(buf, cap, &o, "</Size><StorageClass>STANDARD</StorageClass></Contents>");
	}
	bad |= put(buf, cap, &o, "</ListBucketResult>\n");
	if (bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

int al_product_doc_version(const char *name, char *ver, size_t cap)
{
	/* DocumentationProduct (product-doc-common/src/product.ts) */
	static const char *const products[] = {"kibana", "elasticsearch", "observability", "security", NULL};
	char base[256];
	size_t n = strlen(name), pl;
	const char *dd, *v, *prod;
	int ok = 0;

	if (n >= 4 && strcmp(name + n - 4, ".zip") == 0)
		n -= 4;
	if (n >= sizeof(base))
		return 0;
	memcpy(base, name, n);
	base[n] = '\0';
	/* the last "--<inferenceId>" comes off first */
	for (dd = NULL, v = base; (v = strstr(v, "--")) != NULL; v++)
		dd = v;
	if (dd != NULL)
		base[dd - base] = '\0';
	if (strncmp(base, "kb-product-doc-", 15) != 0)
		return 0;
	prod = base + 15;
	for (pl = 0; prod[pl] >= 'a' && prod[pl] <= 'z'; pl++)
		;
	if (pl == 0 || prod[pl] != '-')
		return 0;
	for (int i = 0; products[i]; i++)
		if (strlen(products[i]) == pl && strncmp(prod, products[i], pl) == 0)
			ok = 1;
	v = prod + pl + 1;
	/* [0-9]+\.[0-9]+ to the end */
	{
		size_t i = 0, a = 0, b = 0;
		while (isdigit((unsigned char)v[i]))
			i++, a++;
		if (v[i] != '.')
			return 0;
		i++;
		while (isdigit((unsigned char)v[i]))
			i++, b++;
		if (!ok || a == 0 || b == 0 || v[i] != '\0' || i >= cap)
			return 0;
		memcpy(ver, v, i + 1);
	}
	return 1;
}

const char *al_s3_bucket_of(const char *base, size_t len)
{
	static const struct {
		const char *base, *bucket;
	} known[] = {
		{"https://kibana-knowledge-base-artifacts.elastic.co", "kibana-knowledge-base-artifacts"},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].base) == len && memcmp(base, known[i].base, len) == 0)
			return known[i].bucket;
	return NULL;
}
