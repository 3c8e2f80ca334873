"""Offline registry conformance: the package registry's own TestEndpoints, answered by airlock.

elastic/package-registry tests /search and /categories in main_test.go
TestEndpoints against golden files (testdata/generated/).  This test takes
those rows and goldens at the commit policy/registry.c pins
(AL_REGISTRY_COMMIT), serves the /package/<name>/<version>/ documents that
test indexes from the fake upstream, lets airlock cache them, takes the
registry offline and asks airlock every row.  Required, per row:

  /search      the (name, version) list in the registry's order, and every
               field of every entry (the BasePackage fields Kibana lists and
               installs from: title, release, type, download, path, icons,
               policy_templates, conditions, categories, data_streams,
               deprecated, signature_path, ...) equal to the golden's;
  /categories  the (id, count) set, and each entry's title and parent;
  errors       400 with the registry's message where the golden is one.

The registry's data is not ours to commit, so the fixtures are looked for in
this order: $AIRLOCK_REGISTRY_FIXTURES (a directory with fixtures.json);
../shared/registry-fixtures/<commit>/ beside the repository; else they are
generated now, into a temporary directory, by tests/tools/registry_fixtures.py
from a local git dir of package-registry ($AIRLOCK_PACKAGE_REGISTRY_GIT when
set, else /work/.mirror/elastic+package-registry/repo).  With none of these the test
says why and exits 77 (ctest: skipped).

The one row run on a handler built with searchWithAllowUnknownQueryParameters(false)
is reported and not required: it is the answer of a registry started with
-allow-unknown-query-parameters=false, and epr.elastic.co runs the default.
"""
import json, os, re, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, fail, main

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SKIP = 77


def pinned_commit():
    src = open(os.path.join(ROOT, "policy", "registry.c")).read()
    m = re.search(r'#define\s+AL_REGISTRY_COMMIT\s+"([0-9a-f]{40})"', src)
    if not m:
        fail("policy/registry.c pins no AL_REGISTRY_COMMIT")
    return m.group(1)


def find_fixtures(commit, tmp):
    """(path of fixtures.json, where it came from) or (None, why not)."""
    env = os.environ.get("AIRLOCK_REGISTRY_FIXTURES")
    if env:
        return os.path.join(env, "fixtures.json"), f"$AIRLOCK_REGISTRY_FIXTURES={env}"
    shared = os.path.normpath(os.path.join(ROOT, "..", "shared", "registry-fixtures", commit))
    if os.path.exists(os.path.join(shared, "fixtures.json")):
        return os.path.join(shared, "fixtures.json"), shared
    tried = [shared]
    gitdir = os.environ.get("AIRLOCK_PACKAGE_REGISTRY_GIT", "/work/.mirror/elastic+package-registry/repo")
    for gitdir in [gitdir] if gitdir else []:
        tried.append(gitdir)
        has = subprocess.run(["git", "-C", gitdir, "cat-file", "-e", commit + "^{commit}"], capture_output=True)
        if has.returncode != 0:
            continue
        out = os.path.join(tmp, "registry-fixtures")
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "tools", "registry_fixtures.py"),
                            gitdir, commit, out], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            fail(f"registry_fixtures.py on {gitdir} failed:\n{p.stderr}")
        return os.path.join(out, "fixtures.json"), f"generated from {gitdir}: {p.stdout.strip()}"
    return None, "no fixtures and no package-registry git dir holding the commit (looked at: " + ", ".join(tried) + ")"


def diff_search(got, want):
    """'' when equal, else what differs first."""
    gl = [(p.get("name"), p.get("version")) for p in got]
    wl = [(p.get("name"), p.get("version")) for p in want]
    if gl != wl:
        return f"(name, version) list:\n    got  {gl}\n    want {wl}"
    for g, w in zip(got, want):
        keys = sorted(set(g) | set(w))
        bad = [k for k in keys if g.get(k) != w.get(k)]
        if bad:
            k = bad[0]
            return f"{w['name']}@{w['version']}: fields {bad} differ; {k}:\n    got  {json.dumps(g.get(k))}\n    want {json.dumps(w.get(k))}"
    return ""


