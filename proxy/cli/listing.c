#include "proxy/cli/listing.h"
#include "policy/freshness.h"
#include "policy/units.h"

#include <stdlib.h>
#include <string.h>

struct row *listing_add(struct listing *l, const struct al_record *rec)
{
	struct row *r;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct row *nv = realloc(l->v, cap * sizeof(*nv));
		if (nv == NULL)
			return NULL;
		l->v = nv;
		l->cap = cap;
	}
	r = &l->v[l->n];
	memset(r, 0, sizeof(*r));
	if ((r->url = strndup(rec->url, rec->url_len)) == NULL)
		return NULL;
	l->n++;
	al_classify_url(r->url, &r->what);
	r->status = rec->status;
	r->size = rec->body_len;
	r->flags = rec->flags;
	memcpy(r->sha256, rec->sha256, 32);
	return r;
}

void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].url);
	free(l->v);
}

static int by_url(const void *a, const void *b)
{
	return strcmp((*(const struct row *const *)a)->url, (*(const struct row *const *)b)->url);
}

static struct row *find(struct row **sorted, size_t n, const char *url, const char *suffix)
{
	char want[8300];
	struct row probe = {.url = want}, *pp = &probe, **hit;

	snprintf(want, sizeof(want), "%s%s", url, suffix);
	hit = n ? bsearch(&pp, sorted, n, sizeof(sorted[0]), by_url) : NULL;
	return hit ? *hit : NULL;
}

static int wants_signature(const struct row *r)
{
	return !strcmp(r->what.kind, "agent-artifact") || !strcmp(r->what.kind, "package-archive");
}

void listing_check(struct listing *l)
{
	struct row **sorted = malloc((l->n + 1) * sizeof(*sorted));

	if (sorted == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		sorted[i] = &l->v[i];
	qsort(sorted, l->n, sizeof(sorted[0]), by_url);
	for (size_t i = 0; i < l->n; i++) {
		struct row *r = &l->v[i], *s512 = find(sorted, l->n, r->url, ".sha512");
		struct row *sig = find(sorted, l->n, r->url, ".asc");

		if (sig == NULL)
			sig = find(sorted, l->n, r->url, ".sig");
		if (l->dry_run) {
			/* what the connected cache checked when it admitted the entry */
			snprintf(r->check512, sizeof(r->check512), "%s",
			    (r->flags & AL_REC_VERIFIED) ? "matched at fill" : s512 ? "present" : "-");
			snprintf(r->checksig, sizeof(r->checksig), "%s",
			    (r->flags & AL_REC_SIGNED) ? "verified at fill" : sig ? "present" : "-");
			continue;
		}
		if (s512 == NULL)
			snprintf(r->check512, sizeof(r->check512), "%s", wants_signature(r) ? "absent" : "-");
		else if (!s512->file512_ok)
			snprintf(r->check512, sizeof(r->check512), "unreadable .sha512"), l->bad++;
		else if (memcmp(s512->file512, r->sha512, 64) == 0)
			snprintf(r->check512, sizeof(r->check512), "match");
		else
			snprintf(r->check512, sizeof(r->check512), "MISMATCH"), l->bad++;
		switch (r->pgp) {
		case AL_PGP_VERIFIED:
			snprintf(r->checksig, sizeof(r->checksig), "verified, key %s", r->pgp_key);
			break;
		case AL_PGP_BAD:
			snprintf(r->checksig, sizeof(r->checksig), "BAD: %s", r->pgp_why);
			l->bad++;
			break;
		case AL_PGP_NOT_CHECKED:
			snprintf(r->checksig, sizeof(r->checksig), "present, not checked (no --pgp-key)");
			break;
		default:
			snprintf(r->checksig, sizeof(r->checksig), "%s", sig ? "present, not checked (it follows the body)"
			    : wants_signature(r) ? "absent" : "-");
		}
	}
	free(sorted);
}

static void csv_field(FILE *f, const char *s, int last)
{
	if (strpbrk(s, ",\"\n\r") != NULL) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputc(last ? '\n' : ',', f);
}

void listing_print(FILE *f, int fmt, const struct listing *l, json_t *facts, const char *const *fact_lines,
    const char *error)
{
	char h256[65], sz[32];

	if (fmt == LISTING_JSON) {
		json_t *o = json_object(), *a = json_array();
		for (size_t i = 0; i < l->n; i++) {
			const struct row *r = &l->v[i];
			json_t *e;
			al_hex(r->sha256, 32, h256);
			e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:s}", "url", r->url, "kind", r->what.kind,
			    "product", r->what.product, "version", r->what.version, "platform", r->what.platform, "status",
			    r->status, "size", (json_int_t)r->size, "sha256", h256, "sha512_check", r->check512, "signature_check",
			    r->checksig);
			if (r->pgp == AL_PGP_VERIFIED)
				json_object_set_new(e, "signature_key", json_string(r->pgp_key));
			if (r->change != NULL)
				json_object_set_new(e, "change", json_string(r->change));
			json_array_append_new(a, e);
		}
		json_object_set(o, "bundle", facts);
		json_object_set_new(o, "entries", a);
		json_object_set_new(o, "ok", json_boolean(error == NULL && l->bad == 0));
		json_object_set_new(o, "error", error ? json_string(error) : json_null());
		json_dumpf(o, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		fputc('\n', f);
		json_decref(o);
		return;
	}
	if (fmt == LISTING_CSV) {
		fprintf(f, "url,kind,product,version,platform,status,size,sha256,sha512_check,signature_check%s\n",
		    l->dry_run ? ",change" : "");
		for (size_t i = 0; i < l->n; i++) {
			const struct row *r = &l->v[i];
			char st[16];
			al_hex(r->sha256, 32, h256);
			snprintf(st, sizeof(st), "%d", r->status);
			snprintf(sz, sizeof(sz), "%llu", (unsigned long long)r->size);
			csv_field(f, r->url, 0);
			csv_field(f, r->what.kind, 0);
			csv_field(f, r->what.product, 0);
			csv_field(f, r->what.version, 0);
			csv_field(f, r->what.platform, 0);
			csv_field(f, st, 0);
			csv_field(f, sz, 0);
			csv_field(f, h256, 0);
			csv_field(f, r->check512, 0);
			csv_field(f, r->checksig, !l->dry_run);
			if (l->dry_run)
				csv_field(f, r->change ? r->change : "", 1);
		}
		return;
	}
	for (int i = 0; fact_lines != NULL && fact_lines[i] != NULL; i++)
		fprintf(f, "%s\n", fact_lines[i]);
	fprintf(f, "\n%-5s %-24s %-26s %-14s %-14s %12s  %-64s  %-16s %-24s %s%s\n", "#", "KIND", "PRODUCT", "VERSION",
	    "PLATFORM", "SIZE", "SHA-256", ".SHA512", "SIGNATURE", l->dry_run ? "CHANGE   " : "", "URL");
	for (size_t i = 0; i < l->n; i++) {
		const struct row *r = &l->v[i];
		al_hex(r->sha256, 32, h256);
		fprintf(f, "%-5zu %-24s %-26s %-14s %-14s %12llu  %s  %-16s %-24s ", i + 1, r->what.kind,
		    r->what.product[0] ? r->what.product : "-", r->what.version[0] ? r->what.version : "-",
		    r->what.platform[0] ? r->what.platform : "-", (unsigned long long)r->size, h256, r->check512, r->checksig);
		if (l->dry_run)
			fprintf(f, "%-9s ", r->change ? r->change : "-");
		fprintf(f, "%s\n", r->url);
	}
	if (error != NULL)
		fprintf(f, "\nBROKEN: %s\n", error);
}
