#include "cache/record.h"

#include <errno.h>
#include <string.h>

#define REC_MAGIC 0x314b4c41u /* "ALK1" */
#define REC_FIXED (4 + 4 + 4 + 8 + 8 + 8 * 4 + 32 + 4 + 4)

static void put32(uint8_t **p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t **p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t **p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)(*p)[i] << (8 * i);
	*p += 4;
	return v;
}

static uint64_t get64(const uint8_t **p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)(*p)[i] << (8 * i);
	*p += 8;
	return v;
}

size_t al_record_size(const struct al_record *r)
{
	return REC_FIXED + r->url_len + r->hdrs_len;
}

void al_record_encode(const struct al_record *r, uint8_t *buf)
{
	uint8_t *p = buf;

	put32(&p, REC_MAGIC);
	put32(&p, r->flags);
	put32(&p, (uint32_t)r->status);
	put64(&p, r->obj_id);
	put64(&p, r->body_len);
	put64(&p, (uint64_t)r->request_time);
	put64(&p, (uint64_t)r->response_time);
	put64(&p, (uint64_t)r->age_value);
	put64(&p, (uint64_t)r->last_used);
	memcpy(p, r->sha256, 32);
	p += 32;
	put32(&p, (uint32_t)r->url_len);
	put32(&p, (uint32_t)r->hdrs_len);
	memcpy(p, r->url, r->url_len);
	p += r->url_len;
	memcpy(p, r->hdrs, r->hdrs_len);
}

int al_record_decode(const uint8_t *buf, size_t len, struct al_record *r)
{
	const uint8_t *p = buf;
	uint32_t ul, hl;

	if (len < REC_FIXED || get32(&p) != REC_MAGIC)
		return -EBADMSG;
	r->flags = get32(&p);
	r->status = (int)get32(&p);
	r->obj_id = get64(&p);
	r->body_len = get64(&p);
	r->request_time = (int64_t)get64(&p);
	r->response_time = (int64_t)get64(&p);
	r->age_value = (int64_t)get64(&p);
	r->last_used = (int64_t)get64(&p);
	memcpy(r->sha256, p, 32);
	p += 32;
	ul = get32(&p);
	hl = get32(&p);
	if (r->status < 100 || r->status > 999 || (uint64_t)ul + hl != len - REC_FIXED)
		return -EBADMSG;
	r->url = (const char *)p;
	r->url_len = ul;
	r->hdrs = (const char *)p + ul;
	r->hdrs_len = hl;
	return 0;
}

void al_record_set_last_used(uint8_t *buf, int64_t t)
{
	uint8_t *p = buf + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 8; /* magic..age_value */

	put64(&p, (uint64_t)t);
}
