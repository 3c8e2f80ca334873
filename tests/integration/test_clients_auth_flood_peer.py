"""A flood of wrong passwords from one address does not keep other clients' first logins out
(login queue fairness; proxy/front/login.c).

The password check queue is bounded (LOGIN_QUEUE, all workers together; beyond it 503 with
Retry-After).  Before, one client could hold every slot: a flood from one address made every
other client's first login (a right password, not yet remembered) a 503.  Now one address (an
IPv6 /64) holds at most LOGIN_PER_PEER of them.

Here 80 keep-alive connections from 127.0.0.1 send wrong passwords as fast as they are answered
(a 503's Retry-After all but ignored, as a flood does), more than the whole queue.  Meanwhile five users log in
for the first time, one after another, from 127.0.0.2 (loopback is 127.0.0.0/8): each must get a
200.  The flood itself gets 401s and 503s with Retry-After, nothing else.  Before the per-address
bound, the first logins from 127.0.0.2 got 503."""
import os, socket, subprocess, sys, threading, time
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main
from test_clients_auth_flood import AUTHED, client_req, hashed, read_response

FLOODERS, USERS = 80, 5


def flood(al, i, stop, refused, statuses, lock):
    mine, s, buf = [], None, b""
    try:
        while not stop.is_set():
            if s is None:
                s = socket.create_connection(("127.0.0.1", al.port), timeout=60, source_address=("127.0.0.1", 0))
                buf = b""
            s.sendall(client_req("agent", f"wrong{i}-{len(mine)}"))
            st, head, buf = read_response(s, buf)
            mine.append((st, "retry-after: 1" in head.lower()))
            if st == 503:
                refused.set()
                time.sleep(0.01)  # spares the shared machine's CPU; 80 connections keep the queue full
            if "connection: close" in head.lower():
                s.close()
                s = None
    finally:
        if s is not None:
            s.close()
        with lock:
            statuses.extend(mine)


def first_login(al, user):
    s = socket.create_connection(("127.0.0.1", al.port), timeout=60, source_address=("127.0.0.2", 0))
    try:
        s.sendall(client_req(user, f"{user}-pw", close=True))
        st, head, _ = read_response(s, b"")
        return st
    finally:
        s.close()


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(AUTHED, b"0123abcd  elastic-agent\n", headers=[("Cache-Control", "max-age=600")])
        users = ["agent"] + [f"user{i}" for i in range(USERS)]
        extra = "clients:\n  users:\n" + "".join(
            f'    - {{name: {u}, password_hash: "{hashed(u + "-pw")}"}}\n' for u in users)
        al = Airlock(tmp, up, extra=extra)
        al.stop()
        cfg = open(al.config).read().replace(
            "  - prefix: /downloads/\n    upstream: https://artifacts.elastic.co\n",
            "  - prefix: /downloads/\n    upstream: https://artifacts.elastic.co\n    auth: true\n", 1)
        if "auth: true" not in cfg:
            fail("the test's route was not found in the harness's configuration")
        open(al.config, "w").write(cfg)
        al.start()
        try:
            stop, refused, statuses, lock = threading.Event(), threading.Event(), [], threading.Lock()
            threads = [threading.Thread(target=flood, args=(al, i, stop, refused, statuses, lock)) for i in range(FLOODERS)]
            for t in threads:
                t.start()
            got = []
            try:
                # the flood under way: the queue found full at least once
                deadline = time.time() + 60
                while time.time() < deadline and not refused.is_set():
                    time.sleep(0.1)
                if not refused.is_set():
                    fail("the flood never found the queue full within 60 s")
                for u in users[1:]:
                    got.append((u, first_login(al, u)))
            finally:
                stop.set()
                for t in threads:
                    t.join(120)
            if any(t.is_alive() for t in threads):
                fail("the flood did not end")
            bad = [s for s in statuses if s[0] != 401 and s != (503, True)]
            if bad:
                fail(f"flood answers other than 401 or 503 with Retry-After: {bad[:5]}")
            wrong = sum(1 for s, _ in statuses if s == 401)
            busy = len(statuses) - wrong
            print(f"flood: {wrong} wrong passwords answered 401, {busy} 503; first logins from 127.0.0.2: {got}")
            eq(got, [(u, 200) for u in users[1:]], "first logins from another address during the flood")
            eq(up.count(AUTHED), 1, "the authenticated object fetched once")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
