/*
 * The offline package registry's glue: answer /search or /categories from
 * the registry index the store keeps of the package documents it holds
 * (cache/store.h regidx, summaries from policy/registry_summary.h), with
 * policy/registry.c's rules, when the registry cannot be reached.
 *
 * A query reads every summary under the registry's base: tens of
 * milliseconds for a catalogue of 20,000 versions, 16 MB of answer for
 * all=true.  So it never runs on the worker's loop:
 *
 *   worker loop                      query thread (QUERY_THREADS of them)
 *   conn_registry_answer --post--->  run_job: scan regidx in a snapshot,
 *     (conn waits, C_WAIT)             per name newest first, build body
 *   on_done <---event_active(done)---
 *     send the body (a reference, no copy), C_DONE
 *
 * The job holds a reference on the connection's hold (conn_impl.h), which
 * outlives the connection: on_done finds hold->c NULL when the client went
 * away meanwhile, and drops the body.  /search without category or legacy
 * rules reads only skeletons and joins the entries rendered at admission
 * (al_registry_run_rendered); the rest parses summaries (the scan is
 * cache/registry_query.c's, shared with readiness).  Memory per
 * query: the answer, and the kept skeletons or (without all) one parsed
 * summary per name.
 */
#include "cache/registry_query.h"
#include "policy/registry.h"
#include "proxy/front/conn_impl.h"
#include "proxy/runtime/log.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_THREADS 2

