"""A second GET is a hit: the upstream count does not move, and validators,
repeated header lines and the body come back exactly as the upstream sent them."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, raw_request

SEARCH = b'[{"name":"nginx","version":"1.20.0","title":"Nginx"}]'
ZIP = os.urandom(300 * 1024)


def test():
    with Case() as (up, al, tmp):
        # The registry: two Cache-Control lines, no ETag (elastic/package-registry search.go
        # searchHandler and static.go staticHandler call cacheHeaders(w, cacheTime), which does
        # w.Header().Add("Cache-Control", "max-age=...") then Add("Cache-Control", "public")).
        up.add("/search?kibana.version=8.13.4", SEARCH, headers=[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Cache-Control", "max-age=600"), ("Cache-Control", "public")])
        # Endpoint: an ETag Endpoint compares byte for byte.
        etag = '"b6b2d1f5a39e5c3b0f1d4c1a7e2f0c9d"'
        up.add("/downloads/endpoint/manifest/artifacts-8.13.4.zip", ZIP, headers=[
            ("Content-Type", "application/zip"), ("ETag", etag),
            ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT"),
            ("X-Amz-Meta-Custom", "kept as is")])

        r1 = curl(al, "/search?kibana.version=8.13.4", ["User-Agent: Kibana/8.13.4 node-fetch"])
        eq(r1.status, 200, "first search")
        eq(r1.body, SEARCH, "search body")
        eq(r1.all("Cache-Control"), ["max-age=600", "public"], "repeated Cache-Control lines")
        eq(r1.header("ETag"), None, "airlock must not invent an ETag")
        if "fwd=miss" not in (r1.header("Cache-Status") or ""):
            fail(f"first response Cache-Status {r1.header('Cache-Status')!r} should say fwd=miss")
        eq(up.last_headers("/search?kibana.version=8.13.4").get("user-agent"),
           "Kibana/8.13.4 node-fetch", "client's User-Agent forwarded")

        r2 = curl(al, "/search?kibana.version=8.13.4")
        eq(r2.status, 200, "second search")
        eq(r2.body, SEARCH, "hit body")
        eq(r2.all("Cache-Control"), ["max-age=600", "public"], "repeated lines on a hit")
        eq(up.count("/search?kibana.version=8.13.4"), 1, "upstream requests for /search")
        cs = r2.header("Cache-Status") or ""
        if not cs.startswith("airlock; hit"):
            fail(f"second response Cache-Status {cs!r} should be a hit")
        if r2.header("Age") is None:
            fail("a hit carries Age")

        p = "/downloads/endpoint/manifest/artifacts-8.13.4.zip"
        for i in range(3):
            r = curl(al, p)
            eq(r.status, 200, f"zip #{i}")
            eq(r.body, ZIP, f"zip body #{i}")
            eq(r.header("ETag"), etag, f"ETag #{i} byte for byte")
            eq(r.header("Last-Modified"), "Tue, 14 May 2024 10:00:00 GMT", f"Last-Modified #{i}")
            eq(r.header("X-Amz-Meta-Custom"), "kept as is", f"end-to-end header #{i}")
            eq(r.header("Content-Length"), str(len(ZIP)), f"Content-Length #{i}")
        eq(up.count(p), 1, "upstream requests for the manifest zip")

        raw = raw_request(al, f"HEAD {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        if not raw.startswith(b"HTTP/1.1 200 ") or not raw.endswith(b"\r\n\r\n"):
            fail(f"HEAD must answer 200 with a head and no body: {raw[-200:]!r}")
        if f"Content-Length: {len(ZIP)}\r\n".encode() not in raw:
            fail("HEAD carries the body's Content-Length")
        eq(up.count(p), 1, "HEAD is served from the cache")

        health = al.health()
        eq(health["cache"]["entries"], 2, "entries in the health report")


if __name__ == "__main__":
    main(test)
