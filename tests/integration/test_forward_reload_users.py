"""A reload takes effect for proxy logins at once (issue 29 item 2): after a
SIGHUP that removes a user from forward.users, or changes her password, her
old credentials get 407 on the very next absolute-form GET and CONNECT,
though airlock had just verified and remembered them; other users and the
new password work."""
import base64, json, os, signal, socket, subprocess, sys
from collections import Counter
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, eq, fail, main, wait_for

P = "/GPG-KEY-elastic-agent"


def hashed(pw):
    h = subprocess.run([AIRLOCK, "passwd"], input=pw + "\n", capture_output=True, text=True,
                       timeout=10).stdout.strip()
    if not h.startswith("pbkdf2-sha256$"):
        fail(f"airlock passwd printed {h!r}")
    return h


def forward(ca, users):
    text = f"""forward:
  ca_cert: {ca}/ca.crt
  ca_key: {ca}/ca.key
  allow:
    - {{host: epr.elastic.co, mode: intercept}}
    - {{host: files.plain.test, mode: tunnel, ports: [80]}}
  users:
"""
    return text + "".join(f'    - {{name: {n}, password_hash: "{h}"}}\n' for n, h in users.items())


def status(al, data, to_eof=False):
    """Send one request head, return the status of the first response head (read to the end
    of the connection with to_eof, so that the response is complete and logged)."""
    s = socket.create_connection(("127.0.0.1", al.port), timeout=10)
    s.sendall(data)
    out = b""
    while to_eof or b"\r\n\r\n" not in out:
        b = s.recv(4096)
        if not b:
            break
        out += b
    s.close()
    if not out.startswith(b"HTTP/1.1 "):
        fail(f"no response head: {out[:80]!r}")
    return int(out[9:12])


def auth(user, pw):
    return b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{pw}".encode()) + b"\r\n"


def get(al, user, pw):
    return status(al, b"GET http://files.plain.test" + P.encode() + b" HTTP/1.1\r\nHost: files.plain.test\r\n" +
                  auth(user, pw) + b"Connection: close\r\n\r\n", to_eof=True)


def connect(al, user, pw):
    return status(al, b"CONNECT epr.elastic.co:443 HTTP/1.1\r\nHost: epr.elastic.co:443\r\n" + auth(user, pw) + b"\r\n")


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        ca = os.path.join(tmp, "ca")
        subprocess.run([AIRLOCK, "ca", "init", ca], check=True, capture_output=True, timeout=30)
        up.add(P, b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", headers=[("ETag", '"gpg"'), ("Cache-Control", "max-age=3600")])
        ha, hb = hashed("alice-pw"), hashed("bob-pw")
        al = Airlock(tmp, up, extra=forward(ca, {"alice": ha, "bob": hb}),
                     resolve_extra={"files.plain.test:80": f"127.0.0.1:{up.port}"})
        access = os.path.join(tmp, "access.log")
        al.stop()
        base = open(al.config).read().replace("log:\n  level: debug\n", f"log:\n  level: debug\n  access: {access}\n", 1)
        open(al.config, "w").write(base)
        al.start()
        head = base[:base.index("forward:\n")]

        def reload(users, n):
            open(al.config, "w").write(head + forward(ca, users))
            al.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: al.logtext().count("reloaded") >= n, 10, f"reload #{n}")

        try:
            # Verified once, then remembered: both forms, both users.
            for _ in range(2):
                eq(get(al, "alice", "alice-pw"), 200, "alice, absolute-form")
                eq(connect(al, "alice", "alice-pw"), 200, "alice, CONNECT")
            eq(get(al, "alice", "wrong"), 407, "wrong password")
            eq(get(al, "bob", "bob-pw"), 200, "bob")

            # alice removed: her remembered login is refused at once.
            reload({"bob": hb}, 1)
            eq(get(al, "alice", "alice-pw"), 407, "removed user, absolute-form, right after the reload")
            eq(connect(al, "alice", "alice-pw"), 407, "removed user, CONNECT, right after the reload")
            eq(get(al, "bob", "bob-pw"), 200, "bob is still admitted")
            eq(connect(al, "bob", "bob-pw"), 200, "bob's CONNECT")

            # alice back with a new password: the old one stays refused, the new one works.
            reload({"alice": ha, "bob": hb}, 2)
            eq(get(al, "alice", "alice-pw"), 200, "alice re-added")
            eq(connect(al, "alice", "alice-pw"), 200, "alice re-added, CONNECT")
            reload({"alice": hashed("alice-new"), "bob": hb}, 3)
            eq(get(al, "alice", "alice-pw"), 407, "changed password: the old one, absolute-form")
            eq(connect(al, "alice", "alice-pw"), 407, "changed password: the old one, CONNECT")
            eq(get(al, "alice", "alice-new"), 200, "changed password: the new one")
            eq(connect(al, "alice", "alice-new"), 200, "changed password: the new one, CONNECT")
            eq(up.count(P), 1, "the absolute-form object was fetched once")
            # the access log names who the proxy admitted (ECS user.name), never the password;
            # lines are counted, not ordered: two workers write them as each request finishes
            def named():
                return Counter((l["http"]["request"]["method"], l["http"]["response"]["status_code"],
                                l.get("user", {}).get("name")) for l in map(json.loads, open(access)))
            want = {("GET", 200, "alice"): 4, ("CONNECT", 200, "alice"): 4, ("GET", 200, "bob"): 2,
                    ("CONNECT", 200, "bob"): 1, ("GET", 407, None): 3, ("CONNECT", 407, None): 2}
            wait_for(lambda: named() == Counter(want), 5, f"the access log lines {want}, got {dict(named())}")
            if "alice-pw" in open(access).read() or "alice-new" in open(access).read():
                fail("a password was logged")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
