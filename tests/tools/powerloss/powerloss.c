/*
 * powerloss.so: an LD_PRELOAD write logger for power-loss simulation
 * (in the spirit of ALICE / CrashMonkey, without kernel support).
 *
 *   POWERLOSS_DIR=<dir> POWERLOSS_LOG=<file> LD_PRELOAD=./powerloss.so prog ...
 *
 * Every file opened inside POWERLOSS_DIR is tracked.  Each write to a tracked
 * file (write, writev, pwrite, pwrite64, pwritev, pwritev2) is performed and
 * then appended to the log with its file, offset and bytes; fsync, fdatasync,
 * sync_file_range, syncfs and sync leave a SYNC_BEGIN record before the call
 * and a SYNC_END record after it returns; ftruncate, fallocate, msync, open
 * and close are recorded too.  A shared writable mmap of a tracked file is
 * recorded as MMAP_W (the replay refuses such logs: those writes are not seen).
 *
 * Writes and their log records are made under one mutex, so the log order is
 * the order in which writes completed, and a write logged before a
 * SYNC_BEGIN had returned before that sync was called.
 *
 * Record: 48-byte little-endian header, then `len` payload bytes (WRITE: the
 * data; OPEN: the file's name relative to POWERLOSS_DIR).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum {
	R_OPEN = 1, R_WRITE = 2, R_SYNC_BEGIN = 3, R_SYNC_END = 4, R_TRUNC = 5,
	R_CLOSE = 6, R_MSYNC = 7, R_FALLOC = 8, R_MMAP_W = 9
};
#define F_DURABLE 1 /* WRITE through an O_SYNC/O_DSYNC descriptor: durable when it returned */
#define ALL_FILES 0xffffffffu

struct rec {
	uint32_t magic;  /* "PLR1" */
	uint16_t type;
	uint16_t flags;
	uint32_t file;   /* file id: index of its OPEN record's name */
	uint32_t tid;
	uint64_t seq;
	uint64_t off;    /* WRITE: offset; TRUNC/FALLOC: length; SYNC_END: seq of its SYNC_BEGIN */
	uint64_t len;    /* payload bytes */
	uint64_t ns;     /* CLOCK_REALTIME */
};
_Static_assert(sizeof(struct rec) == 48, "record header");
#define MAGIC 0x31524c50u

#define MAXFD 65536
#define MAXFILES 256
static int fd_file[MAXFD];     /* file id + 1, 0: not tracked */
static int fd_sync[MAXFD];     /* opened O_SYNC/O_DSYNC */
static char *file_names[MAXFILES];
static int nfiles;
static char dir[PATH_MAX];
static size_t dirlen;
static int logfd = -1;
static uint64_t seq;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int (*r_open)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static int (*r_close)(int);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*r_syncfs)(int);
static void (*r_sync)(void);
static int (*r_msync)(void *, size_t, int);
static int (*r_ftruncate)(int, off_t);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_dup)(int);
static int (*r_dup2)(int, int);
static int (*r_dup3)(int, int, int);
static void *(*r_mmap)(void *, size_t, int, int, int, off_t);

#define RESOLVE(x) do { if (!r_##x) r_##x = dlsym(RTLD_NEXT, #x); } while (0)

static void resolve_all(void)
{
	RESOLVE(open); RESOLVE(openat); RESOLVE(close); RESOLVE(write); RESOLVE(writev);
	RESOLVE(pwrite); RESOLVE(pwritev); RESOLVE(pwritev2); RESOLVE(fsync); RESOLVE(fdatasync);
	RESOLVE(sync_file_range); RESOLVE(syncfs); RESOLVE(sync); RESOLVE(msync);
	RESOLVE(ftruncate); RESOLVE(fallocate); RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3); RESOLVE(mmap);
}

