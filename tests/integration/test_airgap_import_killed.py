"""An import killed mid-way and run again (issue 28): each entry admitted once,
no second copy of the bundle on disk.

A bundle of six 300 KiB artifacts (and their .sha512) is imported while a
test hook (tests/lib/bundle_hook.c, LD_PRELOAD'ed) SIGKILLs airlock at an
exact point, found by byte offset, not by time:

1. while the fourth body is being read (the reading that admits, if there
   are several: a first run with the hook counting tells which): the cache
   must show nothing of the bundle, the ledger no new record, and no file
   may appear beside the bundle or in the cache directory.  The rerun adds
   every entry once, `airlock verify` finds every body sound, and the cache
   file is no larger than after an uninterrupted import into a fresh cache
   (the killed run's bodies were reclaimed, not kept beside the new ones).
2. after the whole file was read, while entries are being published: the
   import's writes are one store batch (cache/store.c "Durability"), so
   publishing is all or nothing: a kill after three entries' commits inside
   the batch publishes none of them; the rerun adds every entry once, and
   the bundle is noted once (the ledger holds one admitted import)."""
import json, os, shutil, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, BUNDLE_HOOK, Case, cli, entries, eq, fail, hooked, main, mirrored_beats

V = "8.13.4"
NAMES = ("filebeat", "metricbeat", "auditbeat", "packetbeat", "heartbeat", "osquerybeat")


def crossings(cfg, bundle, at, log):
    """How many times an import reads byte `at` of the bundle (into a cache thrown away after)."""
    if os.path.exists(log):
        os.remove(log)
    cli(cfg, "import", bundle, env=hooked(bundle, at, 0, "count", log))
    return sum(1 for l in open(log) if l.startswith("cross "))


def files(*dirs):
    return sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d))


def gap_cache(up, prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    g = Airlock(d, up, offline=True)
    g.stop()
    return d, g


def test():
    if not os.path.exists(BUNDLE_HOOK):
        fail(f"the test hook {BUNDLE_HOOK} is not built")
    with Case() as (up, al, tmp):
        al.stop()
        bodies = list(mirrored_beats(up, al.config, V, NAMES, 300 * 1024).values())
        want = entries(al.config)
        media = os.path.join(tmp, "media")
        os.mkdir(media)
        bundle = os.path.join(media, "stack.airlock")
        cli(al.config, "export", bundle)
        data = open(bundle, "rb").read()
        offs = sorted(data.find(b) for b in bodies)
        if -1 in offs:
            fail("a body is not stored whole in the bundle")
        mid = offs[3] + 150 * 1024
        dirs = []
        try:
            # an uninterrupted import, for the figures: how often each byte is read, the cache's size
            d0, g0 = gap_cache(up, "airlock-gap0-")
            dirs.append(d0)
            log = os.path.join(d0, "hook.log")
            n_mid = crossings(g0.config, bundle, mid, log)
            clean_size = os.path.getsize(os.path.join(g0.cache, "data.mdb"))
            d0b, g0b = gap_cache(up, "airlock-gap0b-")
            dirs.append(d0b)
            n_end = crossings(g0b.config, bundle, len(data) - 1, log)

            # 1. killed while the fourth body streams in
            d1, g1 = gap_cache(up, "airlock-gap1-")
            dirs.append(d1)
            cli(g1.config, "ls")  # the cache's files exist before, as on any site
            before = files(media, g1.cache)
            led_before = cli(g1.config, "ledger", "--json").stdout
            log1 = os.path.join(tmp, "hook1.log")
            p = cli(g1.config, "import", bundle, ok=False, env=hooked(bundle, mid, n_mid, "kill", log1))
            eq(p.returncode, -9, f"the hook kills the import mid-way:\n{p.stdout}\n{p.stderr}")
            eq(open(log1).read().split("\n")[n_mid - 1], f"cross {n_mid}", "killed at the admitting read of body 4")
            eq(entries(g1.config), [], "an import killed mid-way publishes nothing")
            eq(cli(g1.config, "ledger", "--json").stdout, led_before, "no ledger record from the killed import")
            eq(files(media, g1.cache), before, "no file appears beside the bundle or in the cache")
            p = cli(g1.config, "import", bundle)
            if f"added {len(want)}, updated 0, skipped 0" not in p.stdout:
                fail(f"the rerun adds every entry once:\n{p.stdout}")
            eq(entries(g1.config), want, "the connected side's entries after the rerun")
            v = cli(g1.config, "verify")
            if f"verified {len(want)} entries: 0 corrupt" not in v.stdout:
                fail(f"every body sound after the rerun: {v.stdout}")
            size = os.path.getsize(os.path.join(g1.cache, "data.mdb"))
            if size > clean_size + (512 << 10):  # the killed run had written about 1 MiB of bodies
                fail(f"the cache file is {size} bytes after kill and rerun, {clean_size} after one clean import: "
                     "the killed run's bodies were kept")
            eq(files(media, g1.cache), sorted(before + [os.path.join(g1.cache, n) for n in ("ledger.jsonl", "ledger.head")]),
               "no other file than the ledger the finished import began, and its head's anchor")
            print(f"cache file: {size} bytes after kill and rerun, {clean_size} after one clean import; "
                  f"body 4 read {n_mid} time(s), the last byte {n_end} time(s)")

            # 2. killed while it publishes, three entries' commits into its batch
            d2, g2 = gap_cache(up, "airlock-gap2-")
            dirs.append(d2)
            log2 = os.path.join(tmp, "hook2.log")
            p = cli(g2.config, "import", bundle, ok=False, env=hooked(bundle, len(data) - 1, n_end, "commits:3", log2))
            eq(p.returncode, -9, f"the hook kills the import while it publishes:\n{p.stdout}\n{p.stderr}")
            eq(entries(g2.config), [], "publishing is all or nothing: none of the three is published")
            p = cli(g2.config, "import", bundle)
            if f"added {len(want)}, updated 0, skipped 0 " not in p.stdout:
                fail(f"the rerun adds every entry:\n{p.stdout}")
            eq(entries(g2.config), want, "every entry once")
            led = cli(g2.config, "ledger", "--json").stdout
            eq(led.count('"admitted"'), 1, f"one admitted import in the ledger:\n{led}")
            p = cli(g2.config, "import", bundle)
            if f"added 0, updated 0, skipped {len(want)} " not in p.stdout:
                fail(f"a third run admits nothing:\n{p.stdout}")
        finally:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main(test)
