#include "policy/manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define MAX_JSON (16u << 20)

/*
 * manifest.json (or, unless exact, the first *.json) of the zip, parsed.
 * need_sig: also fail when the zip has no manifest.sig.
 */
static json_t *manifest_json(const void *data, size_t len, int exact, int need_sig, char *err, size_t errlen)
{
	int has_sig = 0;
	zip_error_t ze;
	zip_source_t *src;
	zip_t *z;
	json_t *j = NULL;

	zip_error_init(&ze);
	src = zip_source_buffer_create(data, len, 0, &ze);
	if (src == NULL || (z = zip_open_from_source(src, ZIP_RDONLY, &ze)) == NULL) {
		snprintf(err, errlen, "not a zip: %s", zip_error_strerror(&ze));
		if (src)
			zip_source_free(src);
		zip_error_fini(&ze);
		return NULL;
	}
	for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0) && (j == NULL || (need_sig && !has_sig)); i++) {
		struct zip_stat st;
		zip_file_t *f;
		char *buf;
		size_t nl;
		if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
		    !(st.valid & ZIP_STAT_NAME) || st.size > MAX_JSON)
			continue;
		nl = strlen(st.name);
		if (strcmp(st.name, "manifest.sig") == 0)
			has_sig = 1;
		if (strcmp(st.name, "manifest.json") != 0 && (exact || nl < 5 || strcmp(st.name + nl - 5, ".json") != 0))
			continue;
		if (j != NULL || (f = zip_fopen_index(z, (zip_uint64_t)i, 0)) == NULL)
			continue;
		buf = malloc(st.size + 1);
		if (buf && zip_fread(f, buf, st.size) == (zip_int64_t)st.size) {
			json_error_t je;
			j = json_loadb(buf, st.size, 0, &je);
			if (j == NULL)
				snprintf(err, errlen, "%s: %s at line %d", st.name, je.text, je.line);
		}
		free(buf);
		zip_fclose(f);
	}
	zip_close(z);
	zip_error_fini(&ze);
	if (j == NULL && err[0] == '\0')
		snprintf(err, errlen, "no manifest.json in the zip");
	if (j != NULL && need_sig && !has_sig) {
		snprintf(err, errlen, "no manifest.sig in the zip");
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int read_manifest(const void *zip, size_t len, int kibana, char *version, size_t vcap,
    al_artifact_fn fn, void *arg, char *err, size_t errlen)
{
	json_t *man, *arts, *v;
	const char *name, *mv;
	int n = 0;

	err[0] = '\0';
	if ((man = manifest_json(zip, len, kibana, kibana, err, errlen)) == NULL)
		return -EINVAL;
	if (!json_is_object(man)) {
		snprintf(err, errlen, "manifest.json is not an object");
		json_decref(man);
		return -EINVAL;
	}
	mv = json_string_value(json_object_get(man, "manifest_version"));
	snprintf(version, vcap, "%s", mv ? mv : "(none)");
	arts = json_object_get(man, "artifacts");
	json_object_foreach(arts, name, v) {
		const char *ru = json_string_value(json_object_get(v, "relative_url"));
		if (ru == NULL || ru[0] != '/' || strstr(ru, "..") != NULL || strpbrk(ru, "\r\n\t ?#\\") != NULL)
			continue;
		if (fn != NULL)
			fn(ru, arg);
		n++;
	}
	json_decref(man);
	return n;
}

int al_endpoint_manifest(const void *zip, size_t len, char *version, size_t vcap,
    al_artifact_fn fn, void *arg, char *err, size_t errlen)
{
	return read_manifest(zip, len, 0, version, vcap, fn, arg, err, errlen);
}

int al_kibana_manifest(const void *zip, size_t len, char *version, size_t vcap,
    al_artifact_fn fn, void *arg, char *err, size_t errlen)
{
	return read_manifest(zip, len, 1, version, vcap, fn, arg, err, errlen);
}
