/* `airlock mirror --plan PLAN.yml` and `airlock plan`: see plan.c. */
#ifndef AIRLOCK_PROXY_PLAN_H
#define AIRLOCK_PROXY_PLAN_H

/* argv[0] is "mirror", then --plan PLAN [--config FILE].  A process exit code: 0 when every step did. */
int plan_mirror(int argc, char **argv);
/* argv[0] is "plan".  Prints the plan matching the cache; a process exit code. */
int plan_main(int argc, char **argv);

#endif
