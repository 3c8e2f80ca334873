"""A fill keeps committing, and its followers keep receiving, while a purge
scans a big cache (the purge ran as one job on the store writer).

POST /_airlock/purge runs on the store writer (admin.h admin_purge_post).
Its scan of the whole cache ran as one writer job: no batch could commit
until it was over, so every fill's chunks (and every client following a
fill, who is sent only committed chunks) waited for the whole scan and its
deletions.  It now runs in slices of at most ADMIN_PURGE_SLICE_ENTRIES
records, each committed, the next queued behind what was posted meanwhile.

The cache is given 20,000 small entries under /downloads/bulk/ (tests/tools/
store_seed.c, written straight into the store before airlock starts), on a
disk whose every flush takes SLOWSYNC_MS (tests/tools/slowsync.c) as in
test_core_slow_purge.  A 6 MiB object streams from the origin at 1 MiB/s;
a first client starts its fill, a second one follows it.  Once the
follower has bytes, POST /_airlock/purge?pattern=*/bulk/* deletes the
20,000 entries.  The bytes the follower receives between the POST and its
answer are counted: with the scan in one job, none but a chunk committed
just before the writer took the purge (the fill's chunks wait for the
purge's commit); in slices, the fill goes on at its pace.  At least two
chunks must get through: the slices' commits (one flush each, SLOWSYNC_MS)
make the sliced purge last over a second, whatever the CPU, so the origin
sends several chunks' worth meanwhile.  The purge answers {"purged":20000}, a
purged entry is gone, the object the follower got is whole and stored."""
import os, re, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, seed_store, slow_disk  # noqa: E402

SEED = slow_disk(os.environ.get("PURGE_SLOWSYNC_MS", "20"), seed=True)

N = 20000
SIZE = 6 << 20
CHUNK = 256 << 10  # proxy/fetch/fill.c CHUNK_BYTES: what a fill commits at a time


def reader(al, path, log):
    """GET path; log gets (time, bytes so far) after every read."""
    s = socket.create_connection(("127.0.0.1", al.port), timeout=30)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    got = b""
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        got += b
        log.append((time.time(), len(got)))
    s.close()
    log.append(got)


def test():
    with Case(workers=1) as (up, al, tmp):
        big = "/downloads/streaming.bin"
        body = bytes(range(256)) * (SIZE // 256)
        up.add(big, body, rate=1 << 20, headers=[("Cache-Control", "max-age=3600")])
        al.stop()
        seed_store(SEED, al, N, "https://artifacts.elastic.co/downloads/bulk/obj-")
        al.start()

        first, follower = [], []
        t1 = threading.Thread(target=reader, args=(al, big, first))
        t1.start()
        time.sleep(0.3)
        t2 = threading.Thread(target=reader, args=(al, big, follower))
        t2.start()
        deadline = time.time() + 10
        while time.time() < deadline and not [e for e in follower if isinstance(e, tuple) and e[1] > 300000]:
            time.sleep(0.01)
        t0 = time.time()
        r = curl(al, "/_airlock/purge?pattern=*/bulk/*", method="POST", timeout=60)
        tp = time.time()
        t1.join(60)
        t2.join(60)
        eq((r.status, r.body), (200, f'{{"purged":{N}}}\n'.encode()), "the purge's answer")
        for name, log in (("first", first), ("follower", follower)):
            if not log or not isinstance(log[-1], bytes) or not log[-1].endswith(body) or \
                    b" 200 " not in log[-1].split(b"\r\n", 1)[0]:
                fail(f"the {name} client got the whole object")
        marks = [e for e in follower[:-1]]
        before = max([n for t, n in marks if t < t0] or [0])
        during = max([n for t, n in marks if t <= tp] or [0]) - before
        print(f"purge of {N} entries took {(tp - t0) * 1000:.0f} ms; the follower received "
              f"{during} bytes meanwhile ({before} before)")
        if during < 2 * CHUNK:
            fail(f"the follower received only {during} bytes while the purge ran for {(tp - t0) * 1000:.0f} ms: "
                 "the purge's scan held up the fill's commits")
        # admin.h ADMIN_PURGE_SLICE_DELETES: 256 deletions a slice at most, so 79 slices for 20,000
        m = re.search(r"purge \*/bulk/\*: (\d+) entries deleted in (\d+) slices", al.logtext(None))
        if m is None or int(m.group(1)) != N or int(m.group(2)) < N // 256:
            fail(f"the log says the purge ran in slices: {m and m.group(0)}")
        eq(curl(al, big).header("Cache-Status").startswith("airlock; hit"), True, "the streamed object is stored")
        up.add("/downloads/bulk/obj-7", b"fetched again", headers=[("Cache-Control", "max-age=3600")])
        eq(curl(al, "/downloads/bulk/obj-7").body, b"fetched again", "a purged entry is gone")


if __name__ == "__main__":
    main(test)
