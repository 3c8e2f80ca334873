"""Readiness on the status page and in /_airlock/metrics (issue 28).

The fake upstream serves what test_airgap_doctor's fixtures serve: Elastic
Agent 8.13.4 for two platforms with .sha512 and .asc, the agent GPG key, an
Endpoint manifest published 40 days and an hour ago listing two artifacts,
and two packages for Kibana ^8.13.0.  A running airlock:

- on an empty cache, the readiness is computed once the metrics are asked
  for (its time is in the metrics) and shows no Stack version: the cache
  holds no agent package;
- one agent package (linux-x86_64) fetched through airlock (which fetches
  its .sha512 to check it): version 8.13.4 appears, checked for that
  platform: 6 things checked (package, .sha512, .asc, GPG key, Endpoint
  manifest, Kibana's package list), 2 present, 4 missing, no manifest age;
  the status page's row says the same;
- `airlock mirror` of the agents, Endpoint and packages run beside the
  server (another process writing the cache): the next computation has
  all 16 present (now for both platforms: 2 x 3 agent files, the key, the
  manifest and its 2 artifacts, 2 packages' document, archive and .sig),
  0 missing, and the manifest's age from its
  Last-Modified, flagged on the page as older than Elastic's monthly advice.

The readiness is computed on its own thread when the cache has changed, so
the test polls (bounded) until a computation has seen the change; it
asserts values, not times."""
import os, re, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import Case, cli, curl, eq, fail, main, wait_for
from test_airgap_doctor import PLATS, V, fixtures


def metrics(al):
    return curl(al, "/_airlock/metrics").body.decode()


def computed(al):
    m = re.search(r"^airlock_readiness_computed_seconds (\d+)$", metrics(al), re.M)
    if m is None:
        fail("no airlock_readiness_computed_seconds in /_airlock/metrics")
    return int(m.group(1))


def coverage(text):
    """{version: (checked, present, missing, manifest age or None)} from the metrics."""
    out = {}
    for kind in ("checked", "present", "missing"):
        for v, n in re.findall(rf'^airlock_stack_coverage_{kind}{{version="([^"]+)"}} (\d+)$', text, re.M):
            out.setdefault(v, {})[kind] = int(n)
    ages = dict(re.findall(r'^airlock_endpoint_manifest_age_seconds{version="([^"]+)"} (\d+)$', text, re.M))
    return {v: (c["checked"], c["present"], c["missing"], int(ages[v]) if v in ages else None) for v, c in out.items()}


def settle(al, what, want):
    """The coverage once a computation has seen the change: polled (bounded) until it is want, since a fill's
    entries are committed one by one and a computation may fall between two of them."""
    seen = []
    def ok():
        seen.append(coverage(metrics(al)))
        return want(seen[-1])
    try:
        wait_for(ok, 40, what)
    except AssertionError:
        fail(f"{what}: the readiness never became what was expected; last seen {seen[-1] if seen else None}")
    return seen[-1]


def test():
    with Case() as (up, al, tmp):
        fixtures(up)
        wait_for(lambda: computed(al) > 0, 20, "the first readiness")
        eq(coverage(metrics(al)), {}, "an empty cache: no Stack version to show")
        if "no Elastic Agent packages in the cache" not in curl(al, "/_airlock/status").body.decode():
            fail("the status page on an empty cache")

        f = f"elastic-agent-{V}-linux-x86_64.tar.gz"
        eq(curl(al, f"/downloads/beats/elastic-agent/{f}").status, 200, "the agent package through airlock")
        settle(al, "one agent package (and its .sha512): its version, that platform only",
               lambda c: c == {V: (6, 2, 4, None)})
        page = curl(al, "/_airlock/status").body.decode()
        row = re.search(rf'<tr class="coverage" data-version="{re.escape(V)}" data-checked="(\d+)" '
                        rf'data-present="(\d+)" data-missing="(\d+)">(.*?)</tr>', page)
        if row is None:
            fail(f"no row for {V} on the status page")
        eq(row.groups()[:3], ("6", "2", "4"), "the page's row")
        if "agent-artifact-signature" not in row.group(4) or "agent-artifact-sha512" in row.group(4) or \
                "not cached" not in row.group(4):
            fail(f"the row names what is missing and the manifest's absence: {row.group(4)}")

        cli(al.config, "mirror", "artifacts", "--version", V, "--arch", ",".join(PLATS), "--format", "tar.gz,zip",
            "--only", "elastic-agent")
        cli(al.config, "mirror", "endpoint", "--version", V)
        cli(al.config, "mirror", "packages", "--kibana-version", V)
        published = time.time() - 40 * 86400 - 3600
        cov = settle(al, "after mirror: everything present", lambda c: V in c and c[V][2] == 0 and c[V][0] == 16)
        checked, present, missing, age = cov[V]
        eq((list(cov), checked, present, missing), ([V], 2 * 3 + 1 + 1 + 2 + 2 * 3, 2 * 3 + 1 + 1 + 2 + 2 * 3, 0),
           "after mirror: everything present, for both platforms")
        if age is None or not (time.time() - published - 120 <= age <= time.time() - published + 120):
            fail(f"the manifest's age is from its Last-Modified (40 days and an hour): {age}")
        page = curl(al, "/_airlock/status").body.decode()
        row = re.search(rf'<tr class="coverage" data-version="{re.escape(V)}" data-checked="16" '
                        rf'data-present="16" data-missing="0">(.*?)</tr>', page)
        if row is None or "Elastic advises monthly updates" not in row.group(1) or "none" not in row.group(1):
            fail(f"the page's row after mirror: {row.group(0) if row else page[-3000:]}")


if __name__ == "__main__":
    main(test)
