"""kill -9 in the middle of an import, and in the middle of fills that evict:
on restart the cache opens, holds only complete objects (verify finds none
corrupt), the half-done work is gone, and the work can simply be redone.

That each kill landed mid-write is proved, not hoped for from a delay: the
kill is sent once the store's `pending` database (cache/store.h: a fill
under way) is seen non-empty by another process (tests/tools/lmdb_probe.c),
and after the kill that database still names the interrupted fills; the
next open drops them (drop_pending), so it is empty again after verify."""
import os, shutil, signal, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import sha512_line, AIRLOCK, Airlock, Case, curl, eq, fail, main


def cli(cfg, *args):
    return subprocess.run([AIRLOCK, *args, "--config", cfg], capture_output=True, text=True, timeout=120)


def entries(cfg):
    out = cli(cfg, "ls").stdout.strip().splitlines()
    return int(out[-1].split()[0])


def probe_counter(tmp):
    probe = os.path.join(tmp, "lmdb_probe")
    src = os.path.join(os.path.dirname(__file__), "..", "tools", "lmdb_probe.c")
    subprocess.run(["cc", "-O2", "-o", probe, src, "-llmdb"], check=True, timeout=60)

    def pending(cache):
        p = subprocess.run([probe, cache, "count", "pending"], capture_output=True, text=True, timeout=20)
        return int(p.stdout) if p.returncode == 0 else 0  # before the store made its databases
    return pending


def kill_mid_write(proc_alive, kill, pending, cache, timeout=20):
    """Wait until a fill is under way in cache, kill; True when the kill is proved mid-write."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc_alive() and pending(cache) == 0:
        time.sleep(0.002)
    was_alive = proc_alive()
    kill()
    return was_alive and pending(cache) > 0


def test():
    with Case() as (up, al, tmp):
        pending = probe_counter(tmp)
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
        proved = attempts = 0
        while proved < 4 and attempts < 30:
            attempts += 1
            p = subprocess.Popen([AIRLOCK, "import", bundle, "--config", gap.config],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def kill():
                p.send_signal(signal.SIGKILL)
                p.wait()
            if kill_mid_write(lambda: p.poll() is None, kill, pending, gap.cache):
                eq(p.returncode, -signal.SIGKILL, "the import was killed, not finished")
                proved += 1
            v = cli(gap.config, "verify")
            if v.returncode != 0 or "0 corrupt" not in v.stdout:
                fail(f"after kill -9 #{attempts} the cache has corrupt entries: {v.stdout}{v.stderr}")
            eq(pending(gap.cache), 0, "the interrupted fills are gone once the store is opened again")
            if entries(gap.config) >= 24:
                # an import that finished before the kill: start over on an empty cache
                shutil.rmtree(gap.cache)
        print(f"import: {proved} kills proved mid-write in {attempts} attempts")
        if proved < 4:
            fail(f"only {proved} of {attempts} kills landed while an import was writing")
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
            if not kill_mid_write(lambda: small.proc.poll() is None, lambda: small.stop(signal.SIGKILL),
                                  pending, small.cache):
                fail(f"round {round_}: the kill did not land while fills were writing")
            for t in ts:
                t.join()
            v = cli(small.config, "verify")
            if v.returncode != 0 or "0 corrupt" not in v.stdout:
                fail(f"kill -9 during evicting fills left corrupt entries: {v.stdout}{v.stderr}")
            eq(pending(small.cache), 0, "the interrupted fills are gone once the store is opened again")
        small.start()
        h = small.health()
        if h["cache"]["bytes"] > 8 * 1024 * 1024:
            fail(f"cache over max_size after crashes: {h['cache']}")
        for p in paths[:2]:
            eq(curl(small, p).body, bodies[p], "serving after crashes")
        small.stop()


if __name__ == "__main__":
    main(test)
