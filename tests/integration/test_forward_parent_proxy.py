"""upstream.proxy: airlock's own upstream traffic goes through a parent proxy
(here a second airlock, forward proxy tunnelling to the origin), with upstream
TLS still verified end to end."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main

Q = "/search?kibana.version=8.13.4&prerelease=false"


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(Q, b'[{"name":"nginx"}]', headers=[("Cache-Control", "max-age=600")])
        parent = Airlock(os.path.join(tmp), up, extra="forward:\n  allow:\n    - {host: epr.elastic.co, mode: tunnel}\n")
        tmp_child = os.path.join(tmp, "child")
        os.makedirs(tmp_child)
        child = Airlock(tmp_child, up, resolve_hosts=False,
                        upstream_extra=f"  proxy: http://127.0.0.1:{parent.port}\n")
        try:
            r = curl(child, Q)
            eq((r.status, r.body), (200, b'[{"name":"nginx"}]'), f"through the parent proxy: {child.logtext()[-800:]}")
            eq(up.count(Q), 1, "the origin saw the request")
            if "CONNECT epr.elastic.co:443 tunnel" not in parent.logtext():
                fail("the request did not go through the parent proxy")
            r2 = curl(child, Q)
            if not (r2.header("Cache-Status") or "").startswith("airlock; hit"):
                fail(f"then a hit, with the origin's Cache-Control kept: {r2.header('Cache-Status')!r}")
            eq(r2.header("Cache-Control"), "max-age=600", "the origin's head, not the CONNECT response")
        finally:
            child.stop()
            parent.stop()


if __name__ == "__main__":
    main(test)
