"""airlock doctor (issue 28): from the cache alone, what an air-gapped Stack would miss.

The fake upstream serves Elastic Agent 8.13.4 for two platforms (with
.sha512 and .asc), GPG-KEY-elastic-agent, an Endpoint manifest published 40
days ago listing two artifacts, and two packages whose documents say
kibana ^8.13.0 (with archive and .sig).  Checked, all by the exact URLs:

- an empty cache: every agent file, the key, the manifest and Kibana's
  package list are missing, each with the client that fails; exit 1;
- after mirror: ready, exit 0; the manifest's version and its age (40 days,
  from Last-Modified) with the monthly-update warning; Kibana's list is the
  two packages;
- --kibana 8.14.0, for which nothing asked the registry: the list is
  computed from the cached documents by the offline registry's rules (both
  packages qualify for ^8.13.0); --kibana 9.0.0: none qualifies, so the
  package list itself is missing;
- after purging one .asc, one package .sig, one Endpoint artifact and one
  package document that the cached /search answer still names: exactly
  those four are missing, each of its kind; exit 1;
- nothing is fetched from the upstream by doctor."""
import email.utils, io, json, os, sys, tempfile, time, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, cli, eq, fail, main, sha512_line

V = "8.13.4"
AE = "https://artifacts.elastic.co"
SEC = "https://artifacts.security.elastic.co"
EPR = "https://epr.elastic.co"
PLATS = ("linux-x86_64", "windows-x86_64")


def doctor(cfg, *extra):
    p = cli(cfg, "doctor", "--stack", V, "--platforms", ",".join(PLATS), "--json", *extra, ok=False)
    if p.returncode not in (0, 1):
        fail(f"doctor exited {p.returncode}: {p.stderr}")
    return p.returncode, json.loads(p.stdout)


def missing(j):
    for m in j["missing"]:
        if not m["client"] or not m["failure"] or not m["what"]:
            fail(f"a missing thing without its client and failure: {m}")
    return sorted((m["kind"], m["url"]) for m in j["missing"])


