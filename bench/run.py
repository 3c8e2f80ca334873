#!/usr/bin/env python3
"""airlock against nginx proxy_cache, Varnish and Squid, in one run, on this machine.

Starts an nginx origin serving static files with ETags, then every proxy at
once as a caching reverse proxy in front of it, and measures them in
interleaved rounds (ROUNDS, each proxy once per round; medians printed):
  - small-object hits (SMALL_KB): requests/s and p99 with wrk -t2 -c64, and
    CPU per hit counting the proxy's and the client's (wrk's) CPU together:
    on loopback the kernel charges part of the sender's TCP work to the
    receiver, so the proxy's own share alone misleads
  - large-object hits (LARGE_MB): MB/s for one client and for 4 in parallel
  - a cold stampede: STAMPEDE clients released together by a barrier (threads
    on connected sockets, so process start-up is not measured) on an uncached
    LARGE_MB object, the origin rate-limited: upstream requests the origin
    saw, median and maximum time to the first byte, total time
  - RSS of each proxy after its runs
"airlock-nohot" is airlock with cache.hot_memory: 0 (hits sent by writev from
LMDB's map instead of sendfile from hot memory), small hits only.
As the ceiling of what this machine and client allow, "static": nginx
serving the same files from disk with sendfile and open_file_cache, no proxy
at all (hits and large objects only).  No proxy can beat it by much: on two
shared cores wrk's own CPU is over half of every hit.
nginx is tuned as a fair peer: worker_processes 2, sendfile, tcp_nodelay,
keepalive_requests 100000, reuseport, proxy_cache_lock (its defaults, e.g.
keepalive_requests 1000, would flatter airlock).  Not a test: nothing here
passes or fails.  Everything listens on 127.0.0.1 only.

  python3 bench/run.py            # installs nginx, varnish, squid, wrk if missing
  SMALL_KB=100 LARGE_MB=128 STAMPEDE=30 ROUNDS=3 DURATION=8 ORIGIN_RATE=200m ONLY=airlock,nginx,varnish python3 bench/run.py
  STAMPEDE=1000 STAMPEDE_CLIENTS=go LARGE_MB=16 ONLY=airlock,nginx,varnish python3 bench/run.py   # a thousand agents
"""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import concurrent.futures as cf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRLOCK = os.environ.get("AIRLOCK_BIN", os.path.join(ROOT, "build", "airlock"))
SMALL_KB = int(os.environ.get("SMALL_KB", 100))
LARGE_MB = int(os.environ.get("LARGE_MB", 512))
STAMPEDE = int(os.environ.get("STAMPEDE", 50))
DURATION = int(os.environ.get("DURATION", 10))
ORIGIN_RATE = os.environ.get("ORIGIN_RATE", "200m")   # nginx limit_rate for the stampede file
ONLY = [p for p in os.environ.get("ONLY", "").split(",") if p]
ROUNDS = int(os.environ.get("ROUNDS", 3))
# processes (one per client, scheduled by the kernel, like separate agents), threads (one
# interpreter: the GIL decides who records its first byte, which adds its own tail) or go
# (bench/stampede.go: goroutines of one process, for hundreds or thousands of clients)
STAMPEDE_CLIENTS = os.environ.get("STAMPEDE_CLIENTS", "processes")
# stampedes per round: a run's maximum swings several-fold between runs on two shared cores,
# so the table gives the median over ROUNDS x STAMPEDE_REPEAT runs of each run's median and maximum
STAMPEDE_REPEAT = int(os.environ.get("STAMPEDE_REPEAT", 2))
CACHE_MB = LARGE_MB * (3 + ROUNDS * STAMPEDE_REPEAT) + 512  # every stampede object fits: no eviction mid-run
PORTS = {"origin": 19080, "airlock": 19081, "nginx": 19082, "varnish": 19083, "squid": 19084, "static": 19085,
         "airlock-nohot": 19086}


def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw)


