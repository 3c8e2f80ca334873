/*
 * `airlock mirror artifacts|endpoint|packages`: fill the cache for a Stack
 * version on the connected side of an air gap.  The proxy runs in-process
 * on an ephemeral loopback port and every URL is requested through it, so
 * mirrored objects take the same path as any client's (validators kept,
 * .sha512 checked, no partial object stored); what was fetched is then
 * pinned so eviction never drops it.
 */
#ifndef AIRLOCK_PROXY_MIRROR_H
#define AIRLOCK_PROXY_MIRROR_H

/* argv[0] is "mirror". Returns a process exit code. */
int mirror_main(int argc, char **argv);

/* What the last mirror_main() run came to, for `mirror --plan`'s one summary (proxy/cli/plan.c). */
struct mirror_totals {
	int fetched, present, missing, failed;
	long long bytes;
};
extern struct mirror_totals mirror_last_totals;

#endif
