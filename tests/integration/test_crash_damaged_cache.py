"""A cache airlock cannot open says so plainly and never crash-loops (issue 32).

A damaged data.mdb (cut short, as a file system may leave it; a B-tree root
page of the wrong type) makes serve, ls and verify exit 1 -- no signal, so no
crash loop under systemd -- with one message naming the file, what LMDB
found, and what the operator can do (move the directory aside and start
empty, refill or import).  Before: the cut-short file killed every command
with SIGBUS, and the message for damage was LMDB's code alone (or "Invalid or
incomplete multibyte or wide character", the errno LMDB's codes mapped to).
"""
import os, shutil, signal, struct, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Case, curl, eq, fail, main

PAGE = 4096


def newest_meta(data):
    """(main DB root page, last page) of the meta page with the higher txnid (LMDB 0.9 layout, 64-bit)."""
    best = None
    for m in (0, 1):
        base = m * PAGE + 16                      # page header: pgno, pad, flags, lower/upper
        root = struct.unpack_from("<Q", data, base + 24 + 48 + 40)[0]   # mm_dbs[MAIN_DBI].md_root
        last, txnid = struct.unpack_from("<QQ", data, base + 24 + 96)
        if best is None or txnid > best[2]:
            best = (root, last, txnid)
    return best[0], best[1]


def run(cfg, *args):
    return subprocess.run([AIRLOCK, *args, "--config", cfg], capture_output=True, text=True, timeout=60,
                          errors="replace")


def expect_plain_refusal(al, what, words):
    for cmd in ("ls", "verify"):
        r = run(al.config, cmd)
        if r.returncode < 0:
            fail(f"{what}: airlock {cmd} died with {signal.Signals(-r.returncode).name}: {r.stderr[-300:]}")
        eq(r.returncode, 1, f"{what}: airlock {cmd} exit code ({r.stdout}{r.stderr})")
        msg = r.stderr
        for w in [os.path.join(al.cache, "data.mdb"), "damaged", "mv ", "airlock import"] + words:
            if w not in msg:
                fail(f"{what}: airlock {cmd} does not say {w!r}: {msg!r}")
        if "multibyte" in msg:
            fail(f"{what}: the message blames characters: {msg!r}")
    p = subprocess.run([AIRLOCK, "serve", "--config", al.config], capture_output=True, text=True, timeout=30,
                       errors="replace")
    if p.returncode < 0:
        fail(f"{what}: serve died with {signal.Signals(-p.returncode).name}")
    eq(p.returncode != 0, True, f"{what}: serve must refuse to start")
    if "damaged" not in p.stdout + p.stderr:
        fail(f"{what}: serve's log does not say the cache is damaged: {(p.stdout + p.stderr)[-400:]}")


def test():
    with Case() as (up, al, tmp):
        for i in range(4):
            p = f"/downloads/beats/filebeat/filebeat-8.15.{i}-linux-x86_64.tar.gz"
            up.add(p, os.urandom(600 * 1024 + i))
            eq(curl(al, p).status, 200, "fill")
        al.stop()
        path = os.path.join(al.cache, "data.mdb")
        good = os.path.join(tmp, "good.mdb")
        shutil.copyfile(path, good)
        data = open(good, "rb").read()
        root, last = newest_meta(data)
        if not 2 <= root <= last or (last + 1) * PAGE > len(data):
            fail(f"could not read the meta page: root {root}, last page {last}, {len(data)} bytes")

        # cut short before the main tree's root: LMDB would read past the end of the file
        with open(path, "r+b") as f:
            f.truncate(root * PAGE)
        os.remove(os.path.join(al.cache, "lock.mdb"))
        expect_plain_refusal(al, "data.mdb cut short", ["cut short"])

        # the main tree's root page marked as an overflow page
        shutil.copyfile(good, path)
        with open(path, "r+b") as f:
            f.seek(root * PAGE + 10)              # mp_flags
            f.write(struct.pack("<H", 0x04))      # P_OVERFLOW
        expect_plain_refusal(al, "a root page of the wrong type", ["MDB_CORRUPTED"])

        # the good copy opens and serves again: nothing was changed by the refusals
        shutil.copyfile(good, path)
        al.start()
        eq(curl(al, "/downloads/beats/filebeat/filebeat-8.15.0-linux-x86_64.tar.gz").status, 200, "after repair")


if __name__ == "__main__":
    main(test)
