/*
 * Semantic versions and the constraint forms Elastic's package registry
 * accepts in conditions.kibana.version and conditions.agent.version
 * (Masterminds/semver syntax): "^8.13.0 || ^9.0.0", ">=7.16.0 <8.0.0",
 * "~8.12.1", "8.x", "=8.13.4", ">8.1", "*", with commas or spaces for AND.
 */
#ifndef AIRLOCK_POLICY_SEMVER_H
#define AIRLOCK_POLICY_SEMVER_H

struct al_semver {
	long major, minor, patch;
	char pre[64];              /* prerelease tag without '-', "" if none */
};

/* "8.13.4", "v8.13", "1.0.0-beta1+build"; missing parts are 0.  0 or -EINVAL. */
int al_semver_parse(const char *s, struct al_semver *v);
/* <0, 0, >0 like strcmp; a prerelease sorts before its release. */
int al_semver_cmp(const struct al_semver *a, const struct al_semver *b);
/* Does v satisfy the constraint?  1, 0, or -EINVAL for a constraint it cannot read. */
int al_semver_satisfies(const char *constraint, const struct al_semver *v);

#endif
