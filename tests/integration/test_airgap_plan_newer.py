"""Plans and doctor know the newer downloads (issue 28): FIPS agent builds,
trained models, the AI Assistant's product documentation and GeoIP.

The fake upstream serves Elastic Agent 9.1.0 and its FIPS build for
linux-x86_64 (each with .sha512 and .asc) and the agent GPG key, two
trained models (metadata, .pt, vocabulary), the product documentation
bucket (four products for 8.15 and 8.16) and the GeoIP overview with three
databases.  Checked:

- doctor --fips --models --product-docs 8.15 --geoip on an empty cache
  names each missing thing by its upstream URL, with the client that
  fails: the FIPS package and its .sha512/.asc, each model's metadata and
  .pt, the GeoIP overview, each product's 8.15 artifact; exit 1;
- one plan (agents.products with elastic-agent-fips, models, product_docs,
  geoip) run by mirror --plan: its steps in order, exit 0; then doctor
  with the same asks finds all of them, the vocabulary each model's
  metadata names and every database the overview lists included (only the
  Endpoint manifest and Kibana's package list, which the plan does not
  name, are missing);
- airlock plan on that cache prints models, product_docs (quoted) and
  geoip, and elastic-agent-fips among the products; mirror --plan of the
  printed plan fetches nothing new;
- one model's .pt, one database and one product's artifact purged: doctor
  names exactly those three, each of its kind and client;
- bad plans and bad doctor arguments: file:line:column, exit 2."""
import hashlib, json, os, sys
import yaml
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import Case, bad_plan, cli, eq, fail, main, sha512_line
import es_models
from test_airgap_geoip import publish as geoip_publish
from test_airgap_product_docs import listing

V = "9.1.0"
AE = "https://artifacts.elastic.co"
MODELS = ("elser_model_2_linux-x86_64", "rerank-v1")
PRODUCTS = ("elasticsearch", "kibana", "observability", "security")
DBS = ("GeoLite2-ASN.tgz", "GeoLite2-City.tgz", "GeoLite2-Country.tgz")
ASKS = ("--platforms", "linux-x86_64", "--fips", "--models", ",".join(MODELS), "--product-docs", "8.15", "--geoip")
CLIENTS = {"fips-agent-artifact": "Elastic Agent, FIPS build (upgrade from Fleet)",
           "model-file": "Elasticsearch (trained model download)",
           "model-metadata": "Elasticsearch (trained model download)",
           "geoip-overview": "Elasticsearch (GeoIP downloader)", "geoip-database": "Elasticsearch (GeoIP downloader)",
           "product-doc": "Kibana (AI Assistant product documentation)"}


def doctor(cfg):
    p = cli(cfg, "doctor", "--stack", V, *ASKS, "--json", ok=False)
    if p.returncode not in (0, 1):
        fail(f"doctor exited {p.returncode}: {p.stderr}")
    j = json.loads(p.stdout)
    for m in j["missing"]:
        if m["kind"] in CLIENTS and (m["client"] != CLIENTS[m["kind"]] or not m["failure"]):
            fail(f"{m['kind']}: its client and how it fails: {m}")
    return p.returncode, j, sorted((m["kind"], m["url"]) for m in j["missing"])


def fixtures(up):
    for name in ("elastic-agent", "elastic-agent-fips"):
        f = f"{name}-{V}-linux-x86_64.tar.gz"
        body = os.urandom(20000)
        up.add(f"/downloads/beats/elastic-agent/{f}", body, headers=[("ETag", f'"{name}"')])
        up.add(f"/downloads/beats/elastic-agent/{f}.sha512", sha512_line(body, f), headers=[("ETag", f'"{name}-s"')])
        up.add(f"/downloads/beats/elastic-agent/{f}.asc", b"-----BEGIN PGP SIGNATURE-----\n",
               headers=[("ETag", f'"{name}-a"')])
    up.add("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", headers=[("ETag", '"gpg"')])
    for m in MODELS:
        es_models.publish(up, m, os.urandom(100000))
    names = {f"kb-product-doc-{p}-{v}.zip": os.urandom(3000) for v in ("8.15", "8.16") for p in PRODUCTS}
    up.add("/?max-keys=1000", listing(names), headers=[("Content-Type", "application/xml"), ("ETag", '"list-1"')])
    for n, body in names.items():
        up.add(f"/{n}", body, headers=[("Content-Type", "application/zip"), ("ETag", f'"{n}"')])
    return {e["name"]: e["md5_hash"] for e in geoip_publish(up, {n: os.urandom(5000) for n in DBS}, "sig1", '"ov-1"')}


PLAN = f"""stack: [{V}]
agents:
  platforms: [linux-x86_64]
  formats: [tar.gz]
  products: [elastic-agent, elastic-agent-fips]
models: [{", ".join(MODELS)}]
product_docs: ["8.15"]
geoip: true
"""


