"""A reload storm under load (issue 30): 1,000 SIGHUPs alternating a
configuration without upstream.parents (misses go to the origin) and one
with a parent (misses go to the parent, in absolute form), while one client
runs misses and another hits.

Each request pins the configuration it started with, and so does each
fill: a parent index chosen under one configuration is never used under
another, and nothing divides by a parent count read twice (a SIGHUP
between the two reads was a SIGFPE).  Old configurations are freed when
their last request lets go, so reloads are unlimited (they used to be
refused after 64) and memory stays flat.

Asserted: airlock never dies and never refuses a reload; every response is
a 200 whose body is byte for byte the origin's or the parent's for that
path; every miss reached exactly one of them, in the form that one expects
(origin-form at the origin, absolute-form with the right Host at the
parent); every repeated request is a hit; RssAnon after the storm is within
a bound of what it was after the first hundred reloads."""
import http.client, os, signal, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, FakeUpstream, Pki, eq, fail, main, wait_for

RELOADS = 1000
STORM_SECONDS = 30          # at most; the loop stops early once RELOADS are sent
HOST = "https://artifacts.elastic.co"
HITS = [f"/downloads/storm/hit-{i}.bin" for i in range(8)]


def origin_body(path):
    return (f"origin {path}\n" * 40).encode()


def parent_body(path):
    return (f"parent {path}\n" * 33).encode()


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    fail("no RssAnon in /proc/pid/status")


class Client(threading.Thread):
    """A keep-alive client asking for the paths next_path() gives until stop is set."""

    def __init__(self, port, next_path, stop):
        super().__init__(daemon=True)
        self.port, self.next_path, self.stop = port, next_path, stop
        self.results = []       # (path, status, cache-status, body)
        self.error = None

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            while not self.stop.is_set():
                p = self.next_path()
                c.request("GET", p)
                r = c.getresponse()
                self.results.append((p, r.status, r.getheader("Cache-Status") or "", r.read()))
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.error = f"{type(e).__name__}: {e}"


