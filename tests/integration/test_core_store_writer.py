"""Hits keep flowing while the cache cannot take a fill's writes.

LMDB lets one writer in at a time, and a write can wait on the file system
(the inode's block lock while the once-a-second sync runs, a page under
writeback).  Fills used to write their chunks on the worker's loop, so a
held-up write held up every client of the worker, hits included.  Chunks
now go through the store writer's thread; the fill pauses its transfer
when its chunk buffers are all waiting, and goes on when they are written.

One worker.  An agent package (16 MiB at 8 MB/s from the upstream) is being
filled when another process takes the cache's write lock for 1.5 s
(tests/tools/lmdb_probe.c, as a long eviction or an import would), and a
new fill (another document) starts while it holds it.  Meanwhile a
client asks every 5 ms for a cached document: every hit must be answered
within 300 ms.  The new fill completes, stored, once the lock is let go.  Then the package completes with its bytes and its
ETag, is stored (a hit next, fetched once), and the fill's memory stayed
bounded (RssAnon grew by less than 8 MiB where the upstream could have sent 12).

Then the other way a write can end: the cache refuses it.  With
cache.max_size at 1 MiB (a map of 257 MiB), a 300 MiB body sent chunked
(no Content-Length, so it cannot be turned away at the head) fills the map:
the refused chunk ends the transfer, the client never sees the body as
complete, and the log says why.  Nothing of it stays: no chunk and no
pending entry in the cache's LMDB (the abort used to be one transaction,
whose list of freed pages found no room in a full map: 1012 chunks stayed
behind), and the next object is stored."""
import hashlib, os, shutil, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, HitSampler, curl, eq, fail, main

HOLD_S = 1.5


