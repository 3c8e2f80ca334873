"""Hostile clients: a slowloris head is cut off by client.header_timeout
however slowly it trickles (408); max_connections is enforced without
harming the clients already served; running out of file descriptors pauses
accepting instead of spinning, and airlock recovers."""
import os, resource, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main, wait_for

P = "/downloads/beats/auditbeat/auditbeat-8.13.4-linux-x86_64.tar.gz.asc"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(P, b"-----BEGIN PGP SIGNATURE-----", headers=[("ETag", '"a"')])
        al = Airlock(tmp, up, extra="client:\n  header_timeout: 2s\nmax_connections: 6\n")
        try:
            # slowloris: one byte every 300 ms never completes a head; cut off at ~2 s.
            s = socket.create_connection(("127.0.0.1", al.port), timeout=10)
            t0 = time.time()
            req = b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"a" * 100
            got = b""
            for b in req:
                try:
                    s.send(bytes([b]))
                except OSError:
                    break
                time.sleep(0.3)
                if time.time() - t0 > 6:
                    break
                s.setblocking(False)
                try:
                    got += s.recv(4096)
                except (BlockingIOError, OSError):
                    pass
                s.setblocking(True)
                if got:
                    break
            took = time.time() - t0
            s.close()
            if not got.startswith(b"HTTP/1.1 408"):
                fail(f"slowloris should get 408, got {got[:60]!r} after {took:.1f}s")
            if took > 3.5:
                fail(f"slowloris was cut off after {took:.1f}s; header_timeout is 2s")

            # max_connections: 6 in all; the seventh is closed at once, the others keep working.
            # First let the slowloris connection's lingering close finish: it still counts.
            wait_for(lambda: al.health()["clients"] <= 1, 5, "earlier connections to close")
            time.sleep(0.3)  # and the health check's own
            held = [socket.create_connection(("127.0.0.1", al.port), timeout=5) for _ in range(6)]
            time.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", al.port), timeout=5)
            extra.settimeout(3)
            try:
                closed = extra.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                closed = False
            extra.close()
            eq(closed, True, "the connection over max_connections is closed")
            held[0].sendall(f"GET {P} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
            resp = b""
            while True:
                b = held[0].recv(65536)
                if not b:
                    break
                resp += b
            if not resp.startswith(b"HTTP/1.1 200") or not resp.endswith(b"-----BEGIN PGP SIGNATURE-----"):
                fail(f"a held connection must still be served: {resp[:80]!r}")
            for h in held:
                h.close()
            time.sleep(0.3)
            eq(curl(al, P).status, 200, "served again after the held connections left")
        finally:
            al.stop()

        # File descriptors run out: accepting pauses (no busy loop), then recovers.
        al = Airlock(tmp, up)
        try:
            subprocess.run(["prlimit", f"--pid={al.proc.pid}", "--nofile=48:48"], check=True, timeout=10)
            socks = []
            for _ in range(80):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", al.port), timeout=2))
                except OSError:
                    break
            c0 = cpu_seconds(al.proc.pid)
            time.sleep(2)
            used = cpu_seconds(al.proc.pid) - c0
            if used > 0.5:
                fail(f"airlock burnt {used:.2f}s of CPU in 2s while out of descriptors: a busy loop")
            if "pausing accepts" not in al.logtext():
                fail("running out of descriptors should be logged")
            for s in socks:
                s.close()
            time.sleep(0.5)
            eq(curl(al, P).status, 200, "recovered after descriptors came back")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
