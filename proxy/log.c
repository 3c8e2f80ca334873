#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
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
