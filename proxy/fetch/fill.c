#include "proxy/fetch/fill.h"
#include "policy/freshness.h"
#include "policy/geoip.h"
#include "policy/models.h"
#include "policy/hdr.h"
#include "proxy/runtime/log.h"
#include "proxy/fetch/upstream.h"
#include "proxy/fetch/writer.h"
#include "cache/pgp.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FILL_MAGIC 0x46494c4cu
#define CHUNK_BYTES (256 * 1024)  /* commit at least this often */
/*
 * Chunk buffers per fetch, allocated as needed: one filling while the others
 * wait for the store writer's durable group commit (an fdatasync: 0.5-50 ms
 * on this project's shared machine).  With 2, a fast fill moved one chunk
 * per commit; with more, a commit takes what arrived during the previous
 * one (256 MiB cold fill, medians on the loaded machine: 1.1 s before
 * durable commits; 3.0 s with 2, 2.6 s with 8, 1.9 s with 16 buffers;
 * bench/README.md, issue 32).  16 (4 MiB) grew RssAnon by 9.7 MiB under
 * ASan while a writer held the cache, over test_core_store_writer's 8 MiB
 * bound; 8 grows it by 5.  A fill from an upstream slower than the disk
 * holds two.
 */
#define NBUF 8
#define FLUSH_MS 25               /* ... or this long after the first uncommitted byte */
#define HEAD_MAX (64 * 1024)      /* upstream response head limit */
#define NBUCKETS 1024

/*
 * A fill's fetch (struct fetch, on the worker that started it) as steps,
 * in the manner of Varnish's cache_fetch.c vbf_stp_*: each step is a
 * function that returns the next, fetch_run runs them, and curl's
 * callbacks, the store writer, a sibling fill's end and the OpenPGP
 * thread re-enter it where it parked (enum fetch_step):
 *
 *   fill_start -> START
 *     ..header_cb.. HEAD -+-> REFRESH, STORE or PASS  (write_cb carries the body: into the
 *                         |                            store writer's chunks, or to the sink)
 *                         +-> (stop: a 5xx for the stale copy, no sink, out of memory)
 *     ..fetch_done.. ENDED ..store_done.. FINISH -+-> REFRESHED -> DONE
 *                                                 +-> VERIFY -> MODEL ..sib_wake.. MODEL_READY
 *                                                 |   -> SHA512 ..sib_wake.. SHA512_READY
 *                                                 |   -> PGP ..sib_wake.. PGP_READY ..pgp_done.. PGP_VERDICT
 *                                                 |   -> COMMIT ..store_done.. COMMITTED -> DONE
 *                                                 +-> DONE  (passed, or ended on purpose after the head)
 *                                                 +-> FAILED -+-> RETRY (the next parent) ..header_cb.. HEAD
 *                                                             +-> DONE
 *   A check that fails: REFUSED -> DONE.  REFRESHED, VERIFY and COMMITTED may end in FAILED too.
 *
 * "..x.." is a park: the step returned FSTP_PARK and the callback x
 * re-enters.  A check that is not asked for passes straight on to the next.
 */
enum fetch_step {
	FSTP_START,        /* the first transfer: the URL, or the parent preferred now */
	FSTP_HEAD,         /* the head is complete: refresh, fail for the stale copy, store or pass */
	FSTP_REFRESH,      /* a 304: the stored record takes its head, on the store writer */
	FSTP_STORE,        /* storable: the pending entry, the body into chunks */
	FSTP_PASS,         /* not storable: the head and body go to the client's sink */
	FSTP_ENDED,        /* the transfer is over: the last chunk to the writer, wait for it */
	FSTP_FINISH,       /* the writer has it all: what the transfer became */
	FSTP_REFRESHED,    /* the refresh committed (or not) */
	FSTP_FAILED,       /* the transfer failed: the next parent, or the fill fails */
	FSTP_RETRY,        /* upstream.parents: a new transfer to the next parent */
	FSTP_VERIFY,       /* Content-Length; a GeoIP database's MD5 */
	FSTP_MODEL,        /* a model's metadata (sibling) */
	FSTP_MODEL_READY,  /* its sha256 and size against the body */
	FSTP_SHA512,       /* URL.sha512 (sibling) */
	FSTP_SHA512_READY, /* the body's SHA-512 against it */
	FSTP_PGP,          /* URL.asc or URL.sig (sibling) */
	FSTP_PGP_READY,    /* the signature checked on a thread */
	FSTP_PGP_VERDICT,  /* its verdict */
	FSTP_COMMIT,       /* the entry to the store writer */
	FSTP_COMMITTED,    /* committed: the fill is DONE, or the entry was refused */
	FSTP_REFUSED,      /* a check failed: nothing stays */
	FSTP_DONE,         /* the fetch ends (fetch_free) */
	FSTP_PARK,
};

struct fetch;
static void fetch_run(struct fetch *x, enum fetch_step s);

struct waiter {
	struct event *ev;
	struct waiter *next;
};

struct fill {
	unsigned magic;
	pthread_mutex_t mu;
	int refs;
	int registered;
	struct fill *hnext;
	uint8_t key[AL_KEY_LEN];
	/* guarded by mu; hdrs is written once before state leaves FILL_WAIT */
	enum fill_state state;
	enum fill_failure failure;
	int status;
	uint64_t obj_id, committed;
	int64_t content_length;
	int64_t age;              /* the upstream's Age as relayed to clients on a miss, -1 for none */
	char *hdrs;
	size_t hdrs_len;
	char error[160];
	struct waiter *waiters;
	struct fetch *fetch;      /* owned by the starting worker */
};

/* The transfer behind a fill; lives on one worker. */
struct fetch {
	struct fetch *next, *prev;
	struct worker *w;
	struct fill *f;
	CURL *easy;
	struct curl_slist *req_hdrs;
	struct curl_slist *att_hdrs;  /* req_hdrs plus what this attempt's target adds (parent: Host, auth) */
	int parent, parent_tries;     /* upstream.parents: the one asked now, how many were tried */
	struct uplink *uplink;
	char *url;
	char *fetch_url;          /* what is asked for, when not url (the record keeps url) */
	int conditional, revalidating;
	char *inm, *ims;          /* the validators sent (the stored response's), or NULL: which 304 selects it */
	char *head;
	size_t head_len;
	int status, head_done;
	int64_t content_length, age_value;
	int64_t age_line;         /* the first Age line's value (al_age_value), -1 for none or invalid */
	int age_seen;             /* an Age line was read: later ones do not count (RFC 9111 §5.1) */
	char conn_tokens[256];    /* fields the upstream's Connection names: hop-by-hop too */
	const char *bad;          /* why the response is refused, or NULL */
	struct store_io *io;      /* the body's way into the cache, through the store writer */
	struct cbuf *buf;         /* the chunk being filled, or NULL */
	uint64_t off, chunk_start;
	int store_paused;         /* curl paused: every chunk buffer is with the store writer */
	int finishing;            /* the transfer ended; waiting for the store writer to catch up */
	int committing;           /* the commit is with the store writer */
	int refreshing;           /* a 304's refresh is with the store writer (refresh_write) */
	int refused;              /* the store refused a write of this fetch's: said once (cache_refused) */
	CURLcode finish_res;
	int local_errno;          /* no socket for the upstream on this host (up_done_fn), or 0 */
	EVP_MD_CTX *sha;
	EVP_MD_CTX *sha512;       /* only for URLs checked against URL.sha512 */
	unsigned char digest512[64];
	struct fill *sib;         /* the sibling fill (URL.sha512, URL.asc) this body waits for */
	struct event *sib_ev;
	uint8_t sib_key[AL_KEY_LEN];
	enum fetch_step sib_step; /* where the sibling's end re-enters (sib_wake) */
	int sib_ok;               /* the sibling is stored as a 200 */
	const char *sib_why;      /* if not, why (NULL when it is) */
	char sib_err[160];
	uint32_t check_flags;     /* what the checks so far proved (AL_REC_VERIFIED) */
	int model_check;          /* a model file checked against its metadata (cache.verify_models) */
	EVP_MD_CTX *md5;          /* a GeoIP database: checked against the md5_hash its key names */
	unsigned char md5_want[16];
	const struct al_pgp *pgp_keys; /* the configuration's that asked for the OpenPGP check */
	struct al_conf *conf;     /* pinned for the fetch's life: every decision of it reads this one */
	struct pgp_job *pgp_job;  /* the OpenPGP check running on its own thread */
	int pgp_rc;               /* its verdict (PGP_VERDICT): 0 verified */
	int64_t pgp_ms;
	char pgp_err[300];
	char why[400];            /* REFUSED: why the body is not admitted */
	enum fetch_step step;     /* the last step run (fetch_run) */
	int halt;                 /* HEAD: stop the transfer (header_cb returns 0 to curl) */
	const char *pass_why;     /* HEAD -> PASS: why the response is not stored */
	struct event *flush_ev, *fb_ev;
	int64_t req_time, resp_time;
	struct pass_sink sink;
	int has_sink, paused;
};

/*
 * Body chunks go to the cache on the store writer's thread (proxy/fetch/writer.h),
 * not on the worker's loop.  The writer appends a chunk, then moves the
 * fill's `committed` and wakes its waiters, as the loop did; chunks of a
 * fetch are written in order.  A fetch has at most NBUF buffers: when all are
 * with the writer, curl is paused until one comes back.  The fetch's end
 * (checks, admission, or abort) waits until the writer has written them all.
 */
struct cbuf {
	struct al_writer_job job;
	struct store_io *io;
	struct cbuf *next_free;
	uint64_t off;
	size_t len;
	int rc;                   /* the append's, from run to done */
	unsigned char data[CHUNK_BYTES];
};

