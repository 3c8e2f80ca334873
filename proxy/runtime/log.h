/* Operational log: level + subsystem, to stderr.  Thread-safe (one write(2) a line). */
#ifndef AIRLOCK_PROXY_LOG_H
#define AIRLOCK_PROXY_LOG_H

#include <stddef.h>

enum al_log_level { AL_LOG_ERROR, AL_LOG_WARN, AL_LOG_INFO, AL_LOG_DEBUG };

void al_log_set_level(const char *name);
int al_log_enabled(enum al_log_level lv);
void al_log(enum al_log_level lv, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define al_err(sub, ...)   al_log(AL_LOG_ERROR, sub, __VA_ARGS__)
#define al_warn(sub, ...)  al_log(AL_LOG_WARN, sub, __VA_ARGS__)
#define al_info(sub, ...)  al_log(AL_LOG_INFO, sub, __VA_ARGS__)
#define al_debug(sub, ...) do { if (al_log_enabled(AL_LOG_DEBUG)) al_log(AL_LOG_DEBUG, sub, __VA_ARGS__); } while (0)

/* Access log (ECS JSON lines): "-" is stdout, "off" or NULL none, else a file (appended). */
int al_access_open(const char *path);
/* SIGUSR1: reopen the file (logrotate moved it). */
void al_access_reopen(void);
int al_access_enabled(void);
void al_access_write(const char *line, size_t len);
void al_access_close(void);

struct evbuffer;
/* s as a JSON string into b: quoted, quotes, backslashes and control characters escaped (health and status JSON). */
void al_json_str(struct evbuffer *b, const char *s);

#endif
