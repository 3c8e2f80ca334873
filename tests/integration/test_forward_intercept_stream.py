"""Inside an intercepted CONNECT (Kibana's and the agents' forward-proxy
path: TLS on both sides), airlock writes its responses with its own TLS
writer straight on the client's socket, as on the HTTPS listener (issue 33,
forward.c tls_on_socket, tls.h tls_writer), not through libevent's filter
over the socket bufferevent.  What that path must do:
  - a small hit is one TLS record (head and body together; the filter made
    one record per chunk: two).  The client parses the record layer of
    what it receives (RFC 8446 5.1) to count them;
  - a large body to a client that stops reading for a while (the socket
    fills, SSL_write blocks and is retried) arrives byte-exact, on a miss
    and on a hit;
  - pipelined requests are answered in order;
  - clients hanging up mid-body inside the interception, with references
    into the cache's map still queued, cost nothing but their connection;
  - a client that stops reading for good is dropped after
    client.idle_timeout, and the next client is answered;
  - a client that sends its ClientHello right behind the CONNECT, before
    the 200 (its bytes are then already in airlock's input buffer), is
    still served (through the filter, which reads them from there)."""
import os, socket, ssl, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, ResponseReader, eq, fail, forward_section, main

HOST = "artifacts.elastic.co"
BIG = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz"
BIG_BODY = os.urandom(4 * 1024 * 1024 + 4321)
HUGE = "/downloads/beats/metricbeat/metricbeat-8.13.4-linux-x86_64.tar.gz"
HUGE_BODY = os.urandom(24 * 1024 * 1024 + 5)  # more than loopback's socket buffers hold
SMALL = BIG + ".sha512"
SMALL_BODY = b"abc  filebeat-8.13.4-linux-x86_64.tar.gz\n" * 20


class Intercepted(ResponseReader):
    """CONNECT through airlock, then TLS over a memory BIO, so that the TLS
    records airlock sends can be counted (application data: type 23)."""

    def __init__(self, al, ca, early=False):
        self.raw = socket.create_connection(("127.0.0.1", al.port), timeout=20)
        self.inc, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = ssl.create_default_context(cafile=f"{ca}/ca.crt")
        self.tls = ctx.wrap_bio(self.inc, self.outb, server_hostname=HOST)
        self.pending, self.records, self.buf = b"", 0, b""
        connect = f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode()
        if early:  # the ClientHello right behind the CONNECT, in one write
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            connect += self.outb.read()
        self.raw.sendall(connect)
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.raw.recv(1)  # byte by byte: nothing of the TLS that follows is consumed here
            if not b:
                fail(f"CONNECT refused: {head!r}")
            head += b
        eq(head.split(b"\r\n")[0][9:12], b"200", "CONNECT answered")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    fail("EOF during the handshake")
        self._flush()

    def _flush(self):
        data = self.outb.read()
        if data:
            self.raw.sendall(data)

    def _feed(self):
        b = self.raw.recv(65536)
        if not b:
            self.inc.write_eof()
            return False
        self.pending += b
        while len(self.pending) >= 5:
            n = 5 + int.from_bytes(self.pending[3:5], "big")
            if len(self.pending) < n:
                break
            if self.pending[0] == 23:
                self.records += 1
            self.inc.write(self.pending[:n])
            self.pending = self.pending[n:]
        return True

    def sendall(self, data):
        self.tls.write(data)
        self._flush()

    def more(self):
        while True:
            try:
                b = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    fail(f"ragged EOF ({len(self.buf)} bytes buffered)")
                continue
            except ssl.SSLZeroReturnError:
                b = b""
            if not b:
                fail(f"connection closed early ({len(self.buf)} bytes buffered)")
            self.buf += b
            return

    def close(self):
        self.raw.close()


def get(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n" + ("Connection: close\r\n" if close else "") +
            "\r\n").encode()


def alive(al, what):
    if al.proc.poll() is not None:
        fail(f"airlock died {what}: {al.proc.returncode}\n{al.logtext()}")


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(BIG, BIG_BODY, headers=[("ETag", '"b"'), ("Cache-Control", "max-age=600")])
        up.add(HUGE, HUGE_BODY, headers=[("ETag", '"h"'), ("Cache-Control", "max-age=600")])
        up.add(SMALL, SMALL_BODY, headers=[("ETag", '"s"'), ("Cache-Control", "max-age=600")])
        fwd, ca = forward_section(tmp, [HOST])
        al = Airlock(tmp, up, extra=fwd)
        try:
            # a small hit: head and body in one TLS record
            s = Intercepted(al, ca)
            s.sendall(get(SMALL))
            eq(s.response()[::2], ("200", SMALL_BODY), "small miss")
            before = s.records
            s.sendall(get(SMALL))
            st, hdrs, body = s.response()
            eq((st, body), ("200", SMALL_BODY), "small hit")
            if "hit" not in hdrs:
                fail(f"second request should be a hit: {hdrs}")
            eq(s.records - before, 1, "TLS records for a small hit (head and body together)")

            # a slow reader: a miss, then a hit, on one intercepted connection
            for what in ("miss", "hit"):
                s.sendall(get(BIG))
                st, hdrs, body = s.response(pause=0.6)
                eq(st, "200", what)
                eq(len(body), len(BIG_BODY), f"{what}: length")
                eq(body == BIG_BODY, True, f"{what}: body byte-exact after the client paused")
            # pipelined: three requests in one write, answered in order
            s.sendall(get(SMALL) + get(BIG) + get(SMALL))
            for i, want in enumerate((SMALL_BODY, BIG_BODY, SMALL_BODY)):
                st, _, body = s.response()
                eq((st, body == want), ("200", True), f"pipelined response #{i}")
            s.close()
            eq((up.count(BIG), up.count(SMALL)), (1, 1), "one upstream fetch each")

            # clients hanging up mid-body inside the interception, the rest of the body queued in airlock
            for i in range(8):
                alive(al, f"after {i} clients hung up mid-body")
                s = Intercepted(al, ca)
                s.sendall(get(BIG))
                s.more()
                s.close()
            time.sleep(0.3)
            alive(al, "after clients hung up mid-body")

            # the ClientHello sent before the 200: still served
            s = Intercepted(al, ca, early=True)
            s.sendall(get(SMALL))
            eq(s.response()[::2], ("200", SMALL_BODY), "ClientHello behind the CONNECT")
            s.sendall(get(BIG, close=True))
            eq(s.response()[::2] == ("200", BIG_BODY), True, "ClientHello behind the CONNECT: large body")
            s.close()
            alive(al, "at the end")
        finally:
            al.stop()

        # a reader that stops for good: dropped after the idle timeout, mid-body
        al = Airlock(tmp, up, extra=fwd + "client:\n  idle_timeout: 1s\n")
        try:
            s = Intercepted(al, ca)
            s.sendall(get(HUGE))
            time.sleep(4)  # never reads: airlock's socket stays full
            got, ended = 0, None
            try:
                while True:
                    s.more()
                    got += len(s.buf)
                    s.buf = b""
            except AssertionError as e:
                ended = str(e)[:60]
            except (ssl.SSLError, OSError) as e:
                ended = type(e).__name__
            if got >= len(HUGE_BODY):
                fail(f"the whole body arrived ({got} bytes): the socket never stayed full")
            print(f"a stalled reader: {got} bytes, then {ended}", flush=True)
            eq(up.count(HUGE), 1, "one upstream fetch")
            s = Intercepted(al, ca)
            s.sendall(get(SMALL))
            eq(s.response()[::2], ("200", SMALL_BODY), "the next client is answered")
            s.close()
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