struct store_io {
	pthread_mutex_t mu;
	pthread_cond_t idle;
	struct fill *f;
	uint64_t obj_id;
	uint8_t key[AL_KEY_LEN];
	int inflight, nbuf, rc;   /* rc: the first failed write; later chunks are not written */
	struct cbuf *free;
	struct event *done_ev;    /* on the fetch's worker: a job of this fetch's has run */
	struct al_writer_job begin_job, commit_job, refresh_job;
	struct al_record rec;     /* what commit_job publishes; its pointers are the fetch's */
	int commit_rc;            /* commit_job's or refresh_job's, with its batch's */
	struct fetch *x;          /* refresh_job reads the fetch's 304 head (the fetch waits for it) */
};

/* A dropped fill's chunks, freed on the store writer after its earlier jobs; nobody waits. */
struct abort_job {
	struct al_writer_job job;
	uint64_t obj_id;
};

/*
 * Keys the store refused for want of room (-ENOSPC: the cache's file system
 * or its LMDB map is full).  Until its retry time, a response for such a key
 * is passed through to its client instead of being stored: filling it again
 * would only fail again, cut its clients off half-way and take flushes from
 * the fills that fit.  The wait doubles with each refusal of the key, from
 * BACKOFF_FIRST_S to BACKOFF_MAX_S; a stored fill of the key clears it.  A
 * bounded table: when full, the entry due first makes room.
 */
#define BACKOFF_KEYS 256
#define BACKOFF_FIRST_S 60
#define BACKOFF_MAX_S 3600

struct backoff {
	uint8_t key[AL_KEY_LEN];
	int64_t retry_at;         /* 0: a free slot */
	int64_t wait_s;
};

static pthread_mutex_t backoff_mu = PTHREAD_MUTEX_INITIALIZER;
static struct backoff backoffs[BACKOFF_KEYS];

/* The slot of key, or NULL; caller holds backoff_mu. */
static struct backoff *backoff_find(const uint8_t *key)
{
	for (int i = 0; i < BACKOFF_KEYS; i++)
		if (backoffs[i].retry_at != 0 && memcmp(backoffs[i].key, key, AL_KEY_LEN) == 0)
			return &backoffs[i];
	return NULL;
}

/* The store refused key for want of room: wait before storing it again.  Returns the wait. */
static int64_t backoff_note(const uint8_t *key)
{
	struct backoff *b;
	int64_t now = time(NULL), wait;

	pthread_mutex_lock(&backoff_mu);
	if ((b = backoff_find(key)) != NULL) {
		b->wait_s = b->wait_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : b->wait_s * 2;
	} else {
		b = &backoffs[0];
		for (int i = 0; i < BACKOFF_KEYS && b->retry_at != 0; i++)
			if (backoffs[i].retry_at == 0 || backoffs[i].retry_at < b->retry_at)
				b = &backoffs[i];
		memcpy(b->key, key, AL_KEY_LEN);
		b->wait_s = BACKOFF_FIRST_S;
	}
	b->retry_at = now + b->wait_s;
	wait = b->wait_s;
	pthread_mutex_unlock(&backoff_mu);
	return wait;
}

static int backoff_active(const uint8_t *key)
{
	struct backoff *b;
	int active;

	pthread_mutex_lock(&backoff_mu);
	active = (b = backoff_find(key)) != NULL && time(NULL) < b->retry_at;
	pthread_mutex_unlock(&backoff_mu);
	return active;
}

static void backoff_clear(const uint8_t *key)
{
	struct backoff *b;

	pthread_mutex_lock(&backoff_mu);
	if ((b = backoff_find(key)) != NULL)
		b->retry_at = 0;
	pthread_mutex_unlock(&backoff_mu);
}

unsigned fill_backoff_count(void)
{
	unsigned n = 0;
	int64_t now = time(NULL);

	pthread_mutex_lock(&backoff_mu);
	for (int i = 0; i < BACKOFF_KEYS; i++)
		n += backoffs[i].retry_at > now;
	pthread_mutex_unlock(&backoff_mu);
	return n;
}

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
/* upstream.parents: the parent that answered last; fetches start there */
static atomic_int parent_pref;
static struct fill *buckets[NBUCKETS];

static unsigned bucket_of(const uint8_t *key)
{
	return ((unsigned)key[0] | (unsigned)key[1] << 8) % NBUCKETS;
}

/* Wake every waiter; caller holds f->mu. */
static void notify_locked(struct fill *f)
{
	for (struct waiter *w = f->waiters; w != NULL; w = w->next)
		event_active(w->ev, EV_READ, 0);
}

static void unregister(struct fill *f)
{
	pthread_mutex_lock(&reg_mu);
	if (f->registered) {
		struct fill **pp = &buckets[bucket_of(f->key)];
		while (*pp != NULL && *pp != f)
			pp = &(*pp)->hnext;
		if (*pp == f)
			*pp = f->hnext;
		f->registered = 0;
	}
	pthread_mutex_unlock(&reg_mu);
}

struct fill *fill_acquire(const uint8_t key[AL_KEY_LEN], int private_fill, int *created)
{
	struct fill *f = NULL;
	unsigned b = bucket_of(key);

	pthread_mutex_lock(&reg_mu);
	if (!private_fill) {
		for (f = buckets[b]; f != NULL; f = f->hnext) {
			if (memcmp(f->key, key, AL_KEY_LEN) == 0) {
				pthread_mutex_lock(&f->mu);
				f->refs++;
				pthread_mutex_unlock(&f->mu);
				*created = 0;
				pthread_mutex_unlock(&reg_mu);
				return f;
			}
		}
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		pthread_mutex_unlock(&reg_mu);
		return NULL;
	}
	f->magic = FILL_MAGIC;
	pthread_mutex_init(&f->mu, NULL);
	f->refs = 1;
	memcpy(f->key, key, AL_KEY_LEN);
	f->content_length = -1;
	f->state = FILL_WAIT;
	if (!private_fill) {
		f->registered = 1;
		f->hnext = buckets[b];
		buckets[b] = f;
	}
	*created = 1;
	pthread_mutex_unlock(&reg_mu);
	return f;
}

void fill_release(struct fill *f)
{
	int last;

	if (f == NULL)
		return;
	if (f->magic != FILL_MAGIC)
		abort();
	pthread_mutex_lock(&f->mu);
	last = --f->refs == 0;
	pthread_mutex_unlock(&f->mu);
	if (!last)
		return;
	unregister(f);
	pthread_mutex_destroy(&f->mu);
	free(f->hdrs);
	f->magic = 0;
	free(f);
}

void fill_watch(struct fill *f, struct event *ev)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return;
	w->ev = ev;
	pthread_mutex_lock(&f->mu);
	w->next = f->waiters;
	f->waiters = w;
	event_active(ev, EV_READ, 0); /* look at the state once right away */
	pthread_mutex_unlock(&f->mu);
}

void fill_unwatch(struct fill *f, struct event *ev)
{
	pthread_mutex_lock(&f->mu);
	for (struct waiter **pp = &f->waiters; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->ev == ev) {
			struct waiter *w = *pp;
			*pp = w->next;
			free(w);
			break;
		}
	}
	pthread_mutex_unlock(&f->mu);
}

void fill_view(struct fill *f, struct fill_view *v)
{
	pthread_mutex_lock(&f->mu);
	v->state = f->state;
	v->failure = f->failure;
	v->status = f->status;
	v->obj_id = f->obj_id;
	v->committed = f->committed;
	v->content_length = f->content_length;
	v->age = f->age;
	v->hdrs = f->hdrs;
	v->hdrs_len = f->hdrs_len;
	memcpy(v->error, f->error, sizeof(v->error));
	pthread_mutex_unlock(&f->mu);
}

/* Move the fill to a new state and wake its waiters. */
static void set_state(struct fill *f, enum fill_state st, enum fill_failure why, const char *err)
{
	pthread_mutex_lock(&f->mu);
	f->state = st;
	if (why != FAIL_NONE) {
		f->failure = why;
		snprintf(f->error, sizeof(f->error), "%s", err ? err : "");
	}
	notify_locked(f);
	pthread_mutex_unlock(&f->mu);
	if (st != FILL_WAIT && st != FILL_STREAM && st != FILL_PASS)
		unregister(f); /* ended: new requests look in the cache again */
}

static void pgp_job_free(struct pgp_job *job);
static void store_io_free(struct store_io *io);

static void fetch_free(struct fetch *x)
{
	struct worker *w = x->w;

	if (x->prev)
		x->prev->next = x->next;
	else if (w->fetches == x)
		w->fetches = x->next;
	if (x->next)
		x->next->prev = x->prev;
	if (x->flush_ev)
		event_free(x->flush_ev);
	if (x->fb_ev)
		event_free(x->fb_ev);
	if (x->easy)
		curl_easy_cleanup(x->easy);
	if (x->sib) {
		fill_unwatch(x->sib, x->sib_ev);
		fill_release(x->sib);
	}
	if (x->sib_ev)
		event_free(x->sib_ev);
	pgp_job_free(x->pgp_job); /* waits for its thread: shutting down mid-check */
	curl_slist_free_all(x->req_hdrs);
	curl_slist_free_all(x->att_hdrs);
	EVP_MD_CTX_free(x->sha);
	EVP_MD_CTX_free(x->sha512);
	EVP_MD_CTX_free(x->md5);
	store_io_free(x->io); /* waits for the writer: shutting down mid-transfer */
	free(x->buf);
	free(x->head);
	free(x->url);
	free(x->fetch_url);
	free(x->inm);
	free(x->ims);
	if (x->f != NULL) {
		x->f->fetch = NULL;
		fill_release(x->f);
	}
	al_conf_release(x->conf);
	free(x);
}

