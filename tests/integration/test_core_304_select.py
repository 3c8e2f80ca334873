"""A 304 refreshes the stored response only when its validator selects it,
and never replaces the stored ETag, Content-MD5 or Content-Range.

RFC 9111 §4.3.4: a 304 with a strong validator updates only stored
responses with that same strong validator; §3.2: a cache may keep fields
that describe what it stored (Content-Range among them) when it updates the
rest.  airlock stores the upstream's validators byte for byte, and Elastic
Endpoint decides whether to download again by the ETag alone (the
republish test's rule).  Before, any 304 to a revalidation refreshed the
stored response and overwrote its ETag, Content-MD5 and Content-Range with
the 304's: a 304 carrying W/"x" for a stored "x" served the stored body
under the weak tag, one carrying another strong tag served the old body
under the new tag.

A scripted origin (each answer in turn, every request recorded), max-age=0
so every request revalidates:
  - stored "x", the 304 says W/"x": not selected (airlock's reading: a
    weak 304 does not vouch for bytes stored under a strong tag), so the
    object is fetched again without validators, and served whole from that
    200;
  - stored "x", the 304 says "z": not selected, fetched again in full;
  - stored "x" with Content-MD5 and Content-Range, the 304 says "x" with
    other values of both and a new X-Meta: refreshed (served from the
    cache, the origin asked twice), X-Meta and Cache-Control taken, the
    stored ETag, Content-MD5 and Content-Range kept."""
import os, socket, sys, threading
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main


class ScriptedOrigin:
    """Plain HTTP on loopback: script[path] is the list of raw answers given in turn;
    seen[path] the request heads (lower-cased field names) in order."""

    def __init__(self):
        self.script, self.seen, self.lock = {}, {}, threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
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
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                fields = {}
                for l in lines[1:]:
                    k, _, v = l.partition(":")
                    fields[k.strip().lower()] = v.strip()
                with self.lock:
                    self.seen.setdefault(path, []).append(fields)
                    n = len(self.seen[path])
                    answers = self.script.get(path, [])
                    out = answers[n - 1] if n <= len(answers) else None
                if out is None:
                    out = b"HTTP/1.1 500 Unscripted\r\nContent-Length: 0\r\n\r\n"
                c.sendall(out)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()


def ok200(body, *fields):
    return (b"HTTP/1.1 200 OK\r\nCache-Control: max-age=0\r\n" + b"".join(f.encode() + b"\r\n" for f in fields) +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def r304(*fields):
    return b"HTTP/1.1 304 Not Modified\r\n" + b"".join(f.encode() + b"\r\n" for f in fields) + b"\r\n"


def test():
    origin = ScriptedOrigin()
    try:
        with Case() as (up, al0, tmp):
            al0.stop()
            weak, other, same = "/raw/weak.json", "/raw/other.json", "/raw/same.json"
            origin.script[weak] = [ok200(b"old weak\n", 'ETag: "x"'), r304('ETag: W/"x"', "Cache-Control: max-age=0"),
                                   ok200(b"new weak\n", 'ETag: "y"')]
            origin.script[other] = [ok200(b"old other\n", 'ETag: "x"'), r304('ETag: "z"', "Cache-Control: max-age=0"),
                                    ok200(b"new other\n", 'ETag: "z"')]
            origin.script[same] = [
                ok200(b"same\n", 'ETag: "x"', "Content-MD5: rL0Y20zC+Fzt72VPzMSk2A==", "Content-Range: bytes 0-4/5",
                      "X-Meta: 1"),
                r304('ETag: "x"', "Content-MD5: N7UdGUp1E+RbVvZSTy1R8g==", "Content-Range: bytes 0-4/99",
                     "X-Meta: 2", "Cache-Control: max-age=600")]
            al = Airlock(tmp, up, extra=f"  - prefix: /raw/\n    upstream: http://127.0.0.1:{origin.port}\n")
            try:
                for p, body in ((weak, b"old weak\n"), (other, b"old other\n"), (same, b"same\n")):
                    r = curl(al, p)
                    eq((r.status, r.body, r.header("ETag")), (200, body, '"x"'), f"{p}: the first answer, stored")

                # W/"x" for a stored "x": fetched again in full, served from that 200.
                r = curl(al, weak)
                eq((r.status, r.body, r.header("ETag")), (200, b"new weak\n", '"y"'), "weak 304: the new 200 served")
                seen = origin.seen[weak]
                eq(len(seen), 3, "weak 304: the origin asked three times (stored, revalidated, fetched again)")
                eq(seen[1].get("if-none-match"), '"x"', "the revalidation sent the stored tag")
                eq("if-none-match" in seen[2] or "if-modified-since" in seen[2], False,
                   "the second fetch is unconditional")
                r = curl(al, weak, headers=("Cache-Control: only-if-cached",))
                eq((r.status, r.body, r.header("ETag")), (200, b"new weak\n", '"y"'), "weak 304: the new 200 stored")

                # Another strong tag: fetched again in full.
                r = curl(al, other)
                eq((r.status, r.body, r.header("ETag")), (200, b"new other\n", '"z"'), "304 with another tag")
                eq(len(origin.seen[other]), 3, "another tag: the origin asked three times")

                # The same strong tag: refreshed, the stored validators and body facts kept.
                r = curl(al, same)
                eq((r.status, r.body), (200, b"same\n"), "matching 304: the stored body")
                if "fwd-status=304" not in (r.header("Cache-Status") or ""):
                    fail(f"matching 304: answered from the refreshed entry: {r.header('Cache-Status')}")
                eq(r.header("ETag"), '"x"', "matching 304: the stored ETag")
                eq(r.header("Content-MD5"), "rL0Y20zC+Fzt72VPzMSk2A==", "matching 304: the stored Content-MD5 kept")
                eq(r.header("Content-Range"), "bytes 0-4/5", "matching 304: the stored Content-Range kept")
                eq(r.header("X-Meta"), "2", "matching 304: other fields taken from the 304")
                eq(len(origin.seen[same]), 2, "matching 304: the origin asked twice")
                r = curl(al, same)
                eq((r.body, r.header("X-Meta"), r.header("ETag")), (b"same\n", "2", '"x"'), "then fresh (max-age=600)")
                if not (r.header("Cache-Status") or "").startswith("airlock; hit"):
                    fail(f"the refreshed entry is a hit: {r.header('Cache-Status')}")
                eq(len(origin.seen[same]), 2, "no third request")
            finally:
                al.stop()
    finally:
        origin.stop()


if __name__ == "__main__":
    main(test)
