"""A flood of wrong passwords does not stall the worker's hits (issue 29's
leftover: the password check on the worker's loop).

A password is checked with PBKDF2 (policy/access.c, ~5 ms by design), and a
wrong one is never remembered: before, each wrong Basic login, to a route
with client authentication (401) or to the forward proxy (407), held the
worker's loop for the whole check, so hits on that worker waited behind
every check of every flooding connection (one hit per round of checks).
Now the check runs on the login thread (proxy/front/login.c) and the
request is resumed on its loop.

One worker.  Sixteen connections send wrong passwords (half to the reverse
proxy's authenticated route, half as Proxy-Authorization on absolute-form
requests) while a keep-alive client asks for a cached object on an open
route.  The test counts hits answered while the flood ran (no timing
bound): at least as many as wrong passwords answered (before: about one
for every sixteen).  Then right and wrong passwords still give 200 and
401/407, the remembered login still works, and every flood answer was a
401/407, or a 503 with Retry-After when the login queue was full."""
import base64, os, socket, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, HitSampler, curl, eq, fail, main

AUTHED = "/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz.sha512"
OPEN = "/package/apache/1.0.0/"
PLAIN = "/GPG-KEY-elastic-agent"
CONNS, PER_CONN = 16, 20


def hashed(pw):
    h = subprocess.run([AIRLOCK, "passwd"], input=pw + "\n", capture_output=True, text=True,
                       timeout=10).stdout.strip()
    if not h.startswith("pbkdf2-sha256$"):
        fail(f"airlock passwd printed {h!r}")
    return h


def basic(user, pw):
    return base64.b64encode(f"{user}:{pw}".encode())


def client_req(user, pw, close=False):
    return (b"GET " + AUTHED.encode() + b" HTTP/1.1\r\nHost: airlock\r\nAuthorization: Basic " + basic(user, pw) +
            b"\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n")


def proxy_req(user, pw, close=False):
    return (b"GET http://files.plain.test" + PLAIN.encode() + b" HTTP/1.1\r\nHost: files.plain.test\r\n"
            b"Proxy-Authorization: Basic " + basic(user, pw) + b"\r\n" +
            (b"Connection: close\r\n" if close else b"") + b"\r\n")


def read_response(s, buf):
    """One response (its head and Content-Length body) from s; returns (status, head, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            fail(f"the connection closed before a response: {buf[:80]!r}")
        buf += b
    head, _, buf = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(buf) < n:
        b = s.recv(65536)
        if not b:
            fail("the connection closed inside a body")
        buf += b
    return int(head[9:12]), head.decode("latin-1"), buf[n:]


def one(al, data):
    s = socket.create_connection(("127.0.0.1", al.port), timeout=30)
    try:
        s.sendall(data)
        st, head, _ = read_response(s, b"")
        return st, head
    finally:
        s.close()


def flood(al, req, statuses, lock):
    """PER_CONN wrong passwords one after another on one keep-alive connection."""
    s = socket.create_connection(("127.0.0.1", al.port), timeout=60)
    buf, mine = b"", []
    try:
        for i in range(PER_CONN):
            s.sendall(req)
            st, head, buf = read_response(s, buf)
            mine.append((st, "retry-after: 1" in head.lower()))
            if "connection: close" in head.lower():
                s.close()
                s = socket.create_connection(("127.0.0.1", al.port), timeout=60)
                buf = b""
    finally:
        s.close()
        with lock:
            statuses.extend(mine)


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(AUTHED, b"0123abcd  elastic-agent\n", headers=[("Cache-Control", "max-age=600")])
        up.add(OPEN, b'{"name":"apache"}', headers=[("Cache-Control", "max-age=600")])
        up.add(PLAIN, b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", headers=[("Cache-Control", "max-age=3600")])
        ca = os.path.join(tmp, "ca")
        subprocess.run([AIRLOCK, "ca", "init", ca], check=True, capture_output=True, timeout=30)
        extra = (f'clients:\n  users:\n    - {{name: agent, password_hash: "{hashed("agent-pw")}"}}\n'
                 f"forward:\n  ca_cert: {ca}/ca.crt\n  ca_key: {ca}/ca.key\n  allow:\n"
                 f"    - {{host: files.plain.test, mode: tunnel, ports: [80]}}\n"
                 f'  users:\n    - {{name: alice, password_hash: "{hashed("alice-pw")}"}}\n')
        al = Airlock(tmp, up, extra=extra, workers=1,
                     resolve_extra={"files.plain.test:80": f"127.0.0.1:{up.port}"})
        al.stop()
        cfg = open(al.config).read().replace(
            "  - prefix: /downloads/\n    upstream: https://artifacts.elastic.co\n",
            "  - prefix: /downloads/\n    upstream: https://artifacts.elastic.co\n    auth: true\n", 1)
        if "auth: true" not in cfg:
            fail("the test's route was not found in the harness's configuration")
        open(al.config, "w").write(cfg)
        al.start()
        try:
            r = curl(al, OPEN)
            eq(r.status, 200, "the open object")
            if not curl(al, OPEN).header("Cache-Status").startswith("airlock; hit"):
                fail("the open object is stored")

            hits = HitSampler(al, OPEN, 0)
            time.sleep(0.3)
            statuses, lock = [], threading.Lock()
            threads = [threading.Thread(target=flood, args=(al, client_req("agent", f"wrong{i}") if i % 2 == 0
                                                                else proxy_req("alice", f"wrong{i}"), statuses, lock))
                       for i in range(CONNS)]
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            t1 = time.time()
            samples = hits.stop()
            if any(t.is_alive() for t in threads):
                fail("the flood did not end")
            eq(len(statuses), CONNS * PER_CONN, "every flood request answered")
            bad = [s for s in statuses if s[0] not in (401, 407) and s != (503, True)]
            if bad:
                fail(f"flood answers other than 401/407 or 503 with Retry-After: {bad[:5]}")
            wrong = sum(1 for s, _ in statuses if s in (401, 407))
            busy = len(statuses) - wrong
            if wrong == 0:
                fail("no wrong password was checked")
            during = [s for s in samples if s[0] >= t0 and s[0] + s[1] <= t1]
            if any(s[2] != 200 for s in during):
                fail(f"a hit during the flood was not a 200: {[s for s in during if s[2] != 200][:3]}")
            print(f"flood: {wrong} wrong passwords answered 401/407, {busy} 503 (queue full) in "
                  f"{t1 - t0:.2f} s; hits answered meanwhile: {len(during)}")
            if len(during) < wrong:
                fail(f"only {len(during)} hits answered on the worker while {wrong} wrong passwords were "
                     f"checked: the checks hold the worker's loop")

            # Right and wrong passwords still mean what they meant; the right ones are remembered.
            for _ in range(2):
                eq(one(al, client_req("agent", "agent-pw", close=True))[0], 200, "the right client password")
                eq(one(al, proxy_req("alice", "alice-pw", close=True))[0], 200, "the right proxy password")
            eq(one(al, client_req("agent", "nope", close=True))[0], 401, "a wrong client password")
            eq(one(al, proxy_req("alice", "nope", close=True))[0], 407, "a wrong proxy password")
            eq(one(al, client_req("nobody", "agent-pw", close=True))[0], 401, "an unknown client user")
            eq(up.count(AUTHED), 1, "the authenticated object fetched once, after the right password")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
