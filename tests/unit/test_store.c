/* The LMDB store on a real directory: fills, commits, aborts, refresh, recovery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "cache/store.h"
#include "policy/hdr.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/airlock-store-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct al_store *open_store(uint64_t max)
{
	struct al_store *s;
	char err[256];

	assert_int_equal(al_store_open(dir, max, 6000, &s, err, sizeof(err)), 0);
	return s;
}

static void commit_object(struct al_store *s, const char *url, const char *hdrs, const void *body, size_t len,
    uint32_t flags, int64_t last_used)
{
	uint8_t key[AL_KEY_LEN];
	uint64_t id;
	struct al_record rec = {0};

	al_store_key(url, strlen(url), key);
	assert_int_equal(al_fill_begin(s, key, &id), 0);
	/* in two chunks of different sizes */
	assert_int_equal(al_fill_append(s, id, 0, body, len / 3), 0);
	assert_int_equal(al_fill_append(s, id, len / 3, (const char *)body + len / 3, len - len / 3), 0);
	rec.status = 200;
	rec.obj_id = id;
	rec.body_len = len;
	rec.flags = flags;
	rec.last_used = last_used;
	rec.url = url;
	rec.url_len = strlen(url);
	rec.hdrs = hdrs;
	rec.hdrs_len = strlen(hdrs);
	assert_int_equal(al_fill_commit(s, key, &rec), 0);
}

static void read_all(struct al_reader *r, uint64_t id, size_t len, char *out)
{
	size_t got = 0;

	while (got < len) {
		const void *p;
		size_t n;
		assert_int_equal(al_body_at(r, id, got, &p, &n), 0);
		memcpy(out + got, p, n);
		got += n;
	}
	assert_int_equal(al_body_at(r, id, got, &(const void *){0}, &(size_t){0}), -ENOENT);
}

static void test_roundtrip(void **state)
{
	struct al_store *s = open_store(64 << 20);
	struct al_reader *r;
	struct al_record rec;
	uint8_t key[AL_KEY_LEN];
	const char *url = "https://artifacts.elastic.co/downloads/a.tar.gz";
	const char *h = "ETag: \"x\"\r\nCache-Control: max-age=600\r\nCache-Control: public\r\n";
	char body[100000], back[100000];
	const void *p;
	size_t n;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7);
	commit_object(s, url, h, body, sizeof(body), 0, 1);
	assert_int_equal(al_reader_new(s, &r), 0);
	al_store_key(url, strlen(url), key);
	assert_int_equal(al_lookup(r, key, &rec), 0);
	assert_int_equal(rec.hdrs_len, strlen(h));
	assert_memory_equal(rec.hdrs, h, strlen(h));
	assert_true(rec.body_len == sizeof(body));
	read_all(r, rec.obj_id, sizeof(body), back);
	assert_memory_equal(body, back, sizeof(body));
	/* a read in the middle of a chunk */
	assert_int_equal(al_body_at(r, rec.obj_id, 50000, &p, &n), 0);
	assert_memory_equal(p, body + 50000, 16);
	al_reader_end(r);
	uint64_t id_before = rec.obj_id;

	/* 304: fields replaced, others kept, body untouched (the same object, byte for byte) */
	assert_int_equal(al_refresh(s, key, "Cache-Control: max-age=60\r\nDate: Tue, 14 May 2024 10:00:00 GMT\r\n",
	    strlen("Cache-Control: max-age=60\r\nDate: Tue, 14 May 2024 10:00:00 GMT\r\n"), 5, 6, 0), 0);
	assert_int_equal(al_lookup(r, key, &rec), 0);
	{
		const char *want = "ETag: \"x\"\r\nCache-Control: max-age=60\r\nDate: Tue, 14 May 2024 10:00:00 GMT\r\n";
		assert_int_equal(rec.hdrs_len, strlen(want));
		assert_memory_equal(rec.hdrs, want, strlen(want));
	}
	assert_true(rec.response_time == 6);
	assert_true(rec.obj_id == id_before);
	assert_true(rec.body_len == sizeof(body));
	memset(back, 0, sizeof(back));
	read_all(r, rec.obj_id, sizeof(body), back);
	assert_memory_equal(body, back, sizeof(body));
	al_reader_end(r);
	al_reader_free(r);
	al_store_close(s);
}

