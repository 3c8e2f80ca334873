"""Plans (issue 28): airlock mirror --plan PLAN.yml and airlock plan.

A plan naming two Stack versions of elastic-agent and fleet-server for two
platforms and two formats, one Endpoint version and one Kibana version is
run by `mirror --plan`: one summary whose counts are the sums of the steps'
(the test counts the files it serves and what the upstream was asked), one
exit code, and a cache holding exactly what the same mirror commands run one
by one give a second cache.  `airlock plan` on that cache prints a plan that
loads back (as YAML) to the same versions, platforms, formats and products;
running it again fetches nothing.  A step that fails (the Endpoint manifest
answers 500) makes the exit code 1 and is named in the summary.  Bad plans
are refused with file:line:column: what, exit 2, before anything is fetched."""
import io, json, os, shutil, sys, tempfile, zipfile
import yaml
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, bad_plan, cli, entries, eq, fail, main, sha512_line

VS = ("8.13.4", "8.14.0")
PLATS = ("linux-x86_64", "windows-x86_64")


def fixtures(up):
    n = 0
    for v in VS:
        for name, d in (("elastic-agent", "beats/elastic-agent"), ("fleet-server", "fleet-server")):
            for a in PLATS:
                f = f"{name}-{v}-{a}.{'zip' if a.startswith('windows') else 'tar.gz'}"
                body = os.urandom(3000)
                up.add(f"/downloads/{d}/{f}", body, headers=[("ETag", f'"{f}"')])
                up.add(f"/downloads/{d}/{f}.sha512", sha512_line(body, f), headers=[("ETag", f'"{f}-s"')])
                up.add(f"/downloads/{d}/{f}.asc", b"-----BEGIN PGP SIGNATURE-----\n", headers=[("ETag", f'"{f}-a"')])
                n += 3
    up.add("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", headers=[("ETag", '"gpg"')])
    n += 1
    rel = "/downloads/endpoint/artifacts/diagnostic-configuration-v1-linux-8.13.4/0123abcd"
    up.add(rel, os.urandom(4000), headers=[("ETag", '"d"')])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({"manifest_version": "1.0.7", "artifacts": {
            "diagnostic-configuration-v1-linux-8.13.4": {"relative_url": rel}}}))
    up.add("/downloads/endpoint/manifest/artifacts-8.13.4.zip", buf.getvalue(), headers=[("ETag", '"m"')])
    n += 2
    search = [{"name": "nginx", "version": "1.20.0", "path": "/package/nginx/1.20.0", "download": "/epr/nginx/nginx-1.20.0.zip"}]
    up.add("/search?kibana.version=8.13.4&prerelease=false", json.dumps(search), headers=[("Cache-Control", "max-age=600")])
    for path in ("/categories?kibana.version=8.13.4&prerelease=false&include_policy_templates=true",
                 "/categories?kibana.version=8.13.4&prerelease=false"):
        up.add(path, b"[]", headers=[("Cache-Control", "max-age=600")])
    doc = {"name": "nginx", "version": "1.20.0", "download": "/epr/nginx/nginx-1.20.0.zip",
           "signature_path": "/epr/nginx/nginx-1.20.0.zip.sig", "conditions": {"kibana": {"version": "^8.13.0"}}}
    up.add("/package/nginx/1.20.0/", json.dumps(doc), headers=[("Cache-Control", "max-age=600")])
    up.add("/epr/nginx/nginx-1.20.0.zip", os.urandom(2000), headers=[("ETag", '"z"')])
    up.add("/epr/nginx/nginx-1.20.0.zip.sig", b"sig", headers=[("ETag", '"s"')])
    # every package has one (package-spec); mirror packages fetches it for Fleet's detail page (use_change_log.ts)
    up.add("/package/nginx/1.20.0/changelog.yml", b'- version: "1.20.0"\n', headers=[("ETag", '"c"')])
    n += 7
    return n


PLAN = """# what the site carries
stack: [8.13.4, 8.14.0]
agents:
  platforms: [linux-x86_64, windows-x86_64]
  formats: [tar.gz, zip]
  products: [elastic-agent, fleet-server]
endpoint: 8.13.4
kibana: [8.13.4]
"""


