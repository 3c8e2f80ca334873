"""The ledger of custody (issue 28): every export and import appends a
hash-chained record in the cache directory, on both sides of the gap.

Connected side: mirror fills a cache from the fake upstream; a signed full
export and a delta each leave a "started" record (which the bundle carries
under its signature) and a "written" one naming the bundle by the digest
the test reads from the file, the signer, the base, and the counts.  Closed
side: an unsigned bundle refused (with the reason), then the full bundle
and the delta admitted, each as the connected side's record, byte for byte
as it is in the connected ledger, then the import with the counts import
printed.  `airlock
ledger --verify` checks the chains.  Then the closed side's ledger is edited
by hand: a count changed is caught at that record; the same edit with the
record's digest recomputed is caught at the next; a carried record altered
is caught; a record deleted is caught where it was.  A broken ledger refuses the next import, leaving the cache as
it was."""
import hashlib, json, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, beat_artifact, cli, entries, eq, fail, main

V = "8.13.4"


def file_digest(path):
    """The whole-file digest: the trailer's, SHA-256 of every byte before it (no signature block if unsigned)."""
    data = open(path, "rb").read()
    # the trailer ends the file, or comes before a signature block (3 + 64 bytes); a signature's byte
    # can be "T" where an unsigned trailer would start (it was, once in 256 runs): the trailer is where
    # its digest holds
    found = [t for t in (len(data) - 41, len(data) - 41 - 3 - 64)
             if t >= 0 and data[t:t + 1] == b"T" and hashlib.sha256(data[:t + 9]).digest() == data[t + 9:t + 41]]
    eq(len(found), 1, "trailers whose digest holds (the file's last 41 bytes, or before a signature block)")
    t = found[0]
    return data[t + 9:t + 41].hex()


def ledger(cfg, ok=True):
    p = cli(cfg, "ledger", "--json", ok=ok)
    return json.loads(p.stdout), p


def chained(recs, what):
    prev = "0" * 64
    for i, r in enumerate(recs, 1):
        eq((r["seq"], r["prev"]), (i, prev), f"{what}: record {i} chains to the one before")
        prev = r["digest"]


