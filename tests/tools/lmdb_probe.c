/*
 * Another process on airlock's cache, for tests:
 *   lmdb_probe DIR hold SECONDS   take the write lock, print "held", keep it
 *                                 for SECONDS (as a long eviction or a bundle
 *                                 import would), let it go;
 *   lmdb_probe DIR count DB       print how many entries the named database
 *                                 holds (meta, body, pending, info, regidx);
 *   lmdb_probe DIR drop DB        delete the named database from the file;
 *   lmdb_probe DIR put DB KEY VAL put KEY -> VAL (both in hex) into it;
 *   lmdb_probe DIR del DB KEY     delete KEY (hex) from it, as a writer that
 *                                 knows nothing of airlock's index would;
 *   lmdb_probe DIR get DB KEY     print KEY's (hex) value in hex, or "absent".
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t unhex(const char *h, unsigned char *out, size_t cap)
{
	size_t n = 0;

	for (; h[0] && h[1] && n < cap; h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		out[n++] = (unsigned char)v;
	}
	return n;
}

/* drop and put: one write transaction on DB. */
static int write_op(const char *dir, char **argv, int argc)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	static unsigned char k[512], v[1 << 20];
	int rc;

	if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
	    (rc = mdb_env_open(env, dir, MDB_NOTLS, 0640)) != 0 || (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, argv[3], 0, &dbi)) != 0)
		goto out;
	if (strcmp(argv[2], "drop") == 0) {
		rc = mdb_drop(txn, dbi, 1);
	} else if (strcmp(argv[2], "del") == 0 && argc == 5) {
		MDB_val key = {unhex(argv[4], k, sizeof(k)), k};
		rc = mdb_del(txn, dbi, &key, NULL);
	} else if (argc == 6) {
		MDB_val key = {unhex(argv[4], k, sizeof(k)), k}, val = {unhex(argv[5], v, sizeof(v)), v};
		rc = mdb_put(txn, dbi, &key, &val, 0);
	} else {
		rc = EINVAL;
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
out:
	if (rc != 0)
		fprintf(stderr, "lmdb_probe: %s\n", mdb_strerror(rc));
	mdb_env_close(env);
	return rc != 0;
}

/* get: one read-only transaction. */
static int get_op(const char *dir, const char *db, const char *keyhex)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	static unsigned char k[512];
	MDB_val key = {unhex(keyhex, k, sizeof(k)), k}, val;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
	    (rc = mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0640)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0 || (rc = mdb_dbi_open(txn, db, 0, &dbi)) != 0) {
		fprintf(stderr, "lmdb_probe: %s\n", mdb_strerror(rc));
		return 1;
	}
	if ((rc = mdb_get(txn, dbi, &key, &val)) == 0) {
		for (size_t i = 0; i < val.mv_size; i++)
			printf("%02x", ((unsigned char *)val.mv_data)[i]);
		printf("\n");
	} else if (rc == MDB_NOTFOUND) {
		printf("absent\n");
		rc = 0;
	} else {
		fprintf(stderr, "lmdb_probe: %s\n", mdb_strerror(rc));
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc != 0;
}

int main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;
	int hold, rc;

	if (argc >= 4 && (strcmp(argv[2], "drop") == 0 || strcmp(argv[2], "put") == 0 || strcmp(argv[2], "del") == 0))
		return write_op(argv[1], argv, argc);
	if (argc == 5 && strcmp(argv[2], "get") == 0)
		return get_op(argv[1], argv[3], argv[4]);
	if (argc != 4 || (strcmp(argv[2], "hold") != 0 && strcmp(argv[2], "count") != 0)) {
		fprintf(stderr, "usage: lmdb_probe DIR hold SECONDS | count DB | drop DB | put DB KEYHEX VALHEX | del DB KEYHEX"
		    " | get DB KEYHEX\n");
		return 2;
	}
	hold = strcmp(argv[2], "hold") == 0;
	if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
	    (rc = mdb_env_open(env, argv[1], MDB_NOSYNC | MDB_NOTLS, 0640)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, hold ? 0 : MDB_RDONLY, &txn)) != 0) {
		fprintf(stderr, "lmdb_probe: %s\n", mdb_strerror(rc));
		return 1;
	}
	if (hold) {
		printf("held\n");
		fflush(stdout);
		usleep((useconds_t)(atof(argv[3]) * 1e6));
	} else {
		if ((rc = mdb_dbi_open(txn, argv[3], 0, &dbi)) != 0 || (rc = mdb_stat(txn, dbi, &st)) != 0) {
			fprintf(stderr, "lmdb_probe: %s: %s\n", argv[3], mdb_strerror(rc));
			return 1;
		}
		printf("%zu\n", st.ms_entries);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return 0;
}
