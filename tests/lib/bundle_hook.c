/*
 * A test hook, LD_PRELOAD'ed into airlock by the import tests (never linked
 * into airlock): it watches the reads of one file (the bundle) through
 * fread() and, when a read is about to cover byte AL_HOOK_AT for the
 * AL_HOOK_PASS-th time, acts at that exact moment:
 *
 *   AL_HOOK_ACTION=swap:PATH   overwrite the bundle in place with PATH's bytes
 *                              (what an attacker with write access to the media
 *                              does between two reads), then let the read go on
 *   AL_HOOK_ACTION=kill        SIGKILL the process (an import killed mid-way)
 *   AL_HOOK_ACTION=stop        SIGSTOP the process (the test does something, then SIGCONTs it)
 *   AL_HOOK_ACTION=commits:N   let N more LMDB write transactions commit after
 *                              the trigger, then SIGKILL before the next one
 *   AL_HOOK_ACTION=count       nothing: only the log below (a first run tells
 *                              a test how many times a byte is read)
 *
 * Every time byte AL_HOOK_AT is read, a line "cross N" is appended to
 * AL_HOOK_LOG, so a test can say how many times the file was read through
 * that byte, and "commit N" before each commit it lets through after the
 * trigger.  Deterministic: the trigger is a byte offset, not a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct MDB_txn MDB_txn;

static int crossings, armed = -1, commits;
static dev_t dev;
static ino_t ino;
static int have_id;

static void note(const char *what, int n)
{
	const char *log = getenv("AL_HOOK_LOG");
	FILE *f;

	if (log == NULL || (f = fopen(log, "a")) == NULL)
		return;
	fprintf(f, "%s %d\n", what, n);
	fclose(f);
}

static int is_bundle(FILE *f)
{
	const char *path = getenv("AL_HOOK_FILE");
	struct stat st;
	int fd = fileno(f);

	if (path == NULL || fd < 0)
		return 0;
	if (!have_id) {
		if (stat(path, &st) != 0)
			return 0;
		dev = st.st_dev;
		ino = st.st_ino;
		have_id = 1;
	}
	return fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

static void swap_in(const char *src)
{
	int in = open(src, O_RDONLY), out = open(getenv("AL_HOOK_FILE"), O_WRONLY);
	char buf[65536];
	ssize_t n;

	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	note("swapped", crossings);
}

size_t fread(void *p, size_t size, size_t n, FILE *f)
{
	static size_t (*real)(void *, size_t, size_t, FILE *);
	const char *at = getenv("AL_HOOK_AT"), *act = getenv("AL_HOOK_ACTION");

	if (real == NULL)
		real = (size_t (*)(void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fread");
	if (at != NULL && act != NULL && size * n > 0 && is_bundle(f)) {
		long long pos = (long long)ftello(f), x = atoll(at);
		if (pos >= 0 && pos <= x && x < pos + (long long)(size * n)) {
			int pass = getenv("AL_HOOK_PASS") ? atoi(getenv("AL_HOOK_PASS")) : 1;
			note("cross", ++crossings);
			if (crossings == pass) {
				if (!strncmp(act, "swap:", 5))
					swap_in(act + 5);
				else if (!strcmp(act, "kill"))
					kill(getpid(), SIGKILL);
				else if (!strcmp(act, "stop"))
					kill(getpid(), SIGSTOP);
				else if (!strncmp(act, "commits:", 8))
					armed = atoi(act + 8);
			}
		}
	}
	return real(p, size, n, f);
}

int mdb_txn_commit(MDB_txn *txn)
{
	static int (*real)(MDB_txn *);

	if (real == NULL)
		real = (int (*)(MDB_txn *))dlsym(RTLD_NEXT, "mdb_txn_commit");
	if (armed >= 0) {
		if (commits == armed)
			kill(getpid(), SIGKILL);
		note("commit", ++commits);
	}
	return real(txn);
}
