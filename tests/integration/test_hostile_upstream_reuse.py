"""Stray bytes on a kept-alive upstream connection never become another
URL's response.

A keep-alive origin answers /raw/long with Content-Length: 10 and its ten
bytes, then 200 ms later writes a second response on the same connection
(a stray one); /raw/excess writes the stray response in the same packet.
Without a guard, libcurl reuses the connection for the next URL and reads
the stray bytes as its response, which airlock would store: every later URL
then carries the previous one's body, each as a fresh hit.  Each /raw/other-N
must get its own body, on the miss and on the hit, and one worker is used so
that every fetch shares one connection pool."""
import os, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main

STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nCache-Control: max-age=600\r\n\r\nSTRAY!"


class KeepAliveOrigin:
    """Serves many requests per connection; counts requests and connections."""

    def __init__(self):
        self.counts, self.conns, self.lock = {}, 0, threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def count(self, p):
        with self.lock:
            return self.counts.get(p, 0)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(20)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    b = c.recv(4096)
                    if not b:
                        return
                    buf += b
                head, _, buf = buf.partition(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                with self.lock:
                    self.counts[path] = self.counts.get(path, 0) + 1
                body = f"body of {path}\n".encode()
                resp = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nCache-Control: max-age=600\r\n\r\n" % len(body)) + body
                if path == "/raw/long":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nCache-Control: max-age=600\r\n\r\n0123456789")
                    time.sleep(0.2)
                    c.sendall(STRAY)
                elif path == "/raw/excess":
                    c.sendall(resp + STRAY)
                else:
                    c.sendall(resp)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()


def test():
    origin = KeepAliveOrigin()
    try:
        with Case() as (up, al0, tmp):
            al0.stop()
            al = Airlock(tmp, up, workers=1,
                         extra=f"  - prefix: /raw/\n    upstream: http://127.0.0.1:{origin.port}\n")
            try:
                for first, others in (("/raw/long", ("/raw/other-1", "/raw/other-2", "/raw/other-3")),
                                      ("/raw/excess", ("/raw/other-4", "/raw/other-5"))):
                    curl(al, first)
                    time.sleep(1.0)  # the stray response is waiting on the pooled connection by now
                    for p in others:
                        r = curl(al, p)
                        eq((r.status, r.body), (200, f"body of {p}\n".encode()), f"{p} after {first} (miss)")
                        eq(origin.count(p), 1, f"{p} asked of the origin once")
                    for p in others:
                        r = curl(al, p)
                        eq((r.status, r.body), (200, f"body of {p}\n".encode()), f"{p} (hit)")
                        if "hit" not in (r.header("Cache-Status") or ""):
                            fail(f"{p}: second request should be a hit: {r.header('Cache-Status')!r}")
                # The ten bytes framed by Content-Length are a sound response; the stray one is nobody's.
                r = curl(al, "/raw/long")
                eq(r.body, b"0123456789", "/raw/long keeps its own framed body")
                # A response followed by excess bytes in the same read is refused, not stored.
                curl(al, "/raw/excess")
                eq(origin.count("/raw/excess"), 2, "/raw/excess was not stored")
                if "unexpected bytes pending" not in al.logtext():
                    fail("the dirty connection should be logged")
            finally:
                al.stop()
    finally:
        origin.stop()


if __name__ == "__main__":
    main(test)