def test():
    with Case() as (up, al, tmp):
        al.stop()
        served = fixtures(up)
        plan = os.path.join(tmp, "site.yml")
        open(plan, "w").write(PLAN)
        p = cli(al.config, "mirror", "--plan", plan)
        lines = [l for l in p.stdout.splitlines() if l.startswith("mirror --plan ")]
        eq(len(lines), 1, f"one summary:\n{p.stdout}")
        # every file the upstream serves is fetched once; the second artifacts step finds the GPG key present
        want = f"mirror --plan {plan}: 4 steps, fetched {served}, already present 1, missing 0, failed 0"
        if not lines[0].startswith(want) or "every step succeeded" not in lines[0]:
            fail(f"the summary: {lines[0]!r}, want it to start {want!r}")
        steps = [l for l in p.stdout.splitlines() if l.startswith("== plan step")]
        eq(steps, ["== plan step 1 of 4: mirror artifacts 8.13.4", "== plan step 2 of 4: mirror artifacts 8.14.0",
                   "== plan step 3 of 4: mirror endpoint 8.13.4", "== plan step 4 of 4: mirror packages 8.13.4"],
           "the steps, in the plan's order")

        # the same, one command at a time, into another cache
        tmp2 = tempfile.mkdtemp(prefix="airlock-plan-")
        try:
            other = Airlock(tmp2, up)
            other.stop()
            for v in VS:
                cli(other.config, "mirror", "artifacts", "--version", v, "--arch", ",".join(PLATS), "--format",
                    "tar.gz,zip", "--only", "elastic-agent,fleet-server")
            cli(other.config, "mirror", "endpoint", "--version", "8.13.4")
            cli(other.config, "mirror", "packages", "--kibana-version", "8.13.4")
            eq(entries(al.config, cols=(0, 1, 5)), entries(other.config, cols=(0, 1, 5)),
               "mirror --plan fills what the commands one by one do")
        finally:
            shutil.rmtree(tmp2, ignore_errors=True)

        # airlock plan: the plan matching the cache, which mirror --plan reads back
        p = cli(al.config, "plan")
        got = yaml.safe_load(p.stdout)
        eq((got["stack"], sorted(got["agents"]["platforms"]), sorted(got["agents"]["formats"]),
            sorted(got["agents"]["products"]), got["endpoint"], got["kibana"], got["prerelease"]),
           (list(VS), sorted(PLATS), ["tar.gz", "zip"], ["elastic-agent", "fleet-server"], ["8.13.4"], ["8.13.4"],
            False), f"airlock plan:\n{p.stdout}")
        printed = os.path.join(tmp, "printed.yml")
        open(printed, "w").write(p.stdout)
        p = cli(al.config, "mirror", "--plan", printed)
        summary = [l for l in p.stdout.splitlines() if l.startswith("mirror --plan ")][0]
        if ", fetched 0," not in summary:
            fail(f"the printed plan, run again, fetches nothing new: {summary}")

        # a failing step: exit 1, named
        up.add("/downloads/endpoint/manifest/artifacts-8.13.4.zip", b"oops", status=500)
        cli(al.config, "purge", "*/artifacts-8.13.4.zip")
        p = cli(al.config, "mirror", "--plan", plan, ok=False)
        eq(p.returncode, 1, f"a failed step fails the plan:\n{p.stdout}")
        if "steps that failed: endpoint 8.13.4 (exit 1)" not in p.stdout:
            fail(f"the failed step named in the summary:\n{p.stdout}")

        # bad plans: file:line:column, exit 2, nothing asked
        count = up.count()
        for text, want in (
                ("stack: [8.13.4]\nstak: [8.14.0]\n", ":2:1: unknown key 'stak' in the plan"),
                ("stack: [8.13]\n", ":1:9: stack: '8.13' is not a version"),
                ("stack: [8.13.4]\nagents:\n  platforms: [linux-sparc]\n", ":3:15: agents.platforms: 'linux-sparc' is not one of"),
                ("stack: [8.13.4]\nagents:\n  formats: [exe]\n", ":3:13: agents.formats: 'exe' is not one of"),
                ("kibana: [8.13.4]\nkibana: [8.14.0]\n", ":2:1: 'kibana' given twice (first at line 1)"),
                ("prerelease: maybe\nkibana: 8.13.4\n", ":1:13: prerelease: true or false"),
                ("agents:\n  platforms: [linux-x86_64]\n", "agents: given without stack versions"),
                ("stack: [8.13.4\n", "did not find expected"),
                ("", "empty plan")):
            bad_plan(al.config, tmp, text, want)
        eq(up.count(), count, "nothing asked for a bad plan")


if __name__ == "__main__":
    main(test)
