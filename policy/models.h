/*
 * Elastic's trained models (ml-models.elastic.co): which file describes a
 * model file, and what it says of it.  Pure functions; the fill asks them.
 */
#ifndef AIRLOCK_POLICY_MODELS_H
#define AIRLOCK_POLICY_MODELS_H

#include <stddef.h>
#include <stdint.h>
#include "policy/config.h"

/* Is url a model file whose body is checked against its metadata (cache.verify_models)? */
int al_needs_model_check(const struct al_config *c, const char *url);

/*
 * The metadata of a model file: X.pt -> X.metadata.json (the ml-package-loader
 * asks <packaged_model_id>.metadata.json and <packaged_model_id>.pt).  Into
 * buf; 0, -EINVAL when url does not end in .pt, -ENAMETOOLONG.
 */
int al_model_metadata_url(const char *url, char *buf, size_t cap);

/*
 * What a <model>.metadata.json says of its .pt: its sha256 (64 hex digits)
 * into sha and *has_sha = 1, its size into *size (-1 when it names none).
 * 0, or -EINVAL when the text is not a JSON object or names a malformed
 * sha256 or size (which is not a metadata file to check against).
 */
int al_model_metadata_parse(const char *text, size_t len, uint8_t sha[32], int *has_sha, int64_t *size);

#endif
