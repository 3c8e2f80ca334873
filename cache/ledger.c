#include "cache/ledger.h"
#include "cache/store.h"
#include "policy/units.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LEDGER (256u << 20)
#define HEAD_FILE AL_LEDGER_HEAD_FILE
#define DIGEST_KEY ",\"digest\":\""
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

static void sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char d[32];
	unsigned dl = 32;

	EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL);
	al_hex(d, 32, out);
}

/* The whole file (small: a line per export or import), NUL-terminated. */
static int slurp(int fd, char **out, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fstat(fd, &st) != 0)
		return -errno;
	if ((uint64_t)st.st_size > MAX_LEDGER)
		return -EFBIG;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (r <= 0) {
			free(buf);
			return r < 0 ? -errno : -EIO;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/*
 * Check one line against the chain so far; on success, seq/prev move on.
 * The line's digest covers its bytes up to ',"digest":"'.
 */
static int check_line(const char *line, size_t len, uint64_t want_seq, const char *prev, char digest[65],
    json_t **out, char *err, size_t errlen)
{
	const char *dk = NULL, *p, *s;
	char calc[65], carried[65];
	json_t *j;

	for (p = line; (p = memmem(p, len - (size_t)(p - line), DIGEST_KEY, strlen(DIGEST_KEY))) != NULL; p++)
		dk = p;
	if ((j = json_loadb(line, len, 0, NULL)) == NULL || !json_is_object(j) || dk == NULL) {
		json_decref(j);
		snprintf(err, errlen, "not a ledger record (unreadable JSON or no digest)");
		return -EBADMSG;
	}
	sha256_hex(line, (size_t)(dk - line), calc);
	if ((s = json_string_value(json_object_get(j, "digest"))) == NULL || strcmp(s, calc) != 0) {
		snprintf(err, errlen, "its content does not match its digest: the record was edited");
		goto bad;
	}
	if ((uint64_t)json_integer_value(json_object_get(j, "seq")) != want_seq) {
		snprintf(err, errlen, "seq %lld where %llu belongs: a record was removed or inserted",
		    (long long)json_integer_value(json_object_get(j, "seq")), (unsigned long long)want_seq);
		goto bad;
	}
	if ((s = json_string_value(json_object_get(j, "record_line"))) != NULL && al_ledger_check_line(s, carried) != 0) {
		snprintf(err, errlen, "the record it carries from the other side does not match its own digest");
		goto bad;
	}
	if ((s = json_string_value(json_object_get(j, "prev"))) == NULL || strcmp(s, prev) != 0) {
		snprintf(err, errlen, "its prev is not the digest of the record before it: that record was changed, "
		    "removed or replaced");
		goto bad;
	}
	memcpy(digest, calc, 65);
	*out = j;
	return 0;
bad:
	json_decref(j);
	return -EBADMSG;
}

/*
 * An anchor of the ledger's head: ledger.head beside it, and the cache's
 * LMDB (al_store_ledger_head_get), which the files' owner cannot cut along
 * with them.  have: 1 read (seq, want), 0 none, < 0 unreadable; at: the
 * digest the chain has at seq, when it reaches it (walk).
 */
enum { A_FILE, A_CACHE, N_ANCHORS };

struct anchor {
	const char *where;
	int have;
	uint64_t seq;
	char want[65], at[65];
};

/* Records whose seq an anchor names leave their digest in its at. */
static int walk(const char *buf, size_t len, al_ledger_fn fn, void *arg, uint64_t *n, uint64_t *bad, char head[65],
    struct anchor *a, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	char prev[65] = ZERO64, why[300];
	uint64_t seq = 1;
	int rc = 0;

	*n = 0;
	*bad = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		json_t *j = NULL;
		if (nl == NULL) {
			*bad = seq;
			snprintf(err, errlen, "record %llu: cut short (no end of line)", (unsigned long long)seq);
			return -EBADMSG;
		}
		if ((rc = check_line(p, (size_t)(nl - p), seq, prev, prev, &j, why, sizeof(why))) != 0) {
			*bad = seq;
			snprintf(err, errlen, "record %llu: %s", (unsigned long long)seq, why);
			return rc;
		}
		for (int i = 0; i < N_ANCHORS; i++)
			if (a[i].have > 0 && seq == a[i].seq)
				memcpy(a[i].at, prev, 65);
		rc = fn ? fn(j, arg) : 0;
		json_decref(j);
		if (rc != 0)
			return rc;
		(*n)++;
		seq++;
		p = nl + 1;
	}
	memcpy(head, prev, 65);
	return 0;
}

static void ledger_path(const char *dir, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", dir, AL_LEDGER_FILE);
}

/*
 * The head anchor (ledger.h): {"seq":N,"digest":"..."} in ledger.head.
 * 1 and *seq/digest when there is one, 0 when there is none (a ledger an
 * airlock before the anchor wrote, or none yet), -EBADMSG when unreadable.
 */
