#include "policy/semver.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parse a version that may end in x, X or * wildcards; *parts counts the numbers given. */
static int parse_partial(const char **sp, struct al_semver *v, int *parts, int *wild)
{
	const char *s = *sp;
	long *f[3] = {&v->major, &v->minor, &v->patch};

	memset(v, 0, sizeof(*v));
	*parts = 0;
	*wild = 0;
	if (*s == 'v' || *s == 'V')
		s++;
	for (int i = 0; i < 3; i++) {
		if (*s == 'x' || *s == 'X' || *s == '*') {
			*wild = 1;
			s++;
		} else if (isdigit((unsigned char)*s)) {
			char *end;
			*f[i] = strtol(s, &end, 10);
			if (*f[i] > 999999999 || end - s > 9)
				return -EINVAL; /* not a version; and range bounds add 1 to these */
			s = end;
			(*parts)++;
		} else {
			break;
		}
		if (*s != '.')
			break;
		s++;
	}
	if (*parts == 0 && !*wild)
		return -EINVAL;
	if (*s == '-') {
		size_t n = 0;
		s++;
		while (*s && (isalnum((unsigned char)*s) || *s == '.' || *s == '-') && n < sizeof(v->pre) - 1)
			v->pre[n++] = *s++;
		v->pre[n] = '\0';
	}
	if (*s == '+')
		while (*s && !isspace((unsigned char)*s) && *s != ',' && *s != '|')
			s++;
	*sp = s;
	return 0;
}

int al_semver_parse(const char *s, struct al_semver *v)
{
	int parts, wild;

	while (isspace((unsigned char)*s))
		s++;
	if (parse_partial(&s, v, &parts, &wild) != 0 || wild)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0' ? 0 : -EINVAL;
}

/* Prerelease identifiers compare numerically when both are numbers (semver §11). */
static int cmp_pre(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a && !*b ? 0 : (!*a ? 1 : -1);
	while (*a && *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		int na = 1, nb = 1, c;
		for (size_t i = 0; i < la; i++)
			na &= isdigit((unsigned char)a[i]) != 0;
		for (size_t i = 0; i < lb; i++)
			nb &= isdigit((unsigned char)b[i]) != 0;
		if (na && nb) {
			long x = strtol(a, NULL, 10), y = strtol(b, NULL, 10);
			c = x < y ? -1 : x > y;
		} else if (na != nb) {
			c = na ? -1 : 1;
		} else {
			c = strncmp(a, b, la < lb ? la : lb);
			if (c == 0)
				c = la < lb ? -1 : la > lb;
		}
		if (c)
			return c;
		a += la + (a[la] == '.');
		b += lb + (b[lb] == '.');
	}
	return *a ? 1 : *b ? -1 : 0;
}

int al_semver_cmp(const struct al_semver *a, const struct al_semver *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return cmp_pre(a->pre, b->pre);
}

/* One comparison: op and a (possibly partial) version. */
static int check(const char *op, const struct al_semver *c, int parts, int wild, const struct al_semver *v)
{
	struct al_semver lo = *c, hi = *c;
	int r;

	memset(hi.pre, 0, sizeof(hi.pre));
	if (!strcmp(op, "^")) {
		/* ^1.2.3 := >=1.2.3 <2.0.0; ^0.2.3 := >=0.2.3 <0.3.0 */
		if (c->major > 0 || parts < 2)
			hi.major++, hi.minor = hi.patch = 0;
		else if (c->minor > 0 || parts < 3)
			hi.minor++, hi.patch = 0;
		else
			hi.patch++;
		return al_semver_cmp(v, &lo) >= 0 && al_semver_cmp(v, &hi) < 0;
	}
	if (!strcmp(op, "~")) {
		/* ~1.2.3 := >=1.2.3 <1.3.0; ~1 := >=1.0.0 <2.0.0 */
		if (parts < 2)
			hi.major++, hi.minor = hi.patch = 0;
		else
			hi.minor++, hi.patch = 0;
		return al_semver_cmp(v, &lo) >= 0 && al_semver_cmp(v, &hi) < 0;
	}
	if ((!strcmp(op, "=") || !*op) && (wild || parts < 3)) {
		/* 8.x, 8.13, 8.13.x: a range */
		if (parts == 0)
			return 1;
		if (parts == 1)
			hi.major++, hi.minor = hi.patch = 0;
		else
			hi.minor++, hi.patch = 0;
		return al_semver_cmp(v, &lo) >= 0 && al_semver_cmp(v, &hi) < 0;
	}
	r = al_semver_cmp(v, c);
	if (!strcmp(op, "=") || !*op)
		return r == 0;
	if (!strcmp(op, "!="))
		return r != 0;
	if (!strcmp(op, ">="))
		return r >= 0;
	if (!strcmp(op, "<="))
		return r <= 0;
	if (!strcmp(op, ">"))
		return r > 0;
	if (!strcmp(op, "<"))
		return r < 0;
	return -EINVAL;
}

int al_semver_satisfies(const char *constraint, const struct al_semver *v)
{
	const char *s = constraint;
	int any_group = 0;

	while (*s) {
		/*
		 * One OR group: AND of comparisons up to "||".  Masterminds/semver v3
		 * Constraints.Check (the version package-registry pins, v3.5.0): a
		 * prerelease version satisfies a group only when some comparison of
		 * that group names a prerelease itself (containsPre); otherwise every
		 * operator refuses it ("8.14.0-SNAPSHOT" is not "^8.0.0").
		 */
		int ok = 1, n = 0, group_pre = 0;
		for (;;) {
			char op[3] = "";
			struct al_semver c;
			int parts, wild, r;
			while (isspace((unsigned char)*s) || *s == ',')
				s++;
			if (*s == '\0' || (s[0] == '|' && s[1] == '|'))
				break;
			if (*s == '^' || *s == '~' || *s == '=')
				op[0] = *s++;
			else if (*s == '>' || *s == '<' || *s == '!') {
				op[0] = *s++;
				if (*s == '=')
					op[1] = *s++;
			}
			if (op[0] == '~' && *s == '>')
				s++; /* ~> is ~ */
			while (isspace((unsigned char)*s))
				s++;
			if (parse_partial(&s, &c, &parts, &wild) != 0)
				return -EINVAL;
			r = check(op, &c, parts, wild, v);
			if (r < 0)
				return r;
			ok &= r;
			group_pre |= c.pre[0] != '\0';
			n++;
		}
		if (n == 0)
			return -EINVAL;
		if (v->pre[0] != '\0' && !group_pre)
			ok = 0;
		any_group = 1;
		if (ok)
			return 1;
		if (s[0] == '|' && s[1] == '|')
			s += 2;
	}
	return any_group ? 0 : -EINVAL;
}
