"""A GeoIP database is admitted only when its MD5 is the md5_hash it is named by
(issue 27, part 2).

Elasticsearch checks the MD5 of each database it downloads
(GeoIpDownloader.indexChunks, elasticsearch 612651a0) and fails the
download on a mismatch; airlock keeps each database under
https://geoip.elastic.co/v1/db/<md5_hash>/<name> (immutable), so a bad body
admitted there would fail every node until purged.  The fill checks the MD5
before admission: here the storage link serves other bytes than the
overview's md5_hash names; the node's download fails (the transfer is cut
before its last byte, or airlock's 502), nothing is stored, the refusal is
logged and counted; once the storage serves the right bytes the next node
gets the database, verified."""
import hashlib, json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, cli, curl, eq, fail, main, wait_for
import es_models

PATH = "/elastic-paisano-production/GeoLite2-ASN.tgz?X-Goog-Signature=s1"


def test():
    with Case() as (up, al, tmp):
        good = os.urandom(30000)
        md5 = hashlib.md5(good).hexdigest()
        up.add("/v1/database?elastic_geoip_service_tos=agree", json.dumps(
            [{"name": "GeoLite2-ASN.tgz", "md5_hash": md5, "url": "https://storage.googleapis.com" + PATH}]),
            headers=[("Content-Type", "application/json"), ("ETag", '"ov"')])
        up.add(PATH, os.urandom(30000))  # not what md5_hash names
        st, _, body = es_models.get(al.url("/geoip/v1/database?elastic_geoip_service_tos=agree"))
        eq(st, 200, "overview")
        url = al.url("/geoip/v1/" + json.loads(body)[0]["url"])
        try:
            st, _, got = es_models.get(url)
            ok = st == 200 and hashlib.md5(got).hexdigest() == md5
        except Exception:  # noqa: BLE001 - a cut transfer is what Elasticsearch would see
            ok = False
        eq(ok, False, "the mismatching database does not reach the node whole")
        ls = cli(al.config, "ls", "https://geoip.elastic.co/v1/db/*").stdout
        if any(l.startswith("200") for l in ls.splitlines()):
            fail(f"a mismatching database is not stored:\n{ls}")
        # the refusal runs on the fill after the client saw its transfer fail: wait for it
        wait_for(lambda: "does not match the md5_hash it is named by; not admitted" in al.logtext(), 10,
                 "the refusal is logged")
        wait_for(lambda: "airlock_integrity_refused_total 0" not in curl(al, "/_airlock/metrics").body.decode(), 10,
                 "the refusal is counted")

        up.add(PATH, good)
        st, _, got = es_models.get(url)
        eq((st, hashlib.md5(got).hexdigest()), (200, md5), "the right database, once the storage serves it")
        if f"GeoLite2-ASN.tgz ({len(good)} bytes, MD5 verified against its md5_hash)" not in al.logtext():
            fail("admitted verified")
        eq(up.count(PATH), 2, "one fetch per attempt")


if __name__ == "__main__":
    main(test)
