"""The upstream's Age (RFC 9111 §5.1): relayed on a miss, counted in freshness, read from its
first line as the leading digits of the first member, as Squid, Traffic Server and Varnish
read it (cache-tests.fyi freshness-max-age-age, age-parse-float, -suffix, -suffix-twoline)."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main


def test():
    with Case() as (up, al, tmp):
        cases = [  # path, Age lines, stale at once (older than max-age=3600)?
            ("/old", ["7200"], True),
            ("/young", ["100"], False),
            ("/float", ["7200.0"], True),
            ("/suffix", ["7200,0"], True),
            ("/prefix", ["0,7200"], False),
            ("/twoline", ["7200", "0"], True),
            ("/garbage", ["abc"], False),
        ]
        for path, ages, _ in cases:
            up.add(path, b"body " + path.encode(), headers=[("Cache-Control", "max-age=3600")] +
                   [("Age", a) for a in ages])
        up.add("/nostore", b"x", headers=[("Cache-Control", "no-store"), ("Age", "42")])
        for path, ages, stale in cases:
            r1 = curl(al, path)
            eq(r1.status, 200, f"{path} first")
            want = {"7200.0": "7200", "7200,0": "7200", "0,7200": "0", "abc": None}.get(ages[0], ages[0])
            eq(r1.header("Age"), want, f"{path}: the miss relays the upstream's Age {ages}")
            r2 = curl(al, path)
            eq(r2.status, 200, f"{path} second")
            eq(up.count(path), 2 if stale else 1, f"{path} with Age {ages}: upstream fetches")
            if not stale and int(r2.header("Age") or -1) < int(want or 0):
                fail(f"{path}: a hit's Age {r2.header('Age')} counts less than the upstream's {want}")
        r = curl(al, "/nostore")
        eq(r.header("Age"), "42", "a response passed through unstored relays the upstream's Age")


if __name__ == "__main__":
    main(test)
