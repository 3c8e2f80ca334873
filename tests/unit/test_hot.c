/*
 * Hot memory (proxy/front/hot.h) over a real store: which bodies it takes, that the
 * copy is the stored bytes, that a copy is found by object id and digest
 * only, and that retiring a generation truncates its file whole and never
 * writes an offset twice.  That pages already handed to sendfile keep their
 * bytes is shown end to end in tests/integration/test_core_hot_sendfile.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/store.h"
#include "proxy/front/hot.h"
#include "proxy/runtime/server.h"

static char dir[64];
static struct al_store *store;
static struct al_reader *rd;
static struct al_counters cnt;   /* the worker's counters hot memory counts into */

static int setup(void **state)
{
	char err[256];

	memset(&cnt, 0, sizeof(cnt));
	strcpy(dir, "/tmp/airlock-hot-XXXXXX");
	if (mkdtemp(dir) == NULL || al_store_open(dir, 64 << 20, 6000, &store, err, sizeof(err)) != 0)
		return -1;
	return al_reader_new(store, &rd);
}

static int teardown(void **state)
{
	char cmd[128];

	al_reader_free(rd);
	al_store_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* Body chunks of a fresh object in three appends (so a copy spans chunks); rec describes it. */
static void put_body(const void *body, size_t len, uint8_t tag, struct al_record *rec)
{
	uint8_t key[AL_KEY_LEN] = {tag};
	uint64_t id;

	assert_int_equal(al_fill_begin(store, key, &id), 0);
	assert_int_equal(al_fill_append(store, id, 0, body, len / 3), 0);
	assert_int_equal(al_fill_append(store, id, len / 3, (const char *)body + len / 3, len / 3), 0);
	assert_int_equal(al_fill_append(store, id, len / 3 * 2, (const char *)body + len / 3 * 2, len - len / 3 * 2), 0);
	memset(rec, 0, sizeof(*rec));
	rec->status = 200;
	rec->obj_id = id;
	rec->body_len = len;
	memset(rec->sha256, tag, sizeof(rec->sha256));
}

static void assert_copy(int fd, uint64_t off, const void *body, size_t len)
{
	char *got = malloc(len);

	assert_non_null(got);
	assert_int_equal(pread(fd, got, len, (off_t)off), (ssize_t)len);
	assert_memory_equal(got, body, len);
	free(got);
}

static uint64_t ld(const atomic_uint_fast64_t *v)
{
	return (uint64_t)atomic_load(v);
}

static void test_sizes_and_lookup(void **state)
{
	static char body[100 * 1024], small[AL_HOT_MIN_BODY - 1], big[300 * 1024];
	struct al_record a, s, b, again;
	struct al_hot *h;
	uint64_t off, off2;
	int fd, fd2;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7 + i / 4096);
	put_body(body, sizeof(body), 1, &a);
	put_body(small, sizeof(small), 2, &s);
	put_body(big, sizeof(big), 3, &b);
	assert_int_equal(al_hot_new(1 << 20, &cnt, &h), 0); /* bodies up to 256 KiB */
	assert_int_equal(al_reader_begin(rd), 0);

	assert_int_equal(al_hot_get(h, rd, &s, &fd, &off), -ENOENT);
	assert_int_equal(al_hot_get(h, rd, &b, &fd, &off), -ENOENT);
	assert_int_equal(al_hot_get(h, rd, &a, &fd, &off), 0);
	assert_copy(fd, off, body, sizeof(body));
	assert_int_equal(al_hot_get(h, rd, &a, &fd2, &off2), 0);
	assert_int_equal(fd2, fd);
	assert_int_equal(off2, off);
	assert_int_equal(ld(&cnt.hot_copies), 1);
	assert_int_equal(ld(&cnt.hot_sends), 2);

	/* the same id with another digest (a record that is not the one copied) is not that copy */
	again = a;
	again.sha256[0] ^= 1;
	assert_int_equal(al_hot_get(h, rd, &again, &fd2, &off2), 0);
	assert_true(off2 >= off + sizeof(body));
	assert_int_equal(ld(&cnt.hot_copies), 2);
	again.body_len--;
	assert_int_equal(al_hot_get(h, rd, &again, &fd2, &off2), 0);
	assert_int_equal(ld(&cnt.hot_copies), 3);

	al_reader_end(rd);
	al_hot_free(h);
}

static void test_generations(void **state)
{
	static char body[12][40 * 1024];
	struct al_record rec[12];
	struct al_hot *h;
	uint64_t off[12], o;
	struct stat st;
	int fd[12], f;

	for (int i = 0; i < 12; i++) {
		memset(body[i], 'a' + i, sizeof(body[i]));
		put_body(body[i], sizeof(body[i]), (uint8_t)(10 + i), &rec[i]);
	}
	/* 2 x 160 KiB: four 40 KiB bodies per generation */
	assert_int_equal(al_hot_new(160 * 1024, &cnt, &h), 0);
	assert_int_equal(al_reader_begin(rd), 0);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(al_hot_get(h, rd, &rec[i], &fd[i], &off[i]), 0);
		assert_copy(fd[i], off[i], body[i], sizeof(body[i]));
		assert_true(ld(&cnt.hot_bytes) <= 2 * 160 * 1024);
	}
	assert_int_equal(ld(&cnt.hot_rotations), 2);
	/* generation 1 (bodies 0-3) was truncated whole when generation 3 (bodies 8-11) began in its file */
	assert_int_equal(fd[8], fd[0]);
	assert_int_equal(off[8], 0);
	assert_int_equal(fstat(fd[8], &st), 0);
	assert_int_equal(st.st_size, 4 * 40 * 1024);
	/* bodies 4-7 (the previous generation) are still found; 0 is gone and copied again */
	assert_int_equal(al_hot_get(h, rd, &rec[5], &f, &o), 0);
	assert_int_equal(o, off[5]);
	assert_int_equal(ld(&cnt.hot_copies), 12);
	assert_int_equal(al_hot_get(h, rd, &rec[0], &f, &o), 0);
	assert_int_equal(ld(&cnt.hot_copies), 13);
	assert_copy(f, o, body[0], sizeof(body[0]));
	al_reader_end(rd);
	al_hot_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sizes_and_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
