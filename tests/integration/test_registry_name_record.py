"""Offline registry index, per-name records (index format 5): a name with a deprecated version has a
record under "<base>\\0<name>" in regidx holding its newest deprecated version and that version's
notice, which every version of the name carries in /search (elastic/package-registry at 16f54b67,
packages/deprecated.go PropagateLatestDeprecatedInfoToPackageList).  A list reads that record
instead of every version's summary, so the record must stay right whenever a version comes or
goes: admission, replacement by a document with a newer or no deprecation, purge, bundle import,
LRU eviction, and a rebuild at start from an index of format 4 (which has no records).  At each
step the record is read from the LMDB file and the answers are compared, byte for byte, with the
old way's (tests/tools/registry_direct.c: every document parsed whole by policy/registry.c) over
the documents the cache holds.  On the code before format 5 the record checks fail (there are no
records); with the record's upkeep cut (no recompute when its version goes, no update when a newer
deprecated version comes) the answers after the purge, replacement and import differ."""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main
from test_registry_index import Probe, cli, direct, doc

BASE = b"https://epr.elastic.co"
QUERIES = [
    ("search", "kibana.version=8.13.4&prerelease=false"),   # Kibana's list: the rendered path
    ("search", "kibana.version=8.13.4&prerelease=true"),
    ("search", "all=true&prerelease=true"),
    ("search", "kibana.version=8.13.4&category=security"),  # parses summaries
    ("search", "kibana.version=8.13.4&experimental=true"),  # legacy rules
    ("categories", "kibana.version=8.13.4&prerelease=false&include_policy_templates=true"),
]


def notice(text):
    return {"description": text, "since": "1.0.0", "replaced_by": {"package": "successor"}}


def pkg(name, version, i, dep=None, **kw):
    d = doc(name, version, i, cats=("security",) if i % 2 else ("web",), **kw)
    d["changelog"] *= 8  # weight for the eviction step; the summary drops it
    if dep is not None:
        d["deprecated"] = notice(dep)
    return d


def catalogue():
    return [
        pkg("apache", "1.0.0", 0, dep="apache: old notice"),
        pkg("apache", "1.2.0", 1, dep="apache: use apache_v2"),
        pkg("apache", "1.10.0", 2),
        pkg("apache", "2.0.0-beta1", 3),
        pkg("nginx", "1.0.0", 4, dep="nginx: only its first version"),
        pkg("nginx", "1.2.0", 5),
        pkg("nginx", "1.10.0", 6),
        pkg("kafka", "1.0.0", 7),
        pkg("kafka", "2.0.0-beta1", 8, dep="kafka: the beta is deprecated"),  # a prerelease's notice
        pkg("zeek", "1.0.0", 9),
        pkg("zeek", "1.1.0", 10),
    ]


def semver_key(v):
    core, _, pre = v.partition("-")
    return tuple(int(x) for x in core.split(".")) + ((1,) if not pre else (0, pre))


def want_records(docs):
    """name -> (version, notice description) of its newest deprecated version."""
    out = {}
    for d in docs:
        if "deprecated" in d and (d["name"] not in out or semver_key(d["version"]) > semver_key(out[d["name"]][0])):
            out[d["name"]] = (d["version"], d["deprecated"]["description"])
    return out


def record(probe, name):
    """The name's record as (version, notice text), or None."""
    out = probe.run("get", "regidx", (BASE + b"\0" + name.encode()).hex()).strip()
    if out == "absent":
        return None
    raw = bytes.fromhex(out)
    head, _, rest = raw.partition(b"\n")
    vlen, dlen = (int(x) for x in head.split())
    eq(len(rest), vlen + dlen, f"record of {name}: lengths")
    return rest[:vlen].decode(), rest[vlen:].decode()


def check(probe, docs, what):
    want = want_records(docs)
    for name in sorted({d["name"] for d in docs} | {"apache", "nginx", "kafka", "zeek"}):
        got = record(probe, name)
        if name not in want:
            if got is not None:
                fail(f"{what}: {name} has no deprecated version, yet a record {got!r}")
            continue
        if got is None or got[0] != want[name][0] or json.dumps(want[name][1]) not in got[1]:
            fail(f"{what}: record of {name}: got {got!r}, want version {want[name][0]} with {want[name][1]!r}")
    # the format and generation stamps, one entry per document, one record per deprecated name
    eq(int(probe.run("count", "regidx")), 2 + len(docs) + len(want), f"{what}: regidx entries")


def answers(al, tmp, docs, what):
    for kind, query in QUERIES:
        r = curl(al, f"/{kind}?{query}")
        eq(r.status, 200, f"{what}: /{kind}?{query}")
        want = direct(tmp, docs, kind, query)
        if r.body != want:
            fail(f"{what}: /{kind}?{query} differs from the old way's answer:\n got  {r.body[:900]!r}\n"
                 f" want {want[:900]!r}")


def offline(tmp, up, probe, docs, what):
    check(probe, docs, what)
    off = Airlock(tmp, up, offline=True)
    try:
        answers(off, tmp, docs, what)
    finally:
        off.stop()


def serve(up, d, max_age=600):
    up.add(f"/package/{d['name']}/{d['version']}/", json.dumps(d),
           headers=[("Content-Type", "application/json"), ("Cache-Control", f"max-age={max_age}")])


