"""mirror never calls a failed download fetched (issue 12).

Two artifacts break after a 200 head on every try: one upstream resets the
connection after half the body, the other's body does not match its
published .sha512.  Retries are exhausted (3 tries each); neither is stored;
the summary counts them as failed and names them with the reason, names the
missing (404) combinations, and mirror exits non-zero.  A second run after
the upstream is mended fetches them and exits 0."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Case, eq, fail, main, sha512_line

V = "8.13.4"
CUT = f"/downloads/beats/elastic-agent/elastic-agent-{V}-linux-x86_64.tar.gz"
BAD = f"/downloads/fleet-server/fleet-server-{V}-linux-x86_64.tar.gz"


def mirror(al):
    return subprocess.run([AIRLOCK, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64,linux-arm64",
                           "--format", "tar.gz", "--only", "elastic-agent,fleet-server", "--config", al.config],
                          capture_output=True, text=True, timeout=90)


def test():
    with Case() as (up, al, tmp):
        al.stop()
        body = os.urandom(400 * 1024)
        # slow enough that the mirror has the 200 head and part of the body before the cut
        up.add(CUT, body, headers=[("ETag", '"cut"')], close_after=200 * 1024, rate=800 * 1024)
        up.add(CUT + ".sha512", sha512_line(body, os.path.basename(CUT)), headers=[("ETag", '"cut-sha"')])
        up.add(CUT + ".asc", b"asc", headers=[("ETag", '"cut-asc"')])
        good = os.urandom(300 * 1024)
        up.add(BAD, good, headers=[("ETag", '"bad"')])
        up.add(BAD + ".sha512", sha512_line(b"something else", os.path.basename(BAD)), headers=[("ETag", '"bad-sha"')])
        up.add(BAD + ".asc", b"asc", headers=[("ETag", '"bad-asc"')])
        arm = f"/downloads/beats/elastic-agent/elastic-agent-{V}-linux-arm64.tar.gz"
        up.add(arm, b"arm" * 1000, headers=[("ETag", '"arm"')])
        up.add(arm + ".sha512", sha512_line(b"arm" * 1000, os.path.basename(arm)))
        up.add(arm + ".asc", b"asc")
        up.add("/GPG-KEY-elastic-agent", b"key", headers=[("ETag", '"gpg"')])

        p = mirror(al)
        out = p.stdout
        if p.returncode == 0:
            fail(f"mirror must exit non-zero when a download failed:\n{out}")
        # 13 jobs: elastic-agent 2 arches x 3 files, fleet-server the same (arm64 missing), the GPG key
        if "failed 2" not in out or "fetched 8" not in out or "missing 3" not in out:
            fail(f"summary: the two broken artifacts are failed, the rest fetched:\n{out}\n{p.stderr}")
        for path in (CUT, BAD):
            line = [l for l in out.splitlines() if l.startswith(f"failed: {path} (")]
            if not line:
                fail(f"{path} is not named as failed in the summary:\n{out}")
        # the mismatch shows as airlock's 502 (found before the head went out) or as a cut transfer
        # (airlock holds back the last byte until the check passes, then aborts)
        if (f"failed: {BAD} (HTTP 502: 502 Bad Gateway: SHA-512 mismatch" not in out and
                f"failed: {BAD} (after the response head: Transferred a partial file)" not in out) or \
                f"failed: {CUT} (after the response head: Transferred a partial file)" not in out:
            fail(f"the reasons are given:\n{out}")
        # fleet-server has no arm64 build here: named as missing, not failed.
        fs_arm = f"/downloads/fleet-server/fleet-server-{V}-linux-arm64.tar.gz"
        if f"missing: {fs_arm} (404)" not in out:
            fail(f"missing combinations are named:\n{out}")
        eq(up.count(CUT), 3, "the cut-off download was tried three times")
        eq(up.count(BAD), 3, "the mismatching download was tried three times")
        eq(up.count(BAD + ".sha512"), 1, "its .sha512 was fetched once, then hit")

        # Mended upstream: the next run fetches them and exits 0.
        up.add(CUT, body, headers=[("ETag", '"cut"')])
        up.add(BAD + ".sha512", sha512_line(good, os.path.basename(BAD)), headers=[("ETag", '"bad-sha2"')])
        # the stale .sha512 is immutable in the cache: the operator purges it, as the log says to
        subprocess.run([AIRLOCK, "purge", "https://artifacts.elastic.co" + BAD + ".sha512", "--config", al.config],
                       capture_output=True, timeout=30, check=True)
        p = mirror(al)
        eq(p.returncode, 0, f"second run:\n{p.stdout}\n{p.stderr}")
        if "failed 0" not in p.stdout or "fetched 3" not in p.stdout:
            fail(f"second run summary:\n{p.stdout}")


if __name__ == "__main__":
    main(test)
