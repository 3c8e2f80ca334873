#!/usr/bin/env python3
"""The offline package registry at catalogue scale (issue 26): airlock before and after the index,
in one run, on one cache.

Fills NAMES x VERSIONS package documents (default 2,000 x 10 = 20,000, each 1-20 KB, shaped like the
registry's /package/<n>/<v>/ answers: policy templates with inputs and vars, data streams with
streams and vars) through airlock from the test harness's fake upstream, plus one cached 1 KiB
object.  Then, with the registry unreachable (upstream.offline), one worker, for each binary in turn
on that same cache:
  - Kibana's list   /search?kibana.version=8.13.4&prerelease=false
  - its categories  /categories?kibana.version=8.13.4&prerelease=false&include_policy_templates=true
  - everything      /search?all=true&prerelease=true
  - Kibana's list again under a new URL each time (an ignored parameter), which airlock cannot
    have remembered: the cost of computing it
each REPS times (sequential, one keep-alive client; latency = request sent to last body byte),
while a client in its own process asks for the 1 KiB hit every 5 ms on its own connection: the
worst hit latency while the queries run is printed, and airlock's peak RssAnon (sampled every
10 ms from /proc).  The answers of both binaries are compared (sha256).

"before" is the base commit's binary (b56b3e9: every query walks the cache and parses every
document on the worker's loop), built apart, e.g.:
  mkdir -p build-base/src && git archive b56b3e9 | tar -x -C build-base/src &&
  cmake -S build-base/src -B build-base/b -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-base/b --target airlock
A program, not a test: nothing here passes or fails.  Everything listens on 127.0.0.1.

  python3 bench/registry_index.py
  NAMES=200 REPS=3 AIRLOCK_OLD=build-base/b/airlock AIRLOCK_NEW=build/airlock python3 bench/registry_index.py
"""
import hashlib, http.client, json, os, random, shutil, statistics, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import harness  # noqa: E402
from harness import Airlock, FakeUpstream, HitSampler, Pki  # noqa: E402

# harness.HitSampler's client gives up after 30 s; before the index a hit waited longer than that
harness._HIT_LOOP = harness._HIT_LOOP.replace("timeout=30", "timeout=900")

NAMES = int(os.environ.get("NAMES", 2000))
VERSIONS = int(os.environ.get("VERSIONS", 10))
REPS = int(os.environ.get("REPS", 7))
REPS_BEFORE = int(os.environ.get("REPS_BEFORE", 3))  # before the index a query takes seconds
OLD = os.environ.get("AIRLOCK_OLD") or os.path.join(HERE, "..", "build-base", "b", "airlock")
NEW = os.environ.get("AIRLOCK_NEW") or os.path.join(HERE, "..", "build", "airlock")
QUERIES = [
    ("kibana list", "/search?kibana.version=8.13.4&prerelease=false"),
    ("categories", "/categories?kibana.version=8.13.4&prerelease=false&include_policy_templates=true"),
    ("all=true", "/search?all=true&prerelease=true"),
    # the same list, never remembered: an ignored parameter makes each URL new (the answer is the same)
    ("kibana, new URL", "/search?kibana.version=8.13.4&prerelease=false&bench={n}"),
]
CATS = ["aws", "azure", "cloud", "containers", "custom", "datastore", "elastic_stack", "google_cloud", "kubernetes",
        "message_queue", "monitoring", "network", "observability", "security", "edr_xdr", "web", "threat_intel",
        "iam", "firewall_security", "productivity", "os_system", "support"]


