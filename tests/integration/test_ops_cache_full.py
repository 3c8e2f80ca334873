"""A full cache disk is said, not hidden (issue 29, item 4).

The cache lives on a 6 MiB tmpfs (mounted for the test; airlock's
cache.max_size is 256 MiB, so the file system fills first and LMDB's writes
get ENOSPC).  A small document is stored first.  Then an agent package of
16 MiB is asked for:
  - its response's head went out before anything was committed, so its
    Cache-Status does not say `stored` (RFC 9211 §2.5: the cache stored the
    response); the body is cut off when the cache refuses it;
  - the log names the cache's path and the error ("No space left on
    device"), not just "the cache refused the body";
  - /_airlock/health says "degraded" (200: hits are still served), why
    (the path and the error) and since when; /_airlock/metrics has
    airlock_cache_degraded 1 and the refusals;
  - the next two requests for the package are passed through whole
    (Cache-Status: detail=not-stored) instead of being filled, refused and
    cut off again: one upstream fetch each, 3 in all; the stored document is
    still a hit.
Before: the log said only "the cache refused the body", health said "ok",
the first response said `stored`, and every later request was cut off too."""
import json, os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main  # noqa: E402

MiB = 1 << 20
PKG = "/downloads/beats/elastic-agent/elastic-agent-8.15.0-linux-x86_64.tar.gz"


def params(cs):
    return [p.strip() for p in (cs or "").split(";")]


def get(al, path):
    """(status, body bytes, Cache-Status, curl's exit code) of one GET."""
    out = os.path.join(al.tmp, "body")
    hdr = os.path.join(al.tmp, "head")
    p = subprocess.run(["curl", "-s", "--noproxy", "*", "-o", out, "-D", hdr, "--max-time", "30", al.url(path)],
                       capture_output=True, timeout=40)
    body = open(out, "rb").read() if os.path.exists(out) else b""
    cs, status = None, 0
    for line in open(hdr, "rb").read().decode("latin-1").split("\r\n") if os.path.exists(hdr) else []:
        if line.startswith("HTTP/"):
            status = int(line.split()[1])
        elif line.lower().startswith("cache-status:"):
            cs = line.split(":", 1)[1].strip()
    for f in (out, hdr):
        if os.path.exists(f):
            os.unlink(f)
    return status, body, cs, p.returncode


def test():
    if os.geteuid() != 0:
        print("FAIL the test mounts a tmpfs: it needs root")
        sys.exit(1)
    with Case(workers=1) as (up, al, tmp):
        al.stop()
        shutil.rmtree(al.cache)
        os.makedirs(al.cache)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", al.cache], check=True, timeout=20)
        try:
            al.start()
            body = os.urandom(16 * MiB)
            up.add(PKG, body, headers=[("ETag", '"8.15.0"')])
            doc = "/downloads/small.txt"
            up.add(doc, b"d" * 4000, headers=[("Cache-Control", "max-age=3600")])
            curl(al, doc)
            r = curl(al, doc)
            if not r.header("Cache-Status").startswith("airlock; hit"):
                fail(f"the small document is stored: {r.header('Cache-Status')}")
            h = al.health()
            eq(h["status"], "ok", "health before the disk is full")

            status, got, cs, rc = get(al, PKG)
            print(f"first request: {status}, {len(got)} bytes, Cache-Status {cs!r}, curl {rc}")
            if "stored" in params(cs):
                fail(f"the first response promised storage before anything was committed: {cs}")
            if got == body:
                fail("the cache took 16 MiB on a 6 MiB file system?")
            log = al.logtext()
            if "No space left on device" not in log or al.cache not in log:
                fail(f"the log names the cache's path and the error:\n{log[-3000:]}")

            h = al.health()
            print("health:", json.dumps(h))
            eq(h["status"], "degraded", "health while the cache refuses writes")
            if al.cache not in h.get("reason", "") or "No space left" not in h.get("reason", ""):
                fail(f"health says why: {h}")
            if not h["cache"].get("refusing_since") or h["cache"].get("writes") != "refused":
                fail(f"health says since when: {h['cache']}")
            m = curl(al, "/_airlock/metrics").body.decode()
            if "airlock_cache_degraded 1" not in m:
                fail("metrics: airlock_cache_degraded 1")
            if "airlock_cache_write_refusals_total 0" in m or "airlock_cache_write_refusals_total" not in m:
                fail("metrics: the refusals are counted")

            for i in (2, 3):
                status, got, cs, rc = get(al, PKG)
                print(f"request {i}: {status}, {len(got)} bytes, Cache-Status {cs!r}, curl {rc}")
                eq((status, rc, len(got), got == body), (200, 0, len(body), True), f"request {i} is passed through whole")
                if "detail=not-stored" not in params(cs) or "stored" in params(cs):
                    fail(f"request {i} says it is not stored: {cs}")
            eq(up.count(PKG), 3, "one upstream fetch per request, no refill attempts on top")
            r = curl(al, doc)
            if not r.header("Cache-Status").startswith("airlock; hit"):
                fail(f"the stored document is still a hit: {r.header('Cache-Status')}")
        finally:
            al.stop(strict=False)
            subprocess.run(["umount", "-l", al.cache], timeout=20)


if __name__ == "__main__":
    main(test)