__attribute__((constructor)) static void init(void)
{
	const char *d = getenv("POWERLOSS_DIR"), *l = getenv("POWERLOSS_LOG");

	resolve_all();
	if (d == NULL || l == NULL)
		return;
	/* the directory may not exist yet: make it, as the program would */
	mkdir(d, 0750);
	if (realpath(d, dir) == NULL) {
		fprintf(stderr, "powerloss: POWERLOSS_DIR %s: %s\n", d, strerror(errno));
		return;
	}
	dirlen = strlen(dir);
	logfd = (int)syscall(SYS_openat, AT_FDCWD, l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		fprintf(stderr, "powerloss: POWERLOSS_LOG %s: %s\n", l, strerror(errno));
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Append one record (header + iov payload); the caller holds mu. */
static void log_rec(uint16_t type, uint16_t flags, uint32_t file, uint64_t off, const struct iovec *iov, int n, uint64_t len)
{
	struct iovec v[1 + IOV_MAX];
	struct rec h = {MAGIC, type, flags, file, (uint32_t)syscall(SYS_gettid), ++seq, off, len, now_ns()};
	int cnt = 0, saved = errno;
	uint64_t left = len;

	if (logfd < 0)
		return;
	v[cnt].iov_base = &h;
	v[cnt++].iov_len = sizeof(h);
	for (int i = 0; i < n && left > 0 && cnt < 1 + IOV_MAX; i++) {
		size_t l = iov[i].iov_len < left ? iov[i].iov_len : (size_t)left;
		if (l == 0)
			continue;
		v[cnt].iov_base = iov[i].iov_base;
		v[cnt++].iov_len = l;
		left -= l;
	}
	/* write it all, resuming after short writes */
	for (int i = 0; i < cnt;) {
		ssize_t w = syscall(SYS_writev, logfd, &v[i], cnt - i);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "powerloss: log write: %s\n", strerror(errno));
			abort();
		}
		while (i < cnt && (size_t)w >= v[i].iov_len)
			w -= (ssize_t)v[i++].iov_len;
		if (i < cnt) {
			v[i].iov_base = (char *)v[i].iov_base + w;
			v[i].iov_len -= (size_t)w;
		}
	}
	errno = saved;
}

static int tracked(int fd)
{
	return logfd >= 0 && fd >= 0 && fd < MAXFD && fd_file[fd] != 0;
}

/* After a successful open: is it a file inside dir?  Then give fd its file id. */
static void after_open(int fd, int flags)
{
	char link[64], path[PATH_MAX];
	ssize_t n;
	struct stat st;
	int id;

	if (logfd < 0 || fd < 0 || fd >= MAXFD)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return;
	path[n] = '\0';
	if ((size_t)n <= dirlen || strncmp(path, dir, dirlen) != 0 || path[dirlen] != '/')
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	pthread_mutex_lock(&mu);
	for (id = 0; id < nfiles && strcmp(file_names[id], path + dirlen + 1) != 0; id++)
		;
	if (id == nfiles && nfiles < MAXFILES)
		file_names[nfiles++] = strdup(path + dirlen + 1);
	if (id < nfiles) {
		struct iovec v = {path + dirlen + 1, strlen(path + dirlen + 1)};
		fd_file[fd] = id + 1;
		fd_sync[fd] = (flags & (O_SYNC | O_DSYNC)) != 0;
		log_rec(R_OPEN, (uint16_t)fd_sync[fd], (uint32_t)id, (uint64_t)st.st_size, &v, 1, v.iov_len);
	}
	pthread_mutex_unlock(&mu);
}

