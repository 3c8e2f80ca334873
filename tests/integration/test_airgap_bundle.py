"""Air-gap toolkit end to end: mirror artifacts, Endpoint and packages on a
connected cache; export a bundle; import it into a fresh cache; serve that
with upstream.offline: true and fetch everything with curl: same bytes, same
ETags, zero upstream requests.  A tampered or truncated bundle is rejected
and leaves the target cache as it was."""
import io, json, os, shutil, sys, tempfile, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, cli, curl, eq, fail, main, sha512_line

V = "8.13.4"


def fixtures(up):
    paths = {}
    def put(path, body, etag):
        up.add(path, body, headers=[("ETag", etag), ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT")])
        paths[path] = (body, etag)
    for name, d, arches in (("elastic-agent", "beats/elastic-agent", ("linux-x86_64", "linux-arm64")),
                            ("fleet-server", "fleet-server", ("linux-x86_64",))):
        for a in arches:
            f = f"{name}-{V}-{a}.tar.gz"
            body = os.urandom(150 * 1024)
            put(f"/downloads/{d}/{f}", body, f'"{name}-{a}"')
            put(f"/downloads/{d}/{f}.sha512", sha512_line(body, f), f'"{name}-{a}-sha"')
            put(f"/downloads/{d}/{f}.asc", b"-----BEGIN PGP SIGNATURE-----\n" + a.encode(), f'"{name}-{a}-asc"')
    put("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", '"gpg"')
    # Endpoint: the manifest zip lists artifacts by relative_url.
    arts = {}
    for n in ("diagnostic-configuration-v1", "endpointpe-v4-blocklist"):
        rel = f"/downloads/endpoint/artifacts/{n}-linux-{V}/0123abcd"
        put(rel, os.urandom(4000), f'"{n}"')
        arts[f"{n}-linux-{V}"] = {"relative_url": rel, "encoded_size": 4000}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({"manifest_version": "1.0.1722", "sku": "8.13", "artifacts": arts}))
    put(f"/downloads/endpoint/manifest/artifacts-{V}.zip", buf.getvalue(), '"manifest-1722"')
    # The registry: /search with two packages, their documents, archives and signatures. No ETags.
    pkgs = [("nginx", "1.20.0"), ("system", "1.54.0")]
    search = [{"name": n, "version": v, "title": n, "path": f"/package/{n}/{v}", "download": f"/epr/{n}/{n}-{v}.zip"}
              for n, v in pkgs]
    for path in (f"/search?kibana.version={V}&prerelease=false",):
        up.add(path, json.dumps(search), headers=[("Content-Type", "application/json"),
                                                  ("Cache-Control", "max-age=600"), ("Cache-Control", "public")])
        paths[path] = (json.dumps(search).encode(), None)
    for path in (f"/categories?kibana.version={V}&prerelease=false&include_policy_templates=true",
                 f"/categories?kibana.version={V}&prerelease=false"):
        up.add(path, b'[{"id":"security","title":"Security","count":1}]', headers=[("Cache-Control", "max-age=600")])
        paths[path] = (b'[{"id":"security","title":"Security","count":1}]', None)
    for n, v in pkgs:
        doc = {"name": n, "version": v, "download": f"/epr/{n}/{n}-{v}.zip", "signature_path": f"/epr/{n}/{n}-{v}.zip.sig",
               "conditions": {"kibana": {"version": "^8.13.0"}}, "format_version": "3.0.0"}
        up.add(f"/package/{n}/{v}/", json.dumps(doc), headers=[("Cache-Control", "max-age=600")])
        paths[f"/package/{n}/{v}/"] = (json.dumps(doc).encode(), None)
        put(f"/epr/{n}/{n}-{v}.zip", os.urandom(20000), f'"{n}-zip"')
        # every package has one (package-spec); Fleet's detail page reads it (use_change_log.ts)
        put(f"/package/{n}/{v}/changelog.yml", f'- version: "{v}"\n'.encode(), f'"{n}-changelog"')
        put(f"/epr/{n}/{n}-{v}.zip.sig", b"sig " + n.encode(), f'"{n}-sig"')
    return paths


def test():
    with Case() as (up, al, tmp):
        al.stop()
        paths = fixtures(up)
        p = cli(al, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64,linux-arm64",
                "--format", "tar.gz", "--only", "elastic-agent,fleet-server")
        # elastic-agent: 2 arches x 3 files, fleet-server: 2 x 3 (arm64 is 404), + GPG key
        if "fetched 10, already present 0, missing 3, failed 0" not in p.stdout:
            fail(f"mirror artifacts summary: {p.stdout}\n{p.stderr}")
        p = cli(al, "mirror", "endpoint", "--version", V)
        if "manifest_version 1.0.1722: 2 artifacts" not in p.stdout or "failed 0" not in p.stdout:
            fail(f"mirror endpoint: {p.stdout}\n{p.stderr}")
        p = cli(al, "mirror", "packages", "--kibana-version", V)
        if "missing 0, failed 0" not in p.stdout:
            fail(f"mirror packages: {p.stdout}\n{p.stderr}")
        # A rerun finds everything already there.
        before = up.count()
        p = cli(al, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64,linux-arm64",
                "--format", "tar.gz", "--only", "elastic-agent,fleet-server")
        if "fetched 0, already present 10" not in p.stdout:
            fail(f"rerun should find everything present: {p.stdout}")
        eq(up.count() - before, 3, "a rerun only asks again for what was missing (404s are not cached long)")
        p = cli(al, "status")
        for want in ("artifacts.elastic.co", "mirrored Elastic Agent versions: 8.13.4", "manifest_version 1.0.1722"):
            if want not in p.stdout:
                fail(f"status should mention {want!r}:\n{p.stdout}")
        p = cli(al, "ls", "*.tar.gz")
        pinned = [l for l in p.stdout.splitlines() if l.startswith("200") and " pinned " in l]
        eq(len(pinned), 3, f"pinned tar.gz entries in ls:\n{p.stdout}")
        eq(cli(al, "verify").returncode, 0, "verify on a sound cache")

        bundle = os.path.join(tmp, "stack-8.13.4.airlock")
        p = cli(al, "export", bundle)
        if "exported" not in p.stdout:
            fail(p.stdout)

        # The air-gapped side: a fresh cache, forced offline.
        tmp2 = tempfile.mkdtemp(prefix="airlock-gap-")
        try:
            gap = Airlock(tmp2, up, offline=True)
            gap.stop()
            # Tampered and truncated bundles are rejected; the cache stays as it was.
            data = open(bundle, "rb").read()
            bad = bytearray(data)
            bad[len(bad) // 2] ^= 0x01
            open(os.path.join(tmp2, "bad.airlock"), "wb").write(bad)
            open(os.path.join(tmp2, "short.airlock"), "wb").write(data[:len(data) - 100])
            for name, why in (("bad.airlock", "mismatch"), ("short.airlock", "truncated")):
                p = cli(gap, "import", os.path.join(tmp2, name), ok=False)
                eq(p.returncode, 1, f"import of {name}")
                if why not in p.stderr or "not changed" not in p.stderr:
                    fail(f"import {name}: {p.stderr}")
                if "0 entries" not in cli(gap, "ls").stdout:
                    fail(f"the cache changed after rejecting {name}")
            p = cli(gap, "import", bundle)
            if "added" not in p.stdout or "rejected 0" not in p.stdout:
                fail(p.stdout)
            p = cli(gap, "import", bundle)
            if "added 0, updated 0, skipped" not in p.stdout:
                fail(f"importing twice changes nothing: {p.stdout}")
            gap.start()
            conns = up.connections
            count = up.count()
            for path, (body, etag) in paths.items():
                if path.endswith(".tar.gz") and "fleet-server" in path and "arm64" in path:
                    continue
                r = curl(gap, path)
                eq(r.status, 200, f"offline {path}")
                eq(r.body, body, f"offline body {path}")
                eq(r.header("ETag"), etag, f"offline ETag {path}")
            eq(up.count(), count, "zero upstream requests on the air-gapped side")
            eq(up.connections, conns, "zero upstream connections on the air-gapped side")
            gap.stop()
        finally:
            shutil.rmtree(tmp2, ignore_errors=True)

        # purge removes what matches, nothing else.
        p = cli(al, "purge", "*/fleet-server/*")
        if "purged 6 entries" not in p.stdout:  # 3 files + 3 cached 404s (arm64)
            fail(p.stdout)


if __name__ == "__main__":
    main(test)
