#include "cache/bundle.h"
#include "cache/pgp.h"
#include "policy/hdr.h"
#include "policy/units.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC1 "ALKBNDL1"
#define MAGIC2 "ALKBNDL2"
#define MAGIC3 "ALKBNDL3"
#define MAX_RECORD (1u << 20)
#define MAX_HEADER (64u << 10)
#define MAX_LISTING (256u << 20)
#define BUF (256 * 1024)
#define IMPORT_BATCH (64 * BUF)

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return s[2 * n] == '\0' ? 0 : -EINVAL;
}

/* What decides "changed" for a delta: ETag and Last-Modified, as stored. */
static void validators_digest(const char *hdrs, size_t len, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const char *v;
	size_t vl;
	unsigned dl = 32;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	if ((v = al_hdr_get(hdrs, len, "ETag", &vl)) != NULL)
		EVP_DigestUpdate(md, v, vl);
	EVP_DigestUpdate(md, "\n", 1);
	if ((v = al_hdr_get(hdrs, len, "Last-Modified", &vl)) != NULL)
		EVP_DigestUpdate(md, v, vl);
	EVP_DigestFinal_ex(md, out, &dl);
	EVP_MD_CTX_free(md);
}

/* ---- keys ---- */

void al_bundle_key_id(EVP_PKEY *pk, char out[AL_KEY_ID_LEN + 1])
{
	unsigned char raw[64], d[32];
	size_t rl = sizeof(raw);
	unsigned dl = 32;

	out[0] = '\0';
	if (EVP_PKEY_get_raw_public_key(pk, raw, &rl) != 1)
		return;
	EVP_Digest(raw, rl, d, &dl, EVP_sha256(), NULL);
	al_hex(d, AL_KEY_ID_LEN / 2, out);
}

int al_bundle_load_key(const char *path, int private_key, EVP_PKEY **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pk;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	pk = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pk);
		snprintf(err, errlen, "%s: not an Ed25519 %s key in PEM (airlock keygen writes them)", path,
		    private_key ? "private" : "public");
		return -EINVAL;
	}
	*out = pk;
	return 0;
}

int al_write_private_key(const char *path, EVP_PKEY *pk, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600), ok, e;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	ok = f != NULL && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
	e = errno;
	if (f != NULL)
		ok = fclose(f) == 0 && ok;
	else if (fd >= 0)
		close(fd);
	if (ok)
		return 0;
	snprintf(err, errlen, "writing %s: %s", path, strerror(e ? e : EIO));
	return -(e ? e : EIO);
}

int al_new_key_files(const char *dir, mode_t mode, const char *a, const char *b, const char *what,
    char *err, size_t errlen)
{
	if (mkdir(dir, mode) != 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if (access(a, F_OK) == 0 || access(b, F_OK) == 0) {
		snprintf(err, errlen, "%s or %s exists already; airlock will not overwrite a %s", a, b, what);
		return -EEXIST;
	}
	return 0;
}

int al_bundle_keygen(const char *dir, char key_id[AL_KEY_ID_LEN + 1], char *err, size_t errlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *pk = NULL;
	char kp[4096], pp[4096];
	FILE *f = NULL;
	int rc = -EIO;

	snprintf(kp, sizeof(kp), "%s/bundle.key", dir);
	snprintf(pp, sizeof(pp), "%s/bundle.pub", dir);
	if ((rc = al_new_key_files(dir, 0700, kp, pp, "key", err, errlen)) != 0)
		goto out;
	rc = -EIO;
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pk) != 1) {
		snprintf(err, errlen, "Ed25519 key generation failed");
		goto out;
	}
	if (al_write_private_key(kp, pk, err, errlen) != 0)
		goto out;
	if ((f = fopen(pp, "w")) == NULL || PEM_write_PUBKEY(f, pk) != 1 || fclose(f) != 0) {
		snprintf(err, errlen, "writing %s: %s", pp, strerror(errno));
		goto out;
	}
	al_bundle_key_id(pk, key_id);
	rc = 0;
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* ---- the index of a bundle (--since) ---- */

struct ix_entry {
	uint8_t key[AL_KEY_LEN], body[32], validators[32];
};

struct al_bundle_index {
	struct ix_entry *v;
	size_t n, cap;
	uint8_t digest[32];
	uint64_t entries;
};

static int by_key(const void *a, const void *b)
{
	return memcmp(((const struct ix_entry *)a)->key, ((const struct ix_entry *)b)->key, AL_KEY_LEN);
}

void al_bundle_index_free(struct al_bundle_index *ix)
{
	if (ix != NULL)
		free(ix->v);
	free(ix);
}

const uint8_t *al_bundle_index_digest(const struct al_bundle_index *ix)
{
	return ix->digest;
}

static int rd(FILE *f, void *p, size_t n, char *err, size_t errlen)
{
	if (n && fread(p, 1, n, f) != n) {
		snprintf(err, errlen, "truncated bundle");
		return -EILSEQ;
	}
	return 0;
}

static uint64_t le(const unsigned char *b, int n)
{
	uint64_t x = 0;

	for (int i = 0; i < n; i++)
		x |= (uint64_t)b[i] << (8 * i);
	return x;
}

/*
 * Read records only, seeking over bodies: what an earlier bundle holds, to
 * leave out of a delta.  Its digest (the trailer's) names it as the base.
 */
