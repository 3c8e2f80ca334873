#!/usr/bin/env python3
"""Cache hits inside an intercepted CONNECT (Kibana's registryProxyUrl, the agents' proxy_url: TLS
on both sides), CPU per hit for airlock and, optionally, a second binary in the same rounds
(issue 33: bench/tls.py measures the HTTPS listener; wrk cannot send a CONNECT).

An nginx origin serves 1 KiB, 100 KiB and 1 MiB files over TLS as https://bench.test (a self-signed
ECDSA P-256 certificate, which airlock's upstream.ca_file trusts; upstream.resolve points
bench.test:443 at it).  airlock intercepts bench.test (forward: mode intercept, its CA made by
`airlock ca init`).  The client is curl: `--parallel --parallel-max 8 -x http://airlock`, N
requests (at 1 KiB; fewer for larger files) for one URL from a -K file, so 8 tunnels each carry
N/8 keep-alive hits (TLS 1.3 inside, airlock's minted certificate verified against its CA).
CPU per hit is airlock's own
(utime+stime from /proc, all its threads), medians over ROUNDS interleaved rounds, [min-max];
curl's CPU is not counted (it is most of the machine's work here).  A benchmark, not a test;
loopback only.

  python3 bench/connect.py
  AIRLOCK_BASE=/tmp/base/airlock ROUNDS=5 N=40000 python3 bench/connect.py
"""
import os
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (CPU accounting, process helpers, install)

AIRLOCK = R.AIRLOCK
BASE = os.environ.get("AIRLOCK_BASE", "")
SIZES = [int(x) for x in os.environ.get("SIZES", "1,100,1024").split(",")]  # KiB
N = int(os.environ.get("N", 30000))
ROUNDS = int(os.environ.get("ROUNDS", 3))
PAR = int(os.environ.get("PAR", 8))
ORIGIN = 19190
PORTS = {"airlock": 19191, "airlock-base": 19192}
HOST = "bench.test"


def start_origin(w, www):
    key, crt = os.path.join(w, "origin.key"), os.path.join(w, "origin.crt")
    R.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}")
    conf = os.path.join(w, "origin.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {w}/origin.pid; error_log {w}/origin.err;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; etag on; expires 1h; default_type application/octet-stream;
  server {{ listen 127.0.0.1:{ORIGIN} ssl; ssl_certificate {crt}; ssl_certificate_key {key}; root {www}; }} }}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", w], stderr=subprocess.DEVNULL), crt


def start_airlock(w, name, binary, origin_crt):
    d = os.path.join(w, name)
    os.makedirs(d)
    R.sh(binary, "ca", "init", f"{d}/ca")
    with open(os.path.join(d, "airlock.yml"), "w") as f:
        f.write(f"""listen: ["127.0.0.1:{PORTS[name]}"]
cache: {{path: {d}/cache, max_size: 1GiB, hot_memory: 32MiB}}
log: {{level: warn}}
routes:
  - {{prefix: /, upstream: "https://{HOST}"}}
upstream:
  ca_file: {origin_crt}
  resolve:
    "{HOST}:443": "127.0.0.1:{ORIGIN}"
forward:
  ca_cert: {d}/ca/ca.crt
  ca_key: {d}/ca/ca.key
  allow:
    - {{host: {HOST}, mode: intercept}}
""")
    return subprocess.Popen([binary, "serve", "--config", f"{d}/airlock.yml"], cwd=d,
                            stderr=open(f"{d}/log", "w")), f"{d}/ca/ca.crt"


def hits(kb):
    """N at 1 KiB, fewer for larger files (at least 2000: CPU time is counted in 10 ms ticks)"""
    return max(2000, N * 10 // max(10, kb))


def curl(name, ca, kb, n, w):
    k = os.path.join(w, f"urls-{kb}-{n}")
    if not os.path.exists(k):
        with open(k, "w") as f:
            f.write(f'url = "https://{HOST}/o{kb}k.bin"\noutput = "/dev/null"\n' * n)
    r = subprocess.run(["curl", "-sS", "--fail", "--parallel", "--parallel-max", str(PAR), "-x",
                        f"http://127.0.0.1:{PORTS[name]}", "--cacert", ca, "-K", k,
                        "-w", "%{http_code} %{num_connects}\n"], capture_output=True, text=True, timeout=600)
    codes = r.stdout.split()
    ok = sum(1 for c in codes[0::2] if c == "200")
    if r.returncode != 0 or ok != n:
        sys.exit(f"{name}: curl exit {r.returncode}, {ok}/{n} answered 200: {r.stderr[-500:]}")
    return sum(int(c) for c in codes[1::2])


def main():
    R.install()
    w = tempfile.mkdtemp(prefix="airlock-connect-bench-", dir="/var/tmp")
    os.chmod(w, 0o755)
    www = os.path.join(w, "www")
    os.makedirs(www)
    for kb in SIZES:
        with open(os.path.join(www, f"o{kb}k.bin"), "wb") as f:
            f.write(os.urandom(kb * 1024))
    origin, origin_crt = start_origin(w, www)
    running, runs = {}, {}
    try:
        time.sleep(0.5)
        bins = {"airlock": AIRLOCK}
        if BASE:
            bins["airlock-base"] = BASE
        for name, b in bins.items():
            p, ca = start_airlock(w, name, b, origin_crt)
            running[name] = (p, ca)
            for _ in range(100):
                try:
                    for kb in SIZES:
                        curl(name, ca, kb, 2, w)  # the miss, then a hit
                    break
                except SystemExit:
                    time.sleep(0.2)
            else:
                sys.exit(f"{name} did not answer through CONNECT")
        for rnd in range(ROUNDS):
            for kb in SIZES:
                for name, (p, ca) in running.items():
                    if p.poll() is not None:
                        sys.exit(f"{name} died (exit {p.poll()})")
                    pids = R.all_pids([p])
                    c0, t0 = R.proc_cpu(pids), time.time()
                    conns = curl(name, ca, kb, hits(kb), w)
                    c1, t1 = R.proc_cpu(pids), time.time()
                    r = {"own": (c1 - c0) * 1e6 / hits(kb), "rps": hits(kb) / (t1 - t0)}
                    runs.setdefault((name, kb), []).append(r)
                    print(f"round {rnd + 1}/{ROUNDS} {name:13s} {kb:5d} KiB: {r['rps']:8.0f} req/s "
                          f"{r['own']:7.1f} us server CPU per hit ({conns} tunnels)", flush=True)
    finally:
        for p, _ in running.values():
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        origin.send_signal(signal.SIGTERM)
        origin.wait(10)
    print(f"\nmedians of {ROUNDS} interleaved rounds, {N} hits per run (fewer for larger files: hits()) "
          f"over {PAR} intercepted CONNECTs (curl --parallel); [min-max] over rounds")
    for (name, kb), rs in sorted(runs.items(), key=lambda x: (x[0][1], x[0][0])):
        own = [r["own"] for r in rs]
        rps = [r["rps"] for r in rs]
        print(f"{name:13s} {kb:5d} KiB: server CPU/hit {statistics.median(own):7.1f} us "
              f"[{min(own):.1f}-{max(own):.1f}], {statistics.median(rps):7.0f} req/s (curl-bound)")
    shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
