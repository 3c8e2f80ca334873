/*
 * A bundle split to fit the media: FILE.001, FILE.002, ... each at most the
 * part size, the bundle's bytes in order, and FILE.index (JSON) naming each
 * part with its size and SHA-256 and the whole bundle's digest.  The parts
 * are read back as one stream (fopencookie), so the bundle code is the same
 * for one file or many; every part is held to the index (import: its size
 * up front, its digest as the one admitting read goes), so a missing,
 * short or altered part (or one of another bundle) is named before
 * anything is admitted.
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
 * it)?  Then open the parts as one stream: *f, and index_path (cap bytes)
 * names the index.  Without sr, every part is checked against the index
 * (size and SHA-256) first, reading each part once more than the caller
 * does.  With sr, each part is there and of the index's size before *f is
 * given (a missing or short part named up front), and its SHA-256 is
 * taken from the bytes *f hands out in order: a read that ends a part
 * that is not the index's fails, and split_read_check() (before fclose)
 * says whether every part checked out.  1 when split and opened, 0 when
 * path is an ordinary file (nothing opened), -errno with err naming the
 * part at fault.  *sr is owned by *f (freed by fclose).
 */
struct split_reader;
int split_open_read(const char *path, FILE **f, struct split_reader **sr, char *index_path, size_t cap, char *err,
    size_t errlen);
/*
 * Did every part check out?  Parts the stream did not read to their end in
 * order (a refusal stopped it) are digested from where it stopped, so the
 * part at fault is named whatever stopped the read.  0, or -errno with err
 * naming the first part that is not the index's.
 */
int split_read_check(struct split_reader *r, char *err, size_t errlen);

#endif
