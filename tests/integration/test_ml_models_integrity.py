"""A model file is admitted only when it matches its metadata (issue 27, part 1).

Elasticsearch's ml-package-loader reads <id>.metadata.json's sha256 and size
(ModelPackageConfig).  The current ranged download (ModelImporter fb3ff2f3
downloadModelDefinition -> checkDownloadComplete) checks only the size, so a
body of the right length and the wrong content would be indexed; the older
streamed download checks both.  airlock checks both before admission
(cache.verify_models, default https://ml-models.elastic.co/*.pt), as it
checks agents against their .sha512:
- a .pt whose SHA-256 differs from its metadata's (same size) is not stored;
  the streaming client's transfer is cut before its last byte, the ranged
  client's final range likewise (the last byte waits for the check), so
  Elasticsearch's import fails instead of indexing it; the refusal is logged
  and counted;
- a .pt whose size differs from the metadata's is refused the same way;
- once the metadata is corrected upstream (new ETag), the same .pt is
  admitted and logged as verified;
- a metadata file that names neither lets the file in unchecked."""
import hashlib, json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, cli, curl, eq, fail, main, wait_for
import es_models

ID = "rerank-v1"


def stored(al, model):
    ls = cli(al.config, "ls", f"https://ml-models.elastic.co/{model}.pt").stdout
    return any(l.startswith("200") for l in ls.splitlines())


def expect_failure(fn, what):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - what Elasticsearch would see
        return str(e)
    fail(f"{what}: Elasticsearch's download should have failed")


def test():
    with Case() as (up, al, tmp):
        repo = al.url("/ml-models")
        pt = os.urandom(6 * (1 << 20) + 99)  # more chunks than streams, as every real model
        es_models.publish(up, ID, pt, sha=hashlib.sha256(b"another build").hexdigest())
        meta = es_models.metadata(repo, ID)
        expect_failure(lambda: es_models.streamed_download(repo, ID, meta), "streamed, SHA-256 mismatch")
        eq(stored(al, ID), False, "a mismatching model is not stored")
        expect_failure(lambda: es_models.ranged_download(repo, ID, meta), "ranged, SHA-256 mismatch")
        eq(stored(al, ID), False, "still not stored")
        # the refusal runs on the fill after the client saw its transfer fail: wait for it
        wait_for(lambda: "does not match the sha256 of its metadata; not admitted" in al.logtext(), 10,
                 "the refusal is logged with its reason")
        wait_for(lambda: "airlock_integrity_refused_total 0" not in curl(al, "/_airlock/metrics").body.decode(), 10,
                 "the refusals are counted")

        # size mismatch: a metadata that names the right sha256 but another size
        es_models.publish(up, "size-model", pt, size=len(pt) + 1)
        smeta = es_models.metadata(repo, "size-model")
        expect_failure(lambda: es_models.streamed_download(repo, "size-model", smeta), "size mismatch")
        eq(stored(al, "size-model"), False, "a model of the wrong size is not stored")
        wait_for(lambda: f"its metadata says {len(pt) + 1}; not admitted" in al.logtext(), 10,
                 "the size refusal is logged")

        # Elastic corrects the metadata (new ETag): the same file is admitted, verified.
        up.add(f"/{ID}.metadata.json", json.dumps(dict(meta, sha256=hashlib.sha256(pt).hexdigest())),
               headers=[("Content-Type", "application/json"), ("ETag", '"meta-2"')])
        meta = es_models.metadata(repo, ID)
        data, statuses = es_models.ranged_download(repo, ID, meta)
        eq(hashlib.sha256(data).hexdigest(), hashlib.sha256(pt).hexdigest(), "the model's bytes")
        eq(stored(al, ID), True, "admitted once it matches")
        if f"stored https://ml-models.elastic.co/{ID}.pt ({len(pt)} bytes, SHA-256 and size verified" not in al.logtext():
            fail("the admission says it was verified")

        # A metadata file that names neither: the file comes in unchecked.
        up.add("/plain.metadata.json", json.dumps({"packaged_model_id": "plain"}), headers=[("ETag", '"p"')])
        up.add("/plain.pt", b"x" * 1000, headers=[("ETag", '"pt"')])
        r = curl(al, "/ml-models/plain.pt")
        eq((r.status, len(r.body)), (200, 1000), "unchecked model")
        eq(stored(al, "plain"), True, "stored unchecked")
        if "plain.pt: not checked against its metadata (it names no sha256 or size)" not in al.logtext():
            fail("says it was not checked")


if __name__ == "__main__":
    main(test)