static void test_abort_and_recovery(void **state)
{
	struct al_store *s = open_store(64 << 20);
	struct al_reader *r;
	struct al_record rec;
	uint8_t key[AL_KEY_LEN];
	uint64_t id, id2;
	const char *url = "https://epr.elastic.co/x";
	const void *p;
	size_t n;

	al_store_key(url, strlen(url), key);
	assert_int_equal(al_fill_begin(s, key, &id), 0);
	assert_int_equal(al_fill_append(s, id, 0, "abc", 3), 0);
	assert_int_equal(al_reader_new(s, &r), 0);
	assert_int_equal(al_lookup(r, key, &rec), -ENOENT);   /* not visible before commit */
	assert_int_equal(al_body_at(r, id, 0, &p, &n), 0);     /* but readable by id for followers */
	al_reader_end(r);
	assert_int_equal(al_fill_abort(s, id), 0);
	assert_int_equal(al_body_at(r, id, 0, &p, &n), -ENOENT);
	al_reader_end(r);

	/* A fill interrupted by a crash: pending at open time, cleaned up. */
	assert_int_equal(al_fill_begin(s, key, &id2), 0);
	assert_int_equal(al_fill_append(s, id2, 0, "xyz", 3), 0);
	al_reader_free(r);
	al_store_close(s);
	s = open_store(64 << 20);
	assert_int_equal(al_reader_new(s, &r), 0);
	assert_int_equal(al_body_at(r, id2, 0, &p, &n), -ENOENT);
	al_reader_end(r);
	al_reader_free(r);
	al_store_close(s);
}

static void test_eviction_keeps_pinned_and_recent(void **state)
{
	struct al_store *s = open_store(1 << 20);
	struct al_reader *r;
	struct al_record rec;
	uint8_t key[AL_KEY_LEN];
	char *body = calloc(1, 300 * 1024);
	struct al_store_stats st;
	char url[64];

	commit_object(s, "https://a/pinned", "", body, 300 * 1024, AL_REC_PINNED, 1);
	commit_object(s, "https://a/old", "", body, 300 * 1024, 0, 2);
	commit_object(s, "https://a/mid", "", body, 300 * 1024, 0, 3);
	commit_object(s, "https://a/new", "", body, 300 * 1024, 0, 4);   /* over 1 MiB: evicts "old" */
	assert_int_equal(al_reader_new(s, &r), 0);
	for (int i = 0; i < 4; i++) {
		static const char *const names[] = {"pinned", "old", "mid", "new"};
		snprintf(url, sizeof(url), "https://a/%s", names[i]);
		al_store_key(url, strlen(url), key);
		assert_int_equal(al_lookup(r, key, &rec), i == 1 ? -ENOENT : 0);
		al_reader_end(r);
	}
	assert_int_equal(al_store_stats(s, &st), 0);
	assert_true(st.entries == 3);
	assert_true(st.bytes == 3 * 300 * 1024);
	assert_true(st.evictions == 1);
	al_reader_free(r);
	al_store_close(s);
	free(body);
}

static void test_touch_protects_from_eviction(void **state)
{
	struct al_store *s = open_store(1 << 20);
	struct al_reader *r;
	struct al_record rec;
	uint8_t key[AL_KEY_LEN];
	char *body = calloc(1, 300 * 1024);

	commit_object(s, "https://a/1", "", body, 300 * 1024, 0, 10);
	commit_object(s, "https://a/2", "", body, 300 * 1024, 0, 20);
	commit_object(s, "https://a/3", "", body, 300 * 1024, 0, 30);
	al_store_key("https://a/1", 11, key);
	assert_int_equal(al_store_touch(s, (const uint8_t (*)[AL_KEY_LEN])key, 1, 40), 0); /* a hit on 1 */
	commit_object(s, "https://a/4", "", body, 300 * 1024, 0, 50);                        /* evicts 2, not 1 */
	assert_int_equal(al_reader_new(s, &r), 0);
	assert_int_equal(al_lookup(r, key, &rec), 0);
	assert_true(rec.last_used == 40);
	al_reader_end(r);
	al_store_key("https://a/2", 11, key);
	assert_int_equal(al_lookup(r, key, &rec), -ENOENT);
	al_reader_end(r);
	al_reader_free(r);
	al_store_close(s);
	free(body);
}

/* Many snapshots at once (one per client connection in the server). */
static void test_many_readers(void **state)
{
	struct al_store *s = open_store(64 << 20);
	struct al_reader *r[5000]; /* more than the 4096 the store once had */
	struct al_record rec;
	uint8_t key[AL_KEY_LEN] = {0};

	for (int i = 0; i < 5000; i++) {
		assert_int_equal(al_reader_new(s, &r[i]), 0);
		assert_int_equal(al_lookup(r[i], key, &rec), -ENOENT); /* an active snapshot each */
	}
	for (int i = 0; i < 5000; i++)
		al_reader_free(r[i]);
	al_store_close(s);
}