def test():
    # Under AddressSanitizer freed memory waits in a quarantine (256 MB by default): keep it small
    # so that the bound on RssAnon still means something there.  A normal build ignores it.
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
    with Case() as (up, al, tmp):
        parent = FakeUpstream(Pki(tempfile.mkdtemp(dir=tmp)))
        plain = open(al.config).read()
        with_parent = plain.replace("  resolve:", f'  parents: ["http://127.0.0.1:{parent.port}"]\n  resolve:', 1)
        if with_parent == plain:
            fail("the harness config has no upstream.resolve to anchor parents on")
        configs = []
        for i, text in enumerate((plain, with_parent)):
            path = os.path.join(tmp, f"storm-{i}.yml")
            open(path, "w").write(text)
            configs.append(path)

        def serve(path):
            # the origin answers origin-form requests, the parent absolute-form ones
            up.add(path, origin_body(path), headers=[("Cache-Control", "max-age=3600")])
            parent.add(HOST + path, parent_body(path), headers=[("Cache-Control", "max-age=3600")])

        for p in HITS:
            serve(p)
        for p in HITS:
            c = http.client.HTTPConnection("127.0.0.1", al.port, timeout=20)
            c.request("GET", p)
            r = c.getresponse()
            eq((r.status, r.read()), (200, origin_body(p)), f"warm-up of {p}")
            c.close()

        misses = iter(f"/downloads/storm/miss-{i}.bin" for i in range(10 ** 6))
        miss_paths = []
        lock = threading.Lock()

        def next_miss():
            with lock:
                p = next(misses)
                serve(p)
                miss_paths.append(p)
                return p

        hit_i = iter(range(10 ** 9))
        stop = threading.Event()
        clients = [Client(al.port, next_miss, stop), Client(al.port, lambda: HITS[next(hit_i) % len(HITS)], stop)]
        for c in clients:
            c.start()
        rss_mid = None
        deadline = time.time() + STORM_SECONDS
        sent = 0
        while sent < RELOADS and time.time() < deadline:
            # the file is replaced whole: a reload never reads half of one
            tmpname = al.config + ".new"
            with open(configs[sent % 2]) as src, open(tmpname, "w") as dst:
                dst.write(src.read())
            os.replace(tmpname, al.config)
            al.proc.send_signal(signal.SIGHUP)
            sent += 1
            if al.proc.poll() is not None:
                fail(f"airlock died (exit {al.proc.returncode}) after {sent} reloads")
            if sent == 100:
                rss_mid = rss_anon_kib(al.proc.pid)
            time.sleep(0.01)
        time.sleep(0.5)
        stop.set()
        for c in clients:
            c.join(timeout=30)
            if c.is_alive():
                fail("a client is stuck")
            if c.error is not None:
                fail(f"a client failed: {c.error}")
        if al.proc.poll() is not None:
            fail(f"airlock died (exit {al.proc.returncode})")
        if sent < RELOADS / 2:
            fail(f"only {sent} SIGHUPs in {STORM_SECONDS}s: the machine is too slow for this test")
        log = al.logtext()
        reloads = open(al.log).read().count("[config] reloaded ")
        if "reload refused" in open(al.log).read():
            fail("a reload was refused during the storm:\n" + log)
        if reloads < 50:
            fail(f"only {reloads} reloads logged for {sent} SIGHUPs")

        # Every response: a 200 with the origin's or the parent's exact body.
        miss_results, hit_results = clients[0].results, clients[1].results
        if len(miss_results) < 50 or len(hit_results) < 50:
            fail(f"too little load: {len(miss_results)} misses, {len(hit_results)} hits")
        for p, st, cs, body in miss_results + hit_results:
            if st != 200 or body not in (origin_body(p), parent_body(p)):
                fail(f"{p}: status {st}, Cache-Status {cs!r}, body {body[:60]!r}")
        for p, st, cs, body in hit_results:
            if body != origin_body(p) or not cs.startswith("airlock; hit"):
                fail(f"{p} should be a hit on the warmed copy: {cs!r}")
        # Each miss reached exactly one of the two, in the form that one expects.
        seen_origin = seen_parent = 0
        for p, st, cs, body in miss_results:
            o, q = up.count(p), parent.count(HOST + p)
            if (o, q) not in ((1, 0), (0, 1)):
                fail(f"{p}: the origin saw it {o} times, the parent {q} times")
            if (body == origin_body(p)) != (o == 1):
                fail(f"{p}: the body came from {'origin' if o == 1 else 'parent'} but says otherwise")
            if not cs.startswith("airlock; fwd=miss"):
                fail(f"{p}: a first request should be a miss: {cs!r}")
            seen_origin += o
            seen_parent += q
        if seen_origin == 0 or seen_parent == 0:
            fail(f"misses should have gone both ways during the storm: origin {seen_origin}, parent {seen_parent}")
        with up.lock:
            for m, p, h in up.requests:
                if not p.startswith("/"):
                    fail(f"the origin got a request that is not origin-form: {p}")
        with parent.lock:
            for m, p, h in parent.requests:
                if not p.startswith(HOST + "/") or h.get("host") != "artifacts.elastic.co":
                    fail(f"the parent got {p} with Host {h.get('host')}")

        # Memory: old configurations are freed, so the storm leaves RssAnon where it was.
        time.sleep(3)  # idle workers let go of theirs on their 2 s timer
        rss_end = rss_anon_kib(al.proc.pid)
        # (a configuration is ~20 KiB: the 900 reloads after rss_mid, never freed, were +18 MiB).
        # Under AddressSanitizer its allocator's per-thread caches and shadow pages move RssAnon by
        # 4-7 MiB over the same storm with nothing leaked (LeakSanitizer at exit finds nothing): the
        # bound is wider there and still well under what the leak it guards against costs.
        with open(f"/proc/{al.proc.pid}/maps") as f:
            asan = "libasan" in f.read()
        if rss_mid is not None and rss_end > rss_mid + (12 if asan else 6) * 1024:
            fail(f"RssAnon grew from {rss_mid} KiB to {rss_end} KiB over the storm")
        print(f"{sent} SIGHUPs, {reloads} reloads, {len(miss_results)} misses "
              f"({seen_origin} origin, {seen_parent} parent), {len(hit_results)} hits, "
              f"RssAnon {rss_mid} -> {rss_end} KiB")
        parent.stop()


if __name__ == "__main__":
    main(test)
