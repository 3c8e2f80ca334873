"""Elasticsearch's GeoIP downloader through airlock (issue 27, part 2).

ingest.geoip.downloader.endpoint: http://airlock/geoip/v1/database.  The
client below is GeoIpDownloader (elasticsearch 612651a0,
modules/ingest-geoip: updateDatabases, fetchDatabasesOverview,
processDatabase, indexChunks) with HttpClient (13ae1548: 200 only, up to 50
redirects followed, no proxy): it GETs <endpoint>?elastic_geoip_service_tos=agree,
and for each *.tgz whose md5_hash differs from what the node holds GETs its
url (a relative one resolved as a sibling of the endpoint) and checks the
MD5.  Upstream each url is a signed storage URL that expires.

- The overview airlock serves says db/<md5_hash>/<name> for each url, so
  every node comes back to airlock; each database is fetched once from its
  signed URL for all nodes and kept under
  https://geoip.elastic.co/v1/db/<md5_hash>/<name>;
- a database whose md5_hash changed upstream is fetched once more, the
  others not at all;
- `airlock mirror geoip` revalidates the overview and finds the databases;
  after a signed export and import, a new node is served the overview and
  every database offline with zero upstream contact."""
import hashlib, json, os, sys, urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Case, cli, eq, fail, main
import es_models

DBS = ("GeoLite2-ASN.tgz", "GeoLite2-City.tgz", "GeoLite2-Country.tgz")


def http_get(url):
    """HttpClient.get: redirects followed (at most 50), only a 200 is a body."""
    for _ in range(51):
        st, h, body = es_models.get(url)
        if st in (301, 302, 303):
            url = urllib.parse.urljoin(url, h["location"])
            continue
        if st != 200:
            fail(f"error during downloading {url}: {st}")
        return body
    fail("too many redirects")


def es_update(endpoint, state):
    """GeoIpDownloader.updateDatabases for one node; returns the names downloaded."""
    overview = json.loads(http_get(endpoint + "?elastic_geoip_service_tos=agree"))
    got = []
    for res in overview:
        if not res["name"].endswith(".tgz"):
            continue
        name = res["name"].replace(".tgz", "") + ".mmdb"
        md5, url = res["md5_hash"], res["url"]
        if not url.startswith("http"):
            last = endpoint[8:].rfind("/")
            url = (endpoint[:last + 8] if last != -1 else endpoint) + "/" + url
        if state.get(name) == md5:
            continue
        body = http_get(url)
        if hashlib.md5(body).hexdigest() != md5:
            fail(f"md5 checksum mismatch for {name}")
        state[name] = md5
        got.append(name)
    return overview, got


def publish(up, bodies, sig, etag):
    entries = []
    for n, b in bodies.items():
        path = f"/elastic-paisano-production/{n}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=86400&X-Goog-Signature={sig}"
        up.add(path, b, headers=[("Content-Type", "application/gzip")])
        entries.append({"name": n, "md5_hash": hashlib.md5(b).hexdigest(), "provider": "maxmind",
                        "updated": 1733000000, "url": "https://storage.googleapis.com" + path})
    entries.append({"name": "not-a-database.json", "md5_hash": "0" * 32, "url": "https://storage.googleapis.com/x"})
    up.add("/v1/database?elastic_geoip_service_tos=agree", json.dumps(entries),
           headers=[("Content-Type", "application/json"), ("ETag", etag)])
    return entries


def fetches(up, name):
    with up.lock:
        return sum(1 for m, p, h in up.requests if p.startswith(f"/elastic-paisano-production/{name}?"))


def test():
    with Case() as (up, al, tmp):
        bodies = {n: os.urandom(20000) for n in DBS}
        publish(up, bodies, "sig1", '"ov-1"')
        endpoint = al.url("/geoip/v1/database")
        node1, node2 = {}, {}
        overview, got = es_update(endpoint, node1)
        eq(sorted(got), sorted(n.replace(".tgz", ".mmdb") for n in DBS), "node 1 gets every database")
        for res in overview:
            if res["name"] in DBS:
                eq(res["url"], f"db/{res['md5_hash']}/{res['name']}", "each url leads back to airlock")
        eq(es_update(endpoint, node2)[1], got, "node 2 too")
        for n in DBS:
            eq(fetches(up, n), 1, f"{n}: fetched once for all nodes")
        ls = cli(al.config, "ls", "https://geoip.elastic.co/*").stdout
        asn = hashlib.md5(bodies[DBS[0]]).hexdigest()
        if f"https://geoip.elastic.co/v1/db/{asn}/GeoLite2-ASN.tgz" not in ls:
            fail(f"a database is kept by name and md5_hash:\n{ls}")

        # A new ASN database upstream: new md5_hash, new signed URL.
        bodies[DBS[0]] = os.urandom(21000)
        publish(up, bodies, "sig2", '"ov-2"')
        eq(es_update(endpoint, node1)[1], ["GeoLite2-ASN.mmdb"], "only the changed database")
        eq(es_update(endpoint, node2)[1], ["GeoLite2-ASN.mmdb"], "node 2 too")
        eq(fetches(up, DBS[0]), 2, "the new ASN fetched once")
        eq(fetches(up, DBS[1]), 1, "City not again")
        al.stop()

        p = cli(al.config, "mirror", "geoip")
        if "geoip overview: 3 databases" not in p.stdout or "fetched 0, already present 4" not in p.stdout or \
                "failed 0" not in p.stdout:
            fail(f"mirror geoip:\n{p.stdout}\n{p.stderr}")
        eq(up.last_headers("/v1/database?elastic_geoip_service_tos=agree").get("if-none-match"), '"ov-2"',
           "the overview is asked again, by ETag")

        ag = AirGap(al, up)
        with ag as gap:
            node3 = {}
            overview, got = es_update(gap.url("/geoip/v1/database"), node3)
            eq(sorted(got), sorted(n.replace(".tgz", ".mmdb") for n in DBS), "offline, a new node gets every database")
            eq(node3, node1, "the current md5 of each")
            ag.untouched()


if __name__ == "__main__":
    main(test)