def test():
    with Case() as (up, al, tmp):
        al.stop()
        keys = os.path.join(tmp, "keys")
        kid = subprocess.run([AIRLOCK, "keygen", keys], capture_output=True, text=True, timeout=30).stdout.split()[1].rstrip(":")
        beat_artifact(up, "filebeat", os.urandom(30000), '"fb-1"', V)
        cli(al.config, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format", "tar.gz",
            "--only", "filebeat")
        eq(ledger(al.config)[0]["records"], [], "no ledger before the first export")
        full, delta, unsigned = (os.path.join(tmp, n) for n in ("full.airlock", "delta.airlock", "unsigned.airlock"))
        out = cli(al.config, "export", full, "--sign", os.path.join(keys, "bundle.key")).stdout
        if "ledger of custody: record" not in out:
            fail(f"export says it recorded: {out}")
        beat_artifact(up, "metricbeat", os.urandom(20000), '"mb-1"', V)
        cli(al.config, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format", "tar.gz",
            "--only", "metricbeat")
        cli(al.config, "export", delta, "--since", full, "--sign", os.path.join(keys, "bundle.key"))
        cli(al.config, "export", unsigned)
        j, _ = ledger(al.config)
        recs = j["records"]
        # each export: a "started" record once its entries are planned (the bundle carries it), then "written"
        eq([(r["command"], r["result"]) for r in recs], [("export", "started"), ("export", "written")] * 3,
           "three exports, two records each")
        chained(recs, "connected")
        eq(os.path.exists(os.path.join(al.cache, "ledger.jsonl")), True, "the ledger is in the cache directory")
        connected_lines = open(os.path.join(al.cache, "ledger.jsonl")).read().splitlines()
        r = recs[1]
        version = subprocess.run([AIRLOCK, "version"], capture_output=True, text=True).stdout.split()[1]
        eq((r["command"], r["result"], r["file"], r["bundle_digest"], r["signer"], r["base"], r["airlock"], r["host"],
            r["started"]), ("export", "written", full, file_digest(full), kid, None, version, os.uname().nodename,
                         recs[0]["digest"]), "the full export")
        eq(recs[0]["entries"], r["entries"], "the started record has the planned counts")
        n_full = r["entries"]["carried"]
        r = recs[3]
        eq((r["bundle_digest"], r["base"], r["entries"]["added"], r["entries"]["changed"], r["entries"]["unchanged"]),
           (file_digest(delta), file_digest(full), 3, 0, n_full), "the delta: metricbeat, its .sha512 and .asc 404")
        eq((j["intact"], j["first_bad"], j["head"]), (True, None, recs[-1]["digest"]), "intact")
        c = json.loads(cli(al.config, "inspect", full, "--json").stdout)["bundle"]["custody"]
        eq((c["seq"], c["record_digest"], c["host"]), (1, recs[0]["digest"], os.uname().nodename),
           "inspect shows the record the bundle carries")

        # The closed side.
        d2 = tempfile.mkdtemp(prefix="airlock-gap-")
        try:
            gap = Airlock(d2, up, offline=True)
            gap.stop()
            open(gap.config, "a").write(f"import:\n  trusted_keys: [{os.path.join(keys, 'bundle.pub')}]\n")
            p = cli(gap.config, "import", unsigned, ok=False)
            eq(p.returncode, 1, "unsigned refused")
            a = cli(gap.config, "import", full).stdout
            b = cli(gap.config, "import", delta).stdout
            j, _ = ledger(gap.config)
            recs = j["records"]
            eq([(r["command"], r["result"]) for r in recs],
               [("import", "refused"), ("custody", "carried"), ("import", "admitted"), ("custody", "carried"),
                ("import", "admitted")], "each admitted bundle: the connected side's record, then the import")
            chained(recs, "closed")
            r = recs[0]
            if "is not signed" not in r["reason"] or r["signature"] != "unsigned" or r["entries"]["refused"] == 0:
                fail(f"the refusal is recorded with its reason: {r}")
            # the connected side's "started" records crossed inside the signed bundles, byte for byte
            eq((recs[1]["record_line"], recs[1]["record_digest"], recs[1]["bundle_digest"], recs[1]["from_host"]),
               (connected_lines[0], ledger(al.config)[0]["records"][0]["digest"], file_digest(full),
                os.uname().nodename), "the full bundle's custody record")
            eq(recs[3]["record_line"], connected_lines[2], "the delta's custody record")
            r = recs[2]
            eq((r["bundle_digest"], r["signer"], r["signature"], r["base"]),
               (file_digest(full), kid, "verified by a trusted key", None), "the full import")
            if f"added {r['entries']['added']}, updated 0, skipped 0" not in a:
                fail(f"the record's counts are import's: {r} vs {a}")
            r = recs[4]
            eq((r["bundle_digest"], r["base"], r["entries"]["added"]), (file_digest(delta), file_digest(full), 3),
               "the delta import names its base")
            if "added 3," not in b:
                fail(b)
            p = cli(gap.config, "ledger", "--verify")
            if f"5 records, chain intact; head {recs[-1]['digest']}" not in p.stdout:
                fail(p.stdout)
            t = cli(gap.config, "ledger").stdout
            if f"carried from {os.uname().nodename}: its record 1 (export started" not in t:
                fail(f"the text ledger shows the carried record:\n{t}")

            # Edited by hand.
            lp = os.path.join(gap.cache, "ledger.jsonl")
            good = open(lp).read()
            lines = good.splitlines(keepends=True)
            n_added = recs[2]["entries"]["added"]
            edited = lines[2].replace(f'"added":{n_added},', f'"added":{n_added + 1},', 1)
            if edited == lines[2]:
                fail("the edit should change the record")
            open(lp, "w").write("".join(lines[:2] + [edited] + lines[3:]))
            j, p = ledger(gap.config, ok=False)
            eq((p.returncode, j["intact"], j["first_bad"], j["good_records"], len(j["records"])), (1, False, 3, 2, 2),
               "an edited count is caught at its record")
            if "the record was edited" not in j["error"]:
                fail(j["error"])
            p = cli(gap.config, "ledger", "--verify", ok=False)
            if p.returncode != 1 or "BROKEN at record 3: its content does not match its digest" not in p.stdout:
                fail(p.stdout)
            # The forger recomputes the edited record's digest: the next record's prev gives it away.
            body = edited[:edited.rindex(',"digest":"')]
            forged = body + ',"digest":"' + hashlib.sha256(body.encode()).hexdigest() + '"}\n'
            open(lp, "w").write("".join(lines[:2] + [forged] + lines[3:]))
            j, _ = ledger(gap.config, ok=False)
            eq((j["first_bad"], j["good_records"]), (4, 3), "a re-digested edit is caught at the next record")
            if "prev is not the digest of the record before it" not in j["error"]:
                fail(j["error"])
            # The carried record edited inside its custody record (and that record re-digested): caught there.
            carried = json.loads(lines[1])["record_line"]
            line = lines[1].replace(json.dumps(carried)[1:-1], json.dumps(carried.replace('"started"', '"written"'))[1:-1])
            body = line[:line.rindex(',"digest":"')]
            line = body + ',"digest":"' + hashlib.sha256(body.encode()).hexdigest() + '"}\n'
            if line == lines[1]:
                fail("the carried record should change")
            open(lp, "w").write("".join(lines[:1] + [line] + lines[2:]))
            j, _ = ledger(gap.config, ok=False)
            eq(j["first_bad"], 2, "a carried record edited is caught")
            if "it carries from the other side does not match its own digest" not in j["error"]:
                fail(j["error"])
            # A record deleted.
            open(lp, "w").write("".join(lines[:2] + lines[3:]))
            j, _ = ledger(gap.config, ok=False)
            eq(j["first_bad"], 3, "a deleted record is caught where it was")
            # A broken ledger refuses the next import; nothing is admitted.
            cli(gap.config, "purge", "*metricbeat*")
            before = entries(gap.config, cols=(0, 1, 3, 4, 5))
            p = cli(gap.config, "import", delta, ok=False)
            if p.returncode != 1 or "ledger of custody" not in p.stderr or "is broken" not in p.stderr:
                fail(f"import over a broken ledger: {p.stdout}{p.stderr}")
            eq(entries(gap.config, cols=(0, 1, 3, 4, 5)), before, "nothing admitted over a broken ledger")
            eq(open(lp).read(), "".join(lines[:2] + lines[3:]), "the broken ledger is left as it was")
        finally:
            shutil.rmtree(d2, ignore_errors=True)


if __name__ == "__main__":
    main(test)