/*
 * On the store writer: one of io's jobs has run (a chunk's: b goes back to the
 * free buffers); wake the fetch, under mu (see store_io_free).
 */
static void store_job_end(struct store_io *io, int rc, struct cbuf *b)
{
	pthread_mutex_lock(&io->mu);
	if (rc != 0 && io->rc == 0)
		io->rc = rc;
	if (b != NULL) {
		b->len = 0;
		b->next_free = io->free;
		io->free = b;
	}
	io->inflight--;
	pthread_cond_signal(&io->idle);
	event_active(io->done_ev, EV_READ, 0);
	pthread_mutex_unlock(&io->mu);
}

static void store_post(struct store_io *io, struct al_writer_job *job, void (*run)(struct al_writer_job *),
    void (*done)(struct al_writer_job *, int))
{
	pthread_mutex_lock(&io->mu);
	io->inflight++;
	pthread_mutex_unlock(&io->mu);
	job->run = run;
	job->done = done;
	al_writer_post(job);
}

/*
 * The writer groups commits (proxy/fetch/writer.h): run writes inside its
 * batch, done follows once the batch is committed, and only done tells the
 * readers and the fetch.
 */

/* The pending entry, ahead of the chunks: a crash before the commit leaves none of them behind. */
static void begin_write(struct al_writer_job *job)
{
	struct store_io *io = (struct store_io *)((char *)job - offsetof(struct store_io, begin_job));
	int rc = al_fill_pending(srv.store, io->key, io->obj_id);

	if (rc != 0) {
		pthread_mutex_lock(&io->mu);
		if (io->rc == 0)
			io->rc = rc;
		pthread_mutex_unlock(&io->mu);
	}
}

static void begin_done(struct al_writer_job *job, int rc)
{
	struct store_io *io = (struct store_io *)((char *)job - offsetof(struct store_io, begin_job));

	store_job_end(io, rc, NULL);
}

static void commit_write(struct al_writer_job *job)
{
	struct store_io *io = (struct store_io *)((char *)job - offsetof(struct store_io, commit_job));
	int rc = al_fill_commit(srv.store, io->key, &io->rec);

	pthread_mutex_lock(&io->mu);
	io->commit_rc = rc;
	pthread_mutex_unlock(&io->mu);
}

static void commit_done(struct al_writer_job *job, int rc)
{
	struct store_io *io = (struct store_io *)((char *)job - offsetof(struct store_io, commit_job));

	pthread_mutex_lock(&io->mu);
	if (io->commit_rc == 0)
		io->commit_rc = rc;
	pthread_mutex_unlock(&io->mu);
	store_job_end(io, 0, NULL);
}

/*
 * A 304: the stored record takes the new head and times (al_refresh), on the
 * store writer.  Every commit is durable (an fdatasync, 0.5-50 ms here, far
 * more on a busy disk); on the worker's loop it held up every client of the
 * worker on each revalidation.  The fill stays FILL_WAIT until the batch
 * holding it committed: its waiters see FILL_REFRESHED (and read the new
 * head) only once it is in the cache, as before (FINISH, then REFRESHED).
 */
static void refresh_write(struct al_writer_job *job)
{
	struct store_io *io = (struct store_io *)((char *)job - offsetof(struct store_io, refresh_job));
	struct fetch *x = io->x;
	int rc = al_refresh(srv.store, io->key, x->head, x->head_len, x->req_time, x->resp_time, x->age_value);

	pthread_mutex_lock(&io->mu);
	io->commit_rc = rc;
	pthread_mutex_unlock(&io->mu);
}

static void refresh_done(struct al_writer_job *job, int rc)
{
	struct store_io *io = (struct store_io *)((char *)job - offsetof(struct store_io, refresh_job));

	pthread_mutex_lock(&io->mu);
	if (io->commit_rc == 0)
		io->commit_rc = rc;
	pthread_mutex_unlock(&io->mu);
	store_job_end(io, 0, NULL);
}

static void abort_write(struct al_writer_job *job)
{
	struct abort_job *a = (struct abort_job *)job;
	int rc = al_fill_abort(srv.store, a->obj_id);

	if (rc != 0)
		al_warn("fill", "object %016llx: its chunks could not be dropped now (%s); the next start drops them",
		    (unsigned long long)a->obj_id, strerror(-rc));
	free(a);
}

static void store_abort(uint64_t obj_id)
{
	struct abort_job *a = malloc(sizeof(*a));

	if (a == NULL) {
		al_fill_abort(srv.store, obj_id);
		return;
	}
	a->obj_id = obj_id;
	a->job.run = abort_write;
	a->job.done = NULL;
	al_writer_post(&a->job);
}

/* On the store writer: append one chunk; once it is committed (cbuf_done), tell the readers and the fetch. */
static void cbuf_write(struct al_writer_job *job)
{
	struct cbuf *b = (struct cbuf *)job;
	struct store_io *io = b->io;
	int rc;

	pthread_mutex_lock(&io->mu);
	rc = io->rc;
	pthread_mutex_unlock(&io->mu);
	if (rc == 0)
		rc = al_fill_append(srv.store, io->obj_id, b->off, b->data, b->len);
	b->rc = rc;
}

static void cbuf_done(struct al_writer_job *job, int rc)
{
	struct cbuf *b = (struct cbuf *)job;
	struct store_io *io = b->io;

	if (rc == 0)
		rc = b->rc;
	if (rc == 0) {
		pthread_mutex_lock(&io->f->mu);
		io->f->committed = b->off + b->len;
		notify_locked(io->f);
		pthread_mutex_unlock(&io->f->mu);
	}
	store_job_end(io, rc, b);
}

static void store_done(evutil_socket_t fd, short what, void *arg);

static struct store_io *store_io_new(struct fetch *x, uint64_t obj_id, const uint8_t key[AL_KEY_LEN])
{
	struct store_io *io = calloc(1, sizeof(*io));

	if (io == NULL)
		return NULL;
	if ((io->done_ev = event_new(x->w->base, -1, 0, store_done, x)) == NULL) {
		free(io);
		return NULL;
	}
	pthread_mutex_init(&io->mu, NULL);
	pthread_cond_init(&io->idle, NULL);
	io->f = x->f;
	io->x = x;
	io->obj_id = obj_id;
	memcpy(io->key, key, AL_KEY_LEN);
	return io;
}

/* Block until the writer has written everything of io's (at the fetch's end, or shutting down). */
static void store_io_wait(struct store_io *io)
{
	pthread_mutex_lock(&io->mu);
	while (io->inflight > 0)
		pthread_cond_wait(&io->idle, &io->mu);
	pthread_mutex_unlock(&io->mu);
}

static void store_io_free(struct store_io *io)
{
	if (io == NULL)
		return;
	store_io_wait(io);
	event_free(io->done_ev);
	while (io->free != NULL) {
		struct cbuf *b = io->free;
		io->free = b->next_free;
		free(b);
	}
	pthread_mutex_destroy(&io->mu);
	pthread_cond_destroy(&io->idle);
	free(io);
}

/* A buffer to fill: a returned one, or a new one while the fetch has fewer than NBUF; else NULL. */
static struct cbuf *store_buf_take(struct store_io *io)
{
	struct cbuf *b = NULL;

	pthread_mutex_lock(&io->mu);
	if (io->free != NULL) {
		b = io->free;
		io->free = b->next_free;
	} else if (io->nbuf < NBUF && (b = malloc(sizeof(*b))) != NULL) {
		io->nbuf++;
		b->io = io;
	}
	pthread_mutex_unlock(&io->mu);
	if (b != NULL)
		b->len = 0;
	return b;
}

/* Would store_buf_take give a buffer now?  (Only the writer changes that, and only towards yes.) */
static int store_buf_ready(struct store_io *io)
{
	int ready;

	pthread_mutex_lock(&io->mu);
	ready = io->free != NULL || io->nbuf < NBUF;
	pthread_mutex_unlock(&io->mu);
	return ready;
}

static int store_rc(struct store_io *io, int *busy)
{
	int rc;

	pthread_mutex_lock(&io->mu);
	rc = io->rc;
	if (busy != NULL)
		*busy = io->inflight > 0;
	pthread_mutex_unlock(&io->mu);
	return rc;
}

/*
 * The store refused a write of x's (rc: -errno): x ends (x->bad), and the
 * first time, the log says why and where, /_airlock/health turns degraded
 * (al_writer_refused) and a key refused for want of room waits before it is
 * stored again (backoff_note).
 */
static void cache_refused(struct fetch *x, int rc, const char *what)
{
	char why[200];
	int64_t wait = 0;

	if (x->bad == NULL)
		x->bad = "the cache refused the body";
	if (x->refused)
		return;
	x->refused = 1;
	rc = al_store_explain(srv.store, rc);
	snprintf(why, sizeof(why), "%s at byte %llu: %s", what, (unsigned long long)x->off, strerror(-rc));
	if (rc == -ENOSPC)
		wait = backoff_note(x->f->key);
	al_err("cache", "%s: not stored: the cache at %s refused %s%s", x->url, x->conf->cfg->cache_path, why,
	    rc == -ENOSPC ? " (its file system or its LMDB map, cache.max_size, is full)" : "");
	if (wait > 0)
		al_warn("cache", "%s: passed through without storing for %lld s (the cache has no room for it)",
		    x->url, (long long)wait);
	snprintf(why, sizeof(why), "%s: %s", x->conf->cfg->cache_path, strerror(-rc));
	al_writer_refused(rc, why);
}

