"""Offline registry index: package documents filled through airlock get a summary in the cache's
regidx database in the same transaction; with the registry offline, /search and /categories are
answered from it and must equal, byte for byte, the answers computed the old way (every document
parsed whole, tests/tools/registry_direct.c over the same policy/registry.c rules) for the documents
the cache holds.  A purge and an LRU eviction drop packages from the answers (and their index
entries); an index deleted from the LMDB file, or one stamped with an older format, is rebuilt at
start; a bundle import adds packages.  On the code before the index the regidx counts fail (there
is no such database); the answers themselves were already the old way's."""
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, curl, eq, fail, main

DIRECT = os.environ.get("REGISTRY_DIRECT") or os.path.join(os.path.dirname(AIRLOCK), "tests", "registry_direct")
JSON = [("Content-Type", "application/json"), ("Cache-Control", "max-age=600")]


def doc(name, version, i, kibana="^8.8.0", cats=("observability",), **extra):
    """A package document shaped like the registry's /package/<n>/<v>/ answer, with the parts a
    summary leaves out (readme, assets, data stream fields and vars, template inputs)."""
    d = {"name": name, "title": name.replace("_", " ").title(), "version": version,
         "release": "ga", "description": f"{name} {version}: " + "collects logs and metrics. " * 3,
         "type": "integration", "download": f"/epr/{name}/{name}-{version}.zip",
         "path": f"/package/{name}/{version}", "format_version": ["2.7.0", "3.0.0", "3.1.4"][i % 3],
         "icons": [{"src": "/img/logo.svg", "path": f"/package/{name}/{version}/img/logo.svg",
                    "type": "image/svg+xml"}],
         "categories": list(cats), "conditions": {"kibana": {"version": kibana}},
         "owner": {"github": "elastic/integrations", "type": "elastic"},
         "signature_path": f"/epr/{name}/{name}-{version}.zip.sig",
         "readme": f"/package/{name}/{version}/docs/README.md",
         "changelog": [{"version": f"0.{k}.0", "changes": [{"description": "fixes " * 40}]} for k in range(10)],
         "assets": [f"/package/{name}/{version}/data_stream/log/fields/f{k}.yml" for k in range(20)],
         "policy_templates": [{"name": name, "title": f"{name} logs", "description": "Collect logs",
                               "categories": ["security"] if i % 4 == 0 else [],
                               "data_streams": ["log"],
                               "inputs": [{"type": "logfile", "vars": [{"name": "paths", "type": "text",
                                                                         "multi": True, "default": ["/var/log/*"]}]}]}],
         "data_streams": [{"type": "logs", "dataset": f"{name}.log", "title": "log",
                           "streams": [{"input": "logfile", "vars": [{"name": f"v{k}"} for k in range(10)]}]}]}
    d.update(extra)
    return d


def catalogue():
    docs = []
    names = ["nginx", "apache", "aws_logs", "endpoint", "kafka_broker", "zeek", "mysql", "sql_input"]
    cats = [("web", "observability"), ("web",), ("aws", "cloud"), ("security", "edr_xdr"), ("message_queue",),
            ("network", "security"), ("datastore",), ("custom",)]
    for n, name in enumerate(names):
        for v, version in enumerate(["1.0.0", "1.2.0", "1.10.0", "2.0.0-beta1"]):
            i = n * 4 + v
            extra = {}
            if name == "endpoint":
                extra["conditions"] = {"kibana": {"version": "^8.13.0"}, "elastic": {"capabilities": ["security"]}}
            if name == "sql_input":
                extra["type"] = "input"
                version = f"0.{v}.0"
            if name == "zeek" and v == 2:
                extra["release"] = "experimental"
            if name == "mysql":
                extra["discovery"] = {"fields": [{"name": "host.name"}]}
            docs.append(doc(name, version, i, kibana="^9.0.0" if v == 2 and n % 3 == 0 else "^8.8.0",
                            cats=cats[n], **extra))
    return docs


