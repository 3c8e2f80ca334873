"""Request smuggling through early answers (RFC 9112 6.3, 9.6).

airlock uses no request body, so every answer to a request that carries one
is an early answer: 405 for PUT/POST, the admin prefix's 404/405, 400 for a
GET with a body, 407 from the forward proxy, 400 for CONNECT with a body.
Each case below hides a complete request in the body and pipelines a
legitimate one behind it.  The hidden request must never be parsed: the
origin never sees /smuggled, and the client gets either the early answer
and then the answer to the pipelined request (a body of known length, read
and dropped), or the early answer with Connection: close and nothing more
(chunked, too large, or a connection that cannot be trusted).  The same over
an HTTPS listener, where the close path differs.  Also: Host values that are
not uri-host[:port] get 400 (RFC 9112 3.2)."""
import os, socket, ssl, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, eq, fail, main, forward_section

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
AFTER = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n"


def read_responses(sock, deadline_s=2.0):
    """Every response on the connection until it closes or goes quiet; [(status, headers, body)], closed."""
    sock.settimeout(0.3)
    buf, out, closed = b"", [], False
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            b = None
        except (ConnectionResetError, ssl.SSLError):
            closed = True
            break
        if b == b"":
            closed = True
            break
        if b:
            buf += b
        while b"\r\n\r\n" in buf:
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            hdrs = {}
            for ln in lines[1:]:
                n, _, v = ln.partition(":")
                hdrs[n.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0"))
            if len(rest) < n:
                break
            out.append((int(lines[0].split()[1]), hdrs, rest[:n]))
            buf = rest[n:]
    return out, closed


def exchange(al, data, tls_ctx=None):
    s = socket.create_connection(("127.0.0.1", al.port), timeout=5)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(data)
    try:
        return read_responses(s)
    finally:
        s.close()


def chunked(body):
    return b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


def check(name, al, up, data, first, kept, tls_ctx=None):
    """first: the early status; kept: the pipelined /after is answered (else: close after the first)."""
    before = up.count("/smuggled")
    resps, closed = exchange(al, data, tls_ctx)
    if not resps:
        fail(f"{name}: no response at all")
    eq(resps[0][0], first, f"{name}: the early answer")
    eq(up.count("/smuggled"), before, f"{name}: the request hidden in the body reached the origin")
    statuses = [r[0] for r in resps]
    if kept:
        eq(statuses, [first, 200], f"{name}: the early answer, then the pipelined request's (body dropped)")
        eq(resps[1][2], b"after\n", f"{name}: the pipelined request got its own response")
    else:
        eq(statuses, [first], f"{name}: only the early answer")
        eq(resps[0][1].get("connection"), "close", f"{name}: Connection: close on the early answer")
        if not closed:
            fail(f"{name}: the connection stayed open after Connection: close")


def cases(prefix_host=b"a"):
    h = b"Host: " + prefix_host + b"\r\n"
    return [
        ("PUT with a body of known length", b"PUT /upload HTTP/1.1\r\n" + h +
         b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED + AFTER, 405, True),
        ("POST, chunked body", b"POST /upload HTTP/1.1\r\n" + h + b"Transfer-Encoding: chunked\r\n\r\n" +
         chunked(SMUGGLED) + AFTER, 405, False),
        ("PUT with a body over the discard bound", b"PUT /upload HTTP/1.1\r\n" + h +
         b"Content-Length: 100000\r\n\r\n" + SMUGGLED + AFTER, 405, False),
        ("admin prefix, unknown path, POST body", b"POST /_airlock/nothing-here HTTP/1.1\r\n" + h +
         b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED + AFTER, 404, True),
        ("admin prefix, DELETE with a body", b"DELETE /_airlock/health HTTP/1.1\r\n" + h +
         b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED + AFTER, 405, True),
        ("GET with a body", b"GET /after HTTP/1.1\r\n" + h + b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) +
         SMUGGLED + AFTER, 400, False),
        ("PUT sent in pieces", None, 405, True),
    ]


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add("/after", b"after\n", headers=[("Cache-Control", "max-age=600"), ("Content-Type", "text/plain")])
        up.add("/smuggled", b"SMUGGLED\n", headers=[("Cache-Control", "max-age=600")])
        fwd, _ = forward_section(tmp, ["epr.elastic.co"], {"kibana": "pw"})
        al = Airlock(tmp, up, extra=fwd)
        try:
            for name, data, first, kept in cases():
                if data is None:
                    # the body trickles in after the early answer went out
                    s = socket.create_connection(("127.0.0.1", al.port), timeout=5)
                    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED))
                    time.sleep(0.3)
                    for i in range(0, len(SMUGGLED), 7):
                        s.sendall(SMUGGLED[i:i + 7])
                        time.sleep(0.05)
                    s.sendall(AFTER)
                    resps, _ = read_responses(s)
                    s.close()
                    eq([r[0] for r in resps], [405, 200], name)
                    eq(up.count("/smuggled"), 0, f"{name}: the hidden request reached the origin")
                    continue
                check(name, al, up, data, first, kept)
            # 407 from the forward proxy: its body is dropped too.
            check("407 with a body", al, up, b"GET http://epr.elastic.co/after HTTP/1.1\r\nHost: epr.elastic.co\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED + AFTER, 407, True)
            check("CONNECT with a body", al, up, b"CONNECT epr.elastic.co:443 HTTP/1.1\r\nHost: epr.elastic.co:443\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED + AFTER, 400, False)
            # Host values (RFC 9112 3.2): not uri-host[:port] -> 400, and nothing goes upstream.
            for bad in (b"a b", b"a\x01b", b"a/b", b"user@host", b'"x"'):
                resps, _ = exchange(al, b"GET /after HTTP/1.1\r\nHost: " + bad + b"\r\n\r\n")
                eq([r[0] for r in resps], [400], f"Host: {bad!r}")
            for good in (b"epr.elastic.co", b"127.0.0.1:8080", b"[::1]:8080", b""):
                resps, _ = exchange(al, b"GET /after HTTP/1.1\r\nHost: " + good + b"\r\nConnection: close\r\n\r\n")
                eq([r[0] for r in resps], [200], f"Host: {good!r}")
        finally:
            al.stop()

        # An HTTPS listener: the close path cannot shut the socket under TLS.
        os.chmod(up.pki.key, 0o600)
        al2 = Airlock(tmp, up, listen_tls=(up.pki.crt, up.pki.key, "1.2"))
        try:
            ctx = ssl.create_default_context(cafile=up.pki.ca_crt)
            for name, data, first, kept in cases():
                if data is not None:
                    check("TLS: " + name, al2, up, data, first, kept, tls_ctx=ctx)
        finally:
            al2.stop()
        eq(up.count("/smuggled"), 0, "no hidden request ever reached the origin")


if __name__ == "__main__":
    main(test)
