/*
 * The lookup decision (policy/lookup.h) as a table: stored record facts,
 * request facts, the rules and the uplink state in; verdict and reason out.
 * Each row is one line of the table at the top of lookup.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "policy/config.h"
#include "policy/lookup.h"

#define NOW 1715680800 /* Tue, 14 May 2024 10:00:00 GMT */

/* Stored heads, all received at NOW - 100 with that Date. */
#define DATE "Date: Tue, 14 May 2024 09:58:20 GMT\r\n"
static const char FRESH_H[] = DATE "Cache-Control: max-age=600\r\nETag: \"v1\"\r\n";
static const char STALE_H[] = DATE "Cache-Control: max-age=60\r\nETag: \"v1\"\r\n"
    "Last-Modified: Mon, 13 May 2024 00:00:00 GMT\r\n";
static const char STALE_NOVAL_H[] = DATE "Cache-Control: max-age=60\r\n";
static const char MUSTREV_H[] = DATE "Cache-Control: max-age=600, no-cache\r\n";

enum stored { NONE, FRESH, STALE, STALE_NOVAL, MUSTREV, IMMUTABLE, MARKED };
enum up { ONLINE, DOWN, FORCED };

struct row {
	const char *name;
	enum stored rec;
	enum al_lookup_history history;
	int only_if_cached, registry;
	enum up up;
	enum al_lookup_verdict verdict;
	enum al_lookup_why why;
	int registry_first;
	long long ttl;             /* lifetime - age, checked when >= -1000 */
};

static const struct row rows[] = {
	{"fresh", FRESH, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_SERVE_FRESH, AL_WHY_TTL, 0, 500},
	{"fresh, upstream down", FRESH, AL_LOOKUP_FIRST, 0, 0, DOWN, AL_SERVE_FRESH, AL_WHY_TTL, 0, 500},
	{"fresh, only-if-cached", FRESH, AL_LOOKUP_FIRST, 1, 0, ONLINE, AL_SERVE_FRESH, AL_WHY_TTL, 0, 500},
	{"immutable rule", IMMUTABLE, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_SERVE_FRESH, AL_WHY_FOREVER, 0, -2000},
	{"after a 304", STALE, AL_LOOKUP_AFTER_304, 0, 0, ONLINE, AL_SERVE_REVALIDATED, AL_WHY_NONE, 0, -40},
	{"stale: revalidate", STALE, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_REVALIDATE, AL_WHY_EXPIRED, 0, -40},
	{"stale without validators", STALE_NOVAL, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_REVALIDATE, AL_WHY_EXPIRED, 0, -40},
	{"fresh but no-cache", MUSTREV, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_REVALIDATE, AL_WHY_EXPIRED, 0, 500},
	{"marked stale by mirror", MARKED, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_REVALIDATE, AL_WHY_EXPIRED, 0, -100},
	{"stale, upstream down", STALE, AL_LOOKUP_FIRST, 0, 0, DOWN, AL_SERVE_STALE, AL_WHY_UNREACHABLE, 0, -40},
	{"stale, offline by configuration", STALE, AL_LOOKUP_FIRST, 0, 0, FORCED, AL_SERVE_STALE, AL_WHY_FORCED_OFFLINE, 0, -40},
	{"stale, the fetch failed", STALE, AL_LOOKUP_AFTER_FAILURE, 0, 0, ONLINE, AL_SERVE_STALE, AL_WHY_UNREACHABLE, 0, -40},
	{"stale, only-if-cached", STALE, AL_LOOKUP_FIRST, 1, 0, ONLINE, AL_SERVE_STALE, AL_WHY_ONLY_IF_CACHED, 0, -40},
	{"stale, only-if-cached, down", STALE, AL_LOOKUP_FIRST, 1, 0, DOWN, AL_SERVE_STALE, AL_WHY_UNREACHABLE, 0, -40},
	{"not stored", NONE, AL_LOOKUP_FIRST, 0, 0, ONLINE, AL_MISS, AL_WHY_NOT_STORED, 0, -2000},
	{"not stored, registry online", NONE, AL_LOOKUP_FIRST, 0, 1, ONLINE, AL_MISS, AL_WHY_NOT_STORED, 0, -2000},
	{"not stored, only-if-cached", NONE, AL_LOOKUP_FIRST, 1, 0, ONLINE, AL_GATEWAY_TIMEOUT, AL_WHY_ONLY_IF_CACHED, 0, -2000},
	{"not stored, offline", NONE, AL_LOOKUP_FIRST, 0, 0, DOWN, AL_GATEWAY_TIMEOUT, AL_WHY_OFFLINE, 0, -2000},
	{"not stored, forced offline", NONE, AL_LOOKUP_FIRST, 0, 0, FORCED, AL_GATEWAY_TIMEOUT, AL_WHY_OFFLINE, 0, -2000},
	{"not stored, the fetch failed", NONE, AL_LOOKUP_AFTER_FAILURE, 0, 0, ONLINE, AL_BAD_GATEWAY, AL_WHY_UNREACHABLE, 0, -2000},
	{"registry, offline", NONE, AL_LOOKUP_FIRST, 0, 1, DOWN, AL_GATEWAY_TIMEOUT, AL_WHY_OFFLINE, 1, -2000},
	{"registry, the fetch failed", NONE, AL_LOOKUP_AFTER_FAILURE, 0, 1, ONLINE, AL_BAD_GATEWAY, AL_WHY_UNREACHABLE, 1, -2000},
	{"registry, only-if-cached, offline", NONE, AL_LOOKUP_FIRST, 1, 1, DOWN, AL_GATEWAY_TIMEOUT, AL_WHY_ONLY_IF_CACHED, 1, -2000},
};

