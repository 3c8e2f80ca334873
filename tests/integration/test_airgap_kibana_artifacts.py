"""Kibana's telemetry artifacts, mirrored for an air-gapped Kibana (issue 27,
part 4: "the telemetry manifest's artifacts are not mirrored").

Security Solution's artifact service (elastic/kibana at
437def57ef40330062e2aac9e390313a077cb5cb, x-pack/solutions/security/plugins/
security_solution/server/lib/telemetry/artifact.ts): Artifact.start builds
https://artifacts.security.elastic.co/downloads/kibana/manifest/artifacts-<v>.zip,
<v> being Elasticsearch's version up to its first '-'; getArtifact(name) GETs
it (axios, through the forward proxy), getManifest takes the entries named
manifest.json and manifest.sig (it throws without either) and GETs
cdn.url + manifest.artifacts[name].relative_url.

- `airlock mirror kibana-artifacts --version 8.13.4-SNAPSHOT` asks for
  artifacts-8.13.4.zip, then every artifact it lists, from
  artifacts.security.elastic.co (their paths are under /downloads/, which
  the reverse routes send to artifacts.elastic.co: the host is checked);
  summary and exit 0; a second run finds them present; the forward proxy
  asks its clients for credentials (forward.users), which mirror does not
  need;
- a manifest without manifest.sig is refused as Kibana refuses it: exit 1;
  a version that is not one: exit 2;
- air-gapped (signed export, import, upstream.offline, the forward proxy
  intercepting), Kibana's getArtifact for each name gets the manifest and
  the artifact's bytes, with zero upstream contact;
- progress and failure lines name each artifact by the URL it is stored
  under (https://artifacts.security.elastic.co/downloads/kibana/...), never
  by the mirror's private route (/.airlock-mirror/...)."""
import io, json, os, shutil, subprocess, sys, tempfile, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Airlock, Case, cli, eq, fail, forward_section, main, parse_head

CDN = "https://artifacts.security.elastic.co"
MAN = "/downloads/kibana/manifest/artifacts-8.13.4.zip"
ARTS = {
    "telemetry-buffer-and-batch-sizes-v1": ("/downloads/kibana/artifacts/telemetry-buffer-and-batch-sizes-v1/1a2b.json",
                                            {"telemetry_max_buffer_size": 100, "max_endpoint_telemetry_batch": 300}),
    "endpoint-alerts-v1": ("/downloads/kibana/artifacts/endpoint-alerts-v1/3c4d.json", {"allowlist": ["process.name"]}),
}


def manifest_zip(sig=True):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({"manifest_version": "1.0.7", "schema_version": "v1", "artifacts": {
            n: {"relative_url": rel} for n, (rel, _) in ARTS.items()}}))
        if sig:
            z.writestr("manifest.sig", b"\x01" * 512)
    return buf.getvalue()


def private(p):
    """mirror's own lines (progress, missing, failed) that name the mirror's private route; the
    in-process proxy's debug access log says what it was asked, which is that route."""
    return [l for l in (p.stdout + p.stderr).splitlines()
            if l.startswith(("kibana-artifacts ", "missing: ", "failed: ")) and "/.airlock-mirror/" in l]


def via_proxy(al, ca, url, etag=None):
    """GET url through airlock's forward proxy as Kibana's axios does: (status, headers, body)."""
    d = tempfile.mkdtemp()
    try:
        cmd = ["curl", "-sS", "-x", f"http://127.0.0.1:{al.port}", "--proxy-user", "kibana:s3cret", "--cacert", f"{ca}/ca.crt",
               "-o", f"{d}/b", "-D", f"{d}/h", "--max-time", "15"]
        if etag:
            cmd += ["-H", f"If-None-Match: {etag}"]
        p = subprocess.run(cmd + [url], capture_output=True, timeout=20)
        eq(p.returncode, 0, f"curl through the proxy: {p.stderr}")
        heads = [h for h in open(f"{d}/h", "rb").read().split(b"\r\n\r\n") if h.startswith(b"HTTP/")]
        status, hdrs = parse_head(heads[-1])
        body = open(f"{d}/b", "rb").read() if os.path.exists(f"{d}/b") else b""
        return status, {n.lower(): v for n, v in hdrs}, body
    finally:
        shutil.rmtree(d, ignore_errors=True)


