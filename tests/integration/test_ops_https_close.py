"""A response that ends the connection ends it at once over TLS too (issue 33):
after answering an HTTP/1.0 request, or an HTTP/1.1 one with Connection:
close, on the HTTPS listener airlock sends close_notify and closes as soon
as the response is written, instead of holding the connection about 2 s for
the client's own close_notify or close.  A client that reads to the end of
the connection (HTTP/1.0 clients, `openssl s_time`, scripts) gets its EOF
with the response.  The client here reads to EOF with ragged EOFs refused,
so the EOF it gets is airlock's close_notify, not a bare TCP close; it sends
nothing after its request.  The bound (1 s) is half the old fixed hold."""
import os, shutil, socket, ssl, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, eq, fail, main

P = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz.sha512"
BODY = b"abc  filebeat-8.13.4-linux-x86_64.tar.gz\n"


def read_to_eof(al, ca, request):
    """Send request over TLS and read until airlock's close_notify; (seconds, bytes)."""
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", al.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    t0 = time.monotonic()
    s.sendall(request)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:  # close_notify received (a ragged EOF raises SSLEOFError instead)
                break
            out += b
    except ssl.SSLEOFError as e:
        fail(f"the connection ended without close_notify: {e}")
    took = time.monotonic() - t0
    s.close()
    return took, out


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        key = os.path.join(tmp, "listen.key")
        shutil.copy(up.pki.key, key)
        os.chmod(key, 0o600)
        up.add(P, BODY, headers=[("ETag", '"s"'), ("Cache-Control", "max-age=600")])
        al = Airlock(tmp, up, listen_tls=(up.pki.crt, key, "1.2"))
        try:
            cases = [
                (b"GET " + P.encode() + b" HTTP/1.0\r\n\r\n", "HTTP/1.0, a miss"),
                (b"GET " + P.encode() + b" HTTP/1.0\r\n\r\n", "HTTP/1.0, a hit"),
                (b"GET " + P.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 "HTTP/1.1 Connection: close, a hit"),
                (b"GET /_airlock/nope HTTP/1.0\r\n\r\n", "HTTP/1.0, airlock's own 404"),
            ]
            for req, what in cases:
                took, out = read_to_eof(al, up.pki.ca_crt, req)
                head, _, body = out.partition(b"\r\n\r\n")
                print(f"{what}: EOF after {took * 1000:.0f} ms")
                if "404" in what:
                    eq(head.split(b"\r\n")[0][9:12], b"404", what)
                else:
                    eq(head.split(b"\r\n")[0][9:12], b"200", what)
                    eq(body, BODY, what)
                if took >= 1.0:
                    fail(f"{what}: the EOF came {took:.2f} s after the request: airlock held the connection")
            eq(up.count(P), 1, "one upstream fetch")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