def install():
    need = [p for p, b in (("nginx-light", "nginx"), ("varnish", "varnishd"), ("squid", "squid"),
                            ("wrk", "wrk"), ("curl", "curl")) if shutil.which(b) is None
            and not os.path.exists(f"/usr/sbin/{b}")]
    if need:
        print("installing", " ".join(need), flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *need], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    for svc in ("nginx", "varnish", "squid"):  # the packages start system services; we run our own
        subprocess.run(["systemctl", "stop", svc], capture_output=True)
    if not os.path.exists(AIRLOCK):
        subprocess.run(["cmake", "-S", ROOT, "-B", os.path.join(ROOT, "build")], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", os.path.join(ROOT, "build"), "-j"], check=True)


def files(w):
    www = os.path.join(w, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small.json"), "wb") as f:
        f.write(b"[" + b",".join(b'{"name":"pkg%d","version":"1.0.%d"}' % (i, i) for i in range(SMALL_KB * 30))[:SMALL_KB * 1024 - 2] + b"]")
    for name in ("large.bin", "stampede.bin"):
        subprocess.run(["dd", "if=/dev/urandom", f"of={www}/{name}", "bs=1M", f"count={LARGE_MB}"],
                       check=True, capture_output=True)
    return www


def start_origin(w, www):
    conf = os.path.join(w, "origin.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {w}/origin.pid; error_log {w}/origin.err;
events {{ worker_connections 4096; }}
http {{ access_log {w}/origin.access; sendfile on; etag on; expires 1h; default_type application/octet-stream;
  server {{ listen 127.0.0.1:{PORTS['origin']}; root {www};
    location = /stampede.bin {{ limit_rate {ORIGIN_RATE}; }} }} }}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", w], stderr=subprocess.DEVNULL)


def start_airlock(w, name="airlock", hot="32MiB"):
    d = os.path.join(w, name)
    os.makedirs(d)
    with open(os.path.join(d, "airlock.yml"), "w") as f:
        f.write(f"""listen: ["127.0.0.1:{PORTS[name]}"]
cache: {{path: {d}/cache, max_size: {CACHE_MB}MiB, hot_memory: {hot}}}
log: {{level: warn}}
routes:
  - {{prefix: /, upstream: "http://127.0.0.1:{PORTS['origin']}"}}
""")
    return [subprocess.Popen([AIRLOCK, "serve", "--config", f"{d}/airlock.yml"], cwd=d,
                             stderr=open(f"{d}/log", "w"))]


def start_nginx(w):
    d = os.path.join(w, "nginx")
    os.makedirs(d)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; worker_processes 2; pid {d}/nginx.pid; error_log {d}/err;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; tcp_nodelay on; keepalive_requests 100000;
  open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s;
  proxy_cache_path {d}/cache levels=1:2 keys_zone=c:64m max_size={CACHE_MB}m inactive=1h use_temp_path=off;
  upstream origin {{ server 127.0.0.1:{PORTS['origin']}; keepalive 32; }}
  server {{ listen 127.0.0.1:{PORTS['nginx']} reuseport;
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache c; proxy_cache_lock on; proxy_cache_valid 200 10m; proxy_max_temp_file_size 0;
      proxy_cache_lock_timeout 60s; proxy_cache_lock_age 60s; }} }} }}
""")
    return [subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d], stderr=subprocess.DEVNULL)]


def start_static(w, www):
    """the ceiling: nginx serving the files itself, as cheaply as it can (no proxy, no cache logic)"""
    d = os.path.join(w, "static")
    os.makedirs(d)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; worker_processes 2; pid {d}/nginx.pid; error_log {d}/err;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; tcp_nodelay on; keepalive_requests 100000; etag on;
  open_file_cache max=64; default_type application/octet-stream;
  server {{ listen 127.0.0.1:{PORTS['static']} reuseport; root {www}; }} }}
""")
    return [subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d], stderr=subprocess.DEVNULL)]


