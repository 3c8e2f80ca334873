/*
 * A registry query answered from the registry index (see
 * registry_query.h): the scan gathers one name's entries at a time
 * (adjacent in the index), orders them newest first and offers them to
 * the run, reading a version's parts only when the rules read them.
 * Moved here from proxy/front/offline_registry.c so that readiness
 * answers Kibana's list the same way, without parsing documents.
 */
#include "cache/registry_query.h"
#include "policy/registry_summary.h"
#include "policy/semver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One name's index entries, gathered while scanning (pointers into the snapshot). */
struct entry {
	const char *ver, *raw;   /* the key's version; the value (its parts split only when read) */
	size_t vlen, rlen;
	struct al_registry_summary_parts p;
	struct al_semver v;
	int parsed;              /* v holds the version */
	int split;               /* 0: not yet, 1: p holds the parts, -1: not a summary of this format */
};

struct scan {
	struct al_registry_run *run;
	const int *stop;         /* non-zero: cancel (may be NULL) */
	int names;               /* the index is of the current format: its name records are right */
	const char *name;        /* the name being gathered */
	size_t nlen;
	struct entry *e;
	size_t n, cap;
	size_t total;
	/* the last name record seen (it comes just before its name's versions) */
	const char *rname;
	size_t rnlen;
	struct al_registry_name_parts rec;
	int has_rec;
};

/* Newest first (the index's order of versions, the store's too); versions that do not parse go last. */
static int newest_first(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->parsed != y->parsed)
		return y->parsed - x->parsed;
	return x->parsed ? -al_registry_index_version_cmp(&x->v, x->ver, x->vlen, &y->v, y->ver, y->vlen) : 0;
}

/* e's parts, split the first time they are needed (its pages are read then); 1 when e is a summary. */
static int parts(struct entry *e)
{
	if (e->split == 0)
		e->split = al_registry_summary_split(e->raw, e->rlen, &e->p) == 0 ? 1 : -1;
	return e->split == 1;
}

/*
 * The gathered name's newest deprecated version (its notice goes on every
 * version, packages/deprecated.go), or NULL: from the name's record in an
 * index of the current format, so no other version's summary is read;
 * else by reading each version's parts head, as before format 5.
 */
static struct entry *newest_deprecated(struct scan *sc)
{
	if (sc->names) {
		if (!sc->has_rec || sc->rnlen != sc->nlen || memcmp(sc->rname, sc->name, sc->nlen) != 0)
			return NULL;
		for (size_t i = 0; i < sc->n && sc->e[i].parsed; i++)
			if (sc->e[i].vlen == sc->rec.vlen && memcmp(sc->e[i].ver, sc->rec.version, sc->rec.vlen) == 0)
				return parts(&sc->e[i]) && sc->e[i].p.dlen > 0 ? &sc->e[i] : NULL;
		return NULL;
	}
	for (size_t i = 0; i < sc->n && sc->e[i].parsed; i++)
		if (parts(&sc->e[i]) && sc->e[i].p.dlen > 0)
			return &sc->e[i];
	return NULL;
}

/*
 * Offer the gathered name's versions: first its newest deprecated one (its
 * notice goes on every version, packages/deprecated.go), then newest
 * first, parsing only until the rules have what they need; or, when the
 * run answers from skeletons, every version's skeleton.
 */
