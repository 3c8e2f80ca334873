/*
 * A bundle split to fit the media: FILE.001, FILE.002, ... each at most the
 * part size, the bundle's bytes in order, and FILE.index (JSON) naming each
 * part with its size and SHA-256 and the whole bundle's digest.  The parts
 * are read back as one stream (fopencookie), so the bundle code is the same
 * for one file or many; before that, every part is checked against the
 * index, so a missing, short or altered part (or one of another bundle) is
 * named before anything is read as a bundle.
 */
#ifndef AIRLOCK_PROXY_SPLIT_H
#define AIRLOCK_PROXY_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct split_writer;

/* A stream that writes FILE.001, FILE.002, ... of at most part bytes each. */
FILE *split_write_open(const char *path, uint64_t part, struct split_writer **w, char *err, size_t errlen);
/*
 * After the stream is closed (fclose): write FILE.index naming the parts,
 * with the bundle's digest (hex).  0 or -errno.  nparts gets the count.
 */
int split_write_index(struct split_writer *w, const char *bundle_digest, int *nparts, char *err, size_t errlen);
/* Did the writer stop at the most parts it writes (999)? */
int sw_full(const struct split_writer *w);
/* Remove every part written (a failed export) and free w. */
void split_write_abort(struct split_writer *w);
void split_write_free(struct split_writer *w);

/*
 * Is path a split bundle (FILE.index, or FILE.NNN with FILE.index beside
 * it)?  Then check every part against the index and open them as one
 * stream: *f, and index_path (cap bytes) names the index.  1 when split
 * and opened, 0 when path is an ordinary file (nothing opened), -errno
 * with err naming the part at fault.
 */
int split_open_read(const char *path, FILE **f, char *index_path, size_t cap, char *err, size_t errlen);

#endif