static void test_record_decode_rejects_garbage(void **state)
{
	struct al_record rec = {0}, back;
	uint8_t buf[512];

	rec.status = 200;
	rec.url = "u";
	rec.url_len = 1;
	rec.hdrs = "A: b\r\n";
	rec.hdrs_len = 6;
	al_record_encode(&rec, buf);
	assert_int_equal(al_record_decode(buf, al_record_size(&rec), &back), 0);
	assert_int_equal(al_record_decode(buf, al_record_size(&rec) - 1, &back), -EBADMSG);
	buf[0] ^= 1;
	assert_int_equal(al_record_decode(buf, al_record_size(&rec), &back), -EBADMSG);
}

/*
 * A crash while a fill had filled the map: the next open drops its chunks
 * (a few per transaction: one transaction for all of them found no room in
 * the full map for its list of freed pages, and the store did not open),
 * and the room is there again.
 */
static void test_reopen_after_a_crash_with_the_map_full(void **state)
{
	static uint8_t chunk[256 * 1024];
	struct al_store *s = open_store(1 << 20); /* a map of 257 MiB */
	struct al_reader *r;
	uint8_t key[AL_KEY_LEN];
	uint64_t id, off = 0;
	const void *p;
	size_t n;
	int rc;

	memset(chunk, 7, sizeof(chunk));
	al_store_key("https://a/big", 13, key);
	assert_int_equal(al_fill_begin(s, key, &id), 0);
	while ((rc = al_fill_append(s, id, off, chunk, sizeof(chunk))) == 0)
		off += sizeof(chunk);
	assert_int_equal(rc, -ENOSPC);
	assert_true(off > (200u << 20));
	al_store_close(s); /* no abort: the process died */

	s = open_store(1 << 20);
	assert_int_equal(al_reader_new(s, &r), 0);
	assert_int_equal(al_reader_begin(r), 0);
	assert_int_equal(al_body_at(r, id, 0, &p, &n), -ENOENT);
	al_reader_end(r);
	al_reader_free(r);
	assert_int_equal(al_fill_begin(s, key, &id), 0);
	for (off = 0; off < (200u << 20); off += sizeof(chunk))
		assert_int_equal(al_fill_append(s, id, off, chunk, sizeof(chunk)), 0);
	assert_int_equal(al_fill_abort(s, id), 0);
	al_store_close(s);
}

/*
 * A fill that runs into the end of the map while an older object fills
 * most of it: the older one is evicted, a few chunks per transaction (one
 * transaction for its 64,000 pages found no room in the full map for its
 * list of freed pages, and the fill was refused), and the fill goes on.
 */
