"""Integrity before admission: an artifact whose body does not match its
published .sha512 is never admitted nor delivered as complete; a matching one
is admitted; one without a .sha512 is admitted unverified.  The .sha512 is
written the way elastic-agent reads it (internal/pkg/agent/application/
upgrade/artifact/download/verifier.go: VerifySHA512Hash -> readChecksumFile,
sha512sum output, the hex of the line that names the file): sha512_line."""
import hashlib, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, sha512_line

GOOD = os.urandom(900 * 1024)
BAD = os.urandom(900 * 1024)
D = "/downloads/beats/packetbeat/"


def test():
    with Case() as (up, al, tmp):
        ok = D + "packetbeat-8.13.4-linux-x86_64.tar.gz"
        up.add(ok, GOOD, headers=[("ETag", '"g"')])
        up.add(ok + ".sha512", sha512_line(GOOD, "packetbeat-8.13.4-linux-x86_64.tar.gz"))
        r = curl(al, ok)
        eq((r.status, r.rc, r.body == GOOD), (200, 0, True), "verified artifact")
        if "SHA-512 verified" not in al.logtext():
            fail("the log should say the body was verified")
        eq(curl(al, ok).body, GOOD, "hit")
        eq(up.count(ok), 1, "one fetch")

        # A body that does not match: the client sees an abort, the cache keeps nothing.
        bad = D + "packetbeat-8.13.4-linux-arm64.tar.gz"
        up.add(bad, BAD, headers=[("ETag", '"b"')])
        up.add(bad + ".sha512", sha512_line(GOOD, "packetbeat-8.13.4-linux-arm64.tar.gz"))
        # The agent fetches the .sha512 first here, so it is in the cache already.
        eq(curl(al, bad + ".sha512").status, 200, ".sha512 cached")
        r = curl(al, bad)
        if r.rc == 0 and r.status == 200 and r.body == BAD:
            fail("a body failing its .sha512 was delivered as complete")
        if len(r.body) >= len(BAD):
            fail("the client got every byte of an unverified body")
        if "does not match" not in al.logtext():
            fail("a mismatch is logged loudly")
        # The next request refetches (and fails again, as the upstream still lies).
        curl(al, bad)
        eq(up.count(bad), 2, "mismatch not admitted: refetched")

        # No .sha512 published: admitted, unverified.
        nos = D + "packetbeat-8.13.4-windows-x86_64.zip"
        up.add(nos, GOOD, headers=[("ETag", '"n"')])
        eq(curl(al, nos).body, GOOD, "unverifiable artifact")
        eq(curl(al, nos).body, GOOD, "hit")
        eq(up.count(nos), 1, "admitted without a .sha512")

        # Endpoint artifacts are not checked (no .sha512 there): no sibling request.
        ep = "/downloads/endpoint/manifest/artifacts-8.13.4.zip"
        up.add(ep, b"PK", headers=[("ETag", '"e"')])
        curl(al, ep)
        eq(up.count(ep + ".sha512"), 0, "no .sha512 request for endpoint artifacts")


if __name__ == "__main__":
    main(test)
