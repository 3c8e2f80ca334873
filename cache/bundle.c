#include "cache/bundle.h"
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
#define MAX_RECORD (1u << 20)
#define MAX_HEADER (64u << 10)
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
	if (memcmp(magic, MAGIC1, 8) != 0 && memcmp(magic, MAGIC2, 8) != 0) {
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
		if (tag != 'E' && tag != 'H') {
			snprintf(err, errlen, "corrupt bundle");
			rc = -EILSEQ;
			goto fail;
		}
		if ((rc = rd(f, lenb, 4, err, errlen)) != 0)
			goto fail;
		rl = (uint32_t)le(lenb, 4);
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

struct writer {
	FILE *f;
	EVP_MD_CTX *md;
	const struct al_export_opts *o;
	struct al_reader *rd;
	struct al_bundle_stats *st;
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

/* Unchanged against the base: same key, body and validators. */
static int in_base(const struct al_bundle_index *ix, const uint8_t key[AL_KEY_LEN], const struct al_record *rec)
{
	struct ix_entry probe, *hit;
	uint8_t vd[32];

	if (ix == NULL || ix->n == 0)
		return 0;
	memcpy(probe.key, key, AL_KEY_LEN);
	hit = bsearch(&probe, ix->v, ix->n, sizeof(ix->v[0]), by_key);
	if (hit == NULL || memcmp(hit->body, rec->sha256, 32) != 0)
		return 0;
	validators_digest(rec->hdrs, rec->hdrs_len, vd);
	return memcmp(hit->validators, vd, 32) == 0;
}

static int export_one(const uint8_t key[AL_KEY_LEN], const struct al_record *rec, void *arg)
{
	struct writer *w = arg;
	char url[8192];
	uint8_t lenb[4], *enc;
	size_t rl;
	uint64_t off = 0;
	int rc;

	if (rec->url_len >= sizeof(url))
		return 0;
	memcpy(url, rec->url, rec->url_len);
	url[rec->url_len] = '\0';
	if (w->o->match != NULL && fnmatch(w->o->match, url, 0) != 0)
		return 0;
	if (in_base(w->o->base, key, rec)) {
		w->st->unchanged++;
		return 0;
	}
	rl = al_record_size(rec);
	if ((enc = malloc(rl)) == NULL)
		return -ENOMEM;
	al_record_encode(rec, enc);
	put_le(lenb, rl, 4);
	rc = out(w, "E", 1);
	if (rc == 0)
		rc = out(w, lenb, 4);
	if (rc == 0)
		rc = out(w, enc, rl);
	free(enc);
	/* The body, from the map, chunk by chunk (the outer snapshot keeps it stable). */
	while (rc == 0 && off < rec->body_len) {
		const void *p;
		size_t n;
		if (al_body_at(w->rd, rec->obj_id, off, &p, &n) != 0) {
			snprintf(w->err, w->errlen, "%s: body missing at %llu", url, (unsigned long long)off);
			return -EILSEQ;
		}
		if (n > rec->body_len - off)
			n = (size_t)(rec->body_len - off);
		rc = out(w, p, n);
		off += n;
	}
	if (rc == 0) {
		w->st->entries++;
		w->st->bytes += rec->body_len;
	}
	return rc;
}

static char *header_json(const struct al_export_opts *o)
{
	json_t *h = json_object();
	char ts[32], kid[AL_KEY_ID_LEN + 1], dh[65];
	time_t now = time(NULL);
	struct tm tm;
	char *s;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(h, "format", json_integer(2));
	json_object_set_new(h, "created", json_string(ts));
	if (o->sign != NULL) {
		al_bundle_key_id(o->sign, kid);
		json_object_set_new(h, "key_id", json_string(kid));
	}
	if (o->base != NULL) {
		al_hex(o->base->digest, 32, dh);
		json_object_set_new(h, "base", json_pack("{s:s, s:I}", "digest", dh, "entries", (json_int_t)o->base->entries));
	}
	s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(h);
	return s;
}

int al_bundle_export(struct al_store *s, FILE *f, const struct al_export_opts *o, struct al_bundle_stats *st,
    char *err, size_t errlen)
{
	static const struct al_export_opts none = {0};
	struct writer w = {f, EVP_MD_CTX_new(), o ? o : &none, NULL, st, err, errlen};
	uint8_t trailer[1 + 8 + 32], lenb[4];
	unsigned dl = 32;
	char *hdr = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	if (w.md == NULL || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) || al_reader_new(s, &w.rd) != 0 ||
	    (hdr = header_json(w.o)) == NULL) {
		EVP_MD_CTX_free(w.md);
		free(hdr);
		snprintf(err, errlen, "out of memory or LMDB readers");
		return -ENOMEM;
	}
	al_reader_begin(w.rd);
	put_le(lenb, strlen(hdr), 4);
	rc = out(&w, MAGIC2, 8);
	if (rc == 0)
		rc = out(&w, "H", 1);
	if (rc == 0)
		rc = out(&w, lenb, 4);
	if (rc == 0)
		rc = out(&w, hdr, strlen(hdr));
	free(hdr);
	if (rc == 0)
		rc = al_store_foreach(s, export_one, &w);
	al_reader_free(w.rd);
	if (rc == 0) {
		trailer[0] = 'T';
		put_le(trailer + 1, st->entries, 8);
		EVP_DigestUpdate(w.md, trailer, 9);
		EVP_DigestFinal_ex(w.md, trailer + 9, &dl);
		if (fwrite(trailer, 1, sizeof(trailer), f) != sizeof(trailer)) {
			snprintf(err, errlen, "write: %s", strerror(errno));
			rc = -EIO;
		}
	}
	if (rc == 0 && w.o->sign != NULL) {
		/* Ed25519 signs the digest over the whole file (header and key id included) */
		EVP_MD_CTX *sc = EVP_MD_CTX_new();
		unsigned char sig[128], blk[3];
		size_t sl = sizeof(sig);
		if (sc == NULL || EVP_DigestSignInit(sc, NULL, NULL, NULL, w.o->sign) != 1 ||
		    EVP_DigestSign(sc, sig, &sl, trailer + 9, 32) != 1) {
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
	EVP_MD_CTX_free(w.md);
	return rc;
}

/* ---- reading ---- */

struct reader {
	FILE *f;
	EVP_MD_CTX *md;
	uint64_t pos;
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
	const char *kid, *dg;

	if (h == NULL || !json_is_object(h)) {
		json_decref(h);
		snprintf(err, errlen, "corrupt bundle: unreadable header");
		return -EILSEQ;
	}
	if ((kid = json_string_value(json_object_get(h, "key_id"))) != NULL)
		snprintf(info->key_id, sizeof(info->key_id), "%s", kid);
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

/* Admit one entry whose body follows in the file (second pass). */
static int admit(struct al_store *s, struct reader *r, const struct al_record *rec, unsigned char *buf,
    struct al_import_stats *st)
{
	uint8_t key[AL_KEY_LEN];
	struct al_reader *rd;
	struct al_record old, nrec = *rec;
	uint64_t id, off = 0;
	int have_old = 0, rc;

	al_store_key(rec->url, rec->url_len, key);
	if (al_reader_new(s, &rd) == 0) {
		if (al_lookup(rd, key, &old) == 0) {
			have_old = 1;
			if (old.response_time >= rec->response_time && memcmp(old.sha256, rec->sha256, 32) == 0)
				have_old = 2; /* the same response */
			else if (old.response_time > rec->response_time)
				have_old = 3; /* newer in the cache: keep it */
		}
		al_reader_free(rd);
	}
	if (have_old >= 2) {
		st->skipped++;
		if (have_old == 2)
			al_store_pin(s, key, 1);
		return fseeko(r->f, (off_t)rec->body_len, SEEK_CUR) == 0 ? (r->pos += rec->body_len, 0) : -EIO;
	}
	if ((rc = al_fill_begin(s, key, &id)) != 0)
		return rc;
	while (off < rec->body_len) {
		size_t n = rec->body_len - off > BUF ? BUF : (size_t)(rec->body_len - off);
		if ((rc = in(r, buf, n, 0)) != 0 || (rc = al_fill_append(s, id, off, buf, n)) != 0) {
			al_fill_abort(s, id);
			return rc;
		}
		off += n;
		/* one durable commit per IMPORT_BATCH bytes (al_bundle_admit runs in a store batch) */
		if (off % IMPORT_BATCH == 0 && (rc = al_store_batch_flush(s)) != 0)
			return rc;
	}
	nrec.obj_id = id;
	nrec.flags |= AL_REC_PINNED;
	if ((rc = al_fill_commit(s, key, &nrec)) != 0) {
		al_fill_abort(s, id);
		return rc;
	}
	if (have_old)
		st->updated++;
	else
		st->added++;
	st->bytes += rec->body_len;
	return 0;
}

/* One pass: verify (s == NULL; fills info) or admit. */
static int pass(struct al_store *s, FILE *f, struct al_bundle_info *info, struct al_import_stats *st,
    char *err, size_t errlen)
{
	struct reader r = {f, EVP_MD_CTX_new(), 0, err, errlen};
	unsigned char magic[8], *buf = malloc(BUF), *enc = NULL;
	uint64_t count = 0;
	int rc = 0, v2;

	if (r.md == NULL || buf == NULL || !EVP_DigestInit_ex(r.md, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = in(&r, magic, 8, 1)) != 0)
		goto out;
	v2 = memcmp(magic, MAGIC2, 8) == 0;
	if (!v2 && memcmp(magic, MAGIC1, 8) != 0) {
		snprintf(err, errlen, "not an airlock bundle (bad magic)");
		rc = -EILSEQ;
		goto out;
	}
	if (s == NULL) {
		memset(info, 0, sizeof(*info));
		info->version = v2 ? 2 : 1;
	}
	for (;;) {
		unsigned char tag, lenb[4];
		uint32_t rl = 0;
		struct al_record rec;

		if ((rc = in(&r, &tag, 1, 1)) != 0)
			goto out;
		if (tag == 'T') {
			unsigned char cnt[8], want[32], got[32];
			unsigned dl = 32;
			int c;
			if ((rc = in(&r, cnt, 8, 1)) != 0 || (rc = in(&r, want, 32, 0)) != 0)
				goto out;
			EVP_DigestFinal_ex(r.md, got, &dl);
			/* the admitting pass skips bodies it does not admit: only the first checks the digest */
			if (le(cnt, 8) != count || (s == NULL && memcmp(want, got, 32) != 0)) {
				snprintf(err, errlen, "bundle digest mismatch: the file was altered or damaged");
				rc = -EBADMSG;
				goto out;
			}
			if (s == NULL) {
				memcpy(info->digest, want, 32);
				info->entries = count;
			}
			c = fgetc(f);
			if (c == 'S' && v2) {
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
				if (s == NULL) {
					if ((rc = in(&r, info->sig, n, 0)) != 0)
						goto out;
					info->sig_len = n;
					info->is_signed = 1;
				} else if (fseeko(f, (off_t)n, SEEK_CUR) != 0) {
					rc = -EIO;
					goto out;
				}
				c = fgetc(f);
			}
			if (c != EOF) {
				snprintf(err, errlen, "trailing bytes after the bundle's end");
				rc = -EBADMSG;
			}
			goto out;
		}
		if (tag == 'H' && v2 && r.pos == 9) {
			if ((rc = in(&r, lenb, 4, 1)) != 0)
				goto out;
			rl = (uint32_t)le(lenb, 4);
			if (rl > MAX_HEADER || (rc = in(&r, buf, rl, 1)) != 0) {
				if (rc == 0)
					snprintf(err, errlen, "corrupt bundle: header of %u bytes", rl);
				rc = rc ? rc : -EILSEQ;
				goto out;
			}
			if (s == NULL && (rc = parse_header(buf, rl, info, err, errlen)) != 0)
				goto out;
			continue;
		}
		if (tag != 'E') {
			snprintf(err, errlen, "corrupt bundle: unexpected byte at %llu", (unsigned long long)r.pos - 1);
			rc = -EILSEQ;
			goto out;
		}
		if ((rc = in(&r, lenb, 4, 1)) != 0)
			goto out;
		rl = (uint32_t)le(lenb, 4);
		if (rl > MAX_RECORD) {
			snprintf(err, errlen, "corrupt bundle: record of %u bytes", rl);
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
			snprintf(err, errlen, "corrupt bundle: bad entry record at %llu", (unsigned long long)r.pos - rl);
			rc = -EILSEQ;
			goto out;
		}
		count++;
		if (s == NULL) {
			/* verify: digest the body against the record */
			EVP_MD_CTX *bm = EVP_MD_CTX_new();
			unsigned char d[32];
			uint64_t off = 0;
			unsigned dl = 32;
			EVP_DigestInit_ex(bm, EVP_sha256(), NULL);
			while (rc == 0 && off < rec.body_len) {
				size_t n = rec.body_len - off > BUF ? BUF : (size_t)(rec.body_len - off);
				if ((rc = in(&r, buf, n, 1)) == 0)
					EVP_DigestUpdate(bm, buf, n);
				off += n;
			}
			EVP_DigestFinal_ex(bm, d, &dl);
			EVP_MD_CTX_free(bm);
			if (rc != 0)
				goto out;
			if (memcmp(d, rec.sha256, 32) != 0) {
				snprintf(err, errlen, "entry %.*s: body digest mismatch", (int)rec.url_len, rec.url);
				rc = -EBADMSG;
				goto out;
			}
			info->body_bytes += rec.body_len;
		} else if ((rc = admit(s, &r, &rec, buf, st)) != 0) {
			snprintf(err, errlen, "admitting %.*s: %s", (int)rec.url_len, rec.url, strerror(-rc));
			goto out;
		}
	}
out:
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
		    EVP_DigestVerify(vc, info->sig, info->sig_len, info->digest, 32) == 1;
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

int al_bundle_admit(struct al_store *s, FILE *f, const struct al_bundle_info *info, struct al_import_stats *st,
    char *err, size_t errlen)
{
	int rc;

	memset(st, 0, sizeof(*st));
	if (fseeko(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "the bundle must be a seekable file: %s", strerror(errno));
		return -errno;
	}
	/*
	 * Every commit is durable (cache/store.c, "Durability"): the import
	 * groups its writes into one batch, committed every IMPORT_BATCH bytes
	 * and at the end, instead of an fdatasync per chunk.  A power loss
	 * mid-import leaves what was committed, and interrupted entries as
	 * pending fills that the next open drops; importing again completes it.
	 */
	if ((rc = al_store_batch_begin(s)) != 0) {
		snprintf(err, errlen, "the cache refused a write transaction: %s", strerror(-rc));
		return rc;
	}
	rc = pass(s, f, NULL, st, err, errlen);
	if (rc == 0)
		rc = al_store_note_bundle(s, info->digest);
	{
		int brc = al_store_batch_end(s);
		if (rc == 0 && brc != 0) {
			snprintf(err, errlen, "the cache could not commit the import: %s", strerror(-brc));
			rc = brc;
		}
	}
	return rc;
}