struct job {
	struct job *next;
	struct hold *hold;       /* a reference: hold->c is the connection, NULL once it is gone */
	struct event *done;      /* on the connection's worker loop */
	char *base;
	size_t blen;
	char *memo_key;          /* base, endpoint and query string, as asked */
	int search;
	struct al_registry_query q;
	/* or another answer computed off the loop (conn_offload_answer): compute, not run_query */
	char *(*compute)(void *arg, size_t *n);
	void *arg;
	void (*free_arg)(void *arg);
	const char *ctype;       /* the answer's Content-Type */
	const char *detail;      /* Cache-Status detail, with one %zu: n */
	/* results, written by the query thread before it activates done */
	char *body;
	size_t ndocs;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *head, **tail = &head;
static pthread_t threads[QUERY_THREADS];
static int nthreads, stopping;

/*
 * jansson's memory on a query thread while it answers a list: bumped out
 * of this thread's blocks and given back all at once when the answer is
 * made.  A list at 20,000 versions parses ~3,000 skeletons of ~30
 * allocations each and keeps one per name until it answers: malloc and
 * free (with the consolidation a large free triggers) were a third of its
 * CPU.  Everywhere else, and on this thread outside a list, jansson's
 * calls are malloc and free: free tells an arena pointer by its block
 * (blocks stay allocated, so even a late free of one is harmless), and an
 * allocation that does not fit falls back to malloc.  Installed before
 * main (arena_install), so that no thread sees the hooks change.
 */
#define ARENA_BLOCKS 16
#define ARENA_BLOCK (1u << 20)
#define ARENA_BIG (ARENA_BLOCK / 8) /* larger requests go to malloc */

static _Thread_local struct arena {
	char *blk[ARENA_BLOCKS];
	int n, cur, on;
	size_t used;          /* in blk[cur] */
} tl_arena;

static void *arena_malloc(size_t size)
{
	struct arena *a = &tl_arena;
	size_t need = (size + 15) & ~(size_t)15;

	if (!a->on || size == 0 || size > ARENA_BIG)
		return malloc(size);
	while (a->cur < a->n && ARENA_BLOCK - a->used < need) {
		a->cur++;
		a->used = 0;
	}
	if (a->cur == a->n) {
		if (a->n == ARENA_BLOCKS || (a->blk[a->n] = malloc(ARENA_BLOCK)) == NULL)
			return malloc(size);
		a->n++;
		a->used = 0;
	}
	a->used += need;
	return a->blk[a->cur] + a->used - need;
}

static void arena_free(void *p)
{
	const struct arena *a = &tl_arena;

	for (int i = 0; i < a->n; i++)
		if ((uintptr_t)p - (uintptr_t)a->blk[i] < ARENA_BLOCK)
			return;
	free(p);
}

/* From now until arena_end, this thread's jansson allocations come from its blocks. */
static void arena_begin(void)
{
	tl_arena.on = 1;
}

/* Every object made since arena_begin is gone: its blocks serve the next list. */
static void arena_end(void)
{
	struct arena *a = &tl_arena;

	a->on = 0;
	a->cur = 0;
	a->used = 0;
}

/* The thread ends: its blocks go (no object of them is alive: each list ended its arena). */
static void arena_release(void)
{
	struct arena *a = &tl_arena;

	for (int i = 0; i < a->n; i++)
		free(a->blk[i]);
	memset(a, 0, sizeof(*a));
}

__attribute__((constructor)) static void arena_install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

/*
 * Answers already computed, by the index generation they were computed
 * at: Kibana asks the same few queries on every visit to its Integrations
 * page, and any change to the index changes the generation.  Answers up
 * to MEMO_MAX_BODY, MEMO_SLOTS of them (least recently used goes).
 */
#define MEMO_SLOTS 8
#define MEMO_MAX_BODY (4u << 20)

static struct memo {
	char *key, *body;
	uint64_t gen, used;
	size_t len, ndocs;
} memo[MEMO_SLOTS];
static uint64_t memo_clock;
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;

/* A copy of the answer to key at gen, or NULL. */
static char *memo_get(const char *key, uint64_t gen, size_t *ndocs)
{
	char *out = NULL;

	pthread_mutex_lock(&memo_mu);
	for (int i = 0; i < MEMO_SLOTS; i++) {
		if (memo[i].key == NULL || memo[i].gen != gen || strcmp(memo[i].key, key) != 0)
			continue;
		if ((out = malloc(memo[i].len + 1)) != NULL) {
			memcpy(out, memo[i].body, memo[i].len + 1);
			*ndocs = memo[i].ndocs;
			memo[i].used = ++memo_clock;
		}
		break;
	}
	pthread_mutex_unlock(&memo_mu);
	return out;
}

static void memo_put(const char *key, uint64_t gen, const char *body, size_t ndocs)
{
	size_t len = strlen(body);
	char *k, *b;
	int slot = 0;

	if (len > MEMO_MAX_BODY || (k = strdup(key)) == NULL)
		return;
	if ((b = malloc(len + 1)) == NULL) {
		free(k);
		return;
	}
	memcpy(b, body, len + 1);
	pthread_mutex_lock(&memo_mu);
	for (int i = 0; i < MEMO_SLOTS; i++) {
		if (memo[i].key != NULL && strcmp(memo[i].key, key) == 0) {
			slot = i;
			break;
		}
		if (memo[i].used < memo[slot].used)
			slot = i;
	}
	free(memo[slot].key);
	free(memo[slot].body);
	memo[slot] = (struct memo){k, b, gen, ++memo_clock, len, ndocs};
	pthread_mutex_unlock(&memo_mu);
}

static void memo_clear(void)
{
	pthread_mutex_lock(&memo_mu);
	for (int i = 0; i < MEMO_SLOTS; i++) {
		free(memo[i].key);
		free(memo[i].body);
		memo[i] = (struct memo){0};
	}
	pthread_mutex_unlock(&memo_mu);
}

/* The answer to j's query from rd's snapshot of the index; j->body stays NULL on failure. */
static void run_query(struct job *j, struct al_reader *rd)
{
	struct al_registry_run *run;
	uint64_t gen;
	int rc, small;

	if ((rc = al_store_index_gen(rd, &gen)) == 0 && (j->body = memo_get(j->memo_key, gen, &j->ndocs)) != NULL) {
		al_reader_end(rd);
		return;
	}
	if (rc != 0 || (run = al_registry_run_new(&j->q, !j->search)) == NULL) {
		al_reader_end(rd);
		return;
	}
	/* Kibana's list (rendered entries, the newest of each name) keeps little: see the trim below */
	small = al_registry_run_rendered(run) && !j->q.all;
	if (small)
		arena_begin();
	rc = al_registry_index_feed(rd, j->base, j->blen, run, &stopping, &j->ndocs);
	j->body = al_registry_run_finish(run); /* reads summaries of the snapshot: before it ends */
	if (small)
		arena_end(); /* the run's jansson objects are gone with it; the body is malloc's */
	al_reader_end(rd);
	if (rc != 0) {
		al_warn("registry", "offline %s: reading the registry index failed: %s", j->search ? "/search" : "/categories",
		    strerror(-rc));
		free(j->body);
		j->body = NULL;
	} else if (j->body != NULL) {
		memo_put(j->memo_key, gen, j->body, j->ndocs);
	}
	/*
	 * A query's thousands of small blocks are free again: give the pages
	 * back after a query that held a skeleton or summary per document
	 * (all=true: tens of MB).  Not after a list: it holds a few MB (one
	 * skeleton per name, the body), and trimming them made the next list
	 * fault every page in again (a tenth of its CPU at 20,000 versions).
	 */
	if (!small)
		malloc_trim(0);
}

static void *query_main(void *arg)
{
	struct al_reader *rd = NULL;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
	pthread_mutex_lock(&mu);
	for (;;) {
		struct job *j;

		while (head == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (stopping || (j = head) == NULL)
			break;
		if ((head = j->next) == NULL)
			tail = &head;
		pthread_mutex_unlock(&mu);
		if (j->compute != NULL) {
			j->body = j->compute(j->arg, &j->ndocs);
		} else {
			if (rd == NULL && al_reader_new(srv.store, &rd) != 0)
				rd = NULL;
			if (rd != NULL)
				run_query(j, rd);
		}
		event_active(j->done, EV_READ, 0);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	al_reader_free(rd);
	arena_release();
	return arg;
}

static int pool_start(void)
{
	int rc = 0;

	pthread_mutex_lock(&mu);
	while (nthreads < QUERY_THREADS && !stopping) {
		if ((rc = pthread_create(&threads[nthreads], NULL, query_main, NULL)) != 0)
			break;
		nthreads++;
	}
	pthread_mutex_unlock(&mu);
	return nthreads > 0 ? 0 : -rc;
}

void conn_registry_stop(void)
{
	int n;

	pthread_mutex_lock(&mu);
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&cv);
	n = nthreads;
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_lock(&mu);
	nthreads = 0;
	stopping = 0;
	pthread_mutex_unlock(&mu);
	memo_clear();
}

static void body_free(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* STP_ANSWERED: queue the query thread's answer (the body passes to the output). */
static enum req_step registry_answered(struct req *r, void *answer)
{
	struct job *j = answer;
	struct conn *c = r->conn;
	char hdrs[128], detail[160];
	size_t len;

	if (j->body == NULL) {
		conn_reply_error(c, 503, "the offline registry could not answer");
		return STP_DONE;
	}
	len = strlen(j->body);
	snprintf(detail, sizeof(detail), j->detail, j->ndocs);
	snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=miss; detail=\"%s\"", AL_NAME, detail);
	snprintf(hdrs, sizeof(hdrs), "Content-Type: %s\r\n", j->ctype);
	r->result = R_STALE;
	conn_add_head(c, 200, hdrs, strlen(hdrs), (int64_t)len, -1, NULL);
	if (!r->head_only && evbuffer_add_reference(conn_out(c), j->body, len, body_free, NULL) == 0) {
		r->body_sent = len;
		j->body = NULL;
	}
	c->state = C_DONE;
	return STP_DONE;
}

/* Back on the worker's loop: the request goes on at STP_ANSWERED, unless the client went away. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct hold *h = j->hold;
	struct conn *c = h->c;

	(void)fd;
	(void)what;
	if (c != NULL && c->magic == CONN_MAGIC && c->state == C_WAIT) { /* not closing meanwhile */
		c->rq.answered = registry_answered;
		c->rq.answer = j;
		req_run(&c->rq, STP_ANSWERED); /* ends at STP_DONE: the connection writes it on its next turn */
	}
	if (--h->refs == 0 && h->c == NULL) {
		al_reader_free(h->rd);
		free(h);
	}
	event_free(j->done);
	if (j->free_arg != NULL)
		j->free_arg(j->arg);
	free(j->body);
	free(j->base);
	free(j->memo_key);
	free(j);
}

