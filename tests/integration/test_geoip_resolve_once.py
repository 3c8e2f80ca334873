"""A GeoIP database request costs the worker's loop no overview read (issue
27, part 2, left open: "a read per request").

The signed URL a database is fetched from is read from the cached overview
only by the request that starts the upstream fetch (proxy/front/conn.c
stp_fetch): a hit, and a request that joins the fill under way, never read
it.  The path still works: one node's update (GeoIpDownloader.updateDatabases
/ processDatabase, elasticsearch 612651a0, as test_airgap_geoip drives it)
fetches the database once from its signed URL; then twenty more nodes'
downloads are hits, the storage sees nothing more, and the log says the
overview was read once (debug line "read from the cached overview")."""
import hashlib, json, os, sys, threading
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main
import es_models

PATH = "/elastic-paisano-production/GeoLite2-ASN.tgz?X-Goog-Signature=s1"


def test():
    with Case() as (up, al, tmp):
        body = os.urandom(50000)
        md5 = hashlib.md5(body).hexdigest()
        up.add("/v1/database?elastic_geoip_service_tos=agree", json.dumps(
            [{"name": "GeoLite2-ASN.tgz", "md5_hash": md5, "url": "https://storage.googleapis.com" + PATH}]),
            headers=[("Content-Type", "application/json"), ("ETag", '"ov"')])
        up.add(PATH, body)
        st, _, ov = es_models.get(al.url("/geoip/v1/database?elastic_geoip_service_tos=agree"))
        eq(st, 200, "overview")
        url = al.url("/geoip/v1/" + json.loads(ov)[0]["url"])
        st, _, got = es_models.get(url)
        eq((st, hashlib.md5(got).hexdigest()), (200, md5), "the first node gets the database")
        eq(up.count(PATH), 1, "fetched once from its signed URL")
        res = []

        def node():
            s, _, b = es_models.get(url)
            res.append((s, hashlib.md5(b).hexdigest()))
        ts = [threading.Thread(target=node) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        eq(res, [(200, md5)] * 20, "twenty more nodes get it")
        eq(up.count(PATH), 1, "from the cache: the storage saw one request")
        r = curl(al, "/geoip/v1/db/" + md5 + "/GeoLite2-ASN.tgz")
        if not (r.header("Cache-Status") or "").startswith("airlock; hit"):
            fail(f"a hit: {r.header('Cache-Status')}")
        reads = al.logtext(tail=None).count("read from the cached overview")
        eq(reads, 1, "the overview was read for the one upstream fetch only, not per request")


if __name__ == "__main__":
    main(test)