static int open_impl(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd;

	resolve_all();
	fd = dirfd == AT_FDCWD ? r_open(path, flags, mode) : r_openat(dirfd, path, flags, mode);
	if (fd >= 0)
		after_open(fd, flags);
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = mode_arg(flags, ap);
	va_end(ap);
	return open_impl(AT_FDCWD, path, flags, m);
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = mode_arg(flags, ap);
	va_end(ap);
	return open_impl(dirfd, path, flags, m);
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int __open_2(const char *path, int flags) { return open_impl(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return open_impl(AT_FDCWD, path, flags, 0); }
int __openat_2(int d, const char *path, int flags) { return open_impl(d, path, flags, 0); }
int __openat64_2(int d, const char *path, int flags) { return open_impl(d, path, flags, 0); }
int creat(const char *path, mode_t mode) { return open_impl(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

int close(int fd)
{
	resolve_all();
	if (tracked(fd)) {
		pthread_mutex_lock(&mu);
		log_rec(R_CLOSE, 0, (uint32_t)(fd_file[fd] - 1), 0, NULL, 0, 0);
		fd_file[fd] = 0;
		pthread_mutex_unlock(&mu);
	}
	return r_close(fd);
}

static void dup_track(int from, int to)
{
	if (tracked(from) && to >= 0 && to < MAXFD) {
		fd_file[to] = fd_file[from];
		fd_sync[to] = fd_sync[from];
	} else if (to >= 0 && to < MAXFD) {
		fd_file[to] = 0;
	}
}
int dup(int fd) { int r; resolve_all(); r = r_dup(fd); if (r >= 0) dup_track(fd, r); return r; }
int dup2(int fd, int to) { int r; resolve_all(); r = r_dup2(fd, to); if (r >= 0) dup_track(fd, r); return r; }
int dup3(int fd, int to, int fl) { int r; resolve_all(); r = r_dup3(fd, to, fl); if (r >= 0) dup_track(fd, r); return r; }

/* The write itself and its record, under mu. off < 0: the descriptor's position. */
static ssize_t do_write(int fd, const struct iovec *iov, int n, off_t off, int kind, int flags2)
{
	ssize_t w;
	uint64_t at;

	pthread_mutex_lock(&mu);
	if (off < 0) {
		int fl = fcntl(fd, F_GETFL);
		struct stat st;
		if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
			at = (uint64_t)st.st_size;
		else
			at = (uint64_t)lseek(fd, 0, SEEK_CUR);
	} else {
		at = (uint64_t)off;
	}
	switch (kind) {
	case 0: w = r_write(fd, iov[0].iov_base, iov[0].iov_len); break;
	case 1: w = r_writev(fd, iov, n); break;
	case 2: w = r_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off); break;
	case 3: w = r_pwritev(fd, iov, n, off); break;
	default: w = r_pwritev2(fd, iov, n, off, flags2); break;
	}
	if (w > 0) {
		int durable = fd_sync[fd] || (kind == 4 && (flags2 & (RWF_DSYNC | RWF_SYNC)));
		log_rec(R_WRITE, durable ? F_DURABLE : 0, (uint32_t)(fd_file[fd] - 1), at, iov, n, (uint64_t)w);
	}
	pthread_mutex_unlock(&mu);
	return w;
}

ssize_t write(int fd, const void *buf, size_t count)
{
	struct iovec v = {(void *)buf, count};

	resolve_all();
	if (!tracked(fd))
		return r_write(fd, buf, count);
	return do_write(fd, &v, 1, -1, 0, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	resolve_all();
	if (!tracked(fd))
		return r_writev(fd, iov, n);
	return do_write(fd, iov, n, -1, 1, 0);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
	struct iovec v = {(void *)buf, count};

	resolve_all();
	if (!tracked(fd) || off < 0)
		return r_pwrite(fd, buf, count, off);
	return do_write(fd, &v, 1, off, 2, 0);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) __attribute__((alias("pwrite")));

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	resolve_all();
	if (!tracked(fd) || off < 0)
		return r_pwritev(fd, iov, n, off);
	return do_write(fd, iov, n, off, 3, 0);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off) __attribute__((alias("pwritev")));

ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	resolve_all();
	if (!tracked(fd) || off < 0)
		return r_pwritev2(fd, iov, n, off, flags);
	return do_write(fd, iov, n, off, 4, flags);
}
ssize_t pwritev64v2(int fd, const struct iovec *iov, int n, off_t off, int flags) __attribute__((alias("pwritev2")));

/* SYNC_BEGIN before the call, SYNC_END (naming the begin) after a successful one. */
static uint64_t sync_begin(uint32_t file, uint16_t how)
{
	uint64_t s;

	pthread_mutex_lock(&mu);
	log_rec(R_SYNC_BEGIN, how, file, 0, NULL, 0, 0);
	s = seq;
	pthread_mutex_unlock(&mu);
	return s;
}

static void sync_end(uint32_t file, uint16_t how, uint64_t begin, int rc)
{
	if (rc != 0)
		return;
	pthread_mutex_lock(&mu);
	log_rec(R_SYNC_END, how, file, begin, NULL, 0, 0);
	pthread_mutex_unlock(&mu);
}

int fsync(int fd)
{
	uint64_t b;
	int rc;

	resolve_all();
	if (!tracked(fd))
		return r_fsync(fd);
	b = sync_begin((uint32_t)(fd_file[fd] - 1), 1);
	rc = r_fsync(fd);
	sync_end((uint32_t)(fd_file[fd] - 1), 1, b, rc);
	return rc;
}

int fdatasync(int fd)
{
	uint64_t b;
	int rc;

	resolve_all();
	if (!tracked(fd))
		return r_fdatasync(fd);
	b = sync_begin((uint32_t)(fd_file[fd] - 1), 2);
	rc = r_fdatasync(fd);
	sync_end((uint32_t)(fd_file[fd] - 1), 2, b, rc);
	return rc;
}

/* sync_file_range is no durability barrier (no flush of the disk cache): recorded, not a sync. */
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	resolve_all();
	if (tracked(fd)) {
		pthread_mutex_lock(&mu);
		log_rec(R_MSYNC, 3, (uint32_t)(fd_file[fd] - 1), (uint64_t)off, NULL, 0, 0);
		pthread_mutex_unlock(&mu);
	}
	return r_sync_file_range(fd, off, n, flags);
}

int syncfs(int fd)
{
	uint64_t b;
	int rc;

	resolve_all();
	if (logfd < 0)
		return r_syncfs(fd);
	b = sync_begin(ALL_FILES, 4);
	rc = r_syncfs(fd);
	sync_end(ALL_FILES, 4, b, rc);
	return rc;
}

void sync(void)
{
	uint64_t b;

	resolve_all();
	if (logfd < 0) {
		r_sync();
		return;
	}
	b = sync_begin(ALL_FILES, 5);
	r_sync();
	sync_end(ALL_FILES, 5, b, 0);
}

/* msync of a shared writable mapping of a tracked file would be a sync; such mappings are refused by the replay. */
int msync(void *addr, size_t len, int flags)
{
	resolve_all();
	if (logfd >= 0) {
		pthread_mutex_lock(&mu);
		log_rec(R_MSYNC, (uint16_t)flags, ALL_FILES, (uint64_t)(uintptr_t)addr, NULL, 0, 0);
		pthread_mutex_unlock(&mu);
	}
	return r_msync(addr, len, flags);
}

int ftruncate(int fd, off_t len)
{
	int rc;

	resolve_all();
	if (!tracked(fd))
		return r_ftruncate(fd, len);
	pthread_mutex_lock(&mu);
	rc = r_ftruncate(fd, len);
	if (rc == 0)
		log_rec(R_TRUNC, 0, (uint32_t)(fd_file[fd] - 1), (uint64_t)len, NULL, 0, 0);
	pthread_mutex_unlock(&mu);
	return rc;
}
int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int fallocate(int fd, int mode, off_t off, off_t len)
{
	int rc;

	resolve_all();
	if (!tracked(fd))
		return r_fallocate(fd, mode, off, len);
	pthread_mutex_lock(&mu);
	rc = r_fallocate(fd, mode, off, len);
	if (rc == 0)
		log_rec(R_FALLOC, (uint16_t)mode, (uint32_t)(fd_file[fd] - 1), (uint64_t)(off + len), NULL, 0, 0);
	pthread_mutex_unlock(&mu);
	return rc;
}
int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	resolve_all();
	p = r_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && tracked(fd) && (prot & PROT_WRITE) && (flags & MAP_SHARED)) {
		pthread_mutex_lock(&mu);
		log_rec(R_MMAP_W, 0, (uint32_t)(fd_file[fd] - 1), (uint64_t)off, NULL, 0, 0);
		pthread_mutex_unlock(&mu);
	}
	return p;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));