def document(rnd, i, v):
    name = f"pkg_{i:04d}"
    version = f"{1 + v // 5}.{v % 5}.0"
    if v == VERSIONS - 1 and i % 10 == 0:
        version = f"{2 + v // 5}.0.0-beta1"
    if i % 25 == 0:
        version = f"0.{v}.0"
    cats = rnd.sample(CATS, rnd.randint(1, 3))
    d = {"name": name, "title": f"Package {i} " + rnd.choice(["Logs", "Metrics", "Security", "Integration"]),
         "version": version, "release": "ga",
         "description": f"Collect logs and metrics from {name} with Elastic Agent.",
         "type": "input" if i % 40 == 0 else "integration",
         "download": f"/epr/{name}/{name}-{version}.zip", "path": f"/package/{name}/{version}",
         "icons": [{"src": "/img/logo.svg", "path": f"/package/{name}/{version}/img/logo.svg",
                    "type": "image/svg+xml"}],
         "format_version": rnd.choice(["2.7.0", "3.0.0", "3.1.4", "3.3.0"]),
         "conditions": {"kibana": {"version": "^9.0.0" if v == VERSIONS - 1 and i % 3 == 0 else
                                   f"^8.{8 + (i + v) % 7}.0"}},
         "owner": {"github": "elastic/integrations", "type": "elastic"},
         "categories": cats, "signature_path": f"/epr/{name}/{name}-{version}.zip.sig",
         "readme": f"/package/{name}/{version}/docs/README.md",
         "policy_templates": [{"name": f"t{k}", "title": f"{name} template {k}", "description": "Collect data",
                               "categories": rnd.sample(CATS, rnd.randint(0, 2)), "data_streams": ["log", "metrics"],
                               "inputs": [{"type": "logfile", "title": "Collect logs", "description": "from files",
                                           "vars": [{"name": "paths", "type": "text", "multi": True,
                                                     "default": ["/var/log/*.log"]}]}]}
                              for k in range(1)],
         "data_streams": []}
    target = rnd.randint(1, 20) * 1024
    k = 0
    while len(json.dumps(d)) < target:
        d["data_streams"].append({"type": "logs", "dataset": f"{name}.ds{k}", "title": f"stream {k}",
                                  "release": "ga", "ingest_pipeline": "default",
                                  "streams": [{"input": "logfile", "title": "logs", "description": "x" * 60,
                                               "vars": [{"name": f"var{j}", "type": "text", "title": f"Var {j}",
                                                         "multi": False, "required": False, "show_user": True}
                                                        for j in range(4)]}]})
        k += 1
    return d


def fill(up, al):
    rnd = random.Random(26)
    paths = []
    total = 0
    for i in range(NAMES):
        for v in range(VERSIONS):
            d = document(rnd, i, v)
            body = json.dumps(d).encode()
            total += len(body)
            p = f"/package/{d['name']}/{d['version']}/"
            up.add(p, body, headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=600")])
            paths.append(p)
    up.add("/downloads/hit.txt", b"h" * 1024, headers=[("Cache-Control", "max-age=86400")])
    paths.append("/downloads/hit.txt")
    todo = list(paths)
    lock = threading.Lock()
    errors = []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", al.port, timeout=60)
        while True:
            with lock:
                if not todo:
                    break
                p = todo.pop()
            c.request("GET", p)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append((p, r.status))
        c.close()

    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"filled {len(paths) - 1} package documents ({total / 1e6:.0f} MB) in {time.time() - t0:.0f}s"
          f"{', errors: ' + str(errors[:5]) if errors else ''}", flush=True)


class Rss:
    def __init__(self, pid):
        self.pid, self.peak, self.stop_ = pid, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            self.peak = max(self.peak, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.01)

    def stop(self):
        self.stop_ = True
        self.t.join()
        return self.peak