def test():
    with Case() as (up, al, tmp):
        al.stop()
        md5 = fixtures(up)
        fips = f"{AE}/downloads/beats/elastic-agent/elastic-agent-fips-{V}-linux-x86_64.tar.gz"
        rc, j, miss = doctor(al.config)
        eq(rc, 1, "an empty cache is not ready")
        want = {("fips-agent-artifact", fips), ("fips-agent-artifact-sha512", fips + ".sha512"),
                ("fips-agent-artifact-signature", fips + ".asc"),
                ("geoip-overview", "https://geoip.elastic.co/v1/database?elastic_geoip_service_tos=agree")}
        want |= {(k, f"https://ml-models.elastic.co/{m}{ext}") for m in MODELS
                 for k, ext in (("model-metadata", ".metadata.json"), ("model-file", ".pt"))}
        want |= {("product-doc", f"https://kibana-knowledge-base-artifacts.elastic.co/kb-product-doc-{p}-8.15.zip")
                 for p in PRODUCTS}
        got = {m for m in miss if m[0].startswith(("fips", "model", "geoip", "product-doc"))}
        eq(sorted(got), sorted(want), "what an empty cache misses of the newer downloads")

        plan = os.path.join(tmp, "site.yml")
        open(plan, "w").write(PLAN)
        p = cli(al.config, "mirror", "--plan", plan)
        steps = [l for l in p.stdout.splitlines() if l.startswith("== plan step")]
        eq(steps, [f"== plan step 1 of 4: mirror artifacts {V}", "== plan step 2 of 4: mirror models (2)",
                   "== plan step 3 of 4: mirror product-docs 8.15", "== plan step 4 of 4: mirror geoip"],
           "the plan's steps")
        if "every step succeeded" not in p.stdout:
            fail(p.stdout)
        rc, j, miss = doctor(al.config)
        eq([k for k, u in miss], ["endpoint-manifest", "package-list"], "after mirror --plan: only what it does not name")
        vocab = 2  # one vocabulary per model
        eq(j["checked"], 3 + 1 + 3 + 2 * 2 + vocab + 1 + len(DBS) + 4 + 1 + 1,
           "checked: agent 3, key, FIPS 3, models 2x2 and their vocabularies, overview, databases, 4 docs, "
           "manifest, package list")

        got = yaml.safe_load(cli(al.config, "plan").stdout)
        eq((got["models"], got["product_docs"], got["geoip"], sorted(got["agents"]["products"])),
           (sorted(MODELS), ["8.15"], True, ["elastic-agent", "elastic-agent-fips"]), "airlock plan")
        printed = os.path.join(tmp, "printed.yml")
        open(printed, "w").write(cli(al.config, "plan").stdout)
        if '"8.15"' not in open(printed).read():
            fail("product_docs versions are quoted (8.10 is not a number)")
        p = cli(al.config, "mirror", "--plan", printed)
        summary = [l for l in p.stdout.splitlines() if l.startswith("mirror --plan ")][0]
        if ", fetched 0," not in summary or "every step succeeded" not in summary:
            fail(f"the printed plan, run again, fetches nothing new: {summary}")

        pt = f"https://ml-models.elastic.co/{MODELS[1]}.pt"
        db = f"https://geoip.elastic.co/v1/db/{md5['GeoLite2-City.tgz']}/GeoLite2-City.tgz"
        doc = "https://kibana-knowledge-base-artifacts.elastic.co/kb-product-doc-security-8.15.zip"
        for u in (pt, db, doc):
            cli(al.config, "purge", u)
        rc, j, miss = doctor(al.config)
        eq((rc, [m for m in miss if m[0] not in ("endpoint-manifest", "package-list")]),
           (1, [("geoip-database", db), ("model-file", pt), ("product-doc", doc)]), "the three purged, named")

        for text, want in (("models: [../etc]\n", ":1:10: models: '../etc' is not a model id"),
                           ("product_docs: [8]\n", ":1:16: product_docs: '8' is not MAJOR.MINOR"),
                           ("geoip: maybe\n", ":1:8: geoip: true or false"),
                           ("geoip: false\n", "the plan names nothing to mirror")):
            bad_plan(al.config, tmp, text, want)
        for args, want in ((("--models", "a/b"), "--models: 'a/b' is not a model id"),
                           (("--product-docs", "8.15.1"), "--product-docs: '8.15.1' is not MAJOR.MINOR")):
            p = cli(al.config, "doctor", "--stack", V, *args, ok=False)
            if p.returncode != 2 or want not in p.stderr:
                fail(f"doctor {args}: {p.returncode} {p.stderr}")


if __name__ == "__main__":
    main(test)
