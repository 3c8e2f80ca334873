"""20 clients on one uncached object: one upstream request, every body
byte-identical, and every client's first byte before the fill completes."""
import os, sys, threading, time, socket
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, eq, fail, main

BODY = os.urandom(3 * 1024 * 1024)
P = "/downloads/elastic-agent/elastic-agent-8.13.4-windows-x86_64.zip"
N = 20


def fetch(al, results, i):
    s = socket.create_connection(("127.0.0.1", al.port), timeout=30)
    s.sendall(f"GET {P} HTTP/1.1\r\nHost: airlock\r\nUser-Agent: Elastic Agent\r\nConnection: close\r\n\r\n".encode())
    data = b""
    first = None
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        if first is None:
            first = time.time()
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    results[i] = (head, body, first)


def test():
    with Case() as (up, al, tmp):
        # ~3 s to fill: slow enough to see streaming, fast enough for a bounded test.
        up.add(P, BODY, headers=[("ETag", '"w"'), ("Content-Type", "application/zip")], rate=1024 * 1024)
        results = [None] * N
        threads = [threading.Thread(target=fetch, args=(al, results, i)) for i in range(N)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        done = time.time()
        eq(up.count(P), 1, "upstream requests for 20 concurrent clients")
        collapsed = 0
        for i, (head, body, first) in enumerate(results):
            if not head.startswith(b"HTTP/1.1 200"):
                fail(f"client {i}: {head[:60]!r}")
            eq(len(body), len(BODY), f"client {i} body length")
            if body != BODY:
                fail(f"client {i}: body differs from the source")
            if first - t0 > (done - t0) * 0.6:
                fail(f"client {i} got its first byte {first - t0:.2f}s in, fill took {done - t0:.2f}s: not streamed")
            if b"collapsed" in head:
                collapsed += 1
        eq(collapsed, N - 1, "clients that joined the first one's fill")


if __name__ == "__main__":
    main(test)
