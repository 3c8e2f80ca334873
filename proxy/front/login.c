/*
 * Passwords checked off the worker's loop.  A password hash is PBKDF2
 * (policy/access.c, ~5 ms by design); on the loop, a flood of wrong
 * passwords (never remembered) stalled every hit on that worker.  So a
 * login that is not remembered goes to the login thread:
 *
 *   worker loop                         login thread (one)
 *   conn_client_auth / stp_forward
 *     conn_login_check --queue------->  al_login_check (PBKDF2)
 *     (request parked, C_WAIT)
 *   on_checked <---event_active(done)--
 *     r->login = 1 or -1, the request runs again from the step that
 *     parked it, which reads r->login instead of checking again
 *
 * One thread: a flood then takes at most one core from the workers, and a
 * right password waits at most LOGIN_QUEUE checks.  The queue is bounded
 * (LOGIN_QUEUE, all workers together): beyond it the caller answers 503
 * with Retry-After, and no memory grows with the flood.  One client
 * address (an IPv6 /64: one host's share) holds at most LOGIN_PER_PEER
 * of it, so a flood from one address cannot keep other clients' first
 * logins out; clients behind one NAT share that part (a 503 with
 * Retry-After, then their logins are remembered).  Remembered logins
 * (policy/access.c) never come here.
 *
 * A job holds a reference on the connection's hold (conn_impl.h), which
 * outlives the connection: on_checked finds hold->c NULL when the client
 * went away meanwhile and drops the job.  It copies what the check reads
 * (struct al_login), so it needs no configuration.
 */
#include "policy/access.h"
#include "proxy/front/conn_impl.h"
#include "proxy/runtime/log.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define LOGIN_QUEUE 64
#define LOGIN_PER_PEER 16 /* jobs of one client address, queued or being checked */
#define PEER_KEY 17       /* the family, then up to 16 bytes of address */

struct login_job {
	struct login_job *next;
	struct hold *hold;         /* a reference: hold->c is the connection, NULL once it is gone */
	struct event *done;        /* on the connection's worker loop */
	struct al_login login;
	int ok;                    /* written by the login thread before it activates done */
	uint8_t peer[PEER_KEY];    /* whose it is (peer_key) */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct login_job *head, **tail = &head;
static struct login_job *checking; /* the one the login thread is on, NULL if none */
static int queued, started, stopping;
static pthread_t thread;

static void job_free(struct login_job *j)
{
	struct hold *h = j->hold;

	if (h != NULL && --h->refs == 0 && h->c == NULL) {
		al_reader_free(h->rd);
		free(h);
	}
	if (j->done != NULL)
		event_free(j->done);
	OPENSSL_cleanse(&j->login, sizeof(j->login));
	free(j);
}

static void *login_main(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
	pthread_mutex_lock(&mu);
	for (;;) {
		struct login_job *j;

		while (head == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (stopping || (j = head) == NULL)
			break;
		if ((head = j->next) == NULL)
			tail = &head;
		checking = j;
		pthread_mutex_unlock(&mu);
		j->ok = al_login_check(&j->login);
		OPENSSL_cleanse(&j->login.value, sizeof(j->login.value));
		pthread_mutex_lock(&mu);
		checking = NULL;
		queued--; /* under mu, before done: the worker may free j at once */
		event_active(j->done, EV_READ, 0);
	}
	pthread_mutex_unlock(&mu);
	return arg;
}

/* Back on the worker's loop: the request goes on from the step that parked it. */
static void on_checked(evutil_socket_t fd, short what, void *arg)
{
	struct login_job *j = arg;
	struct conn *c = j->hold->c;

	(void)fd;
	(void)what;
	if (c != NULL && c->magic == CONN_MAGIC && c->state == C_WAIT && c->rq.login == 0) {
		c->rq.login = j->ok ? 1 : -1;
		job_free(j); /* before the request runs on: it may end the connection */
		req_run(&c->rq, c->rq.step); /* the step that parked it */
		return;
	}
	job_free(j);
}

/*
 * Whose a job is: the client's IPv4 address (an IPv4-mapped IPv6 one
 * read as such), the /64 of an IPv6 one (a host has a whole /64 to
 * choose from), else the family alone.
 */
static void peer_key(const struct sockaddr_storage *sa, uint8_t key[PEER_KEY])
{
	memset(key, 0, PEER_KEY);
	key[0] = (uint8_t)sa->ss_family;
	if (sa->ss_family == AF_INET) {
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = AF_INET;
			memcpy(key + 1, a->s6_addr + 12, 4);
		} else {
			memcpy(key + 1, a->s6_addr, 8);
		}
	}
}

/* The jobs of key queued or being checked (under mu; at most LOGIN_QUEUE to look at). */
static int peer_jobs(const uint8_t key[PEER_KEY])
{
	int n = checking != NULL && memcmp(checking->peer, key, PEER_KEY) == 0;

	for (const struct login_job *j = head; j != NULL; j = j->next)
		n += memcmp(j->peer, key, PEER_KEY) == 0;
	return n;
}

int conn_login_check(struct req *r, const struct al_login *l)
{
	struct conn *c = r->conn;
	struct login_job *j;
	int ok;

	/* made whole first: the bounds are checked and the job queued under one lock */
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->done = event_new(c->w->base, -1, 0, on_checked, j)) == NULL) {
		free(j);
		return -1;
	}
	peer_key(&c->sa, j->peer);
	pthread_mutex_lock(&mu);
	if (!started && !stopping) {
		if (pthread_create(&thread, NULL, login_main, NULL) == 0)
			started = 1;
		else
			al_err("access", "cannot start the login thread");
	}
	ok = started && !stopping && queued < LOGIN_QUEUE && peer_jobs(j->peer) < LOGIN_PER_PEER;
	if (ok) {
		j->login = *l;
		j->hold = c->hold;
		c->hold->refs++; /* the loop's: the login thread never touches it */
		queued++;
		*tail = j;
		tail = &j->next;
		pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&mu);
	if (!ok) {
		job_free(j);
		return -1;
	}
	/* on_checked runs on this loop, so not before these */
	r->login = 0;
	c->state = C_WAIT; /* with no fill: on_wake leaves it to on_checked */
	return 1;
}

void conn_login_stop(void)
{
	int was;

	pthread_mutex_lock(&mu);
	stopping = 1;
	pthread_cond_broadcast(&cv);
	was = started;
	pthread_mutex_unlock(&mu);
	if (was)
		pthread_join(thread, NULL);
	pthread_mutex_lock(&mu);
	started = 0;
	stopping = 0;
	pthread_mutex_unlock(&mu);
}
