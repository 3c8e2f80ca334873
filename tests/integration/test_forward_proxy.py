"""airlock as a forward proxy (curl -x): absolute-form HTTP through the
cache, CONNECT intercepted with airlock's CA (and the same cache as the
reverse routes), CONNECT tunnelled blind, and the egress policy."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, curl, eq, fail, main, wait_for

SEARCH = b'[{"name":"endpoint","version":"8.13.0"}]'


def setup_ca(tmp):
    d = os.path.join(tmp, "ca")
    p = subprocess.run([AIRLOCK, "ca", "init", d], capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, f"airlock ca init: {p.stderr}")
    if f"NODE_EXTRA_CA_CERTS={d}/ca.crt" not in p.stdout or "registryProxyUrl" not in p.stdout:
        fail(f"ca init should print kibana.yml and environment lines:\n{p.stdout}")
    eq(oct(os.stat(os.path.join(d, "ca.key")).st_mode & 0o777), "0o600", "CA key permissions")
    p = subprocess.run([AIRLOCK, "ca", "init", d], capture_output=True, text=True, timeout=30)
    eq(p.returncode, 1, "ca init refuses to overwrite")
    return d


def forward_config(ca, up):
    return f"""forward:
  ca_cert: {ca}/ca.crt
  ca_key: {ca}/ca.key
  allow:
    - {{host: epr.elastic.co, mode: intercept}}
    - {{host: artifacts.security.elastic.co, mode: tunnel, ports: [443]}}
    - {{host: "*.plain.test", mode: tunnel, ports: [80]}}
    - {{host: impostor.test, mode: intercept}}
    - {{host: gone.test, mode: intercept}}
