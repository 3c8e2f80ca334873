"""GeoIP databases for a child airlock behind upstream.parents (issue 27, part 2,
left open: "a child asks its parent for the GeoIP stable key, which only a
parent of this version resolves").

Elasticsearch (GeoIpDownloader.updateDatabases / processDatabase,
elasticsearch 612651a0, driven as in test_airgap_geoip) asks the child for
the overview and then for db/<md5_hash>/<name>.  The stable key
https://geoip.elastic.co/v1/db/<md5_hash>/<name> is airlock's own: no origin
serves it, and a parent that is Squid (or an older airlock) can only fetch
what the origin serves.  So the child asks its parent, in absolute form, for
the signed URL the upstream's overview names, and keeps the database under
its stable key.

- Parent = a plain HTTP caching proxy (below: relays absolute-form GETs, as
  Squid's cache_peer parent does): it sees the overview and the signed URL,
  never the stable key; the origin serves each once; twenty more nodes are
  hits on the child; the child's key is the stable one.
- Parent = an airlock of this version: the same requests reach it (it hands
  the child the overview as the upstream sent it, so the child sees the
  signed URLs), and it fetches each from the origin once."""
import hashlib, http.client, http.server, json, os, ssl, subprocess, sys, tempfile, threading, urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, FakeUpstream, Pki, curl, eq, fail, main
import es_models

OV = "/v1/database?elastic_geoip_service_tos=agree"
SIGNED = "/elastic-paisano-production/GeoLite2-ASN.tgz?X-Goog-Signature=s1"
SIGNED_URL = "https://storage.googleapis.com" + SIGNED


class PlainParent:
    """A caching parent that knows nothing of airlock: GET <absolute-URI> is fetched from the
    origin named there (the fake upstream's TLS port) and relayed; what it was asked is recorded."""

    def __init__(self, up):
        self.asked = []
        ctx = ssl.create_default_context(cafile=up.pki.ca_crt)
        ctx.check_hostname = False
        parent = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                parent.asked.append(self.path)
                u = urllib.parse.urlsplit(self.path)
                if u.scheme != "https":
                    self.send_error(400, "absolute-form https URI expected")
                    return
                c = http.client.HTTPSConnection("127.0.0.1", up.tls_port, context=ctx, timeout=10)
                hdrs = {"Host": u.netloc}
                for k in ("If-None-Match", "If-Modified-Since", "Range", "User-Agent"):
                    if self.headers.get(k):
                        hdrs[k] = self.headers[k]
                c.request("GET", u.path + ("?" + u.query if u.query else ""), headers=hdrs)
                r = c.getresponse()
                body = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                c.close()

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def child_of(tmp, up, name, parent_url):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    return Airlock(d, up, resolve_hosts=False, upstream_extra=f'  parents: ["{parent_url}"]\n')


def es_nodes(al, md5, n):
    """One node's update (overview, then its db url), then n-1 more downloads in parallel."""
    st, _, ov = es_models.get(al.url("/geoip/v1/database?elastic_geoip_service_tos=agree"))
    eq(st, 200, f"overview through the child: {ov[:300]!r}")
    url = json.loads(ov)[0]["url"]
    eq(url, f"db/{md5}/GeoLite2-ASN.tgz", "the child's overview leads back to the child")
    url = al.url("/geoip/v1/" + url)
    res = []

    def node():
        s, _, b = es_models.get(url)
        res.append((s, hashlib.md5(b).hexdigest()))
    node()
    eq(res, [(200, md5)], f"the first node's database: {al.logtext()[-1500:]}")
    ts = [threading.Thread(target=node) for _ in range(n - 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    eq(res, [(200, md5)] * n, "every node's database")


def test():
    tmp = tempfile.mkdtemp(prefix="airlock-geoip-parents-")
    up = FakeUpstream(Pki(tmp))
    body = os.urandom(40000)
    md5 = hashlib.md5(body).hexdigest()
    up.add(OV, json.dumps([{"name": "GeoLite2-ASN.tgz", "md5_hash": md5, "url": SIGNED_URL}]),
           headers=[("Content-Type", "application/json"), ("ETag", '"ov"')])
    up.add(SIGNED, body)
    plain = PlainParent(up)
    child = child_of(tmp, up, "site", f"http://127.0.0.1:{plain.port}")
    try:
        es_nodes(child, md5, 20)
        eq(plain.asked, ["https://geoip.elastic.co" + OV, SIGNED_URL],
           "the plain parent was asked for the overview and the signed URL, in absolute form, once each")
        eq((up.count(OV), up.count(SIGNED)), (1, 1), "the origin served each once")
        ls = subprocess.run([AIRLOCK, "ls", "--config", child.config], capture_output=True, text=True, timeout=30).stdout
        if f"https://geoip.elastic.co/v1/db/{md5}/GeoLite2-ASN.tgz" not in ls or "storage.googleapis.com" in ls:
            fail(f"the child keeps the database under its stable key only:\n{ls}")
    finally:
        child.stop(strict=False)
        plain.stop()

    # an airlock parent of this version
    hq = os.path.join(tmp, "hq")
    os.makedirs(hq)
    parent = Airlock(hq, up)
    child2 = child_of(tmp, up, "site2", f"http://127.0.0.1:{parent.port}")
    try:
        es_nodes(child2, md5, 5)
        eq(up.count(SIGNED), 2, "the airlock parent fetched the database once more from the origin, for itself")
        plog = parent.logtext(tail=None)
        if f'"GET {SIGNED_URL}"' not in plog or f'"GET https://geoip.elastic.co/v1/db/' in plog:
            fail("the airlock parent was asked for the signed URL, never for the stable key:\n" +
                 "\n".join(l for l in plog.splitlines() if "[access]" in l))
        if "asked by its signed URL" not in plog:
            fail("the parent resolved the signed URL from its overview")
        ls = subprocess.run([AIRLOCK, "ls", "--config", parent.config], capture_output=True, text=True, timeout=30).stdout
        if f"https://geoip.elastic.co/v1/db/{md5}/GeoLite2-ASN.tgz" not in ls or "storage.googleapis.com" in ls:
            fail(f"the parent too keeps it under the stable key only:\n{ls}")
        # the parent's own nodes still get the overview rewritten
        st, _, ov = es_models.get(parent.url("/geoip/v1/database?elastic_geoip_service_tos=agree"))
        eq(json.loads(ov)[0]["url"], f"db/{md5}/GeoLite2-ASN.tgz", "the parent's route rewrites as before")
    finally:
        child2.stop(strict=False)
        parent.stop(strict=False)


if __name__ == "__main__":
    main(test)
