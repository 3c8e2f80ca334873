"""A child airlock that reaches everything through a parent airlock (issue
16), as Squid's cache_peer parent: upstream.parents, tried in order.

The child asks the parent for the canonical URL in absolute form, so both
tiers store it under the same key: validators pass through byte for byte,
Cache-Status lists both caches (RFC 9211: nearest the origin first), and
`airlock ls` shows the same URLs on both.  When the parent's uplink is cut,
the parent's stale answer is still an answer for the child (the child does
not go offline); when the parent itself is down, the child serves its own
copy; a stampede on the child is one request at the parent; a dead first
parent fails over to the next."""
import json, os, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, FakeUpstream, Pki, curl, eq, fail, free_port, main, wait_for

ART = "/downloads/beats/metricbeat/metricbeat-8.13.4-linux-x86_64.tar.gz.asc"
DOC = "/package/nginx/1.20.0/"


def configure(al, name, extra_upstream="", access=None):
    al.stop()
    cfg = open(al.config).read().replace("listen:", f"name: {name}\nlisten:", 1)
    cfg = cfg.replace("  resolve:", extra_upstream + "  resolve:", 1)
    if access:
        cfg = cfg.replace("log:\n  level: debug\n", f"log:\n  level: debug\n  access: {access}\n")
    open(al.config, "w").write(cfg)
    al.start()


def ls(al):
    p = subprocess.run([AIRLOCK, "ls", "--config", al.config], capture_output=True, text=True, timeout=30)
    return sorted(l.split()[-1] for l in p.stdout.splitlines() if "://" in l)


def upstream_state(al, name):
    return next(u["state"] for u in al.health()["upstreams"] if u["upstream"] == name)