/* Hand the buffered part of the body to the store writer.  Returns an earlier append's failure. */
static int flush_chunk(struct fetch *x)
{
	struct cbuf *b = x->buf;

	if (x->flush_ev)
		evtimer_del(x->flush_ev);
	if (x->io == NULL)
		return 0;
	if (b != NULL && b->len > 0) {
		b->off = x->chunk_start;
		x->chunk_start += b->len;
		x->buf = NULL;
		store_post(x->io, &b->job, cbuf_write, cbuf_done);
	}
	return store_rc(x->io, NULL);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *x = arg;
	int rc = flush_chunk(x);

	if (rc != 0)
		cache_refused(x, rc, "the body"); /* the next write callback returns 0 and curl ends the transfer */
}

static int is_unreachable(CURLcode res)
{
	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE: case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return 1;
	default:
		return 0;
	}
}

/*
 * COMMIT: the stored body becomes the entry for the key, on the store
 * writer (commit_job, with x->check_flags: what the checks proved);
 * store_done re-enters at COMMITTED once the writer's batch has run.
 */
static enum fetch_step fstp_commit(struct fetch *x)
{
	struct al_record *rec = &x->io->rec;

	memset(rec, 0, sizeof(*rec));
	rec->flags = x->check_flags;
	rec->status = x->status;
	rec->obj_id = x->f->obj_id;
	rec->body_len = x->off;
	rec->request_time = x->req_time;
	rec->response_time = x->resp_time;
	rec->age_value = x->age_value;
	rec->last_used = time(NULL);
	EVP_DigestFinal_ex(x->sha, rec->sha256, NULL);
	rec->url = x->url;
	rec->url_len = strlen(x->url);
	rec->hdrs = x->head;
	rec->hdrs_len = x->head_len;
	x->committing = 1;
	store_post(x->io, &x->io->commit_job, commit_write, commit_done);
	return FSTP_PARK;
}

/* Give up on the fill: nothing of it stays in the cache. */
static void fail_stream(struct fetch *x, enum fill_failure why, const char *err)
{
	struct fill *f = x->f;

	if (why != FAIL_LOCAL) {   /* this host's want of sockets is no upstream error */
		al_count(&x->w->stats.upstream_errors, 1);
		uplink_count_error(x->uplink);
	}
	if (f->state == FILL_STREAM)
		store_abort(f->obj_id); /* after the fetch's own jobs, which have all run by now */
	if (f->state == FILL_PASS && x->has_sink)
		x->sink.end(x->sink.arg, 0);
	set_state(f, FILL_FAILED, why, err);
}

/* COMMITTED: the commit has run: the fill is DONE, or nothing of it stays. */
static enum fetch_step fstp_committed(struct fetch *x)
{
	struct fill *f = x->f;
	const struct al_record *rec = &x->io->rec;
	int rc;

	x->committing = 0;
	pthread_mutex_lock(&x->io->mu);
	rc = x->io->commit_rc;
	pthread_mutex_unlock(&x->io->mu);
	if (rc != 0) {
		cache_refused(x, rc, "the entry");
		fail_stream(x, FAIL_STORE, "the cache refused the entry");
	} else {
		backoff_clear(f->key);
		pthread_mutex_lock(&f->mu);
		f->content_length = (int64_t)x->off;
		pthread_mutex_unlock(&f->mu);
		al_count(&x->w->stats.bytes_from_upstream, x->off);
		al_debug("fill", "stored %s (%llu bytes%s)", x->url, (unsigned long long)x->off,
		    !(rec->flags & AL_REC_VERIFIED) ? "" : x->model_check ? ", SHA-256 and size verified against its metadata" :
		    x->md5 != NULL ? ", MD5 verified against its md5_hash" :
		    ", SHA-512 verified");
		set_state(f, FILL_DONE, FAIL_NONE, NULL);
	}
	return FSTP_DONE;
}

/* REFUSED: a check failed (x->why): counted, and nothing of the body stays. */
static enum fetch_step fstp_refused(struct fetch *x)
{
	al_count(&x->w->stats.integrity_refused, 1);
	fail_stream(x, FAIL_BROKEN, x->why);
	return FSTP_DONE;
}

/* x->why = what, and the step that says so. */
static enum fetch_step refuse(struct fetch *x, const char *what)
{
	snprintf(x->why, sizeof(x->why), "%s", what);
	return FSTP_REFUSED;
}

enum verdict { SHA_MATCH, SHA_MISMATCH, SHA_UNKNOWN };

/*
 * The OpenPGP check reads and hashes the whole body: a 500 MB agent binary
 * is a third of a second of SHA-512.  On the worker's loop that would hold
 * up every client of the worker, so it runs on a thread of its own, with a
 * reader of its own (the environment is MDB_NOTLS), and hands the verdict
 * back to the loop; admission and counting stay on the worker.
 */
struct pgp_job {
	pthread_t thread;
	struct event *done;       /* on the worker's base, activated by the thread */
	const struct al_pgp *keys;
	uint64_t obj_id, len;
	char *sig;
	size_t siglen;
	int rc;
	int64_t ms;
	char err[300];
};

static void pgp_job_free(struct pgp_job *job)
{
	if (job == NULL)
		return;
	pthread_join(job->thread, NULL);
	event_free(job->done);
	free(job->sig);
	free(job);
}

static void *pgp_run(void *arg)
{
	struct pgp_job *job = arg;
	struct al_reader *rd;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	job->rc = -EBADMSG;
	if (al_reader_new(srv.store, &rd) != 0) {
		snprintf(job->err, sizeof(job->err), "no LMDB reader");
	} else {
		job->rc = al_pgp_verify_object(job->keys, rd, job->obj_id, job->len, job->sig, job->siglen,
		    job->err, sizeof(job->err));
		al_reader_free(rd);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	job->ms = (int64_t)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	event_active(job->done, EV_READ, 0); /* the last touch of job on this thread */
	return NULL;
}

/* PGP_VERDICT: the signature verified with a pinned key (x->pgp_rc 0): COMMIT, signed; else REFUSED. */
static enum fetch_step fstp_pgp_verdict(struct fetch *x)
{
	char what[400];

	if (x->pgp_rc == 0) {
		al_info("integrity", "%s: OpenPGP signature verified with a pinned key (%llu bytes in %lld ms)",
		    x->url, (unsigned long long)x->off, (long long)x->pgp_ms);
		x->check_flags |= AL_REC_SIGNED;
		return FSTP_COMMIT;
	}
	al_err("integrity", "%s: OpenPGP check failed: %s; not admitted", x->url, x->pgp_err);
	snprintf(what, sizeof(what), "OpenPGP signature check failed: %s", x->pgp_err);
	return refuse(x, what);
}

/* The check's thread is done (on the worker's loop): its verdict re-enters at PGP_VERDICT. */
static void pgp_done(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *x = arg;
	struct pgp_job *job = x->pgp_job;

	x->pgp_rc = job->rc;
	x->pgp_ms = job->ms;
	snprintf(x->pgp_err, sizeof(x->pgp_err), "%s", job->err);
	x->pgp_job = NULL;
	pgp_job_free(job);
	fetch_run(x, FSTP_PGP_VERDICT);
}

/*
 * PGP_READY: the signature sibling is there (or not): verified with the
 * pinned keys on a thread of its own, off the loop (pgp_done re-enters at
 * PGP_VERDICT); no signature, or no thread, is a failed check.
 */
static enum fetch_step fstp_pgp_ready(struct fetch *x)
{
	struct pgp_job *job = NULL;
	char *sig = NULL, err[300] = "";
	size_t siglen = 0;

	if (x->pgp_keys == NULL) /* cache.verify_pgp without keys cannot pass check-config; fail closed anyway */
		snprintf(err, sizeof(err), "no pinned keys loaded");
	else if (al_read_small(srv.store, x->sib_key, 65536, &sig, &siglen) != 0)
		snprintf(err, sizeof(err), "no signature published (%s)", x->sib_ok ? "not a 200" : x->sib_why);
	else if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->done = event_new(x->w->base, -1, 0, pgp_done, x)) == NULL)
		snprintf(err, sizeof(err), "out of memory");
	else {
		job->keys = x->pgp_keys;
		job->obj_id = x->f->obj_id;
		job->len = x->off;
		job->sig = sig;
		job->siglen = siglen;
		if (pthread_create(&job->thread, NULL, pgp_run, job) == 0) {
			x->pgp_job = job;
			return FSTP_PARK;
		}
		job->sig = NULL;
		snprintf(err, sizeof(err), "no thread for the check");
	}
	if (job != NULL && job->done != NULL)
		event_free(job->done);
	free(job);
	free(sig);
	x->pgp_rc = -EBADMSG;
	x->pgp_ms = 0;
	snprintf(x->pgp_err, sizeof(x->pgp_err), "%s", err);
	return FSTP_PGP_VERDICT;
}

static enum verdict compare512(struct fetch *x, const char *text, size_t len)
{
	unsigned char want[64];

	if (al_parse_sha512_file(text, len, want) != 0)
		return SHA_UNKNOWN;
	return memcmp(want, x->digest512, 64) == 0 ? SHA_MATCH : SHA_MISMATCH;
}

/*
 * The checks that need a sibling URL (URL.sha512, a model's metadata, then
 * URL.asc or URL.sig), after the body is complete and before it is
 * admitted: each sibling is fetched as an ordinary fill of its own key
 * (joined if a client is fetching it now, so what a check fetches is stored
 * and the client's own request for it is a hit), or read from the cache
 * when it is there.  Followers hold back the last byte until the commit, so
 * a refused body never reaches anyone as complete.
 */

/* The sibling fill moved on: once it has ended, the fetch goes on at x->sib_step. */
static void sib_wake(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *x = arg;
	struct fill_view v;

	fill_view(x->sib, &v);
	if (v.state == FILL_WAIT || v.state == FILL_STREAM)
		return;
	snprintf(x->sib_err, sizeof(x->sib_err), "%s", v.state == FILL_FAILED ? v.error : "could not be stored");
	fill_unwatch(x->sib, x->sib_ev);
	fill_release(x->sib);
	x->sib = NULL;
	x->sib_ok = v.state == FILL_DONE;
	x->sib_why = x->sib_err;
	fetch_run(x, x->sib_step);
}

