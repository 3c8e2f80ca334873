#!/usr/bin/env python3
"""Extract the package registry's own endpoint test data into a fixtures directory.

    registry_fixtures.py <package-registry git dir> <commit> <out dir>

elastic/package-registry tests its /search and /categories handlers in
main_test.go TestEndpoints: a table of {endpoint, router path, golden file,
handler} rows, answered over the packages that test indexes
(NewCombinedIndexer of a ZipFileSystemIndexer over testdata/local-storage
and a FileSystemIndexer over testdata/second_package_path and
testdata/package at the time of writing) and compared with the golden files
under testdata/generated/.  This script reads, at the given commit:

  - the TestEndpoints rows for /search and /categories and their goldens;
  - the indexers TestEndpoints builds, and from them the list of package
    versions it serves, in the registry's order (first indexer, first path
    wins for a name and version: CombinedIndexer.Get's Packages.Join and
    FileSystemIndexer.getPackagesFromFileSystem's duplicate removal);
  - for each of those packages, the /package/<name>/<version>/ document the
    registry serves, taken from the registry's own golden files: TestAllPackageIndex's
    testdata/generated/package/<n>/<v>/index.json for directory packages, and
    the TestPackageIndex / TestZippedPackageIndex rows for zip packages.  A
    package with no golden document is built from its manifest.yml the way
    packages.NewPackage does for the fields /search and /categories read
    (build_document), and marked so.  Each run also builds the packages
    that do have a golden document and says whether the builder agrees
    with the registry on them (check_builder), so a refresh to a newer
    commit shows whether the fallback can be trusted there.

and writes <out dir>/fixtures.json.  Nothing is fetched from the network; the
registry's files are read with `git show`.  The data stays the registry's
(Elastic License 2.0): the output is for a test run, not to be committed
(airlock's tests generate it into a temporary directory, or read a copy the
steering side keeps outside the repository).
"""
import io
import json
import os
import re
import subprocess
import sys
import zipfile

import yaml


