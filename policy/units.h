/* Sizes ("20GiB", "512KB", "100") and durations ("5s", "10m", "250ms"). */
#ifndef AIRLOCK_POLICY_UNITS_H
#define AIRLOCK_POLICY_UNITS_H
#include <stdint.h>

/* Both return 0 or -EINVAL; bare numbers are bytes and seconds. */
int al_parse_size(const char *s, uint64_t *out);
int al_parse_duration_ms(const char *s, int64_t *out);

#endif