static void flush_name(struct scan *sc)
{
	int rendered = al_registry_run_rendered(sc->run);
	const char *dtext = NULL;
	size_t dlen = 0;

	qsort(sc->e, sc->n, sizeof(*sc->e), newest_first);
	if (rendered && sc->names) {
		/* the record holds the notice itself: the deprecated version's summary is not read */
		if (sc->has_rec && sc->rnlen == sc->nlen && memcmp(sc->rname, sc->name, sc->nlen) == 0) {
			dtext = sc->rec.dep;
			dlen = sc->rec.dlen;
		}
	} else {
		struct entry *dep = newest_deprecated(sc);
		if (dep != NULL && rendered) {
			dtext = dep->p.dep;
			dlen = dep->p.dlen;
		} else if (dep != NULL) {
			json_t *doc = json_loadb(dep->p.summary, dep->p.slen, 0, NULL);
			al_registry_run_add_deprecated(sc->run, doc);
			json_decref(doc);
		}
	}
	for (size_t i = 0; i < sc->n; i++) {
		const struct al_registry_summary_parts *p = &sc->e[i].p;
		json_t *doc;
		int enough;
		if (!parts(&sc->e[i]))
			continue;
		if (rendered) {
			/* the filters read the skeleton; the answer joins the rendered entries */
			json_t *skel = json_loadb(p->skel, p->klen, 0, NULL);
			enough = skel != NULL && al_registry_run_add_rendered(sc->run, skel, p->entry, p->elen, p->hole,
			    dtext, dlen) == 1;
			json_decref(skel);
			if (enough)
				break;
			continue;
		}
		if (al_registry_run_skeletons(sc->run)) {
			/* every version, in any order: the skeleton is enough until the run answers */
			json_t *skel = json_loadb(p->skel, p->klen, 0, NULL);
			if (skel != NULL)
				al_registry_run_add_skeleton(sc->run, skel, p->summary, p->slen);
			json_decref(skel);
			continue;
		}
		doc = json_loadb(p->summary, p->slen, 0, NULL);
		enough = doc != NULL && al_registry_run_add(sc->run, doc, p->summary, p->slen) == 1;
		json_decref(doc);
		if (enough)
			break;
	}
	sc->n = 0;
	sc->has_rec = 0;
}

static int on_entry(const char *name, size_t nlen, const char *version, size_t vlen, const char *summary,
    size_t slen, void *arg)
{
	struct scan *sc = arg;
	struct entry *e;

	if (sc->stop != NULL && __atomic_load_n(sc->stop, __ATOMIC_ACQUIRE))
		return -ECANCELED;
	if (sc->n > 0 && (nlen != sc->nlen || memcmp(name, sc->name, nlen) != 0))
		flush_name(sc);
	if (version == NULL) {
		/* the name's record, before its versions */
		sc->has_rec = al_registry_name_record_split(summary, slen, &sc->rec) == 0;
		sc->rname = name;
		sc->rnlen = nlen;
		return 0;
	}
	if (sc->n == sc->cap) {
		struct entry *more = realloc(sc->e, (sc->cap = sc->cap ? sc->cap * 2 : 64) * sizeof(*more));
		if (more == NULL)
			return -ENOMEM;
		sc->e = more;
	}
	e = &sc->e[sc->n];
	e->raw = summary;
	e->rlen = slen;
	e->ver = version;
	e->vlen = vlen;
	/* before format 5 a value that is not a summary of this format was skipped here (and not counted) */
	e->split = 0;
	if (!sc->names && !parts(e))
		return 0;
	sc->n++;
	sc->total++;
	sc->name = name;
	sc->nlen = nlen;
	e->parsed = al_registry_index_version(version, vlen, &e->v) == 0;
	return 0;
}

int al_registry_index_feed(struct al_reader *rd, const char *base, size_t blen, struct al_registry_run *run,
    const int *stop, size_t *ndocs)
{
	struct scan sc = {0};
	uint32_t fmt = 0;
	int rc;

	sc.run = run;
	sc.stop = stop;
	sc.names = al_store_index_format(rd, &fmt) == 0 && fmt == AL_REGISTRY_SUMMARY_FORMAT;
	rc = al_store_index_scan(rd, base, blen, on_entry, &sc);
	if (rc == 0 && sc.n > 0)
		flush_name(&sc);
	free(sc.e);
	*ndocs = sc.total;
	return rc;
}

char *al_registry_index_search(struct al_reader *rd, const char *base, size_t blen, const struct al_registry_query *q,
    int *rc)
{
	struct al_registry_run *run = al_registry_run_new(q, 0);
	char *body = NULL;
	size_t n = 0;
	int r = -ENOMEM;

	if (run != NULL) {
		r = al_registry_index_feed(rd, base, blen, run, NULL, &n);
		body = al_registry_run_finish(run); /* reads the snapshot: before it ends */
		if (r != 0) {
			free(body);
			body = NULL;
		} else if (body == NULL) {
			r = -ENOMEM;
		}
	}
	al_reader_end(rd);
	if (rc != NULL)
		*rc = r;
	return body;
}