def test():
    docs = catalogue()
    with Case() as (up, al, tmp):
        probe = Probe(tmp, al.cache)
        # the two versions replaced below go stale after a second; the rest stay fresh
        short = {("apache", "1.10.0"), ("nginx", "1.0.0")}
        for d in docs:
            serve(up, d, 1 if (d["name"], d["version"]) in short else 600)
            eq(curl(al, f"/package/{d['name']}/{d['version']}/").status, 200, "fill")
        al.stop()
        offline(tmp, up, probe, docs, "filled")

        # Replacement: apache 1.10.0 comes back deprecated (newer than 1.2.0: its notice wins);
        # nginx 1.0.0, the record's version, comes back without a notice (no record left).
        time.sleep(1.5)  # past max-age=1: the next request fetches the document again
        new = [pkg("apache", "1.10.0", 2, dep="apache: 1.10.0 is the last"), pkg("nginx", "1.0.0", 4)]
        for d in new:
            serve(up, d)
        al = Airlock(tmp, up)  # (each Airlock on tmp rewrites its config: a new one, not al.start())
        for d in new:
            path = f"/package/{d['name']}/{d['version']}/"
            n = up.count(path)
            r = curl(al, path)
            eq(r.status, 200, f"refetch {path}")
            eq(up.count(path), n + 1, f"{path} fetched again")
            eq(json.loads(r.body).get("deprecated"), d.get("deprecated"), f"{path}: the new document")
        al.stop()
        docs = [d for d in docs if (d["name"], d["version"]) not in short] + new
        offline(tmp, up, probe, docs, "after two replacements")

        # Purge the record's version: the record falls back to apache 1.2.0's notice.
        out = cli(al, "purge", "*/package/apache/1.10.0/")
        if "purged 1 entr" not in out:
            fail(f"purge: {out}")
        docs = [d for d in docs if not (d["name"] == "apache" and d["version"] == "1.10.0")]
        offline(tmp, up, probe, docs, "after purging the record's version")

        # A bundle brings a newer deprecated apache and a first deprecated zeek.
        with Case() as (up2, al2, tmp2):
            extra = [pkg("apache", "1.20.0", 11, dep="apache: imported notice"),
                     pkg("zeek", "0.9.0", 12, dep="zeek: an older version's notice")]
            for d in extra:
                serve(up2, d)
                eq(curl(al2, f"/package/{d['name']}/{d['version']}/").status, 200, "fill the other cache")
            bundle = os.path.join(tmp2, "pkgs.airlock")
            cli(al2, "export", bundle)
            cli(al, "import", bundle)
        docs += extra
        offline(tmp, up, probe, docs, "after a bundle import")

        # An index written with format 4: no records, stamped 4.  Rebuilt at start, records included.
        for name in want_records(docs):
            probe.run("del", "regidx", (BASE + b"\0" + name.encode()).hex())
        probe.run("put", "regidx", b"\0format".hex(), (4).to_bytes(4, "little").hex())
        eq(record(probe, "apache"), None, "the format-4 index has no record")
        Airlock(tmp, up).stop()
        offline(tmp, up, probe, docs, "rebuilt from format 4")

        # LRU eviction drops the least recently used first (last_used, in seconds): apache's two
        # older deprecated versions are purged and fetched again a second after everything else,
        # then a 1 MiB cache takes an artifact that leaves room for a few documents.  apache 1.20.0,
        # its record's version, goes: the record falls back to 1.2.0.
        for v in ("1.0.0", "1.2.0"):
            if "purged 1 entr" not in cli(al, "purge", f"*/package/apache/{v}/"):
                fail(f"purge apache {v}")
        time.sleep(1.5)
        al = Airlock(tmp, up)
        try:
            for v in ("1.0.0", "1.2.0"):
                eq(curl(al, f"/package/apache/{v}/").status, 200, f"apache {v} fetched again")
        finally:
            al.stop()
        with open(al.config) as f:
            cfg = f.read()
        with open(al.config, "w") as f:
            f.write(cfg.replace("max_size: 256MiB", "max_size: 1MiB"))
        avg = sum(len(json.dumps(d)) for d in docs) // len(docs)
        if 5 * avg < (1 << 20) // 20 + (16 << 10):
            fail(f"the documents ({avg} bytes each) must outweigh the 5% eviction margin for this to test anything")
        up.add("/downloads/big.bin", os.urandom(int(0.95 * (1 << 20)) - 5 * avg),
               headers=[("Cache-Control", "max-age=600")])
        al.start()  # on the config just edited (a new Airlock would write its own)
        try:
            eq(curl(al, "/downloads/big.bin").status, 200, "the artifact that makes room")
        finally:
            al.stop()
        off = Airlock(tmp, up, offline=True)
        try:
            present = [d for d in docs if curl(off, f"/package/{d['name']}/{d['version']}/").status == 200]
        finally:
            off.stop()
        if not 0 < len(present) < len(docs):
            fail(f"eviction should leave some documents and drop others: {len(present)} of {len(docs)}")
        gone = want_records(docs).items() - want_records(present).items()
        if not gone:
            fail(f"eviction should change some name's record: {len(present)} of {len(docs)} left: {[(d['name'], d['version']) for d in present]}")
        offline(tmp, up, probe, present, "after an eviction")


if __name__ == "__main__":
    main(test)
