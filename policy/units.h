/* Sizes ("20GiB", "512KB", "100"), durations ("5s", "10m", "250ms"), and bytes as hex. */
#ifndef AIRLOCK_POLICY_UNITS_H
#define AIRLOCK_POLICY_UNITS_H
#include <stddef.h>
#include <stdint.h>

/* Both return 0 or -EINVAL; bare numbers are bytes and seconds. */
int al_parse_size(const char *s, uint64_t *out);
int al_parse_duration_ms(const char *s, int64_t *out);


/* n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void al_hex(const uint8_t *d, size_t n, char *out);
/* One hex digit's value (either case), or -1. */
int al_hex_digit(char ch);

/* 4000 -> "1 h 6 min": ages and durations for people. */
void al_human_age(int64_t seconds, char *buf, size_t len);

#endif