static int anchor_read(const char *dir, uint64_t *seq, char digest[65])
{
	char path[4096];
	json_t *j;
	const char *d;
	int rc = -EBADMSG;

	snprintf(path, sizeof(path), "%s/%s", dir, HEAD_FILE);
	if ((j = json_load_file(path, 0, NULL)) == NULL)
		return access(path, F_OK) == 0 ? -EBADMSG : 0;
	d = json_string_value(json_object_get(j, "digest"));
	if (json_integer_value(json_object_get(j, "seq")) > 0 && d != NULL && strlen(d) == 64) {
		*seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
		memcpy(digest, d, 65);
		rc = 1;
	}
	json_decref(j);
	return rc;
}

/*
 * Written after the record is durable, under the ledger's lock: a new file
 * renamed over the old, so a crash leaves the old anchor or the new one.
 * An anchor one record behind (a crash between the two) is what the reader
 * accepts; one ahead is what it reports as a cut.
 */
static int anchor_write(const char *dir, uint64_t seq, const char digest[65])
{
	char path[4096], tmp[4200], line[128];
	int fd, n, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, HEAD_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(line, sizeof(line), "{\"seq\":%llu,\"digest\":\"%s\"}\n", (unsigned long long)seq, digest);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return -errno;
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
		rc = -errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* Both anchors, read under the ledger's lock (s may be NULL: the file's only). */
static void anchors_read(const char *dir, struct al_store *s, struct anchor a[N_ANCHORS])
{
	memset(a, 0, N_ANCHORS * sizeof(*a));
	a[A_FILE].where = HEAD_FILE;
	a[A_FILE].have = anchor_read(dir, &a[A_FILE].seq, a[A_FILE].want);
	a[A_CACHE].where = "the cache's LMDB";
	a[A_CACHE].have = s != NULL ? al_store_ledger_head_get(s, &a[A_CACHE].seq, a[A_CACHE].want) : 0;
}

/* Hold the chain walked (n records, all good) to one anchor; -EBADMSG with err and *bad when records were cut. */
static int anchor_check(const char *dir, uint64_t n, const struct anchor *a, uint64_t *bad, char *err, size_t errlen)
{
	if (a->have == 0)
		return 0;
	if (a->have < 0) {
		if (strcmp(a->where, HEAD_FILE) == 0)
			snprintf(err, errlen, "%s/%s, the anchor of the ledger's head, is unreadable", dir, HEAD_FILE);
		else
			snprintf(err, errlen, "the anchor of the ledger's head in %s is unreadable", a->where);
		*bad = n + 1;
		return -EBADMSG;
	}
	if (n < a->seq) {
		*bad = n + 1;
		if (n + 1 == a->seq)
			snprintf(err, errlen, "record %llu: cut from the end of the ledger (%s names it as the head, digest "
			    "%.16s...)", (unsigned long long)a->seq, a->where, a->want);
		else
			snprintf(err, errlen, "records %llu to %llu: cut from the end of the ledger (%s names record %llu as "
			    "the head, digest %.16s...)", (unsigned long long)(n + 1), (unsigned long long)a->seq, a->where,
			    (unsigned long long)a->seq, a->want);
		return -EBADMSG;
	}
	if (strcmp(a->at, a->want) != 0) {
		*bad = a->seq;
		snprintf(err, errlen, "record %llu: not the record %s names as the head (digest %.16s..., the anchor says "
		    "%.16s...): the ledger was cut and written again", (unsigned long long)a->seq, a->where, a->at, a->want);
		return -EBADMSG;
	}
	return 0;
}

static int anchors_check(const char *dir, uint64_t n, const struct anchor a[N_ANCHORS], uint64_t *bad, char *err,
    size_t errlen)
{
	int rc = 0;

	for (int i = 0; rc == 0 && i < N_ANCHORS; i++)
		rc = anchor_check(dir, n, &a[i], bad, err, errlen);
	return rc;
}