static void test_full_map_evicts_in_steps(void **state)
{
	static uint8_t chunk[256 * 1024];
	struct al_store *s = open_store(256u << 20); /* a map of 576 MiB */
	struct al_record rec = {0};
	struct al_reader *r;
	struct al_store_stats st;
	uint8_t old_key[AL_KEY_LEN], key[AL_KEY_LEN];
	uint64_t id, off;

	memset(chunk, 3, sizeof(chunk));
	al_store_key("https://a/old", 13, old_key);
	assert_int_equal(al_fill_begin(s, old_key, &id), 0);
	for (off = 0; off < (250u << 20); off += sizeof(chunk))
		assert_int_equal(al_fill_append(s, id, off, chunk, sizeof(chunk)), 0);
	rec.status = 200;
	rec.obj_id = id;
	rec.body_len = off;
	rec.last_used = 1;
	rec.url = "https://a/old";
	rec.url_len = 13;
	rec.hdrs = "ETag: \"old\"\r\n";
	rec.hdrs_len = strlen(rec.hdrs);
	assert_int_equal(al_fill_commit(s, old_key, &rec), 0);

	al_store_key("https://a/new", 13, key);
	assert_int_equal(al_fill_begin(s, key, &id), 0);
	for (off = 0; off < (400u << 20); off += sizeof(chunk))
		assert_int_equal(al_fill_append(s, id, off, chunk, sizeof(chunk)), 0);
	assert_int_equal(al_reader_new(s, &r), 0);
	assert_int_equal(al_reader_begin(r), 0);
	assert_int_equal(al_lookup(r, old_key, &rec), -ENOENT);
	al_reader_end(r);
	al_reader_free(r);
	al_store_stats(s, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(al_fill_abort(s, id), 0);
	al_store_close(s);
}

/*
 * An abort takes every chunk, however they lie in the B-tree: small ones
 * many to a page, large ones each on pages of their own, and deletions
 * that merge pages under the cursor.  The neighbours (a lower and a higher
 * object id) keep theirs.
 */
static void test_abort_takes_every_chunk(void **state)
{
	static uint8_t big[256 * 1024];
	struct al_store *s = open_store(1u << 30);
	struct al_reader *r;
	uint8_t key[AL_KEY_LEN];
	uint64_t id[3];
	const void *p;
	size_t n, sizes[] = {100, sizeof(big)}, counts[] = {5000, 1100};

	memset(big, 5, sizeof(big));
	al_store_key("https://a/x", 11, key);
	for (int round = 0; round < 2; round++) {
		size_t len = sizes[round];
		for (int o = 0; o < 3; o++)
			assert_int_equal(al_fill_begin(s, key, &id[o]), 0);
		for (uint64_t off = 0; off < counts[round] * len; off += len)
			for (int o = 0; o < 3; o++)
				if (o == 1 || off < 10 * len)
					assert_int_equal(al_fill_append(s, id[o], off, big, len), 0);
		assert_int_equal(al_fill_abort(s, id[1]), 0);
		assert_int_equal(al_reader_new(s, &r), 0);
		assert_int_equal(al_reader_begin(r), 0);
		for (uint64_t off = 0; off < counts[round] * len; off += len)
			assert_int_equal(al_body_at(r, id[1], off, &p, &n), -ENOENT);
		for (uint64_t off = 0; off < 10 * len; off += len) {
			assert_int_equal(al_body_at(r, id[0], off, &p, &n), 0);
			assert_int_equal(al_body_at(r, id[2], off, &p, &n), 0);
		}
		al_reader_end(r);
		al_reader_free(r);
		assert_int_equal(al_fill_abort(s, id[0]), 0);
		assert_int_equal(al_fill_abort(s, id[2]), 0);
	}
	al_store_close(s);
}

/* The key is SHA-256 of the URL (caches and bundles on disk depend on it), from any thread. */
static const uint8_t abc_sha256[AL_KEY_LEN] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

static void *key_many(void *arg)
{
	uint8_t key[AL_KEY_LEN], other[AL_KEY_LEN];
	intptr_t bad = 0;

	for (int i = 0; i < 20000; i++) {
		al_store_key("abc", 3, key);
		bad += memcmp(key, abc_sha256, AL_KEY_LEN) != 0;
		al_store_key("https://artifacts.elastic.co/downloads/", 39, other);
		bad += memcmp(other, key, AL_KEY_LEN) == 0;
	}
	return (void *)bad;
}

static void test_key_is_sha256_in_every_thread(void **state)
{
	pthread_t t[3];
	void *bad;

	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, key_many, NULL), 0);
	assert_null(key_many(NULL));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_null(bad);
	}
}

struct seen {
	char urls[8][64];
	int n;
};

static int note_url(const uint8_t key[AL_KEY_LEN], const struct al_record *rec, void *arg)
{
	struct seen *sn = arg;
	uint8_t want[AL_KEY_LEN];

	al_store_key(rec->url, rec->url_len, want);
	assert_memory_equal(key, want, AL_KEY_LEN);
	assert_true(sn->n < 8);
	snprintf(sn->urls[sn->n++], 64, "%.*s", (int)rec->url_len, rec->url);
	return 0;
}

