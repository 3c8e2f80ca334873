/*
 * POST /_airlock/purge from a worker: the request parks while the store
 * writer finds and deletes the entries and commits, in slices (admin.h
 * admin_purge_post), and is answered on its worker's loop once the last
 * slice's commit is done.  Before, the scan and the commit's flush ran on
 * the loop and held up every client of that worker.
 *
 * The job holds a reference on the connection's hold (conn_impl.h), which
 * outlives the connection: on_purged finds hold->c NULL when the client
 * went away meanwhile (the purge itself still happens).
 *
 * Its done event lives on the worker's loop, which is freed when the server
 * stops, while the writer (stopped after the workers) would still finish
 * the purge's slices and activate it.  So the server waits for purges in
 * flight before it stops the workers (conn_purge_quiesce), and one that
 * outlasts that wait is abandoned: its end touches no loop.
 */
#include "proxy/front/admin.h"
#include "proxy/front/conn_impl.h"
#include "proxy/runtime/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUIESCE_WAIT_S 30

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight;  /* purges posted and not yet answered (on_purged) */
static int abandoned; /* the server stopped waiting: ends touch no loop */

struct purge_job {
	struct admin_purge ap;     /* first: finished gets it */
	struct hold *hold;
	struct event *done;        /* on the connection's worker loop */
};

/* On the writer's thread, after the commit. */
static void purge_finished(struct admin_purge *ap)
{
	pthread_mutex_lock(&mu);
	if (!abandoned)
		event_active(((struct purge_job *)ap)->done, EV_READ, 0);
	pthread_mutex_unlock(&mu);
}

/* STP_ANSWERED: the purge's count, or why the cache could not commit it. */
static enum req_step purge_answered(struct req *r, void *answer)
{
	struct purge_job *j = answer;

	if (j->ap.rc == 0)
		conn_reply_simple(r->conn, 200, "application/json", NULL, "{\"purged\":%d}\n", j->ap.n);
	else
		conn_reply_simple(r->conn, 500, "text/plain; charset=utf-8", NULL,
		    "the cache could not commit the purge: %s\n", strerror(-j->ap.rc));
	return STP_DONE;
}

/* Back on the worker's loop: the request goes on at STP_ANSWERED, unless the client went away. */
static void on_purged(evutil_socket_t fd, short what, void *arg)
{
	struct purge_job *j = arg;
	struct hold *h = j->hold;
	struct conn *c = h->c;
	char pat[256];
	size_t i;

	(void)fd;
	(void)what;
	/* the pattern is the client's (%XX-decoded): no control byte goes into the log line */
	for (i = 0; i + 1 < sizeof(pat) && j->ap.pattern[i]; i++)
		pat[i] = (unsigned char)j->ap.pattern[i] < 0x20 || j->ap.pattern[i] == 0x7f ? '?' : j->ap.pattern[i];
	pat[i] = '\0';
	al_info("admin", "purge %s: %d entries deleted in %d slices%s%s", pat, j->ap.n, j->ap.slices,
	    j->ap.rc ? ", stopped: " : "", j->ap.rc ? strerror(-j->ap.rc) : "");
	if (c != NULL && c->magic == CONN_MAGIC && c->state == C_WAIT) {
		c->rq.answered = purge_answered;
		c->rq.answer = j;
		req_run(&c->rq, STP_ANSWERED);
	}
	if (--h->refs == 0 && h->c == NULL) {
		al_reader_free(h->rd);
		free(h);
	}
	event_free(j->done);
	free(j);
	pthread_mutex_lock(&mu);
	inflight--;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

int conn_purge(struct req *r)
{
	struct conn *c = r->conn;
	struct purge_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->done = event_new(c->w->base, -1, 0, on_purged, j)) == NULL) {
		free(j);
		return -1;
	}
	j->ap.finished = purge_finished;
	j->hold = c->hold;
	c->hold->refs++;
	c->state = C_WAIT; /* with no fill: on_wake leaves it to on_purged */
	pthread_mutex_lock(&mu);
	inflight++; /* on_purged runs on this loop: not before this returns */
	pthread_mutex_unlock(&mu);
	if (admin_purge_post(&j->ap, r->http.target, r->http.target_len) != 0) {
		pthread_mutex_lock(&mu);
		inflight--;
		pthread_mutex_unlock(&mu);
		c->hold->refs--;
		event_free(j->done);
		free(j);
		return -1;
	}
	return 1;
}

void conn_purge_quiesce(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += QUIESCE_WAIT_S;
	pthread_mutex_lock(&mu);
	if (inflight > 0)
		al_info("admin", "waiting for %d purge(s) to finish before stopping", inflight);
	while (inflight > 0 && pthread_cond_timedwait(&cv, &mu, &until) == 0)
		;
	if (inflight > 0) {
		al_warn("admin", "%d purge(s) still running after %d s: stopping without their answers", inflight,
		    QUIESCE_WAIT_S);
		abandoned = 1;
	}
	pthread_mutex_unlock(&mu);
}