/*
 * The sibling at url (its key in x->sib_key), fetched, joined or read from
 * the cache; then the step next, with x->sib_ok (stored as a 200) and
 * x->sib_why (why not).  Returns next when that is known now, else FSTP_PARK
 * (sib_wake re-enters at next).
 */
static enum fetch_step sibling_at(struct fetch *x, const char *url, enum fetch_step next)
{
	struct al_reader *rd;
	struct al_record rec;
	int created, cached = 0;

	al_store_key(url, strlen(url), x->sib_key);
	if (al_reader_new(srv.store, &rd) == 0) {
		cached = al_lookup(rd, x->sib_key, &rec) == 0 && rec.status == 200;
		al_reader_free(rd);
	}
	if (cached) {
		x->sib_ok = 1;
		x->sib_why = NULL;
		return next;
	}
	x->sib_step = next;
	if (x->sib_ev == NULL)
		x->sib_ev = event_new(x->w->base, -1, 0, sib_wake, x);
	x->sib = x->sib_ev ? fill_acquire(x->sib_key, 0, &created) : NULL;
	if (x->sib == NULL) {
		x->sib_ok = 0;
		x->sib_why = "out of memory";
		return next;
	}
	fill_watch(x->sib, x->sib_ev);
	if (created) {
		struct fetch_params p = {0};
		p.url = url;
		p.uplink = x->uplink;
		p.user_agent = "airlock/" AIRLOCK_VERSION " (integrity check)";
		p.conf = x->conf; /* the sibling follows the rules of the body that asked for it */
		fill_start(x->sib, x->w, &p, NULL); /* on failure the fill is FAILED and sib_wake says so */
	}
	event_active(x->sib_ev, EV_READ, 0); /* it may have ended already */
	return FSTP_PARK;
}

/* The sibling x->url + suffix. */
static enum fetch_step sibling(struct fetch *x, const char *suffix, enum fetch_step next)
{
	char url[4200];

	snprintf(url, sizeof(url), "%s%s", x->url, suffix);
	return sibling_at(x, url, next);
}

/* PGP: the OpenPGP check when the configuration asks for it (its signature, a sibling: PGP_READY); else COMMIT. */
static enum fetch_step fstp_pgp(struct fetch *x)
{
	const char *pgp = al_needs_pgp(x->conf->cfg, x->url);

	x->pgp_keys = x->conf->pgp; /* the keys of the rule that asks for the check */
	if (pgp != NULL)
		return sibling(x, pgp, FSTP_PGP_READY);
	return FSTP_COMMIT;
}

/* SHA512: the body against the sibling URL.sha512 when asked for (SHA512_READY); else PGP. */
static enum fetch_step fstp_sha512(struct fetch *x)
{
	if (x->sha512 == NULL)
		return FSTP_PGP;
	EVP_DigestFinal_ex(x->sha512, x->digest512, NULL);
	return sibling(x, ".sha512", FSTP_SHA512_READY);
}

/*
 * SHA512_READY: the .sha512 sibling is there (or not): a mismatch is
 * REFUSED; no published or readable line leaves the body unchecked (said in
 * the log); a match marks it verified.  Then PGP.
 */
static enum fetch_step fstp_sha512_ready(struct fetch *x)
{
	char *text = NULL;
	size_t n = 0;
	enum verdict v = SHA_UNKNOWN;
	const char *why = x->sib_why;
	int rc;

	if (x->sib_ok) {
		rc = al_read_small(srv.store, x->sib_key, 1024, &text, &n); /* a .sha512 file is a line */
		if (rc == 0)
			v = compare512(x, text, n);
		free(text);
		why = rc == 0 ? "not a .sha512 line" : rc == -ENOENT ? "no .sha512 published" : "unreadable .sha512";
	}
	if (v == SHA_MISMATCH) {
		al_err("integrity", "%s: body does not match %s.sha512; not admitted, the next request refetches",
		    x->url, x->url);
		return refuse(x, "SHA-512 mismatch against the published .sha512");
	}
	if (v == SHA_UNKNOWN)
		al_info("integrity", "%s: not checked against .sha512 (%s)", x->url, why);
	x->check_flags |= v == SHA_MATCH ? AL_REC_VERIFIED : 0;
	return FSTP_PGP;
}

/* MODEL: a model file (cache.verify_models) against its metadata, a sibling (MODEL_READY); else SHA512. */
static enum fetch_step fstp_model(struct fetch *x)
{
	char meta[4200];

	if (x->model_check && al_model_metadata_url(x->url, meta, sizeof(meta)) == 0)
		return sibling_at(x, meta, FSTP_MODEL_READY);
	return FSTP_SHA512;
}

/*
 * MODEL_READY: the model's metadata is there (or not): its sha256 and size
 * against the body (policy/models.c says why both); a mismatch is REFUSED,
 * no readable metadata leaves the body unchecked.  The body's SHA-256 is
 * the one the record will carry, taken from a copy of the running digest.
 * Then SHA512.
 */
static enum fetch_step fstp_model_ready(struct fetch *x)
{
	char *text = NULL;
	size_t n = 0;
	uint8_t want[32], got[32];
	int has_sha = 0, rc = -ENOENT;
	int64_t size = -1;
	EVP_MD_CTX *copy;

	if (x->sib_ok && (rc = al_read_small(srv.store, x->sib_key, 1u << 20, &text, &n)) == 0)
		rc = al_model_metadata_parse(text, n, want, &has_sha, &size);
	free(text);
	if (rc != 0 || (!has_sha && size < 0)) {
		al_info("integrity", "%s: not checked against its metadata (%s)", x->url,
		    !x->sib_ok ? x->sib_why : rc == 0 ? "it names no sha256 or size" : "no readable metadata");
		return FSTP_SHA512;
	}
	if (size >= 0 && (uint64_t)size != x->off) {
		al_err("integrity", "%s: %llu bytes, its metadata says %lld; not admitted", x->url,
		    (unsigned long long)x->off, (long long)size);
		return refuse(x, "size mismatch against the model's metadata");
	}
	if (has_sha) {
		if ((copy = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(copy, x->sha) ||
		    !EVP_DigestFinal_ex(copy, got, NULL)) {
			EVP_MD_CTX_free(copy);
			return refuse(x, "out of memory");
		}
		EVP_MD_CTX_free(copy);
		if (memcmp(want, got, 32) != 0) {
			al_err("integrity", "%s: body does not match the sha256 of its metadata; not admitted", x->url);
			return refuse(x, "SHA-256 mismatch against the model's metadata");
		}
		x->check_flags |= AL_REC_VERIFIED;
	}
	return FSTP_SHA512;
}

/*
 * VERIFY: the body is complete and every chunk written: as long as its
 * Content-Length said (else FAILED, like a broken transfer), and for a GeoIP
 * database the MD5 its key names (Elasticsearch checks the same,
 * GeoIpDownloader.indexChunks; a mismatch is REFUSED).  Then MODEL.
 */
static enum fetch_step fstp_verify(struct fetch *x)
{
	if (x->content_length >= 0 && (int64_t)x->off != x->content_length) {
		x->bad = "body shorter than Content-Length";
		return FSTP_FAILED;
	}
	if (x->md5 != NULL) {
		unsigned char got[16];
		if (!EVP_DigestFinal_ex(x->md5, got, NULL) || memcmp(got, x->md5_want, 16) != 0) {
			al_err("integrity", "%s: body does not match the md5_hash it is named by; not admitted", x->url);
			return refuse(x, "MD5 mismatch against the database's md5_hash");
		}
		x->check_flags |= AL_REC_VERIFIED;
	}
	return FSTP_MODEL;
}

static int fetch_begin(struct fetch *x);

/* curl ended the transfer (res), or it was cut short: the fetch goes on at ENDED. */
static void fetch_done(CURL *easy, CURLcode res, int local_errno, void *arg)
{
	struct fetch *x = arg;

	x->local_errno = local_errno;

	if (x->fb_ev)
		evtimer_del(x->fb_ev);
	x->easy = NULL;
	x->store_paused = 0;
	curl_easy_cleanup(easy);
	x->finish_res = res;
	fetch_run(x, FSTP_ENDED);
}

/*
 * The store writer ran a job of this fetch's: a refusal is said; a commit
 * that has run re-enters at COMMITTED, an ended transfer whose chunks are
 * all written at FINISH; else a transfer paused for want of buffers goes on.
 */
static void store_done(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *x = arg;
	int busy, rc = store_rc(x->io, &busy);

	if (rc != 0 && !x->refreshing)
		cache_refused(x, rc, "the body");
	if (x->committing) {
		if (!busy)
			fetch_run(x, FSTP_COMMITTED);
		return;
	}
	if (x->finishing) {
		if (!busy) {
			x->finishing = 0;
			fetch_run(x, FSTP_FINISH);
		}
		return;
	}
	if (x->store_paused && x->easy != NULL) {
		x->store_paused = 0;
		curl_easy_pause(x->easy, CURLPAUSE_CONT); /* x->bad set: the write callback ends it */
	}
}

/*
 * ENDED: the transfer is over (x->finish_res): the last part of a stored
 * body goes to the writer; what follows (checks and admission, or the
 * abort) comes after the writer has written it all (store_done re-enters
 * at FINISH).
 */
static enum fetch_step fstp_ended(struct fetch *x)
{
	int busy = 0, rc;