static void run_row(const struct al_config *cfg, const struct row *r)
{
	struct al_lookup_record rec = {0};
	struct al_lookup_request q = {"/downloads/x.json", r->history, r->only_if_cached, r->registry};
	struct al_lookup_uplink u = {r->up == ONLINE, r->up == FORCED};
	struct al_lookup_result d;
	const char *h = r->rec == FRESH ? FRESH_H : r->rec == STALE || r->rec == MARKED ? STALE_H :
	    r->rec == STALE_NOVAL ? STALE_NOVAL_H : r->rec == MUSTREV ? MUSTREV_H : r->rec == IMMUTABLE ? STALE_H : "";

	if (r->rec != NONE)
		rec = (struct al_lookup_record){1, 200, h, strlen(h), NOW - 100, NOW - 100, 0, r->rec == MARKED};
	if (r->rec == IMMUTABLE) /* the default rules freeze a versioned agent archive */
		q.path = "/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz";
	al_lookup_decide(cfg, &rec, &q, &u, NOW, &d);
	if (d.verdict != r->verdict || d.why != r->why || d.registry_first != r->registry_first ||
	    (r->ttl >= -1000 && d.lifetime - d.age != r->ttl))
		fail_msg("%s: verdict %d why %d registry_first %d ttl %lld; want %d %d %d %lld", r->name, d.verdict,
		    d.why, d.registry_first, (long long)(d.lifetime - d.age), r->verdict, r->why, r->registry_first, r->ttl);
}

static void test_table(void **state)
{
	struct al_config *cfg;
	char err[256];

	assert_int_equal(al_config_load(NULL, &cfg, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(cfg, &rows[i]);
	al_config_free(cfg);
}

/* A revalidation carries the stored copy's own validators, and only those. */
static void test_validators(void **state)
{
	struct al_config *cfg;
	char err[256];
	struct al_lookup_record rec = {1, 200, STALE_H, strlen(STALE_H), NOW - 100, NOW - 100, 0, 0};
	struct al_lookup_request q = {"/search", AL_LOOKUP_FIRST, 0, 1};
	struct al_lookup_uplink u = {1, 0};
	struct al_lookup_result d;

	assert_int_equal(al_config_load(NULL, &cfg, err, sizeof(err)), 0);
	al_lookup_decide(cfg, &rec, &q, &u, NOW, &d);
	assert_int_equal(d.verdict, AL_REVALIDATE);
	assert_non_null(d.etag);
	assert_int_equal(d.etag_len, 4);
	assert_memory_equal(d.etag, "\"v1\"", 4);
	assert_non_null(d.last_modified);
	assert_memory_equal(d.last_modified, "Mon, 13 May 2024 00:00:00 GMT", d.last_modified_len);
	rec.hdrs = STALE_NOVAL_H;
	rec.hdrs_len = strlen(STALE_NOVAL_H);
	al_lookup_decide(cfg, &rec, &q, &u, NOW, &d);
	assert_int_equal(d.verdict, AL_REVALIDATE);
	assert_null(d.etag); /* the registry sends none: refetched, no validator invented */
	assert_null(d.last_modified);
	al_config_free(cfg);
}

/* The words Cache-Status carries for a stale hit. */
static void test_why_text(void **state)
{
	assert_string_equal(al_lookup_why_text(AL_WHY_UNREACHABLE), "upstream unreachable");
	assert_string_equal(al_lookup_why_text(AL_WHY_FORCED_OFFLINE), "upstream offline by configuration");
	assert_string_equal(al_lookup_why_text(AL_WHY_ONLY_IF_CACHED), "only-if-cached");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_why_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
