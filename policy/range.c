#include "policy/range.h"

#include <string.h>

static int num(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	while (*p < end && **p >= '0' && **p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	if (*p == s)
		return -1;
	*out = v;
	return 0;
}

enum al_range_result al_range_parse(const char *v, size_t vlen, uint64_t size,
    uint64_t *first, uint64_t *last)
{
	const char *p = v, *end = v + vlen;
	uint64_t a, b;

	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (vlen < 6 || strncmp(v, "bytes=", 6) != 0)
		return AL_RANGE_NONE;
	p += 6;
	while (p < end && *p == ' ')
		p++;
	if (memchr(p, ',', end - p) != NULL)
		return AL_RANGE_NONE;
	if (p < end && *p == '-') {
		p++;
		if (num(&p, end, &b) || p != end)
			return AL_RANGE_NONE;
		if (b == 0 || size == 0)
			return AL_RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return AL_RANGE_OK;
	}
	if (num(&p, end, &a) || p >= end || *p != '-')
		return AL_RANGE_NONE;
	p++;
	if (p == end) {
		b = UINT64_MAX;
	} else if (num(&p, end, &b) || p != end || b < a) {
		return AL_RANGE_NONE;
	}
	if (a >= size)
		return AL_RANGE_UNSATISFIABLE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return AL_RANGE_OK;
}
