/*
 * airlock ledger [--json] [--verify | --new-chain] [--config FILE]: the
 * cache's ledger of custody (cache/ledger.h), printed and its chain checked
 * against both anchors of its head (ledger.head and the cache's LMDB, so
 * the cache is opened, shared with a running airlock; when it cannot be,
 * ledger.head alone, with a warning).  --new-chain sets a broken ledger
 * aside and starts a new chain whose first record names what was set
 * aside.
 */
#include "proxy/cli/ledger.h"
#include "cache/ledger.h"
#include "cache/store.h"
#include "policy/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long num(json_t *o, const char *a, const char *b)
{
	return (long long)json_integer_value(json_object_get(json_object_get(o, a), b));
}

static int print_one(json_t *r, void *arg)
{
	json_t *arr = arg;
	char dg[20];

	if (arr != NULL) {
		json_array_append(arr, r);
		return 0;
	}
	snprintf(dg, sizeof(dg), "%.16s", str(r, "bundle_digest"));
	printf("%-4lld %s %-16s %-6s %-8s bundle %-16s signer %-16s base %.16s  ", (long long)json_integer_value(
	    json_object_get(r, "seq")), str(r, "time"), str(r, "host"), str(r, "command"), str(r, "result"), dg,
	    str(r, "signer"), str(r, "base"));
	if (!strcmp(str(r, "command"), "custody")) {
		json_t *c = json_loads(str(r, "record_line"), 0, NULL);
		printf("carried from %s: its record %lld (%s %s, %s) digest %.16s...", str(r, "from_host"),
		    (long long)json_integer_value(json_object_get(c, "seq")), str(c, "command"), str(c, "result"),
		    str(c, "time"), str(r, "record_digest"));
		json_decref(c);
	} else if (!strcmp(str(r, "command"), "export"))
		printf("carried %lld (added %lld, changed %lld, unchanged %lld)", num(r, "entries", "carried"),
		    num(r, "entries", "added"), num(r, "entries", "changed"), num(r, "entries", "unchanged"));
	else
		printf("added %lld, updated %lld, skipped %lld, refused %lld", num(r, "entries", "added"),
		    num(r, "entries", "updated"), num(r, "entries", "skipped"), num(r, "entries", "refused"));
	if (json_object_get(r, "reason") != NULL)
		printf("  reason: %s", str(r, "reason"));
	printf("  %s\n", str(r, "file"));
	return 0;
}

/* The first record of a new chain: what was set aside, and the head its anchors named. */
static int new_chain(const struct al_config *cfg, struct al_store *s)
{
	char err[1024], moved[4300], dg[65], head[65] = "";
	uint64_t seq = 0, n, bad;
	json_t *rec;
	int rc;

	if (s == NULL) {
		fprintf(stderr, "airlock ledger --new-chain: the cache must be opened (its anchor is cleared)\n");
		return 1;
	}
	if (al_ledger_read(cfg->cache_path, s, NULL, NULL, &n, &bad, dg, err, sizeof(err)) == 0) {
		fprintf(stderr, "airlock ledger --new-chain: the ledger is intact (%llu records): nothing to set aside\n",
		    (unsigned long long)n);
		return 1;
	}
	if (al_store_ledger_head_get(s, &seq, head) <= 0)
		seq = 0;
	if ((rc = al_ledger_new_chain(cfg->cache_path, s, moved, sizeof(moved), err, sizeof(err))) != 0) {
		fprintf(stderr, "airlock ledger --new-chain: %s\n", err);
		return 1;
	}
	rec = json_pack("{s:s, s:s, s:s?, s:o, s:o}", "command", "new-chain", "result", "started", "file",
	    moved[0] ? moved : NULL, "old_head_seq", seq ? json_integer((json_int_t)seq) : json_null(), "old_head",
	    seq ? json_string(head) : json_null());
	rc = al_ledger_append(cfg->cache_path, s, rec, dg, NULL, err, sizeof(err));
	json_decref(rec);
	if (rc != 0) {
		fprintf(stderr, "airlock ledger --new-chain: set aside, but the new chain's first record: %s\n", err);
		return 1;
	}
	printf("ledger %s/%s: the broken chain set aside as %s; a new chain begins with record 1 (%.16s...), which "
	    "names it\n", cfg->cache_path, AL_LEDGER_FILE, moved[0] ? moved : "(no ledger file)", dg);
	return 0;
}

int ledger_main(int argc, char **argv)
{
	const char *config = NULL;
	int json = 0, verify_only = 0, restart = 0, rc;
	struct al_config *cfg;
	struct al_store *s = NULL;
	char err[1024], head[65];
	uint64_t n, bad;
	json_t *arr = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--verify"))
			verify_only = 1;
		else if (!strcmp(argv[i], "--new-chain"))
			restart = 1;
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else {
			fprintf(stderr, "Usage: airlock ledger [--json] [--verify | --new-chain] [--config FILE]\n"
			    "  prints the ledger of custody (every export and import of this cache) and checks its hash chain;\n"
			    "  --verify: only the verdict.  Exit 1 when the chain is broken, naming the first bad record.\n"
			    "  --new-chain: set a broken ledger aside (renamed) and start a new chain that names it.\n");
			return 2;
		}
	}
	if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return 2;
	}
	if (al_store_open(cfg->cache_path, cfg->cache_max_size, 126, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock ledger: WARNING: the cache's anchor of the ledger's head is not checked: %s\n", err);
		s = NULL;
	}
	if (restart) {
		rc = new_chain(cfg, s);
		if (s != NULL)
			al_store_close(s);
		al_config_free(cfg);
		return rc;
	}
	if (json)
		arr = json_array();
	rc = al_ledger_read(cfg->cache_path, s, verify_only ? NULL : print_one, arr, &n, &bad, head, err, sizeof(err));
	if (s != NULL)
		al_store_close(s);
	if (json) {
		json_t *o = json_pack("{s:o, s:s, s:I, s:b}", "records", verify_only ? json_array() : arr, "file",
		    cfg->cache_path, "good_records", (json_int_t)n, "intact", rc == 0);
		if (verify_only)
			json_decref(arr);
		json_object_set_new(o, "head", rc == 0 ? json_string(head) : json_null());
		json_object_set_new(o, "first_bad", rc == -EBADMSG ? json_integer((json_int_t)bad) : json_null());
		json_object_set_new(o, "error", rc != 0 ? json_string(err) : json_null());
		json_dumpf(o, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else if (rc == 0) {
		printf("ledger %s/%s: %llu records, chain intact; head %s\n", cfg->cache_path, AL_LEDGER_FILE,
		    (unsigned long long)n, head);
	} else {
		printf("ledger %s/%s: BROKEN at %s (the %llu records before it are intact)\n", cfg->cache_path, AL_LEDGER_FILE,
		    err, (unsigned long long)n);
	}
	al_config_free(cfg);
	return rc == 0 ? 0 : 1;
}
