"""A tier of three airlocks behind HAProxy (issue 16), with dist/haproxy.cfg
as shipped (only the addresses changed): consistent hashing of the URI, so
each URL is fetched and cached once in the tier.

- 30 clients at once on one cold URL: exactly one upstream fetch;
- 20 distinct URLs, asked twice: 20 upstream fetches, each URL always served
  by the same node (Cache-Status carries each node's name);
- kill -9 one node: HAProxy marks it down within its check interval
  (inter 1s, fall 2) and at least 99% of the requests of the next 10 s
  succeed (redispatch to the next node of the ring);
- restart it: its cache is intact and its URLs are hits there again."""
import os, re, signal, socket, subprocess, sys, tempfile, threading, time
import http.client
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, FakeUpstream, Pki, eq, fail, free_port, main, wait_for

DIST = os.path.join(os.path.dirname(__file__), "..", "..", "dist", "haproxy.cfg")


def get(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, r.getheader("Cache-Status") or "", body
    finally:
        c.close()


def node_of(cache_status):
    """The node that answered: the last Cache-Status entry is the cache nearest the client."""
    return cache_status.split(",")[-1].split(";")[0].strip()


def server_state(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    states = {}
    for line in out.decode().splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "airlocks" and f[1].startswith("airlock"):
            states[f[1]] = f[17]
    return states


def test():
    tmp = tempfile.mkdtemp(prefix="airlock-tier-")
    up = FakeUpstream(Pki(tmp))
    nodes, hap = [], None
    try:
        for i in range(3):
            d = os.path.join(tmp, f"node{i + 1}")
            os.makedirs(d)
            al = Airlock(d, up, workers=1)
            al.stop()
            cfg = open(al.config).read().replace("listen:", f"name: airlock{i + 1}\nlisten:", 1)
            open(al.config, "w").write(cfg)
            al.start()
            nodes.append(al)
        for i in range(20):
            up.add(f"/downloads/beats/filebeat/filebeat-8.13.{i}-linux-x86_64.tar.gz.asc", f"asc {i}\n",
                   headers=[("ETag", f'"a{i}"')])
        stampede = os.urandom(3 * 1024 * 1024)
        up.add("/downloads/cold/stampede.bin", stampede, headers=[("ETag", '"cold"')],
               rate=6 * 1024 * 1024)

        port = free_port()
        sock = os.path.join(tmp, "haproxy.sock")
        text = open(DIST).read()
        for i, al in enumerate(nodes):
            text = text.replace(f"10.0.0.1{i + 1}:8080", f"127.0.0.1:{al.port}")
        text = text.replace("bind :8080", f"bind 127.0.0.1:{port}")
        text = text.replace("global\n", f"global\n    stats socket {sock} level admin\n", 1)
        hcfg = os.path.join(tmp, "haproxy.cfg")
        open(hcfg, "w").write(text)
        p = subprocess.run(["haproxy", "-c", "-f", hcfg], capture_output=True, text=True, timeout=20)
        eq(p.returncode, 0, f"haproxy -c: {p.stdout}{p.stderr}")
        hap = subprocess.Popen(["haproxy", "-f", hcfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(sock) and set(server_state(sock).values()) == {"UP"}, 10,
                 "HAProxy to see three healthy nodes")

        # 30 clients at once on one cold URL: one upstream fetch in the whole tier.
        results = []
        def client():
            results.append(get(port, "/downloads/cold/stampede.bin", timeout=30))
        ts = [threading.Thread(target=client) for _ in range(30)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        eq(sorted(r[0] for r in results), [200] * 30, "every client of the stampede got the object")
        for i, r in enumerate(results):
            if r[2] != stampede:  # not eq(): a 3 MiB repr helps nobody
                fail(f"client {i} of the stampede got {len(r[2])} bytes that are not the object's")
        eq(up.count("/downloads/cold/stampede.bin"), 1, "one upstream fetch for 30 clients")

        # 20 distinct URLs, twice each: 20 upstream fetches, one node per URL.
        owner = {}
        for rnd in range(2):
            for i in range(20):
                path = f"/downloads/beats/filebeat/filebeat-8.13.{i}-linux-x86_64.tar.gz.asc"
                st, cs, body = get(port, path)
                eq((st, body), (200, f"asc {i}\n".encode()), path)
                n = node_of(cs)
                if owner.setdefault(path, n) != n:
                    fail(f"{path} was served by {owner[path]} and then by {n}")
                if rnd == 1 and "hit" not in cs:
                    fail(f"{path}: the second request should be a hit on its node: {cs}")
        eq(sum(up.count(p) for p in owner), 20, "20 upstream fetches for 20 URLs")
        used = set(owner.values())
        if len(used) < 2:
            fail(f"consistent hashing should spread 20 URLs over the nodes: {owner}")

        # kill -9 the node that owns the most URLs: marked down within its check interval.
        victim_name = max(used, key=lambda n: list(owner.values()).count(n))
        victim = nodes[int(victim_name[-1]) - 1]
        t0 = time.time()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        ok = total = 0
        marked = None
        deadline = t0 + 10
        paths = list(owner)
        while time.time() < deadline:
            if marked is None and server_state(sock).get(victim_name) == "DOWN":
                marked = time.time() - t0
            st, cs, body = get(port, paths[total % len(paths)])
            total += 1
            ok += st == 200
        if marked is None or marked > 3.5:
            fail(f"HAProxy should mark the dead node down within inter 1s x fall 2 (+slack): {marked}")
        if ok < 0.99 * total:
            fail(f"only {ok} of {total} requests succeeded in the 10 s after the node died")

        # Restart it: its cache is intact, its URLs are hits there again.
        victim.logf.close()
        victim.start()
        wait_for(lambda: server_state(sock).get(victim_name) == "UP", 10, "the node to come back")
        before = sum(up.count(p) for p in paths)
        for path, n in owner.items():
            if n != victim_name:
                continue
            st, cs, body = get(port, path)
            eq(st, 200, path)
            if node_of(cs) != victim_name or "hit" not in cs:
                fail(f"{path} should be a hit on {victim_name} again: {cs}")
        eq(sum(up.count(p) for p in paths), before, "no upstream fetch after the restart")
    finally:
        if hap is not None:
            hap.kill()
            hap.wait()
        for al in nodes:
            al.stop(strict=False)
        up.stop()


if __name__ == "__main__":
    main(test)