/*
 * /package/<name>/<version> without the trailing slash: the registry's
 * router (gorilla mux with StrictSlash(true), in package-registry's
 * main.go getRouter) answers 301 to the path with the slash, which Kibana's
 * node-fetch follows (older Kibana fetchInfo asked without the slash; newer
 * adds it "to avoid 301 redirect").  Offline, airlock answers that same
 * redirect, but only when the document it leads to is cached, so it never
 * leads to a 504.  0 when answered, -1 when this is not such a request.
 */
static int package_slash_redirect(struct req *r, const char *path)
{
	struct conn *c = r->conn;
	const char *v, *end = path + strcspn(path, "?");
	char url[2200], loc[2200];
	uint8_t key[AL_KEY_LEN];
	struct al_record rec;
	int cached;

	if (strncmp(path, "/package/", 9) != 0 || *end != '\0' || end[-1] == '/')
		return -1;
	v = memchr(path + 9, '/', (size_t)(end - path - 9));
	if (v == NULL || v == path + 9 || memchr(v + 1, '/', (size_t)(end - v - 1)) != NULL || v + 1 == end)
		return -1;
	snprintf(url, sizeof(url), "%s/", r->url);
	al_store_key(url, strlen(url), key);
	cached = al_lookup(c->hold->rd, key, &rec) == 0 && rec.status == 200;
	al_reader_end(c->hold->rd);
	if (!cached)
		return -1;
	snprintf(loc, sizeof(loc), "Location: %.2000s/\r\n", path);
	snprintf(r->cstatus, sizeof(r->cstatus),
	    "%s; fwd=miss; detail=\"registry offline: its StrictSlash redirect to the cached document\"", AL_NAME);
	r->result = R_STALE;
	conn_reply_simple(c, 301, "text/html; charset=utf-8", loc, "<a href=\"%.2000s/\">Moved Permanently</a>.\n", path);
	event_active(c->wake, EV_READ, 0);
	return 0;
}

