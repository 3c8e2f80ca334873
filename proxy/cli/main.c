/* airlock: command line. */
#include "policy/access.h"
#include "policy/config.h"
#include "policy/freshness.h"
#include "proxy/cli/mirror.h"
#include "cache/bundle.h"
#include "proxy/runtime/server.h"
#include "proxy/front/serve.h"
#include "proxy/front/tls.h"
#include "proxy/cli/tools.h"
#include "proxy/cli/inspect.h"
#include "proxy/cli/ledger.h"
#include "proxy/cli/doctor.h"
#include "proxy/cli/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every command, as `airlock help` lists it and `airlock man` documents it. */
static const struct command_doc {
	const char *synopsis, *what;
} commands[] = {
	{"serve [--config FILE] [--offline]", "run the proxy (embedded default config without --config)"},
	{"check-config [FILE]", "load a configuration and report its first error"},
	{"default-config", "print the embedded default configuration"},
	{"mirror artifacts --version V [--arch L] [--format L] [--only L]", "fill the cache for a Stack version"},
	{"mirror artifacts --version V --only elastic-agent-fips", "the FIPS agent builds (linux tar.gz)"},
	{"mirror endpoint --version V", "Endpoint's manifest and every artifact it lists"},
	{"mirror packages --kibana-version V [--prerelease]", "the registry's packages for that Kibana"},
	{"mirror models --id ID[,ID...]", "trained models (metadata, .pt, vocabulary) for Elasticsearch"},
	{"mirror product-docs --version X.Y", "the AI Assistant's product documentation for a Stack minor"},
	{"mirror geoip", "the GeoIP overview and every database it lists"},
	{"mirror kibana-artifacts --version V", "Kibana's telemetry manifest and every artifact it lists"},
	{"mirror --plan PLAN.yml", "every step of a plan, one summary, one exit code"},
	{"plan", "print the plan matching what the cache holds"},
	{"export FILE [--match PATTERN]", "write entries to a bundle (for the air-gapped side)"},
	{"export FILE --dry-run [--since OLD] [--json|--csv]", "list what export would write; writes nothing"},
	{"export FILE --split SIZE", "FILE.001, FILE.002... of at most SIZE and FILE.index"},
	{"import FILE", "verify a bundle and admit its entries, in one read"},
	{"inspect FILE [--json|--csv] [--trust KEY.pub] [--pgp-key KEY]", "list and verify a bundle, no cache"},
	{"ledger [--json] [--verify | --new-chain]", "every export and import of this cache, hash-chained; checked"},
	{"doctor --stack V [--platforms L] [--kibana V] [--endpoint V] [--json]",
	    "(what an air-gapped Stack would miss, from the cache alone)"},
	{"doctor ... [--fips] [--models IDS] [--product-docs V,...] [--geoip]", "the newer downloads too"},
	{"ls [PATTERN] | purge PATTERN | verify | status", "(each takes --config FILE; mirror too)"},
	{"ca init [DIR]", "create the TLS interception CA (default DIR: .)"},
	{"keygen DIR", "an Ed25519 key pair for signing bundles"},
	{"passwd", "read a password on stdin, print its hash for forward.users or clients.users"},
	{"passwd --api-key", "read an API key on stdin, print its key_hash for clients.api_keys"},
	{"version", NULL},
	{"help", NULL},
	{"man", "print this manual page (roff): airlock man | man -l -"},
};

/* What to set on each side of the Stack so that it asks airlock (A is airlock's URL). */
static const struct stack_setting {
	const char *where, *set;
} stack_settings[] = {
	{"kibana.yml", "xpack.fleet.registryUrl: A    xpack.productDocBase.artifactRepositoryUrl: A/product-docs"},
	{"elasticsearch.yml", "xpack.ml.model_repository: A/ml-models    ingest.geoip.downloader.endpoint: A/geoip/v1/database"},
	{"Fleet", "agent binary download A/downloads/; Endpoint policy advanced.artifacts.global.base_url: A"},
};

