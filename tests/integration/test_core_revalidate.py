"""Stale entries are revalidated with the upstream's own validators: a 304
keeps the stored body and refreshes the metadata; a changed ETag replaces
the entry; an upstream without validators is refetched unconditionally."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main

P = "/downloads/endpoint/manifest/artifacts-8.13.4.zip"


def test():
    with Case() as (up, al, tmp):
        up.add(P, b"manifest v1", headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=2"),
                                           ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT")])
        # The Endpoint manifest follows the upstream's freshness (it is republished in place),
        # and so does any path no immutable rule matches.
        Q = "/downloads/endpoint/manifest/latest"
        up.fixtures[Q] = up.fixtures[P]
        eq(curl(al, Q).body, b"manifest v1", "fill")
        eq(curl(al, Q).header("Cache-Status").startswith("airlock; hit"), True, "fresh hit")
        time.sleep(3.1)
        # The 304 will carry a longer max-age: it must replace the stored one.
        up.fixtures[Q].headers = [("ETag", '"v1"'), ("Cache-Control", "max-age=60"),
                                  ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT")]
        r = curl(al, Q)
        eq(r.status, 200, "revalidated")
        eq(r.header("Cache-Control"), "max-age=60", "304's Cache-Control replaced the stored one")
        eq(r.body, b"manifest v1", "304 keeps the body")
        eq(r.header("ETag"), '"v1"', "ETag kept")
        eq(r.header("Cache-Status"), "airlock; fwd=stale; fwd-status=304", "Cache-Status after 304")
        eq(up.count(Q), 2, "one revalidation")
        eq(up.last_headers(Q).get("if-none-match"), '"v1"', "revalidation sent the stored ETag")
        eq(up.last_headers(Q).get("if-modified-since"), "Tue, 14 May 2024 10:00:00 GMT", "and Last-Modified")
        # The 304 refreshed the entry: fresh again.
        r = curl(al, Q)
        eq(r.header("Cache-Status").startswith("airlock; hit"), True, "fresh after 304")
        eq(up.count(Q), 2, "no request while fresh")

        # The upstream publishes a new version: new ETag, new body.
        R = "/downloads/endpoint/manifest/current"
        up.add(R, b"manifest v1", headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=1")])
        curl(al, R)
        time.sleep(2.1)
        up.add(R, b"manifest v2", headers=[("ETag", '"v2"'), ("Cache-Control", "max-age=60")])
        r = curl(al, R)
        eq(r.body, b"manifest v2", "changed body")
        eq(r.header("ETag"), '"v2"', "new ETag")
        # the new body streams while it is filled: `stored` only if it was committed before the head went out
        if "fwd=stale" not in r.header("Cache-Status") or "fwd-status=200" not in r.header("Cache-Status"):
            fail(f"Cache-Status {r.header('Cache-Status')!r}")
        eq(up.last_headers(R).get("if-none-match"), '"v1"', "conditional with the old ETag")
        eq(curl(al, R).body, b"manifest v2", "new body is a hit")
        eq(up.count(R), 2, "upstream requests")

        # The package registry sends no validators: revalidation is an unconditional GET.
        S = "/categories?kibana.version=8.13.4"
        up.add(S, b'[{"id":"security"}]', headers=[("Cache-Control", "max-age=1"), ("Cache-Control", "public")])
        curl(al, S)
        time.sleep(2.1)
        up.add(S, b'[{"id":"security"},{"id":"cloud"}]', headers=[("Cache-Control", "max-age=1"), ("Cache-Control", "public")])
        r = curl(al, S)
        eq(r.body, b'[{"id":"security"},{"id":"cloud"}]', "refetched")
        h = up.last_headers(S)
        eq("if-none-match" in h or "if-modified-since" in h, False, "no invented validators")
        eq(r.header("ETag"), None, "still no ETag")

        # Immutable rule: a package archive, named by its version, stays a hit however old.
        Z = "/epr/nginx/nginx-1.20.0.zip"
        up.add(Z, b"zip", headers=[("ETag", '"z"'), ("Cache-Control", "max-age=0")])
        curl(al, Z)
        eq(curl(al, Z).header("Cache-Status"), "airlock; hit", "immutable package archive")
        eq(up.count(Z), 1, "immutable entries are not revalidated")
        # The Endpoint manifest is a .zip too, but republished in place: max-age=0 means revalidate.
        up.add(P, b"manifest", headers=[("ETag", '"m"'), ("Cache-Control", "max-age=0")])
        curl(al, P)
        eq(curl(al, P).header("Cache-Status"), "airlock; fwd=stale; fwd-status=304", "the manifest is revalidated")
        eq(up.count(P), 2, "the manifest's ETag was asked about")


if __name__ == "__main__":
    main(test)