/* Hand j to the query threads; the request waits (C_WAIT, no fill) for on_done. */
static void enqueue(struct req *r, struct job *j)
{
	struct conn *c = r->conn;

	j->hold = c->hold;
	c->hold->refs++;
	c->state = C_WAIT; /* with no fill: on_wake leaves it to on_done */
	pthread_mutex_lock(&mu);
	*tail = j;
	tail = &j->next;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/*
 * The registry is unreachable and this request was never cached as asked:
 * /search or /categories computed from the registry index (on a query
 * thread; the answer comes back to this loop), or the registry's redirect
 * of a package document asked without its trailing slash.  Returns -1
 * when this is not such a request.
 */
int conn_registry_answer(struct req *r)
{
	struct conn *c = r->conn;
	const char *path = r->url + r->base_len, *q;
	struct job *j;
	int search;

	if (package_slash_redirect(r, path) == 0)
		return 0;
	if (!strncmp(path, "/search", 7) && (path[7] == '\0' || path[7] == '?'))
		search = 1;
	else if (!strncmp(path, "/categories", 11) && (path[11] == '\0' || path[11] == '?'))
		search = 0;
	else
		return -1;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	q = strchr(path, '?');
	if (al_registry_query_parse(q ? q + 1 : "", q ? strlen(q + 1) : 0, !search, &j->q) != 0) {
		/* as the registry answers it: http.Error(w, msg, 400) (search.go searchHandler, badRequest) */
		snprintf(r->cstatus, sizeof(r->cstatus), "%s; fwd=miss; detail=\"registry offline: its 400 for this query\"",
		    AL_NAME);
		conn_reply_simple(c, 400, "text/plain; charset=utf-8", "X-Content-Type-Options: nosniff\r\n", "%s\n",
		    j->q.error);
		free(j);
		event_active(c->wake, EV_READ, 0);
		return 0;
	}
	j->search = search;
	j->blen = r->base_len;
	j->base = malloc(r->base_len + 1);
	j->memo_key = strdup(r->url); /* base, /search or /categories, and the query string */
	j->done = event_new(c->w->base, -1, 0, on_done, j);
	if (j->base == NULL || j->memo_key == NULL || j->done == NULL || pool_start() != 0) {
		if (j->done)
			event_free(j->done);
		free(j->base);
		free(j->memo_key);
		free(j);
		return -1;
	}
	memcpy(j->base, r->url, r->base_len);
	j->base[r->base_len] = '\0';
	j->ctype = "application/json; charset=utf-8";
	j->detail = "computed from %zu cached package documents, registry offline";
	enqueue(r, j);
	return 1;
}

int conn_offload_answer(struct req *r, char *(*compute)(void *arg, size_t *n), void *arg,
    void (*free_arg)(void *arg), const char *ctype, const char *detail)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->done = event_new(r->conn->w->base, -1, 0, on_done, j)) == NULL || pool_start() != 0) {
		if (j != NULL && j->done != NULL)
			event_free(j->done);
		free(j);
		free_arg(arg);
		return -1;
	}
	j->compute = compute;
	j->arg = arg;
	j->free_arg = free_arg;
	j->ctype = ctype;
	j->detail = detail;
	enqueue(r, j);
	return 1;
}
