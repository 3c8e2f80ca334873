"""Elasticsearch downloads a trained model through airlock (issue 27, part 1).

xpack.ml.model_repository: http://airlock:PORT/ml-models.  The default route
/ml-models/ strips its prefix: Elasticsearch's /ml-models/<file> is
https://ml-models.elastic.co/<file>, the cache key.  The client is
tests/lib/es_models.py, Elasticsearch's ml-package-loader as its source shows
it (ModelLoaderUtils 01195333, ModelImporter fb3ff2f3): metadata, vocabulary,
then the .pt as 5 parallel Range requests and a final one, each must be 200
or 206, a redirect is an error, only the size is checked after.

While the .pt is still filling (the upstream sends it over ~2 s) every range
is answered 206 with exactly its bytes, from one upstream fetch; the upstream
sees no Range and the stripped path.  Then an older Elasticsearch streams it
once (a hit) and checks its SHA-256; `airlock ls` shows the canonical key.
The same holds for an upstream that sends no Content-Length (chunked): a
range on a filling object of unknown length waits until the length is known
instead of getting the whole body under a 200, which Elasticsearch would
index as the wrong bytes."""
import hashlib, os, sys, threading
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, cli, eq, fail, main
import es_models


def full_fetches(up, path):
    """Upstream requests for path that were not revalidations (no If-None-Match)."""
    with up.lock:
        return sum(1 for m, p, h in up.requests if p == path and "if-none-match" not in h)


def download(al, up, model_id, pt, chunked):
    meta = es_models.publish(up, model_id, pt, rate=6 << 20, chunked=chunked)
    repo = al.url("/ml-models")
    got = es_models.metadata(repo, model_id)
    eq(got["sha256"], meta["sha256"], "metadata through the route")
    data, statuses = es_models.ranged_download(repo, model_id, got)
    eq(statuses, [206] * len(es_models.split(len(pt), 5, 1 << 20)), f"{model_id}: every range is a 206")
    eq(hashlib.sha256(data).hexdigest(), meta["sha256"], f"{model_id}: the bytes Elasticsearch indexes")
    # the final range comes after the others: a revalidation by ETag at most (the file is not
    # immutable, see README), never a second download
    eq(full_fetches(up, f"/{model_id}.pt"), 1, f"{model_id}: one upstream fetch for all ranges on a filling object")
    with up.lock:
        seen = [h for m, p, h in up.requests if p == f"/{model_id}.pt"]
    eq([h.get("range") for h in seen], [None] * len(seen), "the upstream is asked for the whole file")
    eq(seen[0].get("host"), "ml-models.elastic.co", "the upstream host")
    # An older Elasticsearch: one stream, SHA-256 and size checked; a hit now.
    es_models.streamed_download(repo, model_id, got)
    eq(full_fetches(up, f"/{model_id}.pt"), 1, f"{model_id}: the stream is served from the cache")


def test():
    with Case() as (up, al, tmp):
        pt = os.urandom(11 * (1 << 20) + 12345)  # 12 chunks: 4 ranges of 3, 2, 2, 2, then 1 and 1
        download(al, up, "elser_model_2_linux-x86_64", pt, chunked=False)
        download(al, up, "multilingual-e5-small_linux-x86_64", os.urandom(5 * (1 << 20) + 777), chunked=True)
        ls = cli(al.config, "ls", "https://ml-models.elastic.co/*").stdout
        for f in ("elser_model_2_linux-x86_64.pt", "elser_model_2_linux-x86_64.metadata.json",
                  "elser_model_2_linux-x86_64.vocab.json"):
            if f"https://ml-models.elastic.co/{f}" not in ls:
                fail(f"{f} is cached under its canonical URL:\n{ls}")
        # A redirect would be an error for Elasticsearch: airlock never sends one on this route.
        st, h, _ = es_models.get(al.url("/ml-models/elser_model_2_linux-x86_64.pt"), {"Range": "bytes=0-9"})
        eq(st, 206, "a range on the stored model")


if __name__ == "__main__":
    main(test)
