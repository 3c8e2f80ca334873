"""The AI Assistant's product documentation through airlock (issue 27, part 3).

Kibana's xpack.productDocBase.artifactRepositoryUrl: http://airlock/product-docs.
fetchArtifactVersions (kibana 156fdbc6, x-pack/platform/plugins/shared/
ai_infra/product_doc_base/server/services/package_installer/steps/
fetch_artifact_versions.ts) GETs ${url}?max-keys=1000 and reads, with
xml2js, ListBucketResult.IsTruncated and each Contents' Key, keeping the
names parseArtifactName reads (product-doc-common/src/artifact.ts at
6d988057: kb-product-doc-<product>-<major.minor>[--<inferenceId>].zip);
the installer then downloads ${url}/<name> and checks neither its status
nor its type.

- Online, the route /product-docs (strip_prefix) serves the bucket's own
  listing, cached under https://kibana-knowledge-base-artifacts.elastic.co/?max-keys=1000;
- `airlock mirror product-docs --version 8.17` fetches the listing and the
  8.17 artifacts only; a version that is not MAJOR.MINOR is refused;
- air-gapped (signed export, import, upstream.offline), the listing names
  only the artifacts the cache holds (8.16 is published upstream but was not
  mirrored), each downloads with its bytes, and an artifact not cached is a
  504, never a 200; zero upstream contact."""
import hashlib, os, sys, xml.etree.ElementTree as ET
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Case, cli, curl, eq, fail, main

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
PRODUCTS = ("elasticsearch", "kibana", "observability", "security")


def listing(names):
    items = "".join(f"<Contents><Key>{n}</Key><LastModified>2024-12-01T10:00:00.000Z</LastModified>"
                    f"<ETag>\"{hashlib.md5(n.encode()).hexdigest()}\"</ETag><Size>100</Size>"
                    f"<StorageClass>STANDARD</StorageClass></Contents>" for n in sorted(names))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            '<Name>kibana-knowledge-base-artifacts</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys>'
            f'<IsTruncated>false</IsTruncated>{items}</ListBucketResult>')


def kibana_versions(body):
    """fetchArtifactVersions: IsTruncated, then every Contents/Key."""
    root = ET.fromstring(body)
    if (root.findtext(f"{NS}IsTruncated") or root.findtext("IsTruncated") or "") == "true":
        fail("bucket content is truncated")
    return [c.findtext(f"{NS}Key") or c.findtext("Key") for c in root.iter() if c.tag.endswith("Contents")]


def test():
    with Case() as (up, al, tmp):
        names = {}
        for v in ("8.16", "8.17"):
            for p in PRODUCTS:
                names[f"kb-product-doc-{p}-{v}.zip"] = os.urandom(3000)
        names["kb-product-doc-elasticsearch-8.17--.multilingual-e5-small-elasticsearch.zip"] = os.urandom(2000)
        names["README.txt"] = b"not an artifact"
        up.add("/?max-keys=1000", listing(names), headers=[("Content-Type", "application/xml"), ("ETag", '"list-1"')])
        for n, body in names.items():
            up.add(f"/{n}", body, headers=[("Content-Type", "application/zip"), ("ETag", f'"{n}"'),
                                            ("Last-Modified", "Sun, 01 Dec 2024 10:00:00 GMT")])

        r = curl(al, "/product-docs?max-keys=1000")
        eq(r.status, 200, "the listing through the route")
        eq(sorted(kibana_versions(r.body)), sorted(names), "the bucket's own listing, online")
        eq(up.last_headers("/?max-keys=1000").get("host"), "kibana-knowledge-base-artifacts.elastic.co", "upstream host")
        al.stop()

        p = cli(al.config, "mirror", "product-docs", "--version", "8", ok=False)
        eq(p.returncode, 2, f"a version that is not MAJOR.MINOR: {p.stderr}")
        p = cli(al.config, "mirror", "product-docs", "--version", "8.17")
        if "product-docs listing: 10 artifacts, 5 for 8.17" not in p.stdout or \
                "fetched 5, already present 1, missing 0, failed 0" not in p.stdout:
            fail(f"mirror product-docs:\n{p.stdout}\n{p.stderr}")
        eq(up.last_headers("/?max-keys=1000").get("if-none-match"), '"list-1"', "the listing is asked again, by ETag")
        ls = cli(al.config, "ls", "https://kibana-knowledge-base-artifacts.elastic.co/*").stdout
        if "https://kibana-knowledge-base-artifacts.elastic.co/?max-keys=1000" not in ls:
            fail(f"the listing's key is the bucket's canonical URL:\n{ls}")

        mirrored = sorted(n for n in names if "-8.17" in n)
        ag = AirGap(al, up)
        with ag as gap:
            r = curl(gap, "/product-docs?max-keys=1000")
            eq(r.status, 200, "offline listing")
            if "upstream offline" not in (r.header("Cache-Status") or ""):
                fail(f"the offline listing says it was written by airlock: {r.header('Cache-Status')}")
            keys = kibana_versions(r.body)
            eq(keys, mirrored, "offline, the listing names only the cached artifacts")
            for k in keys:
                r = curl(gap, f"/product-docs/{k}")
                eq((r.status, r.body), (200, names[k]), f"offline {k}")
            r = curl(gap, "/product-docs/kb-product-doc-kibana-8.16.zip")
            eq(r.status, 504, "an artifact not cached is an error status, never a 200")
            ag.untouched()


if __name__ == "__main__":
    main(test)
