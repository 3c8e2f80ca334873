/*
 * Another process on airlock's cache, for tests:
 *   lmdb_probe DIR hold SECONDS   take the write lock, print "held", keep it
 *                                 for SECONDS (as a long eviction or a bundle
 *                                 import would), let it go;
 *   lmdb_probe DIR count DB       print how many entries the named database
 *                                 holds (meta, body, pending, info).
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;
	int hold, rc;

	if (argc != 4 || (strcmp(argv[2], "hold") != 0 && strcmp(argv[2], "count") != 0)) {
		fprintf(stderr, "usage: lmdb_probe DIR hold SECONDS | lmdb_probe DIR count DB\n");
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