def rss_anon_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def test():
    with Case(workers=1) as (up, al, tmp):
        probe = os.path.join(tmp, "lmdb_probe")
        src = os.path.join(os.path.dirname(__file__), "..", "tools", "lmdb_probe.c")
        subprocess.run(["cc", "-O2", "-o", probe, src, "-llmdb"], check=True, timeout=60)
        body = os.urandom(16 << 20)
        path = "/downloads/beats/elastic-agent/elastic-agent-8.14.0-linux-x86_64.tar.gz"
        up.add(path, body, headers=[("ETag", '"agent-8.14.0"')], rate=8 << 20)
        up.add("/downloads/small.txt", b"x" * 2000, headers=[("Cache-Control", "max-age=3600")])
        for _ in range(2):
            curl(al, "/downloads/small.txt")

        out = os.path.join(tmp, "agent.tar.gz")
        agent = subprocess.Popen(["curl", "-s", "-o", out, "-w", "%{http_code}", f"http://127.0.0.1:{al.port}{path}"],
                                 stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while (not os.path.exists(out) or os.path.getsize(out) < (1 << 20)) and time.time() < deadline:
            time.sleep(0.01)
        if not os.path.exists(out) or os.path.getsize(out) < (1 << 20):
            fail("the fill did not start")
        rss0 = rss_anon_kb(al.proc.pid)
        holder = subprocess.Popen([probe, al.cache, "hold", str(HOLD_S)], stdout=subprocess.PIPE, text=True)
        eq(holder.stdout.readline().strip(), "held", "the other writer holds the cache")
        t0 = time.time()
        hits = HitSampler(al, "/downloads/small.txt", 0.005)
        time.sleep(0.2)
        # a new fill starts while the cache is held: its first write (the pending entry) waits too
        doc = "/downloads/new.txt"
        up.add(doc, b"new\n", headers=[("ETag", '"new"'), ("Cache-Control", "max-age=3600")])
        newdoc = subprocess.Popen(["curl", "-s", "-w", " %{http_code}", f"http://127.0.0.1:{al.port}{doc}"],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(HOLD_S - 0.5)
        rss1 = rss_anon_kb(al.proc.pid)
        samples = hits.stop()
        eq(holder.wait(timeout=10), 0, "the holder let go")

        during = [s for s in samples if s[0] < t0 + HOLD_S - 0.3]
        worst = max(s[1] for s in during) * 1000 if during else 0
        if worst > 300:
            fail(f"a hit took {worst:.0f} ms while the fill could not write: the fill held up the worker")
        if len(during) < 20:
            fail(f"too few hits while the lock was held: {len(during)}")
        bad = [s for s in samples if s[2] != 200 or s[3] != 2000]
        if bad:
            fail(f"every hit is whole: {bad[:3]}")
        print(f"{len(during)} hits while another writer held the cache; worst {worst:.1f} ms; "
              f"RssAnon {rss0} -> {rss1} kB")
        if rss1 - rss0 > 8 * 1024:
            fail(f"the fill buffered {rss1 - rss0} kB while it could not write: it must pause instead")

        eq(newdoc.communicate(timeout=30)[0], "new\n 200",
           "the fill started while the cache was held")
        r = curl(al, doc)
        if not r.header("Cache-Status").startswith("airlock; hit"):
            fail(f"that fill is stored: {r.header('Cache-Status')}")
        eq(up.count(doc), 1, "that fill went upstream once")

        eq(agent.communicate(timeout=30)[0], "200", "the package's status")
        with open(out, "rb") as f:
            got = f.read()
        if got != body:
            i = next((k for k in range(min(len(got), len(body))) if got[k] != body[k]), min(len(got), len(body)))
            fail(f"the package's bytes: {len(got)} bytes against {len(body)}, first difference at {i}: "
                 f"{got[i:i+16].hex()} for {body[i:i+16].hex()} (found at {body.find(got[i:i+64])})")
        r = curl(al, path, timeout=30)
        eq((r.status, r.header("ETag"), r.body == body), (200, '"agent-8.14.0"', True), "stored as it came")
        if not r.header("Cache-Status").startswith("airlock; hit"):
            fail(f"a hit after the fill: {r.header('Cache-Status')}")
        eq(up.count(path), 1, "fetched once")

        al.stop()
        shutil.rmtree(al.cache)
        cfg = open(al.config).read().replace("max_size: 256MiB", "max_size: 1MiB", 1)
        open(al.config, "w").write(cfg)
        al.start()
        big = "/downloads/beats/filebeat/filebeat-8.14.0-linux-x86_64.tar.gz"
        up.add(big, bytes(300 << 20), headers=[("ETag", '"fb"')], chunked=True)
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            f"http://127.0.0.1:{al.port}{big}"], capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            fail(f"a body the cache refused reached the client as complete: {r.stdout}")
        if "the cache refused the body" not in al.logtext():
            fail("the refusal is logged")

        def entries(db):
            p = subprocess.run([probe, al.cache, "count", db], capture_output=True, text=True, timeout=20)
            eq(p.returncode, 0, f"lmdb_probe count {db}: {p.stderr}")
            return int(p.stdout)
        # the abort runs on the store writer after the client has seen the failure: wait for it
        counts = lambda: (entries("body"), entries("pending"), entries("meta"))
        deadline = time.time() + 20
        while counts() != (0, 0, 0) and time.time() < deadline:
            time.sleep(0.1)
        eq(counts(), (0, 0, 0), "nothing of the refused body stays")
        up.add("/downloads/after.txt", b"y" * 5000, headers=[("Cache-Control", "max-age=3600")])
        curl(al, "/downloads/after.txt")
        r = curl(al, "/downloads/after.txt")
        eq((r.status, r.body == b"y" * 5000), (200, True),
           f"the next object ({len(r.body)} bytes, {r.body[:20]!r}, {r.header('Cache-Status')})")
        if not r.header("Cache-Status").startswith("airlock; hit"):
            fail(f"the next object is stored (the refused one's chunks were freed): {r.header('Cache-Status')}")


if __name__ == "__main__":
    main(test)
