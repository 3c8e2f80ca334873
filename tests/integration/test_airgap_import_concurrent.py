"""Another airlock process opening the cache during an import (issue 28).

An import keeps the entries it admits pending until the whole bundle
checked out, and a live process's pending fills are not garbage: every
process holds the cache's lock file shared, and only an opener that is alone
drops pending fills (cache/store.c "Who recovers"; before, any opener
dropped them, so an `airlock ls` beside an import or a server cut their
bodies from under them).  A test hook (tests/lib/bundle_hook.c, LD_PRELOAD'ed)
stops the import (SIGSTOP) while its second body streams in, with its store
batch open; the test then runs `airlock ls` on the same cache, which must
answer at once (it does not wait for the import's write transaction) and
list nothing of the import (nothing is published yet), and lets the import
go on (SIGCONT): it admits everything, sound.  Then the same with the import
killed while stopped: the next opener is alone and drops its bodies."""
import os, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, BUNDLE_HOOK, Case, cli, entries, eq, fail, main, mirrored_beats

V = "8.13.4"


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test():
    if not os.path.exists(BUNDLE_HOOK):
        fail(f"the test hook {BUNDLE_HOOK} is not built")
    with Case() as (up, al, tmp):
        al.stop()
        bodies = list(mirrored_beats(up, al.config, V, ("filebeat", "metricbeat", "auditbeat"), 300 * 1024).values())
        want = entries(al.config)
        bundle = os.path.join(tmp, "stack.airlock")
        cli(al.config, "export", bundle)
        data = open(bundle, "rb").read()
        offs = sorted(data.find(b) for b in bodies)
        tmp2 = tempfile.mkdtemp(prefix="airlock-gap-")
        try:
            gap = Airlock(tmp2, up, offline=True)
            gap.stop()
            env = dict(os.environ, LD_PRELOAD=BUNDLE_HOOK, AL_HOOK_FILE=bundle, AL_HOOK_AT=str(offs[1] + 150 * 1024),
                       AL_HOOK_PASS="1", AL_HOOK_ACTION="stop", AL_HOOK_LOG=os.path.join(tmp2, "hook.log"),
                       ASAN_OPTIONS="verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", ""))
            imp = subprocess.Popen([AIRLOCK, "import", bundle, "--config", gap.config], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
            try:
                deadline = time.time() + 60
                while state(imp.pid) != "T":
                    if imp.poll() is not None or time.time() > deadline:
                        fail(f"the import did not stop at the hook: {imp.communicate()}")
                    time.sleep(0.05)
                # another airlock process opens the cache: it answers at once and sees nothing published
                t0 = time.time()
                eq(entries(gap.config), [], "nothing published while the import is stopped mid-way")
                if time.time() - t0 > 30:
                    fail("ls waited for the stopped import's write transaction")
            finally:
                os.kill(imp.pid, signal.SIGCONT)
                out, err = imp.communicate(timeout=60)
            eq(imp.returncode, 0, f"the import goes on, its pending bodies untouched:\n{out}\n{err}")
            if f"added {len(want)}, updated 0, skipped 0" not in out:
                fail(f"the import admits everything: {out}")
            eq(entries(gap.config), want, "the connected side's entries")
            v = cli(gap.config, "verify")
            if f"verified {len(want)} entries: 0 corrupt" not in v.stdout:
                fail(f"every body sound: {v.stdout}")

            # killed while stopped: nobody holds the cache then, and the next opener drops its pending bodies
            shutil.rmtree(gap.cache)
            imp = subprocess.Popen([AIRLOCK, "import", bundle, "--config", gap.config], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
            deadline = time.time() + 60
            while state(imp.pid) != "T":
                if imp.poll() is not None or time.time() > deadline:
                    fail(f"the import did not stop at the hook: {imp.communicate()}")
                time.sleep(0.05)
            imp.kill()
            imp.communicate(timeout=60)
            eq(entries(gap.config), [], "a killed import published nothing")
            v = cli(gap.config, "verify")
            if "verified 0 entries: 0 corrupt" not in v.stdout:
                fail(f"no cut body in the cache: {v.stdout}")
            p = cli(gap.config, "import", bundle)
            if f"added {len(want)}, updated 0, skipped 0" not in p.stdout:
                fail(f"the import run again admits everything: {p.stdout}")
            eq(entries(gap.config), want, "the connected side's entries")
        finally:
            shutil.rmtree(tmp2, ignore_errors=True)


if __name__ == "__main__":
    main(test)
