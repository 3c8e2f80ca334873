/* airlock: command line. */
#include "policy/access.h"
#include "policy/config.h"
#include "proxy/cli/mirror.h"
#include "cache/bundle.h"
#include "proxy/runtime/server.h"
#include "proxy/front/tls.h"
#include "proxy/cli/tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
	    "airlock %s: caching proxy for Elastic's package, artifact and endpoint hosts\n\n"
	    "Usage:\n"
	    "  airlock serve [--config FILE] [--offline]   run the proxy (embedded default config without --config)\n"
	    "  airlock check-config [FILE]                  load a configuration and report its first error\n"
	    "  airlock default-config                       print the embedded default configuration\n"
	    "  airlock mirror artifacts --version V [--arch L] [--format L] [--only L]   fill the cache for a Stack version\n"
	    "                                               (--only elastic-agent-fips: the FIPS agent builds)\n"
	    "  airlock mirror endpoint --version V          Endpoint's manifest and every artifact it lists\n"
	    "  airlock mirror packages --kibana-version V [--prerelease]   the registry's packages for that Kibana\n"
	    "  airlock mirror models --id ID[,ID...]        trained models (metadata, .pt, vocabulary) for Elasticsearch\n"
	    "  airlock mirror product-docs --version X.Y    the AI Assistant's product documentation for a Stack minor\n"
	    "  airlock mirror geoip                         the GeoIP overview and every database it lists\n"
	    "  airlock export FILE [--match PATTERN]         write entries to a bundle (for the air-gapped side)\n"
	    "  airlock import FILE                          verify a bundle, then admit its entries\n"
	    "  airlock ls [PATTERN] | purge PATTERN | verify | status\n"
	    "                                               (each takes --config FILE; mirror too)\n"
	    "  airlock ca init [DIR]                        create the TLS interception CA (default DIR: .)\n"
	    "  airlock keygen DIR                           an Ed25519 key pair for signing bundles\n"
	    "  airlock passwd                               read a password on stdin, print its hash for forward.users\n"
	    "  airlock version\n"
	    "  airlock help\n\n"
	    "Pointing the Stack at airlock (A = http://airlock.example:8080):\n"
	    "  kibana.yml         xpack.fleet.registryUrl: A    xpack.productDocBase.artifactRepositoryUrl: A/product-docs\n"
	    "  elasticsearch.yml  xpack.ml.model_repository: A/ml-models    ingest.geoip.downloader.endpoint: A/geoip/v1/database\n"
	    "  Fleet              agent binary download A/downloads/; Endpoint policy advanced.artifacts.global.base_url: A\n"
	    "\n"
	    "airlock's own endpoints live under /_airlock/ (health: /_airlock/health).\n\n",
	    AIRLOCK_VERSION);
	al_config_describe(f);
}

