"""Endpoint updates flow through airlock (issue 12).

Elastic republishes downloads/endpoint/manifest/artifacts-<version>.zip in
place: manifest_version moves, the ETag changes (seed 001 reads
manifest_version from that very URL), and Endpoint downloads again only when
the ETag changes.  Here the fake upstream republishes the manifest (new ETag,
one artifact changed, one added) and:
- an Endpoint-like client (Go net/http, If-None-Match as Endpoint polls)
  sees the new manifest within the upstream's max-age;
- `airlock mirror endpoint` run again revalidates the manifest and fetches
  the new relative_urls, saying "manifest updated A -> B, N new artifacts";
- with the uplink gone, clients holding either ETag are still served, and
  every artifact of both manifests is a hit.
Artifact bodies are named by their SHA-256 (immutable); the manifest is not.

Sources: Elastic Security's "Configure offline endpoints and air-gapped
environments" (elastic.co/guide/en/security/8.13/offline-endpoint.html,
"Host an Elastic Endpoint artifact mirror"): a mirror must pass the ETag on,
because "Elastic Endpoint uses the Etag header to determine whether your
global artifacts have been updated".  Endpoint itself is closed source: the
client here sending If-None-Match is our reading of that sentence, not code.  The
artifact path shape is Kibana Fleet's relativeDownloadUrlFromArtifact (cited
in tests/unit/test_freshness.c)."""
import hashlib, io, json, os, subprocess, sys, time, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, curl, eq, fail, go_client, main

V = "8.13.4"
MANIFEST = f"/downloads/endpoint/manifest/artifacts-{V}.zip"


def artifact(up, ident, body):
    rel = f"/downloads/endpoint/artifacts/{ident}/{hashlib.sha256(body).hexdigest()}"
    up.add(rel, body, headers=[("ETag", '"%s"' % hashlib.sha256(body).hexdigest()[:16])])
    return rel


def publish(up, mv, arts, etag):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({
            "manifest_version": mv, "sku": "8.13",
            "artifacts": {k: {"relative_url": rel, "encoded_size": 1} for k, rel in arts.items()}}))
    up.add(MANIFEST, buf.getvalue(), headers=[("ETag", etag), ("Cache-Control", "max-age=2"),
                                             ("Content-Type", "application/zip")])
    return buf.getvalue()


def mirror(al):
    p = subprocess.run([AIRLOCK, "mirror", "endpoint", "--version", V, "--config", al.config],
                       capture_output=True, text=True, timeout=60)
    return p


def test():
    with Case() as (up, al, tmp):
        a1 = artifact(up, "diagnostic-configuration-v1", b"diag v1 " * 500)
        b1 = artifact(up, "endpointpe-v4-blocklist", b"blocklist " * 400)
        old_zip = publish(up, "1.0.1588", {"diagnostic-configuration-v1": a1, "endpointpe-v4-blocklist": b1}, '"m-1588"')
        base = al.url("")

        # Endpoint's first download, then a conditional poll: 304 from the cache.
        r = go_client(base + MANIFEST)
        eq((r["status"], r["etag"], r["sha256"]), (200, '"m-1588"', hashlib.sha256(old_zip).hexdigest()), "first manifest")
        r = go_client(base + MANIFEST, etag='"m-1588"')
        eq(r["status"], 304, "poll with the current ETag")

        # The mirror on the connected side, before the republication.
        al.stop()
        p = mirror(al)
        eq(p.returncode, 0, f"mirror: {p.stdout}{p.stderr}")
        if "manifest_version 1.0.1588: 2 artifacts" not in p.stdout:
            fail(f"first mirror: {p.stdout}")
        al.start()

        # Elastic republishes in place: one artifact changed, one added, new ETag.  A month
        # later the operator runs mirror again: it revalidates the manifest and fetches the new files.
        a2 = artifact(up, "diagnostic-configuration-v1", b"diag v2 " * 600)
        c2 = artifact(up, "endpoint-trustlist-v1", b"trust " * 300)
        publish(up, "1.0.1622", {"diagnostic-configuration-v1": a2, "endpointpe-v4-blocklist": b1,
                                 "endpoint-trustlist-v1": c2}, '"m-1622"')
        al.stop()
        p = mirror(al)
        eq(p.returncode, 0, f"mirror again: {p.stdout}{p.stderr}")
        if "manifest updated 1.0.1588 \u2192 1.0.1622, 2 new artifacts" not in p.stdout:
            fail(f"second mirror summary: {p.stdout}")
        eq((up.count(a2), up.count(c2)), (1, 1), "the new artifacts fetched once each")
        if "already present 1" not in p.stdout:
            fail(f"the unchanged artifact is present, not fetched again: {p.stdout}")
        # A third run with nothing new: revalidated, nothing fetched.
        p = mirror(al)
        if "manifest 1.0.1622 unchanged (revalidated), 0 new artifacts" not in p.stdout or "fetched 0" not in p.stdout:
            fail(f"third mirror: {p.stdout}")
        al.start()

        # Republished again while Endpoints poll through airlock: they see it within max-age.
        r = go_client(base + MANIFEST, etag='"m-1622"')
        eq(r["status"], 304, "poll with the current ETag")
        d3 = artifact(up, "diagnostic-configuration-v1", b"diag v3 " * 700)
        new_zip = publish(up, "1.0.1700", {"diagnostic-configuration-v1": d3, "endpointpe-v4-blocklist": b1,
                                           "endpoint-trustlist-v1": c2}, '"m-1700"')
        t0 = time.time()
        while True:
            r = go_client(base + MANIFEST, etag='"m-1622"')
            if r["status"] == 200:
                break
            eq(r["status"], 304, "while the stored copy is fresh")
            if time.time() - t0 > 6:
                fail("the republished manifest was not seen within the upstream's max-age (2 s) + slack")
            time.sleep(0.3)
        eq((r["etag"], r["sha256"]), ('"m-1700"', hashlib.sha256(new_zip).hexdigest()), "the new manifest")
        r = go_client(base + d3)
        eq(r["status"], 200, "the Endpoint fetches the changed artifact")
        # Revalidations carry the stored ETag: the upstream answers 304 while nothing changes.
        time.sleep(2.2)
        r = go_client(base + MANIFEST, etag='"m-1700"')
        eq(r["status"], 304, "poll with the newest ETag")
        if up.last_headers(MANIFEST).get("if-none-match") != '"m-1700"':
            fail(f"revalidation should send the stored ETag: {up.last_headers(MANIFEST)}")

        # The uplink goes away: both kinds of Endpoint are served, every artifact is a hit.
        up.stop()
        r = go_client(base + MANIFEST, etag='"m-1622"')
        eq((r["status"], r["etag"]), (200, '"m-1700"'), "an Endpoint still on an older manifest, offline")
        r = go_client(base + MANIFEST, etag='"m-1700"')
        eq(r["status"], 304, "an Endpoint on the newest manifest, offline")
        for rel in (a1, b1, a2, c2, d3):
            rr = curl(al, rel)
            eq(rr.status, 200, f"{rel} offline")
            if not rr.header("Cache-Status").startswith("airlock; hit"):
                fail(f"{rel}: {rr.header('Cache-Status')}")


if __name__ == "__main__":
    main(test)
