/*
 * airlock inspect BUNDLE: what a bundle carries, for the person who
 * approves a transfer, without a cache.  One read of the file: every body
 * is digested as it passes (SHA-256 against its record and, in a version-3
 * bundle, the signed listing; SHA-512 for its .sha512), signatures met
 * before their bodies are checked by RNP on the same read, and the
 * whole-file digest closes it.  A damaged bundle lists what came before the
 * damage, says where it broke and exits 1.
 */
#include "proxy/cli/inspect.h"
#include "proxy/cli/listing.h"
#include "proxy/cli/split.h"
#include "cache/bundle.h"
#include "cache/ledger.h"
#include "cache/pgp.h"
#include "policy/config.h"
#include "policy/freshness.h"
#include "policy/units.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage(void)
{
	fprintf(stderr, "Usage: airlock inspect BUNDLE [--json | --csv] [--trust KEY.pub ...] [--pgp-key KEY.asc ...] "
	    "[--config FILE]\n"
	    "  lists every entry (what it is, product, version, platform, size, SHA-256, .sha512 and OpenPGP checks)\n"
	    "  and the bundle's facts, verifying every digest on one read; touches no cache.\n"
	    "  --trust: the bundle signer's public key (airlock keygen); --pgp-key: OpenPGP keys the .asc/.sig must\n"
	    "  verify with (default: upstream.pgp_keys of --config FILE).  Exit 1 when the bundle is damaged or an\n"
	    "  entry fails its .sha512 or signature.\n");
	return 2;
}

static int on_entry(const struct al_inspect_entry *e, void *arg)
{
	struct listing *l = arg;
	struct row *r = listing_add(l, e->rec);

	if (r == NULL)
		return -ENOMEM;
	r->offset = e->offset;
	memcpy(r->sha512, e->sha512, 64);
	r->have_sha512 = 1;
	r->pgp = e->pgp;
	snprintf(r->pgp_key, sizeof(r->pgp_key), "%s", e->pgp_key);
	snprintf(r->pgp_why, sizeof(r->pgp_why), "%s", e->pgp_why);
	if (e->small != NULL && strlen(r->url) > 7 && !strcmp(r->url + strlen(r->url) - 7, ".sha512"))
		r->file512_ok = al_parse_sha512_file((const char *)e->small, e->small_len, r->file512) == 0;
	return 0;
}

