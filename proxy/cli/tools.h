/* Cache tools on the command line: ls, purge, verify, status, export, import. */
#ifndef AIRLOCK_PROXY_TOOLS_H
#define AIRLOCK_PROXY_TOOLS_H

#include <stddef.h>
#include <time.h>

/* argv[0] is the command name. Returns a process exit code. */
int tools_main(int argc, char **argv);

struct al_reader;
/*
 * The cached Endpoint manifest at url: its manifest_version into mv and when
 * it was published (Last-Modified, else when airlock fetched it).  0, or
 * -ENOENT when not cached, -EINVAL when unreadable (mv says why).  Uses and
 * ends r's snapshot.
 */
int al_manifest_info(struct al_reader *r, const char *url, char *mv, size_t mvlen, time_t *published);

#endif
