"""Malformed or unsupported requests get the right 4xx/5xx and never reach
the upstream; an unreachable upstream with nothing cached is a 502."""
import http.client, os, sys
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
    # Byte classes (issue 29 item 1): a NUL matched strchr's terminator, so these were a 405 and
    # two 200s with the object stored.
    (b"G\x00T /search HTTP/1.1\r\nHost: x\r\n\r\n", 400, "NUL in the method (not 405)"),
    (b"G\x01T /search HTTP/1.1\r\nHost: x\r\n\r\n", 400, "control in the method"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nX\x00Y: 1\r\n\r\n", 400, "NUL in a field name"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nUser-Agent\x00: evil\r\n\r\n", 400, "NUL before the colon"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n", 400, "DEL in a field value"),
    (b"GET /search HTTP/1.1\r\nHost: x\r\nX: a\x1bb\r\n\r\n", 400, "ESC in a field value"),
    (b"GET /search?q={x} HTTP/1.1\r\nHost: x\r\n\r\n", 400, "braces in the target"),
    (b"GET /search#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment in the target"),
    (b"GET /search%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "broken percent-encoding"),
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
        # Keep-alive survives a 404 and serves the next request on the same connection.
        up.add("/package/apache/1.0.0/", b'{"ok":1}', headers=[("Content-Type", "application/json")])
        hc = http.client.HTTPConnection("127.0.0.1", al.port, timeout=10)
        hc.request("GET", "/_airlock/nope")
        r1 = hc.getresponse()
        r1.read()
        eq(r1.status, 404, "unknown airlock endpoint, kept alive")
        if (r1.getheader("Connection") or "").lower() == "close":
            fail("a 404 closed the connection")
        sock = hc.sock
        if sock is None:
            fail("the connection was closed after the 404")
        hc.request("GET", "/package/apache/1.0.0/")
        r2 = hc.getresponse()
        eq(r2.status, 200, "next request on the same connection")
        eq(r2.read(), b'{"ok":1}', "its body")
        if hc.sock is not sock:
            fail("http.client opened a new connection: the first one was not kept")
        hc.close()
        eq(up.count("/package/apache/1.0.0/"), 1, "the second request reached the upstream once")

        # Nothing cached and the upstream cannot be reached: 502 with a reason.
        up.stop()
        r = curl(al, "/package/nginx/1.20.0/")
        eq(r.status, 502, "unreachable upstream, nothing cached")
        if b"unreachable" not in r.body:
            fail(f"502 body should give the reason: {r.body!r}")


if __name__ == "__main__":
    main(test)