static void usage(FILE *f)
{
	fprintf(f, "airlock %s: caching proxy for Elastic's package, artifact and endpoint hosts\n\n"
	    "Usage:\n", AIRLOCK_VERSION);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command_doc *c = &commands[i];
		int n = (int)strlen(c->synopsis);
		if (c->what == NULL)
			fprintf(f, "  airlock %s\n", c->synopsis);
		else if (n <= 36)
			fprintf(f, "  airlock %-36s %s\n", c->synopsis, c->what);
		else if (c->what[0] == '(') /* a note under a long line */
			fprintf(f, "  airlock %s\n  %-44s %s\n", c->synopsis, "", c->what);
		else
			fprintf(f, "  airlock %s   %s\n", c->synopsis, c->what);
	}
	fprintf(f, "\nPointing the Stack at airlock (A = http://airlock.example:8080):\n");
	for (size_t i = 0; i < sizeof(stack_settings) / sizeof(stack_settings[0]); i++)
		fprintf(f, "  %-18s %s\n", stack_settings[i].where, stack_settings[i].set);
	fprintf(f, "\nairlock's own endpoints live under /_airlock/ (health: /_airlock/health).\n\n");
	al_config_describe(f);
}

/*
 * Text for roff: backslashes, minus signs and a leading '.' or '\'' escaped.  In a glob, a
 * line may break after ']' or '/' (the 64 hex digits of an artifact's name fill more than a line).
 */
static void roff_glob(FILE *f, const char *s, int glob)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else if (*s == '\n') /* a help text's second line continues the paragraph */
			fputc(' ', f);
		else
			fputc(*s, f);
		if (glob && (*s == ']' || *s == '/'))
			fputs("\\:", f);
	}
}

static void roff(FILE *f, const char *s)
{
	roff_glob(f, s, 0);
}

static void man_key(void *arg, const struct al_key_doc *k)
{
	FILE *f = arg;
	struct al_config *def;
	char err[256];

	fputs(".TP\n.B ", f);
	roff(f, k->name);
	fputc('\n', f);
	roff(f, k->help);
	if (k->def != NULL) {
		fputs(" Default: ", f);
		roff(f, k->def);
		fputc('.', f);
	}
	fputc('\n', f);
	if (strcmp(k->name, "routes") == 0 && al_config_load(NULL, &def, err, sizeof(err)) == 0) {
		for (int i = 0; i < def->nroutes; i++) {
			fputs(".RS\n.TP\n.B ", f);
			roff(f, def->routes[i].prefix);
			fputc('\n', f);
			roff(f, def->routes[i].upstream);
			fputs(def->routes[i].registry ? " (registry)" : "", f);
			fputs(def->routes[i].strip_prefix ? " (prefix stripped)" : "", f);
			fputs("\n.RE\n", f);
		}
		al_config_free(def);
	}
	if (strcmp(k->name, "cache.rules") == 0) {
		for (int i = 0; al_default_rules[i].match != NULL; i++) {
			fputs(".RS\n.TP\n.B ", f);
			roff_glob(f, al_default_rules[i].match, 1);
			fputs(al_default_rules[i].immutable ? "\nimmutable: " : "\nthe upstream decides: ", f);
			roff(f, al_default_rules[i].why);
			fputs("\n.RE\n", f);
		}
	}
}

/*
 * The manual page, from the tables `airlock help` prints: commands[] above and the configuration
 * keys of policy/config.c.  The build writes it to airlock.1; packages install that.
 */
