"""A power cut at any moment leaves a cache that opens, serves nothing wrong and
keeps what was synced (issue 32).

The shortened run of the power-loss simulator (tests/tools/powerloss, after
../shared/powerloss: ALICE/CrashMonkey-style replay).  airlock runs under
powerloss.so, which logs every write and fdatasync to the cache's data.mdb:
first `serve`, filling six objects three at a time into a cache too small for
them (so commits evict), then, after a second of quiet, a kill -9; then
`airlock import` of a bundle into the same cache (it evicts too).  At crash
points spread over both (random moments, random log records, the ends of both
phases) crash images are rebuilt from the last completed fdatasync plus
subsets, prefixes and reorderings of the page writes since (plreplay.py's
modes), and each is checked with `airlock verify` (opens the cache, drops
interrupted fills, re-digests every listed body against its SHA-256) and
`airlock ls`:
  - every image opens, verify finds nothing corrupt, nothing dies;
  - every listed body has the length it was fetched with;
  - nothing synced is lost: what the image "none" (only what was flushed)
    lists is listed by every image of that point, unless the image "all"
    (what the process had committed) no longer lists it either (evicted);
  - at the end of the quiet second, "none" lists what "all" lists: the last
    commit was made durable within a second.
Two seeds.  Against the MDB_NOSYNC store (b56b3e9) every seed finds corrupt
images (verify: corrupt entries; cannot open: MDB_CORRUPTED, SIGBUS).
"""
import hashlib, os, random, shutil, signal, subprocess, sys, tempfile, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "powerloss"))
from harness import AIRLOCK, Airlock, FakeUpstream, Pki, curl, eq, fail  # noqa: E402
import pllog, plreplay  # noqa: E402

MiB = 1024 * 1024
PRELOAD = os.environ.get("POWERLOSS_SO") or fail("POWERLOSS_SO is not set (the test runs under ctest)")
MODES = [("none", 0), ("all", 0), ("meta-only", 0), ("data-only", 0), ("random-0.5", 1), ("random-version", 1),
         ("write-prefix", 1), ("offset-prefix", 1), ("cyclic-prefix", 1)]


def cli(cfg, *args, env=None):
    return subprocess.run([AIRLOCK, *args, "--config", cfg], capture_output=True, text=True, timeout=120,
                          env=env, errors="replace")


def preload_env(cache, log):
    env = dict(os.environ, POWERLOSS_DIR=cache, POWERLOSS_LOG=log, LD_PRELOAD=PRELOAD)
    # a sanitized airlock: the preload comes before ASan's runtime, which must be told it is fine
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0:detect_leaks=0").lstrip(":")
    return env


def signame(rc):
    return signal.Signals(-rc).name if rc < 0 else None


def check_image(cfg, cache, img):
    """verify and ls on a copy of one crash image: (problems, {url: length listed})."""
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    shutil.copyfile(img, os.path.join(cache, "data.mdb"))
    problems, listed = [], {}
    v = cli(cfg, "verify")
    if v.returncode != 0 or " 0 corrupt" not in v.stdout:
        problems.append(f"verify rc={v.returncode}{' ' + signame(v.returncode) if signame(v.returncode) else ''}: "
                        f"{(v.stdout + v.stderr).strip()[-300:]}")
    # verify drops what it finds corrupt: ls runs on a fresh copy
    shutil.copyfile(img, os.path.join(cache, "data.mdb"))
    try:
        os.remove(os.path.join(cache, "lock.mdb"))
    except FileNotFoundError:
        pass
    ls = cli(cfg, "ls")
    if ls.returncode != 0:
        problems.append(f"ls rc={ls.returncode}: {ls.stderr.strip()[-200:]}")
    for line in ls.stdout.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0].isdigit() and f[-1].startswith("http"):
            listed[f[-1]] = int(f[1])
    return problems, listed


