/*
 * Elastic Endpoint's artifact manifest: downloads/endpoint/manifest/
 * artifacts-<version>.zip holds manifest.json, whose "artifacts" object
 * lists each artifact's relative_url.  Read with libzip and jansson.
 */
#ifndef AIRLOCK_POLICY_MANIFEST_H
#define AIRLOCK_POLICY_MANIFEST_H

#include <stddef.h>

typedef void (*al_artifact_fn)(const char *relative_url, void *arg);

/*
 * Parse the zip in memory: writes manifest_version into version (or
 * "(none)") and calls fn for each relative_url that is a safe absolute path
 * (starts with '/', no "..") unless fn is NULL.  Returns the number of artifacts, or -EINVAL
 * with a message in err.
 */
int al_endpoint_manifest(const void *zip, size_t len, char *version, size_t vcap,
    al_artifact_fn fn, void *arg, char *err, size_t errlen);

/*
 * Kibana's telemetry manifest (downloads/kibana/manifest/artifacts-<version>.zip),
 * read as Security Solution's Artifact.getManifest reads it (elastic/kibana
 * 437def57, x-pack/solutions/security/plugins/security_solution/server/lib/
 * telemetry/artifact.ts): the entry named manifest.json exactly, a
 * manifest.sig beside it (Kibana refuses a zip without one; the signature
 * itself is Kibana's to check), and artifacts.<name>.relative_url, which
 * Kibana appends to https://artifacts.security.elastic.co.  Otherwise as
 * al_endpoint_manifest.
 */
int al_kibana_manifest(const void *zip, size_t len, char *version, size_t vcap,
    al_artifact_fn fn, void *arg, char *err, size_t errlen);

#endif
