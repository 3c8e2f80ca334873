"""Cache-only mode under three kinds of uplink failure: the port is closed,
the upstream black-holes (accepts, never answers), the upstream refuses TLS.
In each case cached objects (stale ones included) are served 200 with the
original ETag and body, uncached ones get 504, the switch happens within the
configured timeout, and airlock comes back online by itself."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, wait_for

FIRST_BYTE_TIMEOUT = 2.0   # as the harness configures airlock
STALE = "/downloads/endpoint/manifest/artifacts-8.13.4.json"
ZIP = "/downloads/beats/auditbeat/auditbeat-8.13.4-linux-x86_64.tar.gz"
BODY = os.urandom(200 * 1024)


def state(al, host):
    for u in al.health()["upstreams"]:
        if u["upstream"] == host:
            return u
    fail(f"no upstream {host} in health")


def check_offline_serving(up, al, how, bound):
    sec = "https://artifacts.security.elastic.co"
    t0 = time.time()
    r = curl(al, STALE)                     # stale: needs the upstream, which fails
    took = time.time() - t0
    eq(r.status, 200, f"{how}: stale object served")
    eq(r.body, b'{"manifest_version":"1"}', f"{how}: stale body")
    eq(r.header("ETag"), '"m1"', f"{how}: original ETag")
    if "stale: upstream unreachable" not in (r.header("Cache-Status") or ""):
        fail(f"{how}: Cache-Status {r.header('Cache-Status')!r} should say stale, upstream unreachable")
    if took > bound:
        fail(f"{how}: stale answer took {took:.2f}s, bound {bound}s")
    s = state(al, sec)
    eq(s["state"], "offline", f"{how}: health state")
    if not s["last_error"]:
        fail(f"{how}: health should carry the last error")
    # While offline nothing waits: immediate answers.
    t0 = time.time()
    r = curl(al, STALE)
    eq(r.status, 200, f"{how}: second stale")
    r2 = curl(al, "/downloads/endpoint/never-cached.json")
    eq(r2.status, 504, f"{how}: uncached while offline")
    if b"never-cached.json" not in r2.body or b"offline" not in r2.body:
        fail(f"{how}: 504 body should name the URL and say offline: {r2.body!r}")
    if time.time() - t0 > 1.0:
        fail(f"{how}: offline answers must not wait on the uplink")
    # Other upstreams keep their own state; cached immutable objects are plain hits.
    r = curl(al, ZIP)
    eq(r.body, BODY, f"{how}: artifact hit")


def recover(up, al, how):
    sec = "https://artifacts.security.elastic.co"
    wait_for(lambda: state(al, sec)["state"] == "online", 3.0, f"{how}: back online within the probe interval")
    before = up.count(STALE)
    r = curl(al, STALE)
    eq(r.status, 200, f"{how}: after recovery")
    eq(up.count(STALE), before + 1, f"{how}: stale entry revalidated after recovery")
    if "fwd=stale" not in r.header("Cache-Status"):
        fail(f"{how}: expected a revalidation, Cache-Status {r.header('Cache-Status')!r}")


def test():
    with Case() as (up, al, tmp):
        up.add(STALE, b'{"manifest_version":"1"}', headers=[("ETag", '"m1"'), ("Cache-Control", "max-age=1")])
        up.add(ZIP, BODY, headers=[("ETag", '"ab"')])
        eq(curl(al, STALE).status, 200, "fill")
        eq(curl(al, ZIP).status, 200, "fill")
        time.sleep(1.2)  # the manifest is now stale

        # 1. Closed port: connect refused.
        up.stop()
        check_offline_serving(up, al, "closed port", 1.5)
        up.restart()
        recover(up, al, "closed port")

        # 2. Black hole: accepts, never answers -> first-byte timeout.
        time.sleep(1.2)
        up.set_mode("blackhole")
        check_offline_serving(up, al, "black hole", FIRST_BYTE_TIMEOUT + 1.0)
        up.set_mode("normal")
        recover(up, al, "black hole")

        # 3. TLS refused: the handshake fails.
        time.sleep(1.2)
        up.set_mode("badtls")
        check_offline_serving(up, al, "TLS refused", 1.5)
        up.set_mode("normal")
        recover(up, al, "TLS refused")


if __name__ == "__main__":
    main(test)