def fixtures(up):
    for a in PLATS:
        f = f"elastic-agent-{V}-{a}.{'zip' if a.startswith('windows') else 'tar.gz'}"
        body = os.urandom(20000)
        up.add(f"/downloads/beats/elastic-agent/{f}", body, headers=[("ETag", f'"{a}"')])
        up.add(f"/downloads/beats/elastic-agent/{f}.sha512", sha512_line(body, f), headers=[("ETag", f'"{a}-s"')])
        up.add(f"/downloads/beats/elastic-agent/{f}.asc", b"-----BEGIN PGP SIGNATURE-----\n", headers=[("ETag", f'"{a}-a"')])
    up.add("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", headers=[("ETag", '"gpg"')])
    arts = {}
    for n in ("diagnostic-configuration-v1", "endpointpe-v4-blocklist"):
        rel = f"/downloads/endpoint/artifacts/{n}-linux-{V}/0123abcd"
        up.add(rel, os.urandom(4000), headers=[("ETag", f'"{n}"')])
        arts[f"{n}-linux-{V}"] = {"relative_url": rel, "encoded_size": 4000}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({"manifest_version": "1.0.1722", "sku": "8.13", "artifacts": arts}))
    lm = email.utils.formatdate(time.time() - 40 * 86400 - 3600, usegmt=True)
    up.add(f"/downloads/endpoint/manifest/artifacts-{V}.zip", buf.getvalue(),
           headers=[("ETag", '"m"'), ("Last-Modified", lm)])
    pkgs = [("nginx", "1.20.0"), ("system", "1.54.0")]
    search = [{"name": n, "version": v, "title": n, "path": f"/package/{n}/{v}", "download": f"/epr/{n}/{n}-{v}.zip"}
              for n, v in pkgs]
    up.add(f"/search?kibana.version={V}&prerelease=false", json.dumps(search),
           headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=600")])
    for path in (f"/categories?kibana.version={V}&prerelease=false&include_policy_templates=true",
                 f"/categories?kibana.version={V}&prerelease=false"):
        up.add(path, b'[]', headers=[("Cache-Control", "max-age=600")])
    for n, v in pkgs:
        doc = {"name": n, "title": n, "version": v, "type": "integration", "download": f"/epr/{n}/{n}-{v}.zip",
               "path": f"/package/{n}/{v}", "signature_path": f"/epr/{n}/{n}-{v}.zip.sig",
               "conditions": {"kibana": {"version": "^8.13.0"}}, "format_version": "3.0.0", "owner": {"github": "x"}}
        up.add(f"/package/{n}/{v}/", json.dumps(doc), headers=[("Cache-Control", "max-age=600")])
        up.add(f"/epr/{n}/{n}-{v}.zip", os.urandom(5000), headers=[("ETag", f'"{n}-zip"')])
        up.add(f"/epr/{n}/{n}-{v}.zip.sig", b"sig " + n.encode(), headers=[("ETag", f'"{n}-sig"')])


def test():
    with Case() as (up, al, tmp):
        al.stop()
        fixtures(up)
        # an empty cache
        rc, j = doctor(al.config)
        eq(rc, 1, "doctor on an empty cache")
        want = []
        for a in PLATS:
            u = f"{AE}/downloads/beats/elastic-agent/elastic-agent-{V}-{a}.{'zip' if a.startswith('windows') else 'tar.gz'}"
            want += [("agent-artifact", u), ("agent-artifact-sha512", u + ".sha512"),
                     ("agent-artifact-signature", u + ".asc")]
        want += [("gpg-key", f"{AE}/GPG-KEY-elastic-agent"),
                 ("endpoint-manifest", f"{SEC}/downloads/endpoint/manifest/artifacts-{V}.zip"),
                 ("package-list", f"{EPR}/package/")]
        eq(missing(j), sorted(want), "what an empty cache misses")
        eq(j["endpoint_manifest"], None, "no manifest to date")
        p = cli(al.config, "doctor", "--stack", V, "--platforms", ",".join(PLATS), ok=False)
        if p.returncode != 1 or "NOT READY" not in p.stdout or "Elastic Agent (upgrade from Fleet)" not in p.stdout:
            fail(f"doctor's text: {p.stdout}")

        cli(al.config, "mirror", "artifacts", "--version", V, "--arch", ",".join(PLATS), "--format", "tar.gz,zip",
            "--only", "elastic-agent")
        cli(al.config, "mirror", "endpoint", "--version", V)
        cli(al.config, "mirror", "packages", "--kibana-version", V)
        before = up.count()
        rc, j = doctor(al.config)
        eq((rc, missing(j)), (0, []), "ready after mirror")
        eq((j["endpoint_manifest"]["manifest_version"], j["endpoint_manifest"]["age_days"], j["endpoint_manifest_old"]),
           ("1.0.1722", 40, True), "the manifest's version and age")
        eq(sorted((p["name"], p["version"]) for p in j["packages"]), [("nginx", "1.20.0"), ("system", "1.54.0")],
           "Kibana's packages")
        eq(j["checked"], j["present"], "every thing checked is present")
        p = cli(al.config, "doctor", "--stack", V, "--platforms", ",".join(PLATS))
        if "ready: " not in p.stdout or "WARNING: older than 30 days" not in p.stdout:
            fail(f"doctor's text when ready: {p.stdout}")

        # Kibana versions nobody asked the registry about: the offline registry's rules decide
        rc, j = doctor(al.config, "--kibana", "8.14.0")
        eq((rc, sorted(p["name"] for p in j["packages"])), (0, ["nginx", "system"]), "^8.13.0 admits Kibana 8.14.0")
        rc, j = doctor(al.config, "--kibana", "9.0.0")
        eq((rc, missing(j)), (1, [("package-list", f"{EPR}/package/")]), "^8.13.0 does not admit Kibana 9.0.0")

        # take four things away
        for pat in (f"*elastic-agent-{V}-windows-x86_64.zip.asc", "*/nginx-1.20.0.zip.sig",
                    "*/endpointpe-v4-blocklist-linux-*", "*/package/system/1.54.0/"):
            if "purged 1 entries" not in cli(al.config, "purge", pat).stdout:
                fail(f"purge {pat}")
        rc, j = doctor(al.config)
        eq(rc, 1, "doctor with four things missing")
        eq(missing(j), sorted([
            ("agent-artifact-signature", f"{AE}/downloads/beats/elastic-agent/elastic-agent-{V}-windows-x86_64.zip.asc"),
            ("package-signature", f"{EPR}/epr/nginx/nginx-1.20.0.zip.sig"),
            ("endpoint-artifact", f"{SEC}/downloads/endpoint/artifacts/endpointpe-v4-blocklist-linux-{V}/0123abcd"),
            ("package-document", f"{EPR}/package/system/1.54.0/")]), "exactly what was taken away")
        eq(up.count(), before, "doctor asks the upstream nothing")
        p = cli(al.config, "doctor", "--stack", "8.x", ok=False)
        eq(p.returncode, 2, "a bad version is a usage error")
        p = cli(al.config, "doctor", "--stack", V, "--platforms", "linux-sparc", ok=False)
        if p.returncode != 2 or "linux-sparc" not in p.stderr:
            fail(f"an unknown platform: {p.stderr}")


if __name__ == "__main__":
    main(test)
