"""The ledger of custody cannot lose records from its end unseen (issue 28).

A hash chain shows an edited, removed or inserted record, but a ledger cut
after record N is a sound chain of N records.  Each append also writes the
head (seq and digest) to ledger.head beside it.  Three exports leave six
records and an anchor naming the sixth; then: the last record cut is named
(record 6, cut from the end) by `ledger --verify` and `ledger --json`, and
the next export refuses to append to it; two records cut names both; the
ledger emptied, and the ledger file removed, name all six; six records cut
and replaced by a new chain of the same length is caught at the anchored
record.  The sound ledger put back verifies and takes the next record, and
the anchor follows it.  A ledger written before the anchor existed (no
ledger.head) still reads as intact."""
import json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, cli, eq, fail, main
from test_registry_index import Probe


def test():
    with Case() as (up, al, tmp):
        al.stop()
        for i in range(3):
            cli(al.config, "export", os.path.join(tmp, f"b{i}.airlock"))
        lp, hp = (os.path.join(al.cache, n) for n in ("ledger.jsonl", "ledger.head"))
        good = open(lp).read()
        lines = good.splitlines(keepends=True)
        recs = [json.loads(l) for l in lines]
        eq(len(recs), 6, "three exports, two records each")
        eq(json.load(open(hp)), {"seq": 6, "digest": recs[-1]["digest"]}, "the anchor names the head")

        def broken(content, first_bad, good_records, words):
            if content is None:
                os.remove(lp)
            else:
                open(lp, "w").write(content)
            p = cli(al.config, "ledger", "--json", ok=False)
            j = json.loads(p.stdout)
            eq((p.returncode, j["intact"], j["first_bad"], j["good_records"]), (1, False, first_bad, good_records),
               words)
            if words not in j["error"]:
                fail(f"{words}: {j['error']}")
            v = cli(al.config, "ledger", "--verify", ok=False)
            if v.returncode != 1 or f"BROKEN at {words}" not in v.stdout:
                fail(f"--verify: {v.stdout}")

        broken("".join(lines[:5]), 6, 5, "record 6: cut from the end of the ledger")
        p = cli(al.config, "export", os.path.join(tmp, "x.airlock"), ok=False)
        if p.returncode == 0 or "is broken" not in p.stderr or "cut from the end" not in p.stderr:
            fail(f"an export over a cut ledger: {p.stdout}{p.stderr}")
        eq(open(lp).read(), "".join(lines[:5]), "nothing appended to the cut ledger")
        broken("".join(lines[:4]), 5, 4, "records 5 to 6: cut from the end of the ledger")
        broken("", 1, 0, "records 1 to 6: cut from the end of the ledger")
        broken(None, 1, 0, "records 1 to 6: cut from the end of the ledger")

        # A new chain of six in place of the old: sound on its own, not the anchored one.  The cache's
        # own anchor (test_airgap_ledger_anchor_cache) is set aside meanwhile, as a cache from before it
        # has none, so that the exports write the new chain and ledger.head alone catches it.
        probe = Probe(tmp, al.cache)
        kept = probe.run("get", "info", b"ledger_head".hex()).strip()
        probe.run("del", "info", b"ledger_head".hex())
        open(lp, "w").write("")
        os.rename(hp, hp + ".kept")
        for i in range(3):
            cli(al.config, "export", os.path.join(tmp, f"c{i}.airlock"))
        os.rename(hp + ".kept", hp)
        probe.run("del", "info", b"ledger_head".hex())
        broken(open(lp).read(), 6, 6, "record 6: not the record ledger.head names as the head")

        probe.run("put", "info", b"ledger_head".hex(), kept)
        open(lp, "w").write(good)
        p = cli(al.config, "ledger", "--verify")
        if f"6 records, chain intact; head {recs[-1]['digest']}" not in p.stdout:
            fail(p.stdout)
        cli(al.config, "export", os.path.join(tmp, "b3.airlock"))
        recs = [json.loads(l) for l in open(lp)]
        eq(json.load(open(hp)), {"seq": 8, "digest": recs[-1]["digest"]}, "the anchor follows each append")

        os.remove(hp)
        j = json.loads(cli(al.config, "ledger", "--json").stdout)
        eq((j["intact"], j["good_records"]), (True, 8), "a ledger without an anchor (an older airlock's) reads")


if __name__ == "__main__":
    main(test)
