#!/usr/bin/env python3
"""Instructions per cache hit in airlock's own process (user space, valgrind's callgrind), for two
airlock binaries on one configuration: a count, not a time, so two builds can be compared on a busy
machine, where wall-clock figures are noise.  A benchmark, not a test.

  python3 bench/hit_instructions.py OLD/airlock NEW/airlock      # N=2000 hits of 1 KiB and 100 KiB

Each binary runs under callgrind with one worker in front of a local origin; a run with N hits on
one keep-alive connection minus a run with none (start-up, the first miss) gives the cost of N hits.
The kernel's share of a hit (most of it: bench/README.md) is not counted."""
import http.client, os, re, signal, socket, subprocess, sys, tempfile, threading, time, functools
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

root = tempfile.mkdtemp(prefix="cg-origin-")
for name, size in (("small", 1024), ("mid", 100 * 1024)):
    open(os.path.join(root, name), "wb").write(os.urandom(size))
class Q(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
origin = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Q, directory=root))
threading.Thread(target=origin.serve_forever, daemon=True).start()

def run(binary, path, n):
    tmp = tempfile.mkdtemp(prefix="cg-")
    port = free_port()
    cfg = os.path.join(tmp, "airlock.yml")
    open(cfg, "w").write(f"""listen: ["127.0.0.1:{port}"]
workers: 1
cache:
  path: {tmp}/cache
  max_size: 64MiB
  rules:
    - {{match: "*", ttl: 1h}}
routes:
  - prefix: /
    upstream: http://127.0.0.1:{origin.server_address[1]}
log:
  level: warn
""")
    out = os.path.join(tmp, "cg.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "serve",
                          "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); c.request("GET", "/" + path)
            r = c.getresponse(); r.read(); break
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.2)
    for _ in range(n):
        c.request("GET", "/" + path); r = c.getresponse(); b = r.read()
        assert r.status == 200 and "hit" in (r.getheader("Cache-Status") or ""), r.getheader("Cache-Status")
    c.close()
    p.send_signal(signal.SIGTERM); p.wait(timeout=120)
    total = 0
    for f in os.listdir(tmp):
        if f.startswith("cg.out"):
            for line in open(os.path.join(tmp, f)):
                m = re.match(r"summary: (\d+)", line) or re.match(r"totals: (\d+)", line)
                if m: total = max(total, int(m.group(1))) if line.startswith("totals") else total + int(m.group(1))
    return total

N = int(os.environ.get("N", 2000))
for label, binary in (("old " + sys.argv[1][-40:], sys.argv[1]), ("new " + sys.argv[2][-40:], sys.argv[2])):
    for path in ("small", "mid"):
        a = run(binary, path, 0); b = run(binary, path, N)
        print(f"{label:44s} {path:6s} {(b - a) / N:10.0f} instructions per hit (N={N})", flush=True)
