"""Trained models through the air-gap toolkit (issue 27, part 1).

Connected side: `airlock mirror models --id A,B,C` fetches each model's
metadata, .pt (checked against the metadata) and the vocabulary_file it names
(the files Elasticsearch's ml-package-loader reads: ModelImporter fb3ff2f3,
ModelLoaderUtils 01195333); an unknown id is a missing file, named; a rerun
asks for the metadata again (it pins the .pt) and finds the rest present;
a bad id list is refused.  Then a signed export, an import on the air-gapped
side, and Elasticsearch (tests/lib/es_models.py) with
xpack.ml.model_repository: http://airlock/ml-models downloads each model
offline: metadata, vocabulary, the .pt as parallel ranges (all 206) and as
one stream (SHA-256 checked), with zero upstream contact."""
import hashlib, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Case, cli, eq, fail, main
import es_models

MODELS = {"elser_model_2_linux-x86_64": 7 * (1 << 20) + 5, "multilingual-e5-small_linux-x86_64": 6 * (1 << 20) + 17,
          "rerank-v1": 6 * (1 << 20)}


def test():
    with Case() as (up, al, tmp):
        al.stop()
        pts = {m: os.urandom(n) for m, n in MODELS.items()}
        metas = {m: es_models.publish(up, m, pt) for m, pt in pts.items()}

        p = cli(al.config, "mirror", "models", "--id", ",".join(MODELS) + ",no-such-model", ok=False)
        eq(p.returncode, 0, f"mirror models:\n{p.stdout}\n{p.stderr}")
        if "fetched 9, already present 0, missing 1, failed 0" not in p.stdout:
            fail(f"three files per model, the unknown one missing:\n{p.stdout}\n{p.stderr}")
        if "missing: /ml-models/no-such-model.metadata.json (404)" not in p.stdout:
            fail(f"the unknown model is named:\n{p.stdout}")
        for m in MODELS:
            eq(up.count(f"/{m}.pt"), 1, f"{m}.pt fetched once")

        # A rerun asks for the metadata again (revalidated by ETag) and finds everything present.
        p = cli(al.config, "mirror", "models", "--id", ",".join(MODELS))
        if "fetched 0, already present 9, missing 0, failed 0" not in p.stdout:
            fail(f"rerun:\n{p.stdout}")
        for m in MODELS:
            eq(up.last_headers(f"/{m}.metadata.json").get("if-none-match"), f'"{m}-meta"', f"{m}: metadata revalidated")
        p = cli(al.config, "mirror", "models", "--id", "../etc", ok=False)
        eq(p.returncode, 2, f"a bad id: {p.stderr}")

        ag = AirGap(al, up)
        with ag as gap:
            repo = gap.url("/ml-models")
            for m, pt in pts.items():
                meta = es_models.metadata(repo, m)
                eq(meta["sha256"], metas[m]["sha256"], f"{m}: metadata offline")
                data, statuses = es_models.ranged_download(repo, m, meta)
                eq(set(statuses), {206}, f"{m}: ranges offline")
                eq(hashlib.sha256(data).hexdigest(), meta["sha256"], f"{m}: ranged bytes")
                es_models.streamed_download(repo, m, meta)
            ag.untouched()


if __name__ == "__main__":
    main(test)
