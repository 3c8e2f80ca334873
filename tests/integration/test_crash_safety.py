"""kill -9 in the middle of an import, and in the middle of fills that evict:
on restart the cache opens, holds only complete objects (verify finds none
corrupt), the half-done work is gone, and the work can simply be redone."""
import os, signal, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import sha512_line, AIRLOCK, Airlock, Case, curl, eq, fail, main


def cli(cfg, *args):
    return subprocess.run([AIRLOCK, *args, "--config", cfg], capture_output=True, text=True, timeout=120)


def entries(cfg):
    out = cli(cfg, "ls").stdout.strip().splitlines()
    return int(out[-1].split()[0])


def test():
    with Case() as (up, al, tmp):
        paths = [f"/downloads/beats/filebeat/filebeat-8.13.{i}-linux-x86_64.tar.gz" for i in range(12)]
        bodies = {}
        for p in paths:
            bodies[p] = os.urandom(3 * 1024 * 1024)
            up.add(p, bodies[p], headers=[("ETag", f'"{p[-30:]}"')])
            up.add(p + ".sha512", sha512_line(bodies[p], os.path.basename(p)))
            eq(curl(al, p).status, 200, "fill")
        al.stop()
        bundle = os.path.join(tmp, "b.airlock")
        eq(cli(al.config, "export", bundle).returncode, 0, "export")

        # kill -9 during an import, many times at different moments
        tmp2 = tempfile.mkdtemp(prefix="airlock-crash-")
        gap = Airlock(tmp2, up, offline=True)
        gap.stop()
        for delay in (0.05, 0.15, 0.3, 0.5):
            p = subprocess.Popen([AIRLOCK, "import", bundle, "--config", gap.config],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait()
            v = cli(gap.config, "verify")
            if v.returncode != 0 or "0 corrupt" not in v.stdout:
                fail(f"after kill -9 at {delay}s the cache has corrupt entries: {v.stdout}{v.stderr}")
        r = cli(gap.config, "import", bundle)
        eq(r.returncode, 0, f"import after the crashes: {r.stderr}")
        # each artifact and its .sha512 (stored by the integrity check)
        eq(entries(gap.config), 24, "all entries after a clean import")
        gap.start()
        for p in paths:
            r = curl(gap, p)
            eq(r.body, bodies[p], f"served after crashes {p}")
        gap.stop()

        # kill -9 while fills evict (max_size far below what is asked for)
        tmp3 = tempfile.mkdtemp(prefix="airlock-evict-")
        small = Airlock(tmp3, up)
        small.stop()
        cfg = open(small.config).read().replace("max_size: 256MiB", "max_size: 8MiB")
        open(small.config, "w").write(cfg)
        for round_ in range(3):
            small.start()
            ts = [threading.Thread(target=curl, args=(small, p), kwargs={"timeout": 5}) for p in paths]
            for t in ts:
                t.start()
            time.sleep(0.2 + 0.1 * round_)
            small.stop(signal.SIGKILL)
            for t in ts:
                t.join()
            v = cli(small.config, "verify")
            if v.returncode != 0 or "0 corrupt" not in v.stdout:
                fail(f"kill -9 during evicting fills left corrupt entries: {v.stdout}{v.stderr}")
        small.start()
        h = small.health()
        if h["cache"]["bytes"] > 8 * 1024 * 1024:
            fail(f"cache over max_size after crashes: {h['cache']}")
        for p in paths[:2]:
            eq(curl(small, p).body, bodies[p], "serving after crashes")
        small.stop()


if __name__ == "__main__":
    main(test)