def cpu_ms(pid):
    """User + system CPU the process has used, in ms (what a query costs, whatever the machine's load)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def measure(tmp, up, binary, label):
    harness.AIRLOCK = binary
    al = Airlock(tmp, up, offline=True, workers=1)
    out = {}
    try:
        rss = Rss(al.proc.pid)
        base_rss = rss.peak
        time.sleep(0.3)
        sampler = HitSampler(al, "/downloads/hit.txt", 0.005)
        time.sleep(0.5)
        c = http.client.HTTPConnection("127.0.0.1", al.port, timeout=600)
        t_start = time.time()
        for name, q in QUERIES:
            lat = []
            if label == "before" and "{n}" in q:
                out[name] = out["kibana list"]  # nothing was remembered before the index: the same figures
                continue
            reps = REPS_BEFORE if label == "before" else REPS
            cpu0 = cpu_ms(al.proc.pid)
            for n in range(reps if name != "all=true" else max(3, reps // 2)):
                t = time.time()
                c.request("GET", q.format(n=n))
                r = c.getresponse()
                body = r.read()
                lat.append(time.time() - t)
            cpu = (cpu_ms(al.proc.pid) - cpu0) / len(lat)
            out[name] = (statistics.median(lat), max(lat), len(body), hashlib.sha256(body).hexdigest(), r.status,
                         lat[0], cpu)
            print(f"  {label:6s} {name:15s} median {statistics.median(lat) * 1000:8.1f} ms  max {max(lat) * 1000:8.1f} ms"
                  f"  first {lat[0] * 1000:8.1f} ms  airlock CPU {cpu:7.1f} ms/query  ({len(body) / 1e6:.1f} MB, {r.status})",
                  flush=True)
        t_end = time.time()
        c.close()
        time.sleep(0.3)
        hits = sampler.stop()
        during = [d for t, d, s, n in hits if t + d >= t_start and t <= t_end]
        quiet = [d for t, d, s, n in hits if t + d < t_start]
        out["hit"] = (max(during) if during else float("nan"), len(during),
                      statistics.median(quiet) if quiet else float("nan"))
        out["rss"] = rss.stop()
        print(f"  {label:6s} 1 KiB hit    worst {out['hit'][0] * 1000:8.1f} ms over {len(during)} hits during the queries"
              f" (median {out['hit'][2] * 1000:.1f} ms before them); peak RssAnon {out['rss'] / 1024:.0f} MB",
              flush=True)
    finally:
        al.stop()
    del base_rss
    return out


def main():
    for b in (OLD, NEW):
        if not os.path.exists(b):
            sys.exit(f"{b}: missing (see the docstring for building the base commit)")
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()}", flush=True)
    keep = os.environ.get("BENCH_DIR")  # reuse a cache filled by an earlier run with the same NAMES
    tmp = keep or tempfile.mkdtemp(prefix="airlock-bench-registry-")
    os.makedirs(tmp, exist_ok=True)
    only = os.environ.get("ONLY", "before,after").split(",")
    up = None
    try:
        up = FakeUpstream(Pki(tmp))
        if not os.path.exists(os.path.join(tmp, "filled")):
            harness.AIRLOCK = NEW
            al = Airlock(tmp, up, workers=2)
            fill(up, al)
            al.stop()
            open(os.path.join(tmp, "filled"), "w").close()
        res = {}
        for label, binary in (("before", OLD), ("after", NEW)):
            if label in only:
                res[label] = measure(tmp, up, binary, label)
    finally:
        if up is not None:
            up.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if len(res) < 2:
        return
    print(f"\nload average at the end {os.getloadavg()}")
    print(f"\n{NAMES * VERSIONS} cached package versions ({NAMES} names x {VERSIONS}), one worker, registry offline")
    print(f"| query | before (b56b3e9) | after | same answer |\n|---|---|---|---|")
    for name, q in QUERIES:
        b, a = res["before"][name], res["after"][name]
        print(f"| `{q.format(n='N')}` ({a[2] / 1e6:.1f} MB) | median {b[0] * 1000:.0f} ms, max {b[1] * 1000:.0f} ms "
              f"| median {a[0] * 1000:.0f} ms, max {a[1] * 1000:.0f} ms (first {a[5] * 1000:.0f} ms) "
              f"| {'yes' if a[3] == b[3] else 'NO'} |")
    print(f"| worst 1 KiB hit on the same worker during the queries | {res['before']['hit'][0] * 1000:.0f} ms "
          f"| {res['after']['hit'][0] * 1000:.0f} ms | |")
    print(f"| peak RssAnon | {res['before']['rss'] / 1024:.0f} MB | {res['after']['rss'] / 1024:.0f} MB | |")


if __name__ == "__main__":
    main()
