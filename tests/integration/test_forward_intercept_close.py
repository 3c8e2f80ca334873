"""A response that ends the connection inside an intercepted CONNECT ends it
at once (issue 33), as on the HTTPS listener (test_ops_https_close): after
an HTTP/1.0 request, or an HTTP/1.1 one with Connection: close, inside the
TLS airlock terminates for a CONNECT (forward.ca_cert/ca_key, mode:
intercept), airlock sends close_notify after the response and shuts the
socket's write side once both are written, instead of holding the
connection about 2 s for the client's own close.  The client reads to EOF
with ragged EOFs refused, so its EOF is airlock's close_notify; it sends
nothing after its request.  The bound (1 s from the response's last byte to
the EOF) is half the old fixed hold.
A keep-alive request on the same kind of connection is answered and the
connection stays open (the next request on it is answered too)."""
import os, socket, ssl, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, eq, fail, forward_section, main

HOST = "artifacts.elastic.co"
P = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz.sha512"
BODY = b"abc  filebeat-8.13.4-linux-x86_64.tar.gz\n"
BIG = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz"
BIG_BODY = os.urandom(3 * 1024 * 1024 + 17)


def intercepted(al, ca):
    """CONNECT through airlock, then TLS with airlock's minted certificate for HOST."""
    raw = socket.create_connection(("127.0.0.1", al.port), timeout=10)
    raw.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = raw.recv(1)  # byte by byte: nothing of the TLS that follows is consumed here
        if not b:
            fail(f"CONNECT refused: {head!r}")
        head += b
    eq(head.split(b"\r\n")[0][9:12], b"200", "CONNECT answered")
    ctx = ssl.create_default_context(cafile=f"{ca}/ca.crt")
    return ctx.wrap_socket(raw, server_hostname=HOST, suppress_ragged_eofs=False)


def read_to_eof(s, request):
    """Send request, read to EOF; (seconds from the response's last byte to the EOF, bytes read)."""
    s.sendall(request)
    out, want, t_last = b"", None, None
    try:
        while True:
            b = s.recv(65536)
            if not b:  # close_notify received (a ragged EOF raises SSLEOFError instead)
                break
            out += b
            if want is None and b"\r\n\r\n" in out:
                head = out.split(b"\r\n\r\n", 1)[0]
                want = len(head) + 4 + next(int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n")
                                            if ln.lower().startswith(b"content-length:"))
            if want is not None and len(out) >= want and t_last is None:
                t_last = time.monotonic()
    except ssl.SSLEOFError as e:
        fail(f"the connection ended without close_notify: {e}")
    except socket.timeout:
        fail(f"no EOF within the socket timeout: airlock held the connection ({len(out)} bytes read)")
    if t_last is None:
        fail(f"EOF before the whole response: {len(out)} bytes")
    took = time.monotonic() - t_last
    s.close()
    return took, out


def read_response(s):
    """one Content-Length response from a keep-alive connection: (status, body)"""
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            fail(f"closed before the response head: {buf!r}")
        buf += b
    head, _, body = buf.partition(b"\r\n\r\n")
    n = next(int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:"))
    while len(body) < n:
        b = s.recv(65536)
        if not b:
            fail("closed mid-body")
        body += b
    return head.split(b"\r\n")[0][9:12], body


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(P, BODY, headers=[("ETag", '"s"'), ("Cache-Control", "max-age=600")])
        up.add(BIG, BIG_BODY, headers=[("ETag", '"b"'), ("Cache-Control", "max-age=600")])
        fwd, ca = forward_section(tmp, [HOST])
        al = Airlock(tmp, up, extra=fwd)
        try:
            # keep-alive inside the interception: the connection stays open between requests
            s = intercepted(al, ca)
            for i in range(2):
                s.sendall(f"GET {P} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                eq(read_response(s), (b"200", BODY), f"keep-alive request #{i}")
            s.close()
            cases = [
                (f"GET {P} HTTP/1.0\r\nHost: {HOST}\r\n\r\n", BODY, "HTTP/1.0, a hit"),
                (f"GET {P} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n", BODY,
                 "HTTP/1.1 Connection: close, a hit"),
                (f"GET {BIG} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n", BIG_BODY,
                 "HTTP/1.1 Connection: close, 3 MiB, a miss"),
                (f"GET {BIG} HTTP/1.0\r\nHost: {HOST}\r\n\r\n", BIG_BODY, "HTTP/1.0, 3 MiB, a hit"),
            ]
            for req, want, what in cases:
                took, out = read_to_eof(intercepted(al, ca), req.encode())
                head, _, body = out.partition(b"\r\n\r\n")
                print(f"{what}: EOF {took * 1000:.0f} ms after the last byte")
                eq(head.split(b"\r\n")[0][9:12], b"200", what)
                eq(len(body), len(want), what)
                eq(body == want, True, f"{what}: body byte-exact")
                if took >= 1.0:
                    fail(f"{what}: the EOF came {took:.2f} s after the response: airlock held the connection")
            eq((up.count(P), up.count(BIG)), (1, 1), "one upstream fetch each")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