	if (x->finish_res == CURLE_OK && x->bad == NULL && x->f->state == FILL_STREAM && (rc = flush_chunk(x)) != 0)
		cache_refused(x, rc, "the body");
	if (x->io != NULL)
		store_rc(x->io, &busy);
	if (busy) {
		x->finishing = 1;
		return FSTP_PARK;
	}
	return FSTP_FINISH;
}

/*
 * FINISH: the transfer is over and the writer has all of it: what it
 * became.  A 304's refresh: REFRESHED; a stored body the writer took whole:
 * VERIFY; a passed response that ended well: its client told, DONE; one
 * that ended on purpose after its head (a 5xx for the stale copy): DONE;
 * anything else: FAILED.
 */
static enum fetch_step fstp_finish(struct fetch *x)
{
	struct fill *f = x->f;
	CURLcode res = x->finish_res;

	if (x->refreshing) /* the transfer ended and the refresh is committed (or failed) */
		return FSTP_REFRESHED;
	if (res == CURLE_OK && x->bad == NULL && f->state == FILL_STREAM) {
		int rc = store_rc(x->io, NULL);

		if (rc == 0)
			return FSTP_VERIFY;
		cache_refused(x, rc, "the body");
	}
	if (res == CURLE_OK && x->bad == NULL && (f->state == FILL_REFRESHED || f->state == FILL_PASS)) {
		if (f->state == FILL_PASS && x->has_sink)
			x->sink.end(x->sink.arg, 1);
		return FSTP_DONE;
	}
	if (f->state == FILL_REFRESHED || (f->state == FILL_FAILED &&
	    (f->failure == FAIL_UPSTREAM_5XX || f->failure == FAIL_UNSELECTED)))
		return FSTP_DONE; /* ended on purpose after the head */
	return FSTP_FAILED;
}

/* REFRESHED: a 304's refresh has run: the waiters look again (DONE), or the refresh failed (FAILED). */
static enum fetch_step fstp_refreshed(struct fetch *x)
{
	int rc;

	x->refreshing = 0;
	pthread_mutex_lock(&x->io->mu);
	rc = x->io->commit_rc;
	pthread_mutex_unlock(&x->io->mu);
	if (rc == 0) {
		al_count(&x->w->stats.revalidated, 1);
		set_state(x->f, FILL_REFRESHED, FAIL_NONE, NULL);
		return FSTP_DONE; /* the 304's end does not matter once the record is refreshed */
	}
	if (x->bad == NULL)
		x->bad = rc == -ENOENT ? "304 for an entry that is gone" : "the cache refused the refresh";
	if (rc != -ENOENT)
		cache_refused(x, rc, "the refresh");
	return FSTP_FAILED;
}

/* Why the transfer failed: x->bad, or curl's word for x->finish_res. */
static void fetch_error(const struct fetch *x, char *err, size_t cap)
{
	if (x->bad != NULL)
		snprintf(err, cap, "%s", x->bad);
	else
		snprintf(err, cap, "%s", curl_easy_strerror(x->finish_res));
}

/*
 * The fill fails: an upstream unreachable before its head is marked offline
 * (its waiters then serve stale copies); a timeout later marks it too; the
 * rest is a broken (or refused) transfer.
 */
static void give_up(struct fetch *x, const char *err)
{
	CURLcode res = x->finish_res;

	if (!x->head_done && x->bad == NULL && x->local_errno != 0) {
		/* this host's limit, not the upstream's fault: the uplink stays online, the waiters get 503 */
		al_err("fill", "%s: no socket for the upstream: %s (raise the open-files limit, or lower "
		    "max_connections)", x->url, strerror(x->local_errno));
		fail_stream(x, FAIL_LOCAL, "airlock could not open a socket for the upstream");
	} else if (!x->head_done && x->bad == NULL && is_unreachable(res)) {
		uplink_failed(x->uplink, err);
		al_warn("fill", "%s: upstream unreachable: %s", x->url, err);
		fail_stream(x, FAIL_UNREACHABLE, err);
	} else {
		if (res == CURLE_OPERATION_TIMEDOUT)
			uplink_failed(x->uplink, err);
		al_warn("fill", "%s: not stored: %s", x->url, err);
		fail_stream(x, x->refused ? FAIL_STORE : FAIL_BROKEN, err);
	}
}

/*
 * FAILED: the transfer failed.  upstream.parents: a parent unreachable
 * before its head, and parents left untried: RETRY.  Else the fill fails
 * (give_up), DONE.
 */
static enum fetch_step fstp_failed(struct fetch *x)
{
	char err[160];

	fetch_error(x, err, sizeof(err));
	if (!x->head_done && x->bad == NULL && is_unreachable(x->finish_res) && x->local_errno == 0 &&
	    ++x->parent_tries < x->conf->cfg->nparents)
		return FSTP_RETRY;
	give_up(x, err);
	return FSTP_DONE;
}

/* RETRY: the next parent, asked with a new transfer (as START); all of them down = offline. */
static enum fetch_step fstp_retry(struct fetch *x)
{
	const struct al_config *cfg = x->conf->cfg;
	int from = x->parent;
	char err[160];

	fetch_error(x, err, sizeof(err));
	x->parent = (x->parent + 1) % cfg->nparents;
	al_warn("fill", "%s: parent %s unreachable (%s); asking %s", x->url, cfg->parents[from].base, err,
	    cfg->parents[x->parent].base);
	if (fetch_begin(x) == 0)
		return FSTP_PARK;
	give_up(x, err);
	return FSTP_DONE;
}

/* DONE: the fetch ends; the fill keeps the state its waiters read. */
static enum fetch_step fstp_done(struct fetch *x)
{
	fetch_free(x);
	return FSTP_PARK;
}

static void on_first_byte_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *x = arg;
	CURL *easy = x->easy;

	if (x->head_done)
		return;
	up_cancel(x->w->multi, easy);
	fetch_done(easy, CURLE_OPERATION_TIMEDOUT, 0, x);
}

