"""airlock export --split SIZE (issue 28): a bundle fitted to the media.

A cache filled through mirror is exported signed with --split 64KiB:
FILE.001, FILE.002, ... each at most 64 KiB, and FILE.index naming each part
with the size and SHA-256 the test computes, and the bundle's digest (the
trailer of the parts put together).  inspect reads the parts as one bundle.
On the closed side, import of the first part or the index: a missing part, a
short one, one with a byte flipped, and one swapped for the same part of
another bundle are each named (part number and file) before anything is
admitted, and the cache stays empty; so is the last part with its last byte
(the signature's) flipped, which only the part's digest shows when no key
is trusted; with every part in place the import
admits the same entries as the connected cache holds, and the ledger
records it.  A second split export onto existing parts is refused."""
import hashlib, json, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, cli, entries, eq, fail, main, mirrored_beats

V = "8.13.4"
PART = 64 * 1024


def test():
    with Case() as (up, al, tmp):
        al.stop()
        mirrored_beats(up, al.config, V, ("filebeat", "metricbeat", "auditbeat"), 90000)
        keys = os.path.join(tmp, "keys")
        subprocess.run([AIRLOCK, "keygen", keys], capture_output=True, timeout=30, check=True)
        out = os.path.join(tmp, "media")
        os.mkdir(out)
        b = os.path.join(out, "stack.airlock")
        p = cli(al.config, "export", b, "--split", "64KiB", "--sign", os.path.join(keys, "bundle.key"))
        ix = json.load(open(b + ".index"))
        n = len(ix["parts"])
        if n < 4 or f"({n} parts of at most {PART} bytes)" not in p.stdout:
            fail(f"export --split: {p.stdout}")
        eq(sorted(os.listdir(out)), sorted([f"stack.airlock.{i:03d}" for i in range(1, n + 1)] + ["stack.airlock.index"]),
           "the parts and the index, nothing else")
        whole = b""
        for i, part in enumerate(ix["parts"], 1):
            data = open(os.path.join(out, part["name"]), "rb").read()
            eq(part["name"], f"stack.airlock.{i:03d}", "part names in order")
            eq((part["bytes"], part["sha256"]), (len(data), hashlib.sha256(data).hexdigest()), f"part {i} in the index")
            if len(data) > PART or (i < n and len(data) != PART):
                fail(f"part {i} is {len(data)} bytes; at most {PART}, and full but for the last")
            whole += data
        eq(whole[:8], b"ALKBNDL3", "the parts together are a bundle")
        t = len(whole) - 41 - 67
        eq(whole[t:t + 1], b"T", "trailer")
        eq((hashlib.sha256(whole[:t + 9]).hexdigest(), ix["bundle_digest"]), (whole[t + 9:t + 41].hex(),) * 2,
           "the index names the bundle by its digest")
        j = json.loads(cli(al.config, "inspect", b + ".001", "--json", "--trust", os.path.join(keys, "bundle.pub")).stdout)
        eq((j["ok"], j["bundle"]["digest"], j["bundle"]["file_bytes"], len(j["entries"])),
           (True, ix["bundle_digest"], len(whole), len(entries(al.config))), "inspect reads the parts as one bundle")
        p = cli(al.config, "export", b, "--split", "64KiB", ok=False)
        if p.returncode != 1 or "does not overwrite parts" not in p.stderr:
            fail(f"a split export onto existing parts: {p.stderr}")
        eq(json.load(open(b + ".index")), ix, "the earlier index is untouched")

        # Another bundle's parts, to swap one in.
        other = os.path.join(tmp, "other")
        os.mkdir(other)
        cli(al.config, "export", os.path.join(other, "stack.airlock"), "--split", "64KiB")  # unsigned: other bytes

        d2 = tempfile.mkdtemp(prefix="airlock-gap-")
        try:
            gap = Airlock(d2, up, offline=True)
            gap.stop()
            p2 = os.path.join(out, "stack.airlock.002")
            good2 = open(p2, "rb").read()
            def attempt(target, want, what):
                p = cli(gap.config, "import", target, ok=False)
                if p.returncode != 1 or want not in p.stderr or "the cache was not changed" not in p.stderr:
                    fail(f"{what}: {p.stdout}{p.stderr}")
                eq(entries(gap.config), [], f"{what}: nothing admitted")
            os.rename(p2, p2 + ".away")
            attempt(b + ".001", f"part 2 of {n}, {p2}, is missing", "a missing part")
            os.rename(p2 + ".away", p2)
            open(p2, "wb").write(good2[:-100])
            attempt(b + ".index", f"part 2 of {n}, {p2}, is short: {len(good2) - 100} bytes where the index says "
                                  f"{len(good2)}", "a short part")
            bad = bytearray(good2)
            bad[len(bad) // 2] ^= 1
            open(p2, "wb").write(bad)
            attempt(b + ".001", f"part 2 of {n}, {p2}, is not the part the index names", "a flipped byte")
            shutil.copy(os.path.join(other, "stack.airlock.002"), p2)
            attempt(b + ".001", "a part of another bundle", "another bundle's part")
            open(p2, "wb").write(good2)
            # The signature's last byte, in the last part: the bundle reads as sound without trusted keys, and
            # each part's digest is taken in the one admitting read; the part is still named, nothing admitted.
            pn = os.path.join(out, f"stack.airlock.{n:03d}")
            goodn = open(pn, "rb").read()
            open(pn, "wb").write(goodn[:-1] + bytes([goodn[-1] ^ 1]))
            attempt(b + ".index", f"part {n} of {n}, {pn}, is not the part the index names", "the last byte")
            open(pn, "wb").write(goodn)
            refused = json.loads(cli(gap.config, "ledger", "--json").stdout)["records"]
            eq([r["result"] for r in refused], ["refused"] * 5, "each refusal is in the ledger")
            if "is missing" not in refused[0]["reason"]:
                fail(refused[0])
            p = cli(gap.config, "import", b + ".001", "--trust", os.path.join(keys, "bundle.pub"))
            if "signature by trusted key" not in p.stdout:
                fail(p.stdout)
            eq(entries(gap.config), entries(al.config), "every part in place: the same entries as the connected cache")
            r = json.loads(cli(gap.config, "ledger", "--json").stdout)["records"][-1]
            eq((r["command"], r["result"], r["bundle_digest"]), ("import", "admitted", ix["bundle_digest"]),
               "the ledger names the split bundle by its digest")
            # An index that lists an empty part (no byte of the bundle in it) still reads: its digest is the
            # empty one's, checked without a read.
            ix2 = dict(ix, parts=ix["parts"] + [{"name": "stack.airlock.empty", "bytes": 0,
                                                 "sha256": hashlib.sha256(b"").hexdigest()}])
            open(os.path.join(out, "stack.airlock.empty"), "wb").close()
            json.dump(ix2, open(b + ".index", "w"))
            p = cli(gap.config, "import", b + ".index")
            if f"skipped {len(entries(al.config))} " not in p.stdout:
                fail(f"the same bundle again, with an empty part listed: {p.stdout}")
        finally:
            shutil.rmtree(d2, ignore_errors=True)


if __name__ == "__main__":
    main(test)
