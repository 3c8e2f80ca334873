"""An Elastic Agent upgrade through airlock, with Go's net/http as the agent.

elastic-agent's HTTP downloader (internal/pkg/agent/application/upgrade/
artifact/download/http/downloader.go: Downloader.Download fetches the
package, then downloadHash its .sha512; downloadFile fails on any status but
200) and then its verifier fetches the .asc.  airlock checks
the package against URL.sha512 before admitting it; that check's fetch must
fill the cache entry the agent asks for next: one upstream request per file.

Through the forward proxy with proxy authentication, Go's transport turns a
refused CONNECT into an error made of the status line's reason phrase alone
(net/http transport.go, dialConn: errors.New(text) after strings.Cut of
resp.Status), so airlock's 407 must carry "Proxy Authentication Required":
a bare "Status" was what operators saw.  With credentials in the proxy URL
(http.ProxyURL, as agent.download.proxy_url) the download succeeds."""
import hashlib, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, eq, fail, go_client, main, sha512_line, forward_section

V = "8.13.4"
PKG = f"/downloads/beats/elastic-agent/elastic-agent-{V}-linux-x86_64.tar.gz"


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        body = os.urandom(2 * 1024 * 1024)
        up.add(PKG, body, headers=[("ETag", '"pkg"')])
        up.add(PKG + ".sha512", sha512_line(body, os.path.basename(PKG)), headers=[("ETag", '"sha"')])
        up.add(PKG + ".asc", b"-----BEGIN PGP SIGNATURE-----\n", headers=[("ETag", '"asc"')])
        up.add("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", headers=[("ETag", '"gpg"')])
        fwd, ca = forward_section(tmp, ["artifacts.elastic.co"], {"agent": "agent-pw"})
        al = Airlock(tmp, up, extra=fwd)
        try:
            # agent.download.sourceURI pointing at airlock (reverse route)
            base = al.url("")
            for path, want in ((PKG, body), (PKG + ".sha512", None), (PKG + ".asc", None)):
                r = go_client(base + path)
                eq(r["status"], 200, f"{path}: {r}")
                if want is not None:
                    eq(r["sha256"], hashlib.sha256(want).hexdigest(), "package bytes")
            eq((up.count(PKG), up.count(PKG + ".sha512"), up.count(PKG + ".asc")), (1, 1, 1),
               "one upstream request per file: the integrity check's .sha512 fetch filled the cache")
            # fleet-server's server.pgp.upstream_url
            r = go_client(base + "/GPG-KEY-elastic-agent")
            eq(r["status"], 200, "PGP key")

            # agent.download.proxy_url: airlock as the forward proxy, https through CONNECT.
            proxy = f"http://127.0.0.1:{al.port}"
            r = go_client("https://artifacts.elastic.co" + PKG, proxy=proxy, cacert=f"{ca}/ca.crt")
            if r.get("err") is None or "Proxy Authentication Required" not in r["err"]:
                fail(f"Go's error for a refused proxy login names the reason: {r}")
            if r["err"].strip().endswith("Status"):
                fail(f"a bare 'Status' reason: {r}")
            r = go_client("http://artifacts.elastic.co" + PKG, proxy=proxy)
            eq((r["status"], r["status_text"]), (407, "407 Proxy Authentication Required"), "absolute-form 407")
            r = go_client("https://artifacts.elastic.co" + PKG, proxy=f"http://agent:agent-pw@127.0.0.1:{al.port}",
                          cacert=f"{ca}/ca.crt")
            eq((r["status"], r["sha256"]), (200, hashlib.sha256(body).hexdigest()), f"with credentials: {r}")
            eq(up.count(PKG), 1, "the intercepted download was a hit on the reverse route's entry")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