static int64_t parse_u64(const char *v, size_t n)
{
	int64_t x = 0;

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

/*
 * RFC 9110 7.6.1: fields named in Connection are for the hop that sent them;
 * take their lines out of the stored head.  Returns the new length.
 */
static size_t drop_connection_fields(char *head, size_t len, const char *tokens)
{
	size_t in = 0, out = 0;

	while (in < len) {
		const char *line = head + in, *eol = memchr(line, '\n', len - in);
		size_t ll = eol ? (size_t)(eol + 1 - line) : len - in;
		const char *colon = memchr(line, ':', ll);
		int drop = 0;

		if (colon != NULL && colon > line) {
			char name[128];
			size_t nl = (size_t)(colon - line);
			if (nl < sizeof(name)) {
				memcpy(name, line, nl);
				name[nl] = '\0';
				drop = al_list_has_token(tokens, strlen(tokens), name);
			}
		}
		if (!drop) {
			memmove(head + out, line, ll);
			out += ll;
		}
		in += ll;
	}
	return out;
}

/* The head's last touches: fields the upstream's Connection names go, and a Date comes if it has none. */
static void head_fields(struct fetch *x)
{
	size_t dl;

	if (x->conn_tokens[0])
		x->head_len = drop_connection_fields(x->head, x->head_len, x->conn_tokens);
	/* RFC 9110 §6.6.1: a recipient with a clock adds Date to a response it caches without one. */
	if (al_hdr_get(x->head, x->head_len, "Date", &dl) == NULL && x->head_len + 40 < HEAD_MAX) {
		char d[32];
		al_http_date_fmt((time_t)x->resp_time, d);
		x->head_len += (size_t)snprintf(x->head + x->head_len, HEAD_MAX - x->head_len, "Date: %s\r\n", d);
	}
}

/* A copy of the head for the fill (its waiters read it), or NULL with x->halt. */
static char *head_copy(struct fetch *x)
{
	char *copy = malloc(x->head_len + 1);

	if (copy == NULL) {
		x->bad = "out of memory";
		x->halt = 1;
		return NULL;
	}
	memcpy(copy, x->head, x->head_len);
	copy[x->head_len] = '\0';
	return copy;
}

/*
 * STORE: a storable response: its pending entry goes to the store writer
 * and the waiters follow the body (FILL_STREAM).  The body then flows
 * through write_cb into chunks for the writer until curl ends the transfer
 * (fetch_done: ENDED).  No object id: PASS after all.
 */
static enum fetch_step fstp_store(struct fetch *x)
{
	struct fill *f = x->f;
	uint64_t id;
	char *copy;

	if (al_fill_new_id(&id) != 0) {
		x->pass_why = "cache-unavailable";
		return FSTP_PASS;
	}
	if ((copy = head_copy(x)) == NULL)
		return FSTP_PARK;
	x->io = store_io_new(x, id, f->key);
	x->buf = x->io != NULL ? store_buf_take(x->io) : NULL;
	x->sha = EVP_MD_CTX_new();
	x->flush_ev = evtimer_new(x->w->base, on_flush_timer, x);
	x->model_check = x->status == 200 && al_needs_model_check(x->conf->cfg, x->url);
	if (x->status == 200 && al_geoip_key_md5(x->url, x->md5_want) == 0 &&
	    ((x->md5 = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(x->md5, EVP_md5(), NULL)))
		x->buf = (free(x->buf), NULL);
	if (al_needs_sha512(x->conf->cfg, x->url) && x->status == 200 &&
	    ((x->sha512 = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(x->sha512, EVP_sha512(), NULL)))
		x->buf = (free(x->buf), NULL);
	if (x->buf == NULL || x->sha == NULL || x->flush_ev == NULL ||
	    !EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL)) {
		free(copy);
		x->bad = "out of memory";
		x->halt = 1;
		return FSTP_PARK;
	}
	store_post(x->io, &x->io->begin_job, begin_write, begin_done); /* the pending entry, on the writer */
	pthread_mutex_lock(&f->mu);
	f->obj_id = id;
	f->status = x->status;
	f->hdrs = copy;
	f->hdrs_len = x->head_len;
	f->content_length = x->content_length;
	f->age = x->age_line;
	f->state = FILL_STREAM;
	notify_locked(f);
	pthread_mutex_unlock(&f->mu);
	return FSTP_PARK;
}

/*
 * PASS: a response that may not be stored (x->pass_why) goes to the
 * originating client's sink; write_cb carries its body there.  No sink (its
 * client went away): the transfer stops.
 */
static enum fetch_step fstp_pass(struct fetch *x)
{
	struct fill *f = x->f;
	char *copy = head_copy(x);

	if (copy == NULL)
		return FSTP_PARK;
	al_debug("fill", "%s: passing %d through (%s)", x->url, x->status, x->pass_why);
	al_count(&x->w->stats.passes, 1);
	pthread_mutex_lock(&f->mu);
	f->status = x->status;
	f->hdrs = copy;
	f->hdrs_len = x->head_len;
	f->content_length = x->content_length;
	f->age = x->age_line;
	snprintf(f->error, sizeof(f->error), "%s", x->pass_why);
	pthread_mutex_unlock(&f->mu);
	set_state(f, FILL_PASS, FAIL_NONE, NULL);
	if (!x->has_sink) {
		x->halt = 1;
		return FSTP_PARK;
	}
	x->sink.head(x->sink.arg, x->status, x->head, x->head_len, x->content_length, x->age_line);
	return FSTP_PARK;
}

/*
 * REFRESH: a 304 to a revalidation: the stored record takes its head, on
 * the store writer (refresh_write); the transfer runs to its end and FINISH
 * then goes to REFRESHED once the refresh is committed.
 */
static enum fetch_step fstp_refresh(struct fetch *x)
{
	if ((x->io = store_io_new(x, 0, x->f->key)) == NULL) {
		x->bad = "out of memory";
		x->halt = 1;
		return FSTP_PARK;
	}
	x->refreshing = 1;
	store_post(x->io, &x->io->refresh_job, refresh_write, refresh_done);
	return FSTP_PARK;
}

/*
 * Whether a 304 selects the stored response the revalidation sent the
 * validators of (policy/freshness.c al_304_selects: RFC 9111 4.3.4, strong
 * ETags only); logged when it does not, for the fill then fails on purpose
 * and its waiters fetch again without validators.
 */
static int selected_by_304(const struct fetch *x)
{
	size_t el = 0;
	const char *e;

	if (al_304_selects(x->inm, x->ims, x->head, x->head_len))
		return 1;
	e = al_hdr_get(x->head, x->head_len, "ETag", &el);
	al_info("fill", "%s: the upstream's 304 (ETag %.*s) does not select the stored response (ETag %s): "
	    "fetched again in full", x->url, e ? (int)(el < 80 ? el : 80) : 6, e ? e : "(none)",
	    x->inm ? x->inm : "(none)");
	return 0;
}

/*
 * HEAD: the response head is complete (header_cb): the upstream is
 * reachable; decide what this fill becomes: REFRESH (a 304 to a
 * revalidation that selects the stored response; failed on purpose for
 * one that does not), failed for the stale copy (a 5xx to a revalidation, with
 * upstream.stale_on_5xx: the transfer stops), STORE, or PASS (not storable,
 * too large, or a key the cache lately had no room for).
 */
static enum fetch_step fstp_head(struct fetch *x)
{
	struct fill *f = x->f;
	const char *why;

	x->head_done = 1;
	x->resp_time = time(NULL);
	if (x->head == NULL && (x->head = malloc(HEAD_MAX)) == NULL) {
		x->bad = "out of memory";
		x->halt = 1;
		return FSTP_PARK;
	}
	head_fields(x);
	if (x->fb_ev)
		evtimer_del(x->fb_ev);
	uplink_succeeded(x->uplink);
	if (x->conf->cfg->nparents > 0)
		atomic_store(&parent_pref, x->parent);
	if (x->conditional && x->status == 304 && !selected_by_304(x)) {
		set_state(f, FILL_FAILED, FAIL_UNSELECTED, "a 304 for another representation");
		x->halt = 1; /* stop the transfer; waiters fetch again without validators */
		return FSTP_PARK;
	}
	if (x->conditional && x->status == 304)
		return FSTP_REFRESH;
	if (x->revalidating && x->status >= 500 && x->conf->cfg->stale_on_5xx) {
		char e[64];
		snprintf(e, sizeof(e), "upstream answered %d", x->status);
		set_state(f, FILL_FAILED, FAIL_UPSTREAM_5XX, e);
		x->halt = 1; /* stop the transfer; waiters serve the stale copy */
		return FSTP_PARK;
	}
	why = al_uncacheable_reason(x->status, x->head, x->head_len);
	/* Known to be too large to keep: pass it through rather than fail it half-way. */
	if (why == NULL && x->content_length > 0 &&
	    ((uint64_t)x->content_length > x->conf->cfg->cache_max_object_size ||
	     (uint64_t)x->content_length > x->conf->cfg->cache_max_size))
		why = "too-large";
	/* The cache refused this key for want of room lately: its client gets it passed through. */
	if (why == NULL && backoff_active(f->key))
		why = "cache-full";
	x->pass_why = why;
	return why == NULL ? FSTP_STORE : FSTP_PASS;
}

/* One raw line of the upstream's head (curl hands them over unchanged). */
static size_t header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct fetch *x = arg;
	size_t len = size * n, nl, vl, keep;
	const char *name, *v, *why = NULL;
	int status = 0;

	if (x->bad != NULL || x->head_done)
		return x->head_done ? len : 0;
	switch (up_response_line(buf, len, &status, &name, &nl, &v, &vl, &why)) {
	case RESP_STATUS:
		/* every response's status line, interim ones included: start over */
		x->head_len = 0;
		x->conn_tokens[0] = '\0';
		x->content_length = -1;
		x->age_value = 0;
		x->age_line = -1;
		x->age_seen = 0;
		x->status = status;
		return len;
	case RESP_END:
		if (x->status >= 100 && x->status < 200)
			return len; /* interim response; the real one follows */
		x->halt = 0;
		fetch_run(x, FSTP_HEAD);
		return x->halt ? 0 : len;
	case RESP_BAD:
		x->bad = why;
		return 0;
	case RESP_FIELD:
		break;
	}
	if (al_name_is(name, nl, "Content-Length")) {
		int64_t cl = parse_u64(v, vl);
		if (cl < 0 || (x->content_length >= 0 && x->content_length != cl)) {
			x->bad = "bad or conflicting Content-Length";
			return 0;
		}
		x->content_length = cl;
		return len;
	}
	if (al_name_is(name, nl, "Accept-Ranges"))
		return len; /* airlock serves ranges from the cache itself and says so (conn.c begin_response) */
	if (al_name_is(name, nl, "Age")) {
		if (!x->age_seen) {
			x->age_seen = 1;
			x->age_line = al_age_value(v, vl);
			x->age_value = x->age_line > 0 ? x->age_line : 0;
		}
		return len;
	}
	if (al_name_is(name, nl, "Connection")) {
		size_t used = strlen(x->conn_tokens);
		snprintf(x->conn_tokens + used, sizeof(x->conn_tokens) - used, "%s%.*s", used ? "," : "", (int)vl, v);
	}
	if (al_hdr_is_hop(name, nl))
		return len;
	keep = len - (buf[len - 2] == '\r' ? 2 : 1);
	if (x->head_len + keep + 2 > HEAD_MAX) {
		x->bad = "response head too large";
		return 0;
	}
	if (x->head == NULL && (x->head = malloc(HEAD_MAX)) == NULL) {
		x->bad = "out of memory";
		return 0;
	}
	/* Kept exactly as sent, with a CRLF ending. */
	memcpy(x->head + x->head_len, buf, keep);
	x->head_len += keep;
	x->head[x->head_len++] = '\r';
	x->head[x->head_len++] = '\n';
	return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct fetch *x = arg;
	struct fill *f = x->f;
	size_t len = size * n, done = 0;
	int rc;

	if (x->bad != NULL)
		return 0;
	if (f->state == FILL_PASS) {
		if (!x->has_sink)
			return 0;
		if (x->sink.full(x->sink.arg)) {
			x->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		x->sink.body(x->sink.arg, data, len);
		al_count(&x->w->stats.bytes_from_upstream, len);
		return len;
	}
	if (f->state != FILL_STREAM)
		return len; /* a 304's or a 5xx's body: not ours to keep */
	if (x->content_length >= 0 && x->off + len > (uint64_t)x->content_length) {
		x->bad = "body longer than Content-Length";
		return 0;
	}
	if (x->off + len > x->conf->cfg->cache_max_object_size) {
		x->bad = "response larger than cache.max_object_size";
		return 0;
	}
	/*
	 * Room for all of it first (curl gives at most CURLOPT_BUFFERSIZE, under
	 * a chunk, so at most one flush): else pause, and take none of it.
	 */
	if (x->buf == NULL)
		x->buf = store_buf_take(x->io);
	if (x->buf == NULL || (x->buf->len + len >= CHUNK_BYTES && !store_buf_ready(x->io))) {
		x->store_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	EVP_DigestUpdate(x->sha, data, len);
	if (x->sha512 != NULL)
		EVP_DigestUpdate(x->sha512, data, len);
	if (x->md5 != NULL)
		EVP_DigestUpdate(x->md5, data, len);
	while (done < len) {
		size_t take = len - done;
		if (x->buf == NULL && (x->buf = store_buf_take(x->io)) == NULL) {
			x->bad = "out of memory";
			return 0;
		}
		if (take > CHUNK_BYTES - x->buf->len)
			take = CHUNK_BYTES - x->buf->len;
		memcpy(x->buf->data + x->buf->len, data + done, take);
		x->buf->len += take;
		done += take;
		if (x->buf->len == CHUNK_BYTES && (rc = flush_chunk(x)) != 0) {
			cache_refused(x, rc, "the body");
			return 0;
		}
	}
	x->off += len;
	if (x->buf != NULL && x->buf->len > 0 && !evtimer_pending(x->flush_ev, NULL)) {
		struct timeval tv = {0, FLUSH_MS * 1000};
		evtimer_add(x->flush_ev, &tv);
	}
	return len;
}

/*
 * libcurl reports an upstream that sends more than its Content-Length only
 * as an informational text ("Excess found ..."); such a response is not
 * trustworthy framing, so it is refused like a short one.
 */
static int debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	struct fetch *x = arg;

	if (type == CURLINFO_TEXT && size >= 12 && memcmp(data, "Excess found", 12) == 0 && x->bad == NULL)
		x->bad = "body longer than Content-Length";
	return 0;
}

/*
 * A new transfer for x: aimed at the URL directly or at the parent x->parent
 * asks (up_target), with its first-byte timer.  Used at the start and again
 * when a parent proves unreachable.
 */
static int fetch_begin(struct fetch *x)
{
	const struct al_config *cfg = x->conf->cfg;
	struct curl_slist *h = NULL;

	x->easy = up_easy_new(cfg, &x->conf->connect_to);
	if (x->easy == NULL)
		return -ENOMEM;
	for (const struct curl_slist *p = x->req_hdrs; p != NULL; p = p->next)
		h = curl_slist_append(h, p->data);
	h = up_target(x->easy, cfg, x->fetch_url ? x->fetch_url : x->url, cfg->nparents > 0 ? x->parent : -1, h);
	curl_slist_free_all(x->att_hdrs);
	x->att_hdrs = h;
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->att_hdrs);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(x->easy, CURLOPT_DEBUGDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_VERBOSE, 1L);
	if (up_start(x->w->multi, x->easy, fetch_done, x) != 0) {
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
		return -EIO;
	}
	if (cfg->first_byte_timeout_ms > 0) {
		int64_t ms = cfg->first_byte_timeout_ms; /* from the start: connecting included */
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(x->fb_ev, &tv);
	}
	return 0;
}

/*
 * START: the first transfer for the fill (fetch_begin), counted; curl's
 * callbacks take it on from here (header_cb: HEAD; fetch_done: ENDED).  A
 * transfer that cannot start fails the fill.
 */
static enum fetch_step fstp_start(struct fetch *x)
{
	if (fetch_begin(x) != 0) {
		set_state(x->f, FILL_FAILED, FAIL_BROKEN, "cannot start the transfer");
		return FSTP_DONE;
	}
	al_count(&x->w->stats.upstream_fetches, 1);
	uplink_count_fetch(x->uplink);
	return FSTP_PARK;
}

typedef enum fetch_step fetch_step_fn(struct fetch *x);

static fetch_step_fn *const fetch_steps[FSTP_PARK] = {
	[FSTP_START] = fstp_start, [FSTP_HEAD] = fstp_head, [FSTP_REFRESH] = fstp_refresh, [FSTP_STORE] = fstp_store,
	[FSTP_PASS] = fstp_pass, [FSTP_ENDED] = fstp_ended, [FSTP_FINISH] = fstp_finish,
	[FSTP_REFRESHED] = fstp_refreshed, [FSTP_FAILED] = fstp_failed, [FSTP_RETRY] = fstp_retry,
	[FSTP_VERIFY] = fstp_verify, [FSTP_MODEL] = fstp_model, [FSTP_MODEL_READY] = fstp_model_ready,
	[FSTP_SHA512] = fstp_sha512, [FSTP_SHA512_READY] = fstp_sha512_ready, [FSTP_PGP] = fstp_pgp,
	[FSTP_PGP_READY] = fstp_pgp_ready, [FSTP_PGP_VERDICT] = fstp_pgp_verdict, [FSTP_COMMIT] = fstp_commit,
	[FSTP_COMMITTED] = fstp_committed, [FSTP_REFUSED] = fstp_refused, [FSTP_DONE] = fstp_done,
};

/*
 * Run x from step s until a step parks it (Varnish's vbf_fetch_thread loop,
 * here on the worker's loop).  Entered by fill_start (START) and again by
 * curl's callbacks (header_cb: HEAD; fetch_done: ENDED), the store writer
 * (store_done: FINISH, COMMITTED), a sibling's end (sib_wake) and the
 * OpenPGP thread (pgp_done: PGP_VERDICT).  DONE frees x: after a run that
 * reached it, x is gone.
 */
static void fetch_run(struct fetch *x, enum fetch_step s)
{
	while (s != FSTP_PARK) {
		x->step = s;
		s = fetch_steps[s](x);
	}
}

int fill_start(struct fill *f, struct worker *w, const struct fetch_params *p, const struct pass_sink *sink)
{
	struct fetch *x = calloc(1, sizeof(*x));
	char hdr[1024];
	int started;

	if (x == NULL)
		goto err;
	x->w = w;
	x->conf = al_conf_hold(p->conf != NULL ? p->conf : worker_conf(w));
	x->uplink = p->uplink;
	x->revalidating = p->revalidating;
	x->content_length = -1;
	x->url = strdup(p->url);
	x->fetch_url = p->fetch_url ? strdup(p->fetch_url) : NULL;
	x->fb_ev = evtimer_new(w->base, on_first_byte_timeout, x);
	if (x->url == NULL || x->fb_ev == NULL || (p->fetch_url && x->fetch_url == NULL))
		goto err_fetch;
	if (x->conf->cfg->nparents > 0) /* the index is taken and used under this one configuration */
		x->parent = atomic_load(&parent_pref) % x->conf->cfg->nparents;
	if (sink != NULL) {
		x->sink = *sink;
		x->has_sink = 1;
	}
	snprintf(hdr, sizeof(hdr), "User-Agent: %s", p->user_agent ? p->user_agent : "airlock/" AIRLOCK_VERSION);
	x->req_hdrs = curl_slist_append(x->req_hdrs, hdr);
	snprintf(hdr, sizeof(hdr), "Via: 1.1 %s", x->conf->cfg->name);
	x->req_hdrs = curl_slist_append(x->req_hdrs, hdr);
	if (p->if_none_match != NULL) {
		snprintf(hdr, sizeof(hdr), "If-None-Match: %s", p->if_none_match);
		x->req_hdrs = curl_slist_append(x->req_hdrs, hdr);
		x->conditional = 1;
		x->inm = strdup(p->if_none_match);
	}
	if (p->if_modified_since != NULL) {
		snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", p->if_modified_since);
		x->req_hdrs = curl_slist_append(x->req_hdrs, hdr);
		x->conditional = 1;
		x->ims = strdup(p->if_modified_since);
	}
	x->req_time = time(NULL);
	x->f = f;
	pthread_mutex_lock(&f->mu);
	f->refs++;              /* the fetch's own reference */
	f->fetch = x;
	pthread_mutex_unlock(&f->mu);
	x->next = w->fetches;
	if (w->fetches)
		w->fetches->prev = x;
	w->fetches = x;
	fetch_run(x, FSTP_START);
	pthread_mutex_lock(&f->mu); /* the caller's reference keeps f */
	started = f->state != FILL_FAILED;
	pthread_mutex_unlock(&f->mu);
	return started ? 0 : -EIO;

err_fetch:
	if (x->fb_ev)
		event_free(x->fb_ev);
	free(x->url);
	al_conf_release(x->conf);
	free(x->fetch_url);
	free(x->inm);
	free(x->ims);
	free(x);
err:
	set_state(f, FILL_FAILED, FAIL_BROKEN, "out of memory");
	return -ENOMEM;
}

void fill_pass_resume(struct fill *f)
{
	struct fetch *x = f->fetch;

	if (x != NULL && x->paused) {
		x->paused = 0;
		curl_easy_pause(x->easy, CURLPAUSE_CONT);
	}
}

void fill_pass_detach(struct fill *f)
{
	struct fetch *x = f->fetch;
	CURL *easy;

	if (x == NULL || !x->has_sink)
		return;
	x->has_sink = 0;
	if (f->state == FILL_PASS || f->state == FILL_WAIT) {
		/* Nobody else can use a passed response: stop it now. */
		if (f->state == FILL_WAIT)
			return; /* it may still turn out storable; the fill goes on */
		easy = x->easy;
		up_cancel(x->w->multi, easy);
		x->bad = "client went away";
		fetch_done(easy, CURLE_ABORTED_BY_CALLBACK, 0, x);
	}
}

void fill_worker_shutdown(struct worker *w)
{
	while (w->fetches != NULL) {
		struct fetch *x = w->fetches;
		x->bad = "shutting down";
		x->has_sink = 0;
		if (x->committing) { /* admitted; the commit is with the writer */
			store_io_wait(x->io);
			fetch_run(x, FSTP_COMMITTED);
			continue;
		}
		if (x->finishing) { /* the transfer ended; its chunks are still being written */
			store_io_wait(x->io);
			x->finishing = 0;
			fetch_run(x, FSTP_FINISH);
			continue;
		}
		if (x->easy == NULL) { /* waiting on the .sha512: the body is not admitted */
			fail_stream(x, FAIL_BROKEN, "shutting down");
			fetch_free(x);
			continue;
		}
		up_cancel(w->multi, x->easy);
		fetch_done(x->easy, CURLE_ABORTED_BY_CALLBACK, 0, x);
	}
}
