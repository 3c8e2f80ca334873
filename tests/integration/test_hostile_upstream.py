"""Hostile upstreams: a body longer or shorter than Content-Length, broken
chunked encoding, oversized heads, CR/LF inside header values, a response
that never ends or stalls, interim 1xx, redirects.  None is stored as a
complete object; the client sees an error or an aborted transfer, never a
complete-looking wrong body."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, RawUpstream, curl, eq, fail, main, wait_for


def endless(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    deadline = time.time() + 20
    while time.time() < deadline:
        sock.sendall(chunk)


def stall(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
    time.sleep(20)


CASES = {
    "/raw/longer": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello, and then some more", "refused"),
    "/raw/shorter": (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\nonly this", "refused"),
    "/raw/badchunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "refused"),
    "/raw/hugehead": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200000 + b"\r\nContent-Length: 2\r\n\r\nok", "refused"),
    "/raw/crinvalue": (b"HTTP/1.1 200 OK\r\nX-Evil: a\rInjected: yes\r\nContent-Length: 2\r\n\r\nok", "refused"),
    "/raw/dupcl": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", "refused"),
    "/raw/endless": (endless, "refused"),
    "/raw/interim": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\nETag: \"i\"\r\n\r\nok", "stored"),
    "/raw/redirect": (b"HTTP/1.1 302 Found\r\nLocation: http://evil.example.org/\r\nContent-Length: 0\r\n\r\n", "passed"),
    # last: a stall is a timeout, which marks the upstream offline until a probe succeeds
    "/raw/stall": (stall, "refused"),
}


def test():
    raw = RawUpstream()
    try:
        with Case() as (up, al0, tmp):
            al0.stop()
            al = Airlock(tmp, up, extra=f"  - prefix: /raw/\n    upstream: http://127.0.0.1:{raw.port}\n",
                         upstream_extra="")
            al.stop()
            cfg = open(al.config).read().replace("  path: ", "  max_object_size: 2MiB\n  path: ", 1)
            open(al.config, "w").write(cfg)
            al.start()
            try:
                for path, (resp, want) in CASES.items():
                    raw.responses[path] = resp
                    t0 = time.time()
                    r = curl(al, path, timeout=30)
                    took = time.time() - t0
                    if want == "refused":
                        complete = r.rc == 0 and r.status == 200
                        if complete:
                            fail(f"{path}: delivered as a complete 200 ({len(r.body)} bytes)")
                        if not (r.status == 502 or r.rc in (18, 56, 92)):
                            fail(f"{path}: want 502 or an aborted transfer, got {r.status} rc={r.rc}")
                    elif want == "stored":
                        eq((r.status, r.body, r.header("ETag")), (200, b"ok", '"i"'), path)
                    elif want == "passed":
                        eq((r.status, r.header("Location")), (302, "http://evil.example.org/"), path)
                    if took > 12:
                        fail(f"{path}: took {took:.1f}s")
                # Too large to keep, length known up front: passed through whole, not stored.
                big = os.urandom(3 * 1024 * 1024)
                up.add("/downloads/big.bin", big, headers=[("ETag", '"big"')])
                r = curl(al, "/downloads/big.bin")
                eq((r.status, r.rc, r.body == big), (200, 0, True), "an object over max_object_size is passed through")
                if "detail=not-stored" not in (r.header("Cache-Status") or ""):
                    fail(f"Cache-Status should say not stored: {r.header('Cache-Status')!r}")
                curl(al, "/downloads/big.bin")
                eq(up.count("/downloads/big.bin"), 2, "not stored: fetched again")
                up_name = f"http://127.0.0.1:{raw.port}"
                wait_for(lambda: any(u["upstream"] == up_name and u["state"] == "online"
                                     for u in al.health()["upstreams"]), 5, "the probe to bring the upstream back")
                entries = al.health()["cache"]["entries"]
                eq(entries, 1, "only the interim-then-200 response was stored")
                # Refused responses are fetched again next time: nothing was kept.
                for path in ("/raw/longer", "/raw/shorter", "/raw/badchunk", "/raw/crinvalue"):
                    curl(al, path)
                    eq(raw.count(path), 2, f"{path} refetched")
                curl(al, "/raw/interim")
                eq(raw.count("/raw/interim"), 1, "the stored response is a hit")
                curl(al, "/raw/redirect")
                eq(raw.count("/raw/redirect"), 2, "redirects are passed through, not followed, not stored")
                if "evil.example.org" in str(raw.counts):
                    fail("a redirect was followed")
            finally:
                al.stop()
    finally:
        raw.stop()


if __name__ == "__main__":
    main(test)
