#include "cache/store.h"
#include "policy/freshness.h"
#include "policy/hdr.h"
#include "policy/registry_summary.h"
#include "policy/semver.h"
#include "policy/units.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct al_store {
	MDB_env *env;
	MDB_dbi meta, body, pending, info, regidx, rootidx;
	uint64_t max_size;
	atomic_uint_fast64_t evictions;
	atomic_uint_fast64_t synced_txnid; /* the last transaction al_store_sync() made durable */
	int lock_fd;               /* <dir>/lock, held shared while open (see "Who recovers" above al_store_open) */
	char path[512];
};

struct al_reader {
	struct al_store *s;
	MDB_txn *txn;
	MDB_cursor *cur;
	int active;
};

/* The one place LMDB's codes become errnos (knot-resolver's lmdb_error). */
static int lmdb_error(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return -ENOENT;
	case MDB_MAP_FULL: return -ENOSPC;
	case MDB_READERS_FULL: return -EAGAIN;
	/* "Structure needs cleaning", as file systems say of damaged metadata (was EILSEQ: "Invalid or
	 * incomplete multibyte or wide character" is what an operator read about a damaged cache) */
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID: return -EUCLEAN;
	default: return rc > 0 ? -rc : -EIO;
	}
}

/*
 * Durability.  The environment runs with MDB_NOMETASYNC: every commit
 * writes its data pages, fdatasyncs them, then writes the meta page that
 * points at them without a flush of its own; that meta reaches the disk
 * at the next commit's fdatasync or at al_store_sync().  LMDB reuses only
 * pages that neither of the two newest snapshots holds, so whatever a power
 * loss leaves, the newest meta on disk points at pages that were flushed
 * before it was written: a crash may undo the last commit, never corrupt
 * the tree.  (MDB_NOSYNC, used before, wrote metas with nothing ordering
 * them after their data and reused the pages of the last synced snapshot
 * two commits later: the power-loss simulator of issue 32 found 459 of
 * 1,054 crash images corrupt.)
 *
 * An fdatasync per 256 KiB chunk would cap fills at a few chunks per sync,
 * so the store writer groups commits: al_store_batch_begin() opens one
 * write transaction on the calling thread, and until al_store_batch_end()
 * every write call made on that thread runs as a nested transaction inside
 * it (a call that fails leaves the batch as it was).  One fdatasync then
 * covers every fill's chunks of the batch.  Other threads' write calls wait
 * for the batch's commit, as they waited for LMDB's writer lock before.
 */
static _Thread_local struct al_store *tl_store; /* the store whose batch this thread holds */
static _Thread_local MDB_txn *tl_batch;
static _Thread_local int tl_batch_rc;           /* the first failed commit of the batch */

static int in_batch(const struct al_store *s)
{
	return tl_batch != NULL && tl_store == s;
}

/* A write transaction: nested in this thread's batch if it holds one, else a durable one of its own. */
static int wtxn_begin(struct al_store *s, MDB_txn **txn)
{
	return mdb_txn_begin(s->env, in_batch(s) ? tl_batch : NULL, 0, txn);
}

static _Thread_local int tl_batch_dirty;        /* a nested transaction committed into the batch */
static int regidx_stamp(struct al_store *s, MDB_txn *txn);

/*
 * Commit a write transaction begun with wtxn_begin: a top-level one
 * stamps the registry index first (regidx_stamp: every commit of this
 * airlock says so).  An LMDB code, as mdb_txn_commit's.
 */
static int wtxn_commit(struct al_store *s, MDB_txn *txn)
{
	int rc;

	if (in_batch(s) && txn != tl_batch) {
		if ((rc = mdb_txn_commit(txn)) == 0)
			tl_batch_dirty = 1;
		return rc;
	}
	if ((rc = regidx_stamp(s, txn)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* Commit what the batch holds so far (durably) and go on in a new one; the batch's first failure is kept. */
static int batch_cut(struct al_store *s, int reopen)
{
	int rc = tl_batch_dirty ? regidx_stamp(s, tl_batch) : 0;

	/* an empty batch commits nothing (LMDB writes no transaction for it): it is not stamped either */
	if (rc != 0) {
		mdb_txn_abort(tl_batch);
		rc = lmdb_error(rc);
	} else {
		rc = lmdb_error(mdb_txn_commit(tl_batch));
	}
	tl_batch_dirty = 0;

	tl_batch = NULL;
	if (rc != 0 && tl_batch_rc == 0)
		tl_batch_rc = rc;
	if (reopen && (rc = mdb_txn_begin(s->env, NULL, 0, &tl_batch)) != 0) {
		tl_batch = NULL;
		if (tl_batch_rc == 0)
			tl_batch_rc = lmdb_error(rc);
	}
	return rc;
}

int al_store_batch_begin(struct al_store *s)
{
	int rc;

	if (tl_batch != NULL)
		return -EBUSY;
	tl_batch_rc = 0;
	tl_batch_dirty = 0;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &tl_batch)) != 0) {
		tl_batch = NULL;
		return lmdb_error(rc);
	}
	tl_store = s;
	return 0;
}

int al_store_batch_end(struct al_store *s)
{
	int rc;

	if (tl_store != s)
		return -EINVAL;
	if (tl_batch != NULL)
		batch_cut(s, 0);
	rc = tl_batch_rc;
	tl_store = NULL;
	tl_batch_rc = 0;
	return rc;
}

int al_store_batch_flush(struct al_store *s)
{
	if (!in_batch(s))
		return tl_store == s ? tl_batch_rc : -EINVAL;
	batch_cut(s, 1);
	return tl_batch_rc;
}

/*
 * Work that needs transactions of its own, committed one by one (making
 * room in a full map: what a transaction frees is reusable only two commits
 * later): the batch so far is committed first and a new one opened after.
 */
static void batch_pause(struct al_store *s, int *paused)
{
	*paused = in_batch(s);
	if (*paused)
		batch_cut(s, 0);
}

static void batch_resume(struct al_store *s, int paused)
{
	int rc;

	if (paused && tl_batch == NULL && (rc = mdb_txn_begin(s->env, NULL, 0, &tl_batch)) != 0) {
		tl_batch = NULL;
		if (tl_batch_rc == 0)
			tl_batch_rc = lmdb_error(rc);
	}
}

/*
 * Every request takes its key.  EVP_Digest(EVP_sha256()) fetches the method
 * each time (a lock, and a reference count every worker writes) and
 * allocates two contexts: three mallocs of a hit's seven.  The method is
 * fetched once; each thread keeps one context, freed when it ends.  One
 * malloc is left: OpenSSL 3.0 makes the provider's state anew at each init.
 */
static EVP_MD *key_md;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key_ctx_slot;
static _Thread_local EVP_MD_CTX *key_ctx;

static void key_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void key_init(void)
{
	key_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (pthread_key_create(&key_ctx_slot, key_ctx_free) != 0) {
		EVP_MD_free(key_md);
		key_md = NULL;
	}
}

void al_store_key(const char *url, size_t len, uint8_t key[AL_KEY_LEN])
{
	unsigned int n = AL_KEY_LEN;

	pthread_once(&key_once, key_init);
	if (key_ctx == NULL && key_md != NULL && (key_ctx = EVP_MD_CTX_new()) != NULL)
		pthread_setspecific(key_ctx_slot, key_ctx);
	if (key_ctx == NULL || !EVP_DigestInit_ex2(key_ctx, key_md, NULL) ||
	    !EVP_DigestUpdate(key_ctx, url, len) || !EVP_DigestFinal_ex(key_ctx, key, &n))
		EVP_Digest(url, len, key, &n, EVP_sha256(), NULL);
}

static void body_key(uint8_t k[16], uint64_t id, uint64_t off)
{
	for (int i = 0; i < 8; i++) {
		k[i] = (uint8_t)(id >> (56 - 8 * i));
		k[8 + i] = (uint8_t)(off >> (56 - 8 * i));
	}
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Delete object id's chunks inside txn, at most limit of them (0: all); *more
 * says whether some are left, *bytes (if given) counts what was freed.
 */
static int drop_some_chunks(MDB_txn *txn, MDB_dbi dbi, uint64_t id, uint64_t *bytes, size_t limit, int *more)
{
	MDB_cursor *c;
	uint8_t k[16];
	MDB_val key = {16, k}, val;
	size_t n = 0;
	int rc;

	body_key(k, id, 0);
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return lmdb_error(rc);
	*more = 0;
	for (;;) {
		/*
		 * Seek again after each delete.  Reading on with MDB_GET_CURRENT
		 * after deletes that merge pages ended the loop early under load:
		 * an abort left 340, another 836 chunks behind with its pending
		 * entry gone (test_core_store_writer).
		 */
		body_key(k, id, 0);
		key.mv_size = 16;
		key.mv_data = k;
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		if (rc != 0 || key.mv_size != 16 || be64(key.mv_data) != id)
			break;
		if (limit != 0 && n == limit) {
			*more = 1;
			break;
		}
		if (bytes)
			*bytes += val.mv_size;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		n++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
}

static int drop_chunks(MDB_txn *txn, MDB_dbi dbi, uint64_t id, uint64_t *bytes)
{
	int more;

	return drop_some_chunks(txn, dbi, id, bytes, 0, &more);
}

static uint64_t info_get(MDB_txn *txn, MDB_dbi dbi, const char *name)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	uint64_t x = 0;

	if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof(x))
		memcpy(&x, v.mv_data, sizeof(x));
	return x;
}