def test():
    tmp = tempfile.mkdtemp(prefix="airlock-parent-")
    up = FakeUpstream(Pki(tmp))
    os.makedirs(os.path.join(tmp, "hq"))
    os.makedirs(os.path.join(tmp, "site"))
    os.makedirs(os.path.join(tmp, "site2"))
    parent = Airlock(os.path.join(tmp, "hq"), up)
    plog = os.path.join(tmp, "hq", "access.log")
    # the parent also listens with TLS (its certificate is the test CA's, naming 127.0.0.1)
    tls_port = free_port()
    os.chmod(up.pki.key, 0o600)
    cfg = open(parent.config).read().replace(
        f'listen: ["127.0.0.1:{parent.port}"]',
        f'listen: ["127.0.0.1:{parent.port}", {{address: "127.0.0.1:{tls_port}", '
        f'tls: {{cert: "{up.pki.crt}", key: "{up.pki.key}"}}}}]', 1)
    open(parent.config, "w").write(cfg)
    configure(parent, "hq", access=plog)
    dead = free_port()
    child = Airlock(os.path.join(tmp, "site"), up)
    # the first parent is dead: the child fails over to the second
    configure(child, "site", f'  parents: ["http://127.0.0.1:{dead}", "http://127.0.0.1:{parent.port}"]\n')
    try:
        up.add(ART, b"-----BEGIN PGP SIGNATURE-----\nmetricbeat\n", headers=[("ETag", '"art-v1"')])
        up.add(DOC, b'{"name":"nginx","version":"1.20.0"}', headers=[
            ("Cache-Control", "max-age=1"), ("Cache-Control", "public"), ("Content-Type", "application/json")])

        # First fetch fills both tiers; the origin sees one request.
        r = curl(child, ART)
        eq((r.status, r.header("ETag")), (200, '"art-v1"'), "through both tiers, the upstream's validator")
        eq(up.count(ART), 1, "one upstream request for both tiers")
        cs = r.all("Cache-Status")
        if len(cs) != 2 or not cs[0].startswith("hq; fwd=miss") or not cs[1].startswith("site; fwd=miss"):
            fail(f"Cache-Status lists the parent, then the child: {cs}")
        r = curl(child, ART)
        eq(r.all("Cache-Status")[-1], "site; hit", "a hit on the child")
        r = curl(parent, ART)
        if not r.header("Cache-Status").startswith("hq; hit"):
            fail(f"the parent holds it under the canonical URL: {r.header('Cache-Status')}")
        eq(up.count(ART), 1, "still one upstream request")
        # Over TLS to the parent's HTTPS listener, verified against upstream.ca_file: a hit at the parent.
        child2 = Airlock(os.path.join(tmp, "site2"), up)
        configure(child2, "site2", f'  parents: ["https://127.0.0.1:{tls_port}"]\n')
        try:
            r = curl(child2, ART)
            cs = r.all("Cache-Status")
            eq((r.status, r.header("ETag")), (200, '"art-v1"'), "through the parent's TLS listener")
            if len(cs) != 2 or not cs[0].startswith("hq; hit") or not cs[1].startswith("site2; fwd=miss"):
                fail(f"over TLS: the parent's hit, then the child's miss: {cs}")
            eq(up.count(ART), 1, "the TLS child added no upstream request")
        finally:
            child2.stop(strict=False)
        if "unreachable" not in child.logtext():
            fail("the dead first parent should be logged as unreachable")

        # The registry's two Cache-Control lines survive both tiers.
        r = curl(child, DOC)
        eq(r.raw_header_lines("Cache-Control"), ["Cache-Control: max-age=1", "Cache-Control: public"], "header lines")

        # The same keys on both tiers.
        keys_parent, keys_child = ls(parent), ls(child)
        for u in ("https://artifacts.elastic.co" + ART, "https://epr.elastic.co" + DOC):
            if u not in keys_parent or u not in keys_child:
                fail(f"{u} should be a key on both tiers: parent {keys_parent}, child {keys_child}")

        # The parent's uplink is cut: its stale answer still serves the child, which stays online.
        up.stop()
        time.sleep(1.2)  # DOC is stale on both tiers now
        r = curl(child, DOC)
        eq((r.status, r.body), (200, b'{"name":"nginx","version":"1.20.0"}'), "stale from the parent")
        eq(upstream_state(child, "https://epr.elastic.co"), "online", "the child does not go offline for a stale answer")
        eq(upstream_state(parent, "https://epr.elastic.co"), "offline", "the parent knows its uplink is gone")

        # The parent is down: the child serves its own copy.
        parent.stop()
        time.sleep(1.2)
        r = curl(child, DOC)
        eq((r.status, r.body), (200, b'{"name":"nginx","version":"1.20.0"}'), "the child's own stale copy")
        if "stale" not in r.all("Cache-Status")[-1]:
            fail(f"served stale by the child: {r.all('Cache-Status')}")
        wait_for(lambda: upstream_state(child, "https://epr.elastic.co") == "offline", 5, "the child to go offline")

        # Everything back: a stampede on the child is one request at the parent.
        up.restart()
        parent.logf.close()
        parent.start()
        wait_for(lambda: upstream_state(child, "https://epr.elastic.co") == "online", 10, "the child back online")
        big = "/epr/nginx/nginx-1.21.0.zip"
        up.add(big, os.urandom(2 * 1024 * 1024), headers=[("ETag", '"zip"')], rate=4 * 1024 * 1024)
        res = []
        ts = [threading.Thread(target=lambda: res.append(curl(child, big, timeout=30))) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        eq(sorted(x.status for x in res), [200] * 20, "the stampede")
        eq(up.count(big), 1, "one upstream request")
        lines = [json.loads(l) for l in open(plog).read().splitlines() if big in l]
        eq(len(lines), 1, "the child's stampede reached the parent once")
        eq(lines[0]["url"]["original"], "https://epr.elastic.co" + big, "the parent was asked for the canonical URL")
    finally:
        child.stop(strict=False)
        parent.stop(strict=False)
        up.stop()


if __name__ == "__main__":
    main(test)
