/*
 * What a cached URL is, from its name alone: an agent artifact, its .sha512
 * or .asc, a package document or archive, an Endpoint manifest... and the
 * product, version and platform the name says.  Pure: no I/O.  Used where a
 * person reviews a list of URLs (airlock inspect, export --dry-run).
 *
 * The shapes are the ones airlock's freshness rules already match
 * (policy/freshness.c, whose default rules use the globs below), read from
 * the hosts' own code:
 * - the artifact registry: <name>[-fips]-<version>-<platform>.<ext>, as
 *   elastic-agent's Artifact.FileName joins them
 *   (internal/pkg/agent/application/upgrade/artifact/artifact.go at
 *   elastic/elastic-agent 07adab5bc3d2: name, "fips" when FIPS, the
 *   version's String() and a packageArchMap suffix such as
 *   linux-x86_64.tar.gz or windows-x86_64.zip); .deb/.rpm/.msi are the
 *   registry's other formats (<name>-<version>-<arch>.deb);
 * - the package registry: /package/<name>/<version>/ (a package document),
 *   files below it (icons, screenshots, docs), /epr/<name>/<name>-<version>.zip
 *   and .sig (package-registry's Package.GetDownloadPath);
 * - Endpoint: /downloads/endpoint/manifest/artifacts-<version>.zip and the
 *   artifacts it lists under /downloads/endpoint/artifacts/<identifier>/.
 */
#ifndef AIRLOCK_POLICY_ARTIFACT_H
#define AIRLOCK_POLICY_ARTIFACT_H

#include <stddef.h>

/* fnmatch(FNM_EXTMATCH) globs over the URL path, shared with the freshness rules */
#define AL_GLOB_AGENT_ARTIFACT "/downloads/*-[0-9]*.[0-9]*.[0-9]*-*.@(tar.gz|zip|deb|rpm|msi)?(.sha512|.asc)"
#define AL_GLOB_PACKAGE_ARCHIVE "/epr/*/*-[0-9]*.[0-9]*.[0-9]*.@(zip|tar.gz)?(.sig)"

struct al_artifact {
	const char *kind;       /* a short word: see al_classify_url */
	char product[128];      /* "elastic-agent", "nginx", "diagnostic-configuration-v1-linux"... or "" */
	char version[64];       /* "8.13.4", "1.20.0", or "" */
	char platform[64];      /* "linux-x86_64", "amd64", or "" */
};

/*
 * Classify an absolute URL (https://host/path?query) or a path.  kind is one
 * of: agent-artifact, agent-artifact-sha512, agent-artifact-signature,
 * gpg-key, endpoint-manifest, endpoint-artifact, package-document,
 * package-file, package-archive, package-signature, registry-query, other.
 */
void al_classify_url(const char *url, struct al_artifact *out);

#endif