int inspect_main(int argc, char **argv)
{
	const char *path = NULL, *config = NULL, *trust[16];
	char *pgp_paths[16];
	int ntrust = 0, npgp = 0, fmt = LISTING_TEXT, rc, status = 0, nl = 0;
	struct al_pgp *keys = NULL;
	struct al_config *cfg = NULL;
	struct al_bundle_info info;
	struct listing l = {0};
	char err[1024], sigstate[800], lines[10][1400], ixp[4200], custody_line[1400] = "", dg[65], bdg[65];
	const char *fact_lines[11];
	json_t *facts;
	struct stat st;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			fmt = LISTING_JSON;
		else if (!strcmp(argv[i], "--csv"))
			fmt = LISTING_CSV;
		else if (!strcmp(argv[i], "--trust") && i + 1 < argc && ntrust < 16)
			trust[ntrust++] = argv[++i];
		else if (!strcmp(argv[i], "--pgp-key") && i + 1 < argc && npgp < 16)
			pgp_paths[npgp++] = argv[++i];
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (argv[i][0] == '-' || path != NULL)
			return usage();
		else
			path = argv[i];
	}
	if (path == NULL)
		return usage();
	if (config != NULL) {
		if (al_config_load(config, &cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "airlock: configuration error: %s\n", err);
			return 2;
		}
		for (int i = 0; i < cfg->npgp_keys && npgp < 16; i++)
			pgp_paths[npgp++] = cfg->pgp_keys[i];
	}
	if (npgp > 0 && al_pgp_load(pgp_paths, npgp, &keys, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock inspect: --pgp-key %s\n", err);
		al_config_free(cfg);
		return 2;
	}
	memset(&st, 0, sizeof(st));
	if ((rc = split_open_read(path, &f, NULL, ixp, sizeof(ixp), err, sizeof(err))) < 0) {
		fprintf(stderr, "airlock inspect: %s: BROKEN: %s\n", path, err);
		al_pgp_free(keys);
		al_config_free(cfg);
		return 1;
	}
	if (rc == 1) {
		/* a split bundle: its size is the parts' */
		fseeko(f, 0, SEEK_END);
		st.st_size = ftello(f);
	} else if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "airlock inspect: %s: %s\n", path, strerror(errno));
		al_pgp_free(keys);
		al_config_free(cfg);
		return 1;
	}
	rc = al_bundle_inspect(f, keys, on_entry, NULL, &l, &info, err, sizeof(err));
	fclose(f);
	listing_check(&l);

	/* the signer */
	if (rc != 0)
		snprintf(sigstate, sizeof(sigstate), "%s%s: not checked, the bundle is damaged", info.is_signed ? "key " : "",
		    info.is_signed ? info.key_id : "unsigned");
	else if (!info.is_signed)
		snprintf(sigstate, sizeof(sigstate), "unsigned");
	else if (ntrust == 0)
		snprintf(sigstate, sizeof(sigstate), "key %s: signature not checked (no --trust)", info.key_id);
	else {
		EVP_PKEY *pk[16];
		int n = 0, src;
		char why[600];
		for (int i = 0; i < ntrust; i++)
			if (al_bundle_load_key(trust[i], 0, &pk[n], why, sizeof(why)) == 0)
				n++;
			else
				fprintf(stderr, "airlock inspect: --trust %s\n", why);
		src = al_bundle_check_signature(&info, pk, n, why, sizeof(why));
		if (src == 0)
			snprintf(sigstate, sizeof(sigstate), "key %s: signature verified with --trust", info.key_id);
		else
			snprintf(sigstate, sizeof(sigstate), "key %s: NOT VERIFIED: %s", info.key_id, why), status = 1;
		for (int i = 0; i < n; i++)
			EVP_PKEY_free(pk[i]);
	}
	al_hex(info.digest, 32, dg);
	al_hex(info.base, 32, bdg);
	facts = json_pack("{s:s, s:i, s:s, s:s, s:s, s:b}", "file", path, "format", info.version, "created", info.created,
	    "airlock_version", info.airlock, "signer_key_id", info.key_id, "signed", info.is_signed);
	json_object_set_new(facts, "signature", json_string(sigstate));
	json_object_set_new(facts, "base", info.is_delta ? json_pack("{s:s, s:I}", "digest", bdg, "entries",
	    (json_int_t)info.base_entries) : json_null());
	json_object_set_new(facts, "entries", json_integer((json_int_t)l.n));
	json_object_set_new(facts, "body_bytes", json_integer((json_int_t)info.body_bytes));
	json_object_set_new(facts, "file_bytes", json_integer((json_int_t)st.st_size));
	json_object_set_new(facts, "digests_verified", json_boolean(rc == 0));
	json_object_set_new(facts, "digest", rc == 0 ? json_string(dg) : json_null());
	if (info.version >= 3)
		json_object_set_new(facts, "listing_entries", json_integer((json_int_t)info.listed));
	if (info.custody[0]) {
		/* the exporting side's ledger record of this export, carried under the signature */
		json_t *c = json_loads(info.custody, 0, NULL);
		char cd[65];
		int ok = al_ledger_check_line(info.custody, cd) == 0;
		json_object_set_new(facts, "custody", json_pack("{s:s?, s:I, s:s?, s:s}", "host",
		    json_string_value(json_object_get(c, "host")), "seq", json_integer_value(json_object_get(c, "seq")), "time",
		    json_string_value(json_object_get(c, "time")), "record_digest", ok ? cd : "(does not match its content)"));
		snprintf(custody_line, sizeof(custody_line), "custody: the exporting side's ledger record %lld on %s at %s, digest %s",
		    (long long)json_integer_value(json_object_get(c, "seq")), json_string_value(json_object_get(c, "host")) ?
		    json_string_value(json_object_get(c, "host")) : "?", json_string_value(json_object_get(c, "time")) ?
		    json_string_value(json_object_get(c, "time")) : "?", ok ? cd : "(does not match its content)");
		json_decref(c);
	}

	snprintf(lines[nl++], sizeof(lines[0]), "bundle %s: format %d, %lld bytes, created %s by airlock %s", path,
	    info.version, (long long)st.st_size, info.created[0] ? info.created : "(not recorded)",
	    info.airlock[0] ? info.airlock : "(not recorded)");
	snprintf(lines[nl++], sizeof(lines[0]), "signer: %s", sigstate);
	if (info.is_delta)
		snprintf(lines[nl++], sizeof(lines[0]), "base: incremental on bundle %s (%llu entries)", bdg,
		    (unsigned long long)info.base_entries);
	else
		snprintf(lines[nl++], sizeof(lines[0]), "base: none (a full bundle)");
	if (custody_line[0])
		snprintf(lines[nl++], sizeof(lines[0]), "%s", custody_line);
	if (rc == 0) {
		snprintf(lines[nl++], sizeof(lines[0]), "digests: verified while reading: every body's SHA-256%s, and the "
		    "whole file's SHA-256 %s", info.version < 3 ? "" : info.is_signed ? " and record against the signed listing" : " and record against the listing", dg);
		snprintf(lines[nl++], sizeof(lines[0]), "totals: %zu entries, %llu body bytes%s", l.n,
		    (unsigned long long)info.body_bytes, l.bad ? "" : "; every .sha512 and signature present matched");
	} else {
		snprintf(lines[nl++], sizeof(lines[0]), "digests: FAILED after %zu entries: %s", l.n, err);
		status = 1;
	}
	{
		/* totals by kind: what a reviewer counts first */
		json_t *kinds = json_object();
		char *p = lines[nl];
		size_t left = sizeof(lines[0]);
		int w = snprintf(p, left, "by kind:");
		const char *k;
		json_t *v;
		for (size_t i = 0; i < l.n; i++) {
			json_t *c = json_object_get(kinds, l.v[i].what.kind);
			json_object_set_new(kinds, l.v[i].what.kind, json_integer(c ? json_integer_value(c) + 1 : 1));
		}
		json_object_foreach(kinds, k, v)
			if (w > 0 && (size_t)w < left)
				w += snprintf(p + w, left - (size_t)w, " %s %lld,", k, (long long)json_integer_value(v));
		if (w > 0 && (size_t)w < left && p[w - 1] == ',')
			p[w - 1] = '\0';
		nl++;
		json_object_set_new(facts, "kinds", kinds);
	}
	if (l.bad) {
		snprintf(lines[nl++], sizeof(lines[0]), "checks: %llu entries FAILED their .sha512 or signature",
		    (unsigned long long)l.bad);
		status = 1;
	}
	for (int i = 0; i < nl; i++)
		fact_lines[i] = lines[i];
	fact_lines[nl] = NULL;
	listing_print(stdout, fmt, &l, facts, fact_lines, rc ? err : NULL);
	if (fmt == LISTING_CSV && rc != 0)
		fprintf(stderr, "airlock inspect: %s: BROKEN: %s\n", path, err);
	json_decref(facts);
	listing_free(&l);
	al_pgp_free(keys);
	al_config_free(cfg);
	return status;
}
