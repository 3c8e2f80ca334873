"""Malformed or unsupported requests get the right 4xx/5xx and never reach
the upstream; an unreachable upstream with nothing cached is a 502."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, raw_request


def status_of(raw):
    if not raw.startswith(b"HTTP/1.1 "):
        fail(f"not an HTTP response: {raw[:80]!r}")
    return int(raw[9:12])


CASES = [
    (b"GET /search HTTP/1.1\r\n\r\n", 400, "no Host in HTTP/1.1"),
    (b"GET /search HTTP/1.1\nHost: x\n\n", 400, "bare LF"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "obs-fold"),
    (b"GET /search HTTP/1.1\r\nHost : x\r\n\r\n", 400, "space before colon"),
    (b"GET /se arch HTTP/1.1\r\nHost: x\r\n\r\n", 400, "space in target"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400, "NUL in a field"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, "duplicate Content-Length"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "CL and TE"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unknown coding"),
    (b"GET /search HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0 over HTTP/1 framing"),
    (b"GET /downloads/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400, "dot segment"),
    (b"GET /downloads/%2e%2E/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "encoded dot segment"),
    (b"GET /downloads/a%2f..%2fb HTTP/1.1\r\nHost: x\r\n\r\n", 400, "encoded slash"),
    (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405, "POST"),
    (b"DELETE /search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "DELETE"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", 400, "GET with a body"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "oversized head"),
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "oversized request line"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431, "too many fields"),
]


def test():
    with Case() as (up, al, tmp):
        for data, want, what in CASES:
            raw = raw_request(al, data)
            eq(status_of(raw), want, what)
        eq(up.count(), 0, "none of these reached the upstream")
        r = raw_request(al, b"POST /search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if b"\r\nAllow: GET, HEAD\r\n" not in r:
            fail("405 carries Allow")
        r = curl(al, "/_airlock/nope")
        eq(r.status, 404, "unknown airlock endpoint")
        # Nothing cached and the upstream cannot be reached: 502 with a reason.
        up.stop()
        r = curl(al, "/package/nginx/1.20.0/")
        eq(r.status, 502, "unreachable upstream, nothing cached")
        if b"unreachable" not in r.body:
            fail(f"502 body should give the reason: {r.body!r}")
        # Keep-alive survives a 404 and serves the next request on the same connection.
        up.restart()


if __name__ == "__main__":
    main(test)
