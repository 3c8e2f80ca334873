"""Range requests: single ranges from the cache (a-b, a-, -n), 416 when
unsatisfiable, If-Range, and a range on a miss answered from the fill."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main

BODY = os.urandom(1024 * 1024 + 17)
P = "/downloads/elastic-agent/elastic-agent-8.13.4-darwin-aarch64.tar.gz"
M = "/downloads/elastic-agent/elastic-agent-8.13.4-linux-x86_64.rpm"


def test():
    with Case() as (up, al, tmp):
        up.add(P, BODY, headers=[("ETag", '"r1"'), ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT")])
        eq(curl(al, P).all("Accept-Ranges"), ["bytes"], "Accept-Ranges")
        eq(curl(al, P).all("Accept-Ranges"), ["bytes"], "Accept-Ranges on a hit")
        # an origin that says it too (nginx does): the hit says it once, not twice
        A = "/downloads/elastic-agent/elastic-agent-8.13.4-windows-x86_64.zip"
        up.add(A, b"m" * 100, headers=[("Accept-Ranges", "bytes")])
        curl(al, A)
        eq(curl(al, A).all("Accept-Ranges"), ["bytes"], "Accept-Ranges once when the origin sent it")
        n = len(BODY)
        for rng, a, b in (("0-99", 0, 99), ("1000-", 1000, n - 1), ("-500", n - 500, n - 1),
                          ("500000-600000", 500000, 600000), (f"{n - 10}-{n + 100}", n - 10, n - 1)):
            r = curl(al, P, [f"Range: bytes={rng}"])
            eq(r.status, 206, f"bytes={rng}")
            eq(r.body, BODY[a:b + 1], f"bytes={rng} body")
            eq(r.header("Content-Range"), f"bytes {a}-{b}/{n}", f"bytes={rng} Content-Range")
            eq(r.header("ETag"), '"r1"', "206 keeps the ETag")
        r = curl(al, P, [f"Range: bytes={n}-"])
        eq(r.status, 416, "past the end")
        eq(r.header("Content-Range"), f"bytes */{n}", "416 Content-Range")
        r = curl(al, P, ["Range: bytes=0-9", 'If-Range: "r1"'])
        eq((r.status, r.body), (206, BODY[:10]), "If-Range matching ETag")
        r = curl(al, P, ["Range: bytes=0-9", 'If-Range: "old"'])
        eq((r.status, len(r.body)), (200, n), "If-Range not matching: whole body")
        r = curl(al, P, ["Range: bytes=0-9", "If-Range: Tue, 14 May 2024 10:00:00 GMT"])
        eq(r.status, 206, "If-Range with the Last-Modified date")
        r = curl(al, P, ["Range: bytes=0-1,5-6"])
        eq((r.status, len(r.body)), (200, n), "several ranges: whole body")
        eq(up.count(P), 1, "all from one fill")

        # A range on a miss starts the full fill and is answered from it.
        up.add(M, BODY, headers=[("ETag", '"m"')], rate=2 * 1024 * 1024)
        r = curl(al, M, ["Range: bytes=700000-700099"])
        eq(r.status, 206, "range on a miss")
        eq(r.body, BODY[700000:700100], "range on a miss body")
        eq(up.last_headers(M).get("range"), None, "the upstream got a plain GET")
        r = curl(al, M)
        eq(r.body, BODY, "the whole object was stored")
        eq(up.count(M), 1, "one upstream request")


if __name__ == "__main__":
    main(test)
