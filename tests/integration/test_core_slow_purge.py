"""Hits keep being answered while POST /_airlock/purge commits on a slow disk
(issue 29's leftover: the purge ran on the worker's loop).

The purge scanned every record and committed its deletions (one durable
commit: an fdatasync) on the worker's event loop, holding up every client
of that worker for the scan and the flush.  It now runs on the store
writer's thread (admin.h admin_purge_post, proxy/front/purge.c), and the
purging request is answered once its commit is done.

One worker, a disk whose every flush takes 400 ms (tests/tools/slowsync.c,
preloaded into airlock), as in test_core_slow_disk.  A client asks for a
cached object every 5 ms while three purges, one after the other, each
delete one other object.  The hits that start and end within a purge are
counted: with the purge on the loop none gets through during the flush;
off the loop dozens do.  The bound (15 over the three) leaves room for a
loaded machine.  Each purge answers {"purged":1}, what it purged is fetched
again, and the hit object stays cached."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, HitSampler, curl, eq, fail, main, slow_disk  # noqa: E402

slow_disk(400)


def test():
    with Case(workers=1) as (up, al, tmp):
        hit = "/downloads/small.txt"
        victims = [f"/downloads/old-{i}.txt" for i in range(3)]
        up.add(hit, b"x" * 2000, headers=[("Cache-Control", "max-age=3600")])
        for v in victims:
            up.add(v, b"old " + v.encode(), headers=[("Cache-Control", "max-age=3600")])
        for p in [hit] + victims:
            eq(curl(al, p).status, 200, f"{p} fetched")
        for p in [hit] + victims:
            if not curl(al, p).header("Cache-Status").startswith("airlock; hit"):
                fail(f"{p} is stored")

        hits = HitSampler(al, hit, 0.005)
        time.sleep(0.5)
        windows = []
        for i, v in enumerate(victims):
            t0 = time.time()
            r = curl(al, "/_airlock/purge?pattern=*" + v, method="POST")
            t1 = time.time()
            windows.append((t0, t1))
            if r.status == 0:
                fail(f"purge {i + 1}: {r.stderr} (airlock: {al.proc.poll()})")
            eq((r.status, r.body), (200, b'{"purged":1}\n'), f"purge {i + 1}")
            eq(r.header("Cache-Control"), "no-store", f"purge {i + 1}'s answer is not cached")
            time.sleep(0.1)
        samples = hits.stop()

        bad = [s for s in samples if s[2] != 200 or s[3] != 2000]
        if bad:
            fail(f"every hit is whole: {bad[:3]}")
        inside = [sum(1 for s in samples if s[0] >= t0 and s[0] + s[1] <= t1) for t0, t1 in windows]
        took = [f"{(t1 - t0) * 1000:.0f}" for t0, t1 in windows]
        print(f"hits answered during each purge: {inside} (purges took {took} ms)")
        if sum(inside) < 15:
            fail(f"only {inside} hits were answered while the purges ran (took {took} ms): "
                 "the purge's scan and disk flush held up the worker")
        for v in victims:
            r = curl(al, v)
            eq((r.status, r.body), (200, b"old " + v.encode()), f"{v} after its purge")
            eq(up.count(v), 2, f"{v} fetched again after its purge")
        eq(up.count(hit), 1, "the hit object was never purged")
        eq(curl(al, "/_airlock/purge?pattern=*", method="GET").status, 405, "purge by GET")
        eq(curl(al, "/_airlock/purge", method="POST").status, 400, "purge without a pattern")


if __name__ == "__main__":
    main(test)
