/*
 * Hot bodies in append-only memory files; see hot.h for why it is safe to
 * hand their pages to sendfile.
 */
#include "proxy/front/hot.h"
#include "proxy/runtime/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HOT_SLOTS 4096              /* direct-mapped by object id: a collision replaces */
#define HOT_ALIGN 4096              /* bodies start on a page: fewer fragments per send */

struct hot_slot {
	uint64_t obj_id, len, off;
	uint64_t seq;                    /* generation the bytes are in; 0: empty */
	uint8_t sha256[32];
};

struct al_hot {
	int fd[2];                       /* generation seq lives in fd[seq & 1] */
	uint64_t used[2];
	uint64_t seq;                    /* the current generation, from 1 */
	uint64_t cap, max_body;
	struct al_counters *stats;
	struct hot_slot slot[HOT_SLOTS];
};

int al_hot_new(uint64_t cap, struct al_counters *stats, struct al_hot **out)
{
	struct al_hot *h = calloc(1, sizeof(*h));
	int rc;

	if (h == NULL)
		return -ENOMEM;
	h->fd[0] = memfd_create("airlock-hot", MFD_CLOEXEC);
	h->fd[1] = memfd_create("airlock-hot", MFD_CLOEXEC);
	if (h->fd[0] < 0 || h->fd[1] < 0) {
		rc = -errno;
		goto err;
	}
	h->seq = 1;
	h->cap = cap;
	h->stats = stats;
	/* a body over a quarter of a generation would retire it too often to be worth the copy */
	h->max_body = cap / 4 < 1024 * 1024 ? cap / 4 : 1024 * 1024;
	*out = h;
	return 0;
err:
	if (h->fd[0] >= 0)
		close(h->fd[0]);
	if (h->fd[1] >= 0)
		close(h->fd[1]);
	free(h);
	return rc;
}

void al_hot_free(struct al_hot *h)
{
	if (h == NULL)
		return;
	close(h->fd[0]);
	close(h->fd[1]);
	free(h);
}

uint64_t al_hot_max_body(const struct al_hot *h)
{
	return h->max_body;
}

static void set_resident(struct al_hot *h)
{
	atomic_store_explicit(&h->stats->hot_bytes, h->used[0] + h->used[1], memory_order_relaxed);
}

/*
 * Start the next generation in the older file: truncated whole, so its pages
 * leave the file untouched and any still queued in a socket keep their bytes.
 */
static int rotate(struct al_hot *h)
{
	int i = (int)((h->seq + 1) & 1);

	if (ftruncate(h->fd[i], 0) != 0)
		return -errno;
	h->used[i] = 0;
	h->seq++;
	al_count(&h->stats->hot_rotations, 1);
	set_resident(h);
	return 0;
}

/*
 * Append rec's body to the current generation at its page-aligned end.  The
 * space is taken before the copy: a copy that fails halfway leaves bytes no
 * one was sent, and the next body goes after them, so no offset is written
 * twice in a generation's life.
 */
static int admit(struct al_hot *h, struct al_reader *rd, const struct al_record *rec, uint64_t *at)
{
	uint64_t need = (rec->body_len + HOT_ALIGN - 1) / HOT_ALIGN * HOT_ALIGN, pos = 0, start;
	int i, rc;

	if (h->used[h->seq & 1] + need > h->cap && (rc = rotate(h)) != 0)
		return rc;
	i = (int)(h->seq & 1);
	*at = start = h->used[i];
	h->used[i] += need;
	set_resident(h);
	while (pos < rec->body_len) {
		const void *p;
		size_t n;
		ssize_t w;

		if ((rc = al_body_at(rd, rec->obj_id, pos, &p, &n)) != 0)
			return rc;
		if (n > rec->body_len - pos)
			n = (size_t)(rec->body_len - pos);
		w = pwrite(h->fd[i], p, n, (off_t)(start + pos));
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		pos += (uint64_t)w;
	}
	al_count(&h->stats->hot_copies, 1);
	return 0;
}

int al_hot_get(struct al_hot *h, struct al_reader *rd, const struct al_record *rec, int *fd, uint64_t *off)
{
	struct hot_slot *s = &h->slot[rec->obj_id % HOT_SLOTS];
	uint64_t at;
	int rc;

	if (rec->body_len < AL_HOT_MIN_BODY || rec->body_len > h->max_body)
		return -ENOENT;
	if (s->seq != 0 && s->seq + 1 >= h->seq && s->obj_id == rec->obj_id && s->len == rec->body_len &&
	    memcmp(s->sha256, rec->sha256, 32) == 0) {
		*fd = h->fd[s->seq & 1];
		*off = s->off;
		al_count(&h->stats->hot_sends, 1);
		return 0;
	}
	s->seq = 0;
	if ((rc = admit(h, rd, rec, &at)) != 0)
		return rc;
	s->obj_id = rec->obj_id;
	s->len = rec->body_len;
	s->off = at;
	s->seq = h->seq;
	memcpy(s->sha256, rec->sha256, 32);
	*fd = h->fd[s->seq & 1];
	*off = at;
	al_count(&h->stats->hot_sends, 1);
	return 0;
}
