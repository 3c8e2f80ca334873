/*
 * The store writer: one thread for the cache writes an event loop must not
 * wait for (a fill's body chunks, the hits' last-use times).  LMDB lets one
 * writer in at a time anyway.  On a worker's loop, a write held up by the
 * file system (the inode's block lock while the sync runs, a page under
 * writeback: 27 ms and 162 ms measured on this project's machine) held up
 * every client of that worker, hits included.
 *
 * Jobs run one at a time, in the order they were posted.  A job is embedded
 * in its poster's struct; the poster keeps it alive until it has run.
 */
#ifndef AIRLOCK_PROXY_WRITER_H
#define AIRLOCK_PROXY_WRITER_H

struct al_writer_job {
	struct al_writer_job *next;
	void (*run)(struct al_writer_job *job);
};

/* 0, or -errno when the thread cannot be made. */
int al_writer_start(void);
/* Queue job; without a running writer it runs at once, on the caller's thread. */
void al_writer_post(struct al_writer_job *job);
/* Run what is queued, then end the thread. */
void al_writer_stop(void);

#endif