def diff_categories(got, want):
    gs = {(c.get("id"), c.get("count")) for c in got}
    ws = {(c.get("id"), c.get("count")) for c in want}
    if gs != ws:
        return f"(id, count): missing {sorted(ws - gs)}, extra {sorted(gs - ws)}"
    gi = {c["id"]: c for c in got}
    for w in want:
        if gi[w["id"]] != w:
            return f"{w['id']}: got {gi[w['id']]}, want {w}"
    return ""


def test():
    commit = pinned_commit()
    tmp = tempfile.mkdtemp(prefix="airlock-conformance-")
    try:
        path, where = find_fixtures(commit, tmp)
        if path is None:
            print(f"SKIP: the package registry's test data at {commit} is not available: {where}")
            sys.exit(SKIP)
        fx = json.load(open(path))
        if fx["commit"] != commit:
            fail(f"{where} holds fixtures of {fx['commit']}, airlock pins {commit}")
        print(f"fixtures: {where}")
        run(fx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(fx):
    docs = fx["packages"]
    with Case() as (up, al, tmp):
        for p in docs:
            u = f"/package/{p['name']}/{p['version']}/"
            up.add(u, p["document"], headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=600")])
            r = curl(al, u)
            if r.status != 200:
                fail(f"caching {u}: {r.status}")
        al.stop()
        n_fetch = up.count()
        off = Airlock(tmp, up, offline=True)
        passed, failed, informative = [], [], []
        try:
            for row in fx["rows"]:
                r = curl(off, row["endpoint"])
                why = check(row, r, len(docs))
                (passed if not why else informative if not row["default_options"] else failed).append((row, why))
            if up.count() != n_fetch:
                fail(f"the registry was asked {up.count() - n_fetch} times while offline")
        finally:
            off.stop()
    for row, why in informative:
        print(f"not required ({row['handler']} runs with -allow-unknown-query-parameters=false): "
              f"{row['endpoint']} -> {row['file']}: {why or 'matches'}")
    req = [r for r in fx["rows"] if r["default_options"]]
    print(f"{sum(1 for r, _ in passed if r['default_options'])} of {len(req)} TestEndpoints rows match "
          f"(/search {sum(1 for r, _ in passed if r['path'] == '/search' and r['default_options'])} of "
          f"{sum(1 for r in req if r['path'] == '/search')}, /categories "
          f"{sum(1 for r, _ in passed if r['path'] == '/categories')} of {sum(1 for r in req if r['path'] == '/categories')})"
          f" at package-registry {fx['commit'][:12]}")
    if failed:
        fail(f"{len(failed)} rows differ from the registry's goldens:\n" +
             "\n".join(f"  {row['endpoint']} ({row['file']}): {why}" for row, why in failed))


def check(row, r, ndocs):
    if row["status"] != 200:
        if r.status != row["status"]:
            return f"status {r.status}, want {row['status']} ({row['golden']!r}); body {r.body[:200]!r}"
        if r.body.decode(errors="replace").strip() != row["golden"]:
            return f"message {r.body.decode(errors='replace').strip()!r}, want {row['golden']!r}"
        return ""
    if r.status != 200:
        return f"status {r.status}: {r.body[:300]!r}"
    # never cached as asked and the registry offline: the answer must be airlock's own computation
    cs = r.header("Cache-Status") or ""
    m = re.search(r"computed from (\d+)", cs)
    if m is None or int(m.group(1)) != ndocs:
        return f"not computed from the {ndocs} documents: Cache-Status {cs!r}"
    try:
        got = json.loads(r.body)
    except ValueError:
        return f"not JSON: {r.body[:200]!r}"
    return (diff_search if row["path"] == "/search" else diff_categories)(got, row["golden"])


if __name__ == "__main__":
    main(test)
