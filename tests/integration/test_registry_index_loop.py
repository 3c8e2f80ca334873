"""Offline registry off the serving loop: with one worker, a cached 1 KiB hit is answered while a
large /search?all=true (an answer of ~10 MB, made large on purpose) is being computed.  A keep-alive
client in its own process asks for the hit every few milliseconds; for each big query, the hits that
began after the query was sent and ended before its first response byte arrived are counted.  When
the query runs on the worker's loop (the code before the index), the loop answers nothing else until
the body is built: only the hit or two already waiting can slip in (0, 0 and 2 were seen); each
query must let at least 5 through.  No wall-clock bound is
asserted, only the ordering."""
import http.client, json, os, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, HitSampler, curl, eq, fail, main

NAMES = 300
ROUNDS = 3


def doc(i):
    name = f"pkg{i:04d}"
    return {"name": name, "title": f"Package {i}", "version": "1.0.0", "type": "integration",
            "description": f"{name} " + "a description long enough to make the answer large. " * 700,
            "download": f"/epr/{name}/{name}-1.0.0.zip", "path": f"/package/{name}/1.0.0",
            "format_version": "3.0.0", "categories": ["observability"],
            "conditions": {"kibana": {"version": "^8.8.0"}}}


def big_query(port, out):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    # category=: the slowest way the index answers (summaries parsed, the answer built and dumped);
    # without it the answer is joined from entries rendered at admission, too quick to count hits in
    s.sendall(b"GET /search?all=true&prerelease=true&category=observability HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    sent = time.time()
    first = s.recv(65536)
    t_first = time.time()
    data = first
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
    s.close()
    out.append((sent, t_first, data))


def test():
    with Case(workers=1) as (up, al, tmp):
        c = http.client.HTTPConnection("127.0.0.1", al.port, timeout=30)
        for i in range(NAMES):
            d = doc(i)
            path = f"/package/{d['name']}/1.0.0/"
            up.add(path, json.dumps(d), headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=600")])
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            eq(r.status, 200, f"fill {path}")
        c.close()
        up.add("/downloads/hit.txt", b"h" * 1024, headers=[("Cache-Control", "max-age=86400")])
        eq(curl(al, "/downloads/hit.txt").status, 200, "cache the 1 KiB hit")
        al.stop()

        off = Airlock(tmp, up, offline=True, workers=1)
        try:
            eq(curl(off, "/downloads/hit.txt").status, 200, "the hit, offline")
            sampler = HitSampler(off, "/downloads/hit.txt", 0.002)
            time.sleep(0.3)
            results = []
            for _ in range(ROUNDS):
                big_query(off.port, results)
                time.sleep(0.1)
            hits = sampler.stop()
        finally:
            off.stop()
        for sent, t_first, data in results:
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                fail(f"big query: {head[:200]!r}")
            if len(json.loads(body)) != NAMES or len(body) < 5 << 20:
                fail(f"big query: {len(body)} bytes, should list {NAMES} packages in more than 5 MB")
        for t, dur, status, n in hits:
            eq((status, n), (200, 1024), "every hit answered in full")
        inside = [sum(1 for t, dur, _, _ in hits if t > sent and t + dur < t_first) for sent, t_first, _ in results]
        print(f"hits answered while each big query was computed: {inside}; "
              f"query times {[round(f - s, 3) for s, f, _ in results]}s")
        if min(inside) < 5:
            fail(f"the loop answered {inside} hits (query times {[round(f - s, 3) for s, f, _ in results]}s) while the big queries ran: the query blocks the worker")


if __name__ == "__main__":
    main(test)
