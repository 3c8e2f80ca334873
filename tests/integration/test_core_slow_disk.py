"""Hits keep being answered while a 304 refreshes a stored record on a slow disk.

Every commit to the cache is durable (an fdatasync per commit, issue 32).
A 304 revalidation rewrites the stored record's head and times (al_refresh);
it ran on the worker's event loop, so each revalidation held up every client
of that worker for a disk flush.  It now runs on the store writer's thread,
and the revalidating request is answered once the refresh is committed.

One worker, a disk whose every flush takes 400 ms (tests/tools/slowsync.c,
preloaded into airlock).  A client asks for a cached document every 5 ms
while three revalidations (max-age=0, ETag, the upstream answers 304) run
one after the other.  Each revalidation takes at least one flush; the hits
that start and end within it are counted: with the refresh on the loop no
hit gets through during the flush (0 to 2 per revalidation, from the few ms
before the 304 arrives); off the loop dozens do.  The bound (15 over the
three) leaves room for a loaded machine.  Every revalidation is answered
from the cache with the upstream's 304 (fetched 1 + 3 times), and the hits
stay whole."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, HitSampler, curl, eq, fail, main, slow_disk  # noqa: E402

slow_disk(400)


def test():
    with Case(workers=1) as (up, al, tmp):
        hit = "/downloads/small.txt"
        doc = "/downloads/rev.json"
        up.add(hit, b"x" * 2000, headers=[("Cache-Control", "max-age=3600")])
        up.add(doc, b'{"v":1}\n', headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=0")])
        curl(al, hit)
        r = curl(al, doc)
        eq((r.status, r.body), (200, b'{"v":1}\n'), "the document is fetched")
        r = curl(al, hit)
        if not r.header("Cache-Status").startswith("airlock; hit"):
            fail(f"the document to hit is stored: {r.header('Cache-Status')}")

        hits = HitSampler(al, hit, 0.005)
        time.sleep(0.5)
        windows = []
        for i in range(3):
            t0 = time.time()
            r = curl(al, doc)
            t1 = time.time()
            windows.append((t0, t1))
            if r.status == 0:
                fail(f"revalidation {i + 1}: {r.stderr} (airlock: {al.proc.poll()})")
            eq((r.status, r.body), (200, b'{"v":1}\n'), f"revalidation {i + 1}")
            if "fwd-status=304" not in (r.header("Cache-Status") or ""):
                fail(f"revalidation {i + 1} was answered by a 304: {r.header('Cache-Status')}")
            time.sleep(0.1)
        samples = hits.stop()

        bad = [s for s in samples if s[2] != 200 or s[3] != 2000]
        if bad:
            fail(f"every hit is whole: {bad[:3]}")
        inside = [sum(1 for s in samples if s[0] >= t0 and s[0] + s[1] <= t1) for t0, t1 in windows]
        took = [f"{(t1 - t0) * 1000:.0f}" for t0, t1 in windows]
        print(f"hits answered during each revalidation: {inside} (revalidations took {took} ms)")
        if sum(inside) < 15:
            fail(f"only {inside} hits were answered while the revalidations ran (took {took} ms): "
                 "the refresh's disk flush held up the worker")
        eq(up.count(doc), 4, "fetched once, then revalidated three times")


if __name__ == "__main__":
    main(test)