static int load(const char *path, struct al_config **cfg)
{
	char err[1024];

	if (al_config_load(path, cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "airlock: configuration error: %s\n", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";
	const char *config = NULL;
	struct al_config *cfg = NULL;
	int offline = 0, rc;

	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("airlock %s\n", AIRLOCK_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "default-config")) {
		fputs(al_config_default_yaml, stdout);
		return 0;
	}
	if (!strcmp(cmd, "check-config")) {
		char err[1400];
		if (load(argc > 2 ? argv[2] : NULL, &cfg) != 0)
			return 2;
		if (al_server_preflight(cfg, err, sizeof(err), NULL) != 0) {
			fprintf(stderr, "airlock: configuration error: %s\n", err);
			al_config_free(cfg);
			return 2;
		}
		printf("%s: ok (%d routes, %d listeners)\n", cfg->file, cfg->nroutes, cfg->nlisten);
		al_config_free(cfg);
		return 0;
	}
	if (!strcmp(cmd, "mirror"))
		return mirror_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "ls") || !strcmp(cmd, "purge") || !strcmp(cmd, "verify") || !strcmp(cmd, "status") ||
	    !strcmp(cmd, "export") || !strcmp(cmd, "import"))
		return tools_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "keygen")) {
		char err[600], kid[AL_KEY_ID_LEN + 1];
		if (argc != 3) {
			fprintf(stderr, "usage: airlock keygen DIR   (writes DIR/bundle.key, mode 0600, and DIR/bundle.pub)\n");
			return 2;
		}
		if (al_bundle_keygen(argv[2], kid, err, sizeof(err)) != 0) {
			fprintf(stderr, "airlock keygen: %s\n", err);
			return 1;
		}
		printf("key %s: %s/bundle.key (private, 0600: keep it on the connected side)\n"
		    "and %s/bundle.pub (public: give it to the air-gapped side)\n\n"
		    "Connected side:  airlock export FILE --sign %s/bundle.key\n"
		    "Closed side, airlock.yml:\n  import:\n    trusted_keys: [/etc/airlock/bundle.pub]\n"
		    "or:              airlock import FILE --trust bundle.pub\n", kid, argv[2], argv[2], argv[2]);
		return 0;
	}
	if (!strcmp(cmd, "ca")) {
		const char *dir = argc > 3 ? argv[3] : ".";
		char err[600], real[4096];
		if (argc < 3 || strcmp(argv[2], "init") != 0) {
			fprintf(stderr, "usage: airlock ca init [DIR]\n");
			return 2;
		}
		if (tls_ca_init(dir, err, sizeof(err)) != 0) {
			fprintf(stderr, "airlock ca init: %s\n", err);
			return 1;
		}
		if (realpath(dir, real) == NULL)
			snprintf(real, sizeof(real), "%s", dir);
		printf("Created %s/ca.crt and %s/ca.key (mode 0600).\n\n"
		    "airlock.yml:\n"
		    "  forward:\n"
		    "    ca_cert: %s/ca.crt\n"
		    "    ca_key: %s/ca.key\n"
		    "    allow:\n"
		    "      - {host: epr.elastic.co, mode: intercept}\n"
		    "      - {host: artifacts.elastic.co, mode: intercept}\n"
		    "      - {host: artifacts.security.elastic.co, mode: intercept}\n\n"
		    "kibana.yml:\n"
		    "  xpack.fleet.registryProxyUrl: http://<airlock-host>:8080\n\n"
		    "Kibana's environment (so Node trusts airlock's certificates):\n"
		    "  NODE_EXTRA_CA_CERTS=%s/ca.crt\n\n"
		    "Elastic Agent / fleet-server: add %s/ca.crt to the system trust store, or\n"
		    "  agent.download.proxy_url: http://<airlock-host>:8080 with ssl.certificate_authorities: [%s/ca.crt]\n",
		    real, real, real, real, real, real, real);
		return 0;
	}
	if (!strcmp(cmd, "passwd")) {
		char pw[1024], hash[256];
		size_t n;
		if (fgets(pw, sizeof(pw), stdin) == NULL) {
			fprintf(stderr, "airlock passwd: no password on stdin\n");
			return 2;
		}
		n = strlen(pw);
		while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
			pw[--n] = '\0';
		if (n == 0 || al_password_hash(pw, hash, sizeof(hash)) != 0) {
			fprintf(stderr, "airlock passwd: empty password or hashing failed\n");
			return 1;
		}
		printf("%s\n", hash);
		return 0;
	}
	if (strcmp(cmd, "serve") != 0) {
		fprintf(stderr, "airlock: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--offline"))
			offline = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("Usage: airlock serve [--config FILE] [--offline]\n"
			    "  Runs the proxy.  Without --config: the embedded default (airlock default-config prints it).\n"
			    "  --offline: never contact any upstream (cache-only, for the air-gapped side).\n"
			    "  Signals: SIGHUP reloads the configuration, SIGUSR1 reopens the access log,\n"
			    "  SIGTERM drains (bounded by shutdown_timeout), a second SIGTERM stops at once.\n");
			return 0;
		}
		else {
			fprintf(stderr, "airlock serve: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (load(config, &cfg) != 0)
		return 2;
	if (offline)
		cfg->offline = 1;
	al_server_set_config_path(config);
	rc = al_server_run(cfg);
	al_config_free(cfg);
	return rc;
}
