"""Kibana's own telemetry manifest revalidates like Endpoint's (issue 27, part 4).

Security Solution's artifact service (elastic/kibana at
437def57ef40330062e2aac9e390313a077cb5cb, x-pack/solutions/security/plugins/
security_solution/server/lib/telemetry/artifact.ts): Artifact.start builds
<cdn>/downloads/kibana/manifest/artifacts-<version>.zip with cdn.url
https://artifacts.security.elastic.co; getArtifact sends If-None-Match with
the ETag it kept (headers()), reads 304 as "not modified" and 200 as a new
manifest whose ETag it keeps.  Elastic republishes it in place.

Here, through the forward proxy (axios honours HTTPS_PROXY) and the reverse
route (an operator pointing the CDN URL at airlock):
- the first GET is a 200 with the upstream's ETag;
- a poll with that ETag is revalidated upstream with the upstream's own ETag
  and answered 304 (the upstream has max-age=0: every poll asks it);
- after republication the poll with the old ETag gets the new zip and ETag;
- the reverse route /downloads/kibana/manifest/ goes to
  artifacts.security.elastic.co (not artifacts.elastic.co, which /downloads/
  leads to) and shares the forward proxy's cache entry;
- air-gapped (signed export, import, upstream.offline) the poll with the
  current ETag is a 304 and a first GET a 200, with zero upstream contact."""
import io, json, os, shutil, subprocess, sys, tempfile, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Airlock, Case, cli, curl, eq, fail, forward_section, main, parse_head

V = "8.13.4"
PATH = f"/downloads/kibana/manifest/artifacts-{V}.zip"
URL = "https://artifacts.security.elastic.co" + PATH


def manifest(mv):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps({"manifest_version": mv, "artifacts": {}}))
        z.writestr("manifest.sig", b"sig " + mv.encode())
    return buf.getvalue()


def via_proxy(al, ca, etag=None):
    """GET URL through airlock's forward proxy as Kibana's axios does: (status, headers, body)."""
    d = tempfile.mkdtemp()
    try:
        cmd = ["curl", "-sS", "-x", f"http://127.0.0.1:{al.port}", "--cacert", f"{ca}/ca.crt",
               "-o", f"{d}/b", "-D", f"{d}/h", "--max-time", "15"]
        if etag:
            cmd += ["-H", f"If-None-Match: {etag}"]
        p = subprocess.run(cmd + [URL], capture_output=True, timeout=20)
        eq(p.returncode, 0, f"curl through the proxy: {p.stderr}")
        heads = [h for h in open(f"{d}/h", "rb").read().split(b"\r\n\r\n") if h.startswith(b"HTTP/")]
        status, hdrs = parse_head(heads[-1])
        body = open(f"{d}/b", "rb").read() if os.path.exists(f"{d}/b") else b""
        return status, {n.lower(): v for n, v in hdrs}, body
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        fwd, ca = forward_section(tmp, ["artifacts.security.elastic.co"])
        al = Airlock(tmp, up, extra=fwd)
        try:
            m1 = manifest("1.0.1")
            up.add(PATH, m1, headers=[("ETag", '"k-1"'), ("Cache-Control", "max-age=0"),
                                      ("Content-Type", "application/zip")])
            st, h, body = via_proxy(al, ca)
            eq((st, h.get("etag"), body), (200, '"k-1"', m1), "first manifest")
            st, h, body = via_proxy(al, ca, '"k-1"')
            eq((st, h.get("etag")), (304, '"k-1"'), "poll with the current ETag")
            eq(up.count(PATH), 2, "the poll was revalidated upstream")
            eq(up.last_headers(PATH).get("if-none-match"), '"k-1"', "with the upstream's own ETag")

            m2 = manifest("1.0.2")
            up.add(PATH, m2, headers=[("ETag", '"k-2"'), ("Cache-Control", "max-age=0"),
                                      ("Content-Type", "application/zip")])
            st, h, body = via_proxy(al, ca, '"k-1"')
            eq((st, h.get("etag"), body), (200, '"k-2"', m2), "republished: the new manifest")

            # The reverse route: same upstream host, same cache entry.
            r = curl(al, PATH, headers=['If-None-Match: "k-2"'])
            eq((r.status, r.header("ETag")), (304, '"k-2"'), "reverse route poll")
            eq(up.last_headers(PATH).get("host"), "artifacts.security.elastic.co", "the host the route leads to")
            ls = cli(al.config, "ls", "*/downloads/kibana/*").stdout
            eq(ls.count(URL), 1, f"one cache entry keyed by the canonical URL:\n{ls}")
            al.stop()

            ag = AirGap(al, up)
            with ag as gap:
                r = curl(gap, PATH, headers=['If-None-Match: "k-2"'])
                eq((r.status, r.header("ETag")), (304, '"k-2"'), "offline poll with the current ETag")
                r = curl(gap, PATH)
                eq((r.status, r.body, r.header("ETag")), (200, m2, '"k-2"'), "offline first GET")
                ag.untouched()
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
