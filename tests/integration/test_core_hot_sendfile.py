"""Hot bodies sent with sendfile (cache.hot_memory, proxy/front/hot.h).

Hits of 32 KiB-1 MiB are copied once into a worker's append-only memory file
and sent from there with sendfile.  What must hold:
- the bytes are the stored ones: whole, by range, pipelined, HEAD without body;
- the kernel keeps references to the pages it sends until the receiver has
  read them (on loopback, really read: the pages sit in the receiver's
  queue).  An Endpoint-like client (Go net/http, tests/go/client.go -rcvbuf
  -hold) reads its manifest slowly while the manifest is republished in
  place and the tier retires the memory that held it: it must still get the
  old manifest whole, under the old ETag, and the next request the new one.

Source for the republished manifest and the ETag: Elastic Security's
"Configure offline endpoints and air-gapped environments"
(elastic.co/guide/en/security/8.13/offline-endpoint.html): "Elastic Endpoint
uses the Etag header to determine whether your global artifacts have been
updated" (as tests/integration/test_endpoint_republish.py cites).  Endpoint
itself is closed source; the Go client stands in for it.
"""
import hashlib, json, os, re, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, go_client_cmd, main, wait_for

MANIFEST = "/downloads/endpoint/manifest/artifacts-8.13.0.zip"
A = os.urandom(120 * 1024)          # the manifest as first published
B = os.urandom(120 * 1024)          # republished in place
OTHERS = [(f"/downloads/endpoint/manifest/artifacts-8.13.{i}.zip", os.urandom(100 * 1024)) for i in range(1, 11)]


def metric(al, name):
    m = re.search(rf"^{name} (\d+)$", curl(al, "/_airlock/metrics").body.decode(), re.M)
    if m is None:
        fail(f"no {name} in /_airlock/metrics")
    return int(m.group(1))


def read_response(s, head_only=False):
    """One response off s: (status, headers dict, body)."""
    buf = s.pending if hasattr(s, "pending") else b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            fail(f"connection closed inside a head: {buf[:200]!r}")
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = 0 if head_only else int(hdrs.get("content-length", "0"))
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            fail(f"connection closed after {len(buf)} of {n} body bytes")
        buf += d
    s.pending = buf[n:]
    return status, hdrs, buf[:n]


class Sock(socket.socket):
    """A socket that keeps what it read past one response (socket.socket has __slots__)."""


def connect(al):
    s = Sock(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(("127.0.0.1", al.port))
    return s


def get(path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: airlock\r\nUser-Agent: Go-http-client/1.1\r\n{extra}\r\n".encode()


def test():
    with Case(workers=1, cache_extra="  hot_memory: 1MiB\n") as (up, al, tmp):
        # 1 MiB, one worker: two generations of 512 KiB, bodies up to 128 KiB.
        up.add(MANIFEST, A, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=1")])
        for p, body in OTHERS:
            up.add(p, body, headers=[("ETag", '"o"'), ("Cache-Control", "max-age=3600")])
        r = curl(al, MANIFEST)
        eq((r.status, r.body == A), (200, True), "miss")
        eq(metric(al, "airlock_hot_copies_total"), 0, "a miss is sent as it fills, not from hot memory")

        # Whole, ranged, HEAD and pipelined hits from hot memory.
        r = curl(al, MANIFEST)
        eq((r.status, r.body == A, r.header("ETag")), (200, True, '"v1"'), "first hit (copied in)")
        eq(metric(al, "airlock_hot_copies_total"), 1, "the first hit copied the body in")
        r = curl(al, MANIFEST, ["Range: bytes=5000-70000"])
        eq((r.status, r.body == A[5000:70001]), (206, True), "a range from hot memory")
        r = curl(al, MANIFEST, ["Range: bytes=-500"])
        eq((r.status, r.body == A[-500:]), (206, True), "a suffix range from hot memory")
        s = connect(al)
        s.sendall(get(MANIFEST) + b"HEAD " + MANIFEST.encode() + b" HTTP/1.1\r\nHost: airlock\r\n\r\n" +
                  get(MANIFEST, "Range: bytes=100-199\r\n") + get(MANIFEST))
        for what, want_status, want_body, head in (("pipelined GET", 200, A, False), ("pipelined HEAD", 200, b"", True),
                                                   ("pipelined range", 206, A[100:200], False),
                                                   ("pipelined GET after", 200, A, False)):
            st, h, body = read_response(s, head)
            eq((st, body == want_body, h.get("etag")), (want_status, True, '"v1"'), what)
        s.close()
        eq(metric(al, "airlock_hot_copies_total"), 1, "one copy served them all")
        eq(metric(al, "airlock_hot_sends_total"), 6, "hits with a body sent from hot memory (not the HEAD)")

        # A slow Endpoint-like client (Go net/http): a 4 KiB receive buffer, and it
        # reads the body only when told, so most of its response waits in socket queues meanwhile.
        sends = metric(al, "airlock_hot_sends_total")
        cmd, env = go_client_cmd(al.url(MANIFEST), extra=["-rcvbuf", "4096", "-hold"])
        slow = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            eq(slow.stderr.readline().strip(), "HEAD", "the slow client has its response head")
            wait_for(lambda: metric(al, "airlock_hot_sends_total") == sends + 1, 5,
                     "the slow reader's hit sent from hot memory")
        except BaseException:
            slow.kill()
            raise
        # Republished in place: new bytes, new ETag, same URL.
        up.add(MANIFEST, B, headers=[("ETag", '"v2"'), ("Cache-Control", "max-age=1")])
        time.sleep(1.2)
        r = curl(al, MANIFEST)
        eq((r.status, r.body == B, r.header("ETag")), (200, True, '"v2"'), "the republished manifest")
        # Fill the tier until the generation that held the old copy is truncated, and more.
        for p, body in OTHERS:
            curl(al, p)
            eq(curl(al, p).body == body, True, f"{p} hit")
        if metric(al, "airlock_hot_rotations_total") < 2:
            fail("hot memory did not retire the generation holding the old manifest")
        if metric(al, "airlock_hot_bytes") > 1024 * 1024:
            fail("hot memory over cache.hot_memory")

        # Now the slow Endpoint reads: the old manifest, whole, under the old ETag.
        out, err = slow.communicate("\n", timeout=30)
        got = json.loads(out)
        eq((got.get("status"), got.get("etag"), got.get("len"), got.get("err")), (200, '"v1"', len(A), None),
           "the slow reader's response")
        eq(got["sha256"], hashlib.sha256(A).hexdigest(), "the slow reader got the old manifest's bytes")
        r = curl(al, MANIFEST)
        eq((r.body == B, r.header("ETag")), (True, '"v2"'), "and the next request gets the new one")
        inm = [h.get("if-none-match") for _, p, h in up.requests if p == MANIFEST]
        eq(inm[:2], [None, '"v1"'], "one fill, then a revalidation that found the new version")

    # cache.hot_memory: 0 turns it off: the same hits, nothing copied.
    with Case(workers=1, cache_extra="  hot_memory: 0\n") as (up, al, tmp):
        up.add(MANIFEST, A, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=3600")])
        for _ in range(3):
            eq(curl(al, MANIFEST).body == A, True, "hit without hot memory")
        eq((metric(al, "airlock_hot_copies_total"), metric(al, "airlock_hot_sends_total")), (0, 0), "nothing copied")


if __name__ == "__main__":
    main(test)