int al_ledger_read(const char *dir, struct al_store *s, al_ledger_fn fn, void *arg, uint64_t *n, uint64_t *bad,
    char head[65], char *err, size_t errlen)
{
	char path[4096], *buf = NULL;
	struct anchor a[N_ANCHORS];
	size_t len;
	int fd, rc;

	ledger_path(dir, path, sizeof(path));
	memcpy(head, ZERO64, 65);
	*n = *bad = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) { /* the whole file gone: the anchors, if any, say how many records were */
			anchors_read(dir, s, a);
			return anchors_check(dir, 0, a, bad, err, errlen);
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	/* the anchors and the file under one lock: an append moves all three while holding it exclusively */
	flock(fd, LOCK_SH);
	anchors_read(dir, s, a);
	rc = slurp(fd, &buf, &len);
	if (rc != 0) {
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = walk(buf, len, fn, arg, n, bad, head, a, err, errlen);
	if (rc == 0)
		rc = anchors_check(dir, *n, a, bad, err, errlen);
	close(fd);
	free(buf);
	return rc;
}

int al_ledger_check_line(const char *line, char digest_out[65])
{
	size_t len = strlen(line), kl = strlen(DIGEST_KEY);
	const char *dk = NULL;
	char calc[65];

	for (const char *p = line; (p = memmem(p, len - (size_t)(p - line), DIGEST_KEY, kl)) != NULL; p++)
		dk = p;
	if (dk == NULL || len - (size_t)(dk - line) != kl + 64 + 2 || strcmp(dk + kl + 64, "\"}") != 0)
		return -EBADMSG;
	sha256_hex(line, (size_t)(dk - line), calc);
	if (memcmp(calc, dk + kl, 64) != 0)
		return -EBADMSG;
	memcpy(digest_out, calc, 65);
	return 0;
}

int al_ledger_append(const char *dir, struct al_store *s, json_t *rec, char digest_out[65], char **line_out, char *err,
    size_t errlen)
{
	char path[4096], host[256] = "", ts[32], head[65], why[400], dg[65], *buf = NULL, *body = NULL, *line = NULL;
	json_t *full = json_object();
	const char *k;
	json_t *v;
	uint64_t n, bad;
	size_t len, ll;
	time_t now = time(NULL);
	struct tm tm;
	int fd, rc;

	ledger_path(dir, path, sizeof(path));
	if ((fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		json_decref(full);
		return -errno;
	}
	/* read the head and append under one lock: two appenders still make one chain */
	flock(fd, LOCK_EX);
	if ((rc = slurp(fd, &buf, &len)) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	{
		struct anchor a[N_ANCHORS];
		anchors_read(dir, s, a);
		if ((rc = walk(buf, len, NULL, NULL, &n, &bad, head, a, why, sizeof(why))) == 0)
			rc = anchors_check(dir, n, a, &bad, why, sizeof(why));
		if (rc != 0) {
			snprintf(err, errlen, "%s is broken (%s); not appending to it: airlock ledger --verify", path, why);
			goto out;
		}
	}
	gethostname(host, sizeof(host) - 1);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(full, "seq", json_integer((json_int_t)(n + 1)));
	json_object_set_new(full, "time", json_string(ts));
	json_object_set_new(full, "host", json_string(host));
	json_object_set_new(full, "airlock", json_string(AIRLOCK_VERSION));
	json_object_foreach(rec, k, v)
		json_object_set(full, k, v);
	json_object_set_new(full, "prev", json_string(head));
	if ((body = json_dumps(full, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL || strlen(body) < 2) {
		rc = -ENOMEM;
		goto out;
	}
	ll = strlen(body) - 1;  /* without the closing brace */
	sha256_hex(body, ll, dg);
	if ((line = malloc(ll + strlen(DIGEST_KEY) + 64 + 4)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	ll = (size_t)sprintf(line, "%.*s%s%s\"}\n", (int)ll, body, DIGEST_KEY, dg);
	if (write(fd, line, ll) != (ssize_t)ll || fsync(fd) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* the record is durable; a failed anchor only leaves it one behind, which reads as intact */
	anchor_write(dir, n + 1, dg);
	if (s != NULL)
		al_store_ledger_head_put(s, n + 1, dg);
	if (digest_out != NULL)
		memcpy(digest_out, dg, 65);
	if (line_out != NULL) {
		line[ll - 1] = '\0';
		*line_out = line;
		line = NULL;
	}
out:
	close(fd);
	free(buf);
	free(body);
	free(line);
	json_decref(full);
	return rc;
}

int al_ledger_new_chain(const char *dir, struct al_store *s, char *moved, size_t cap, char *err, size_t errlen)
{
	char path[4096], head[4096], to[4200], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	int fd, rc = 0;

	ledger_path(dir, path, sizeof(path));
	snprintf(head, sizeof(head), "%s/%s", dir, HEAD_FILE);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	moved[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fd >= 0) {
		flock(fd, LOCK_EX); /* no append meanwhile */
		snprintf(to, sizeof(to), "%s.%s.old", path, ts);
		if (rename(path, to) != 0) {
			rc = -errno;
			snprintf(err, errlen, "moving %s aside: %s", path, strerror(errno));
		} else {
			snprintf(moved, cap, "%s", to);
		}
	}
	snprintf(to, sizeof(to), "%s.%s.old", head, ts);
	if (rc == 0 && rename(head, to) != 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "moving %s aside: %s", head, strerror(errno));
	}
	if (rc == 0 && s != NULL && (rc = al_store_ledger_head_put(s, 0, NULL)) != 0)
		snprintf(err, errlen, "clearing the cache's anchor of the ledger's head: %s", strerror(-rc));
	if (fd >= 0)
		close(fd);
	return rc;
}
