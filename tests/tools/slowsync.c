/*
 * A preload that makes the disk slow to flush: fdatasync, fsync and msync
 * sleep SLOWSYNC_MS milliseconds (from the environment) before doing their
 * work.  For tests that prove nothing waits for a durable commit on a
 * worker's event loop (test_core_slow_disk).  Never sanitized itself: a
 * preload goes before a sanitizer's runtime (the test tells ASan so).
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void slow(void)
{
	const char *v = getenv("SLOWSYNC_MS");
	long ms = v != NULL ? strtol(v, NULL, 10) : 0;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	if (ms > 0)
		nanosleep(&ts, NULL);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	slow();
	return real(fd);
}

int fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	slow();
	return real(fd);
}

int msync(void *addr, size_t len, int flags)
{
	static int (*real)(void *, size_t, int);

	if (real == NULL)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
	if (flags & MS_SYNC)
		slow();
	return real(addr, len, flags);
}
