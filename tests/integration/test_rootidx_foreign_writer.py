"""The root index (cache/store.c rootidx, read by the offline S3 listing of product docs) and writers
that do not keep it: an airlock from before it fills an entry at a bucket's root into meta and leaves
the root index without it.  Here lmdb_probe leaves that state: it deletes a cached artifact's
rootidx entry (meta keeps the entry), in a transaction of its own, as such a writer commits.  The
same decision that guards the registry index (regidx_stamp / vouched_by_last: every commit of this
airlock carries its own transaction id) covers the root index:
  - at start, a cache not vouched for by the last transaction has both indexes rebuilt: the offline
    listing names the artifact again;
  - while airlock runs beside such a writer, its next commit takes the root index's format away too
    (a root scan reads meta whole), and the next start rebuilds it.
Before the guard covered the root index, the offline listing left the artifact out (2 of 3 keys),
and the running airlock's commit left the root index's format in place."""
import os, sys
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main
from test_product_docs_listing_index import keys
from test_registry_index import Probe

HOST = "https://kibana-knowledge-base-artifacts.elastic.co"
ARTS = ["kb-product-doc-elasticsearch-8.17.zip", "kb-product-doc-kibana-8.17.zip", "kb-product-doc-security-8.17.zip"]
NEW = "kb-product-doc-observability-8.17.zip"


def serve(up, a):
    up.add(f"/{a}", os.urandom(1500), headers=[("Content-Type", "application/zip"), ("ETag", f'"{a}"')])


def rootidx_format(probe):
    out = probe.run("get", "rootidx", b"\0format".hex()).strip()
    return None if out == "absent" else out


def listing(tmp, up, want, what):
    off = Airlock(tmp, up, offline=True)
    try:
        r = curl(off, "/product-docs?max-keys=1000")
        eq(r.status, 200, f"offline listing {what}")
        eq(keys(r.body), want, f"the objects at the bucket's root {what}")
    finally:
        off.stop()


def test():
    with Case() as (up, al, tmp):
        probe = Probe(tmp, al.cache)
        for a in ARTS + [NEW]:
            serve(up, a)
        for a in ARTS:
            eq(curl(al, f"/product-docs/{a}").status, 200, a)
        al.stop()
        for a in ARTS:
            if probe.run("get", "rootidx", f"{HOST}/{a}".encode().hex()).strip() == "absent":
                fail(f"{a} is not in the root index after its fill")
        if rootidx_format(probe) is None:
            fail("the root index has no format after airlock's commits")

        # An older airlock's fill: meta has the artifact, the root index does not.
        probe.run("del", "rootidx", f"{HOST}/{ARTS[1]}".encode().hex())
        listing(tmp, up, ARTS, "after a writer that keeps no root index")
        if probe.run("get", "rootidx", f"{HOST}/{ARTS[1]}".encode().hex()).strip() == "absent":
            fail("the start after a foreign writer rebuilds the root index")

        # The same beside a running airlock: its next commit (a new artifact) notices.
        on = Airlock(tmp, up)
        try:
            probe.run("del", "rootidx", f"{HOST}/{ARTS[2]}".encode().hex())
            eq(curl(on, f"/product-docs/{NEW}").status, 200, "an artifact admitted after the foreign write")
            if rootidx_format(probe) is not None:
                fail("airlock's first commit after a foreign one must take the root index's format away")
        finally:
            on.stop()
        listing(tmp, up, sorted(ARTS + [NEW]), "after a writer that keeps no root index, beside a running airlock")


if __name__ == "__main__":
    main(test)
