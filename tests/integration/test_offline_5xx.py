"""A 5xx during revalidation serves the stale copy and never evicts it;
with stale_on_5xx: false the 5xx is passed through (and still evicts nothing)."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main

P = "/categories?kibana.version=8.13.4"


def test():
    with Case() as (up, al, tmp):
        up.add(P, b'[{"id":"security"}]', headers=[("Cache-Control", "max-age=1")])
        eq(curl(al, P).status, 200, "fill")
        time.sleep(1.2)
        up.add(P, b"upstream broke", status=503, headers=[("Retry-After", "10")])
        r = curl(al, P)
        eq(r.status, 200, "stale served on 503")
        eq(r.body, b'[{"id":"security"}]', "stale body")
        eq(up.count(P), 2, "revalidation was attempted")
        eq(al.health()["cache"]["entries"], 1, "entry kept")
        # The upstream is answering, so it stays online.
        eq(al.health()["upstreams"][-1]["state"], "online", "a 5xx is not an outage")
        al.stop()

        # stale_on_5xx: false passes the 5xx through.
        off = Airlock(tmp, up, upstream_extra="  stale_on_5xx: false\n")
        r = curl(off, P)
        eq(r.status, 503, "5xx passed through")
        eq(r.header("Retry-After"), "10", "5xx headers passed through")
        eq(off.health()["cache"]["entries"], 1, "still not evicted")
        up.add(P, b'[{"id":"security"},{"id":"x"}]', headers=[("Cache-Control", "max-age=60")])
        eq(curl(off, P).body, b'[{"id":"security"},{"id":"x"}]', "recovers")
        off.stop()


if __name__ == "__main__":
    main(test)
