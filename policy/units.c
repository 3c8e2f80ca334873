#include "policy/units.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit size_units[] = {
	{"", 1}, {"B", 1},
	{"K", 1000ULL}, {"KB", 1000ULL}, {"KiB", 1ULL << 10},
	{"M", 1000000ULL}, {"MB", 1000000ULL}, {"MiB", 1ULL << 20},
	{"G", 1000000000ULL}, {"GB", 1000000000ULL}, {"GiB", 1ULL << 30},
	{"T", 1000000000000ULL}, {"TB", 1000000000000ULL}, {"TiB", 1ULL << 40},
	{NULL, 0},
};

static const struct unit time_units[] = {
	{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
	{"d", 86400000}, {NULL, 0},
};

/* A decimal number followed by a unit from the table, nothing else. */
static int parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (const struct unit *u = units; u->name != NULL; u++) {
		if (strcmp(end, u->name) == 0) {
			double r = v * (double)u->mult;
			if (r > 9.0e18)
				return -EINVAL;
			*out = (uint64_t)r;
			return 0;
		}
	}
	return -EINVAL;
}

int al_parse_size(const char *s, uint64_t *out)
{
	return parse_with_units(s, size_units, out);
}

int al_parse_duration_ms(const char *s, int64_t *out)
{
	uint64_t v;
	int rc = parse_with_units(s, time_units, &v);

	if (rc == 0)
		*out = (int64_t)v;
	return rc;
}

int al_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

void al_hex(const uint8_t *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* 4000 -> "1 h 6 min" */
void al_human_age(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%lld s", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lld min", (long long)(s / 60));
	else if (s < 2 * 86400)
		snprintf(buf, len, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lld days", (long long)(s / 86400));
}
