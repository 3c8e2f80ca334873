#include "proxy/cli/split.h"
#include "policy/units.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PARTS 999

struct part {
	char *name;
	uint64_t bytes;
	uint8_t sha256[32];
};

struct split_writer {
	char *base;                /* FILE */
	uint64_t part_size;
	struct part *v;
	int n;
	FILE *cur;                 /* the part being written */
	EVP_MD_CTX *md;
	int failed;
};

static int next_part(struct split_writer *w)
{
	char name[4200];
	unsigned dl = 32;

	if (w->cur != NULL) {
		if (fclose(w->cur) != 0) {
			w->cur = NULL;
			return -errno;
		}
		w->cur = NULL;
		EVP_DigestFinal_ex(w->md, w->v[w->n - 1].sha256, &dl);
	}
	if (w->n == MAX_PARTS)
		return -EFBIG;
	snprintf(name, sizeof(name), "%s.%03d", w->base, w->n + 1);
	if ((w->v[w->n].name = strdup(name)) == NULL)
		return -ENOMEM;
	w->v[w->n].bytes = 0;
	w->n++;
	if ((w->cur = fopen(name, "wbx")) == NULL)
		return -errno;
	EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
	return 0;
}

static ssize_t w_write(void *cookie, const char *buf, size_t size)
{
	struct split_writer *w = cookie;
	size_t done = 0;

	while (done < size) {
		struct part *p = w->n ? &w->v[w->n - 1] : NULL;
		size_t n;
		int rc;
		if (p == NULL || p->bytes == w->part_size) {
			if ((rc = next_part(w)) != 0) {
				w->failed = 1;
				errno = -rc;
				return done ? (ssize_t)done : -1;
			}
			p = &w->v[w->n - 1];
		}
		n = size - done;
		if (n > w->part_size - p->bytes)
			n = (size_t)(w->part_size - p->bytes);
		if (fwrite(buf + done, 1, n, w->cur) != n) {
			w->failed = 1;
			return done ? (ssize_t)done : -1;
		}
		EVP_DigestUpdate(w->md, buf + done, n);
		p->bytes += n;
		done += n;
	}
	return (ssize_t)done;
}

static int w_close(void *cookie)
{
	struct split_writer *w = cookie;
	unsigned dl = 32;
	int rc = 0;

	if (w->cur != NULL) {
		rc = fclose(w->cur);
		w->cur = NULL;
		EVP_DigestFinal_ex(w->md, w->v[w->n - 1].sha256, &dl);
	}
	return rc == 0 && !w->failed ? 0 : EOF;
}

