#include "proxy/fetch/writer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct al_writer_job *head, **tail = &head;
static int running, stopping;
static pthread_t thread;

static void *writer_main(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
	pthread_mutex_lock(&mu);
	for (;;) {
		struct al_writer_job *job;

		while (head == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		if ((job = head) == NULL)
			break;
		if ((head = job->next) == NULL)
			tail = &head;
		pthread_mutex_unlock(&mu);
		job->run(job);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return arg;
}

int al_writer_start(void)
{
	int rc;

	if (running)
		return 0;
	stopping = 0;
	if ((rc = pthread_create(&thread, NULL, writer_main, NULL)) != 0)
		return -rc;
	__atomic_store_n(&running, 1, __ATOMIC_RELEASE);
	return 0;
}

void al_writer_post(struct al_writer_job *job)
{
	if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE)) {
		job->run(job);
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