def start_varnish(w):
    d = os.path.join(w, "varnish")
    os.makedirs(d)
    return [subprocess.Popen(["varnishd", "-F", "-a", f"127.0.0.1:{PORTS['varnish']}", "-b",
                              f"127.0.0.1:{PORTS['origin']}", "-n", d, "-s", f"file,{d}/storage.bin,{CACHE_MB}M",
                              "-p", "default_ttl=600",
                              # a thread per connection: threads for the whole stampede made in advance
                              # (2 pools, 100 each by default; docs.varnish-software.com/book/operations/
                              # tuning-varnish, "Threading settings": thread_pool_min tunes it)
                              "-p", f"thread_pool_min={max(100, STAMPEDE // 2 + 50)}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def start_squid(w):
    d = os.path.join(w, "squid")
    os.makedirs(os.path.join(d, "cache"))
    shutil.chown(d, "proxy", "proxy")
    shutil.chown(os.path.join(d, "cache"), "proxy", "proxy")
    conf = os.path.join(d, "squid.conf")
    with open(conf, "w") as f:
        f.write(f"""http_port 127.0.0.1:{PORTS['squid']} accel defaultsite=origin no-vhost
cache_peer 127.0.0.1 parent {PORTS['origin']} 0 no-query originserver name=origin
http_access allow all
cache_peer_access origin allow all
cache_dir ufs {d}/cache {CACHE_MB} 16 256
maximum_object_size {LARGE_MB + 16} MB
cache_mem 64 MB
collapsed_forwarding on
pid_filename {d}/squid.pid
access_log none
cache_log {d}/cache.log
coredump_dir {d}
workers 1
""")
    subprocess.run(["squid", "-z", "-N", "-f", conf], capture_output=True, timeout=60)
    return [subprocess.Popen(["squid", "-N", "-f", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/small.json"],
                           capture_output=True, text=True)
        if r.stdout == "200":
            return True
        time.sleep(0.2)
    return False


def rss_mb(procs, field="VmRSS"):
    pids = set()
    for p in procs:
        pids.add(p.pid)
        out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        pids.update(int(x) for x in out)
        for c in list(out):  # grandchildren (varnish child of manager)
            pids.update(int(x) for x in subprocess.run(["pgrep", "-P", c], capture_output=True, text=True).stdout.split())
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(field + r":\s+(\d+) kB", f.read())
                total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024


def origin_count(w, path):
    try:
        with open(os.path.join(w, "origin.access")) as f:
            return sum(1 for line in f if f"GET {path} " in line)
    except OSError:
        return 0


def curl_get(url):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
                        url], capture_output=True, text=True, timeout=600)
    code, ttfb, total, size = r.stdout.split()
    return int(code), float(ttfb), float(total), int(size)


def proc_cpu(pids):
    """user+system seconds of these processes (threads included)"""
    t = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t / os.sysconf("SC_CLK_TCK")


def all_pids(procs):
    pids = set()
    for p in procs:
        pids.add(p.pid)
        for c in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split():
            pids.add(int(c))
            pids.update(int(x) for x in subprocess.run(["pgrep", "-P", c], capture_output=True, text=True).stdout.split())
    return pids


def stampede_client(port, path, bar, q):
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    bar.wait()
    t0 = time.perf_counter()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n".encode())
    first = s.recv(65536)
    t1 = time.perf_counter()
    data = len(first)
    head_len = first.find(b"\r\n\r\n") + 4 if b"\r\n\r\n" in first else 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += len(b)
    s.close()
    q.put((t1 - t0, data - head_len, time.perf_counter() - t0))


def go_stampede_binary(w):
    """bench/stampede.go built into the work directory (Debian's golang-go, standard library only)."""
    out = os.path.join(w, "stampede")
    if not os.path.exists(out):
        env = dict(os.environ, GOCACHE=os.path.join(w, "gocache"), GOPATH=os.path.join(w, "gopath"),
                   GO111MODULE="off", CGO_ENABLED="0")
        subprocess.run(["go", "build", "-o", out, os.path.join(ROOT, "bench", "stampede.go")], check=True, env=env)
    return out


def stampede(port, path, w):
    """STAMPEDE clients on connected sockets, released at once; [(first byte s, bytes, total s)]"""
    if STAMPEDE_CLIENTS == "go":
        p = subprocess.run([go_stampede_binary(w), f"127.0.0.1:{port}", path, str(STAMPEDE)],
                           capture_output=True, text=True, timeout=900)
        return [(float(a), int(b), float(c)) for a, b, c in (ln.split() for ln in p.stdout.splitlines())]
    if STAMPEDE_CLIENTS == "processes":
        import multiprocessing as mp
        bar, q = mp.Barrier(STAMPEDE), mp.Queue()
        ps = [mp.Process(target=stampede_client, args=(port, path, bar, q)) for _ in range(STAMPEDE)]
        for p in ps:
            p.start()
        out = [q.get() for _ in ps]
        for p in ps:
            p.join()
        return out
    import queue
    bar, q = threading.Barrier(STAMPEDE), queue.Queue()
    ts = [threading.Thread(target=stampede_client, args=(port, path, bar, q)) for _ in range(STAMPEDE)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return [q.get() for _ in ts]


def measure(name, port, w, procs, rnd):
    base = f"http://127.0.0.1:{port}"
    res = {}
    if rnd == 0:  # warm
        for p in ("/small.json", "/large.bin"):
            for _ in range(2):
                curl_get(base + p)
    pids = all_pids(procs)
    c0 = proc_cpu(pids)
    t = subprocess.run(["/usr/bin/time", "-f", "%U %S", "wrk", "-t2", "-c64", f"-d{DURATION}s", "--latency",
                        base + "/small.json"], capture_output=True, text=True)
    c1 = proc_cpu(pids)
    out = t.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["small_rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    res["small_p99_ms"] = (float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    reqs = int(m.group(1)) if m else 0
    wu, ws = (float(x) for x in t.stderr.strip().splitlines()[-1].split())
    res["small_cpu_us"] = (c1 - c0 + wu + ws) * 1e6 / reqs if reqs else 0.0
    res["small_proxy_cpu_us"] = (c1 - c0) * 1e6 / reqs if reqs else 0.0
    if name == "airlock-nohot":  # hot memory only takes 32 KiB-1 MiB hits: the rest is airlock's
        return res
    code, ttfb, total, size = curl_get(base + "/large.bin")
    res["large1_mbs"] = size / 1048576 / total if total else 0
    t0 = time.time()
    with cf.ThreadPoolExecutor(4) as ex:
        sizes = [r[3] for r in ex.map(lambda _: curl_get(base + "/large.bin"), range(4))]
    res["large4_mbs"] = sum(sizes) / 1048576 / (time.time() - t0)
    if name == "static":  # a file server has no stampede: nothing to collapse
        return res
    meds, maxes, totals, cpus, ups, oks = [], [], [], [], [], []
    for k in range(STAMPEDE_REPEAT):
        path = f"/stampede.bin?round={rnd}-{k}"
        before = origin_count(w, path)
        c0 = proc_cpu(pids)
        t0 = time.time()
        rs = stampede(port, path, w)
        totals.append(time.time() - t0)
        cpus.append(proc_cpu(pids) - c0)
        ups.append(origin_count(w, path) - before)
        meds.append(statistics.median(r[0] for r in rs) * 1000)
        maxes.append(max(r[0] for r in rs) * 1000)
        oks.append(sum(1 for r in rs if r[1] == LARGE_MB * 1048576))
        res.setdefault("stampede_runs", []).append((meds[-1], maxes[-1]))
    res["stampede_total_s"] = statistics.median(totals)
    res["stampede_cpu_s"] = statistics.median(cpus)
    res["stampede_upstream"] = max(ups)
    res["stampede_ttfb_ms"] = statistics.median(meds)
    res["stampede_ttfb_max_ms"] = statistics.median(maxes)
    res["stampede_ok"] = min(oks)
    return res


def main():
    if os.geteuid() != 0:
        sys.exit("run as root (it installs packages and runs squid as the proxy user)")
    install()
    w = tempfile.mkdtemp(prefix="airlock-bench-", dir="/var/tmp")
    os.chmod(w, 0o755)
    print(f"work dir {w}; {os.cpu_count()} cores; small {SMALL_KB} KiB, large {LARGE_MB} MiB, "
          f"stampede {STAMPEDE} clients, origin rate {ORIGIN_RATE}/s for the stampede", flush=True)
    www = files(w)
    origin = start_origin(w, www)
    results = {}
    starters = {"airlock": start_airlock, "airlock-nohot": lambda w: start_airlock(w, "airlock-nohot", "0"),
                "nginx": start_nginx, "varnish": start_varnish, "squid": start_squid,
                "static": lambda w: start_static(w, www)}
    running = {}
    rounds = {}
    try:
        if not wait_port(PORTS["origin"]):
            sys.exit("origin did not start")
        for name, start in starters.items():
            if ONLY and name not in ONLY:
                continue
            procs = start(w)
            if not wait_port(PORTS[name]):
                print(f"{name}: did not start, skipped", flush=True)
                for p in procs:
                    p.kill()
                continue
            running[name] = procs
        for rnd in range(ROUNDS):  # interleaved: every proxy once per round
            for name, procs in running.items():
                print(f"round {rnd + 1}/{ROUNDS}: {name} ...", flush=True)
                rounds.setdefault(name, []).append(measure(name, PORTS[name], w, procs, rnd))
        for name, procs in running.items():
            results[name] = {k: statistics.median(r[k] for r in rounds[name]) for k in rounds[name][0]
                             if k != "stampede_runs"}
            # the 100 KiB state is bistable (bench/README.md): every round's figure, not only the median
            print(f"{name} small hits per round (req/s): " + " ".join(f"{r['small_rps']:.0f}" for r in rounds[name]),
                  flush=True)
            runs = [x for r in rounds[name] for x in r.get("stampede_runs", [])]
            if runs:  # every run counts, not a median of round medians
                results[name]["stampede_ttfb_ms"] = statistics.median(m for m, _ in runs)
                results[name]["stampede_ttfb_max_ms"] = statistics.median(x for _, x in runs)
                results[name]["stampede_ttfb_worst_ms"] = max(x for _, x in runs)
                print(f"{name} stampede runs (median/max first byte ms): "
                      + " ".join(f"{m:.1f}/{x:.1f}" for m, x in runs), flush=True)
            results[name]["rss_mb"] = rss_mb(procs)
            results[name]["anon_mb"] = rss_mb(procs, "RssAnon")
    finally:
        for name, procs in running.items():
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            subprocess.run(["pkill", "-f", f"{w}/{name}"], capture_output=True)
        origin.send_signal(signal.SIGTERM)
        origin.wait(10)
    ref = results.get("nginx")
    cols = [("small_rps", "small hits req/s", "{:.0f}"), ("small_p99_ms", "small p99 ms", "{:.2f}"),
            ("small_cpu_us", "small CPU/hit us (+client)", "{:.1f}"), ("small_proxy_cpu_us", "  proxy's own share us", "{:.1f}"),
            ("large1_mbs", "large 1 client MB/s", "{:.0f}"), ("large4_mbs", "large 4 clients MB/s", "{:.0f}"),
            ("stampede_upstream", "stampede upstream reqs", "{:.0f}"), ("stampede_ttfb_ms", "stampede median TTFB ms", "{:.1f}"),
            ("stampede_ttfb_max_ms", "stampede max TTFB ms (median)", "{:.1f}"),
            ("stampede_ttfb_worst_ms", "  worst max of all rounds", "{:.1f}"),
            ("stampede_cpu_s", "stampede proxy CPU s", "{:.2f}"),
            ("stampede_total_s", "stampede total s", "{:.1f}"), ("stampede_ok", "stampede complete bodies", "{:.0f}"),
            ("rss_mb", "RSS MB after", "{:.0f}"), ("anon_mb", "  of which anonymous MB", "{:.0f}")]
    print()
    print(f"{'':28}" + "".join(f"{n:>20}" for n in results))
    for key, label, fmt in cols:
        row = f"{label:28}"
        for n, r in results.items():
            if key not in r:
                row += f"{'-':>20}"
                continue
            v = fmt.format(r[key])
            if ref and n != "nginx" and ref[key] and key in ("small_rps", "large1_mbs", "large4_mbs", "small_p99_ms",
                                                               "small_cpu_us", "rss_mb", "anon_mb"):
                v += f" ({r[key] / ref[key]:.2f}x)"
            row += f"{v:>20}"
        print(row)
    print(f"\nmedians of {ROUNDS} interleaved rounds; ratios are to nginx proxy_cache; for p99, CPU, TTFB and "
          "RSS lower is better; \"static\" is nginx serving the files itself, the ceiling for hits")
    shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