/* The root index: a bucket's root entries in URL order, and nothing else, as entries come and go. */
static void test_root_scan_reads_the_bucket_only(void **state)
{
	static const char *const urls[] = {"https://b.example/c.zip", "https://b.example/a.zip",
	    "https://b.example/sub/x.zip", "https://b.example/?max-keys=1000", "https://b.examplex/z.zip",
	    "https://b.example:8443/a.zip", "https://other.example/a.zip", "https://b.example/"};
	struct al_store *s = open_store(64 << 20);
	struct seen sn = {0};
	uint8_t key[AL_KEY_LEN];
	char longurl[700];

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		commit_object(s, urls[i], "", "body", 4, 0, 1);
	/* longer than LMDB's key limit: indexed all the same */
	snprintf(longurl, sizeof(longurl), "https://b.example/z%0600d.zip", 0);
	commit_object(s, longurl, "", "body", 4, 0, 1);
	assert_int_equal(al_store_root_scan(s, "https://b.example/", 18, note_url, &sn), 0);
	assert_int_equal(sn.n, 3);
	assert_string_equal(sn.urls[0], "https://b.example/a.zip");
	assert_string_equal(sn.urls[1], "https://b.example/c.zip");
	assert_memory_equal(sn.urls[2], longurl, 63); /* note_url keeps 63 bytes */
	al_store_key(longurl, strlen(longurl), key);
	assert_int_equal(al_store_delete(s, key), 0);
	memset(&sn, 0, sizeof(sn));
	assert_int_equal(al_store_root_scan(s, "https://b.example/", 18, note_url, &sn), 0);
	assert_int_equal(sn.n, 2);
	assert_int_equal(al_store_root_scan(s, "https://b.example", 17, note_url, &sn), -EINVAL);

	al_store_key("https://b.example/a.zip", 23, key);
	assert_int_equal(al_store_delete(s, key), 0);
	commit_object(s, "https://b.example/c.zip", "", "newer", 5, 0, 2); /* replaced: still once */
	al_store_close(s);
	s = open_store(64 << 20);
	memset(&sn, 0, sizeof(sn));
	assert_int_equal(al_store_root_scan(s, "https://b.example/", 18, note_url, &sn), 0);
	assert_int_equal(sn.n, 1);
	assert_string_equal(sn.urls[0], "https://b.example/c.zip");
	al_store_close(s);

	/* a cache written before the index existed: rebuilt at the next open */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		assert_int_equal(mdb_env_create(&env), 0);
		mdb_env_set_maxdbs(env, 8);
		assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, "rootidx", 0, &dbi), 0);
		assert_int_equal(mdb_drop(txn, dbi, 1), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	s = open_store(64 << 20);
	memset(&sn, 0, sizeof(sn));
	assert_int_equal(al_store_root_scan(s, "https://b.example/", 18, note_url, &sn), 0);
	assert_int_equal(sn.n, 1);
	assert_string_equal(sn.urls[0], "https://b.example/c.zip");
	memset(&sn, 0, sizeof(sn));
	assert_int_equal(al_store_root_scan(s, "https://other.example/", 22, note_url, &sn), 0);
	assert_int_equal(sn.n, 1);
	al_store_close(s);
}

struct slice_seen {
	int visits[10];
};

static int slice_visit(const uint8_t key[AL_KEY_LEN], const struct al_record *rec, void *arg)
{
	struct slice_seen *seen = arg;
	int i = atoi(rec->url + strlen("https://h/slice-"));

	(void)key;
	assert_true(i >= 0 && i < 10);
	seen->visits[i]++;
	return 0;
}

/* The purge's scan (admin.h): slices of 3 visit each of 10 entries once, even with the position's
 * own entry deleted between slices; done after the last. */
static void test_foreach_slice_visits_each_entry_once(void **state)
{
	struct al_store *s = open_store(64 << 20);
	struct al_scan sc = {0};
	struct slice_seen seen = {0};
	int slices = 0;

	(void)state;
	for (int i = 0; i < 10; i++) {
		char url[64];
		snprintf(url, sizeof(url), "https://h/slice-%d", i);
		commit_object(s, url, "", "x", 1, 0, 0);
	}
	while (!sc.done) {
		assert_int_equal(al_store_foreach_slice(s, &sc, 3, slice_visit, &seen), 0);
		assert_true(++slices <= 5);
		if (slices == 2) /* the last key visited goes away: the next slice starts after it all the same */
			assert_int_equal(al_store_delete(s, sc.pos), 0);
	}
	assert_int_equal(slices, 4); /* 3 + 3 + 3 + 1: the fourth ran into the end */
	for (int i = 0; i < 10; i++)
		assert_int_equal(seen.visits[i], 1);
	assert_int_equal(al_store_foreach_slice(s, &sc, 3, slice_visit, &seen), 0);
	al_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction_keeps_pinned_and_recent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_touch_protects_from_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_readers, setup, teardown),
		cmocka_unit_test(test_record_decode_rejects_garbage),
		cmocka_unit_test(test_key_is_sha256_in_every_thread),
		cmocka_unit_test_setup_teardown(test_reopen_after_a_crash_with_the_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_map_evicts_in_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_takes_every_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_scan_reads_the_bucket_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_slice_visits_each_entry_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