"""


def px(al, url, *extra, timeout=15):
    """curl through airlock as a proxy; returns (rc, status line, headers text, body)."""
    p = subprocess.run(["curl", "-sS", "-x", f"http://127.0.0.1:{al.port}", "-D", "-", "--max-time", str(timeout),
                        *extra, url], capture_output=True, timeout=timeout + 5)
    out = p.stdout
    head, _, body = out.rpartition(b"\r\n\r\n")
    last = head.split(b"\r\n\r\n")[-1].decode("latin-1")
    return p.returncode, last, body, p.stderr.decode()


def hdr(head, name):
    for line in head.split("\r\n"):
        n, _, v = line.partition(":")
        if n.lower() == name.lower():
            return v.strip()
    return None


def test():
    import tempfile
    tmp0 = tempfile.mkdtemp()
    ca = setup_ca(tmp0)
    with Case() as (up, al0, tmp):
        al0.stop()
        # airlock with the forward section; a plain-HTTP host mapped to the origin.
        import socket as _s
        closed = _s.socket(); closed.bind(("127.0.0.1", 0)); dead_port = closed.getsockname()[1]; closed.close()
        al = Airlock(tmp, up, extra=forward_config(ca, up), resolve_extra={
            "files.plain.test:80": f"127.0.0.1:{up.port}",
            # the origin's certificate does not name impostor.test: it cannot prove it is that host
            "impostor.test:443": f"127.0.0.1:{up.tls_port}",
            "gone.test:443": f"127.0.0.1:{dead_port}"})
        access = os.path.join(tmp, "access.log")
        al.stop()
        cfg = open(al.config).read().replace("log:\n  level: debug\n", f"log:\n  level: debug\n  access: {access}\n")
        open(al.config, "w").write(cfg)
        al.start()
        try:
            up.add("/search?kibana.version=8.13.4", SEARCH, headers=[("Content-Type", "application/json"),
                   ("Cache-Control", "max-age=600"), ("Cache-Control", "public")])
            up.add("/GPG-KEY-elastic-agent", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
                   headers=[("ETag", '"gpg"'), ("Cache-Control", "max-age=3600")])
            up.add("/downloads/endpoint/manifest/artifacts-8.13.4.zip", b"PK-manifest", headers=[("ETag", '"m"')])

            # Absolute-form HTTP through the cache.
            for i in range(2):
                rc, head, body, err = px(al, "http://files.plain.test/GPG-KEY-elastic-agent")
                eq(rc, 0, f"absolute-form #{i}: {err}")
                eq(body, b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", f"absolute-form body #{i}")
                eq(hdr(head, "ETag"), '"gpg"', "absolute-form ETag")
            eq(up.count("/GPG-KEY-elastic-agent"), 1, "absolute-form second request was a hit")

            # CONNECT, intercepted: trusts airlock's CA, served through the cache.
            for i in range(2):
                rc, head, body, err = px(al, "https://epr.elastic.co/search?kibana.version=8.13.4",
                                         "--cacert", f"{ca}/ca.crt")
                eq(rc, 0, f"intercepted #{i}: {err}")
                eq(body, SEARCH, f"intercepted body #{i}")
            eq(up.count("/search?kibana.version=8.13.4"), 1, "intercepted second request was a hit")
            if "hit" not in (hdr(head, "Cache-Status") or ""):
                fail(f"intercepted hit Cache-Status {hdr(head, 'Cache-Status')!r}")
            # The same object through the reverse route is a hit too: one cache.
            r = curl(al, "/search?kibana.version=8.13.4")
            eq(r.body, SEARCH, "reverse route body")
            if not r.header("Cache-Status").startswith("airlock; hit"):
                fail("the reverse route should hit what the forward proxy stored")
            eq(up.count("/search?kibana.version=8.13.4"), 1, "one upstream request for both ways")
            # The intercepted certificate is not trusted without airlock's CA.
            rc, head, body, err = px(al, "https://epr.elastic.co/search?kibana.version=8.13.4",
                                     "--cacert", up.pki.ca_crt)
            eq(rc, 60, "interception cert must not verify against another CA")

            # An upstream that cannot prove its name gets no interception certificate.
            rc, head, body, err = px(al, "https://impostor.test/x", "--cacert", f"{ca}/ca.crt")
            if rc == 0 or "502" not in err:
                fail(f"CONNECT to an upstream that fails verification should get 502: rc={rc} {err}")
            if "impostor.test:443 did not prove its identity" not in al.logtext():
                fail("the refusal is logged")
            # An unreachable one is intercepted (the cache may answer); nothing cached here: 502/504 inside.
            rc, head, body, err = px(al, "https://gone.test/x", "--cacert", f"{ca}/ca.crt")
            eq(rc, 0, f"CONNECT to an unreachable upstream is intercepted: {err}")
            if "502" not in head and "504" not in head:
                fail(f"inside, an uncached URL of an unreachable upstream is 502/504: {head!r}")

            # CONNECT, tunnelled: the origin's own certificate, nothing cached.
            for i in range(2):
                rc, head, body, err = px(al, "https://artifacts.security.elastic.co/downloads/endpoint/manifest/artifacts-8.13.4.zip",
                                         "--cacert", up.pki.ca_crt)
                eq(rc, 0, f"tunnel #{i}: {err}")
                eq(body, b"PK-manifest", f"tunnel body #{i}")
            eq(up.count("/downloads/endpoint/manifest/artifacts-8.13.4.zip"), 2, "tunnels are not cached")
            # A tunnel's access-log line is written when it closes, with the bytes both ways (as Squid does).
            import json
            def tunnel_lines():
                return [json.loads(l) for l in open(access).read().splitlines()
                        if '"result":"tunnel"' in l]
            wait_for(lambda: len(tunnel_lines()) >= 2, 5, "two tunnel access-log lines")
            for t in tunnel_lines():
                eq(t["http"]["response"]["status_code"], 200, "tunnel status")
                if t["http"]["response"]["body"]["bytes"] < 1000 or t["http"]["request"]["body"]["bytes"] < 200:
                    fail(f"a tunnel's log line carries the bytes relayed each way (TLS handshake and all): {t}")
                if t["event"]["duration"] <= 0:
                    fail(f"tunnel duration: {t}")

            # Denied: a host not on the list, a port not allowed.
            rc, head, body, err = px(al, "https://evil.example.org/", "--cacert", up.pki.ca_crt)
            if rc == 0 or "403" not in err:
                fail(f"denied host should get 403: rc={rc} {err}")
            rc, head, body, err = px(al, "https://artifacts.security.elastic.co:8443/", "--cacert", up.pki.ca_crt)
            if rc == 0 or "403" not in err:
                fail(f"denied port should get 403: rc={rc} {err}")
            rc, head, body, err = px(al, "http://evil.example.org/x")
            if "403" not in head:
                fail(f"absolute-form to a denied host: {head!r}")
            if "denied CONNECT evil.example.org:443" not in al.logtext():
                fail("denied attempts are logged")
        finally:
            al.stop()

        # Clients outside clients.allow are refused everything.
        al2 = Airlock(tmp, up, extra='clients:\n  allow: ["10.0.0.0/8"]\n')
        try:
            r = curl(al2, "/search?kibana.version=8.13.4")
            eq(r.status, 403, "client not in clients.allow")
        finally:
            al2.stop()

        # Proxy authentication: 407 without or with wrong credentials; never logged.
        h = subprocess.run([AIRLOCK, "passwd"], input="s3cret-pw\n", capture_output=True, text=True, timeout=10).stdout.strip()
        if not h.startswith("pbkdf2-sha256$"):
            fail(f"airlock passwd printed {h!r}")
        al3 = Airlock(tmp, up, extra=forward_config(ca, up) + f"  users:\n    - {{name: kibana, password_hash: \"{h}\"}}\n",
                      resolve_extra={"files.plain.test:80": f"127.0.0.1:{up.port}"})
        try:
            rc, head, body, err = px(al3, "https://epr.elastic.co/search?kibana.version=8.13.4", "--cacert", f"{ca}/ca.crt")
            if rc == 0 or "407" not in err:
                fail(f"CONNECT without credentials: rc={rc} {err}")
            rc, head, body, err = px(al3, "https://epr.elastic.co/search?kibana.version=8.13.4", "--cacert", f"{ca}/ca.crt",
                                     "-U", "kibana:wrong")
            if rc == 0 or "407" not in err:
                fail(f"CONNECT with a wrong password: rc={rc} {err}")
            rc, head, body, err = px(al3, "https://epr.elastic.co/search?kibana.version=8.13.4", "--cacert", f"{ca}/ca.crt",
                                     "-U", "kibana:s3cret-pw")
            eq(rc, 0, f"CONNECT with credentials: {err}")
            eq(body, SEARCH, "authenticated body")
            rc, head, body, err = px(al3, "http://files.plain.test/GPG-KEY-elastic-agent")
            if "407" not in head or "Proxy-Authenticate: Basic" not in head:
                fail(f"absolute-form without credentials: {head!r}")
            log = al3.logtext()
            if "s3cret-pw" in log or "a2liYW5hOnMzY3JldC1wdw" in log:
                fail("credentials appeared in the log")
        finally:
            al3.stop()


if __name__ == "__main__":
    main(test)