def get_artifact(al, ca, name):
    """Artifact.getArtifact(name): the manifest, manifest.json and manifest.sig, then the artifact."""
    st, h, body = via_proxy(al, ca, CDN + MAN)
    eq(st, 200, "the manifest")
    z = zipfile.ZipFile(io.BytesIO(body))
    names = z.namelist()
    if "manifest.json" not in names or "manifest.sig" not in names:
        fail(f"No manifest.json / manifest.sig in artifact zip: {names}")
    rel = json.loads(z.read("manifest.json"))["artifacts"][name]["relative_url"]
    st, h, art = via_proxy(al, ca, CDN + rel)
    eq(st, 200, f"artifact {name}")
    return json.loads(art)


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        fwd, ca = forward_section(tmp, ["artifacts.security.elastic.co"], users={"kibana": "s3cret"})
        al = Airlock(tmp, up, extra=fwd)
        al.stop()
        up.add(MAN, manifest_zip(), headers=[("ETag", '"k-7"'), ("Cache-Control", "max-age=0"),
                                             ("Content-Type", "application/zip")])
        for n, (rel, doc) in ARTS.items():
            up.add(rel, json.dumps(doc), headers=[("Content-Type", "application/json"), ("ETag", f'"{n}"')])

        p = cli(al.config, "mirror", "kibana-artifacts", "--version", "8.13.4/..", ok=False)
        eq(p.returncode, 2, f"not a version: {p.stdout}{p.stderr}")
        p = cli(al.config, "mirror", "kibana-artifacts", "--version", "8.13.4-SNAPSHOT")
        if "kibana telemetry manifest 1.0.7: 2 artifacts" not in p.stdout or \
                "mirror kibana-artifacts 8.13.4-SNAPSHOT: fetched 3, already present 0, missing 0, failed 0" not in p.stdout:
            fail(f"mirror kibana-artifacts:\n{p.stdout}\n{p.stderr}")
        for rel, _ in ARTS.values():  # named by the URL they are stored under, not the mirror's private route
            if f"kibana-artifacts 200 {CDN + rel}\n" not in p.stderr:
                fail(f"the progress line names {CDN + rel}:\n{p.stderr}")
        if private(p):
            fail(f"the mirror's private route printed: {private(p)}")
        eq(up.count(MAN), 1, "the manifest for the version up to its '-'")
        eq(up.last_headers(MAN).get("host"), "artifacts.security.elastic.co", "manifest host")
        for n, (rel, _) in ARTS.items():
            eq(up.count(rel), 1, f"{n} fetched once")
            eq(up.last_headers(rel).get("host"), "artifacts.security.elastic.co", f"{n} from Kibana's CDN host")
        ls = cli(al.config, "ls", CDN + "/*").stdout
        for rel, _ in ARTS.values():
            if CDN + rel not in ls:
                fail(f"stored under the URL Kibana asks for: {CDN + rel}\n{ls}")
        p = cli(al.config, "mirror", "kibana-artifacts", "--version", "8.13.4")
        if "fetched 0, already present 3, missing 0, failed 0" not in p.stdout:
            fail(f"second run: present\n{p.stdout}\n{p.stderr}")
        eq(up.last_headers(MAN).get("if-none-match"), '"k-7"', "the manifest is asked again, by ETag")
        for n, (rel, _) in ARTS.items():
            # without Cache-Control upstream, at most a revalidation by its ETag
            if up.count(rel) != 1:
                eq(up.count(rel), 2, f"{n}: one more request at most")
                eq(up.last_headers(rel).get("if-none-match"), f'"{n}"', f"{n} revalidated, not fetched again")

        ag = AirGap(al, up, extra=fwd)
        with ag as gap:
            for n, (_, doc) in ARTS.items():
                eq(get_artifact(gap, ca, n), doc, f"offline getArtifact({n})")
            st, h, _ = via_proxy(gap, ca, CDN + MAN, '"k-7"')
            eq(st, 304, "offline poll with the ETag Kibana kept")
            ag.untouched()

        # a zip Kibana would refuse (no manifest.sig) is said so, exit 1
        up.add(MAN, manifest_zip(sig=False), headers=[("ETag", '"k-8"'), ("Cache-Control", "max-age=0")])
        p = cli(al.config, "mirror", "kibana-artifacts", "--version", "8.13.4", ok=False)
        eq(p.returncode, 1, f"no manifest.sig: {p.stdout}{p.stderr}")
        if "no manifest.sig in the zip" not in p.stderr:
            fail(f"says why: {p.stderr}")

        # an artifact the CDN lacks: the failure line names its URL
        ARTS["gone-v1"] = ("/downloads/kibana/artifacts/gone-v1/5e6f.json", {})
        up.add(MAN, manifest_zip(), headers=[("ETag", '"k-9"'), ("Cache-Control", "max-age=0")])
        p = cli(al.config, "mirror", "kibana-artifacts", "--version", "8.13.4", ok=False)
        if f"missing: {CDN}/downloads/kibana/artifacts/gone-v1/5e6f.json (404)" not in p.stdout + p.stderr or \
                private(p):
            fail(f"the missing artifact named by its URL:\n{p.stdout}\n{p.stderr}")


if __name__ == "__main__":
    main(test)