static void man(FILE *f)
{
	fprintf(f, ".\\\" Generated by `airlock man` from the command and configuration tables; do not edit.\n"
	    ".TH AIRLOCK 1 \"\" \"airlock %s\" \"User Commands\"\n"
	    ".ad l\n.nh\n" /* ragged right, no hyphens: globs and key names stay whole */
	    ".SH NAME\n"
	    "airlock \\- caching proxy for Elastic's package, artifact and endpoint hosts\n"
	    ".SH SYNOPSIS\n"
	    ".B airlock\n.I command\n[\\fIoptions\\fR]\n"
	    ".SH DESCRIPTION\n"
	    "airlock sits between Kibana, Elastic Agents, fleet\\-server and Elastic Endpoint and the hosts "
	    "epr.elastic.co, artifacts.elastic.co and artifacts.security.elastic.co, keeps what crosses in an "
	    "LMDB cache with the upstream's validators, and keeps serving what it holds when the uplink is gone.\n"
	    ".PP\n"
	    "Its own endpoints live under /_airlock/: health (open to every client), metrics, status and "
	    "purge (clients in admin.allow, or a bearer admin.token).\n"
	    ".SH COMMANDS\n", AIRLOCK_VERSION);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fputs(".TP\n.B airlock ", f);
		roff(f, commands[i].synopsis);
		fputc('\n', f);
		if (commands[i].what != NULL)
			roff(f, commands[i].what);
		else if (strcmp(commands[i].synopsis, "version") == 0)
			fputs("print the version", f);
		else
			fputs("print the commands and every configuration key with its default", f);
		fputc('\n', f);
	}
	fputs(".SH CONFIGURATION\n"
	    "YAML.  Unknown keys are errors; a bad file stops airlock at start with file:line:column and what "
	    "is wrong.  Sizes take B, KB/KiB, MB/MiB, GB/GiB; durations ms, s, m, h, d.  "
	    "AIRLOCK_ADDRESS, AIRLOCK_TLS_CERT, AIRLOCK_TLS_KEY and AIRLOCK_TLS_MIN_VERSION override the first "
	    "listener.  The keys, with their defaults:\n", f);
	al_config_each_key(man_key, f);
	fputs(".SH POINTING THE STACK AT AIRLOCK\n"
	    "With A the URL clients reach airlock at (for example http://airlock.example:8080):\n", f);
	for (size_t i = 0; i < sizeof(stack_settings) / sizeof(stack_settings[0]); i++) {
		fputs(".TP\n.B ", f);
		roff(f, stack_settings[i].where);
		fputc('\n', f);
		roff(f, stack_settings[i].set);
		fputc('\n', f);
	}
	fputs(".SH SIGNALS\n"
	    ".TP\n.B SIGHUP\nreload the configuration file (listen, workers, cache.path, cache.max_size, "
	    "upstream.offline and the forward CA need a restart); an invalid file is refused and the running "
	    "configuration stays\n"
	    ".TP\n.B SIGUSR1\nreopen the access log (for logrotate)\n"
	    ".TP\n.B SIGTERM\nstop accepting and let responses in flight finish for up to shutdown_timeout; "
	    "a second SIGTERM stops at once\n"
	    ".SH FILES\n"
	    ".TP\n.I /etc/airlock/airlock.yml\nthe configuration (as packaged)\n"
	    ".TP\n.I /var/lib/airlock/cache\nthe LMDB cache (as packaged)\n"
	    ".TP\n.I /var/log/airlock/access.log\nthe access log, when log.access names it (as packaged)\n"
	    ".SH SEE ALSO\n"
	    ".BR systemctl (1),\n"
	    ".I /usr/share/doc/airlock/README.md\n", f);
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

	al_server_set_parts(&al_serve_parts); /* runtime calls front and fetch through it */
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "man")) {
		man(stdout);
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
	if (!strcmp(cmd, "inspect"))
		return inspect_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "ledger"))
		return ledger_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "doctor"))
		return doctor_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "plan"))
		return plan_main(argc - 1, argv + 1);
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
		if (argc > 2 && !strcmp(argv[2], "--api-key")) {
			/* API keys are long and random (openssl rand -base64 32): one SHA-256, no stretching */
			if (n < 16 || al_api_key_hash(pw, n, hash, sizeof(hash)) != 0) {
				fprintf(stderr, "airlock passwd --api-key: a key of at least 16 characters, please\n");
				return 1;
			}
			printf("%s\n", hash);
			return 0;
		}
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