int al_bundle_index_read(FILE *f, struct al_bundle_index **out, char *err, size_t errlen)
{
	struct al_bundle_index *ix = calloc(1, sizeof(*ix));
	unsigned char magic[8], tag, lenb[4], *enc = NULL;
	int rc = 0;

	if (ix == NULL)
		return -ENOMEM;
	if ((rc = rd(f, magic, 8, err, errlen)) != 0)
		goto fail;
	if (memcmp(magic, MAGIC1, 8) != 0 && memcmp(magic, MAGIC2, 8) != 0 && memcmp(magic, MAGIC3, 8) != 0) {
		snprintf(err, errlen, "not an airlock bundle (bad magic)");
		rc = -EILSEQ;
		goto fail;
	}
	for (;;) {
		struct al_record rec;
		uint32_t rl;

		if ((rc = rd(f, &tag, 1, err, errlen)) != 0)
			goto fail;
		if (tag == 'T') {
			unsigned char cnt[8];
			if ((rc = rd(f, cnt, 8, err, errlen)) != 0 || (rc = rd(f, ix->digest, 32, err, errlen)) != 0)
				goto fail;
			ix->entries = le(cnt, 8);
			break;
		}
		if (tag != 'E' && tag != 'H' && tag != 'L') {
			snprintf(err, errlen, "corrupt bundle");
			rc = -EILSEQ;
			goto fail;
		}
		if ((rc = rd(f, lenb, 4, err, errlen)) != 0)
			goto fail;
		rl = (uint32_t)le(lenb, 4);
		if (tag == 'L') {
			/* the listing: not needed here, the records carry the validators */
			if (rl > MAX_LISTING || fseeko(f, rl, SEEK_CUR) != 0) {
				snprintf(err, errlen, "corrupt bundle: listing of %u bytes", rl);
				rc = -EILSEQ;
				goto fail;
			}
			continue;
		}
		if (rl > (tag == 'H' ? MAX_HEADER : MAX_RECORD)) {
			snprintf(err, errlen, "corrupt bundle: block of %u bytes", rl);
			rc = -EILSEQ;
			goto fail;
		}
		free(enc);
		if ((enc = malloc(rl ? rl : 1)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		if ((rc = rd(f, enc, rl, err, errlen)) != 0)
			goto fail;
		if (tag == 'H')
			continue;
		if (al_record_decode(enc, rl, &rec) != 0) {
			snprintf(err, errlen, "corrupt bundle: bad entry record");
			rc = -EILSEQ;
			goto fail;
		}
		if (ix->n == ix->cap) {
			size_t cap = ix->cap ? ix->cap * 2 : 256;
			struct ix_entry *nv = realloc(ix->v, cap * sizeof(*nv));
			if (nv == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			ix->v = nv;
			ix->cap = cap;
		}
		al_store_key(rec.url, rec.url_len, ix->v[ix->n].key);
		memcpy(ix->v[ix->n].body, rec.sha256, 32);
		validators_digest(rec.hdrs, rec.hdrs_len, ix->v[ix->n].validators);
		ix->n++;
		if (fseeko(f, (off_t)rec.body_len, SEEK_CUR) != 0) {
			snprintf(err, errlen, "seek: %s", strerror(errno));
			rc = -EIO;
			goto fail;
		}
	}
	free(enc);
	if (ix->n)
		qsort(ix->v, ix->n, sizeof(ix->v[0]), by_key);
	*out = ix;
	return 0;
fail:
	free(enc);
	al_bundle_index_free(ix);
	return rc;
}

/* ---- writing ---- */

/*
 * Export is two steps over the store.  First every entry to carry is
 * planned: its record encoded and kept (the metadata of one moment, a few
 * hundred bytes an entry, capped at MAX_PLAN), leaving out what the base
 * holds unchanged.  Sidecars (.sha512, .asc, .sig) go first, so a reader
 * meets each signature before the body it signs and checks both in one
 * read.  Then the header, the listing of what follows (covered by the
 * signature: the reviewer's list), and the entries with their bodies,
 * streamed from the map.  A dry run stops after the plan.
 */
#define MAX_PLAN ((size_t)1 << 30)

struct plan_entry {
	uint8_t *enc;             /* the encoded record; rec points into it */
	size_t enclen;
	struct al_record rec;
	int change, side;
	size_t order;
};

struct plan {
	struct plan_entry *v;
	size_t n, cap, bytes;
	const struct al_export_opts *o;
	struct al_bundle_stats *st;
	char *err;
	size_t errlen;
};

static int is_sidecar(const char *url, size_t n)
{
	return (n > 7 && memcmp(url + n - 7, ".sha512", 7) == 0) || (n > 4 && memcmp(url + n - 4, ".asc", 4) == 0) ||
	    (n > 4 && memcmp(url + n - 4, ".sig", 4) == 0);
}

/* Against the base: absent (added), there with another body or validators (changed), or the same. */
static int base_state(const struct al_bundle_index *ix, const uint8_t key[AL_KEY_LEN], const struct al_record *rec)
{
	struct ix_entry probe, *hit;
	uint8_t vd[32];

	if (ix == NULL || ix->n == 0)
		return AL_ENTRY_ADDED;
	memcpy(probe.key, key, AL_KEY_LEN);
	hit = bsearch(&probe, ix->v, ix->n, sizeof(ix->v[0]), by_key);
	if (hit == NULL)
		return AL_ENTRY_ADDED;
	if (memcmp(hit->body, rec->sha256, 32) != 0)
		return AL_ENTRY_CHANGED;
	validators_digest(rec->hdrs, rec->hdrs_len, vd);
	return memcmp(hit->validators, vd, 32) == 0 ? AL_ENTRY_UNCHANGED : AL_ENTRY_CHANGED;
}

static int plan_one(const uint8_t key[AL_KEY_LEN], const struct al_record *rec, void *arg)
{
	struct plan *p = arg;
	struct plan_entry *e;
	char url[8192];
	int change;

	if (rec->url_len >= sizeof(url))
		return 0;
	memcpy(url, rec->url, rec->url_len);
	url[rec->url_len] = '\0';
	if (p->o->match != NULL && fnmatch(p->o->match, url, 0) != 0)
		return 0;
	if ((change = base_state(p->o->base, key, rec)) == AL_ENTRY_UNCHANGED) {
		p->st->unchanged++;
		return 0;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		struct plan_entry *nv = realloc(p->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		p->v = nv;
		p->cap = cap;
	}
	e = &p->v[p->n];
	e->enclen = al_record_size(rec);
	if ((p->bytes += e->enclen) > MAX_PLAN) {
		snprintf(p->err, p->errlen, "more than %zu MiB of entry records: export in parts (--match)", MAX_PLAN >> 20);
		return -E2BIG;
	}
	if ((e->enc = malloc(e->enclen)) == NULL)
		return -ENOMEM;
	al_record_encode(rec, e->enc);
	if (al_record_decode(e->enc, e->enclen, &e->rec) != 0) {
		free(e->enc);
		return -EILSEQ;
	}
	e->change = change;
	e->side = is_sidecar(url, rec->url_len);
	e->order = p->n++;
	if (change == AL_ENTRY_ADDED)
		p->st->added++;
	else
		p->st->changed++;
	p->st->entries++;
	p->st->bytes += rec->body_len;
	return 0;
}

static int sidecars_first(const void *a, const void *b)
{
	const struct plan_entry *x = a, *y = b;

	if (x->side != y->side)
		return y->side - x->side;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].enc);
	free(p->v);
}

struct writer {
	FILE *f;
	EVP_MD_CTX *md;
	char *err;
	size_t errlen;
};

static int out(struct writer *w, const void *p, size_t n)
{
	EVP_DigestUpdate(w->md, p, n);
	if (n && fwrite(p, 1, n, w->f) != n) {
		snprintf(w->err, w->errlen, "write: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static void put_le(uint8_t *b, uint64_t x, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(x >> (8 * i));
}

static int block(struct writer *w, char tag, const void *p, size_t n)
{
	uint8_t lenb[4];
	int rc;

	put_le(lenb, n, 4);
	if ((rc = out(w, &tag, 1)) == 0 && (rc = out(w, lenb, 4)) == 0)
		rc = out(w, p, n);
	return rc;
}

static char *header_json(const struct al_export_opts *o, const struct al_bundle_stats *st, const char *custody)
{
	json_t *h = json_object();
	char ts[32], kid[AL_KEY_ID_LEN + 1], dh[65];
	time_t now = time(NULL);
	struct tm tm;
	char *s;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(h, "format", json_integer(3));
	json_object_set_new(h, "created", json_string(ts));
	json_object_set_new(h, "airlock", json_string(AIRLOCK_VERSION));
	json_object_set_new(h, "entries", json_integer((json_int_t)st->entries));
	json_object_set_new(h, "body_bytes", json_integer((json_int_t)st->bytes));
	if (o->sign != NULL) {
		al_bundle_key_id(o->sign, kid);
		json_object_set_new(h, "key_id", json_string(kid));
	}
	if (o->base != NULL) {
		al_hex(o->base->digest, 32, dh);
		json_object_set_new(h, "base", json_pack("{s:s, s:I}", "digest", dh, "entries", (json_int_t)o->base->entries));
	}
	if (custody != NULL)
		json_object_set_new(h, "custody", json_string(custody));
	s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(h);
	return s;
}

/* The listing: per entry, in file order, its URL, status, size, body SHA-256 and record SHA-256. */
static char *listing_json(const struct plan *p)
{
	json_t *l = json_object(), *a = json_array();
	char *s;

	for (size_t i = 0; i < p->n; i++) {
		const struct al_record *r = &p->v[i].rec;
		char bh[65], rh[65];
		uint8_t rd[32];
		unsigned dl = 32;
		EVP_Digest(p->v[i].enc, p->v[i].enclen, rd, &dl, EVP_sha256(), NULL);
		al_hex(r->sha256, 32, bh);
		al_hex(rd, 32, rh);
		json_array_append_new(a, json_pack("{s:s%, s:i, s:I, s:s, s:s}", "url", r->url, r->url_len, "status",
		    r->status, "size", (json_int_t)r->body_len, "sha256", bh, "record", rh));
	}
	json_object_set_new(l, "entries", a);
	s = json_dumps(l, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(l);
	return s;
}

int al_bundle_export(struct al_store *s, FILE *f, const struct al_export_opts *o, struct al_bundle_stats *st,
    char *err, size_t errlen)
{
	static const struct al_export_opts none = {0};
	struct writer w = {f, EVP_MD_CTX_new(), err, errlen};
	struct plan p = {NULL, 0, 0, 0, o ? o : &none, st, err, errlen};
	struct al_reader *rd = NULL;
	uint8_t trailer[1 + 8 + 32], listed[32];
	unsigned dl = 32;
	char *hdr = NULL, *lst = NULL, *custody = NULL;
	int rc;

	o = p.o;
	memset(st, 0, sizeof(*st));
	if (w.md == NULL || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) || al_reader_new(s, &rd) != 0) {
		EVP_MD_CTX_free(w.md);
		snprintf(err, errlen, "out of memory or LMDB readers");
		return -ENOMEM;
	}
	/* the snapshot the bodies are read from, begun before the records are planned */
	al_reader_begin(rd);
	if ((rc = al_store_foreach(s, plan_one, &p)) != 0) {
		if (rc == -ENOMEM || rc == -EILSEQ)
			snprintf(err, errlen, "planning the export: %s", strerror(-rc));
		goto done;
	}
	if (p.n)
		qsort(p.v, p.n, sizeof(p.v[0]), sidecars_first);
	if (o->each != NULL)
		for (size_t i = 0; i < p.n; i++)
			o->each(&p.v[i].rec, p.v[i].change, o->arg);
	if (o->dry_run)
		goto done;
	if (o->custody != NULL) {
		int failed = 0;
		custody = o->custody(st, o->custody_arg, &failed, err, errlen);
		if (failed || (custody != NULL && strlen(custody) >= AL_CUSTODY_MAX)) {
			if (!failed)
				snprintf(err, errlen, "the ledger record is too long to carry");
			rc = -EINVAL;
			goto done;
		}
	}
	if ((hdr = header_json(o, st, custody)) == NULL || (lst = listing_json(&p)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto done;
	}
	if ((rc = out(&w, MAGIC3, 8)) != 0 || (rc = block(&w, 'H', hdr, strlen(hdr))) != 0 ||
	    (rc = block(&w, 'L', lst, strlen(lst))) != 0)
		goto done;
	{
		/* what the signature signs: everything up to the listing's end */
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		if (c == NULL || !EVP_MD_CTX_copy_ex(c, w.md) || !EVP_DigestFinal_ex(c, listed, &dl)) {
			EVP_MD_CTX_free(c);
			rc = -ENOMEM;
			goto done;
		}
		EVP_MD_CTX_free(c);
	}
	for (size_t i = 0; i < p.n && rc == 0; i++) {
		const struct al_record *r = &p.v[i].rec;
		uint64_t off = 0;
		if ((rc = block(&w, 'E', p.v[i].enc, p.v[i].enclen)) != 0)
			break;
		/* the body, from the map, chunk by chunk (the snapshot keeps it stable) */
		while (rc == 0 && off < r->body_len) {
			const void *bp;
			size_t n;
			if (al_body_at(rd, r->obj_id, off, &bp, &n) != 0) {
				snprintf(err, errlen, "%.*s: its body left the cache while exporting (replaced or evicted); "
				    "run export again", (int)r->url_len, r->url);
				rc = -EILSEQ;
				break;
			}
			if (n > r->body_len - off)
				n = (size_t)(r->body_len - off);
			rc = out(&w, bp, n);
			off += n;
		}
	}
	if (rc != 0)
		goto done;
	trailer[0] = 'T';
	put_le(trailer + 1, st->entries, 8);
	EVP_DigestUpdate(w.md, trailer, 9);
	EVP_DigestFinal_ex(w.md, trailer + 9, &dl);
	if (fwrite(trailer, 1, sizeof(trailer), f) != sizeof(trailer)) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		rc = -EIO;
		goto done;
	}
	if (o->sign != NULL) {
		/*
		 * Ed25519 signs the digest of everything up to the listing's end
		 * (magic, header with the key id and base, listing).  The listing
		 * names every entry's record and body by SHA-256, and a reader
		 * holds each entry to it: so the signature covers every byte, and
		 * the listing is authentic before any body is read.
		 */
		EVP_MD_CTX *sc = EVP_MD_CTX_new();
		unsigned char sig[128], blk[3];
		size_t sl = sizeof(sig);
		if (sc == NULL || EVP_DigestSignInit(sc, NULL, NULL, NULL, o->sign) != 1 ||
		    EVP_DigestSign(sc, sig, &sl, listed, 32) != 1) {
			snprintf(err, errlen, "signing failed");
			rc = -EINVAL;
		} else {
			blk[0] = 'S';
			put_le(blk + 1, sl, 2);
			if (fwrite(blk, 1, 3, f) != 3 || fwrite(sig, 1, sl, f) != sl) {
				snprintf(err, errlen, "write: %s", strerror(errno));
				rc = -EIO;
			}
		}
		EVP_MD_CTX_free(sc);
	}
	if (rc == 0 && fflush(f) != 0) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		rc = -EIO;
	}
	if (rc == 0 && o->digest != NULL)
		memcpy(o->digest, trailer + 9, 32);
done:
	free(hdr);
	free(lst);
	free(custody);
	plan_free(&p);
	al_reader_free(rd);
	EVP_MD_CTX_free(w.md);
	return rc;
}

/* ---- reading ---- */

struct reader {
	FILE *f;
	EVP_MD_CTX *md;
	uint64_t pos;
	uint64_t unflushed;      /* admitted body bytes since the store batch's last commit */
	char *err;
	size_t errlen;
};

static int in(struct reader *r, void *p, size_t n, int hash)
{
	if (n && fread(p, 1, n, r->f) != n) {
		snprintf(r->err, r->errlen, "truncated bundle: ended at byte %llu", (unsigned long long)r->pos);
		return -EILSEQ;
	}
	if (hash)
		EVP_DigestUpdate(r->md, p, n);
	r->pos += n;
	return 0;
}

static int parse_header(const unsigned char *p, size_t n, struct al_bundle_info *info, char *err, size_t errlen)
{
	json_t *h = json_loadb((const char *)p, n, 0, NULL), *base;
	const char *kid, *dg, *s;

	if (h == NULL || !json_is_object(h)) {
		json_decref(h);
		snprintf(err, errlen, "corrupt bundle: unreadable header");
		return -EILSEQ;
	}
	if ((kid = json_string_value(json_object_get(h, "key_id"))) != NULL)
		snprintf(info->key_id, sizeof(info->key_id), "%s", kid);
	if ((s = json_string_value(json_object_get(h, "created"))) != NULL)
		snprintf(info->created, sizeof(info->created), "%s", s);
	if ((s = json_string_value(json_object_get(h, "airlock"))) != NULL)
		snprintf(info->airlock, sizeof(info->airlock), "%s", s);
	if ((s = json_string_value(json_object_get(h, "custody"))) != NULL && strlen(s) < sizeof(info->custody))
		snprintf(info->custody, sizeof(info->custody), "%s", s);
	if ((base = json_object_get(h, "base")) != NULL) {
		dg = json_string_value(json_object_get(base, "digest"));
		if (dg == NULL || strlen(dg) != 64 || unhex(dg, info->base, 32) != 0) {
			json_decref(h);
			snprintf(err, errlen, "corrupt bundle: bad base digest");
			return -EILSEQ;
		}
		info->is_delta = 1;
		info->base_entries = (uint64_t)json_integer_value(json_object_get(base, "entries"));
	}
	json_decref(h);
	return 0;
}

/* A version-3 listing: what each entry must be, in file order. */
struct listed {
	uint8_t record[32], body[32];
	uint64_t size;
	char *url;
};

struct listing {
	struct listed *v;
	size_t n;
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].url);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int parse_listing(const unsigned char *p, size_t n, struct listing *l, char *err, size_t errlen)
{
	json_t *j = json_loadb((const char *)p, n, 0, NULL), *a = json_object_get(j, "entries"), *e;
	size_t i;

	if (!json_is_array(a)) {
		json_decref(j);
		snprintf(err, errlen, "corrupt bundle: unreadable listing");
		return -EILSEQ;
	}
	if ((l->v = calloc(json_array_size(a) + 1, sizeof(l->v[0]))) == NULL) {
		json_decref(j);
		return -ENOMEM;
	}
	json_array_foreach(a, i, e) {
		const char *url = json_string_value(json_object_get(e, "url"));
		const char *bh = json_string_value(json_object_get(e, "sha256"));
		const char *rh = json_string_value(json_object_get(e, "record"));
		json_t *sz = json_object_get(e, "size");
		if (url == NULL || bh == NULL || rh == NULL || !json_is_integer(sz) || strlen(bh) != 64 ||
		    strlen(rh) != 64 || unhex(bh, l->v[i].body, 32) != 0 || unhex(rh, l->v[i].record, 32) != 0 ||
		    (l->v[i].url = strdup(url)) == NULL) {
			json_decref(j);
			snprintf(err, errlen, "corrupt bundle: listing entry %zu unreadable", i + 1);
			return -EILSEQ;
		}
		l->v[i].size = (uint64_t)json_integer_value(sz);
		l->n = i + 1;
	}
	json_decref(j);
	return 0;
}

/*
 * Admitting, in the same pass that verifies.  Each entry the cache does not
 * already hold is written as it streams under a pending object id
 * (al_fill_begin: a pending entry, then its chunks), and nothing is
 * published until the whole file checked out: every entry against the
 * signed listing, every body against its digest, the trailer, and (with
 * trusted keys) the signature.  Then al_fill_commit() publishes them one by
 * one through the store's ordinary path; on any failure al_fill_abort()
 * drops them, and a process killed before that leaves only pending entries,
 * whose chunks the next al_store_open() drops.  So a file altered between
 * two reads cannot be admitted (there is one read), and a refused bundle
 * leaves the cache as it was.
 */
struct pend {
	uint8_t key[AL_KEY_LEN];
	uint64_t id;                 /* the pending object; 0: the cache holds this very response (pin it) */
	int updated;                 /* replaces an older stored response */
	unsigned char *enc;          /* the entry's record, as carried */
	uint32_t enclen;
};

struct admitting {
	struct al_store *s;
	const struct al_import_opts *o;
	int ready;                   /* the checks before admission were done */
	int refused;                 /* -errno: read on to verify the file, admit nothing */
	char why[1024];
	unsigned char tail_sig[64];  /* what the end of the file holds as a signature (v3, read first) */
	int tail_signed;             /* 1 found, 0 none, -1 not seekable: checked at the end only */
	int store_failed;            /* the cache could not take an entry (disk full...), not the bundle's fault */
	uint64_t newer;              /* entries skipped: the cache holds a newer response */
	struct pend *v;
	size_t n, cap;
};

static void pend_drop(struct admitting *ad)
{
	for (size_t i = 0; i < ad->n; i++) {
		if (ad->v[i].id != 0)
			al_fill_abort(ad->s, ad->v[i].id);
		free(ad->v[i].enc);
	}
	free(ad->v);
	ad->v = NULL;
	ad->n = ad->cap = 0;
}

/*
 * Before the first entry is admitted: the bundle's origin (a v3 listing is
 * signed, so the signature read from the file's end is checked against the
 * listing just read; older formats sign the whole file and are checked at
 * the end) and, for a delta, its base.  A refusal stops admission; the
 * file is still read to its end, so what is recorded about it is whole.
 */
static void admit_ready(struct admitting *ad, const struct al_bundle_info *info)
{
	if (ad->ready++)
		return;
	if (info->version == 3 && ad->o->ntrusted > 0 && ad->tail_signed >= 0) {
		struct al_bundle_info t = *info;
		t.is_signed = ad->tail_signed && info->key_id[0];
		memcpy(t.sig, ad->tail_sig, sizeof(ad->tail_sig));
		t.sig_len = sizeof(ad->tail_sig);
		if ((ad->refused = al_bundle_check_signature(&t, ad->o->trusted, ad->o->ntrusted, ad->why,
		    sizeof(ad->why))) != 0)
			return;
	}
	if (info->is_delta && al_store_has_bundle(ad->s, info->base, NULL) != 1) {
		char dg[65];
		al_hex(info->base, 32, dg);
		snprintf(ad->why, sizeof(ad->why), "it is incremental on bundle %.16s... (%llu entries), which this cache "
		    "has not imported; import that base first", dg, (unsigned long long)info->base_entries);
		ad->refused = -ENOENT;
	}
}

/* Decide one entry: already held (nothing to write), or a pending object its body streams into (*id). */
static int admit_begin(struct admitting *ad, const struct al_record *rec, const unsigned char *enc, uint32_t enclen,
    uint64_t *id)
{
	struct pend *p;
	struct al_reader *rd;
	struct al_record old;
	int have_old = 0, rc;

	*id = 0;
	if (ad->n == ad->cap) {
		size_t cap = ad->cap ? ad->cap * 2 : 64;
		struct pend *nv = realloc(ad->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		ad->v = nv;
		ad->cap = cap;
	}
	p = &ad->v[ad->n];
	memset(p, 0, sizeof(*p));
	al_store_key(rec->url, rec->url_len, p->key);
	if (al_reader_new(ad->s, &rd) == 0) {
		if (al_lookup(rd, p->key, &old) == 0) {
			have_old = 1;
			if (old.response_time >= rec->response_time && memcmp(old.sha256, rec->sha256, 32) == 0)
				have_old = 2; /* the same response */
			else if (old.response_time > rec->response_time)
				have_old = 3; /* newer in the cache: keep it */
		}
		al_reader_free(rd);
	}
	if (have_old == 3) {
		ad->newer++; /* skipped, nothing to remember */
		return 0;
	}
	if (have_old != 2 && (rc = al_fill_begin(ad->s, p->key, &p->id)) != 0)
		return rc;
	if ((p->enc = malloc(enclen ? enclen : 1)) == NULL) {
		if (p->id)
			al_fill_abort(ad->s, p->id);
		return -ENOMEM;
	}
	memcpy(p->enc, enc, enclen);
	p->enclen = enclen;
	p->updated = have_old == 1;
	*id = p->id;
	ad->n++;
	return 0;
}

/*
 * Are the pending bodies still whole?  al_store_open() drops every pending
 * object it finds, those of a fill or an import under way in another
 * process included (another airlock command opening the cache meanwhile):
 * publishing a record whose chunks went would serve a cut body.  A walk
 * over the chunk keys, no digest.  0, or -ESTALE naming the first gone.
 */
static int pending_whole(struct admitting *ad, char *err, size_t errlen)
{
	struct al_reader *rd;
	int rc = 0;

	if ((rc = al_reader_new(ad->s, &rd)) != 0)
		return rc;
	for (size_t i = 0; i < ad->n && rc == 0; i++) {
		struct pend *p = &ad->v[i];
		struct al_record rec;
		uint64_t off = 0;
		if (p->id == 0 || al_record_decode(p->enc, p->enclen, &rec) != 0)
			continue;
		while (off < rec.body_len && rc == 0) {
			const void *ptr;
			size_t len;
			if (al_body_at(rd, p->id, off, &ptr, &len) != 0 || len == 0) {
				snprintf(err, errlen, "%.*s: its body, written during this import, is gone from the cache (another "
				    "airlock process opened the cache meanwhile and cleared the fills it found under way); nothing "
				    "was admitted: run the import again", (int)rec.url_len, rec.url);
				rc = -ESTALE;
			}
			off += len;
		}
	}
	al_reader_free(rd);
	return rc;
}

/* The whole file checked out: publish every pending entry, pin the ones already held. */
static int admit_commit(struct admitting *ad, struct al_import_stats *st, char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	st->skipped = ad->newer;
	/* the bodies written in this batch, committed so that a reader (pending_whole) sees them */
	if ((rc = al_store_batch_flush(ad->s)) != 0) {
		snprintf(err, errlen, "the cache could not write the import: %s", strerror(-rc));
		return rc;
	}
	if ((rc = pending_whole(ad, err, errlen)) != 0)
		return rc;
	for (i = 0; i < ad->n && rc == 0; i++) {
		struct pend *p = &ad->v[i];
		struct al_record rec;
		if (al_record_decode(p->enc, p->enclen, &rec) != 0) {
			snprintf(err, errlen, "an entry's record no longer decodes");
			rc = -EILSEQ;
			break;
		}
		if (p->id == 0) {
			al_store_pin(ad->s, p->key, 1);
			st->skipped++;
			continue;
		}
		rec.obj_id = p->id;
		rec.flags |= AL_REC_PINNED;
		if ((rc = al_fill_commit(ad->s, p->key, &rec)) != 0) {
			snprintf(err, errlen, "admitting %.*s: %s", (int)rec.url_len, rec.url, strerror(-rc));
			break;
		}
		p->id = 0; /* published: no longer ours to drop */
		if (p->updated)
			st->updated++;
		else
			st->added++;
		st->bytes += rec.body_len;
	}
	return rc;
}

/*
 * Inspecting: sidecar bodies (.asc, .sig up to MAX_SIDECAR) are kept as they
 * pass, so the body they sign, met later (a version-3 bundle puts sidecars
 * first), is checked by RNP while it is read for its digest: one read.
 */
#define MAX_SIDECAR (64u << 10)

struct sidecar {
	char *url;
	unsigned char *body;
	size_t len;
};

struct inspect {
	const struct al_pgp *keys;
	al_inspect_fn fn;
	al_listing_fn listing;
	void *arg;
	struct sidecar *v;
	size_t n, cap;
};

static const struct sidecar *find_sig(const struct inspect *ins, const struct al_record *rec)
{
	for (size_t i = 0; i < ins->n; i++) {
		size_t ul = strlen(ins->v[i].url);
		if (ul == rec->url_len + 4 && memcmp(ins->v[i].url, rec->url, rec->url_len) == 0 &&
		    (!strcmp(ins->v[i].url + rec->url_len, ".asc") || !strcmp(ins->v[i].url + rec->url_len, ".sig")))
			return &ins->v[i];
	}
	return NULL;
}

/* The words that tell a failure of the cache (disk full...) from a fault of the bundle. */
static const char STORE_ERR[] = "writing to the cache";

/* A body as it is read: digested (SHA-256 and, inspecting, SHA-512) and, for a sidecar, kept. */
struct body_in {
	struct reader *r;
	uint64_t left;
	EVP_MD_CTX *d256, *d512;
	unsigned char *keep;
	size_t kept;
	int rc;
	struct al_store *s;          /* admitting: the bytes also go to pending object id */
	uint64_t id, off;
};

static int body_read(void *ctx, void *buf, size_t want, size_t *got)
{
	struct body_in *b = ctx;
	size_t n = want < b->left ? want : (size_t)b->left;

	*got = 0;
	if (n == 0)
		return 0;
	if ((b->rc = in(b->r, buf, n, 1)) != 0)
		return b->rc;
	EVP_DigestUpdate(b->d256, buf, n);
	if (b->d512 != NULL)
		EVP_DigestUpdate(b->d512, buf, n);
	if (b->keep != NULL && b->kept + n <= MAX_SIDECAR)
		memcpy(b->keep + b->kept, buf, n);
	if (b->id != 0 && (b->rc = al_fill_append(b->s, b->id, b->off, buf, n)) != 0) {
		snprintf(b->r->err, b->r->errlen, "%s: %s", STORE_ERR, strerror(-b->rc));
		return b->rc;
	}
	/* one durable commit per IMPORT_BATCH bytes of the import (al_bundle_import runs in a store batch) */
	if (b->id != 0 && (b->r->unflushed += n) >= IMPORT_BATCH) {
		b->r->unflushed = 0;
		if ((b->rc = al_store_batch_flush(b->s)) != 0) {
			snprintf(b->r->err, b->r->errlen, "%s: %s", STORE_ERR, strerror(-b->rc));
			return b->rc;
		}
	}
	b->off += n;
	b->kept += n;
	b->left -= n;
	*got = n;
	return 0;
}

/* Read and check one body (verify or inspect); report it when inspecting. */
static int check_body(struct reader *r, const struct al_record *rec, uint64_t at, unsigned char *buf,
    struct inspect *ins, int idx, struct al_store *s, uint64_t id, char *err, size_t errlen)
{
	struct body_in b = {r, rec->body_len, EVP_MD_CTX_new(), ins ? EVP_MD_CTX_new() : NULL, NULL, 0, 0, s, id, 0};
	struct al_inspect_entry e = {rec, at, idx, {0}, AL_PGP_ABSENT, "", "", NULL, 0};
	const struct sidecar *sig = ins ? find_sig(ins, rec) : NULL;
	unsigned char d[32];
	unsigned dl = 32;
	int rc = 0;

	if (b.d256 == NULL || (ins && b.d512 == NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	EVP_DigestInit_ex(b.d256, EVP_sha256(), NULL);
	if (b.d512 != NULL)
		EVP_DigestInit_ex(b.d512, EVP_sha512(), NULL);
	if (ins && is_sidecar(rec->url, rec->url_len) && rec->body_len <= MAX_SIDECAR &&
	    (b.keep = malloc(rec->body_len ? rec->body_len : 1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (sig != NULL && ins->keys != NULL) {
		char why[200];
		e.pgp = al_pgp_verify_stream(ins->keys, body_read, &b, sig->body, sig->len, e.pgp_key, why, sizeof(why)) == 0
		    ? AL_PGP_VERIFIED : AL_PGP_BAD;
		if (e.pgp == AL_PGP_BAD)
			snprintf(e.pgp_why, sizeof(e.pgp_why), "%s", why);
		if (b.rc != 0) {
			rc = b.rc;
			goto out;
		}
	} else if (sig != NULL) {
		e.pgp = AL_PGP_NOT_CHECKED;
	}
	while (b.left > 0) {
		size_t got;
		if ((rc = body_read(&b, buf, BUF, &got)) != 0)
			goto out;
	}
	EVP_DigestFinal_ex(b.d256, d, &dl);
	if (memcmp(d, rec->sha256, 32) != 0) {
		snprintf(err, errlen, "entry %d (%.*s) at byte %llu: body digest mismatch", idx, (int)rec->url_len, rec->url,
		    (unsigned long long)at);
		rc = -EBADMSG;
		goto out;
	}
	if (ins == NULL)
		goto out;
	EVP_DigestFinal_ex(b.d512, e.sha512, &dl);
	if (b.keep != NULL) {
		struct sidecar *sc;
		if (ins->n == ins->cap) {
			size_t cap = ins->cap ? ins->cap * 2 : 64;
			struct sidecar *nv = realloc(ins->v, cap * sizeof(*nv));
			if (nv == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			ins->v = nv;
			ins->cap = cap;
		}
		sc = &ins->v[ins->n];
		if ((sc->url = strndup(rec->url, rec->url_len)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		sc->body = b.keep;
		sc->len = rec->body_len;
		b.keep = NULL;
		ins->n++;
		e.small = sc->body;
		e.small_len = sc->len;
	}
	rc = ins->fn(&e, ins->arg);
out:
	free(b.keep);
	EVP_MD_CTX_free(b.d256);
	EVP_MD_CTX_free(b.d512);
	return rc;
}

/*
 * One pass over the file: verify (fills info), and inspect with ins or
 * admit with ad (pending until the caller commits: see struct admitting).
 */
static int pass(struct admitting *ad, FILE *f, struct al_bundle_info *info, struct inspect *ins, char *err,
    size_t errlen)
{
	struct reader r = {.f = f, .md = EVP_MD_CTX_new(), .err = err, .errlen = errlen};
	struct listing l = {NULL, 0};
	unsigned char magic[8], *buf = malloc(BUF), *enc = NULL;
	uint64_t count = 0;
	int rc = 0, version, listed = 0;

	if (r.md == NULL || buf == NULL || !EVP_DigestInit_ex(r.md, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = in(&r, magic, 8, 1)) != 0)
		goto out;
	version = !memcmp(magic, MAGIC3, 8) ? 3 : !memcmp(magic, MAGIC2, 8) ? 2 : !memcmp(magic, MAGIC1, 8) ? 1 : 0;
	if (version == 0) {
		snprintf(err, errlen, "not an airlock bundle (bad magic)");
		rc = -EILSEQ;
		goto out;
	}
	memset(info, 0, sizeof(*info));
	info->version = version;
	for (;;) {
		unsigned char tag, lenb[4];
		uint32_t rl = 0;
		struct al_record rec;
		uint64_t at = r.pos, id = 0;

		if ((rc = in(&r, &tag, 1, 1)) != 0)
			goto out;
		if (ad != NULL && (tag == 'E' || tag == 'T') && (version < 3 || listed))
			admit_ready(ad, info);
		if (tag == 'T') {
			unsigned char cnt[8], want[32], got[32];
			unsigned dl = 32;
			int c;
			if (version == 3 && !listed) {
				snprintf(err, errlen, "corrupt bundle: no listing");
				rc = -EILSEQ;
				goto out;
			}
			if ((rc = in(&r, cnt, 8, 1)) != 0 || (rc = in(&r, want, 32, 0)) != 0)
				goto out;
			EVP_DigestFinal_ex(r.md, got, &dl);
			if (le(cnt, 8) != count || memcmp(want, got, 32) != 0 || (version == 3 && count != l.n)) {
				snprintf(err, errlen, "bundle digest mismatch at byte %llu: the file was altered or damaged",
				    (unsigned long long)at);
				rc = -EBADMSG;
				goto out;
			}
			memcpy(info->digest, want, 32);
			if (version < 3)
				memcpy(info->signed_digest, want, 32);
			info->entries = count;
			c = fgetc(f);
			if (c == 'S' && version >= 2) {
				unsigned char sl[2];
				size_t n;
				if ((rc = in(&r, sl, 2, 0)) != 0)
					goto out;
				n = (size_t)le(sl, 2);
				if (n == 0 || n > sizeof(info->sig)) {
					snprintf(err, errlen, "corrupt bundle: signature of %zu bytes", n);
					rc = -EBADMSG;
					goto out;
				}
				if ((rc = in(&r, info->sig, n, 0)) != 0)
					goto out;
				info->sig_len = n;
				info->is_signed = 1;
				c = fgetc(f);
			}
			if (c != EOF) {
				snprintf(err, errlen, "trailing bytes after the bundle's end");
				rc = -EBADMSG;
			}
			goto out;
		}
		if ((tag == 'H' && version >= 2 && r.pos == 9) || (tag == 'L' && version == 3 && !listed && count == 0)) {
			uint32_t cap = tag == 'H' ? MAX_HEADER : MAX_LISTING;
			unsigned char *blk;
			if ((rc = in(&r, lenb, 4, 1)) != 0)
				goto out;
			rl = (uint32_t)le(lenb, 4);
			if (rl > cap) {
				snprintf(err, errlen, "corrupt bundle: %s of %u bytes", tag == 'H' ? "header" : "listing", rl);
				rc = -EILSEQ;
				goto out;
			}
			if ((blk = malloc(rl ? rl : 1)) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			if ((rc = in(&r, blk, rl, 1)) == 0)
				rc = tag == 'H' ? parse_header(blk, rl, info, err, errlen) : parse_listing(blk, rl, &l, err, errlen);
			free(blk);
			if (rc != 0)
				goto out;
			if (tag == 'L') {
				EVP_MD_CTX *c = EVP_MD_CTX_new();
				unsigned dl = 32;
				listed = 1;
				if (c == NULL || !EVP_MD_CTX_copy_ex(c, r.md) || !EVP_DigestFinal_ex(c, info->signed_digest, &dl))
					rc = -ENOMEM;
				EVP_MD_CTX_free(c);
				if (rc != 0)
					goto out;
				info->listed = l.n;
				if (ins != NULL && ins->listing != NULL)
					ins->listing(l.n, ins->arg);
			}
			continue;
		}
		if (tag != 'E' || (version == 3 && !listed)) {
			snprintf(err, errlen, "corrupt bundle: unexpected byte at %llu", (unsigned long long)at);
			rc = -EILSEQ;
			goto out;
		}
		if ((rc = in(&r, lenb, 4, 1)) != 0)
			goto out;
		rl = (uint32_t)le(lenb, 4);
		if (rl > MAX_RECORD) {
			snprintf(err, errlen, "corrupt bundle: record of %u bytes at byte %llu", rl, (unsigned long long)at);
			rc = -EILSEQ;
			goto out;
		}
		free(enc);
		if ((enc = malloc(rl ? rl : 1)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = in(&r, enc, rl, 1)) != 0)
			goto out;
		if (al_record_decode(enc, rl, &rec) != 0 || rec.url_len == 0) {
			snprintf(err, errlen, "corrupt bundle: bad entry record at byte %llu", (unsigned long long)at);
			rc = -EILSEQ;
			goto out;
		}
		count++;
		if (version == 3) {
			/* held to the listing: the signed part names every record and body */
			uint8_t rd[32];
			unsigned dl = 32;
			const struct listed *le3 = count <= l.n ? &l.v[count - 1] : NULL;
			EVP_Digest(enc, rl, rd, &dl, EVP_sha256(), NULL);
			if (le3 == NULL || memcmp(rd, le3->record, 32) != 0 || memcmp(rec.sha256, le3->body, 32) != 0 ||
			    rec.body_len != le3->size || strlen(le3->url) != rec.url_len ||
			    memcmp(le3->url, rec.url, rec.url_len) != 0) {
				snprintf(err, errlen, "entry %llu (%.*s) at byte %llu: not the entry the listing names",
				    (unsigned long long)count, (int)rec.url_len, rec.url, (unsigned long long)at);
				rc = -EBADMSG;
				goto out;
			}
		}
		if (ad != NULL && !ad->refused && (rc = admit_begin(ad, &rec, enc, rl, &id)) != 0) {
			snprintf(err, errlen, "admitting %.*s: %s", (int)rec.url_len, rec.url, strerror(-rc));
			ad->store_failed = 1;
			goto out;
		}
		if ((rc = check_body(&r, &rec, at, buf, ins, (int)count, ad ? ad->s : NULL, id, err, errlen)) != 0) {
			if (ad != NULL && id != 0 && !strncmp(err, STORE_ERR, strlen(STORE_ERR)))
				ad->store_failed = 1;
			goto out;
		}
		info->body_bytes += rec.body_len;
	}
out:
	listing_free(&l);
	free(enc);
	free(buf);
	EVP_MD_CTX_free(r.md);
	return rc;
}

int al_bundle_verify(FILE *f, struct al_bundle_info *info, char *err, size_t errlen)
{
	if (fseeko(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "the bundle must be a seekable file: %s", strerror(errno));
		return -errno;
	}
	return pass(NULL, f, info, NULL, err, errlen);
}

int al_bundle_inspect(FILE *f, const struct al_pgp *keys, al_inspect_fn fn, al_listing_fn listing, void *arg,
    struct al_bundle_info *info, char *err, size_t errlen)
{
	struct inspect ins = {keys, fn, listing, arg, NULL, 0, 0};
	int rc;

	if (fseeko(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "the bundle must be a seekable file: %s", strerror(errno));
		return -errno;
	}
	rc = pass(NULL, f, info, &ins, err, errlen);
	for (size_t i = 0; i < ins.n; i++) {
		free(ins.v[i].url);
		free(ins.v[i].body);
	}
	free(ins.v);
	return rc;
}

int al_bundle_check_signature(const struct al_bundle_info *info, EVP_PKEY *const *trusted, int ntrusted,
    char *err, size_t errlen)
{
	if (!info->is_signed) {
		snprintf(err, errlen, "the bundle is not signed, and trusted keys are configured (import.trusted_keys, --trust)");
		return -ENOKEY;
	}
	for (int i = 0; i < ntrusted; i++) {
		char kid[AL_KEY_ID_LEN + 1];
		EVP_MD_CTX *vc;
		int ok;

		al_bundle_key_id(trusted[i], kid);
		if (strcmp(kid, info->key_id) != 0)
			continue;
		vc = EVP_MD_CTX_new();
		ok = vc != NULL && EVP_DigestVerifyInit(vc, NULL, NULL, NULL, trusted[i]) == 1 &&
		    EVP_DigestVerify(vc, info->sig, info->sig_len, info->signed_digest, 32) == 1;
		EVP_MD_CTX_free(vc);
		if (ok)
			return 0;
		snprintf(err, errlen, "the signature by key %s does not verify: the bundle was altered after signing",
		    info->key_id);
		return -EBADMSG;
	}
	snprintf(err, errlen, "the bundle is signed by key %s, which is not among the trusted keys",
	    info->key_id[0] ? info->key_id : "(no key id)");
	return -EKEYREJECTED;
}

/*
 * The end of a version-3 file holds the signature ('T' trailer of 41 bytes,
 * then 'S', a u16 length and 64 bytes of Ed25519): read first, so that the
 * signed listing is checked before any entry is admitted.  It is only a
 * claim: the pass checks it against the listing it reads, and at the end
 * the signature met in the stream is checked again.  -1: not seekable (a
 * pipe): the signature is checked at the end only.
 */
static int peek_signature(FILE *f, unsigned char sig[64])
{
	unsigned char t[108];
	off_t size;
	int found = 0;

	if (fseeko(f, 0, SEEK_END) != 0 || (size = ftello(f)) < 0)
		return -1;
	if (size >= (off_t)sizeof(t) && fseeko(f, size - (off_t)sizeof(t), SEEK_SET) == 0 &&
	    fread(t, 1, sizeof(t), f) == sizeof(t) && t[0] == 'T' && t[41] == 'S' && le(t + 42, 2) == 64) {
		memcpy(sig, t + 44, 64);
		found = 1;
	}
	return fseeko(f, 0, SEEK_SET) == 0 ? found : -1;
}

int al_bundle_import(struct al_store *s, FILE *f, const struct al_import_opts *o, struct al_bundle_info *info,
    struct al_import_stats *st, int *outcome, char *err, size_t errlen)
{
	struct admitting ad;
	int rc;

	memset(st, 0, sizeof(*st));
	memset(&ad, 0, sizeof(ad));
	ad.s = s;
	ad.o = o;
	if ((ad.tail_signed = peek_signature(f, ad.tail_sig)) < 0)
		clearerr(f);
	/*
	 * Every commit is durable (cache/store.c, "Durability"): the import's
	 * writes join one store batch, committed every IMPORT_BATCH bytes of
	 * bodies and at the end, instead of an fdatasync per chunk.  What a
	 * flush commits before the end are pending objects only, which the next
	 * open drops if the process dies.
	 */
	if ((rc = al_store_batch_begin(s)) != 0) {
		*outcome = AL_IMPORT_FAILED;
		snprintf(err, errlen, "the cache refused a write transaction: %s", strerror(-rc));
		return rc;
	}
	*outcome = AL_IMPORT_REFUSED;
	if ((rc = pass(&ad, f, info, NULL, err, errlen)) != 0) {
		if (ad.store_failed)
			*outcome = AL_IMPORT_FAILED;
		goto out;
	}
	if (ad.refused) {
		rc = ad.refused;
		*outcome = rc == -ENOENT ? AL_IMPORT_NO_BASE : AL_IMPORT_UNTRUSTED;
		snprintf(err, errlen, "%s", ad.why);
		goto out;
	}
	/* the signature the stream met, over what the stream read (all formats) */
	if (o->ntrusted > 0 && (rc = al_bundle_check_signature(info, o->trusted, o->ntrusted, err, errlen)) != 0) {
		*outcome = AL_IMPORT_UNTRUSTED;
		goto out;
	}
	if (o->source_ok != NULL && (rc = o->source_ok(o->source_arg, err, errlen)) != 0)
		goto out;
	*outcome = AL_IMPORT_FAILED;
	if ((rc = admit_commit(&ad, st, err, errlen)) != 0)
		goto out;
	if ((rc = al_store_note_bundle(s, info->digest)) != 0) {
		snprintf(err, errlen, "noting the bundle as held by the cache: %s", strerror(-rc));
		goto out;
	}
	*outcome = AL_IMPORT_ADMITTED;
out:
	pend_drop(&ad);
	{
		int brc = al_store_batch_end(s);
		if (rc == 0 && brc != 0) {
			*outcome = AL_IMPORT_FAILED;
			snprintf(err, errlen, "the cache could not commit the import: %s", strerror(-brc));
			rc = brc;
		}
	}
	return rc;
}
