/* Range requests (RFC 9110 §14): one byte range, the form agents and browsers send. */
#ifndef AIRLOCK_POLICY_RANGE_H
#define AIRLOCK_POLICY_RANGE_H

#include <stddef.h>
#include <stdint.h>

enum al_range_result {
	AL_RANGE_NONE,          /* no usable Range: send the whole body (200) */
	AL_RANGE_OK,            /* send [first, last] (206) */
	AL_RANGE_UNSATISFIABLE, /* 416 */
};

/*
 * Parse a Range field value against a body of `size` bytes.  Multiple ranges
 * and other units are answered with the whole body, which RFC 9110 allows.
 */
enum al_range_result al_range_parse(const char *v, size_t vlen, uint64_t size,
    uint64_t *first, uint64_t *last);

#endif
