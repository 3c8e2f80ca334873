#!/usr/bin/env python3
"""Cache hits over TLS: airlock's HTTPS listener against nginx 1.22 with TLS and proxy_cache (issue 33).

One nginx origin serves 1 KiB, 100 KiB and 1 MiB files (bench/run.py's origin); in front of it,
every contestant caches them and answers hits:
  - airlock: one process with a plain listener and an HTTPS listener (AIRLOCK_BIN, build/airlock)
  - airlock-base: the same with another binary (AIRLOCK_BASE, optional: before/after on one machine)
  - nginx: TLS + proxy_cache tuned as its users tune it: worker_processes 2, keepalive_requests
    100000, ssl_session_cache shared, sendfile, tcp_nodelay, reuseport, ssl_protocols TLSv1.2 TLSv1.3
    (1.22's default stops at TLS 1.2; airlock's OpenSSL default goes to 1.3)
Both serve the same ECDSA P-256 certificate; the TLS version and cipher each one negotiates are
printed.  `wrk -t2 -c64` over keep-alive, DURATION seconds per run, ROUNDS interleaved rounds (every
contestant and size once per round), medians printed: req/s, CPU per hit counting the server and wrk
together (on loopback the kernel charges part of the sender's work to the receiver) and the server
alone (utime+stime from /proc/<pid>/stat of all its processes).  airlock's plain-HTTP figures are
printed beside them, to show the plain path lost nothing.  A benchmark, not a test; loopback only.

  python3 bench/tls.py
  AIRLOCK_BASE=/tmp/base/airlock ROUNDS=5 DURATION=5 SIZES=1,100,1024 python3 bench/tls.py
"""
import os
import re
import signal
import shutil
import ssl
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (run.py's origin, CPU accounting and process helpers)

AIRLOCK = R.AIRLOCK
BASE = os.environ.get("AIRLOCK_BASE", "")
SIZES = [int(x) for x in os.environ.get("SIZES", "1,100,1024").split(",")]  # KiB
DURATION = int(os.environ.get("DURATION", 5))
ROUNDS = int(os.environ.get("ROUNDS", 3))
ONLY = [p for p in os.environ.get("ONLY", "").split(",") if p]
PORTS = {"airlock": (19181, 19182), "airlock-base": (19183, 19184), "nginx": (None, 19185)}  # (plain, tls)


def name_of(kb):
    return f"/o{kb}k.bin"


def make_files(w):
    www = os.path.join(w, "www")
    os.makedirs(www)
    for kb in SIZES:
        with open(os.path.join(www, name_of(kb)[1:]), "wb") as f:
            f.write(os.urandom(kb * 1024))
    return www


def make_cert(w):
    """one ECDSA P-256 certificate for 127.0.0.1 and localhost, shared by every contestant"""
    key, crt = os.path.join(w, "tls.key"), os.path.join(w, "tls.crt")
    R.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    os.chmod(key, 0o600)
    return crt, key


def start_airlock(w, name, binary, crt, key):
    d = os.path.join(w, name)
    os.makedirs(d)
    plain, tls = PORTS[name]
    with open(os.path.join(d, "airlock.yml"), "w") as f:
        f.write(f"""listen: ["127.0.0.1:{plain}", {{address: "127.0.0.1:{tls}", tls: {{cert: "{crt}", key: "{key}"}}}}]
cache: {{path: {d}/cache, max_size: 1GiB, hot_memory: 32MiB}}
log: {{level: warn}}
routes:
  - {{prefix: /, upstream: "http://127.0.0.1:{R.PORTS['origin']}"}}
""")
    return [subprocess.Popen([binary, "serve", "--config", f"{d}/airlock.yml"], cwd=d,
                             stderr=open(f"{d}/log", "w"))]


def start_nginx(w, crt, key):
    d = os.path.join(w, "nginx")
    os.makedirs(d)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; worker_processes 2; pid {d}/nginx.pid; error_log {d}/err;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; tcp_nodelay on; keepalive_requests 100000;
  open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s;
  ssl_session_cache shared:SSL:10m; ssl_certificate {crt}; ssl_certificate_key {key};
  ssl_protocols TLSv1.2 TLSv1.3;
  proxy_cache_path {d}/cache levels=1:2 keys_zone=c:64m max_size=1g inactive=1h use_temp_path=off;
  upstream origin {{ server 127.0.0.1:{R.PORTS['origin']}; keepalive 32; }}
  server {{ listen 127.0.0.1:{PORTS['nginx'][1]} ssl reuseport;
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache c; proxy_cache_lock on; proxy_cache_valid 200 10m; proxy_max_temp_file_size 0; }} }} }}
""")
    return [subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d], stderr=subprocess.DEVNULL)]


def url(name, kb, scheme):
    plain, tls = PORTS[name]
    return f"{scheme}://127.0.0.1:{tls if scheme == 'https' else plain}{name_of(kb)}"


def warm(u):
    deadline = time.time() + 30
    while time.time() < deadline:
        r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", u], capture_output=True, text=True)
        if r.stdout == "200":
            subprocess.run(["curl", "-sk", "-o", "/dev/null", u], capture_output=True)
            return True
        time.sleep(0.2)
    return False


def negotiated(name):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", PORTS[name][1]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return f"{s.version()} {s.cipher()[0]}"


def wrk(u, pids):
    c0 = R.proc_cpu(pids)
    t = subprocess.run(["/usr/bin/time", "-f", "%U %S", "wrk", "-t2", "-c64", f"-d{DURATION}s", u],
                       capture_output=True, text=True)
    c1 = R.proc_cpu(pids)
    m = re.search(r"Requests/sec:\s+([\d.]+)", t.stdout)
    rps = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", t.stdout)
    reqs = int(m.group(1)) if m else 0
    if re.search(r"Non-2xx|Socket errors", t.stdout):
        print("  wrk: " + " ".join(ln.strip() for ln in t.stdout.splitlines() if "Non-2xx" in ln or "errors" in ln))
    wu, ws = (float(x) for x in t.stderr.strip().splitlines()[-1].split())
    return {"rps": rps, "cpu": (c1 - c0 + wu + ws) * 1e6 / reqs if reqs else 0.0,
            "own": (c1 - c0) * 1e6 / reqs if reqs else 0.0}


def main():
    R.install()
    w = tempfile.mkdtemp(prefix="airlock-tls-bench-", dir="/var/tmp")
    os.chmod(w, 0o755)
    www = make_files(w)
    crt, key = make_cert(w)
    origin = R.start_origin(w, www)
    running = {}
    runs = {}  # (name, scheme, kb) -> [results]
    seen = {}  # name -> negotiated TLS version and cipher
    try:
        if not R.wait_port(R.PORTS["origin"]) and not warm(f"http://127.0.0.1:{R.PORTS['origin']}{name_of(SIZES[0])}"):
            sys.exit("origin did not start")
        contestants = {"airlock": lambda: start_airlock(w, "airlock", AIRLOCK, crt, key),
                       "nginx": lambda: start_nginx(w, crt, key)}
        if BASE:
            contestants["airlock-base"] = lambda: start_airlock(w, "airlock-base", BASE, crt, key)
        for name, start in contestants.items():
            if ONLY and name not in ONLY:
                continue
            procs = start()
            schemes = ["https"] + (["http"] if PORTS[name][0] else [])
            if not all(warm(url(name, kb, s)) for kb in SIZES for s in schemes):
                print(f"{name}: did not start, skipped", flush=True)
                for p in procs:
                    p.kill()
                continue
            running[name] = (procs, schemes)
            seen[name] = negotiated(name)
            print(f"{name}: {seen[name]}", flush=True)
        if len(set(seen.values())) > 1:
            print("WARNING: the contestants negotiated different TLS versions or ciphers", flush=True)
        for rnd in range(ROUNDS):
            for kb in SIZES:
                for name, (procs, schemes) in running.items():
                    for s in schemes:
                        if any(p.poll() is not None for p in procs):
                            sys.exit(f"{name} died (exit {[p.poll() for p in procs]})")
                        r = wrk(url(name, kb, s), R.all_pids(procs))
                        runs.setdefault((name, s, kb), []).append(r)
                        print(f"round {rnd + 1}/{ROUNDS} {name:13s} {s:5s} {kb:5d} KiB: {r['rps']:8.0f} req/s "
                              f"{r['cpu']:7.1f} us/hit (+wrk), {r['own']:7.1f} us server", flush=True)
    finally:
        for procs, _ in running.values():
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        origin.send_signal(signal.SIGTERM)
        origin.wait(10)
    print(f"\nmedians of {ROUNDS} interleaved rounds, wrk -t2 -c64 -d{DURATION}s, keep-alive hits; "
          "[min-max] over rounds")
    print(f"{'':28}{'req/s':>26}{'CPU/hit us (+wrk)':>26}{'server alone us':>26}")
    ref = {}
    for (name, s, kb), rs in sorted(runs.items(), key=lambda x: (x[0][2], x[0][1], x[0][0] != "nginx", x[0][0])):
        cells = []
        for k in ("rps", "cpu", "own"):
            v = [r[k] for r in rs]
            med = statistics.median(v)
            cell = f"{med:.0f}" if k == "rps" else f"{med:.1f}"
            if name == "nginx":
                ref[(kb, k)] = med
            elif s == "https" and ref.get((kb, k)):
                cell += f" ({med / ref[(kb, k)]:.2f}x)"
            cells.append(f"{cell} [{min(v):.0f}-{max(v):.0f}]")
        print(f"{name + ' ' + s + ' ' + str(kb) + ' KiB':28}" + "".join(f"{c:>26}" for c in cells))
    print("ratios are to nginx over TLS at the same size")
    shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
