"""Framing: an upstream that sends chunked bodies (no Content-Length) is
streamed chunked to an HTTP/1.1 client on the miss, close-delimited to an
HTTP/1.0 client, and served with Content-Length on hits; empty bodies; HEAD
on a miss fills the cache; pipelined requests are answered in order."""
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, RawUpstream, curl, eq, fail, main, raw_request

BODY = b"".join(b"line %d of the manifest\n" % i for i in range(5000))


def chunked(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"c\"\r\nCache-Control: max-age=60\r\n\r\n")
    for i in range(0, len(BODY), 7000):
        part = BODY[i:i + 7000]
        sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        time.sleep(0.02)  # slow enough that clients stream before the length is known
    sock.sendall(b"0\r\n\r\n")


def test():
    raw = RawUpstream()
    try:
        with Case() as (up, al0, tmp):
            al0.stop()
            al = Airlock(tmp, up, extra=f"  - prefix: /raw/\n    upstream: http://127.0.0.1:{raw.port}\n")
            try:
                raw.responses["/raw/chunked"] = chunked
                raw.responses["/raw/chunked10"] = chunked
                r = raw_request(al, b"GET /raw/chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                head, _, body = r.partition(b"\r\n\r\n")
                if b"Transfer-Encoding: chunked" not in head:
                    fail(f"a miss of unknown length goes chunked to an HTTP/1.1 client: {head!r}")
                decoded, rest = b"", body
                while True:
                    size, _, rest = rest.partition(b"\r\n")
                    n = int(size, 16)
                    if n == 0:
                        break
                    decoded += rest[:n]
                    rest = rest[n + 2:]
                eq(decoded, BODY, "chunked body")
                r = curl(al, "/raw/chunked")
                eq((r.status, r.body, r.header("Content-Length")), (200, BODY, str(len(BODY))), "hit with Content-Length")
                eq(raw.count("/raw/chunked"), 1, "one upstream request")
                r = raw_request(al, b"GET /raw/chunked10 HTTP/1.0\r\n\r\n")
                head, _, body = r.partition(b"\r\n\r\n")
                if b"chunked" in head or b"Connection: close" not in head:
                    fail(f"HTTP/1.0: close-delimited, no chunking: {head!r}")
                eq(body, BODY, "HTTP/1.0 body")

                # Fields the upstream names in Connection are hop-by-hop (RFC 9110 7.6.1): not stored, not sent.
                raw.responses["/raw/hop"] = (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
                                             b"X-Kept: yes\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok")
                for i in range(2):
                    r = curl(al, "/raw/hop")
                    eq((r.status, r.body, r.header("X-Kept"), r.header("X-Hop")), (200, b"ok", "yes", None),
                       f"Connection-named field dropped #{i}")
                eq(raw.count("/raw/hop"), 1, "and the rest is cached")

                # empty bodies
                up.add("/empty", b"", headers=[("ETag", '"e"'), ("Cache-Control", "max-age=60")])
                for i in range(2):
                    r = curl(al, "/empty")
                    eq((r.status, r.body, r.header("Content-Length")), (200, b"", "0"), f"empty body #{i}")
                eq(up.count("/empty"), 1, "empty body cached")

                # HEAD on a miss: the head now, the cache filled for the next GET. The fixture is
                # fresh for a minute: the GET either joins the HEAD's fill still running or finds it
                # committed, and either way it is not fetched again (without a max-age, a GET that
                # came after the commit revalidated the validator-only copy: a second request).
                up.add("/downloads/x.tar.gz", b"x" * 100000, headers=[("ETag", '"x"'), ("Cache-Control", "max-age=60")])
                r = raw_request(al, b"HEAD /downloads/x.tar.gz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                if not r.startswith(b"HTTP/1.1 200") or b"Content-Length: 100000" not in r or not r.endswith(b"\r\n\r\n"):
                    fail(f"HEAD on a miss: {r[:200]!r}")
                eq(up.last_headers("/downloads/x.tar.gz") is not None, True, "HEAD went upstream as GET")
                eq(curl(al, "/downloads/x.tar.gz").body, b"x" * 100000, "then a hit")
                eq(up.count("/downloads/x.tar.gz"), 1, "filled by the HEAD")

                # pipelining: three requests in one write, three answers in order
                r = raw_request(al, b"GET /empty HTTP/1.1\r\nHost: a\r\n\r\nGET /raw/chunked HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"GET /empty HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                eq(r.count(b"HTTP/1.1 200 OK"), 3, "three pipelined answers")
                if r.index(BODY[:30]) < r.index(b"HTTP/1.1 200 OK", 10):
                    fail("pipelined answers out of order")
            finally:
                al.stop()
    finally:
        raw.stop()


if __name__ == "__main__":
    main(test)
