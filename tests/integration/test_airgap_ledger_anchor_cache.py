"""The ledger's head is anchored in the cache's LMDB too: cutting both ledger files together is seen.

ledger.head (test_airgap_ledger_cut) catches records cut from the end of ledger.jsonl, but whoever
cuts one file can cut both: drop the last record and rewrite ledger.head to name the new last one,
and the chain read as intact.  Each append now also keeps the head (seq and digest) in the cache's
LMDB (info "ledger_head", cache/store.c al_store_ledger_head_put) under the ledger's lock, and
`airlock ledger` checks the chain against it.  Three exports leave six records; then:
  - the last record cut from both files (ledger.head rewritten to name record 5) is named by
    `ledger --verify` and `--json` (record 6, the cache's LMDB names it), and export refuses;
  - the same while airlock runs on the cache (ledger opens it shared);
  - both files removed: records 1 to 6;
  - `ledger --new-chain` refuses an intact ledger; on the broken one it sets the files aside
    (renamed, kept) and begins a new chain whose first record names the old head (seq 6, its
    digest), which verifies and takes the next export's records, the cache's anchor following.
Before the LMDB anchor, the cut ledger verified as "5 records, chain intact"."""
import glob, json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, cli, eq, fail, main
from test_registry_index import Probe


def cache_anchor(probe):
    out = probe.run("get", "info", b"ledger_head".hex()).strip()
    if out == "absent":
        return None
    v = bytes.fromhex(out)
    return int.from_bytes(v[:8], "little"), v[8:].decode()


def test():
    with Case() as (up, al, tmp):
        al.stop()
        probe = Probe(tmp, al.cache)
        for i in range(3):
            cli(al.config, "export", os.path.join(tmp, f"b{i}.airlock"))
        lp, hp = (os.path.join(al.cache, n) for n in ("ledger.jsonl", "ledger.head"))
        lines = open(lp).read().splitlines(keepends=True)
        recs = [json.loads(l) for l in lines]
        eq(len(recs), 6, "three exports, two records each")
        eq(cache_anchor(probe), (6, recs[-1]["digest"]), "the cache's anchor names the head")

        def broken(first_bad, good_records, words):
            p = cli(al.config, "ledger", "--json", ok=False)
            j = json.loads(p.stdout)
            eq((p.returncode, j["intact"], j["first_bad"], j["good_records"]), (1, False, first_bad, good_records),
               words)
            if words not in j["error"] or "the cache's LMDB names" not in j["error"]:
                fail(f"{words}: {j['error']}")
            v = cli(al.config, "ledger", "--verify", ok=False)
            if v.returncode != 1 or f"BROKEN at {words}" not in v.stdout:
                fail(f"--verify: {v.stdout}")

        # Both files cut together: the chain of five is sound, ledger.head agrees with it.
        open(lp, "w").write("".join(lines[:5]))
        open(hp, "w").write(json.dumps({"seq": 5, "digest": recs[4]["digest"]}, separators=(",", ":")) + "\n")
        broken(6, 5, "record 6: cut from the end of the ledger")
        p = cli(al.config, "export", os.path.join(tmp, "x.airlock"), ok=False)
        if p.returncode == 0 or "cut from the end" not in p.stderr:
            fail(f"an export over a cut ledger: {p.stdout}{p.stderr}")
        eq(open(lp).read(), "".join(lines[:5]), "nothing appended to the cut ledger")

        al.start()
        try:
            broken(6, 5, "record 6: cut from the end of the ledger")
        finally:
            al.stop()

        os.remove(lp)
        os.remove(hp)
        broken(1, 0, "records 1 to 6: cut from the end of the ledger")
        open(lp, "w").write("".join(lines[:5]))
        open(hp, "w").write(json.dumps({"seq": 5, "digest": recs[4]["digest"]}, separators=(",", ":")) + "\n")

        # A new chain, on purpose and on the record.
        p = cli(al.config, "ledger", "--new-chain")
        if "a new chain begins with record 1" not in p.stdout:
            fail(f"ledger --new-chain: {p.stdout}")
        aside = glob.glob(lp + ".*.old")
        eq(len(aside), 1, "the broken ledger set aside")
        eq(open(aside[0]).read(), "".join(lines[:5]), "kept as it was")
        eq(len(glob.glob(hp + ".*.old")), 1, "its ledger.head set aside")
        first = [json.loads(l) for l in open(lp)]
        eq(len(first), 1, "the new chain's first record")
        eq((first[0]["command"], first[0]["seq"], first[0]["old_head_seq"], first[0]["old_head"], first[0]["file"]),
           ("new-chain", 1, 6, recs[-1]["digest"], aside[0]), "it names what was set aside and the old head")
        cli(al.config, "export", os.path.join(tmp, "c.airlock"))
        recs = [json.loads(l) for l in open(lp)]
        p = cli(al.config, "ledger", "--verify")
        if f"3 records, chain intact; head {recs[-1]['digest']}" not in p.stdout:
            fail(p.stdout)
        eq(cache_anchor(probe), (3, recs[-1]["digest"]), "the cache's anchor follows the new chain")
        p = cli(al.config, "ledger", "--new-chain", ok=False)
        if p.returncode == 0 or "is intact" not in p.stderr:
            fail(f"--new-chain on an intact ledger: {p.stdout}{p.stderr}")


if __name__ == "__main__":
    main(test)
