"""The offline product-docs listing reads the bucket's entries, not the cache
(issue 27, part 3, left open: "the listing still scans every record").

Kibana reads the bucket's ListBucketResult (fetchArtifactVersions, kibana
156fdbc6, as test_airgap_product_docs drives it); offline, airlock writes it
from the entries cached at the bucket's root.  Those are found through the
store's root index (cache/store.c rootidx: URLs in order, a cursor range
over "https://kibana-knowledge-base-artifacts.elastic.co/"), so the query
thread reads one record per object listed however many others the cache
holds: here 3 artifacts among 44 other entries (objects under the bucket's
sub-folders, another host's root entry, 40 agent downloads).  The listing
names exactly the 3, and the air-gapped airlock's log says it read 3
records for them (debug line "N objects listed from M records read"); zero
upstream contact."""
import os, sys, xml.etree.ElementTree as ET
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Case, curl, eq, fail, main

ARTS = ["kb-product-doc-elasticsearch-8.17.zip", "kb-product-doc-kibana-8.17.zip", "kb-product-doc-security-8.17.zip"]


def keys(body):
    root = ET.fromstring(body)
    return [c.findtext("{http://s3.amazonaws.com/doc/2006-03-01/}Key") for c in root.iter() if c.tag.endswith("Contents")]


def test():
    with Case() as (up, al, tmp):
        bodies = {a: os.urandom(2000) for a in ARTS}
        cached = [f"/product-docs/{a}" for a in ARTS]
        for a, b in bodies.items():
            up.add(f"/{a}", b, headers=[("Content-Type", "application/zip"), ("ETag", f'"{a}"')])
        for p in ("/old/kb-product-doc-kibana-8.15.zip", "/old/kb-product-doc-security-8.15.zip"):
            up.add(p, b"not at the root", headers=[("Content-Type", "application/zip")])
            cached.append("/product-docs" + p)
        up.add("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
        cached.append("/GPG-KEY-elastic-agent")
        for i in range(40):
            p = f"/downloads/beats/filebeat/filebeat-8.17.{i}-linux-x86_64.tar.gz"
            up.add(p, os.urandom(500), headers=[("Content-Type", "application/octet-stream")])
            cached.append(p)
        for p in cached:
            eq(curl(al, p).status, 200, p)
        ag = AirGap(al, up)
        with ag as gap:
            r = curl(gap, "/product-docs?max-keys=1000")
            eq(r.status, 200, "offline listing")
            if "upstream offline" not in (r.header("Cache-Status") or ""):
                fail(f"written by airlock: {r.header('Cache-Status')}")
            eq(keys(r.body), ARTS, "the objects at the bucket's root, in key order")
            for a in ARTS:
                r = curl(gap, f"/product-docs/{a}")
                eq((r.status, r.body), (200, bodies[a]), a)
            line = [l for l in gap.logtext(tail=None).splitlines() if "objects listed from" in l]
            if len(line) != 1 or not line[0].endswith("3 objects listed from 3 records read"):
                fail(f"the listing read one record per object listed: {line}")
            ag.untouched()


if __name__ == "__main__":
    main(test)
