"""Forced cache-only (upstream.offline: true, or --offline) never contacts
any upstream: cached objects are served whatever their age, others get 504,
and the origin sees zero connections."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main

P = "/package/nginx/1.20.0/"


def test():
    with Case() as (up, al, tmp):
        up.add(P, b'{"name":"nginx"}', headers=[("Cache-Control", "max-age=1"), ("Content-Type", "application/json")])
        eq(curl(al, P).status, 200, "fill")
        al.stop()
        time.sleep(1.2)
        before = up.connections
        for how, kw in (("config", {"offline": True}), ("flag", {"args": ["--offline"]})):
            off = Airlock(tmp, up, **kw)
            try:
                r = curl(off, P)
                eq(r.status, 200, f"{how}: stale entry served")
                eq(r.body, b'{"name":"nginx"}', f"{how}: body")
                if "offline by configuration" not in r.header("Cache-Status"):
                    fail(f"{how}: Cache-Status {r.header('Cache-Status')!r}")
                eq(curl(off, "/package/apache/1.0.0/").status, 504, f"{how}: uncached")
                h = off.health()["upstreams"]
                eq(all(u["state"] == "offline" and u["forced"] for u in h), True, f"{how}: all upstreams forced offline")
                time.sleep(1.0)  # a probe interval: no probing either
            finally:
                off.stop()
        eq(up.connections, before, "connections to the origin while forced offline")


if __name__ == "__main__":
    main(test)