QUERIES = [
    ("search", "kibana.version=8.13.4&prerelease=false"),
    ("search", "kibana.version=8.13.4&prerelease=true"),
    ("search", "all=true&prerelease=true"),
    ("search", "kibana.version=8.13.4&category=security"),
    ("search", "kibana.version=8.13.4&experimental=true"),
    ("search", "kibana.version=8.13.4&experimental=true&all=true"),
    ("search", "package=nginx&kibana.version=8.13.4&all=true"),
    ("search", "kibana.version=9.1.0&capabilities=observability&spec.min=2.0&spec.max=3.0"),
    ("search", "discovery=fields:host.name&prerelease=true"),
    ("search", "type=input&prerelease=true"),
    ("categories", "kibana.version=8.13.4&prerelease=false&include_policy_templates=true"),
    ("categories", "kibana.version=8.13.4&experimental=true"),
]


def direct(tmp, docs, kind, query):
    path = os.path.join(tmp, "direct.json")
    with open(path, "w") as f:
        json.dump(docs, f)
    p = subprocess.run([DIRECT, path, kind, query], capture_output=True, timeout=30)
    eq(p.returncode, 0, f"registry_direct {kind} {query}: {p.stderr}")
    return p.stdout


def check_answers(al, tmp, docs, what):
    for kind, query in QUERIES:
        r = curl(al, f"/{kind}?{query}")
        eq(r.status, 200, f"{what}: /{kind}?{query}")
        want = direct(tmp, docs, kind, query)
        if r.body != want:
            fail(f"{what}: /{kind}?{query} differs from the old way's answer:\n got  {r.body[:600]!r}\n want {want[:600]!r}")
        if f"computed from {len(docs)} cached package documents" not in (r.header("Cache-Status") or ""):
            fail(f"{what}: /{kind}?{query}: Cache-Status {r.header('Cache-Status')!r}, {len(docs)} documents")


def listing(al, query):
    return [f"{p['name']}@{p['version']}" for p in json.loads(curl(al, f"/search?{query}").body)]


class Probe:
    def __init__(self, tmp, cache):
        self.bin = os.path.join(tmp, "lmdb_probe")
        self.cache = cache
        src = os.path.join(os.path.dirname(__file__), "..", "tools", "lmdb_probe.c")
        subprocess.run(["cc", "-O2", "-o", self.bin, src, "-llmdb"], check=True, timeout=60)

    def run(self, *args):
        p = subprocess.run([self.bin, self.cache, *args], capture_output=True, text=True, timeout=30)
        eq(p.returncode, 0, f"lmdb_probe {args}: {p.stderr}")
        return p.stdout

    def entries(self):
        """Index entries (the format and generation records aside)."""
        return int(self.run("count", "regidx")) - 2  # the format and the generation


def cli(al, *args):
    p = subprocess.run([AIRLOCK, *args, "--config", al.config], capture_output=True, text=True, timeout=120)
    eq(p.returncode, 0, f"airlock {' '.join(args)}: {p.stdout}\n{p.stderr}")
    return p.stdout


def fill(up, al, docs):
    for d in docs:
        path = f"/package/{d['name']}/{d['version']}/"
        up.add(path, json.dumps(d), headers=JSON)
        eq(curl(al, path).status, 200, f"fill {path}")