static int info_put(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t x)
{
	MDB_val k = {strlen(name), (void *)name}, v = {sizeof(x), &x};

	return lmdb_error(mdb_put(txn, dbi, &k, &v, 0));
}

/*
 * The offline registry's index (regidx): for each package document in
 * meta (a 200 under <base>/package/<name>/<version>/), its summary under
 * "<base>\0<name>\0<version>" (policy/registry_summary.h), written and
 * dropped in the transaction that admits or drops the document.  A value
 * is the document's meta key (32 bytes) then the summary: when the same
 * document is stored under two URLs (with and without the trailing slash)
 * the last one admitted owns the entry, and dropping the other leaves it.
 * Beside them, from format 5, a name with a deprecated version has a
 * per-name record under "<base>\0<name>" (no mkey: the record is the
 * store's, kept in the same transactions, regidx_name_update), so that a
 * list reads one record per name, not every version's summary.
 * REGIDX_FORMAT_KEY holds the summary format the entries were built with
 * (u32) and, from format 5, the id of the last transaction this airlock
 * committed (u64, regidx_stamp).
 */
#define REGIDX_FORMAT_KEY "\0format"
#define ROOTIDX_FORMAT_KEY "\0format" /* the root index's (rootidx, below) */
#define REGIDX_GEN_KEY "\0gen"
#define REGIDX_MAX_DOC (8u << 20)

/*
 * Who wrote last.  An airlock that keeps no index (before issue 26), or
 * one of an older format (no per-name records), can write into a cache
 * whose index it does not keep up to date; neither can be changed now.
 * So this airlock vouches for the index in every transaction it commits:
 * the format value carries the transaction's own id.  At an exclusive
 * open, an id other than the environment's last transaction means that
 * something else committed since (an older airlock, lmdb tools): the
 * index is rebuilt (regidx_rebuild), and the root index too (rootidx:
 * an airlock from before it fills root entries it does not index; one
 * decision, vouched_by_last, for both).  While this airlock runs beside
 * such a writer, the next commit of its own finds the id short of its
 * own by more than one and takes both formats away: queries stop
 * trusting the per-name records and a root scan reads meta whole at
 * once, and the next exclusive open rebuilds both.
 * An LMDB code; no format (a rebuild under way) or another one is left
 * as it is.
 */
