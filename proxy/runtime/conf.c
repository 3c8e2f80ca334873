#include "proxy/runtime/conf.h"
#include "cache/pgp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * The mutex orders a pin against a swap: without it a reader could load the
 * current pointer, lose the CPU while a reload drops the last reference and
 * frees it, then increment a freed count.  It is taken once per pin of the
 * current configuration, which workers do only when a reload made theirs
 * old (server.c worker_conf); a request holds its worker's with an atomic
 * increment and no lock.
 */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct al_conf *current;
static atomic_uint_fast64_t current_gen;
static atomic_int alive;
static uint64_t next_gen = 1;

static void conf_free(struct al_conf *c)
{
	curl_slist_free_all(c->connect_to);
	al_pgp_free((struct al_pgp *)c->pgp);
	if (c->owns_cfg)
		al_config_free((struct al_config *)c->cfg);
	atomic_fetch_sub(&alive, 1);
	free(c);
}

int al_conf_publish(struct al_config *cfg, struct al_pgp *pgp, int owns_cfg)
{
	struct al_conf *c = calloc(1, sizeof(*c)), *old;

	if (c == NULL)
		return -ENOMEM;
	for (int i = 0; i < cfg->nresolve; i++) {
		char buf[600];
		struct curl_slist *l;

		snprintf(buf, sizeof(buf), "%s:%s", cfg->resolve[i].from, cfg->resolve[i].to);
		if ((l = curl_slist_append(c->connect_to, buf)) == NULL) {
			curl_slist_free_all(c->connect_to);
			free(c);
			return -ENOMEM;
		}
		c->connect_to = l;
	}
	c->cfg = cfg;
	c->pgp = pgp;
	c->owns_cfg = owns_cfg;
	atomic_init(&c->refs, 1);
	atomic_fetch_add(&alive, 1);
	pthread_mutex_lock(&mu);
	c->gen = next_gen++;
	old = current;
	current = c;
	atomic_store_explicit(&current_gen, c->gen, memory_order_release);
	pthread_mutex_unlock(&mu);
	al_conf_release(old);
	return 0;
}

struct al_conf *al_conf_pin(void)
{
	struct al_conf *c;

	pthread_mutex_lock(&mu);
	c = current;
	if (c != NULL)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&mu);
	return c;
}

uint64_t al_conf_current_gen(void)
{
	return atomic_load_explicit(&current_gen, memory_order_acquire);
}

struct al_conf *al_conf_hold(struct al_conf *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void al_conf_release(struct al_conf *c)
{
	if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		conf_free(c);
}

void al_conf_shutdown(void)
{
	struct al_conf *c;

	pthread_mutex_lock(&mu);
	c = current;
	current = NULL;
	atomic_store_explicit(&current_gen, 0, memory_order_release);
	pthread_mutex_unlock(&mu);
	al_conf_release(c);
}

int al_conf_alive(void)
{
	return atomic_load(&alive);
}
