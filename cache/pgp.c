#include "cache/pgp.h"

#include <errno.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct al_pgp {
	struct {
		uint8_t *data;  /* one key file as read */
		size_t len;
	} key[16];
	int n;
};

void al_pgp_free(struct al_pgp *p)
{
	for (int i = 0; p != NULL && i < p->n; i++)
		free(p->key[i].data);
	free(p);
}

/* Import one key file into ffi. */
static int import_one(rnp_ffi_t ffi, const uint8_t *data, size_t len)
{
	rnp_input_t in = NULL;
	int ok = rnp_input_from_memory(&in, data, len, false) == RNP_SUCCESS &&
	    rnp_import_keys(ffi, in, RNP_LOAD_SAVE_PUBLIC_KEYS, NULL) == RNP_SUCCESS;

	rnp_input_destroy(in);
	return ok ? 0 : -EINVAL;
}

/* A context with the pinned keys imported; NULL on failure. */
static rnp_ffi_t context(const struct al_pgp *p, char *err, size_t errlen)
{
	rnp_ffi_t ffi = NULL;

	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS) {
		snprintf(err, errlen, "RNP: cannot create a context");
		return NULL;
	}
	for (int i = 0; i < p->n; i++) {
		if (import_one(ffi, p->key[i].data, p->key[i].len) != 0) {
			snprintf(err, errlen, "a pinned OpenPGP key could not be read");
			rnp_ffi_destroy(ffi);
			return NULL;
		}
	}
	return ffi;
}

int al_pgp_load(char *const *paths, int n, struct al_pgp **out, char *err, size_t errlen)
{
	struct al_pgp *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	for (int i = 0; i < n && i < 16; i++) {
		FILE *f = fopen(paths[i], "rb");
		uint8_t *buf = malloc(65536);
		size_t got = 0;
		rnp_ffi_t one = NULL;
		int ok;

		if (f == NULL || buf == NULL) {
			snprintf(err, errlen, "%s: %s", paths[i], f ? "out of memory" : strerror(errno));
			if (f)
				fclose(f);
			free(buf);
			al_pgp_free(p);
			return -ENOENT;
		}
		got = fread(buf, 1, 65536, f);
		fclose(f);
		ok = got > 0 && got < 65536 && rnp_ffi_create(&one, "GPG", "GPG") == RNP_SUCCESS &&
		    import_one(one, buf, got) == 0;
		rnp_ffi_destroy(one);
		if (!ok) {
			snprintf(err, errlen, "%s: not an OpenPGP public key (armored, as /GPG-KEY-elastic-agent)", paths[i]);
			free(buf);
			al_pgp_free(p);
			return -EINVAL;
		}
		p->key[p->n].data = buf;
		p->key[p->n].len = got;
		p->n++;
	}
	*out = p;
	return 0;
}

struct body_src {
	struct al_reader *r;
	uint64_t obj_id, off, len;
	int failed;
};

/* RNP pulls the body through this: chunk by chunk from LMDB's map. */
static bool read_body(void *ctx, void *buf, size_t want, size_t *got)
{
	struct body_src *s = ctx;
	const void *p;
	size_t n;

	*got = 0;
	if (s->off >= s->len)
		return true;
	if (al_body_at(s->r, s->obj_id, s->off, &p, &n) != 0) {
		s->failed = 1;
		return false;
	}
	if (n > s->len - s->off)
		n = (size_t)(s->len - s->off);
	if (n > want)
		n = want;
	memcpy(buf, p, n);
	s->off += n;
	*got = n;
	return true;
}

