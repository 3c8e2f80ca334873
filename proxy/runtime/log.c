#include "proxy/runtime/log.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static enum al_log_level level = AL_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void al_log_set_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (name != NULL && strcmp(name, names[i]) == 0)
			level = (enum al_log_level)i;
}

int al_log_enabled(enum al_log_level lv)
{
	return lv <= level;
}

void al_log(enum al_log_level lv, const char *subsys, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (lv > level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (int)(tv.tv_usec / 1000), names[lv], subsys);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, line, n) < 0)
		return;
}

/* The access log: one write(2) a line with O_APPEND, so lines never interleave. */
static atomic_int access_fd = -1;
static char *access_path;
static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;

int al_access_open(const char *path)
{
	int fd;

	if (path == NULL || strcmp(path, "off") == 0)
		return 0;
	if (strcmp(path, "-") == 0) {
		atomic_store(&access_fd, 1);
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	free(access_path);
	access_path = strdup(path);
	atomic_store(&access_fd, fd);
	return 0;
}

void al_access_reopen(void)
{
	int fd, old;

	if (access_path == NULL)
		return;
	pthread_mutex_lock(&access_mu);
	fd = open(access_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd >= 0) {
		old = atomic_exchange(&access_fd, fd);
		if (old > 2)
			close(old);
		al_info("log", "reopened the access log %s", access_path);
	} else {
		al_err("log", "cannot reopen the access log %s: %s", access_path, strerror(errno));
	}
	pthread_mutex_unlock(&access_mu);
}

int al_access_enabled(void)
{
	return atomic_load(&access_fd) >= 0;
}

void al_access_write(const char *line, size_t len)
{
	int fd;

	pthread_mutex_lock(&access_mu);
	fd = atomic_load(&access_fd);
	if (fd >= 0 && write(fd, line, len) < 0)
		fd = -1;
	pthread_mutex_unlock(&access_mu);
}

void al_access_close(void)
{
	int old = atomic_exchange(&access_fd, -1);

	if (old > 2)
		close(old);
	free(access_path);
	access_path = NULL;
}

void al_json_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add_printf(b, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			evbuffer_add_printf(b, "\\u%04x", (unsigned char)*s);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}