def test():
    docs = catalogue()
    with Case() as (up, al, tmp):
        probe = Probe(tmp, al.cache)
        fill(up, al, docs)
        # not documents: an error page at a package URL, and a document path under another prefix
        up.add("/package/broken/1.0.0/", b"<html>oops</html>", status=200, headers=JSON)
        eq(curl(al, "/package/broken/1.0.0/").status, 200, "a non-JSON body at a package URL is cached")
        al.stop()
        eq(probe.entries(), len(docs), "one index entry per package document, none for the non-document")

        off = Airlock(tmp, up, offline=True)
        try:
            check_answers(off, tmp, docs, "filled through airlock")
            if "nginx@1.2.0" not in listing(off, "kibana.version=8.13.4"):
                fail("nginx 1.10.0 needs Kibana 9 (^9.0.0): 1.2.0 is Kibana 8.13's newest")
            # purge nginx 1.2.0: Kibana's list falls back to nginx 1.0.0
            out = cli(off, "purge", "*/package/nginx/1.2.0/")
            if "purged 1 entr" not in out:
                fail(f"purge: {out}")
            docs = [d for d in docs if not (d["name"] == "nginx" and d["version"] == "1.2.0")]
            eq(probe.entries(), len(docs), "purge drops the index entry")
            if "nginx@1.0.0" not in listing(off, "kibana.version=8.13.4"):
                fail("after the purge, nginx is listed at 1.0.0")
            check_answers(off, tmp, docs, "after a purge")
        finally:
            off.stop()

        # The index deleted from the LMDB file: rebuilt at start.
        probe.run("drop", "regidx")
        off = Airlock(tmp, up, offline=True)
        try:
            check_answers(off, tmp, docs, "index rebuilt after it was deleted")
        finally:
            off.stop()
        eq(probe.entries(), len(docs), "rebuilt index")

        # An index of an older format (a stray entry in it): emptied and rebuilt at start.
        base = b"https://epr.elastic.co"
        g = doc("ghost", "1.0.0", 1)
        ghost = (json.dumps({k: v for k, v in g.items() if not isinstance(v, (dict, list))}) + "\n" + json.dumps(g)).encode()
        probe.run("put", "regidx", (base + b"\0ghost\0" + b"1.0.0").hex(), (b"\0" * 32 + ghost).hex())
        probe.run("put", "regidx", b"\0format".hex(), (0).to_bytes(4, "little").hex())
        off = Airlock(tmp, up, offline=True)
        try:
            if any(x.startswith("ghost@") for x in listing(off, "all=true&prerelease=true")):
                fail("an index of an older format was used as it was")
            check_answers(off, tmp, docs, "index rebuilt from an older format")
        finally:
            off.stop()

        # A bundle exported from another cache adds its packages.
        with Case() as (up2, al2, tmp2):
            extra = [doc("bundled_pkg", v, k, cats=("security",)) for k, v in enumerate(["3.0.0", "3.1.0"])]
            fill(up2, al2, extra)
            bundle = os.path.join(tmp2, "pkgs.airlock")
            cli(al2, "export", bundle)
            off = Airlock(tmp, up, offline=True)
            try:
                cli(off, "import", bundle)
                docs += extra
                if "bundled_pkg@3.1.0" not in listing(off, "kibana.version=8.13.4&category=security"):
                    fail("an imported package is listed")
                check_answers(off, tmp, docs, "after a bundle import")
            finally:
                off.stop()
        eq(probe.entries(), len(docs), "imported documents are indexed")

        # LRU eviction: a 1 MiB cache takes a 900 KB artifact; the documents used least go.
        on = Airlock(tmp, up)
        on.stop()
        with open(on.config) as f:
            cfg = f.read()
        with open(on.config, "w") as f:
            f.write(cfg.replace("max_size: 256MiB", "max_size: 1MiB"))
        # eviction goes down to 95% of max_size: an artifact that leaves room for half the documents
        held = sum(len(json.dumps(d)) for d in docs)
        if held // 2 < (1 << 20) // 20 + (16 << 10):
            fail(f"the documents ({held} bytes) must outweigh the 5% eviction margin for this to test anything")
        up.add("/downloads/big.bin", os.urandom(int(0.95 * (1 << 20)) - held // 2), headers=[("Cache-Control", "max-age=600")])
        on.start()
        try:
            eq(curl(on, "/downloads/big.bin").status, 200, "the artifact that makes room")
        finally:
            on.stop()
        off = Airlock(tmp, up, offline=True)
        try:
            present = [d for d in docs if curl(off, f"/package/{d['name']}/{d['version']}/").status == 200]
            if not 0 < len(present) < len(docs):
                fail(f"eviction should leave some documents and drop others: {len(present)} of {len(docs)}")
            check_answers(off, tmp, present, "after an eviction")
        finally:
            off.stop()
        eq(probe.entries(), len(present), "eviction drops the index entries")


if __name__ == "__main__":
    main(test)
