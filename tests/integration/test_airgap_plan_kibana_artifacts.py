"""Plans and doctor know Kibana's telemetry artifacts (mirror kibana-artifacts), as they know
models, product docs and GeoIP (test_airgap_plan_newer).

Kibana's Security Solution asks https://artifacts.security.elastic.co/downloads/kibana/manifest/
artifacts-<v>.zip, then each artifact it lists at the CDN URL + relative_url (elastic/kibana
437def57, x-pack/solutions/security/plugins/security_solution/server/lib/telemetry/artifact.ts,
Artifact.start and getArtifact; fixtures of test_airgap_kibana_artifacts).  Checked:

- doctor --stack 8.13.4 --kibana-artifacts on an empty cache names the manifest missing, with the
  client that fails (Kibana's telemetry artifacts); exit 1;
- a plan with kibana_artifacts: [8.13.4] run by mirror --plan: one step, mirror kibana-artifacts
  8.13.4, exit 0; doctor then finds the manifest and both artifacts it lists (checked goes up by
  the two artifacts; none of them missing);
- airlock plan on that cache prints kibana_artifacts: [8.13.4]; mirror --plan of the printed plan
  fetches nothing new;
- one artifact purged: doctor names exactly it, of its kind and client;
- a bad version in the plan: file:line:column, exit 2; a plan of kibana_artifacts alone is not empty.
Before, the plan refused the key (unknown key 'kibana_artifacts') and doctor the option."""
import json, os, sys
import yaml
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import Case, bad_plan, cli, eq, fail, main
from test_airgap_kibana_artifacts import ARTS, CDN, MAN, manifest_zip

V = "8.13.4"
CLIENT = "Kibana (Security Solution telemetry artifacts)"


def doctor(cfg):
    p = cli(cfg, "doctor", "--stack", V, "--platforms", "linux-x86_64", "--kibana-artifacts", "--json", ok=False)
    if p.returncode not in (0, 1):
        fail(f"doctor exited {p.returncode}: {p.stderr}")
    j = json.loads(p.stdout)
    mine = []
    for m in j["missing"]:
        if m["kind"].startswith("kibana-telemetry"):
            if m["client"] != CLIENT or not m["failure"]:
                fail(f"{m['kind']}: its client and how it fails: {m}")
            mine.append((m["kind"], m["url"]))
    return p.returncode, j, sorted(mine)


def test():
    with Case() as (up, al, tmp):
        al.stop()
        up.add(MAN, manifest_zip(), headers=[("ETag", '"k-7"'), ("Content-Type", "application/zip")])
        for n, (rel, doc) in ARTS.items():
            up.add(rel, json.dumps(doc), headers=[("Content-Type", "application/json"), ("ETag", f'"{n}"')])

        rc, j0, miss = doctor(al.config)
        eq((rc, miss), (1, [("kibana-telemetry-manifest", CDN + MAN)]), "an empty cache misses the manifest")

        plan = os.path.join(tmp, "site.yml")
        open(plan, "w").write(f"kibana_artifacts: [{V}]\n")
        p = cli(al.config, "mirror", "--plan", plan)
        steps = [l for l in p.stdout.splitlines() if l.startswith("== plan step")]
        eq(steps, [f"== plan step 1 of 1: mirror kibana-artifacts {V}"], "the plan's step")
        if "every step succeeded" not in p.stdout:
            fail(p.stdout)
        eq(up.count(MAN), 1, "the manifest fetched")
        rc, j, miss = doctor(al.config)
        eq(miss, [], "after mirror --plan: the manifest and its artifacts are held")
        eq(j["checked"] - j0["checked"], len(ARTS), "the artifacts the manifest lists are checked too")

        got = yaml.safe_load(cli(al.config, "plan").stdout)
        eq(got.get("kibana_artifacts"), [V], "airlock plan")
        printed = os.path.join(tmp, "printed.yml")
        open(printed, "w").write(cli(al.config, "plan").stdout)
        p = cli(al.config, "mirror", "--plan", printed)
        summary = [l for l in p.stdout.splitlines() if l.startswith("mirror --plan ")][0]
        if ", fetched 0," not in summary or "every step succeeded" not in summary:
            fail(f"the printed plan, run again, fetches nothing new: {summary}")

        gone = CDN + ARTS["endpoint-alerts-v1"][0]
        cli(al.config, "purge", gone)
        rc, j, miss = doctor(al.config)
        eq((rc, miss), (1, [("kibana-telemetry-artifact", gone)]), "the purged artifact, named")

        bad_plan(al.config, tmp, "kibana_artifacts: [8.13]\n",
                 ":1:20: kibana_artifacts: '8.13' is not a version (MAJOR.MINOR.PATCH, as 8.13.4)")


if __name__ == "__main__":
    main(test)
