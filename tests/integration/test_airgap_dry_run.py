"""airlock export --dry-run (issue 28): the listing export would write, and
nothing written.  A cache is filled through mirror and exported (OLD); then
the upstream publishes a new artifact and republishes one, mirror runs
again.  `export NEW --dry-run --since OLD` creates no file (the directory is
the same before and after) and lists exactly the entries, and counts exactly
the added / changed / unchanged, that the real `export NEW --since OLD` then
writes (read back with inspect), in text, JSON and CSV."""
import csv, hashlib, io, json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, beat_artifact, cli, eq, fail, main

V = "8.13.4"


def mirror(cfg, *names):
    cli(cfg, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format", "tar.gz",
        "--only", ",".join(names))


def test():
    with Case() as (up, al, tmp):
        al.stop()
        cfg = al.config
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        fb = beat_artifact(up, "filebeat", os.urandom(50000), '"fb-1"', V)
        mb = beat_artifact(up, "metricbeat", os.urandom(40000), '"mb-1"', V)
        mirror(cfg, "filebeat", "metricbeat")
        old = os.path.join(out, "old.airlock")
        # a full dry run first: everything is "added", nothing is written
        j = json.loads(cli(cfg, "export", old, "--dry-run", "--json").stdout)
        eq(os.listdir(out), [], "a dry run writes nothing")
        eq((j["bundle"]["added"], j["bundle"]["changed"], j["bundle"]["unchanged"]), (j["bundle"]["entries"], 0, 0),
           "without a base every entry is added")
        cli(cfg, "export", old)
        eq(len(json.loads(cli(cfg, "inspect", old, "--json").stdout)["entries"]), j["bundle"]["entries"],
           "the full dry run's count is the full export's")

        # Later: a new artifact, and metricbeat republished (new body, new ETag).
        hb = beat_artifact(up, "heartbeat", os.urandom(30000), '"hb-1"', V)
        mb_body = os.urandom(41000)
        beat_artifact(up, "metricbeat", mb_body, '"mb-2"', V)
        cli(cfg, "purge", mb + "*")
        mirror(cfg, "metricbeat", "heartbeat")

        new = os.path.join(out, "new.airlock")
        before = sorted(os.listdir(out))
        p = cli(cfg, "export", new, "--dry-run", "--since", old, "--json")
        eq(sorted(os.listdir(out)), before, "the dry run creates no file")
        eq(os.path.exists(new), False, "no bundle at the dry run's path")
        j = json.loads(p.stdout)
        b = j["bundle"]
        # heartbeat, its .sha512 and its .asc (a cached 404) added; metricbeat and its .sha512
        # changed; filebeat's, metricbeat's 404 .asc (the same again) and the GPG key's unchanged
        eq((b["added"], b["changed"], b["dry_run"], b["base"]), (3, 2, True, old), "counts against OLD")
        changes = {e["url"]: e["change"] for e in j["entries"]}
        eq(changes, {hb: "added", hb + ".sha512": "added", hb + ".asc": "added", mb: "changed",
                     mb + ".sha512": "changed"}, "each entry's change")
        eq({x["url"]: x["status"] for x in j["entries"]}[hb + ".asc"], 404, "a cached 404 is listed with its status")
        e = {x["url"]: x for x in j["entries"]}[mb]
        eq((e["kind"], e["product"], e["version"], e["platform"], e["size"], e["sha256"], e["sha512_check"]),
           ("agent-artifact", "metricbeat", V, "linux-x86_64", len(mb_body), hashlib.sha256(mb_body).hexdigest(),
            "matched at fill"), "a dry-run row")

        # The real delta carries exactly that, and says the same counts.
        p = cli(cfg, "export", new, "--since", old)
        if f"{b['entries']} new or changed entries carried, {b['unchanged']} unchanged left out" not in p.stdout:
            fail(f"the delta's counts should be the dry run's: {p.stdout}\ndry run: {b}")
        k = json.loads(cli(cfg, "inspect", new, "--json").stdout)
        eq([(x["url"], x["sha256"], x["size"]) for x in k["entries"]],
           [(x["url"], x["sha256"], x["size"]) for x in j["entries"]], "the delta's listing is the dry run's")
        eq(k["bundle"]["body_bytes"], b["body_bytes"], "body bytes")

        # CSV and text say the same.
        rows = list(csv.DictReader(io.StringIO(cli(cfg, "export", new + "2", "--dry-run", "--since", old, "--csv").stdout)))
        eq({r["url"]: r["change"] for r in rows}, changes, "CSV change column")
        t = cli(cfg, "export", new + "3", "--dry-run", "--since", old).stdout
        for w in ("nothing was written", f"added 3, changed 2, unchanged {b['unchanged']}", f"incremental on {old}"):
            if w not in t:
                fail(f"text dry run should say {w!r}:\n{t}")
        eq(sorted(os.listdir(out)), ["new.airlock", "old.airlock"], "no dry run wrote a file")


if __name__ == "__main__":
    main(test)