int al_pgp_verify_object(const struct al_pgp *p, struct al_reader *r, uint64_t obj_id, uint64_t len,
    const void *sig, size_t siglen, char *err, size_t errlen)
{
	struct body_src src = {r, obj_id, 0, len, 0};
	rnp_ffi_t ffi = context(p, err, errlen);
	rnp_input_t data = NULL, sigin = NULL;
	rnp_op_verify_t op = NULL;
	rnp_result_t res;
	size_t count = 0;
	int rc = -EBADMSG;

	if (ffi == NULL)
		return -EINVAL;
	if (al_reader_begin(r) != 0 || rnp_input_from_callback(&data, read_body, NULL, &src) != RNP_SUCCESS ||
	    rnp_input_from_memory(&sigin, sig, siglen, false) != RNP_SUCCESS ||
	    rnp_op_verify_detached_create(&op, ffi, data, sigin) != RNP_SUCCESS) {
		snprintf(err, errlen, "the signature is not an OpenPGP detached signature");
		goto out;
	}
	res = rnp_op_verify_execute(op);
	rnp_op_verify_get_signature_count(op, &count);
	for (size_t i = 0; i < count && rc != 0; i++) {
		rnp_op_verify_signature_t one = NULL;
		if (rnp_op_verify_get_signature_at(op, i, &one) != RNP_SUCCESS)
			continue;
		res = rnp_op_verify_signature_get_status(one);
		if (res == RNP_SUCCESS)
			rc = 0; /* a valid signature by a pinned key */
	}
	if (rc == 0)
		;
	else if (src.failed)
		snprintf(err, errlen, "the body could not be read from the cache");
	else if (count == 0)
		snprintf(err, errlen, "no OpenPGP signature in the signature file");
	else if (res == RNP_ERROR_KEY_NOT_FOUND)
		snprintf(err, errlen, "signed by a key that is not pinned (upstream.pgp_keys)");
	else
		snprintf(err, errlen, "the OpenPGP signature does not verify (%s)", rnp_result_to_string(res));
out:
	rnp_op_verify_destroy(op);
	rnp_input_destroy(data);
	rnp_input_destroy(sigin);
	rnp_ffi_destroy(ffi);
	al_reader_end(r);
	return rc;
}

struct pull {
	al_pgp_read_fn rd;
	void *ctx;
	int failed;
};

static bool pull_body(void *ctx, void *buf, size_t want, size_t *got)
{
	struct pull *s = ctx;

	if (s->rd(s->ctx, buf, want, got) != 0) {
		s->failed = 1;
		return false;
	}
	return true;
}

int al_pgp_verify_stream(const struct al_pgp *p, al_pgp_read_fn rd, void *ctx, const void *sig, size_t siglen,
    char keyid[41], char *err, size_t errlen)
{
	struct pull src = {rd, ctx, 0};
	rnp_ffi_t ffi = context(p, err, errlen);
	rnp_input_t data = NULL, sigin = NULL;
	rnp_op_verify_t op = NULL;
	rnp_result_t res = RNP_ERROR_GENERIC;
	size_t count = 0;
	int rc = -EBADMSG;

	keyid[0] = '\0';
	if (ffi == NULL)
		return -EINVAL;
	if (rnp_input_from_callback(&data, pull_body, NULL, &src) != RNP_SUCCESS ||
	    rnp_input_from_memory(&sigin, sig, siglen, false) != RNP_SUCCESS ||
	    rnp_op_verify_detached_create(&op, ffi, data, sigin) != RNP_SUCCESS) {
		snprintf(err, errlen, "the signature is not an OpenPGP detached signature");
		goto out;
	}
	rnp_op_verify_execute(op);
	rnp_op_verify_get_signature_count(op, &count);
	for (size_t i = 0; i < count && rc != 0; i++) {
		rnp_op_verify_signature_t one = NULL;
		rnp_signature_handle_t h = NULL;
		char *id = NULL;
		if (rnp_op_verify_get_signature_at(op, i, &one) != RNP_SUCCESS)
			continue;
		res = rnp_op_verify_signature_get_status(one);
		if (rnp_op_verify_signature_get_handle(one, &h) == RNP_SUCCESS && rnp_signature_get_keyid(h, &id) == RNP_SUCCESS &&
		    id != NULL)
			snprintf(keyid, 41, "%s", id);
		rnp_buffer_destroy(id);
		rnp_signature_handle_destroy(h);
		if (res == RNP_SUCCESS)
			rc = 0;
	}
	if (rc == 0)
		;
	else if (src.failed)
		snprintf(err, errlen, "the body could not be read");
	else if (count == 0)
		snprintf(err, errlen, "no OpenPGP signature in the signature file");
	else if (res == RNP_ERROR_KEY_NOT_FOUND)
		snprintf(err, errlen, "signed by key %s, which is not among the given keys", keyid[0] ? keyid : "(unnamed)");
	else
		snprintf(err, errlen, "the OpenPGP signature does not verify (%s)", rnp_result_to_string(res));
out:
	rnp_op_verify_destroy(op);
	rnp_input_destroy(data);
	rnp_input_destroy(sigin);
	rnp_ffi_destroy(ffi);
	return rc;
}
