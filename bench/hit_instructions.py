#!/usr/bin/env python3
"""Instructions per cache hit in airlock's own process (user space, valgrind's callgrind), for two
airlock binaries on one configuration: a count, not a time, so two builds can be compared on a busy
machine, where wall-clock figures are noise.  A benchmark, not a test.

  python3 bench/hit_instructions.py OLD/airlock NEW/airlock      # N=2000 hits of 1 KiB and 100 KiB
  TLS=1 python3 bench/hit_instructions.py OLD/airlock NEW/airlock   # the same over the HTTPS listener

Each binary runs under callgrind with one worker in front of a local origin; a run with N hits on
one keep-alive connection minus a run with none (start-up, the first miss) gives the cost of N hits.
The kernel's share of a hit (most of it: bench/README.md) is not counted.  With TLS=1 the hits
come over an HTTPS listener (an ECDSA P-256 certificate, TLS 1.3, one keep-alive connection: the
handshake is in both runs and cancels out), so OpenSSL's work per hit is counted too."""
import http.client, os, re, signal, socket, ssl, subprocess, sys, tempfile, threading, time, functools
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

TLS = os.environ.get("TLS", "") not in ("", "0")


def listen(tmp, port):
    if not TLS:
        return f'["127.0.0.1:{port}"]'
    key, crt = os.path.join(tmp, "tls.key"), os.path.join(tmp, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return f'[{{address: "127.0.0.1:{port}", tls: {{cert: "{crt}", key: "{key}"}}}}]'


def connection(port):
    if not TLS:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)


def run(binary, path, n):
    tmp = tempfile.mkdtemp(prefix="cg-")
    port = free_port()
    cfg = os.path.join(tmp, "airlock.yml")
    open(cfg, "w").write(f"""listen: {listen(tmp, port)}
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
            c = connection(port); c.request("GET", "/" + path)
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
        print(f"{label:44s} {path:6s} {(b - a) / N:10.0f} instructions per hit{' over TLS' if TLS else ''} (N={N})",
              flush=True)
