#include "cache/bundle.h"

#include <errno.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "ALKBNDL1"
#define MAX_RECORD (1u << 20)
#define BUF (256 * 1024)

struct writer {
	FILE *f;
	EVP_MD_CTX *md;
	const char *match;
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
	if (w->match != NULL && fnmatch(w->match, url, 0) != 0)
		return 0;
	rl = al_record_size(rec);
	if ((enc = malloc(rl)) == NULL)
		return -ENOMEM;
	al_record_encode(rec, enc);
	for (int i = 0; i < 4; i++)
		lenb[i] = (uint8_t)(rl >> (8 * i));
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

int al_bundle_export(struct al_store *s, FILE *f, const char *match, struct al_bundle_stats *st,
    char *err, size_t errlen)
{
	struct writer w = {f, EVP_MD_CTX_new(), match, NULL, st, err, errlen};
	uint8_t trailer[1 + 8 + 32];
	unsigned dl = 32;
	int rc;

	memset(st, 0, sizeof(*st));
	if (w.md == NULL || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) || al_reader_new(s, &w.rd) != 0) {
		EVP_MD_CTX_free(w.md);
		snprintf(err, errlen, "out of memory or LMDB readers");
		return -ENOMEM;
	}
	al_reader_begin(w.rd);
	rc = out(&w, MAGIC, 8);
	if (rc == 0)
		rc = al_store_foreach(s, export_one, &w);
	al_reader_free(w.rd);
	if (rc == 0) {
		trailer[0] = 'T';
		for (int i = 0; i < 8; i++)
			trailer[1 + i] = (uint8_t)(st->entries >> (8 * i));
		EVP_DigestUpdate(w.md, trailer, 9);
		EVP_DigestFinal_ex(w.md, trailer + 9, &dl);
		if (fwrite(trailer, 1, sizeof(trailer), f) != sizeof(trailer) || fflush(f) != 0) {
			snprintf(err, errlen, "write: %s", strerror(errno));
			rc = -EIO;
		}
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

/* One pass: verify (s == NULL) or admit. */
static int pass(struct al_store *s, FILE *f, struct al_import_stats *st, char *err, size_t errlen)
{
	struct reader r = {f, EVP_MD_CTX_new(), 0, err, errlen};
	unsigned char magic[8], *buf = malloc(BUF), *enc = NULL;
	uint64_t count = 0;
	int rc = 0;

	if (r.md == NULL || buf == NULL || !EVP_DigestInit_ex(r.md, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = in(&r, magic, 8, 1)) != 0)
		goto out;
	if (memcmp(magic, MAGIC, 8) != 0) {
		snprintf(err, errlen, "not an airlock bundle (bad magic)");
		rc = -EILSEQ;
		goto out;
	}
	for (;;) {
		unsigned char tag, lenb[4];
		uint32_t rl = 0;
		struct al_record rec;

		if ((rc = in(&r, &tag, 1, 1)) != 0)
			goto out;
		if (tag == 'T') {
			unsigned char cnt[8], want[32], got[32];
			uint64_t n = 0;
			unsigned dl = 32;
			if ((rc = in(&r, cnt, 8, 1)) != 0 || (rc = in(&r, want, 32, 0)) != 0)
				goto out;
			for (int i = 0; i < 8; i++)
				n |= (uint64_t)cnt[i] << (8 * i);
			EVP_DigestFinal_ex(r.md, got, &dl);
			/* the admitting pass skips bodies it does not admit: only pass 1 checks the digest */
			if (n != count || (s == NULL && memcmp(want, got, 32) != 0)) {
				snprintf(err, errlen, "bundle digest mismatch: the file was altered or damaged");
				rc = -EBADMSG;
				goto out;
			}
			if (fgetc(f) != EOF) {
				snprintf(err, errlen, "trailing bytes after the bundle's end");
				rc = -EBADMSG;
			}
			goto out;
		}
		if (tag != 'E') {
			snprintf(err, errlen, "corrupt bundle: unexpected byte at %llu", (unsigned long long)r.pos - 1);
			rc = -EILSEQ;
			goto out;
		}
		if ((rc = in(&r, lenb, 4, 1)) != 0)
			goto out;
		for (int i = 0; i < 4; i++)
			rl |= (uint32_t)lenb[i] << (8 * i);
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

int al_bundle_import(struct al_store *s, FILE *f, struct al_import_stats *st, char *err, size_t errlen)
{
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = pass(NULL, f, st, err, errlen)) != 0 || s == NULL)
		return rc;
	if (fseeko(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "the bundle must be a seekable file: %s", strerror(errno));
		return -errno;
	}
	return pass(s, f, st, err, errlen);
}
