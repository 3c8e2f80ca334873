"""Stalled clients never grow memory: 20 clients that stop reading while a
64 MiB object fills; the fill still completes at upstream speed, a normal
client is served meanwhile, and airlock's anonymous memory stays small (the
bytes wait in the cache, not in per-client buffers)."""
import os, socket, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, wait_for

SIZE = 64 * 1024 * 1024
P = "/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"


def anon_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0


def with_stalled_clients(al, up, body, stalled):
    base = anon_mb(al.proc.pid)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", al.port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET {P} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        stalled.append(s)   # and never read
    # the object, and the .sha512 answer its integrity check stored (a 404 here)
    wait_for(lambda: al.health()["cache"]["entries"] == 2, 60, "the fill to complete despite stalled clients")
    eq(up.count(P), 1, "one upstream request")
    peak = anon_mb(al.proc.pid)
    r = curl(al, P, timeout=60)
    eq((r.status, len(r.body)), (200, SIZE), "a reading client is served in full meanwhile")
    if r.body != body:
        fail("body differs")
    print(f"anonymous memory: {base:.1f} MB before, {peak:.1f} MB with 20 stalled clients")
    if peak - base > 48:
        fail(f"anonymous memory grew by {peak - base:.1f} MB with 20 stalled clients on a 64 MiB object")


def test():
    # Under AddressSanitizer freed memory waits in a quarantine (256 MB by default), and LMDB
    # mallocs and frees a copy of each overflow page it writes: keep the quarantine small so the
    # bound still means something there.  A normal build ignores ASAN_OPTIONS.
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
    with Case() as (up, al, tmp):
        body = os.urandom(1024 * 1024) * 64
        up.add(P, body, headers=[("ETag", '"big"')], rate=64 * 1024 * 1024)
        stalled = []
        try:
            with_stalled_clients(al, up, body, stalled)
        finally:
            for s in stalled:
                s.close()


if __name__ == "__main__":
    main(test)
