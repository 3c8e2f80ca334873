"""airlock inspect (issue 28): what a bundle carries, read without a cache.

A cache is filled through airlock from the fake upstream (mirror of agent
artifacts with .sha512 and .asc, Endpoint's manifest and artifacts, a
package with its archive and .sig, the GPG key), exported signed.  inspect
lists every entry in text, JSON and CSV: kind, product, version, platform,
size and SHA-256 as the test computes them from the fixtures, each artifact's
.sha512 matched, its .asc verified with the OpenPGP key id when keys are given
(and named bad when signed by another key), the bundle's format, creator,
signer (verified with --trust, refused with another key), base and the
whole-file digest the test computes.  It creates nothing where it runs.  A
bundle with one byte flipped in a body, or cut short, is named broken at the
entry the test computes, exit 1.  A delta names its base; a version-2 bundle
is still read."""
import csv, hashlib, io, json, os, subprocess, sys, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Case, eq, fail, gpg, main, pgp_keyring, pgp_sign, sha512_line

V = "8.13.4"
CORPUS = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "bundle")


def run(*args, ok=True, cwd=None):
    p = subprocess.run([AIRLOCK, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    if ok and p.returncode != 0:
        fail(f"airlock {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def fixtures(up, elastic, other):
    """What the upstream publishes; returns {url: body} of everything mirror will store."""
    bodies = {}

    def put(host, path, body, etag=None):
        up.add(path, body, headers=[("ETag", etag)] if etag else [("Cache-Control", "max-age=600")])
        bodies[f"https://{host}{path}"] = body
    art = "artifacts.elastic.co"
    for name, d, signer in (("elastic-agent", "beats/elastic-agent", elastic), ("filebeat", "beats/filebeat", other)):
        f = f"{name}-{V}-linux-x86_64.tar.gz"
        body = os.urandom(70000)
        put(art, f"/downloads/{d}/{f}", body, f'"{name}"')
        put(art, f"/downloads/{d}/{f}.sha512", sha512_line(body, f), f'"{name}-sha"')
        put(art, f"/downloads/{d}/{f}.asc", pgp_sign(signer, body), f'"{name}-asc"')
    put(art, "/GPG-KEY-elastic-agent", gpg(elastic, "--armor", "--export"), '"gpg"')
    sec = "artifacts.security.elastic.co"
    arts = {}
    for n in ("diagnostic-configuration-v1", "endpointpe-v4-blocklist"):
        rel = f"/downloads/endpoint/artifacts/{n}/" + hashlib.sha256(n.encode()).hexdigest()
        put(sec, rel, os.urandom(3000), f'"{n}"')
        arts[n] = {"relative_url": rel}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({"manifest_version": "1.0.7", "artifacts": arts}))
    put(sec, f"/downloads/endpoint/manifest/artifacts-{V}.zip", buf.getvalue(), '"manifest"')
    epr = "epr.elastic.co"
    search = [{"name": "nginx", "version": "1.20.0", "title": "nginx", "path": "/package/nginx/1.20.0",
               "download": "/epr/nginx/nginx-1.20.0.zip"}]
    put(epr, f"/search?kibana.version={V}&prerelease=false", json.dumps(search).encode())
    for q in (f"/categories?kibana.version={V}&prerelease=false&include_policy_templates=true",
              f"/categories?kibana.version={V}&prerelease=false"):
        put(epr, q, b"[]")
    doc = {"name": "nginx", "version": "1.20.0", "download": "/epr/nginx/nginx-1.20.0.zip",
           "signature_path": "/epr/nginx/nginx-1.20.0.zip.sig", "format_version": "3.0.0"}
    put(epr, "/package/nginx/1.20.0/", json.dumps(doc).encode())
    zipbody = os.urandom(20000)
    put(epr, "/epr/nginx/nginx-1.20.0.zip", zipbody, '"nginx-zip"')
    put(epr, "/epr/nginx/nginx-1.20.0.zip.sig", pgp_sign(elastic, zipbody), '"nginx-sig"')
    return bodies


def walk(path):
    """(url, record start, body start, body end) of each entry of a version-3 bundle, and the
    whole-file digest the trailer must carry."""
    data = open(path, "rb").read()
    eq(data[:8], b"ALKBNDL3", "format 3 magic")
    pos = 8
    pos += 5 + int.from_bytes(data[pos + 1:pos + 5], "little")
    ll = int.from_bytes(data[pos + 1:pos + 5], "little")
    listing = json.loads(data[pos + 5:pos + 5 + ll])
    pos += 5 + ll
    out = []
    for e in listing["entries"]:
        rl = int.from_bytes(data[pos + 1:pos + 5], "little")
        out.append((e["url"], pos, pos + 5 + rl, pos + 5 + rl + e["size"]))
        pos += 5 + rl + e["size"]
    eq(data[pos:pos + 1], b"T", "the trailer follows the last body")
    return out, hashlib.sha256(data[:pos + 9]).hexdigest(), data[pos + 9:pos + 41].hex()


def pgp_keyid(home):
    for line in gpg(home, "--with-colons", "--list-keys").decode().splitlines():
        if line.startswith("pub:"):
            return line.split(":")[4]
    fail("no key id")


def test():
    with Case() as (up, al, tmp):
        al.stop()
        elastic, other = pgp_keyring(tmp, "elastic"), pgp_keyring(tmp, "other")
        elastic_pub = os.path.join(tmp, "elastic.asc")
        open(elastic_pub, "wb").write(gpg(elastic, "--armor", "--export"))
        bodies = fixtures(up, elastic, other)
        run("mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format", "tar.gz",
            "--only", "elastic-agent,filebeat", "--config", al.config)
        run("mirror", "endpoint", "--version", V, "--config", al.config)
        run("mirror", "packages", "--kibana-version", V, "--config", al.config)
        keys, wrong = os.path.join(tmp, "keys"), os.path.join(tmp, "wrong")
        kid = run("keygen", keys).stdout.split()[1].rstrip(":")
        run("keygen", wrong)
        bundle = os.path.join(tmp, "stack.airlock")
        run("export", bundle, "--sign", os.path.join(keys, "bundle.key"), "--config", al.config)
        nls = int(run("ls", "--config", al.config).stdout.strip().splitlines()[-1].split()[0])
        entries, digest, trailer = walk(bundle)
        eq(trailer, digest, "the trailer's digest is the SHA-256 of every byte before it")
        eq(len(entries), nls, "the bundle carries every cached entry")
        for u in bodies:
            if u not in [e[0] for e in entries]:
                fail(f"{u} should be in the bundle")

        # Inspect in a directory of its own, with no configuration: it must create nothing there.
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        p = run("inspect", bundle, "--json", "--trust", os.path.join(keys, "bundle.pub"), cwd=empty)
        eq(os.listdir(empty), [], "inspect creates nothing (no cache is opened)")
        j = json.loads(p.stdout)
        b = j["bundle"]
        version = run("version").stdout.split()[1]
        eq((b["format"], b["airlock_version"], b["signer_key_id"], b["base"], b["digests_verified"], b["digest"]),
           (3, version, kid, None, True, digest), "the bundle's facts")
        if not b["signature"].endswith("signature verified with --trust"):
            fail(f"signature state: {b['signature']}")
        eq((b["entries"], b["listing_entries"], b["file_bytes"]), (nls, nls, os.path.getsize(bundle)), "totals")
        eq(b["body_bytes"], sum(len(v) for u, v in bodies.items()) +
           sum(e[3] - e[2] for e in entries if e[0] not in bodies), "body bytes")
        if not b["created"].startswith("20") or not b["created"].endswith("Z"):
            fail(f"created: {b['created']}")
        eq(j["ok"], True, "a sound bundle, no keys for the .asc: ok")
        kinds = {}
        for e in j["entries"]:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        eq((b["kinds"], b["kinds"]["agent-artifact"], b["kinds"]["endpoint-artifact"]), (kinds, 2, 2), "totals by kind")
        by = {e["url"]: e for e in j["entries"]}
        eq([e["url"] for e in j["entries"]], [e[0] for e in entries], "the listing in file order")
        for u, body in bodies.items():
            eq((by[u]["size"], by[u]["sha256"]), (len(body), hashlib.sha256(body).hexdigest()), u)
        # sidecars come before the bodies they sign
        order = [e[0] for e in entries]
        for u in order:
            if u.endswith(".tar.gz") or u.endswith(".zip"):
                for s in (".asc", ".sig", ".sha512"):
                    if u + s in by and order.index(u + s) > order.index(u):
                        fail(f"{u}{s} should come before {u}")
        a = "https://artifacts.elastic.co/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"
        want = {
            a: ("agent-artifact", "elastic-agent", V, "linux-x86_64", "match", "present, not checked (no --pgp-key)"),
            a + ".sha512": ("agent-artifact-sha512", "elastic-agent", V, "linux-x86_64", "-", "-"),
            a + ".asc": ("agent-artifact-signature", "elastic-agent", V, "linux-x86_64", "-", "-"),
            "https://artifacts.elastic.co/GPG-KEY-elastic-agent": ("gpg-key", "", "", "", "-", "-"),
            f"https://artifacts.security.elastic.co/downloads/endpoint/manifest/artifacts-{V}.zip":
                ("endpoint-manifest", "endpoint", V, "", "-", "-"),
            "https://artifacts.security.elastic.co/downloads/endpoint/artifacts/endpointpe-v4-blocklist/" +
                hashlib.sha256(b"endpointpe-v4-blocklist").hexdigest():
                ("endpoint-artifact", "endpointpe-v4-blocklist", "", "", "-", "-"),
            "https://epr.elastic.co/package/nginx/1.20.0/": ("package-document", "nginx", "1.20.0", "", "-", "-"),
            "https://epr.elastic.co/epr/nginx/nginx-1.20.0.zip":
                ("package-archive", "nginx", "1.20.0", "", "absent", "present, not checked (no --pgp-key)"),
            "https://epr.elastic.co/epr/nginx/nginx-1.20.0.zip.sig": ("package-signature", "nginx", "1.20.0", "", "-", "-"),
            f"https://epr.elastic.co/search?kibana.version={V}&prerelease=false": ("registry-query", "", "", "", "-", "-"),
        }
        for u, w in want.items():
            e = by[u]
            eq((e["kind"], e["product"], e["version"], e["platform"], e["sha512_check"], e["signature_check"]), w, u)

        # With Elastic's OpenPGP key: the agent's .asc and the package's .sig verify, with the key id;
        # filebeat's, made by another key, is named bad and inspect exits 1.
        p = run("inspect", bundle, "--json", "--pgp-key", elastic_pub, ok=False)
        eq(p.returncode, 1, "a bad signature in the bundle fails inspect")
        j = json.loads(p.stdout)
        by = {e["url"]: e for e in j["entries"]}
        keyid = pgp_keyid(elastic)
        eq((by[a]["signature_check"], by[a]["signature_key"]), (f"verified, key {keyid}", keyid), "agent .asc")
        eq(by["https://epr.elastic.co/epr/nginx/nginx-1.20.0.zip"]["signature_check"], f"verified, key {keyid}", ".sig")
        fb = by[a.replace("elastic-agent", "filebeat")]
        if not fb["signature_check"].startswith("BAD: signed by key " + pgp_keyid(other)):
            fail(f"filebeat's .asc by another key: {fb['signature_check']}")
        eq(fb["sha512_check"], "match", "filebeat's .sha512 still matches")
        eq((j["ok"], j["bundle"]["digests_verified"]), (False, True), "entry checks fail, digests hold")
        eq(j["bundle"]["signature"], f"key {kid}: signature not checked (no --trust)", "no --trust given")

        # CSV: the same rows; text: the facts a reviewer reads.
        rows = list(csv.DictReader(io.StringIO(run("inspect", bundle, "--csv").stdout)))
        eq([(r["url"], r["sha256"], r["kind"], int(r["size"])) for r in rows],
           [(e["url"], e["sha256"], e["kind"], e["size"]) for e in j["entries"]], "CSV rows")
        t = run("inspect", bundle, "--trust", os.path.join(keys, "bundle.pub")).stdout
        for want_line in (f"format 3, {os.path.getsize(bundle)} bytes, created ", f" by airlock {version}",
                          f"signer: key {kid}: signature verified with --trust", "base: none (a full bundle)",
                          f"whole file's SHA-256 {digest}", f"totals: {nls} entries"):
            if want_line not in t:
                fail(f"text output should say {want_line!r}:\n{t}")
        line = [l for l in t.splitlines() if l.endswith(" " + a)]
        if len(line) != 1 or line[0].split()[1:5] != ["agent-artifact", "elastic-agent", V, "linux-x86_64"] or \
                f" 70000  {hashlib.sha256(bodies[a]).hexdigest()}  match " not in line[0]:
            fail(f"the agent's line in the text listing:\n{t}")
        p = run("inspect", bundle, "--trust", os.path.join(wrong, "bundle.pub"), ok=False)
        if p.returncode != 1 or "NOT VERIFIED" not in p.stdout or "not among the trusted keys" not in p.stdout:
            fail(f"a signer not trusted: {p.stdout}{p.stderr}")

        # Damage: one byte of a body in the middle, then a cut; each named where it broke.
        data = open(bundle, "rb").read()
        url, _, bs, be = entries[len(entries) // 2 + 1]
        if be - bs < 2:
            url, _, bs, be = max(entries, key=lambda e: e[3] - e[2])
        bad = bytearray(data)
        bad[(bs + be) // 2] ^= 0x20
        badf = os.path.join(tmp, "bad.airlock")
        open(badf, "wb").write(bad)
        p = run("inspect", badf, "--json", ok=False)
        eq(p.returncode, 1, "a damaged bundle fails inspect")
        j = json.loads(p.stdout)
        idx = [e[0] for e in entries].index(url) + 1
        eq((j["ok"], j["bundle"]["digests_verified"], len(j["entries"])), (False, False, idx - 1),
           "the entries before the damage are listed")
        if j["error"] != f"entry {idx} ({url}) at byte {entries[idx - 1][1]}: body digest mismatch":
            fail(f"where it broke: {j['error']}")
        cut = os.path.join(tmp, "cut.airlock")
        open(cut, "wb").write(data[:entries[3][2] + 10])
        p = run("inspect", cut, ok=False)
        if p.returncode != 1 or "BROKEN: truncated bundle: ended at byte" not in p.stdout:
            fail(f"a cut bundle: {p.stdout}{p.stderr}")

        # A delta names its base by the base's digest; a version-2 bundle is still read.
        up.add("/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz.asc",
               pgp_sign(elastic, bodies[a]) + b"\n", headers=[("ETag", '"new-asc"')])
        run("purge", a + ".asc", "--config", al.config)
        run("mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format", "tar.gz",
            "--only", "elastic-agent", "--config", al.config)
        delta = os.path.join(tmp, "delta.airlock")
        run("export", delta, "--since", bundle, "--config", al.config)
        j = json.loads(run("inspect", delta, "--json").stdout)
        eq((j["bundle"]["base"], j["bundle"]["signature"]), ({"digest": digest, "entries": nls}, "unsigned"), "delta")
        eq([e["url"] for e in j["entries"]], [a + ".asc"], "the delta carries the changed .asc")
        j = json.loads(run("inspect", os.path.join(CORPUS, "v2-signed.airlock"), "--json").stdout)
        eq((j["bundle"]["format"], j["bundle"]["digests_verified"], j["ok"]), (2, True, True), "a version-2 bundle")


if __name__ == "__main__":
    main(test)
