"""The HTTPS listener writes its responses itself (tls.h tls_writer, issue
33): head and body coalesced into 16 KiB records, SSL_write straight from
the cache's memory map, a wait for the socket only when it is full.  What
that path must keep doing:
  - a large body to a client that stops reading for a while (the socket
    fills, SSL_write blocks and is retried later) arrives byte-exact, on a
    miss (the fill's pass-through) and on a hit (from the map);
  - pipelined requests on one connection are answered in order;
  - clients that hang up mid-body, with references into the map still
    queued, cost nothing but their connection: airlock stays up and
    answers the next client;
  - a response that closes the connection still ends with close_notify
    right after the last byte of a large body;
  - a client that stops reading for good is dropped after client.idle_timeout
    (the writer's wait has the bound libevent's write timeout had), and
    airlock goes on serving others."""
import os, shutil, socket, ssl, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, ResponseReader, eq, fail, main

BIG = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz"
BIG_BODY = os.urandom(4 * 1024 * 1024 + 4321)
HUGE = "/downloads/beats/metricbeat/metricbeat-8.13.4-linux-x86_64.tar.gz"
HUGE_BODY = os.urandom(24 * 1024 * 1024 + 5)  # more than loopback's socket buffers hold
SMALL = BIG + ".sha512"
SMALL_BODY = b"abc  filebeat-8.13.4-linux-x86_64.tar.gz\n"


def connect(al, ca):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", al.port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)


class Reader(ResponseReader):
    def __init__(self, s):
        self.s, self.buf = s, b""

    def more(self):
        b = self.s.recv(65536)
        if not b:
            fail(f"connection closed early ({len(self.buf)} bytes buffered)")
        self.buf += b



def get(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n" + ("Connection: close\r\n" if close else "") +
            "\r\n").encode()


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        key = os.path.join(tmp, "listen.key")
        shutil.copy(up.pki.key, key)
        os.chmod(key, 0o600)
        up.add(BIG, BIG_BODY, headers=[("ETag", '"b"'), ("Cache-Control", "max-age=600")])
        up.add(HUGE, HUGE_BODY, headers=[("ETag", '"h"'), ("Cache-Control", "max-age=600")])
        up.add(SMALL, SMALL_BODY, headers=[("ETag", '"s"'), ("Cache-Control", "max-age=600")])
        al = Airlock(tmp, up, listen_tls=(up.pki.crt, key, "1.2"))
        ca = up.pki.ca_crt
        try:
            # a slow reader: a miss, then a hit, on one connection
            s = connect(al, ca)
            r = Reader(s)
            for what in ("miss", "hit"):
                s.sendall(get(BIG))
                st, hdrs, body = r.response(pause=0.6)
                eq(st, "200", what)
                eq(len(body), len(BIG_BODY), f"{what}: length")
                eq(body == BIG_BODY, True, f"{what}: body byte-exact after the client paused")
                if what == "hit" and "hit" not in hdrs:
                    fail(f"second request should be a hit: {hdrs}")
            # pipelined: three requests in one write, answered in order
            s.sendall(get(SMALL) + get(BIG) + get(SMALL))
            for i, want in enumerate((SMALL_BODY, BIG_BODY, SMALL_BODY)):
                st, _, body = r.response()
                eq((st, body == want), ("200", True), f"pipelined response #{i}")
            s.close()
            eq((up.count(BIG), up.count(SMALL)), (1, 1), "one upstream fetch each")

            # clients hanging up mid-body, with the rest of the body still queued in airlock
            for i in range(8):
                if al.proc.poll() is not None:
                    fail(f"airlock died after {i} clients hung up mid-body: {al.proc.returncode}\n{al.logtext()}")
                s = connect(al, ca)
                s.sendall(get(BIG))
                s.recv(100)
                s.close()
            time.sleep(0.3)
            if al.proc.poll() is not None:
                fail(f"airlock died after clients hung up mid-body: {al.proc.returncode}\n{al.logtext()}")

            # a closing response: the whole body, then close_notify
            s = connect(al, ca)
            s.sendall(get(BIG, close=True))
            r = Reader(s)
            st, _, body = r.response()
            eq((st, body == BIG_BODY), ("200", True), "Connection: close response")
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    r.buf += b
            except ssl.SSLEOFError as e:
                fail(f"the connection ended without close_notify: {e}")
            eq(r.buf, b"", "nothing after the response")
            s.close()
            if al.proc.poll() is not None:
                fail(f"airlock died: {al.proc.returncode}")
        finally:
            al.stop()

        # a reader that stops for good: dropped after the idle timeout, mid-body
        al = Airlock(tmp, up, listen_tls=(up.pki.crt, key, "1.2"), extra="client:\n  idle_timeout: 1s\n")
        try:
            s = connect(al, ca)
            s.sendall(get(HUGE))
            time.sleep(4)  # never reads: airlock's socket stays full
            got, ended = 0, None
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        ended = "close_notify"
                        break
                    got += len(b)
            except (ssl.SSLError, OSError) as e:
                ended = type(e).__name__
            if got >= len(HUGE_BODY):
                fail(f"the whole body arrived ({got} bytes): the socket never stayed full")
            print(f"a stalled reader: {got} bytes, then {ended}", flush=True)
            eq(up.count(HUGE), 1, "one upstream fetch")
            r = Reader(connect(al, ca))
            r.s.sendall(get(SMALL))
            eq(r.response()[::2], ("200", SMALL_BODY), "the next client is answered")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
