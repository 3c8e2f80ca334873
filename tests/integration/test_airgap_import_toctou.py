"""airlock import reads a bundle once (issue 28): what is verified is what is admitted.

A signed bundle of three 300 KiB artifacts (and their .sha512) is imported
with --trust while a test hook (tests/lib/bundle_hook.c, LD_PRELOAD'ed)
rewrites the bundle file in place at an exact byte of its reading, the way
an attacker with write access to the media would:

1. when byte 0 is about to be read for the second time (between a
   verifying read and an admitting one, if there are two): the file becomes
   a forgery of itself with one body byte flipped.  The import must read the
   file through byte 0 once only, and what it admits must be the signed
   bodies: `airlock verify` re-digests every body in the cache and finds
   none corrupt, and each entry's size and ETag are the connected side's.
2. when the second artifact's body is about to be read for the first time:
   the import must refuse it (that entry is not what the signed listing
   names), admit nothing at all (not even the entries read before the
   swap), and the ledger records the refusal.
Then the untouched bundle imports whole.  And since import reads once, a
bundle can come through a pipe (a FIFO here): with the right --trust key it
imports whole, with another key it is refused (the signature is checked at
the end, before anything is published) and nothing is admitted."""
import os, shutil, subprocess, sys, tempfile, threading
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, BUNDLE_HOOK, Case, cli, entries, eq, fail, hooked, main, mirrored_beats

V = "8.13.4"


def test():
    if not os.path.exists(BUNDLE_HOOK):
        fail(f"the test hook {BUNDLE_HOOK} is not built")
    with Case() as (up, al, tmp):
        al.stop()
        bodies = mirrored_beats(up, al.config, V, ("filebeat", "metricbeat", "auditbeat"), 300 * 1024)
        want = entries(al.config)
        keys = os.path.join(tmp, "keys")
        subprocess.run([AIRLOCK, "keygen", keys], capture_output=True, timeout=30, check=True)
        signed = os.path.join(tmp, "signed.airlock")
        cli(al.config, "export", signed, "--sign", os.path.join(keys, "bundle.key"))
        data = open(signed, "rb").read()
        # the bodies in file order; the forgery flips a byte in the middle of the second one
        offs = sorted(data.find(b) for b in bodies.values())
        if -1 in offs:
            fail("a body is not stored whole in the bundle")
        second = offs[1]
        forged = bytearray(data)
        forged[second + 150 * 1024] ^= 0x01
        forged_path = os.path.join(tmp, "forged.airlock")
        open(forged_path, "wb").write(forged)
        pub = os.path.join(keys, "bundle.pub")

        tmp2 = tempfile.mkdtemp(prefix="airlock-gap-")
        try:
            gap = Airlock(tmp2, up, offline=True)
            gap.stop()
            # The forgery on its own is refused (the listing's body digest), nothing admitted.
            p = cli(gap.config, "import", forged_path, "--trust", pub, ok=False)
            eq(p.returncode, 1, f"import of the forgery:\n{p.stdout}\n{p.stderr}")
            if "not the entry the listing names" not in p.stderr and "mismatch" not in p.stderr:
                fail(f"the forgery's refusal should say what is wrong: {p.stderr}")
            eq(entries(gap.config), [], "nothing admitted from the forgery")

            # 2. swapped while its second body is being read for the first time: refused, nothing admitted
            b2 = os.path.join(tmp2, "b2.airlock")
            shutil.copy(signed, b2)
            log = os.path.join(tmp2, "hook2.log")
            p = cli(gap.config, "import", b2, "--trust", pub, ok=False, env=hooked(b2, second, 1,
                                                                              "swap:" + forged_path, log))
            hook = open(log).read().split("\n")
            if "swapped 1" not in hook:
                fail(f"the hook should have swapped the file at the second body: {hook}")
            eq(p.returncode, 1, f"import of a bundle altered while read:\n{p.stdout}\n{p.stderr}")
            if "not changed" not in p.stderr:
                fail(f"the refusal should say the cache was not changed: {p.stderr}")
            eq(entries(gap.config), [], "nothing admitted, not even the entries read before the swap")
            led = cli(gap.config, "ledger", "--json").stdout
            if '"refused"' not in led:
                fail(f"the ledger should record the refusal: {led}")

            # 1. swapped just before byte 0 is read a second time: never happens, and what is admitted is signed
            b1 = os.path.join(tmp2, "b1.airlock")
            shutil.copy(signed, b1)
            log = os.path.join(tmp2, "hook1.log")
            p = cli(gap.config, "import", b1, "--trust", pub, ok=False, env=hooked(b1, 0, 2, "swap:" + forged_path,
                                                                                   log))
            hook = [l for l in open(log).read().split("\n") if l]
            eq(hook, ["cross 1"], "the import reads the bundle's first byte once (one pass, nothing to swap between)")
            eq(p.returncode, 0, f"import of the intact bundle:\n{p.stdout}\n{p.stderr}")
            v = cli(gap.config, "verify")
            if "0 corrupt" not in v.stdout:
                fail(f"an admitted body is not the signed one: {v.stdout}")
            eq(entries(gap.config), want, "the connected side's entries, sizes and ETags")

            # and the file itself, read plainly, is the same bundle: a second import changes nothing
            p = cli(gap.config, "import", signed, "--trust", pub)
            if f"added 0, updated 0, skipped {len(want)} " not in p.stdout:
                fail(f"a second import admits nothing again:\n{p.stdout}")
            # through a pipe: refused with a key that did not sign it, admitted with the one that did
            other = os.path.join(tmp, "other")
            subprocess.run([AIRLOCK, "keygen", other], capture_output=True, timeout=30, check=True)
            for n, (key, rc) in enumerate(((os.path.join(other, "bundle.pub"), 1), (pub, 0))):
                d = tempfile.mkdtemp(prefix="airlock-pipe-", dir=tmp2)
                fresh = Airlock(d, up, offline=True)
                fresh.stop()
                fifo = os.path.join(d, "bundle.fifo")
                os.mkfifo(fifo)
                writer = threading.Thread(target=lambda: open(fifo, "wb").write(data), daemon=True)
                writer.start()
                p = cli(fresh.config, "import", fifo, "--trust", key, ok=False)
                writer.join(timeout=30)
                eq(p.returncode, rc, f"import through a pipe with key {n + 1}:\n{p.stdout}\n{p.stderr}")
                eq(entries(fresh.config), [] if rc else want, f"what a piped import with key {n + 1} admits")
                if rc and "not among the trusted keys" not in p.stderr:
                    fail(f"the refusal should name the key: {p.stderr}")
        finally:
            shutil.rmtree(tmp2, ignore_errors=True)


if __name__ == "__main__":
    main(test)
