/* Cache tools on the command line: ls, purge, verify, status, export, import. */
#ifndef AIRLOCK_PROXY_TOOLS_H
#define AIRLOCK_PROXY_TOOLS_H

#include <stddef.h>
#include <time.h>

/* argv[0] is the command name. Returns a process exit code. */
int tools_main(int argc, char **argv);

#endif
