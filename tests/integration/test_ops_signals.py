"""SIGHUP applies a valid new configuration to new requests and refuses an
invalid one (the old stays); SIGTERM lets a large download in flight finish
within shutdown_timeout, refuses new connections, then exits."""
import os, signal, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, wait_for

BIG = os.urandom(3 * 1024 * 1024)
P = "/downloads/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"


def test():
    with Case() as (up, al, tmp):
        up.add("/extra/thing", b"via the new route", headers=[("Cache-Control", "max-age=60")])
        eq(curl(al, "/extra/thing").header("Cache-Status").startswith("airlock; fwd=miss"), True, "default route first")
        key = "https://epr.elastic.co/extra/thing"
        # A valid new configuration: a rule that makes /extra/* immutable and a new route prefix.
        cfg = open(al.config).read()
        good = cfg.replace("routes:\n", "routes:\n  - prefix: /extra/\n    upstream: https://artifacts.elastic.co\n")
        open(al.config, "w").write(good)
        al.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in al.logtext(), 5, "the reload")
        r = curl(al, "/extra/thing")
        eq(r.status, 200, "after reload")
        eq(r.header("Cache-Status").startswith("airlock; fwd=miss"), True, "new route: a new key, fetched")
        h = al.health()
        eq(any(u["upstream"] == "https://artifacts.elastic.co" for u in h["upstreams"]), True, "upstream known")
        # An invalid one: refused with its error, the old keeps serving.
        open(al.config, "w").write(good + "max_sise: 1\n")
        al.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in al.logtext(), 5, "the refusal")
        if "unknown key 'max_sise'" not in al.logtext():
            fail("the refusal should carry the error")
        eq(curl(al, "/extra/thing").header("Cache-Status").startswith("airlock; hit"), True, "still serving")
        open(al.config, "w").write(good)

        # SIGTERM during a large, slow download: it finishes, then airlock exits.
        up.add(P, BIG, headers=[("ETag", '"big"')], rate=1536 * 1024)
        got = {}

        def download():
            s = socket.create_connection(("127.0.0.1", al.port), timeout=20)
            s.sendall(f"GET {P} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            data = b""
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                data += b
                head, _, body = data.partition(b"\r\n\r\n")
                if len(body) >= len(BIG):
                    break
            got["data"] = data
            s.close()
        t = threading.Thread(target=download)
        t.start()
        wait_for(lambda: up.count(P) == 1, 5, "the download to start")
        time.sleep(0.3)
        t0 = time.time()
        al.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            socket.create_connection(("127.0.0.1", al.port), timeout=1).close()
            fail("new connections must be refused while draining")
        except OSError:
            pass
        t.join(15)
        al.proc.wait(15)
        took = time.time() - t0
        head, _, body = got["data"].partition(b"\r\n\r\n")
        eq(body, BIG, "the download in flight finished complete")
        if took > 10:
            fail(f"drain took {took:.1f}s, bound is shutdown_timeout (30s default) but it should end with the download")
        eq(al.proc.returncode, 0, "clean exit")


if __name__ == "__main__":
    main(test)
