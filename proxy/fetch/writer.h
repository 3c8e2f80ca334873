/*
 * The store writer: one thread for the cache writes an event loop must not
 * wait for (a fill's body chunks, the hits' last-use times).  LMDB lets one
 * writer in at a time anyway.  On a worker's loop, a write held up by the
 * file system (the inode's block lock while the sync runs, a page under
 * writeback: 27 ms and 162 ms measured on this project's machine) held up
 * every client of that worker, hits included.
 *
 * Group commit: every commit is durable (an fdatasync, see "Durability" in
 * cache/store.c), so the writer runs the jobs queued at a time inside one
 * store batch (al_store_batch_begin) and commits them together: while one
 * batch's fdatasync runs, the next batch's jobs queue up.  A batch ends when
 * the queue is empty, after AL_WRITER_BATCH_JOBS jobs or after
 * AL_WRITER_BATCH_MS of running jobs, which bounds how long a chunk waits
 * before readers see it.
 *
 * Jobs run one at a time, in the order they were posted.  A job is embedded
 * in its poster's struct; the poster keeps it alive until it has run and,
 * if it has a done callback, until done has been called.
 */
#ifndef AIRLOCK_PROXY_WRITER_H
#define AIRLOCK_PROXY_WRITER_H

struct al_store;

#define AL_WRITER_BATCH_JOBS 64   /* 16 MiB of 256 KiB chunks */
#define AL_WRITER_BATCH_MS 10

struct al_writer_job {
	struct al_writer_job *next;
	/* Inside the batch: what it wrote is not yet visible to readers nor durable. */
	void (*run)(struct al_writer_job *job);
	/*
	 * Or NULL.  After the batch holding run's writes committed: rc is 0, or
	 * the batch's failure (then run's writes may be lost).  The last touch
	 * of the job by the writer.  Without done, run is the last touch.
	 */
	void (*done)(struct al_writer_job *job, int rc);
};

/* 0, or -errno when the thread cannot be made.  s: the store whose writes it groups. */
int al_writer_start(struct al_store *s);
/* Queue job; without a running writer it runs at once (then done, with 0), on the caller's thread. */
void al_writer_post(struct al_writer_job *job);
/* Run what is queued, then end the thread. */
void al_writer_stop(void);

/*
 * The cache's health as its writers saw it, for /_airlock/health and
 * /_airlock/metrics (issue 29: a full disk used to show only as "the cache
 * refused the body" in the log).  Any thread notes a write the store refused
 * (al_writer_refused, rc -errno: -ENOSPC for a full file system or map);
 * the cache counts as degraded until AL_STORE_DEGRADED_S pass without one.
 */
#define AL_STORE_DEGRADED_S 300

struct al_store_health {
	int rc;                   /* the last refusal's -errno; 0 when not degraded */
	long long since;          /* when this spell of refusals began (time(NULL)), 0 when not degraded */
	long long last;           /* the last refusal, 0 for none since the start */
	unsigned long long refusals; /* since the start */
	char what[200];           /* the last refusal: what could not be written */
};

void al_writer_refused(int rc, const char *what);
void al_writer_health(struct al_store_health *h);

#endif
