"""Out of open files is airlock's own limit, not an outage of the upstream.

libcurl reports a socket() that failed with EMFILE as CURLE_COULDNT_CONNECT,
the same as an upstream that refuses: a fill that could not get a socket
marked the upstream offline, and every request for anything not cached got
504 (upstream-offline) until a probe brought it back; with a thousand agents
at once on the default soft limit of 1024 (test_scale_fleet) the whole fleet
got 504 for the .asc.  Here airlock's soft open-files limit is lowered
(prlimit) to what it holds plus a few idle client connections, so the next
fill finds no socket:
- that request gets 503 with the reason, and the log says what to raise;
- the upstream stays online, no upstream request was made, no
  "upstream unreachable" line;
- once the idle connections are gone the same URL is fetched and served (200,
  the body) at once, by one upstream request."""
import os, resource, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, wait_for

P = "/downloads/beats/elastic-agent/elastic-agent-9.5.2-linux-x86_64.tar.gz"
BODY = os.urandom(64 * 1024)


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def state(al, host):
    for u in al.health()["upstreams"]:
        if u["upstream"] == host:
            return u
    fail(f"no upstream {host} in health")


def test():
    with Case() as (up, al, tmp):
        up.add(P, BODY, headers=[("ETag", '"a"')])
        up.add(P + ".sha512", b"", status=404)
        host = "https://artifacts.elastic.co"
        pid = al.proc.pid
        first = socket.create_connection(("127.0.0.1", al.port), timeout=10)
        wait_for(lambda: nfds(pid) >= 1, 5, "the first connection")
        time.sleep(0.3)   # accepted, and whatever airlock opens at start is open
        limit = nfds(pid) + 8
        was = resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]))
        idle = []
        for _ in range(8):
            idle.append(socket.create_connection(("127.0.0.1", al.port), timeout=10))
        wait_for(lambda: nfds(pid) >= limit, 10, f"airlock to hold {limit} files")
        first.sendall(f"GET {P} HTTP/1.1\r\nHost: airlock\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            b = first.recv(65536)
            if not b:
                break
            data += b
        first.close()
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        if not head.startswith("HTTP/1.1 503"):
            fail(f"with no file left for a socket: {head.splitlines()[:1]}, want 503\n{head}")
        eq(up.count(P), 0, "upstream requests made without a socket")
        for s in idle:
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, was)
        wait_for(lambda: nfds(pid) < limit - 4, 10, "airlock to close the idle connections")
        eq(state(al, host)["state"], "online", "the upstream, after airlock ran out of files")
        r = curl(al, P)
        eq((r.status, r.body == BODY), (200, True), "the same URL once files are free")
        eq(up.count(P), 1, "upstream requests")
        log = al.logtext(tail=None)
        if "upstream unreachable" in log:
            fail("a socket airlock could not open was logged as the upstream unreachable")
        if "no socket for the upstream: Too many open files" not in log:
            fail("the log does not say why the fill failed")


if __name__ == "__main__":
    main(test)