def git(gitdir, *args, binary=False):
    p = subprocess.run(["git", "-C", gitdir, *args], capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {p.stderr.decode(errors='replace').strip()}")
    return p.stdout if binary else p.stdout.decode()


def show(gitdir, commit, path, binary=False):
    return git(gitdir, "show", f"{commit}:{path}", binary=binary)


def ls_files(gitdir, commit, path):
    out = git(gitdir, "ls-tree", "-r", "--name-only", commit, "--", path)
    return [x for x in out.splitlines() if x]


def go_function(src, name):
    m = re.search(r"^func " + re.escape(name) + r"\(.*?^}", src, re.S | re.M)
    if not m:
        raise RuntimeError(f"main_test.go has no func {name}: the test's shape changed, update this script")
    return m.group(0)


ROW = re.compile(r'\{\s*"([^"]*)",\s*"?([\w/]*)"?,\s*"([^"]+)",\s*(\w+)\s*\}')


def rows_of(body):
    """{endpoint, router path (a string or an identifier), golden file, handler} rows of a test table."""
    return [{"endpoint": e, "path": p, "file": f, "handler": h} for e, p, f, h in ROW.findall(body)]


def indexers_of(body):
    """The indexers a test function builds, in order: [("zip"|"dir", [paths])]."""
    lists = {m.group(1): re.findall(r'"([^"]+)"', m.group(2))
             for m in re.finditer(r"(\w+)\s*:=\s*\[\]string\{([^}]*)\}", body)}
    out = []
    for m in re.finditer(r"packages\.New(Zip)?FileSystemIndexer\(\s*fsOpts\s*,\s*([^)]*)\)", body):
        args = []
        for a in [x.strip() for x in m.group(2).split(",") if x.strip()]:
            if a.endswith("..."):
                args += lists.get(a[:-3], [])
            elif a.startswith('"'):
                args.append(a.strip('"'))
            else:
                raise RuntimeError(f"cannot read indexer argument {a!r}")
        out.append(("zip" if m.group(1) else "dir", [os.path.normpath(x) for x in args]))
    return out


STRICT_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def dir_packages(gitdir, commit, base):
    """FileSystemIndexer over base: <base>/<name>/<version>/ with a strict semver version dir, in WalkDir order."""
    found = []
    for f in sorted(ls_files(gitdir, commit, base)):
        parts = f[len(base) + 1:].split("/")
        if len(parts) == 3 and parts[2] == "manifest.yml" and STRICT_SEMVER.match(parts[1]):
            m = yaml.safe_load(show(gitdir, commit, f))
            found.append({"name": m["name"], "version": str(m["version"]), "where": f"{base}/{parts[0]}/{parts[1]}"})
    return found


def zip_packages(gitdir, commit, base):
    """ZipFileSystemIndexer over base: every *.zip whose root holds <dir>/manifest.yml."""
    found = []
    for f in sorted(ls_files(gitdir, commit, base)):
        if not f.endswith(".zip"):
            continue
        try:
            z = zipfile.ZipFile(io.BytesIO(show(gitdir, commit, f, binary=True)))
        except zipfile.BadZipFile:
            continue
        man = [n for n in z.namelist() if n.count("/") == 1 and n.endswith("/manifest.yml")]
        if not man:
            continue
        m = yaml.safe_load(z.read(man[0]))
        found.append({"name": m["name"], "version": str(m["version"]), "where": f})
    return found


def dotted(v):
    """go-ucfg with PathSep("."), as NewPackage reads a manifest: "owner.github: x" is owner: {github: x}."""
    if isinstance(v, list):
        return [dotted(x) for x in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        parts = str(k).split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        if isinstance(d.get(parts[-1]), dict) and isinstance(x, dict):
            d[parts[-1]].update(dotted(x))
        else:
            d[parts[-1]] = dotted(x)
    return out


def build_document(gitdir, commit, where, name, version):
    """The fields of packages.NewPackage's Package that /search and /categories read, from a
    package directory's manifest.yml (fallback when the registry has no golden document)."""
    m = dotted(yaml.safe_load(show(gitdir, commit, f"{where}/manifest.yml")))
    cats = yaml.safe_load(show(gitdir, commit, "categories/categories.yml"))["categories"]
    known = set(cats) | {s for c in cats.values() for s in (c or {}).get("subcategories", {}) or {}}
    path = f"/package/{name}/{version}"
    doc = {"name": name, "title": m.get("title"), "version": version,
           "release": m.get("release") or ("beta" if re.match(r"^0\.|.*-", version) else "ga"),
           "description": m.get("description", ""), "type": m.get("type") or "integration",
           "download": f"/epr/{name}/{name}-{version}.zip", "path": path}
    for k in ("source", "policy_templates_behavior", "conditions", "owner", "discovery", "deprecated",
              "requires", "group", "format_version", "icons"):
        if m.get(k) is not None:
            doc[k] = m[k]
    if isinstance((doc.get("conditions") or {}).get("elastic"), dict):
        doc["conditions"]["elastic"].setdefault("subscription", "")  # ElasticConditions: no omitempty
    if not (doc.get("discovery") or {}).get("fields") and not (doc.get("discovery") or {}).get("datasets"):
        doc.pop("discovery", None)  # Discovery.IsZero: omitzero
    for i in doc.get("icons", []):
        i["path"] = f"{path}/{i['src'].lstrip('/')}"
    if m.get("categories"):
        doc["categories"] = [c for c in m["categories"] if c in known]
    if m.get("policy_templates"):
        doc["policy_templates"] = m["policy_templates"]
    ds = []
    for f in sorted(ls_files(gitdir, commit, f"{where}/data_stream")):
        rel = f[len(where) + len("/data_stream/"):].split("/")
        if len(rel) == 2 and rel[1] == "manifest.yml":
            d = dotted(yaml.safe_load(show(gitdir, commit, f)) or {})
            e = {"type": d.get("type"), "dataset": d.get("dataset") or f"{name}.{rel[0]}", "title": d.get("title")}
            if d.get("deprecated"):
                e["deprecated"] = d["deprecated"]
            ds.append(e)
    if ds:
        doc["data_streams"] = ds
    return json.dumps(doc, indent=2)


def propagate_deprecated(built):
    """packages/deprecated.go PropagateLatestDeprecatedInfoToPackageList, for built documents."""
    def key(v):
        m = STRICT_SEMVER.match(v)
        return (int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) is None, m.group(4) or "")
    latest = {}
    for p in built:
        d = json.loads(p["document"])
        if d.get("deprecated") and (p["name"] not in latest or key(p["version"]) > key(latest[p["name"]][0])):
            latest[p["name"]] = (p["version"], d["deprecated"])
    for p in built:
        if p["name"] in latest:
            d = json.loads(p["document"])
            d["deprecated"] = latest[p["name"]][1]
            p["document"] = json.dumps(d, indent=2)


SEARCH_FIELDS = ("name", "title", "version", "release", "source", "description", "type", "download", "path", "icons",
                 "policy_templates_behavior", "conditions", "owner", "categories", "discovery", "requires", "group",
                 "format_version")


def check_builder(gitdir, commit, fx):
    """Where a golden document exists, does build_document agree with it on what /search and
    /categories read?  [(name, version, field)] of the disagreements."""
    bad = []
    for p in fx["packages"]:
        if p["indexer"] != "dir" or p["document_from"].startswith("built"):
            continue
        g, b = json.loads(p["document"]), json.loads(build_document(gitdir, commit, p["where"], p["name"], p["version"]))
        for k in SEARCH_FIELDS:
            if g.get(k) != b.get(k):
                bad.append((p["name"], p["version"], k))
        gd = [{x: d[x] for x in ("type", "dataset", "title", "deprecated") if x in d} for d in g.get("data_streams") or []]
        if gd != (b.get("data_streams") or []):
            bad.append((p["name"], p["version"], "data_streams"))
        gp = [(t.get("name"), t.get("categories")) for t in g.get("policy_templates") or []]
        if gp != [(t.get("name"), t.get("categories")) for t in b.get("policy_templates") or []]:
            bad.append((p["name"], p["version"], "policy_templates"))
    return bad


def golden_documents(src):
    """/package/<n>/<v>/ -> golden file, from the tests whose first indexer is the zip one."""
    out = {}
    for fn in ("TestZippedPackageIndex", "TestPackageIndex"):
        try:
            body = go_function(src, fn)
        except RuntimeError:
            continue
        idx = indexers_of(body)
        if not idx or idx[0][0] != "zip":
            continue
        for r in rows_of(body):
            m = re.match(r"^/package/([^/]+)/([^/]+)/$", r["endpoint"])
            if m and r["file"].endswith(".json"):
                out.setdefault((m.group(1), m.group(2)), r["file"])
    return out


def extract(gitdir, commit):
    commit = git(gitdir, "rev-parse", commit + "^{commit}").strip()
    src = show(gitdir, commit, "main_test.go")
    body = go_function(src, "TestEndpoints")
    rows = []
    for r in rows_of(body):
        if r["path"] not in ("/search", "/categories"):
            continue
        # A handler built with searchWithAllowUnknownQueryParameters(false) answers as a registry
        # run with -allow-unknown-query-parameters=false would; epr.elastic.co runs the default.
        decl = re.search(r"\b" + re.escape(r["handler"]) + r",\s*err\s*:?=\s*(.*?)\n\s*require", body, re.S)
        r["default_options"] = not (decl and "AllowUnknownQueryParameters(false)" in decl.group(1))
        raw = show(gitdir, commit, f"testdata/generated/{r['file']}")
        try:
            r["golden"] = json.loads(raw)
            r["status"] = 200
        except ValueError:
            # search.go/categories.go answer a text body only through badRequest (400) before
            # the indexer is asked; what the registry's test recorded is that message.
            r["golden"] = raw.strip()
            r["status"] = 400
        rows.append(r)

    indexers = indexers_of(body)
    if not indexers:
        raise RuntimeError("TestEndpoints builds no indexer this script can read")
    zip_golden = golden_documents(src)
    packages, seen = [], set()
    for kind, paths in indexers:
        for base in paths:
            for p in (zip_packages if kind == "zip" else dir_packages)(gitdir, commit, base):
                key = (p["name"], p["version"])
                if key in seen:
                    continue  # Packages.Join / duplicate removal: the first indexer and path win
                seen.add(key)
                if kind == "zip" and key in zip_golden:
                    p["document_from"] = f"testdata/generated/{zip_golden[key]}"
                elif kind == "dir" and ls_files(gitdir, commit, f"testdata/generated/package/{key[0]}/{key[1]}/index.json"):
                    p["document_from"] = f"testdata/generated/package/{key[0]}/{key[1]}/index.json"
                if "document_from" in p:
                    p["document"] = show(gitdir, commit, p["document_from"])
                elif kind == "dir":
                    p["document_from"] = f"built from {p['where']}/manifest.yml (no golden document)"
                    p["document"] = build_document(gitdir, commit, p["where"], *key)
                else:
                    raise RuntimeError(f"zip package {key} has no golden document to serve")
                p["indexer"] = kind
                packages.append(p)
    propagate_deprecated([p for p in packages if p["document_from"].startswith("built")])
    return {
        "commit": commit,
        "note": "Generated by airlock tests/tools/registry_fixtures.py from elastic/package-registry "
                "(Elastic License 2.0, https://github.com/elastic/package-registry/blob/main/LICENSE.txt); "
                "the registry's test data, for a local test run only: do not commit.",
        "indexers": indexers,
        "rows": rows,
        "packages": packages,
    }


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    gitdir, commit, out = sys.argv[1:]
    fx = extract(gitdir, commit)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "fixtures.json"), "w") as f:
        json.dump(fx, f, indent=1)
    bad = check_builder(gitdir, commit, fx)
    golden = sum(1 for p in fx["packages"] if p["indexer"] == "dir" and not p["document_from"].startswith("built"))
    if bad:
        sys.stderr.write(f"note: build_document differs from the registry's golden documents in {len(bad)} fields "
                         f"(it builds only the documents without a golden): {bad[:10]}\n")
    print(f"{out}/fixtures.json: {len(fx['rows'])} rows, {len(fx['packages'])} package documents "
          f"({sum('built from' in p['document_from'] for p in fx['packages'])} built from manifests), "
          f"commit {fx['commit']}; the manifest builder agrees with {golden} golden documents "
          f"{'except in ' + str(len(bad)) + ' fields' if bad else 'on every field /search reads'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