FILE *split_write_open(const char *path, uint64_t part, struct split_writer **out, char *err, size_t errlen)
{
	struct split_writer *w = calloc(1, sizeof(*w));
	cookie_io_functions_t io = {NULL, w_write, NULL, w_close};
	FILE *f;

	if (w == NULL || (w->base = strdup(path)) == NULL || (w->v = calloc(MAX_PARTS, sizeof(w->v[0]))) == NULL ||
	    (w->md = EVP_MD_CTX_new()) == NULL) {
		split_write_free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->part_size = part;
	{
		/* never over an earlier bundle's parts: a mix of two would be named altered only at import */
		char p1[4200], ip[4200];
		snprintf(p1, sizeof(p1), "%s.001", path);
		snprintf(ip, sizeof(ip), "%s.index", path);
		if (access(p1, F_OK) == 0 || access(ip, F_OK) == 0) {
			snprintf(err, errlen, "%s or %s exists already; airlock does not overwrite parts", p1, ip);
			split_write_free(w);
			return NULL;
		}
	}
	if ((f = fopencookie(w, "w", io)) == NULL) {
		split_write_free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* whole parts at a time from stdio's buffer: no need for its own */
	*out = w;
	return f;
}

int split_write_index(struct split_writer *w, const char *digest, int *nparts, char *err, size_t errlen)
{
	json_t *o = json_object(), *a = json_array();
	char ip[4200], h[65];
	FILE *f;
	int rc = 0;

	for (int i = 0; i < w->n; i++) {
		const char *slash = strrchr(w->v[i].name, '/');
		al_hex(w->v[i].sha256, 32, h);
		json_array_append_new(a, json_pack("{s:s, s:I, s:s}", "name", slash ? slash + 1 : w->v[i].name, "bytes",
		    (json_int_t)w->v[i].bytes, "sha256", h));
	}
	json_object_set_new(o, "airlock_split", json_integer(1));
	json_object_set_new(o, "bundle_digest", json_string(digest));
	json_object_set_new(o, "part_size", json_integer((json_int_t)w->part_size));
	json_object_set_new(o, "parts", a);
	snprintf(ip, sizeof(ip), "%s.index", w->base);
	if ((f = fopen(ip, "wx")) == NULL || json_dumpf(o, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0 ||
	    fputc('\n', f) == EOF) {
		rc = -errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: %s", ip, strerror(errno));
	}
	if (f != NULL && fclose(f) != 0 && rc == 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", ip, strerror(errno));
	}
	json_decref(o);
	*nparts = w->n;
	return rc;
}

int sw_full(const struct split_writer *w)
{
	return w->n == MAX_PARTS && w->failed;
}

void split_write_abort(struct split_writer *w)
{
	char ip[4200];

	for (int i = 0; w != NULL && i < w->n; i++)
		remove(w->v[i].name);
	if (w != NULL) {
		snprintf(ip, sizeof(ip), "%s.index", w->base);
		remove(ip);
	}
	split_write_free(w);
}

void split_write_free(struct split_writer *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i < w->n; i++)
		free(w->v[i].name);
	free(w->v);
	free(w->base);
	EVP_MD_CTX_free(w->md);
	free(w);
}

/* ---- reading ---- */

/*
 * Reading: with split_open_read's sr, each part's SHA-256 is taken from the
 * bytes the bundle reader is handed, in order (the part's "frontier"), and
 * compared when its last byte is read: a part that is not the one the
 * index names fails that read, so the bundle reader stops before its end
 * and import publishes nothing.  Bytes read elsewhere (the signature
 * peeked at the file's end) are not digested then; import holds them to
 * the signature met in order anyway.
 */
struct split_reader {
	struct part *v;
	int n;
	uint64_t total, pos;
	FILE *cur;
	int cur_i;
	int digest_on_read;        /* the parts' digests are checked while reading */
	EVP_MD_CTX **md;           /* per part, while its frontier is short of its end */
	uint64_t *front;           /* per part: bytes digested, in order */
	uint8_t (*want)[32];       /* per part: the index's SHA-256 */
	int bad;                   /* the first part found not to be the index's (1-based), 0 none */
};

/* Part i's bytes [off, off+n) were read: digest them when they are its frontier; -1 when the part ends wrong. */
static int r_digest(struct split_reader *r, int i, uint64_t off, const char *buf, size_t n)
{
	uint8_t d[32];
	unsigned dl = 32;

	if (!r->digest_on_read || r->md[i] == NULL || off != r->front[i])
		return 0;
	EVP_DigestUpdate(r->md[i], buf, n);
	r->front[i] += n;
	if (r->front[i] < r->v[i].bytes)
		return 0;
	EVP_DigestFinal_ex(r->md[i], d, &dl);
	EVP_MD_CTX_free(r->md[i]);
	r->md[i] = NULL;
	memcpy(r->v[i].sha256, d, 32);
	if (memcmp(d, r->want[i], 32) != 0) {
		if (!r->bad)
			r->bad = i + 1;
		return -1;
	}
	return 0;
}

static int r_at(struct split_reader *r, uint64_t pos)
{
	uint64_t start = 0;
	int i;

	for (i = 0; i < r->n && pos >= start + r->v[i].bytes; i++)
		start += r->v[i].bytes;
	if (i == r->n)
		return 0; /* at the end */
	if (r->cur_i != i) {
		if (r->cur)
			fclose(r->cur);
		r->cur_i = -1;
		if ((r->cur = fopen(r->v[i].name, "rb")) == NULL)
			return -errno;
		r->cur_i = i;
	}
	return fseeko(r->cur, (off_t)(pos - start), SEEK_SET) == 0 ? 0 : -errno;
}

static ssize_t r_read(void *cookie, char *buf, size_t size)
{
	struct split_reader *r = cookie;
	size_t done = 0;

	while (done < size && r->pos < r->total) {
		uint64_t start = 0, off;
		size_t n, want = size - done;
		int i;
		if (r_at(r, r->pos) != 0)
			return done ? (ssize_t)done : -1;
		for (i = 0; i < r->cur_i; i++)
			start += r->v[i].bytes;
		off = r->pos - start;
		if (want > r->v[i].bytes - off)
			want = (size_t)(r->v[i].bytes - off); /* never past the part's end: a grown file is not read on */
		n = fread(buf + done, 1, want, r->cur);
		if (n == 0)
			return done ? (ssize_t)done : -1; /* shorter than checked: changed under us */
		if (r_digest(r, i, off, buf + done, n) != 0) {
			errno = EBADMSG;
			return -1; /* not a byte more of a bundle whose part is not the index's */
		}
		done += n;
		r->pos += n;
	}
	return (ssize_t)done;
}

static int r_seek(void *cookie, off64_t *off, int whence)
{
	struct split_reader *r = cookie;
	int64_t to = whence == SEEK_SET ? *off : whence == SEEK_CUR ? (int64_t)r->pos + *off : (int64_t)r->total + *off;

	if (to < 0) {
		errno = EINVAL;
		return -1;
	}
	r->pos = (uint64_t)to;
	*off = to;
	return 0;
}

static int r_close(void *cookie)
{
	struct split_reader *r = cookie;

	if (r->cur)
		fclose(r->cur);
	for (int i = 0; i < r->n; i++) {
		free(r->v[i].name);
		if (r->md)
			EVP_MD_CTX_free(r->md[i]);
	}
	free(r->v);
	free(r->md);
	free(r->front);
	free(r->want);
	free(r);
	return 0;
}

static int file_sha256(const char *path, uint64_t *size, uint8_t d[32])
{
	FILE *f = fopen(path, "rb");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536];
	unsigned dl = 32;
	size_t n;

	*size = 0;
	if (f == NULL || md == NULL) {
		int e = errno;
		if (f)
			fclose(f);
		EVP_MD_CTX_free(md);
		return -(e ? e : ENOMEM);
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		EVP_DigestUpdate(md, buf, n);
		*size += n;
	}
	EVP_DigestFinal_ex(md, d, &dl);
	EVP_MD_CTX_free(md);
	fclose(f);
	return 0;
}

/* 2n hex digits into n bytes; 0 or -1. */
static int unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int a = al_hex_digit(h[2 * i]), b = a < 0 ? -1 : al_hex_digit(h[2 * i + 1]);
		if (b < 0)
			return -1;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

/* Part i (of total) is not the one the index names: its digest and the index's. */
static void named_bad(const struct split_reader *r, int i, size_t total, char *err, size_t errlen)
{
	char dh[65], wh[65];

	al_hex(r->v[i].sha256, 32, dh);
	al_hex(r->want[i], 32, wh);
	snprintf(err, errlen, "part %d of %d, %s, is not the part the index names (SHA-256 %.16s..., the index says "
	    "%.16s...): altered, or a part of another bundle", i + 1, (int)total, r->v[i].name, dh, wh);
}

int split_read_check(struct split_reader *r, char *err, size_t errlen)
{
	char buf[65536];

	for (int i = 0; i < r->n; i++) {
		FILE *f;
		if (r->md[i] != NULL) {
			/* the rest of a part the stream did not read in order (a refusal stopped it): only those bytes */
			if ((f = fopen(r->v[i].name, "rb")) == NULL || fseeko(f, (off_t)r->front[i], SEEK_SET) != 0) {
				snprintf(err, errlen, "part %d of %d, %s, is missing (%s)", i + 1, r->n, r->v[i].name, strerror(errno));
				if (f)
					fclose(f);
				return -ENOENT;
			}
			while (r->md[i] != NULL) {
				size_t want = sizeof(buf), n;
				if (want > r->v[i].bytes - r->front[i])
					want = (size_t)(r->v[i].bytes - r->front[i]);
				if ((n = fread(buf, 1, want, f)) == 0)
					break;
						r_digest(r, i, r->front[i], buf, n);
			}
			fclose(f);
			if (r->md[i] != NULL) {
				snprintf(err, errlen, "part %d of %d, %s, is short: %llu bytes where the index says %llu", i + 1,
				    r->n, r->v[i].name, (unsigned long long)r->front[i], (unsigned long long)r->v[i].bytes);
				return -EBADMSG;
			}
		}
		if (memcmp(r->v[i].sha256, r->want[i], 32) != 0) {
			named_bad(r, i, (size_t)r->n, err, errlen);
			return -EBADMSG;
		}
	}
	return 0;
}

int split_open_read(const char *path, FILE **out, struct split_reader **sr, char *index_path, size_t cap, char *err,
    size_t errlen)
{
	size_t len = strlen(path);
	char dir[4200] = "", full[4400];
	const char *slash;
	struct split_reader *r = NULL;
	json_t *ix, *parts, *e;
	json_error_t je;
	cookie_io_functions_t io = {r_read, NULL, r_seek, r_close};
	size_t i;
	int rc = -EBADMSG;

	if (len > 6 && !strcmp(path + len - 6, ".index"))
		snprintf(index_path, cap, "%s", path);
	else if (len > 4 && path[len - 4] == '.' && isdigit((unsigned char)path[len - 3]) &&
	    isdigit((unsigned char)path[len - 2]) && isdigit((unsigned char)path[len - 1]))
		snprintf(index_path, cap, "%.*s.index", (int)(len - 4), path);
	else
		return 0;
	if ((ix = json_load_file(index_path, 0, &je)) == NULL) {
		if (access(index_path, F_OK) != 0 && len > 6 && strcmp(path + len - 6, ".index") != 0)
			return 0; /* a file named like a part, with no index: an ordinary bundle */
		snprintf(err, errlen, "%s: not a readable split index (%s)", index_path, je.text);
		return -EINVAL;
	}
	if ((slash = strrchr(index_path, '/')) != NULL)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - index_path + 1), index_path);
	parts = json_object_get(ix, "parts");
	if (!json_is_array(parts) || json_array_size(parts) == 0 || json_array_size(parts) > MAX_PARTS ||
	    (r = calloc(1, sizeof(*r))) == NULL || (r->v = calloc(json_array_size(parts), sizeof(r->v[0]))) == NULL ||
	    (r->md = calloc(json_array_size(parts), sizeof(r->md[0]))) == NULL ||
	    (r->front = calloc(json_array_size(parts), sizeof(r->front[0]))) == NULL ||
	    (r->want = calloc(json_array_size(parts), sizeof(r->want[0]))) == NULL) {
		snprintf(err, errlen, "%s: no parts listed", index_path);
		goto fail;
	}
	r->cur_i = -1;
	r->digest_on_read = sr != NULL;
	/* every part, before anything is read as a bundle: there, whole, and the one the index names */
	json_array_foreach(parts, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *h = json_string_value(json_object_get(e, "sha256"));
		uint64_t want = (uint64_t)json_integer_value(json_object_get(e, "bytes")), got;
		uint8_t d[32];
		char dh[65];
		if (name == NULL || h == NULL || strchr(name, '/') != NULL || strlen(h) != 64 || unhex(h, r->want[i], 32) != 0) {
			snprintf(err, errlen, "%s: part %zu unreadable in the index", index_path, i + 1);
			goto fail;
		}
		snprintf(full, sizeof(full), "%s%s", dir, name);
		if ((r->v[i].name = strdup(full)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		r->n = (int)i + 1;
		if (sr != NULL) {
			/* the sizes now, the digests as import reads (split_read_check): each part read once */
			struct stat st;
			rc = stat(full, &st) != 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
			got = rc == 0 ? (uint64_t)st.st_size : 0;
		} else {
			rc = file_sha256(full, &got, d);
		}
		if (rc != 0) {
			snprintf(err, errlen, "part %zu of %zu, %s, is missing (%s)", i + 1, json_array_size(parts), full,
			    strerror(-rc));
			rc = -ENOENT;
			goto fail;
		}
		rc = -EBADMSG;
		if (got != want) {
			snprintf(err, errlen, "part %zu of %zu, %s, is %s: %llu bytes where the index says %llu", i + 1,
			    json_array_size(parts), full, got < want ? "short" : "too long", (unsigned long long)got,
			    (unsigned long long)want);
			goto fail;
		}
		if (sr != NULL) {
			if ((r->md[i] = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(r->md[i], EVP_sha256(), NULL) != 1) {
				rc = -ENOMEM;
				goto fail;
			}
			r->v[i].bytes = got;
			if (got == 0)
				r_digest(r, (int)i, 0, "", 0); /* no byte will be read: its digest is the empty one's, now */
		} else if (al_hex(d, 32, dh), strcmp(dh, h) != 0) {
			memcpy(r->v[i].sha256, d, 32);
			named_bad(r, (int)i, json_array_size(parts), err, errlen);
			goto fail;
		}
		r->v[i].bytes = got;
		r->total += got;
	}
	json_decref(ix);
	if ((*out = fopencookie(r, "r", io)) == NULL) {
		r_close(r);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (sr != NULL)
		*sr = r;
	return 1;
fail:
	json_decref(ix);
	if (r != NULL)
		r_close(r);
	return rc;
}
