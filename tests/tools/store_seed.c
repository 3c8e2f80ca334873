/*
 * Many small entries in airlock's cache, quickly, for tests that need a big
 * cache (test_core_purge_slices: a purge scanning 20,000 records):
 *   store_seed DIR N PREFIX   store N entries, PREFIX0 ... PREFIX<N-1>, each
 *                             a 200 with a 16-byte body, written through
 *                             cache/store.h as a fill would, in one batch
 *                             (one commit); prints "seeded N".
 * Run it while no airlock has DIR open (airlock's next open sees another
 * writer's commit and rebuilds its indexes, as after an import by hand).
 */
#include "cache/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
	struct al_store *s;
	char err[256], url[4096];
	const char hdrs[] = "Content-Type: text/plain\r\nCache-Control: max-age=3600\r\n";
	long n;
	int rc;

	if (argc != 4 || (n = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: store_seed DIR N PREFIX\n");
		return 2;
	}
	if ((rc = al_store_open(argv[1], 256u << 20, 16, &s, err, sizeof(err))) != 0) {
		fprintf(stderr, "store_seed: %s\n", err);
		return 1;
	}
	if ((rc = al_store_batch_begin(s)) != 0)
		goto out;
	for (long i = 0; i < n && rc == 0; i++) {
		uint8_t key[AL_KEY_LEN];
		uint64_t id;
		char body[24];
		struct al_record rec = {0};
		int len = snprintf(url, sizeof(url), "%s%ld", argv[3], i);

		snprintf(body, sizeof(body), "%016ld", i);
		al_store_key(url, (size_t)len, key);
		rec.status = 200;
		rec.body_len = 16;
		rec.request_time = rec.response_time = rec.last_used = (int64_t)time(NULL);
		rec.url = url;
		rec.url_len = (size_t)len;
		rec.hdrs = hdrs;
		rec.hdrs_len = sizeof(hdrs) - 1;
		if ((rc = al_fill_begin(s, key, &id)) == 0 && (rc = al_fill_append(s, id, 0, body, 16)) == 0) {
			rec.obj_id = id;
			rc = al_fill_commit(s, key, &rec);
		}
	}
	if (al_store_batch_end(s) != 0 && rc == 0)
		rc = -EIO;
out:
	al_store_close(s);
	if (rc != 0) {
		fprintf(stderr, "store_seed: %s\n", strerror(-rc));
		return 1;
	}
	printf("seeded %ld\n", n);
	return 0;
}
