#include "proxy/runtime/stats.h"
#include "proxy/runtime/server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

const char *const al_result_names[R_COUNT] = {"hit", "stale", "revalidated", "miss", "collapsed",
	"pass", "error", "admin", "tunnel", "intercept"};

static int64_t now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

void al_recent_init(struct al_recent_ring *r)
{
	pthread_mutex_init(&r->mu, NULL);
}

void al_recent_destroy(struct al_recent_ring *r)
{
	pthread_mutex_destroy(&r->mu);
}

void al_recent_add(struct al_recent_ring *r, const struct al_recent *e)
{
	pthread_mutex_lock(&r->mu);
	r->e[r->next] = *e;
	r->next = (r->next + 1) % AL_RECENT;
	if (r->n < AL_RECENT)
		r->n++;
	pthread_mutex_unlock(&r->mu);
}

static int by_time_desc(const void *a, const void *b)
{
	const struct al_recent *x = a, *y = b;

	return x->t_us < y->t_us ? 1 : x->t_us > y->t_us ? -1 : 0;
}

void al_count_minute(struct al_minutes *mb, int64_t t_us, int hit)
{
	int64_t m = t_us / 60000000;
	int slot = (int)(m % AL_MINUTES);

	if (atomic_load_explicit(&mb->minute[slot], memory_order_relaxed) != m) {
		atomic_store_explicit(&mb->requests[slot], 0, memory_order_relaxed);
		atomic_store_explicit(&mb->hits[slot], 0, memory_order_relaxed);
		atomic_store_explicit(&mb->minute[slot], m, memory_order_release);
	}
	al_count(&mb->requests[slot], 1);
	if (hit)
		al_count(&mb->hits[slot], 1);
}

void al_counters_sum(struct al_counters *out)
{
	atomic_uint_fast64_t *o = (atomic_uint_fast64_t *)out;
	const size_t n = sizeof(*out) / sizeof(*o);

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < srv.nworkers; k++) {
		const atomic_uint_fast64_t *v = (const atomic_uint_fast64_t *)&srv.workers[k].stats;
		for (size_t i = 0; i < n; i++)
			atomic_store_explicit(&o[i], atomic_load_explicit(&o[i], memory_order_relaxed) +
			    atomic_load_explicit(&v[i], memory_order_relaxed), memory_order_relaxed);
	}
}

void al_minutes(int n, uint64_t *requests, uint64_t *hits)
{
	int64_t now = now_us() / 60000000;

	*requests = *hits = 0;
	for (int k = 0; k < srv.nworkers; k++) {
		struct al_minutes *mb = &srv.workers[k].minutes;
		for (int i = 0; i < AL_MINUTES; i++) {
			int64_t m = atomic_load_explicit(&mb->minute[i], memory_order_acquire);
			if (m > now - n && m <= now) {
				*requests += (uint64_t)atomic_load_explicit(&mb->requests[i], memory_order_relaxed);
				*hits += (uint64_t)atomic_load_explicit(&mb->hits[i], memory_order_relaxed);
			}
		}
	}
}

int al_recent_get(struct al_recent *out)
{
	struct al_recent *all = calloc((size_t)srv.nworkers * AL_RECENT, sizeof(*all));
	int n = 0;

	if (all == NULL)
		return 0;
	for (int i = 0; i < srv.nworkers; i++) {
		struct al_recent_ring *r = &srv.workers[i].recent;
		pthread_mutex_lock(&r->mu);
		for (int k = 0; k < r->n; k++)
			all[n++] = r->e[(r->next - 1 - k + AL_RECENT) % AL_RECENT];
		pthread_mutex_unlock(&r->mu);
	}
	qsort(all, (size_t)n, sizeof(*all), by_time_desc);
	if (n > AL_RECENT)
		n = AL_RECENT;
	memcpy(out, all, (size_t)n * sizeof(*out));
	free(all);
	return n;
}