def run(seed, up, bundle, import_urls):
    rnd = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix=f"airlock-powerloss-{seed}-")
    try:
        log = os.path.join(tmp, "powerloss.log")
        paths = [f"/downloads/beats/filebeat/filebeat-8.14.{seed}{i}-linux-x86_64.tar.gz" for i in range(6)]
        sizes = {}
        for p in paths:
            body = rnd.randbytes(rnd.randint(1 * MiB, 3 * MiB) + rnd.randint(0, 4095))
            sizes[p] = len(body)
            up.add(p, body, headers=[("ETag", f'"{hashlib.sha256(body).hexdigest()[:16]}"')], rate=6 * MiB)
        al = Airlock(tmp, up, cache_extra="")
        al.stop()
        cfg = open(al.config).read().replace("max_size: 256MiB", "max_size: 7MiB")
        open(al.config, "w").write(cfg)
        shutil.rmtree(al.cache, ignore_errors=True)
        env = preload_env(al.cache, log)
        saved = dict(os.environ)
        os.environ.update(env)       # Airlock.start() passes the environment on
        try:
            al.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        moments, stop = [], threading.Event()

        def sampler():
            while not stop.wait(rnd.uniform(0.1, 0.4)):
                moments.append(os.path.getsize(log))

        def fetch(ps):
            for p in ps:
                curl(al, p, timeout=30)

        ts = [threading.Thread(target=sampler)] + [threading.Thread(target=fetch, args=(paths[i::3],)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts[1:]:
            t.join()
        time.sleep(1.6)              # a quiet second: the sync makes the last commit durable
        quiet_end = os.path.getsize(log)
        al.stop(signal.SIGKILL)
        # the import, into the same cache and log
        r = cli(al.config, "import", bundle, env=env)
        stop.set()
        ts[0].join()
        eq(r.returncode, 0, f"import under the preload: {r.stdout}{r.stderr}")

        lg = pllog.Log(log)
        rp = plreplay.Replayer(lg, os.path.join(tmp, "replay"))
        if not rp.syncs:
            fail("the log holds no completed fdatasync of data.mdb")
        n = len(lg.recs)
        first = rp.syncs[0][1] + 1
        points = {lg.index_at_byte(b) for b in moments} | {lg.index_at_byte(quiet_end), n}
        points |= {rnd.randint(first, n) for _ in range(8)}
        points = sorted(p for p in points if p >= first)
        quiet_point = lg.index_at_byte(quiet_end)
        ccfg = os.path.join(tmp, "check.yml")
        ccache = os.path.join(tmp, "check-cache")
        open(ccfg, "w").write(open(al.config).read().replace(al.cache, ccache).replace("offline: false", "offline: true"))
        imgdir = os.path.join(tmp, "img")
        os.makedirs(imgdir)
        bad, seen, nimg = [], {}, 0
        for point in points:
            st = rp.state(point)
            listings = {}
            for mode, mseed in MODES:
                sel, desc = st.select(mode, mseed)
                key = st.key(sel)
                if key not in seen:
                    img = os.path.join(imgdir, "data.mdb")
                    rp.materialize(st, sel, img)
                    seen[key] = check_image(ccfg, ccache, img)
                    nimg += 1
                problems, listed = seen[key]
                listings[mode] = listed
                for u, ln in listed.items():
                    want = next((sizes[p] for p in sizes if u.endswith(p)), None)
                    if want is not None and ln != want:
                        problems = problems + [f"{u} listed with {ln} bytes, fetched {want}"]
                if problems:
                    bad.append(f"record {point}/{n} {desc}: {'; '.join(problems)}")
            synced = set(listings["none"]) & set(listings["all"])
            for mode, listed in listings.items():
                lost = synced - set(listed)
                if lost:
                    bad.append(f"record {point}/{n} {mode}: lost {len(lost)} synced object(s): {sorted(lost)[:2]}")
            if point == quiet_point and set(listings["none"]) != set(listings["all"]):
                bad.append(f"a second after the last fill the synced state lacks "
                           f"{sorted(set(listings['all']) - set(listings['none']))}")
        for u in import_urls:      # points[-1] is the end of the log: listings are its
            if not any(k.endswith(u) for k in listings["all"]):
                bad.append(f"the import's {u} is not in the final cache")
        print(f"seed {seed}: {len(rp.syncs)} fdatasyncs, {len(points)} crash points, {nimg} distinct images, "
              f"{len(bad)} bad")
        if bad:
            fail(f"seed {seed}: {len(bad)} of the crash images are not OK:\n  " + "\n  ".join(bad[:12]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test():
    tmp = tempfile.mkdtemp(prefix="airlock-powerloss-")
    up = FakeUpstream(Pki(tmp))
    try:
        # the bundle: two objects filled into a cache of their own, exported
        src = Airlock(tmp, up)
        import_urls = []
        for i in range(2):
            p = f"/downloads/beats/metricbeat/metricbeat-8.14.{i}-linux-x86_64.tar.gz"
            up.add(p, os.urandom(2 * MiB + 17 * i), headers=[("ETag", f'"m{i}"')])
            eq(curl(src, p).status, 200, "bundle source fill")
            import_urls.append(p)
        src.stop()
        bundle = os.path.join(tmp, "b.airlock")
        r = cli(src.config, "export", bundle)
        eq(r.returncode, 0, f"export: {r.stderr}")
        for seed in (1, 2):
            run(seed, up, bundle, import_urls)
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    t0 = time.time()
    try:
        test()
    except AssertionError as e:
        print(f"FAIL test_crash_powerloss: {e}")
        sys.exit(1)
    print(f"ok ({time.time() - t0:.2f}s)")
