/*
 * The offline S3 listing's read (proxy/front/offline_listing.c): a bucket's
 * objects among many other entries, found by reading the whole store
 * (al_store_foreach, as before the root index) and through the root index
 * (al_store_root_scan).  A program, not a test: it prints records read and
 * milliseconds for each, three rounds.
 *
 *   cmake --build build --target bench_root_scan
 *   build/bench_root_scan DIR [OTHERS [OBJECTS]]   (a new DIR is filled first; default 20000 and 10)
 */
#include "cache/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char BASE[] = "https://kibana-knowledge-base-artifacts.elastic.co/";

struct tally {
	size_t read, listed;
};

static int count(const uint8_t key[AL_KEY_LEN], const struct al_record *r, void *arg)
{
	struct tally *t = arg;
	size_t bl = sizeof(BASE) - 1;

	(void)key;
	t->read++;
	if (r->url_len > bl && memcmp(r->url, BASE, bl) == 0 && memchr(r->url + bl, '/', r->url_len - bl) == NULL)
		t->listed++;
	return 0;
}

static int put(struct al_store *s, const char *url)
{
	uint8_t key[AL_KEY_LEN];
	uint64_t id;
	struct al_record rec = {0};
	int rc;

	al_store_key(url, strlen(url), key);
	if ((rc = al_fill_begin(s, key, &id)) != 0 || (rc = al_fill_append(s, id, 0, "0123456789abcdef", 16)) != 0)
		return rc;
	rec.status = 200;
	rec.obj_id = id;
	rec.body_len = 16;
	rec.url = url;
	rec.url_len = strlen(url);
	rec.hdrs = "ETag: \"x\"\r\n";
	rec.hdrs_len = strlen(rec.hdrs);
	return al_fill_commit(s, key, &rec);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct al_store *s;
	struct stat st;
	char err[256], url[300];
	int others = argc > 2 ? atoi(argv[2]) : 20000, objects = argc > 3 ? atoi(argv[3]) : 10, fresh;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [OTHERS [OBJECTS]]\n", argv[0]);
		return 2;
	}
	fresh = stat(argv[1], &st) != 0;
	if (al_store_open(argv[1], 1ULL << 30, 126, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (fresh) {
		al_store_batch_begin(s);
		for (int i = 0; i < others; i++) {
			snprintf(url, sizeof(url), "https://epr.elastic.co/package/p%d/1.%d.0/", i % 500, i);
			put(s, url);
		}
		for (int i = 0; i < objects; i++) {
			snprintf(url, sizeof(url), "%skb-product-doc-p%d-8.17.zip", BASE, i);
			put(s, url);
		}
		if (al_store_batch_end(s) != 0) {
			fprintf(stderr, "filling %s failed\n", argv[1]);
			return 1;
		}
	}
	for (int round = 0; round < 3; round++) {
		struct tally a = {0, 0}, b = {0, 0};
		double t0 = now_ms(), t1, t2;
		al_store_foreach(s, count, &a);
		t1 = now_ms();
		al_store_root_scan(s, BASE, sizeof(BASE) - 1, count, &b);
		t2 = now_ms();
		printf("whole store: %zu read, %zu listed, %.2f ms | root index: %zu read, %zu listed, %.3f ms\n", a.read,
		    a.listed, t1 - t0, b.read, b.listed, t2 - t1);
	}
	al_store_close(s);
	return 0;
}
