"""An upstream that dies mid-body leaves nothing that can be served as
complete: the client sees an aborted transfer (never a short 200), and the
next request fetches again."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main

BODY = os.urandom(2 * 1024 * 1024)
P = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz"


def test():
    with Case() as (up, al, tmp):
        up.add(P, BODY, headers=[("ETag", '"fb"')], close_after=700 * 1024)
        r = curl(al, P)
        if r.rc == 0 and r.body == BODY:
            fail("a truncated upstream body was delivered as complete")
        # Either the failure is known before the head goes out (502), or the
        # client sees the transfer abort (curl: partial file / receive error).
        if not (r.status == 502 or r.rc in (18, 56, 92)):
            fail(f"want 502 or an aborted transfer, got rc={r.rc} ({r.stderr.strip()}) status={r.status}")
        if len(r.body) >= len(BODY):
            fail("client got a full-length body")
        eq(al.health()["cache"]["entries"], 0, "no entry after an aborted fill")
        # A second try goes upstream again; this time the upstream is healthy.
        up.fixtures[P].close_after = None
        r = curl(al, P)
        eq(r.rc, 0, "second try")
        eq(r.body, BODY, "second try body")
        eq(up.count(P), 2, "refetched after the failure")
        r = curl(al, P)
        eq(r.body, BODY, "now a hit")
        eq(up.count(P), 2, "no third fetch")

        # Slow upstream: the client is already streaming when the upstream dies.
        S = "/downloads/beats/metricbeat/metricbeat-8.13.4-linux-x86_64.tar.gz"
        up.add(S, BODY, headers=[("ETag", '"mb"')], rate=1024 * 1024, close_after=600 * 1024)
        r = curl(al, S)
        eq(r.status, 200, "head was sent before the failure")
        if r.rc not in (18, 56, 92):
            fail(f"the client must see an aborted transfer, got rc={r.rc} with {len(r.body)} bytes")
        if len(r.body) >= len(BODY):
            fail("a truncated body reached the client as complete")
        # the complete object and the .sha512 answer its integrity check stored (a 404 here)
        eq(al.health()["cache"]["entries"], 2, "the aborted object is not in the cache")


if __name__ == "__main__":
    main(test)
