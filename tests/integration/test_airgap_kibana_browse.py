"""Offline, Fleet's Integrations pages are whole (issue 19).

Connected side: `airlock mirror packages`, then export.  Closed side: import
into a fresh cache, upstream.offline: true, the fake upstream stopped.  Then
a Kibana 8.13 browsing session, with node-fetch as Kibana's registry client
(xpack.fleet.registryUrl pointing at airlock), asks what Fleet asks
(x-pack/plugins/fleet/server/services/epm/registry/index.ts):
- fetchList: /search?kibana.version=V&spec.max=3.0 (prerelease only when
  true, then setConstraints), and fetchCategories: /categories?
  include_policy_templates=true&kibana.version=V&spec.max=3.0: computed from
  the cached package documents (the offline registry);
- _fetchFindLatestPackage: /search?package=nginx&prerelease=false&...;
- fetchInfo: /package/<name>/<version>/ (newer Kibana) and without the slash
  (older Kibana; the registry's StrictSlash answers 301, followed);
- getFile for what the UI shows of a package that is not installed
  (public/.../hooks/use_links.tsx toPackageImage: src under
  /package/<name>/<version>, else path): icons, screenshots, policy template
  icons, the readme, changelog.yml (detail/hooks/use_change_log.ts);
- fetchArchiveBuffer: the document's download, and its .sig.
Every response must be 200 with the mirrored bytes."""
import hashlib, json, os, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, cli, eq, fail, main
import node_clients

V = "8.13.4"


def fixtures(up):
    files = {}

    def put(path, body, ctype):
        body = body if isinstance(body, bytes) else body.encode()
        up.add(path, body, headers=[("Content-Type", ctype), ("Cache-Control", "max-age=600"),
                                    ("Cache-Control", "public")])
        files[path] = body

    search = []
    for name, ver, cat in (("nginx", "1.20.0", "web"), ("system", "1.54.0", "os_system")):
        base = f"/package/{name}/{ver}"
        doc = {
            "name": name, "version": ver, "title": name.title(), "type": "integration", "release": "ga",
            "format_version": "3.0.0", "categories": [cat],
            "conditions": {"kibana": {"version": "^8.13.0"}},
            "download": f"/epr/{name}/{name}-{ver}.zip", "signature_path": f"/epr/{name}/{name}-{ver}.zip.sig",
            "path": base, "readme": f"{base}/docs/README.md",
            # the registry writes both forms: icons with src and path, screenshots with src
            "icons": [{"src": f"/img/logo_{name}.svg", "path": f"{base}/img/logo_{name}.svg", "type": "image/svg+xml"}],
            "screenshots": [{"src": f"/img/{name}-overview.png", "title": "Overview", "size": "1920x1080"}],
            "policy_templates": [{"name": name, "title": name, "categories": [cat],
                                  "icons": [{"src": f"/img/{name}-pt.svg", "path": f"{base}/img/{name}-pt.svg"}]}],
        }
        put(f"{base}/", json.dumps(doc), "application/json")
        put(f"{base}/img/logo_{name}.svg", f"<svg>{name}</svg>", "image/svg+xml")
        put(f"{base}/img/{name}-overview.png", b"\x89PNG\r\n\x1a\n" + os.urandom(3000), "image/png")
        put(f"{base}/img/{name}-pt.svg", f"<svg>{name} template</svg>", "image/svg+xml")
        put(f"{base}/docs/README.md", f"# {name}\n\nThe {name} integration.\n", "text/markdown; charset=utf-8")
        put(f"{base}/changelog.yml", f'- version: "{ver}"\n  changes: []\n', "text/yaml")
        put(f"/epr/{name}/{name}-{ver}.zip", b"PK" + os.urandom(20000), "application/zip")
        put(f"/epr/{name}/{name}-{ver}.zip.sig", b"-----BEGIN PGP SIGNATURE-----\n" + name.encode(), "text/plain")
        search.append({k: doc[k] for k in ("name", "version", "title", "type", "release", "download", "path",
                                           "icons", "categories", "conditions")})
    body = json.dumps(search)
    for q in (f"/search?kibana.version={V}&prerelease=false",):
        up.add(q, body, headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=600")])
    for q in (f"/categories?kibana.version={V}&prerelease=false&include_policy_templates=true",
              f"/categories?kibana.version={V}&prerelease=false"):
        up.add(q, '[{"id":"web","title":"Web","count":1}]', headers=[("Content-Type", "application/json")])
    return files


def test():
    with Case() as (up, al, tmp):
        al.stop()
        files = fixtures(up)
        p = cli(al, "mirror", "packages", "--kibana-version", V)
        if "package files for Kibana's Integrations pages (icons, screenshots, docs): 10" not in p.stdout \
                or "failed 0" not in p.stdout:
            fail(f"mirror packages should fetch 5 files per package:\n{p.stdout}\n{p.stderr}")
        bundle = os.path.join(tmp, "packages.airlock")
        cli(al, "export", bundle)

        tmp2 = tempfile.mkdtemp(prefix="airlock-closed-")
        gap = Airlock(tmp2, up, offline=True)
        gap.stop()
        cli(gap, "import", bundle)
        up.stop()
        gap.start()
        try:
            reg = gap.url("")
            c = f"kibana.version={V}&spec.max=3.0"
            session = [
                (f"/search?{c}", "computed"),
                (f"/categories?include_policy_templates=true&{c}", "computed"),
                (f"/search?package=nginx&prerelease=false&{c}", "computed"),
            ]
            for name, ver in (("nginx", "1.20.0"), ("system", "1.54.0")):
                base = f"/package/{name}/{ver}"
                session += [(f"{base}/", f"{base}/"), (base, f"{base}/"),
                            (f"{base}/img/logo_{name}.svg", None), (f"{base}/img/{name}-overview.png", None),
                            (f"{base}/img/{name}-pt.svg", None), (f"{base}/docs/README.md", None),
                            (f"{base}/changelog.yml", None),
                            (f"/epr/{name}/{name}-{ver}.zip", None), (f"/epr/{name}/{name}-{ver}.zip.sig", None)]
            p = node_clients.run("kibana_fetch.js", ["-"] + [reg + u for u, _ in session], {}, timeout=90)
            if p.returncode != 0:
                fail(f"node-fetch: {p.stderr}")
            answers = [json.loads(l) for l in p.stdout.split("\n") if l.strip()]  # not splitlines: U+2028 in bodies
            eq(len(answers), len(session), "one answer per URL")
            for (path, want), a in zip(session, answers):
                if a["status"] != 200:
                    fail(f"{path}: {a['status']} {a['cacheStatus']} {a['body'][:200]}")
                if want == "computed":
                    names = [x["name"] for x in json.loads(a["body"])] if path.startswith("/search") else None
                    if names is not None and "nginx" not in names:
                        fail(f"{path}: nginx should be listed: {a['body'][:300]}")
                    continue
                expect = files[want or path]
                eq(a["sha256"], hashlib.sha256(expect).hexdigest(), f"{path}: the mirrored bytes")
                if want and want != path and not a["finalUrl"].endswith(want):
                    fail(f"{path}: should end at {want} (the registry's StrictSlash redirect): {a['finalUrl']}")
        finally:
            gap.stop()


if __name__ == "__main__":
    main(test)
