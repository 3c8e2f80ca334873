/*
 * What airlock counts, apart from what it runs: the counters behind
 * /_airlock/metrics, the per-minute buckets behind the hit ratio of the
 * last minutes, and the recent-requests ring of the status page.  Each
 * worker has its own set (struct worker in server.h holds it), written by
 * that worker only; readers add the workers up.
 */
#ifndef AIRLOCK_PROXY_STATS_H
#define AIRLOCK_PROXY_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* How a request was answered: the label of airlock_requests_total{result=...}. */
enum al_result { R_HIT, R_STALE, R_REVALIDATED, R_MISS, R_COLLAPSED, R_PASS, R_ERROR, R_ADMIN, R_TUNNEL,
	R_INTERCEPT, R_COUNT };
extern const char *const al_result_names[R_COUNT];

/* One line of the recent-requests ring shown on the status page. */
struct al_recent {
	int64_t t_us;                 /* microseconds: the order across workers is true to the request */
	char method[8];
	char url[160];
	int status;
	enum al_result result;
};
#define AL_RECENT 50

/* The ring itself: one per worker, so no lock is shared between workers. */
struct al_recent_ring {
	pthread_mutex_t mu;           /* taken by its worker and, rarely, the status page */
	struct al_recent e[AL_RECENT];
	int next, n;
};

/*
 * Counters, bumped where the event happens (Varnish's VSC style), one set
 * per worker: only the worker writes its own (al_count: a plain load and
 * store, no locked instruction, no cache line shared with another core on
 * the request path) and readers sum them (al_counters_sum).  Every member
 * is an atomic_uint_fast64_t: the sum walks them as an array.
 */
struct al_counters {
	atomic_uint_fast64_t by_status[600];
	atomic_uint_fast64_t by_result[R_COUNT];
	atomic_uint_fast64_t requests, hits, misses, stale, revalidated, collapsed, passes;
	atomic_uint_fast64_t upstream_fetches, upstream_errors, bytes_from_cache, bytes_from_upstream;
	atomic_uint_fast64_t integrity_refused;   /* bodies refused: .sha512 mismatch or OpenPGP signature */
	atomic_uint_fast64_t hot_sends, hot_copies, hot_rotations;  /* proxy/front/hot.h */
	atomic_uint_fast64_t hot_bytes;           /* a gauge: hot memory taken now (summed like the rest) */
};

/* Add n to a counter of the calling worker's own set. */
static inline void al_count(atomic_uint_fast64_t *v, uint64_t n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}
/*
 * The last AL_MINUTES minutes of one worker, one bucket each (slot = minute %
 * AL_MINUTES, reset by the worker's first request of a new minute): requests
 * answered through the cache path and those of them served from the cache,
 * for the hit ratio of the last few minutes.  Only the worker writes its
 * buckets (no shared cache line on the request path); the status page sums
 * the workers and may read a bucket mid-reset: a figure for operators, not
 * accounting.
 */
#define AL_MINUTES 16
struct al_minutes {
	atomic_int_fast64_t minute[AL_MINUTES];
	atomic_uint_fast64_t requests[AL_MINUTES], hits[AL_MINUTES];
};

/*
 * Worker side: each call writes the calling worker's own set (al_count
 * above; these below).  Reader side: the sums over every worker of srv.
 */
void al_recent_init(struct al_recent_ring *r);
void al_recent_destroy(struct al_recent_ring *r);
void al_recent_add(struct al_recent_ring *r, const struct al_recent *e);
/* Count one proxied request answered at t_us (hit: served from the cache) in mb. */
void al_count_minute(struct al_minutes *mb, int64_t t_us, int hit);

/* All workers' counters added up into out (a reader's copy). */
void al_counters_sum(struct al_counters *out);
/* Requests and hits over the last n minutes (this one included), all workers. */
void al_minutes(int n, uint64_t *requests, uint64_t *hits);
/* Copy out up to AL_RECENT of the latest requests (all workers), newest first; returns how many. */
int al_recent_get(struct al_recent *out);

#endif
