/* airlock's own endpoints, under AL_RESERVED_PREFIX ("/_airlock/"). */
#ifndef AIRLOCK_PROXY_ADMIN_H
#define AIRLOCK_PROXY_ADMIN_H

#include <event2/buffer.h>
#include <stddef.h>

/*
 * Answer path (which starts with the reserved prefix) into body.
 * Returns the status; *ctype gets the content type.
 */
int admin_handle(const char *path, size_t len, struct evbuffer *body, const char **ctype);

#endif
