"""A client that hangs up mid-response still gets its access-log line
(issue 29's leftover; nginx logs such a request with its pseudo-status 499).

Before, the line was written only when a response had been written whole
(conn.c finish): a client that went away while waiting for a fill, or in
the middle of a body, left no trace in the access log.  Now conn_free
writes the line of a request in progress, with:
  - http.response.status_code: the status sent, or 499 when the client hung
    up before the head went out (nginx's convention);
  - http.response.body.bytes: the body bytes handed to the socket (those
    still queued in airlock when it went are not counted);
  - airlock.closed_by: "client" (or "airlock" when airlock cut it).

Four requests: a 12 MiB hit whose client reads 64 KiB and closes (unread
data: a reset); a miss whose client resets the connection while the
upstream takes 1.5 s to answer (499 at once; the fill goes on and is
stored: the next request is a hit, the upstream asked once); a miss whose
client closes its side (FIN) while waiting: airlock keeps a half-closed
client's request (it may still read), sends the response when the fill is
in, and its line says the client had closed; a complete request, whose
line has no closed_by."""
import json, os, socket, struct, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main, wait_for

BIG = os.urandom(12 << 20)  # more than loopback's socket buffers take
HIT = "/downloads/big.bin"
SLOW = "/downloads/slow-1.txt"
SLOW2 = "/downloads/slow-2.txt"
SMALL = "/downloads/small.txt"


def lines(access, path):
    try:
        return [l for l in map(json.loads, open(access)) if l["url"]["original"] == path]
    except FileNotFoundError:
        return []


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(HIT, BIG, headers=[("Cache-Control", "max-age=3600")])
        up.add(SLOW, b"abc  filebeat\n", headers=[("Cache-Control", "max-age=3600")], delay=1.5)
        up.add(SLOW2, b"def  auditbeat\n", headers=[("Cache-Control", "max-age=3600")], delay=1.5)
        up.add(SMALL, b"small\n", headers=[("Cache-Control", "max-age=3600")])
        access = os.path.join(tmp, "access.log")
        al = Airlock(tmp, up, workers=1)
        al.stop()
        cfg = open(al.config).read().replace("log:\n  level: debug\n", f"log:\n  level: debug\n  access: {access}\n", 1)
        open(al.config, "w").write(cfg)
        al.start()
        try:
            eq(curl(al, HIT).body, BIG, "the big object, filled")
            eq(len(lines(access, HIT)), 1, "the fill's line")

            # A hit whose client reads 64 KiB of 4 MiB and hangs up.
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.connect(("127.0.0.1", al.port))
            s.sendall(f"GET {HIT} HTTP/1.1\r\nHost: airlock\r\n\r\n".encode())
            got = b""
            while len(got) < 65536:
                b = s.recv(65536)
                if not b:
                    fail("airlock closed first")
                got += b
            if not got.startswith(b"HTTP/1.1 200"):
                fail(f"the hit's head: {got[:40]!r}")
            s.close()  # unread data: the kernel resets the connection
            wait_for(lambda: len(lines(access, HIT)) == 2, 10, "the access-log line of the hit cut by its client")
            cut = lines(access, HIT)[1]
            print("hit cut by its client:", json.dumps(cut["http"]["response"]), json.dumps(cut["airlock"]))
            eq(cut["http"]["response"]["status_code"], 200, "the status sent")
            eq(cut["airlock"].get("closed_by"), "client", "who closed")
            sent = cut["http"]["response"]["body"]["bytes"]
            if not 0 < sent < len(BIG):
                fail(f"body bytes sent {sent}: some, not all of {len(BIG)}")

            # A miss whose client resets the connection while the fill waits for the upstream's head.
            s = socket.create_connection(("127.0.0.1", al.port))
            s.sendall(f"GET {SLOW} HTTP/1.1\r\nHost: airlock\r\n\r\n".encode())
            time.sleep(0.4)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # a reset, as from a client killed with unread data
            wait_for(lambda: len(lines(access, SLOW)) == 1, 10, "the access-log line of the miss its client left")
            left = lines(access, SLOW)[0]
            print("miss left by its client:", json.dumps(left["http"]["response"]), json.dumps(left["airlock"]))
            eq(left["http"]["response"]["status_code"], 499, "no head was sent: nginx's 499")
            eq(left["http"]["response"]["body"]["bytes"], 0, "no body bytes")
            eq(left["airlock"].get("closed_by"), "client", "who closed")
            # the fill went on without its client: stored, the next request is a hit
            wait_for(lambda: al.health()["cache"]["entries"] == 2, 10, "the abandoned fill stored")
            r = curl(al, SLOW)
            eq((r.status, r.body), (200, b"abc  filebeat\n"), "the abandoned fill's object")
            eq(up.count(SLOW), 1, "fetched once")

            # A miss whose client closes its side (FIN) while waiting: answered, and said.
            s = socket.create_connection(("127.0.0.1", al.port))
            s.sendall(f"GET {SLOW2} HTTP/1.1\r\nHost: airlock\r\n\r\n".encode())
            time.sleep(0.4)
            s.close()
            wait_for(lambda: len(lines(access, SLOW2)) == 1, 10, "the line of the miss whose client closed its side")
            half = lines(access, SLOW2)[0]
            print("miss whose client closed its side:", json.dumps(half["http"]["response"]), json.dumps(half["airlock"]))
            eq(half["airlock"].get("closed_by"), "client", "who closed")
            if half["http"]["response"]["status_code"] not in (200, 499):
                fail(f"the status sent to a client gone: {half['http']['response']}")

            # A complete exchange: no closed_by.
            eq(curl(al, SMALL).status, 200, "a small object")
            wait_for(lambda: len(lines(access, SMALL)) == 1, 10, "the small object's line")
            whole = lines(access, SMALL)[0]
            eq("closed_by" in whole["airlock"], False, f"a complete response says nobody cut it: {whole['airlock']}")
            eq(whole["http"]["response"]["body"]["bytes"], 6, "its body bytes")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