static int regidx_stamp(struct al_store *s, MDB_txn *txn)
{
	MDB_val k = {sizeof(REGIDX_FORMAT_KEY) - 1, REGIDX_FORMAT_KEY}, v;
	uint32_t fmt = AL_REGISTRY_SUMMARY_FORMAT;
	uint64_t id = (uint64_t)mdb_txn_id(txn), last;
	uint8_t val[12];
	int rc;

	if ((rc = mdb_get(txn, s->regidx, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if (v.mv_size != sizeof(val) || memcmp(v.mv_data, &fmt, sizeof(fmt)) != 0)
		return 0;
	memcpy(&last, (uint8_t *)v.mv_data + sizeof(fmt), sizeof(last));
	if (last + 1 != id) {
		/* both indexes: one decision (the root index has no stamp of its own) */
		MDB_val rk = {sizeof(ROOTIDX_FORMAT_KEY) - 1, ROOTIDX_FORMAT_KEY};
		if ((rc = mdb_del(txn, s->rootidx, &rk, NULL)) != 0 && rc != MDB_NOTFOUND)
			return rc;
		return mdb_del(txn, s->regidx, &k, NULL);
	}
	memcpy(val, &fmt, sizeof(fmt));
	memcpy(val + sizeof(fmt), &id, sizeof(id));
	v.mv_size = sizeof(val);
	v.mv_data = val;
	return mdb_put(txn, s->regidx, &k, &v, 0);
}

/* obj_id's body (len bytes) read inside txn into a new buffer; 0 or -errno. */
static int body_in_txn(struct al_store *s, MDB_txn *txn, uint64_t id, uint64_t len, char **out)
{
	MDB_cursor *c;
	uint8_t kb[16];
	MDB_val k = {16, kb}, v;
	uint64_t off = 0;
	char *buf;
	int rc;

	if (len > REGIDX_MAX_DOC)
		return -EFBIG;
	if ((buf = malloc(len + 1)) == NULL)
		return -ENOMEM;
	if ((rc = mdb_cursor_open(txn, s->body, &c)) != 0) {
		free(buf);
		return lmdb_error(rc);
	}
	body_key(kb, id, 0);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && off < len;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		size_t n = v.mv_size;
		if (k.mv_size != 16 || be64(k.mv_data) != id || be64((uint8_t *)k.mv_data + 8) != off)
			break;
		if (n > len - off)
			n = (size_t)(len - off);
		memcpy(buf + off, v.mv_data, n);
		off += n;
	}
	mdb_cursor_close(c);
	if (off != len) {
		free(buf);
		return -ENOENT;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/*
 * Every change to the index changes "\0gen" in the same transaction, so a
 * reader can tell an answer computed from an older snapshot (a missing
 * counter starts at a random value: a rebuilt index never repeats one).
 */
static int regidx_bump(struct al_store *s, MDB_txn *txn)
{
	MDB_val k = {sizeof(REGIDX_GEN_KEY) - 1, REGIDX_GEN_KEY}, v;
	uint64_t gen;

	if (mdb_get(txn, s->regidx, &k, &v) == 0 && v.mv_size == sizeof(gen))
		memcpy(&gen, v.mv_data, sizeof(gen));
	else if (RAND_bytes((unsigned char *)&gen, sizeof(gen)) != 1)
		return -EIO;
	gen++;
	v.mv_size = sizeof(gen);
	v.mv_data = &gen;
	return lmdb_error(mdb_put(txn, s->regidx, &k, &v, 0));
}

int al_store_index_gen(struct al_reader *r, uint64_t *gen)
{
	MDB_val k = {sizeof(REGIDX_GEN_KEY) - 1, REGIDX_GEN_KEY}, v;
	int rc;

	if ((rc = al_reader_begin(r)) != 0)
		return rc;
	*gen = 0;
	if ((rc = mdb_get(r->txn, r->s->regidx, &k, &v)) == 0 && v.mv_size == sizeof(*gen))
		memcpy(gen, v.mv_data, sizeof(*gen));
	return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
}

/*
 * The per-name record (policy/registry_summary.h) under "<base>\0<name>",
 * the first nkl bytes of an index key: rewritten from the name's versions
 * (the newest deprecated one by al_registry_index_version_cmp, read from
 * each version's parts head), or deleted when none is deprecated.  Called
 * only when the version the record names goes or stops being deprecated,
 * so an admission costs one record read, not a read of every version.
 */
static int regidx_name_recompute(struct al_store *s, MDB_txn *txn, const char *ik, size_t nkl)
{
	MDB_cursor *c;
	MDB_val k = {nkl + 1, (void *)ik}, v, nk = {nkl, (void *)ik};
	struct al_semver best_v, cv;
	char *best = NULL, *rec = NULL;
	size_t best_vl = 0, best_dl = 0, rl = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->regidx, &c)) != 0)
		return lmdb_error(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct al_registry_summary_parts p;
		const char *ver = (const char *)k.mv_data + nkl + 1;
		size_t vl;
		if (k.mv_size <= nkl + 1 || memcmp(k.mv_data, ik, nkl + 1) != 0)
			break;
		vl = k.mv_size - nkl - 1;
		if (v.mv_size < AL_KEY_LEN || memchr(ver, '\0', vl) != NULL ||
		    al_registry_summary_split((const char *)v.mv_data + AL_KEY_LEN, v.mv_size - AL_KEY_LEN, &p) != 0 ||
		    p.dlen == 0 || al_registry_index_version(ver, vl, &cv) != 0)
			continue;
		if (best != NULL && al_registry_index_version_cmp(&cv, ver, vl, &best_v, best, best_vl) <= 0)
			continue;
		/* a copy: the map's pages may move once this transaction writes */
		free(best);
		if ((best = malloc(vl + p.dlen)) == NULL) {
			mdb_cursor_close(c);
			return -ENOMEM;
		}
		memcpy(best, ver, vl);
		memcpy(best + vl, p.dep, p.dlen);
		best_vl = vl;
		best_dl = p.dlen;
		best_v = cv;
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(best);
		return lmdb_error(rc);
	}
	if (best == NULL) {
		rc = mdb_del(txn, s->regidx, &nk, NULL);
		return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
	}
	rec = al_registry_name_record(best, best_vl, best + best_vl, best_dl, &rl);
	free(best);
	if (rec == NULL)
		return -ENOMEM;
	v.mv_size = rl;
	v.mv_data = rec;
	rc = mdb_put(txn, s->regidx, &nk, &v, 0);
	free(rec);
	return lmdb_error(rc);
}

/*
 * The version at index key ik (kl bytes) was just put with the parts p
 * (NULL: it was dropped): keep its name's record right.  A deprecated
 * version at least as new as the record's takes its place; the record's
 * own version dropped or no longer deprecated makes it recomputed.
 */
static int regidx_name_update(struct al_store *s, MDB_txn *txn, const char *ik, size_t kl,
    const struct al_registry_summary_parts *p)
{
	const char *z = memchr(ik, '\0', kl), *ver;
	size_t nkl, vl;
	MDB_val nk, v;
	struct al_registry_name_parts np;
	struct al_semver a, b;
	int has, rc;

	if (z == NULL || z == ik || (z = memchr(z + 1, '\0', kl - (size_t)(z + 1 - ik))) == NULL)
		return 0;
	nkl = (size_t)(z - ik);
	ver = z + 1;
	vl = kl - nkl - 1;
	nk.mv_size = nkl;
	nk.mv_data = (void *)ik;
	if ((rc = mdb_get(txn, s->regidx, &nk, &v)) != 0 && rc != MDB_NOTFOUND)
		return lmdb_error(rc);
	has = rc == 0 && al_registry_name_record_split(v.mv_data, v.mv_size, &np) == 0;
	if (p != NULL && p->dlen > 0 && al_registry_index_version(ver, vl, &a) == 0) {
		char *rec;
		size_t rl;
		if (has && al_registry_index_version(np.version, np.vlen, &b) == 0 &&
		    al_registry_index_version_cmp(&a, ver, vl, &b, np.version, np.vlen) < 0)
			return 0; /* a newer version's notice stays */
		if ((rec = al_registry_name_record(ver, vl, p->dep, p->dlen, &rl)) == NULL)
			return -ENOMEM;
		v.mv_size = rl;
		v.mv_data = rec;
		rc = mdb_put(txn, s->regidx, &nk, &v, 0);
		free(rec);
		return lmdb_error(rc);
	}
	if (rc == MDB_NOTFOUND || (has && (np.vlen != vl || memcmp(np.version, ver, vl) != 0)))
		return 0; /* the record names another version (or there is none): it stays right */
	return regidx_name_recompute(s, txn, ik, nkl);
}

int al_store_index_format(struct al_reader *r, uint32_t *format)
{
	MDB_val k = {sizeof(REGIDX_FORMAT_KEY) - 1, REGIDX_FORMAT_KEY}, v;
	int rc;

	if ((rc = al_reader_begin(r)) != 0)
		return rc;
	*format = 0;
	if ((rc = mdb_get(r->txn, r->s->regidx, &k, &v)) == 0 && v.mv_size >= sizeof(*format))
		memcpy(format, v.mv_data, sizeof(*format));
	return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
}

/* Drop the index entry of the document at url when mkey owns it. */
static int regidx_drop_url(struct al_store *s, MDB_txn *txn, const uint8_t *mkey, const char *url, size_t len)
{
	char ik[AL_REGISTRY_INDEX_KEY_MAX + 1];
	int kl = al_registry_index_key(url, len, ik);
	MDB_val k = {(size_t)kl, ik}, v;
	int rc;

	if (kl < 0)
		return 0;
	if ((rc = mdb_get(txn, s->regidx, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
	if (v.mv_size < AL_KEY_LEN || memcmp(v.mv_data, mkey, AL_KEY_LEN) != 0)
		return 0;
	if ((rc = mdb_del(txn, s->regidx, &k, NULL)) != 0 || (rc = regidx_name_update(s, txn, ik, (size_t)kl, NULL)) != 0)
		return rc > 0 ? lmdb_error(rc) : rc;
	return regidx_bump(s, txn);
}

/*
 * rec was just put under mkey: index it if it is a package document, or
 * drop the entry a document at the same URL had.  A body that is not a
 * package document (an error page, gzip) is simply not indexed.
 */
static int regidx_put(struct al_store *s, MDB_txn *txn, const uint8_t *mkey, const struct al_record *rec)
{
	char ik[AL_REGISTRY_INDEX_KEY_MAX + 1], *body = NULL, *sum = NULL;
	int kl = al_registry_index_key(rec->url, rec->url_len, ik), rc;
	MDB_val k = {(size_t)kl, ik}, v;
	size_t sl = 0;

	if (kl < 0)
		return 0;
	if (rec->status == 200 && body_in_txn(s, txn, rec->obj_id, rec->body_len, &body) == 0)
		sum = al_registry_summary(body, (size_t)rec->body_len, &sl);
	free(body);
	if (sum == NULL)
		return regidx_drop_url(s, txn, mkey, rec->url, rec->url_len);
	v.mv_size = AL_KEY_LEN + sl;
	if ((rc = mdb_put(txn, s->regidx, &k, &v, MDB_RESERVE)) == 0) {
		struct al_registry_summary_parts p;
		memcpy(v.mv_data, mkey, AL_KEY_LEN);
		memcpy((char *)v.mv_data + AL_KEY_LEN, sum, sl);
		rc = al_registry_summary_split(sum, sl, &p) == 0 ? regidx_name_update(s, txn, ik, (size_t)kl, &p) : -EINVAL;
	} else {
		rc = lmdb_error(rc);
	}
	free(sum);
	return rc != 0 ? rc : regidx_bump(s, txn);
}

/*
 * At open, when the index is missing or from another summary format:
 * empty it and index every package document in meta, a batch of them per
 * transaction (so that a large cache does not need one huge one), the
 * format last.  A crash midway leaves no format: the next start begins
 * again.
 */
#define REGIDX_BATCH 256

/*
 * Whether the registry index's format value carries this format and the id
 * of txn's snapshot (the last transaction committed): no other writer
 * since this airlock's last commit (regidx_stamp).  Read once at an
 * exclusive open; a "no" rebuilds both indexes.
 */
static int vouched_by_last(struct al_store *s, MDB_txn *txn)
{
	MDB_val fk = {sizeof(REGIDX_FORMAT_KEY) - 1, REGIDX_FORMAT_KEY}, v;
	uint32_t fmt = AL_REGISTRY_SUMMARY_FORMAT;
	uint64_t id = (uint64_t)mdb_txn_id(txn);

	return mdb_get(txn, s->regidx, &fk, &v) == 0 && v.mv_size == sizeof(fmt) + sizeof(id) &&
	    memcmp(v.mv_data, &fmt, sizeof(fmt)) == 0 && memcmp((uint8_t *)v.mv_data + sizeof(fmt), &id, sizeof(id)) == 0;
}

/* vouched_by_last in a snapshot of its own, at an exclusive open; an LMDB code. */
static int vouched_at_open(struct al_store *s, int *vouched)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	*vouched = vouched_by_last(s, txn);
	mdb_txn_abort(txn);
	return 0;
}

/* vouched: vouched_by_last's answer at this open (nothing to do then). */
static int regidx_rebuild(struct al_store *s, int vouched, size_t *indexed)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v, fk = {sizeof(REGIDX_FORMAT_KEY) - 1, REGIDX_FORMAT_KEY};
	uint8_t (*keys)[AL_KEY_LEN] = NULL;
	size_t n = 0, cap = 0;
	uint32_t fmt = AL_REGISTRY_SUMMARY_FORMAT;
	int rc;

	if (vouched)
		return 0;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	/* the keys of candidate documents, from one snapshot */
	if ((rc = mdb_cursor_open(txn, s->meta, &c)) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct al_record rec;
			char ik[AL_REGISTRY_INDEX_KEY_MAX + 1];
			if (k.mv_size != AL_KEY_LEN || al_record_decode(v.mv_data, v.mv_size, &rec) != 0 ||
			    rec.status != 200 || al_registry_index_key(rec.url, rec.url_len, ik) < 0)
				continue;
			if (n == cap) {
				void *more = realloc(keys, (cap = cap ? cap * 2 : 256) * AL_KEY_LEN);
				if (more == NULL) {
					rc = ENOMEM;
					break;
				}
				keys = more;
			}
			memcpy(keys[n++], k.mv_data, AL_KEY_LEN);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND) {
		free(keys);
		return rc == ENOMEM ? -ENOMEM : lmdb_error(rc);
	}
	rc = 0;
	for (size_t i = 0; rc == 0 && i <= n; i += REGIDX_BATCH) {
		if ((rc = lmdb_error(mdb_txn_begin(s->env, NULL, 0, &txn))) != 0)
			break;
		if (i == 0)
			rc = lmdb_error(mdb_drop(txn, s->regidx, 0));
		for (size_t j = i; rc == 0 && j < n && j < i + REGIDX_BATCH; j++) {
			MDB_val mk = {AL_KEY_LEN, keys[j]};
			struct al_record rec;
			if (mdb_get(txn, s->meta, &mk, &v) != 0 || al_record_decode(v.mv_data, v.mv_size, &rec) != 0)
				continue;
			rc = regidx_put(s, txn, keys[j], &rec);
		}
		if (rc == 0 && i + REGIDX_BATCH > n) {
			uint8_t val[sizeof(fmt) + sizeof(uint64_t)];
			uint64_t id = (uint64_t)mdb_txn_id(txn);
			memcpy(val, &fmt, sizeof(fmt));
			memcpy(val + sizeof(fmt), &id, sizeof(id));
			v.mv_size = sizeof(val);
			v.mv_data = val;
			rc = lmdb_error(mdb_put(txn, s->regidx, &fk, &v, 0));
		}
		if (rc != 0)
			mdb_txn_abort(txn);
		else
			rc = lmdb_error(mdb_txn_commit(txn));
	}
	free(keys);
	if (indexed)
		*indexed = n;
	return rc;
}

int al_store_index_scan(struct al_reader *r, const char *base, size_t blen, al_index_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k = {blen + 1, NULL}, v;
	char *seek;
	int rc, out = 0;

	if ((rc = al_reader_begin(r)) != 0)
		return rc;
	if ((seek = malloc(blen + 1)) == NULL)
		return -ENOMEM;
	memcpy(seek, base, blen);
	seek[blen] = '\0';
	k.mv_data = seek;
	if ((rc = mdb_cursor_open(r->txn, r->s->regidx, &c)) != 0) {
		free(seek);
		return lmdb_error(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *key = k.mv_data, *name, *ver, *z;
		size_t nl;
		if (k.mv_size <= blen + 1 || memcmp(key, seek, blen + 1) != 0)
			break;
		name = key + blen + 1;
		if ((z = memchr(name, '\0', k.mv_size - blen - 1)) == NULL) {
			/* the name's record: it sorts just before the name's versions */
			if ((out = fn(name, k.mv_size - blen - 1, NULL, 0, v.mv_data, v.mv_size, arg)) != 0)
				break;
			continue;
		}
		if (v.mv_size < AL_KEY_LEN)
			continue;
		nl = (size_t)(z - name);
		ver = z + 1;
		if ((out = fn(name, nl, ver, (size_t)(key + k.mv_size - ver), (const char *)v.mv_data + AL_KEY_LEN,
		    v.mv_size - AL_KEY_LEN, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	free(seek);
	if (out != 0)
		return out;
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : lmdb_error(rc);
}

/*
 * The root index (rootidx): the URL of every entry stored at the root of
 * its host, "<scheme>://<authority>/<leaf>" with a leaf that has no '/',
 * '?' or '#' (an S3 bucket's objects: proxy/front/offline_listing.c), as a
 * key whose value is the entry's meta key, written and dropped in the
 * transaction that admits or drops the entry.  A URL longer than LMDB's
 * key limit is keyed by its first ROOTIDX_HEAD bytes and its digest (still
 * in its base's range, still unique).  meta is keyed by the URL's digest, so it has
 * no order to range over; this small database has: a listing reads the
 * entries under its bucket's prefix only, however large the cache.
 * ROOTIDX_FORMAT_KEY says the index covers meta (written last by
 * rootidx_rebuild); without it a scan reads meta whole.
 */
#define ROOTIDX_FORMAT 2u
#define ROOTIDX_KEY_MAX 511 /* mdb_env_get_maxkeysize() of the default build */
#define ROOTIDX_HEAD (ROOTIDX_KEY_MAX - AL_KEY_LEN)

/* The length of "<scheme>://<authority>/" when url is a root entry, else 0. */
static size_t root_prefix_len(const char *url, size_t len)
{
	const char *a = len > 3 ? memmem(url, len, "://", 3) : NULL, *slash, *leaf;

	if (a == NULL || (slash = memchr(a + 3, '/', len - (size_t)(a + 3 - url))) == NULL)
		return 0;
	leaf = slash + 1;
	if (leaf == url + len || memchr(a + 3, '?', (size_t)(slash - a - 3)) != NULL)
		return 0;
	for (const char *p = leaf; p < url + len; p++)
		if (*p == '/' || *p == '?' || *p == '#')
			return 0;
	return (size_t)(leaf - url);
}

/* url's index key into buf (ROOTIDX_KEY_MAX bytes) and its meta key; the key's length. */
static size_t rootidx_key(const char *url, size_t len, char *buf, uint8_t mkey[AL_KEY_LEN])
{
	al_store_key(url, len, mkey);
	if (len <= ROOTIDX_KEY_MAX) {
		memcpy(buf, url, len);
		return len;
	}
	memcpy(buf, url, ROOTIDX_HEAD);
	memcpy(buf + ROOTIDX_HEAD, mkey, AL_KEY_LEN);
	return ROOTIDX_KEY_MAX;
}

static int rootidx_put(struct al_store *s, MDB_txn *txn, const char *url, size_t len)
{
	char kb[ROOTIDX_KEY_MAX];
	uint8_t mkey[AL_KEY_LEN];
	MDB_val k, v = {AL_KEY_LEN, mkey};

	if (root_prefix_len(url, len) == 0)
		return 0;
	k.mv_size = rootidx_key(url, len, kb, mkey);
	k.mv_data = kb;
	return lmdb_error(mdb_put(txn, s->rootidx, &k, &v, 0));
}

static int rootidx_del(struct al_store *s, MDB_txn *txn, const char *url, size_t len)
{
	char kb[ROOTIDX_KEY_MAX];
	uint8_t mkey[AL_KEY_LEN];
	MDB_val k;
	int rc;

	if (root_prefix_len(url, len) == 0)
		return 0;
	k.mv_size = rootidx_key(url, len, kb, mkey);
	k.mv_data = kb;
	rc = mdb_del(txn, s->rootidx, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
}

/* Both indexes' entries for the entry at mkey (url), before it goes. */
static int index_drop_url(struct al_store *s, MDB_txn *txn, const uint8_t *mkey, const char *url, size_t len)
{
	int rc = regidx_drop_url(s, txn, mkey, url, len);

	return rc != 0 ? rc : rootidx_del(s, txn, url, len);
}

static int index_drop(struct al_store *s, MDB_txn *txn, const uint8_t *mkey)
{
	MDB_val k = {AL_KEY_LEN, (void *)mkey}, v;
	struct al_record rec;

	if (mdb_get(txn, s->meta, &k, &v) != 0 || al_record_decode(v.mv_data, v.mv_size, &rec) != 0)
		return 0;
	return index_drop_url(s, txn, mkey, rec.url, rec.url_len);
}

/*
 * At open, when the root index lacks its format or another writer has
 * committed since this airlock's last commit (vouched: vouched_by_last's
 * answer at this open): every root entry of meta, a batch per
 * transaction, the format last (a crash midway: no format, a scan reads
 * meta whole, the next start begins again).
 */
static int rootidx_rebuild(struct al_store *s, int vouched)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v, fk = {sizeof(ROOTIDX_FORMAT_KEY) - 1, ROOTIDX_FORMAT_KEY};
	char **urls = NULL;
	size_t n = 0, cap = 0;
	uint32_t fmt = ROOTIDX_FORMAT;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	if (vouched && mdb_get(txn, s->rootidx, &fk, &v) == 0 && v.mv_size == sizeof(fmt) &&
	    memcmp(v.mv_data, &fmt, sizeof(fmt)) == 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	if ((rc = mdb_cursor_open(txn, s->meta, &c)) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct al_record rec;
			if (k.mv_size != AL_KEY_LEN || al_record_decode(v.mv_data, v.mv_size, &rec) != 0 ||
			    root_prefix_len(rec.url, rec.url_len) == 0)
				continue;
			if (n == cap) {
				void *more = realloc(urls, (cap = cap ? cap * 2 : 64) * sizeof(*urls));
				if (more == NULL) {
					rc = ENOMEM;
					break;
				}
				urls = more;
			}
			if ((urls[n] = strndup(rec.url, rec.url_len)) == NULL) {
				rc = ENOMEM;
				break;
			}
			n++;
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else
		rc = rc == ENOMEM ? -ENOMEM : lmdb_error(rc);
	for (size_t i = 0; rc == 0 && i <= n; i += REGIDX_BATCH) {
		if ((rc = lmdb_error(mdb_txn_begin(s->env, NULL, 0, &txn))) != 0)
			break;
		if (i == 0)
			rc = lmdb_error(mdb_drop(txn, s->rootidx, 0));
		for (size_t j = i; rc == 0 && j < n && j < i + REGIDX_BATCH; j++)
			rc = rootidx_put(s, txn, urls[j], strlen(urls[j]));
		if (rc == 0 && i + REGIDX_BATCH > n) {
			v.mv_size = sizeof(fmt);
			v.mv_data = &fmt;
			rc = lmdb_error(mdb_put(txn, s->rootidx, &fk, &v, 0));
		}
		if (rc != 0)
			mdb_txn_abort(txn);
		else /* stamped as every commit of this airlock, or the registry index would read as another writer's */
			rc = lmdb_error(wtxn_commit(s, txn));
	}
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
	return rc;
}

int al_store_root_scan(struct al_store *s, const char *base, size_t blen, al_entry_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k = {blen, (void *)base}, v, fk = {sizeof(ROOTIDX_FORMAT_KEY) - 1, ROOTIDX_FORMAT_KEY};
	uint32_t fmt = ROOTIDX_FORMAT;
	int rc, out = 0;

	if (blen == 0 || base[blen - 1] != '/')
		return -EINVAL;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	if (mdb_get(txn, s->rootidx, &fk, &v) != 0 || v.mv_size != sizeof(fmt) || memcmp(v.mv_data, &fmt, sizeof(fmt)) != 0) {
		/* not built yet (another process opened the cache first): the whole of meta */
		mdb_txn_abort(txn);
		return al_store_foreach(s, fn, arg);
	}
	if ((rc = mdb_cursor_open(txn, s->rootidx, &c)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		MDB_val mk = {AL_KEY_LEN, v.mv_data}, mv;
		struct al_record rec;
		if (k.mv_size <= blen || memcmp(k.mv_data, base, blen) != 0)
			break;
		/* the entry's own URL decides (a long one's key is cut) */
		if (v.mv_size != AL_KEY_LEN || mdb_get(txn, s->meta, &mk, &mv) != 0 ||
		    al_record_decode(mv.mv_data, mv.mv_size, &rec) != 0 || rec.url_len <= blen ||
		    memcmp(rec.url, base, blen) != 0 || root_prefix_len(rec.url, rec.url_len) != blen)
			continue;
		if ((out = fn(mk.mv_data, &rec, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (out != 0)
		return out;
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : lmdb_error(rc);
}

/*
 * Crash recovery: chunks of fills that never committed.  Each goes the way
 * of an abort, a few chunks per transaction: one transaction for all of
 * them could not commit in a map a crashed fill had filled, and the store
 * would not open.
 */
static int drop_pending(struct al_store *s)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_cursor_open(txn, s->pending, &c)) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (k.mv_size != 8)
				continue;
			if (n == cap) {
				uint64_t *more = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*ids));
				if (more == NULL) {
					rc = ENOMEM;
					break;
				}
				ids = more;
			}
			memcpy(&ids[n++], k.mv_data, 8);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	rc = rc == MDB_NOTFOUND ? 0 : rc == ENOMEM ? -ENOMEM : lmdb_error(rc);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = al_fill_abort(s, ids[i]);
	free(ids);
	return rc;
}

/* What an operator can do about a cache that cannot be opened. */
#define DAMAGED_HINT "airlock did not change it. Stop airlock, move the directory aside " \
	"(mv %s %s.damaged; keep it for a post-mortem) and start again: airlock starts with an empty cache " \
	"and refills it from the upstreams or from a bundle (airlock import)"

static void damaged(char *err, size_t errlen, const char *dir, const char *what)
{
	size_t n = (size_t)snprintf(err, errlen, "cache %s/data.mdb is damaged: %s. ", dir, what);

	if (n < errlen)
		snprintf(err + n, errlen - n, DAMAGED_HINT, dir, dir);
}

/*
 * LMDB reads a page past the end of the file with a SIGBUS and stops at an
 * inconsistent page with an assertion: either kills every process that opens
 * the cache, a crash loop under systemd.  The first is checked before any
 * tree is read: the newest snapshot's last page must be inside the file.
 */
static int check_size(MDB_env *env, const char *dir, char *err, size_t errlen)
{
	MDB_envinfo ei;
	MDB_stat st;
	struct stat fst;
	char path[600], what[200];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (mdb_env_info(env, &ei) != 0 || mdb_env_stat(env, &st) != 0 || stat(path, &fst) != 0)
		return 0;
	if ((uint64_t)(ei.me_last_pgno + 1) * st.ms_psize <= (uint64_t)fst.st_size)
		return 0;
	snprintf(what, sizeof(what), "its newest snapshot ends at byte %llu but the file has %llu bytes (cut short)",
	    (unsigned long long)(ei.me_last_pgno + 1) * st.ms_psize, (unsigned long long)fst.st_size);
	damaged(err, errlen, dir, what);
	return -EUCLEAN;
}

/* LMDB's assertion handler: it aborts after this; say what and what to do first. */
static void on_lmdb_assert(MDB_env *env, const char *msg)
{
	const char *dir = NULL;

	mdb_env_get_path(env, &dir);
	fprintf(stderr, "airlock: cache %s/data.mdb is damaged: LMDB found an inconsistent page (%s). "
	    DAMAGED_HINT "\n", dir ? dir : "?", msg, dir ? dir : "CACHE", dir ? dir : "CACHE");
}

/*
 * Who recovers.  The pending database names the fills under way; after a
 * crash they are garbage, and the opener drops them (drop_pending).  But
 * airlock serve, an import and the CLI tools (ls, verify, doctor...) open
 * one cache together, and a live process's pending fills are not garbage:
 * an `airlock ls` beside a server must not cut the server's downloads (nor
 * an import's bodies) from under it.  So every process holds <dir>/lock
 * with flock() while the store is open, shared; the opener that can take
 * it exclusively is the only one, and only then are pending fills dropped
 * (and the registry index rebuilt); then it goes back to shared.  flock
 * locks die with the process, so a crashed holder never blocks recovery.
 * Returns 1 when this opener is alone, 0 when others hold the cache, or
 * -errno (lock_fd closed).
 */
static int lock_cache(struct al_store *s, const char *dir, char *err, size_t errlen)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/lock", dir);
	if ((s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		int e = errno;
		snprintf(err, errlen, "cache %s: %s", path, strerror(e));
		return -e;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 1;
	if (errno == EWOULDBLOCK && flock(s->lock_fd, LOCK_SH) == 0)
		return 0;
	{
		int e = errno;
		snprintf(err, errlen, "cache %s: flock: %s", path, strerror(e));
		close(s->lock_fd);
		s->lock_fd = -1;
		return -e;
	}
}

/*
 * The named databases, opened in a read-only transaction when they exist,
 * so that opening a cache does not wait for another process's write
 * transaction (an import's batch); made in a write transaction otherwise.
 */
static int open_dbis(struct al_store *s)
{
	static const char *const names[] = {"meta", "body", "pending", "info", "regidx", "rootidx"};
	MDB_dbi *const dbis[] = {&s->meta, &s->body, &s->pending, &s->info, &s->regidx, &s->rootidx};
	MDB_txn *txn;
	int rc = 0;

	for (int create = 0; create < 2; create++) {
		if ((rc = mdb_txn_begin(s->env, NULL, create ? 0 : MDB_RDONLY, &txn)) != 0)
			return rc;
		for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++)
			rc = mdb_dbi_open(txn, names[i], create ? MDB_CREATE : 0, dbis[i]);
		if (rc != 0) {
			mdb_txn_abort(txn);
			if (rc == MDB_NOTFOUND && !create)
				continue;
			return rc;
		}
		return mdb_txn_commit(txn);
	}
	return rc;
}

int al_store_open(const char *dir, uint64_t max_size, unsigned readers, struct al_store **out,
    char *err, size_t errlen)
{
	int alone, vouched = 0;
	struct al_store *s;
	int rc;
	/* Room above max_size for metadata, B-tree pages and fills in flight. */
	uint64_t map = max_size + max_size / 4 + (256ULL << 20);
	const char *step = "opening the environment";

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->max_size = max_size;
	s->lock_fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", dir);
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cache.path %s: %s", dir, strerror(errno));
		goto err_free;
	}
	if ((rc = alone = lock_cache(s, dir, err, errlen)) < 0)
		goto err_free;
	if ((rc = mdb_env_create(&s->env)) != 0)
		goto err_lmdb;
	mdb_env_set_maxdbs(s->env, 8);
	mdb_env_set_maxreaders(s->env, readers < 126 ? 126 : readers);
	mdb_env_set_mapsize(s->env, map);
	mdb_env_set_assert(s->env, on_lmdb_assert);
	/*
	 * MDB_NOMETASYNC: durable ordering at one fdatasync per commit, see
	 * "Durability" above; the store writer groups commits (al_store_batch_*)
	 * and a thread calls al_store_sync() to flush the last meta page.
	 * MDB_NOTLS: a thread holds many read snapshots (one per client).
	 */
	rc = mdb_env_open(s->env, dir, MDB_NOMETASYNC | MDB_NOTLS | MDB_NORDAHEAD, 0640);
	if (rc)
		goto err_env;
	if ((rc = -check_size(s->env, dir, err, errlen)) != 0) {
		mdb_env_close(s->env);
		rc = -rc;
		goto err_free;
	}
	step = "opening its databases";
	if ((rc = open_dbis(s)) != 0)
		goto err_env;
	if (alone && (rc = drop_pending(s)) != 0) {
		char what[300];
		snprintf(what, sizeof(what), "dropping the chunks of fills a crash interrupted failed: %s",
		    rc == -EUCLEAN ? "LMDB found a damaged page (MDB_CORRUPTED or MDB_PAGE_NOTFOUND)" : strerror(-rc));
		if (rc == -EUCLEAN)
			damaged(err, errlen, dir, what);
		else
			snprintf(err, errlen, "cache %s: %s", dir, what);
		mdb_env_close(s->env);
		goto err_free;
	}
	step = "reading which writer committed last";
	if (alone && (rc = vouched_at_open(s, &vouched)) != 0)
		goto err_env;
	if (alone && (rc = regidx_rebuild(s, vouched, NULL)) != 0) {
		snprintf(err, errlen, "cache %s: rebuilding the registry index: %s", dir, strerror(-rc));
		rc = -rc;
		goto err_env;
	}
	if (alone && (rc = rootidx_rebuild(s, vouched)) != 0) {
		snprintf(err, errlen, "cache %s: rebuilding the root index: %s", dir, strerror(-rc));
		rc = -rc;
		goto err_env;
	}
	if (alone)
		flock(s->lock_fd, LOCK_SH); /* others may open it now; the lock is held until al_store_close */
	*out = s;
	return 0;

err_env:
	mdb_env_close(s->env);
err_lmdb:
	if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
	    rc == MDB_INCOMPATIBLE || rc == EIO) {
		char what[300];
		snprintf(what, sizeof(what), "%s, LMDB said \"%s\"", step, mdb_strerror(rc));
		damaged(err, errlen, dir, what);
	} else {
		snprintf(err, errlen, "cache %s: %s: %s", dir, step, mdb_strerror(rc));
	}
	rc = lmdb_error(rc);
err_free:
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s);
	return rc;
}

void al_store_close(struct al_store *s)
{
	if (s == NULL)
		return;
	mdb_env_sync(s->env, 1);
	mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the shared lock */
	free(s);
}

/*
 * With MDB_NOMETASYNC the newest meta page waits for the next commit's
 * fdatasync; this flushes it when no commit follows (an idle cache would
 * otherwise keep its last fill undone by a power loss for as long as it
 * stays idle).  Nothing to do when nothing was committed since the last call.
 */
int al_store_sync(struct al_store *s)
{
	MDB_envinfo ei;
	int rc;

	if (mdb_env_info(s->env, &ei) != 0 || (uint64_t)ei.me_last_txnid == atomic_load(&s->synced_txnid))
		return 0;
	if ((rc = mdb_env_sync(s->env, 1)) != 0)
		return lmdb_error(rc);
	atomic_store(&s->synced_txnid, (uint64_t)ei.me_last_txnid);
	return 0;
}

int al_store_stats(struct al_store *s, struct al_store_stats *st)
{
	MDB_txn *txn;
	MDB_stat ms;
	MDB_envinfo ei;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	mdb_stat(txn, s->meta, &ms);
	st->entries = ms.ms_entries;
	st->bytes = info_get(txn, s->info, "bytes");
	mdb_txn_abort(txn);
	mdb_env_info(s->env, &ei);
	st->map_size = ei.me_mapsize;
	st->last_txnid = (uint64_t)ei.me_last_txnid;
	st->evictions = atomic_load(&s->evictions);
	return 0;
}

int al_reader_new(struct al_store *s, struct al_reader **out)
{
	struct al_reader *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	r->s = s;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn)) != 0)
		goto err;
	if ((rc = mdb_cursor_open(r->txn, s->body, &r->cur)) != 0) {
		mdb_txn_abort(r->txn);
		goto err;
	}
	mdb_txn_reset(r->txn);
	*out = r;
	return 0;
err:
	free(r);
	return lmdb_error(rc);
}

void al_reader_free(struct al_reader *r)
{
	if (r == NULL)
		return;
	mdb_cursor_close(r->cur);
	mdb_txn_abort(r->txn);
	free(r);
}

int al_reader_begin(struct al_reader *r)
{
	int rc;

	if (r->active)
		return 0;
	if ((rc = mdb_txn_renew(r->txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_cursor_renew(r->txn, r->cur)) != 0) {
		mdb_txn_reset(r->txn);
		return lmdb_error(rc);
	}
	r->active = 1;
	return 0;
}

void al_reader_end(struct al_reader *r)
{
	if (r->active) {
		mdb_txn_reset(r->txn);
		r->active = 0;
	}
}

int al_reader_active(const struct al_reader *r)
{
	return r->active;
}

int al_lookup(struct al_reader *r, const uint8_t key[AL_KEY_LEN], struct al_record *rec)
{
	MDB_val k = {AL_KEY_LEN, (void *)key}, v;
	int rc;

	if ((rc = al_reader_begin(r)) != 0)
		return rc;
	if ((rc = mdb_get(r->txn, r->s->meta, &k, &v)) != 0)
		return lmdb_error(rc);
	if (al_record_decode(v.mv_data, v.mv_size, rec) != 0)
		return -EBADMSG;
	return 0;
}

int al_body_at(struct al_reader *r, uint64_t id, uint64_t off, const void **ptr, size_t *len)
{
	uint8_t kb[16];
	MDB_val k = {16, kb}, v;
	uint64_t start;
	int rc;

	if ((rc = al_reader_begin(r)) != 0)
		return rc;
	body_key(kb, id, off);
	rc = mdb_cursor_get(r->cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == 16 && be64(k.mv_data) == id && be64((uint8_t *)k.mv_data + 8) == off)
		goto found;
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(r->cur, &k, &v, MDB_LAST);
	else if (rc == 0)
		rc = mdb_cursor_get(r->cur, &k, &v, MDB_PREV);
	if (rc)
		return lmdb_error(rc);
	if (k.mv_size != 16 || be64(k.mv_data) != id)
		return -ENOENT;
found:
	start = be64((uint8_t *)k.mv_data + 8);
	if (off < start || off >= start + v.mv_size)
		return -ENOENT;
	*ptr = (const uint8_t *)v.mv_data + (off - start);
	*len = v.mv_size - (size_t)(off - start);
	return 0;
}

int al_fill_new_id(uint64_t *obj_id)
{
	uint64_t id;

	do {
		if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
			return -EIO;
	} while (id == 0);
	*obj_id = id;
	return 0;
}

int al_fill_pending(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint64_t obj_id)
{
	MDB_txn *txn;
	MDB_val k = {8, &obj_id}, v = {AL_KEY_LEN, (void *)key};
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_put(txn, s->pending, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	return lmdb_error(wtxn_commit(s, txn));
}

int al_fill_begin(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint64_t *obj_id)
{
	uint64_t id;
	int rc;

	if ((rc = al_fill_new_id(&id)) != 0 || (rc = al_fill_pending(s, key, id)) != 0)
		return rc;
	*obj_id = id;
	return 0;
}

struct victim {
	uint8_t key[AL_KEY_LEN];
	int64_t last_used;
	uint64_t obj_id, body_len;
};

static int by_last_used(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->last_used < y->last_used ? -1 : x->last_used > y->last_used;
}

/* The unpinned entries but keep, oldest use first, into *out (to free). */
static int collect_victims(struct al_store *s, MDB_txn *txn, const uint8_t *keep, struct victim **out, size_t *count)
{
	struct victim *v = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *c;
	MDB_val k, val;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->meta, &c)) != 0)
		return lmdb_error(rc);
	for (rc = mdb_cursor_get(c, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &val, MDB_NEXT)) {
		struct al_record rec;
		if (k.mv_size != AL_KEY_LEN || al_record_decode(val.mv_data, val.mv_size, &rec) != 0 ||
		    (rec.flags & AL_REC_PINNED) || (keep != NULL && memcmp(k.mv_data, keep, AL_KEY_LEN) == 0))
			continue;
		if (n == cap) {
			struct victim *nv = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*v));
			if (nv == NULL) {
				mdb_cursor_close(c);
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		memcpy(v[n].key, k.mv_data, AL_KEY_LEN);
		v[n].last_used = rec.last_used;
		v[n].obj_id = rec.obj_id;
		v[n].body_len = rec.body_len;
		n++;
	}
	mdb_cursor_close(c);
	qsort(v, n, sizeof(*v), by_last_used);
	*out = v;
	*count = n;
	return 0;
}

/*
 * Make room for `need` more bytes under max_size: one scan collects the
 * unpinned entries (but keep), sorted by last use, and the oldest go until
 * the total is under a low-water mark (95% of max_size), so that the next
 * commits find room without evicting.  Runs inside the caller's write txn.
 * -ENOSPC when what is left is pinned.
 */
static int evict(struct al_store *s, MDB_txn *txn, uint64_t need, const uint8_t *keep)
{
	uint64_t total = info_get(txn, s->info, "bytes"), target = s->max_size - s->max_size / 20;
	struct victim *v;
	size_t n, i;
	int rc;

	if (total + need <= s->max_size)
		return 0;
	if ((rc = collect_victims(s, txn, keep, &v, &n)) != 0)
		return rc;
	for (i = 0, rc = 0; i < n && total + need > target; i++) {
		MDB_val vk = {AL_KEY_LEN, v[i].key};
		if ((rc = index_drop(s, txn, v[i].key)) != 0 ||
		    (rc = drop_chunks(txn, s->body, v[i].obj_id, NULL)) != 0 ||
		    (rc = lmdb_error(mdb_del(txn, s->meta, &vk, NULL))) != 0)
			break;
		total = total > v[i].body_len ? total - v[i].body_len : 0;
		atomic_fetch_add(&s->evictions, 1);
	}
	free(v);
	if (rc != 0)
		return rc;
	if ((rc = info_put(txn, s->info, "bytes", total)) != 0)
		return rc;
	return total + need > s->max_size ? -ENOSPC : 0;
}

/* Take one victim out of the index, into pending (its chunks go next); -ESTALE if it changed meanwhile. */
static int unlink_victim(struct al_store *s, const struct victim *v)
{
	MDB_txn *txn;
	MDB_val k = {AL_KEY_LEN, (void *)v->key}, val, pk = {8, (void *)&v->obj_id};
	struct al_record rec;
	uint64_t total;
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if (mdb_get(txn, s->meta, &k, &val) != 0 || al_record_decode(val.mv_data, val.mv_size, &rec) != 0 ||
	    rec.obj_id != v->obj_id || (rec.flags & AL_REC_PINNED)) {
		mdb_txn_abort(txn);
		return -ESTALE;
	}
	total = info_get(txn, s->info, "bytes");
	val.mv_size = AL_KEY_LEN;
	val.mv_data = (void *)v->key;
	if ((rc = index_drop_url(s, txn, v->key, rec.url, rec.url_len)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_del(txn, s->meta, &k, NULL)) != 0 || (rc = mdb_put(txn, s->pending, &pk, &val, 0)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	if ((rc = info_put(txn, s->info, "bytes", total > rec.body_len ? total - rec.body_len : 0)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return lmdb_error(wtxn_commit(s, txn));
}

/*
 * evict() for a full map: one transaction freeing whole objects must list
 * every freed page in a record that needs contiguous room (see
 * al_fill_abort), which a full map does not have.  So each victim leaves
 * the index in a small transaction of its own, into pending (a crash then
 * finishes the job at the next start), and its chunks go a few at a time.
 */
static int evict_in_steps(struct al_store *s, uint64_t need, const uint8_t *keep)
{
	uint64_t total, target = s->max_size - s->max_size / 20;
	struct victim *v = NULL;
	size_t n = 0;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	total = info_get(txn, s->info, "bytes");
	rc = total + need > s->max_size ? collect_victims(s, txn, keep, &v, &n) : 0;
	mdb_txn_abort(txn);
	for (size_t i = 0; rc == 0 && i < n && total + need > target; i++) {
		if ((rc = unlink_victim(s, &v[i])) == -ESTALE) {
			rc = 0;
			continue;
		}
		if (rc == 0 && (rc = al_fill_abort(s, v[i].obj_id)) == 0) {
			total = total > v[i].body_len ? total - v[i].body_len : 0;
			atomic_fetch_add(&s->evictions, 1);
		}
	}
	free(v);
	if (rc != 0)
		return rc;
	return total + need > s->max_size ? -ENOSPC : 0;
}

int al_fill_append(struct al_store *s, uint64_t id, uint64_t off, const void *data, size_t len)
{
	MDB_txn *txn;
	uint8_t kb[16];
	MDB_val k = {16, kb}, v = {len, (void *)data};
	int rc, tries = 0;

	body_key(kb, id, off);
again:
	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	rc = mdb_put(txn, s->body, &k, &v, 0);
	if (rc == 0)
		rc = wtxn_commit(s, txn);
	else
		mdb_txn_abort(txn);
	if (rc == MDB_MAP_FULL && tries++ == 0) {
		/* The map is full of older objects: evict a share of them and retry once. */
		int paused;
		batch_pause(s, &paused);
		rc = evict_in_steps(s, s->max_size / 4 + len, NULL);
		batch_resume(s, paused);
		if (rc != 0 && rc != -ENOSPC)
			return rc;
		goto again; /* what was freed stays freed, even when it is not all that was asked for */
	}
	return lmdb_error(rc);
}

/*
 * A few chunks per transaction.  A commit records every page it freed in
 * LMDB's free list, one record that needs contiguous room; a fill refused
 * because the map is full leaves none, and one transaction for a whole
 * 250 MiB body (64,000 pages) failed there, leaving the body behind and the
 * map full for the fills after it.  16 chunks free 1,024 pages: an 8 KiB
 * record.  The pending entry goes with the last batch, so a crash midway
 * is cleaned up at the next start like any other.
 */
#define ABORT_BATCH 16
#define ABORT_STEPS_PER_COMMIT 1

int al_fill_abort(struct al_store *s, uint64_t id)
{
	MDB_txn *txn;
	MDB_val k = {8, &id};
	int rc, more, n = 0;

	do {
		/*
		 * In a batch too, one commit frees at most ABORT_BATCH chunks: the
		 * batch so far is committed before each further step.  Four steps a
		 * commit (a 32 KiB free-list record) found no room in a full map and
		 * left 1,014 chunks behind (test_core_store_writer).
		 */
		if (in_batch(s) && n > 0 && n % ABORT_STEPS_PER_COMMIT == 0)
			batch_cut(s, 1);
		n++;
		if ((rc = wtxn_begin(s, &txn)) != 0)
			return lmdb_error(rc);
		if ((rc = drop_some_chunks(txn, s->body, id, NULL, ABORT_BATCH, &more)) != 0) {
			mdb_txn_abort(txn);
			return rc;
		}
		if (!more)
			mdb_del(txn, s->pending, &k, NULL);
		rc = lmdb_error(wtxn_commit(s, txn));
	} while (rc == 0 && more);
	return rc;
}

static int put_record(struct al_store *s, MDB_txn *txn, const uint8_t *key, const struct al_record *rec)
{
	MDB_val k = {AL_KEY_LEN, (void *)key}, v;
	int rc;

	v.mv_size = al_record_size(rec);
	if ((rc = mdb_put(txn, s->meta, &k, &v, MDB_RESERVE)) != 0)
		return lmdb_error(rc);
	al_record_encode(rec, v.mv_data);
	return 0;
}

static int commit_once(struct al_store *s, const uint8_t key[AL_KEY_LEN], const struct al_record *rec)
{
	MDB_txn *txn;
	MDB_val k = {AL_KEY_LEN, (void *)key}, v, pk = {8, (void *)&rec->obj_id};
	struct al_record old;
	uint64_t total;
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	total = info_get(txn, s->info, "bytes");
	if (mdb_get(txn, s->meta, &k, &v) == 0 && al_record_decode(v.mv_data, v.mv_size, &old) == 0 &&
	    old.obj_id != rec->obj_id) {
		if ((rc = drop_chunks(txn, s->body, old.obj_id, NULL)) != 0)
			goto err;
		total = total > old.body_len ? total - old.body_len : 0;
	}
	if ((rc = info_put(txn, s->info, "bytes", total + rec->body_len)) != 0)
		goto err;
	if ((rc = evict(s, txn, 0, key)) != 0 && rc != -ENOSPC)
		goto err;
	if ((rc = put_record(s, txn, key, rec)) != 0 || (rc = regidx_put(s, txn, key, rec)) != 0 ||
	    (rc = rootidx_put(s, txn, rec->url, rec->url_len)) != 0)
		goto err;
	mdb_del(txn, s->pending, &pk, NULL);
	return lmdb_error(wtxn_commit(s, txn));
err:
	mdb_txn_abort(txn);
	return rc;
}

int al_fill_commit(struct al_store *s, const uint8_t key[AL_KEY_LEN], const struct al_record *rec)
{
	int rc = commit_once(s, key, rec);

	if (rc == -ENOSPC) { /* the map is full: make room in steps, then once more */
		int paused, e;
		batch_pause(s, &paused);
		e = evict_in_steps(s, rec->body_len, key);
		batch_resume(s, paused);
		if (e == 0 || e == -ENOSPC)
			rc = commit_once(s, key, rec);
	}
	return rc;
}

int al_refresh(struct al_store *s, const uint8_t key[AL_KEY_LEN], const char *h304, size_t len,
    int64_t request_time, int64_t response_time, int64_t age_value)
{
	MDB_txn *txn;
	MDB_val k = {AL_KEY_LEN, (void *)key}, v;
	struct al_record rec;
	struct al_hdr_iter it;
	const char *n, *val;
	size_t nl, vl;
	char *merged = NULL, *url = NULL;
	size_t mlen = 0;
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_get(txn, s->meta, &k, &v)) != 0) {
		rc = lmdb_error(rc);
		goto err;
	}
	if (al_record_decode(v.mv_data, v.mv_size, &rec) != 0) {
		rc = -EBADMSG;
		goto err;
	}
	merged = malloc(rec.hdrs_len + len + 1);
	url = malloc(rec.url_len + 1);
	if (merged == NULL || url == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	memcpy(url, rec.url, rec.url_len);
	/* Keep stored lines the 304 does not replace; then append the 304's lines. */
	it.p = rec.hdrs;
	it.end = rec.hdrs + rec.hdrs_len;
	while (it.p < it.end) {
		const char *line = it.p, *eol = memchr(it.p, '\n', it.end - it.p);
		size_t ll = eol ? (size_t)(eol + 1 - line) : (size_t)(it.end - line);
		struct al_hdr_iter one = {line, line + ll};
		int replaced = 0;
		if (al_hdr_next(&one, &n, &nl, &val, &vl)) {
			char name[128];
			if (nl < sizeof(name)) {
				memcpy(name, n, nl);
				name[nl] = '\0';
				replaced = al_hdr_get(h304, len, name, &vl) != NULL && !al_304_keeps_stored(name, nl);
			}
		}
		if (!replaced) {
			memcpy(merged + mlen, line, ll);
			mlen += ll;
		}
		it.p = line + ll;
	}
	it.p = h304;
	it.end = h304 + len;
	while (it.p < it.end) {
		const char *line = it.p, *eol = memchr(it.p, '\n', it.end - it.p);
		size_t ll = eol ? (size_t)(eol + 1 - line) : (size_t)(it.end - line);
		struct al_hdr_iter one = {line, line + ll};
		if (al_hdr_next(&one, &n, &nl, &val, &vl) && !al_304_keeps_stored(n, nl)) {
			memcpy(merged + mlen, line, ll);
			mlen += ll;
		}
		it.p = line + ll;
	}
	rec.url = url;
	rec.hdrs = merged;
	rec.hdrs_len = mlen;
	rec.request_time = request_time;
	rec.response_time = response_time;
	rec.age_value = age_value;
	rec.flags &= ~AL_REC_STALE; /* just revalidated */
	if ((rc = put_record(s, txn, key, &rec)) != 0)
		goto err;
	free(merged);
	free(url);
	return lmdb_error(wtxn_commit(s, txn));
err:
	free(merged);
	free(url);
	mdb_txn_abort(txn);
	return rc;
}

int al_store_touch(struct al_store *s, const uint8_t (*keys)[AL_KEY_LEN], int n, int64_t t)
{
	MDB_txn *txn;
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	for (int i = 0; i < n; i++) {
		MDB_val k = {AL_KEY_LEN, (void *)keys[i]}, v, nv;
		if (mdb_get(txn, s->meta, &k, &v) != 0 || v.mv_size < 64)
			continue;
		nv.mv_size = v.mv_size;
		/* Reserve then fill: v points into a page the put may replace, so copy via a buffer. */
		{
			uint8_t *copy = malloc(v.mv_size);
			if (copy == NULL)
				break;
			memcpy(copy, v.mv_data, v.mv_size);
			al_record_set_last_used(copy, t);
			if (mdb_put(txn, s->meta, &k, &nv, MDB_RESERVE) == 0)
				memcpy(nv.mv_data, copy, v.mv_size);
			free(copy);
		}
	}
	return lmdb_error(wtxn_commit(s, txn));
}

int al_store_delete(struct al_store *s, const uint8_t key[AL_KEY_LEN])
{
	MDB_txn *txn;
	MDB_val k = {AL_KEY_LEN, (void *)key}, v;
	struct al_record rec;
	uint64_t total;
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_get(txn, s->meta, &k, &v)) != 0 || al_record_decode(v.mv_data, v.mv_size, &rec)) {
		mdb_txn_abort(txn);
		return rc ? lmdb_error(rc) : -EBADMSG;
	}
	total = info_get(txn, s->info, "bytes");
	if ((rc = index_drop_url(s, txn, key, rec.url, rec.url_len)) != 0 ||
	    (rc = drop_chunks(txn, s->body, rec.obj_id, NULL)) != 0 ||
	    (rc = lmdb_error(mdb_del(txn, s->meta, &k, NULL))) != 0 ||
	    (rc = info_put(txn, s->info, "bytes", total > rec.body_len ? total - rec.body_len : 0)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return lmdb_error(wtxn_commit(s, txn));
}

int al_store_foreach(struct al_store *s, al_entry_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct al_record rec;
	int rc, out = 0;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_cursor_open(txn, s->meta, &c)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != AL_KEY_LEN || al_record_decode(v.mv_data, v.mv_size, &rec) != 0)
			continue;
		if ((out = fn(k.mv_data, &rec, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (out != 0)
		return out;
	return rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
}

int al_store_foreach_slice(struct al_store *s, struct al_scan *sc, int max, al_entry_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k = {AL_KEY_LEN, sc->pos}, v;
	struct al_record rec;
	int rc, out = 0, seen = 0;

	if (sc->done)
		return 0;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_cursor_open(txn, s->meta, &c)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	rc = mdb_cursor_get(c, &k, &v, sc->started ? MDB_SET_RANGE : MDB_FIRST);
	/* the position's own entry was visited by the previous call (if it is still there) */
	if (rc == 0 && sc->started && k.mv_size == AL_KEY_LEN && memcmp(k.mv_data, sc->pos, AL_KEY_LEN) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (seen == max)
			break;
		seen++;
		if (k.mv_size != AL_KEY_LEN)
			continue;
		memcpy(sc->pos, k.mv_data, AL_KEY_LEN);
		sc->started = 1;
		if (al_record_decode(v.mv_data, v.mv_size, &rec) != 0)
			continue;
		if ((out = fn(k.mv_data, &rec, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (out != 0)
		return out;
	if (rc == MDB_NOTFOUND) {
		sc->done = 1;
		return 0;
	}
	return lmdb_error(rc);
}

static int set_flag(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint8_t flag, int on)
{
	MDB_txn *txn;
	MDB_val k = {AL_KEY_LEN, (void *)key}, v, nv;
	uint8_t *copy;
	int rc;

	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_get(txn, s->meta, &k, &v)) != 0 || v.mv_size < 8) {
		mdb_txn_abort(txn);
		return rc ? lmdb_error(rc) : -EBADMSG;
	}
	copy = malloc(v.mv_size);
	if (copy == NULL) {
		mdb_txn_abort(txn);
		return -ENOMEM;
	}
	memcpy(copy, v.mv_data, v.mv_size);
	/* flags are the little-endian u32 after the magic */
	if (on)
		copy[4] |= flag;
	else
		copy[4] &= (uint8_t)~flag;
	nv.mv_size = v.mv_size;
	if ((rc = mdb_put(txn, s->meta, &k, &nv, MDB_RESERVE)) == 0)
		memcpy(nv.mv_data, copy, v.mv_size);
	free(copy);
	if (rc) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	return lmdb_error(wtxn_commit(s, txn));
}

/* "bundle:<hex digest>" in the info database */
static void bundle_name(const uint8_t d[32], char out[8 + 65])
{
	memcpy(out, "bundle:", 7);
	al_hex(d, 32, out + 7);
}

int al_store_note_bundle(struct al_store *s, const uint8_t digest[32])
{
	MDB_txn *txn;
	char name[8 + 65];
	int rc;

	bundle_name(digest, name);
	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = info_put(txn, s->info, name, (uint64_t)time(NULL))) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return lmdb_error(wtxn_commit(s, txn));
}

int al_store_has_bundle(struct al_store *s, const uint8_t digest[32], uint64_t *when)
{
	MDB_txn *txn;
	char name[8 + 65];
	uint64_t t;
	int rc;

	bundle_name(digest, name);
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	t = info_get(txn, s->info, name);
	mdb_txn_abort(txn);
	if (when)
		*when = t;
	return t != 0;
}

#define LEDGER_HEAD_KEY "ledger_head"

int al_store_ledger_head_put(struct al_store *s, uint64_t seq, const char digest[65])
{
	MDB_val k = {sizeof(LEDGER_HEAD_KEY) - 1, LEDGER_HEAD_KEY}, v;
	uint8_t val[sizeof(seq) + 64];
	MDB_txn *txn;
	int rc;

	if (seq != 0 && strlen(digest) != 64)
		return -EINVAL;
	if ((rc = wtxn_begin(s, &txn)) != 0)
		return lmdb_error(rc);
	if (seq == 0) {
		rc = mdb_del(txn, s->info, &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	} else {
		memcpy(val, &seq, sizeof(seq));
		memcpy(val + sizeof(seq), digest, 64);
		v.mv_size = sizeof(val);
		v.mv_data = val;
		rc = mdb_put(txn, s->info, &k, &v, 0);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(rc);
	}
	return lmdb_error(wtxn_commit(s, txn));
}

int al_store_ledger_head_get(struct al_store *s, uint64_t *seq, char digest[65])
{
	MDB_val k = {sizeof(LEDGER_HEAD_KEY) - 1, LEDGER_HEAD_KEY}, v;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(rc);
	if ((rc = mdb_get(txn, s->info, &k, &v)) == 0) {
		if (v.mv_size != sizeof(*seq) + 64) {
			rc = -EBADMSG;
		} else {
			memcpy(seq, v.mv_data, sizeof(*seq));
			memcpy(digest, (uint8_t *)v.mv_data + sizeof(*seq), 64);
			digest[64] = '\0';
			rc = *seq > 0 ? 1 : -EBADMSG;
		}
	} else {
		rc = rc == MDB_NOTFOUND ? 0 : lmdb_error(rc);
	}
	mdb_txn_abort(txn);
	return rc;
}

int al_store_pin(struct al_store *s, const uint8_t key[AL_KEY_LEN], int pinned)
{
	return set_flag(s, key, AL_REC_PINNED, pinned);
}

int al_store_expire(struct al_store *s, const uint8_t key[AL_KEY_LEN])
{
	return set_flag(s, key, AL_REC_STALE, 1);
}

int al_store_check_body(struct al_reader *r, const struct al_record *rec)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t d[32];
	uint64_t off = 0;
	int rc = 0;

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	while (off < rec->body_len) {
		const void *p;
		size_t n;
		if ((rc = al_body_at(r, rec->obj_id, off, &p, &n)) != 0)
			break;
		if (n > rec->body_len - off)
			n = (size_t)(rec->body_len - off);
		EVP_DigestUpdate(ctx, p, n);
		off += n;
	}
	if (rc == 0) {
		EVP_DigestFinal_ex(ctx, d, NULL);
		rc = memcmp(d, rec->sha256, 32) == 0 ? 0 : -EBADMSG;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

int al_body_read(struct al_reader *r, const struct al_record *rec, uint64_t max, char **out)
{
	char *buf;
	uint64_t off = 0;
	int rc;

	if (rec->body_len > max)
		return -EFBIG;
	if ((buf = malloc(rec->body_len + 1)) == NULL)
		return -ENOMEM;
	while (off < rec->body_len) {
		const void *p;
		size_t n;
		if ((rc = al_body_at(r, rec->obj_id, off, &p, &n)) != 0) {
			free(buf);
			return rc;
		}
		if (n > rec->body_len - off)
			n = (size_t)(rec->body_len - off);
		memcpy(buf + off, p, n);
		off += n;
	}
	buf[rec->body_len] = '\0';
	*out = buf;
	return 0;
}

int al_read_small(struct al_store *s, const uint8_t key[AL_KEY_LEN], uint64_t max, char **out, size_t *len)
{
	struct al_reader *rd;
	struct al_record rec;
	int rc;

	if ((rc = al_reader_new(s, &rd)) != 0)
		return rc;
	rc = al_lookup(rd, key, &rec);
	if (rc == 0 && rec.status != 200)
		rc = -ENOENT;
	if (rc == 0 && (rc = al_body_read(rd, &rec, max, out)) == 0)
		*len = (size_t)rec.body_len;
	al_reader_free(rd);
	return rc;
}

/*
 * LMDB reports a short write of its pages as EIO (mdb.c mdb_page_flush:
 * "short write, filesystem full?"), and a full file system gives short
 * writes: so an EIO on a file system with (almost) no room left is told as
 * ENOSPC, which is what the operator has to act on.
 */
int al_store_explain(struct al_store *s, int rc)
{
	struct statvfs fs;

	if (rc != -EIO || statvfs(s->path, &fs) != 0)
		return rc;
	return (uint64_t)fs.f_bavail * fs.f_frsize < AL_STORE_FULL_MARGIN ? -ENOSPC : rc;
}
