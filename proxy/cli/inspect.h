/* airlock inspect: a bundle's listing and facts, verified, without a cache. */
#ifndef AIRLOCK_PROXY_INSPECT_H
#define AIRLOCK_PROXY_INSPECT_H

/* argv[0] is "inspect". Returns a process exit code. */
int inspect_main(int argc, char **argv);

#endif
