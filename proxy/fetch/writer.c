#include "proxy/fetch/writer.h"
#include "cache/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct al_writer_job *head, **tail = &head;
static int running, stopping;
static pthread_t thread;
static struct al_store *store;
/* al_store_health's fields; under health_mu (any thread notes, the admin page reads) */
static pthread_mutex_t health_mu = PTHREAD_MUTEX_INITIALIZER;
static struct al_store_health health;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next queued job, or NULL; caller holds mu. */
static struct al_writer_job *take(void)
{
	struct al_writer_job *job = head;

	if (job != NULL && (head = job->next) == NULL)
		tail = &head;
	return job;
}

static void *writer_main(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
	pthread_mutex_lock(&mu);
	for (;;) {
		struct al_writer_job *job, *done = NULL, **done_tail = &done;
		int64_t start;
		int n = 0, batched, rc;

		while (head == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (head == NULL)
			break;
		pthread_mutex_unlock(&mu);
		/* Without a batch (it could not begin) each write commits on its own: slower, as safe. */
		batched = al_store_batch_begin(store) == 0;
		start = now_ms();
		pthread_mutex_lock(&mu);
		while ((job = take()) != NULL) {
			pthread_mutex_unlock(&mu);
			if (job->done != NULL) { /* run may end a job without done: read done first */
				job->run(job);
				job->next = NULL;
				*done_tail = job;
				done_tail = &job->next;
			} else {
				job->run(job);
			}
			pthread_mutex_lock(&mu);
			if (++n >= AL_WRITER_BATCH_JOBS || now_ms() - start >= AL_WRITER_BATCH_MS)
				break;
		}
		pthread_mutex_unlock(&mu);
		rc = batched ? al_store_batch_end(store) : 0;
		while ((job = done) != NULL) {
			done = job->next;
			job->done(job, rc);
		}
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return arg;
}

int al_writer_start(struct al_store *s)
{
	int rc;

	if (running)
		return 0;
	store = s;
	stopping = 0;
	if ((rc = pthread_create(&thread, NULL, writer_main, NULL)) != 0)
		return -rc;
	__atomic_store_n(&running, 1, __ATOMIC_RELEASE);
	return 0;
}

void al_writer_post(struct al_writer_job *job)
{
	if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE)) {
		void (*done)(struct al_writer_job *, int) = job->done;
		job->run(job);
		if (done != NULL)
			done(job, 0);
		return;
	}
	job->next = NULL;
	pthread_mutex_lock(&mu);
	*tail = job;
	tail = &job->next;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

void al_writer_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	stopping = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	__atomic_store_n(&running, 0, __ATOMIC_RELEASE);
}

void al_writer_refused(int rc, const char *what)
{
	long long now = (long long)time(NULL);

	pthread_mutex_lock(&health_mu);
	if (health.last == 0 || now - health.last >= AL_STORE_DEGRADED_S)
		health.since = now; /* a new spell */
	health.last = now;
	health.rc = rc;
	health.refusals++;
	snprintf(health.what, sizeof(health.what), "%s", what);
	pthread_mutex_unlock(&health_mu);
}

void al_writer_health(struct al_store_health *h)
{
	long long now = (long long)time(NULL);

	pthread_mutex_lock(&health_mu);
	*h = health;
	pthread_mutex_unlock(&health_mu);
	if (h->last == 0 || now - h->last >= AL_STORE_DEGRADED_S) {
		h->rc = 0;
		h->since = 0;
	}
}
