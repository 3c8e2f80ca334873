"""Elasticsearch's trained-model download, as its ml-package-loader does it.

Read at elastic/elasticsearch x-pack/plugin/ml-package-loader/src/main/java/
org/elasticsearch/xpack/ml/packageloader/action/:
- ModelLoaderUtils.java (01195333bcdb620d4f5a5eef7bc8e3827dcb1f15):
  resolvePackageLocation(repository, file) = repository + "/" + file;
  getHttpOrHttpsInputStream sets "Range: bytes=a-b" and accepts 200 and 206,
  throws on 301/302/303 ("redirects aren't supported yet"), 404 and 416;
  split(size, streams, chunk) gives streams + 1 ranges on chunk boundaries,
  the last a single chunk; HttpStreamChunker reads numParts chunks from its
  range's stream.
- ModelImporter.java (fb3ff2f33bf75efc6b755c10bf95465c5c12e7bb):
  NUMBER_OF_STREAMS = 5, DEFAULT_CHUNK_SIZE = 1 MiB; the vocabulary first,
  then every range but the last in parallel, then the last; only the total
  size is checked (checkSize), not the SHA-256.
- Older versions (ModelImporter before the ranged download) read the .pt in
  one stream and check both sha256 and size against the metadata.
The metadata file is <packaged_model_id>.metadata.json, the model
<packaged_model_id>.pt (MODEL_FILE_EXTENSION), the vocabulary its
vocabulary_file.  http.client follows no redirect, as the rule wants."""
import hashlib, http.client, json, threading, urllib.parse

CHUNK = 1 << 20
STREAMS = 5


def split(size, streams, chunk):
    """ModelLoaderUtils.split, line for line: [(start, end, start_part, num_parts)]."""
    chunks = (size + chunk - 1) // chunk
    ranges = []
    base, rem = chunks // streams, chunks % streams
    start, part = 0, 0
    for i in range(streams - 1):
        n = base + 1 if i < rem else base
        end = start + n * chunk - 1
        ranges.append((start, end, part, n))
        start, part = end + 1, part + n
    if base > 1:
        n = base - 1
        end = start + n * chunk - 1
        ranges.append((start, end, part, n))
        start, part = end + 1, part + n
    ranges.append((start, min(size, start + base * chunk) - 1, part, 1))
    return ranges


def get(url, headers=None, timeout=60):
    """One GET, no redirect followed: (status, headers dict lower-cased, body)."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request("GET", u.path + (("?" + u.query) if u.query else ""), headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class ModelError(Exception):
    pass


def check_status(status, url, rng=None):
    """getHttpOrHttpsInputStream's switch."""
    if status in (200, 206):
        return
    if status in (301, 302, 303):
        raise ModelError(f"{url}: redirects aren't supported yet")
    if status == 404:
        raise ModelError(f"{url} not found")
    if status == 416:
        raise ModelError(f"Invalid request range [{rng}]")
    raise ModelError(f"error during downloading {url}. Got response code {status}")


def metadata(repo, model_id):
    url = f"{repo}/{model_id}.metadata.json"
    st, _, body = get(url)
    check_status(st, url)
    return json.loads(body)


def ranged_download(repo, model_id, meta):
    """The current ModelImporter: vocabulary, then 5 + 1 ranges of the .pt in parallel.
    Returns (bytes as Elasticsearch would index them, [status of each range])."""
    if meta.get("vocabulary_file"):
        url = f"{repo}/{meta['vocabulary_file']}"
        st, _, _ = get(url)
        check_status(st, url)
    url = f"{repo}/{model_id}.pt"
    size = meta["size"]
    ranges = split(size, STREAMS, CHUNK)
    parts, statuses, errors = {}, [None] * len(ranges), []

    def one(i, r):
        rng = f"bytes={r[0]}-{r[1]}"
        try:
            st, _, body = get(url, {"Range": rng})
            check_status(st, url, rng)
            statuses[i] = st
            # HttpStreamChunker reads numParts chunks from the start of the stream it got
            for k in range(r[3]):
                parts[r[2] + k] = body[k * CHUNK:(k + 1) * CHUNK]
        except Exception as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(ranges[:-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    one(len(ranges) - 1, ranges[-1])  # the final part last
    if errors:
        raise errors[0]
    data = b"".join(parts[i] for i in sorted(parts))
    if len(data) != size:  # checkSize
        raise ModelError(f"Model size does not match, expected [{size}] but got [{len(data)}]")
    return data, statuses


def streamed_download(repo, model_id, meta):
    """Older versions: one GET of the .pt, sha256 and size checked."""
    url = f"{repo}/{model_id}.pt"
    st, _, body = get(url)
    check_status(st, url)
    if hashlib.sha256(body).hexdigest() != meta["sha256"]:
        raise ModelError("Model sha256 checksums do not match")
    if len(body) != meta["size"]:
        raise ModelError("Model size does not match")
    return body


def publish(up, model_id, pt, rate=0, chunked=False, sha=None, size=None, etag=True):
    """ml-models.elastic.co's three files for model_id on the fake upstream; returns the metadata."""
    meta = {"packaged_model_id": model_id, "model_repository": "https://ml-models.elastic.co",
            "description": "test model", "model_type": "pytorch", "minimum_version": "8.11.0",
            "size": len(pt) if size is None else size,
            "sha256": hashlib.sha256(pt).hexdigest() if sha is None else sha,
            "vocabulary_file": f"{model_id}.vocab.json", "inference_config": {"text_expansion": {}}}
    up.add(f"/{model_id}.metadata.json", json.dumps(meta), headers=[("Content-Type", "application/json"),
                                                                     ("ETag", f'"{model_id}-meta"')])
    up.add(f"/{model_id}.vocab.json", json.dumps({"vocabulary": ["[PAD]", "[UNK]", "a"]}),
           headers=[("Content-Type", "application/json"), ("ETag", f'"{model_id}-vocab"')])
    up.add(f"/{model_id}.pt", pt, rate=rate, chunked=chunked,
           headers=[("Content-Type", "application/octet-stream")] + ([("ETag", f'"{model_id}-pt"')] if etag else []))
    return meta
