"""A Kibana-like client (node-fetch + https-proxy-agent, NODE_EXTRA_CA_CERTS
pointing at airlock's CA) fetches the registry's /search through airlock's
forward proxy twice: the JSON, the repeated Cache-Control lines and the
validators come back as the registry sent them, and the registry sees one request.
The two Cache-Control lines are the registry's own: elastic/package-registry
search.go searchHandler -> cacheHeaders(w, cacheTime), two Header().Add calls."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, eq, fail, main, forward_section
import node_clients

SEARCH = json.dumps([{"name": "endpoint", "version": "8.13.0", "title": "Elastic Defend"},
                     {"name": "nginx", "version": "1.20.0", "title": "Nginx"}]).encode()
Q = "/search?prerelease=false&kibana.version=8.13.4&capabilities=apm,observability,security&spec.min=1.0&spec.max=3.2"


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        fwd, ca = forward_section(tmp, ["epr.elastic.co"], {"kibana": "fleet-pw"})
        al = Airlock(tmp, up, extra=fwd)
        try:
            up.add(Q, SEARCH, headers=[("Content-Type", "application/json; charset=utf-8"),
                                      ("Cache-Control", "max-age=600"), ("Cache-Control", "public"),
                                      ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT")])
            url = "https://epr.elastic.co" + Q
            p = node_clients.run("kibana_fetch.js", [f"http://kibana:fleet-pw@127.0.0.1:{al.port}", url, url],
                                 {"NODE_EXTRA_CA_CERTS": f"{ca}/ca.crt"})
            if p.returncode != 0:
                fail(f"node client failed:\n{p.stderr}")
            lines = [json.loads(x) for x in p.stdout.splitlines()]
            eq(len(lines), 2, "two responses")
            for i, r in enumerate(lines):
                eq(r["status"], 200, f"status #{i}")
                eq(json.loads(r["body"]), json.loads(SEARCH), f"JSON #{i}")
                # Node joins repeated lines before node-fetch sees them: this is what Kibana
                # sees from the registry itself (the wire-level lines are checked with curl).
                eq(r["cacheControl"], ["max-age=600, public"], f"Cache-Control as Kibana sees it #{i}")
                eq(r["etag"], None, f"no invented ETag #{i}")
            if not lines[1]["cacheStatus"].startswith("airlock; hit"):
                fail(f"second fetch should be a hit: {lines[1]['cacheStatus']!r}")
            eq(up.count(Q), 1, "the registry saw one request")
            seen = up.last_headers(Q)
            eq(seen.get("user-agent"), "Kibana/8.13.4 node-fetch", "Kibana's User-Agent forwarded")
            eq("if-none-match" in seen or "if-modified-since" in seen, False, "no conditional headers from Kibana")
            # Wrong password: https-proxy-agent v5 (the version Kibana pins, tests/node/package.json)
            # hands the proxy's 407 to node-fetch as the response.  A client that fails instead
            # proves nothing about the 407, so that is a failure of this test, not a skip.
            fails_before = al.logtext().count("proxy authentication failed")
            p = node_clients.run("kibana_fetch.js", [f"http://kibana:nope@127.0.0.1:{al.port}", url],
                                 {"NODE_EXTRA_CA_CERTS": f"{ca}/ca.crt"})
            if p.returncode != 0:
                fail(f"the Kibana-like client failed instead of reporting the 407:\n{p.stderr}")
            r = json.loads(p.stdout.splitlines()[0])
            eq(r["status"], 407, "wrong proxy password")
            if "endpoint" in r["body"]:
                fail("registry content leaked past a failed proxy authentication")
            eq(al.logtext().count("proxy authentication failed") - fails_before, 1,
               "airlock refused that CONNECT itself (one logged failure)")
            eq(up.count(Q), 1, "nothing reached the registry with the wrong password")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
