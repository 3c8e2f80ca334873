"""Operating airlock: health and Prometheus metrics move with traffic, the
access log is ECS JSON (reopened on SIGUSR1), admin endpoints refuse clients
outside admin.allow unless they bring the bearer token, purge works."""
import json, os, re, signal, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main, wait_for

P = "/downloads/beats/heartbeat/heartbeat-8.13.4-linux-x86_64.tar.gz"


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        log = os.path.join(tmp, "access.log")
        al = Airlock(tmp, up, extra=f'admin:\n  token: "s3cret-token"\n', upstream_extra="")
        al.stop()
        cfg = open(al.config).read().replace("log:\n  level: debug\n", f"log:\n  level: debug\n  access: {log}\n")
        open(al.config, "w").write(cfg)
        al.start()
        try:
            up.add(P, os.urandom(5000), headers=[("ETag", '"h"')])
            m0 = curl(al, "/_airlock/metrics").body.decode()
            eq(metric(m0, "airlock_requests_total", '{result="hit"}'), 0, "no hits yet")
            curl(al, P, ["User-Agent: Elastic-Agent/8.13.4"])
            curl(al, P)
            curl(al, "/nothing/here")
            m1 = curl(al, "/_airlock/metrics").body.decode()
            eq(metric(m1, "airlock_requests_total", '{result="hit"}'), 1, "hits")
            eq(metric(m1, "airlock_requests_total", '{result="miss"}') >= 1, True, "misses")
            eq(metric(m1, "airlock_responses_total", '{code="200"}') >= 2, True, "200s")
            # the artifact and its .sha512 (the integrity check's fetch, stored for the agent)
            eq(metric(m1, "airlock_upstream_fetches_total", '{upstream="https://artifacts.elastic.co"}'), 2, "fetches")
            eq(metric(m1, "airlock_upstream_up", '{upstream="https://artifacts.elastic.co"}'), 1, "up")
            eq(metric(m1, "airlock_cache_entries") >= 1, True, "entries gauge")
            eq(metric(m1, "airlock_cache_bytes_served_total") >= 5000, True, "bytes from cache")
            h = al.health()
            eq(h["requests"]["hits"], 1, "health hits")
            eq(h["cache"]["entries"] >= 1, True, "health entries")

            wait_for(lambda: os.path.exists(log) and len(open(log).read().splitlines()) >= 4, 5, "access log lines")
            lines = [json.loads(l) for l in open(log).read().splitlines()]
            first = next(l for l in lines if l["url"]["original"] == P)
            for k in ("@timestamp",):
                if k not in first:
                    fail(f"access log line lacks {k}: {first}")
            eq(first["client"]["ip"], "127.0.0.1", "client.ip")
            eq(first["http"]["request"]["method"], "GET", "http.request.method")
            eq(first["http"]["response"]["status_code"], 200, "http.response.status_code")
            eq(first["http"]["response"]["body"]["bytes"], 5000, "http.response.body.bytes")
            eq(first["user_agent"]["original"], "Elastic-Agent/8.13.4", "user_agent.original")
            eq(first["airlock"]["upstream"], "https://artifacts.elastic.co", "airlock.upstream")
            eq(first["airlock"]["result"], "miss", "airlock.result")
            if "fwd=miss" not in first["airlock"]["cache_status"] or not isinstance(first["event"]["duration"], int):
                fail(f"cache_status / event.duration: {first}")

            # logrotate: move the file, SIGUSR1, new lines go to a new file.
            os.rename(log, log + ".1")
            al.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: "reopened the access log" in al.logtext(), 5, "the reopen")
            curl(al, P)
            wait_for(lambda: os.path.exists(log) and P in open(log).read(), 5, "a line in the new file")

            # purge through the admin endpoint
            r = curl(al, "/_airlock/purge?pattern=*/heartbeat/*", method="POST")
            eq((r.status, json.loads(r.body)["purged"]), (200, 2), "purge (the artifact and its .sha512 answer)")
            eq(curl(al, P).header("Cache-Status").startswith("airlock; fwd=miss"), True, "purged entry refetched")
        finally:
            al.stop()

        # Admin endpoints from outside admin.allow: 403, unless the bearer token comes along.
        al2 = Airlock(tmp, up, extra='admin:\n  allow: ["10.0.0.0/8"]\n  token: "s3cret-token"\n')
        try:
            eq(curl(al2, "/_airlock/metrics").status, 403, "metrics from outside admin.allow")
            eq(curl(al2, "/_airlock/status").status, 403, "status page from outside admin.allow")
            eq(curl(al2, "/_airlock/purge?pattern=*", method="POST").status, 403, "purge from outside admin.allow")
            eq(curl(al2, "/_airlock/metrics", ["Authorization: Bearer wrong"]).status, 403, "wrong token")
            eq(curl(al2, "/_airlock/metrics", ["Authorization: Bearer s3cret-token"]).status, 200, "right token")
            eq(curl(al2, "/_airlock/health").status, 200, "health stays open for probes")
            if "s3cret-token" in al2.logtext():
                fail("the token appeared in the log")
        finally:
            al2.stop()


if __name__ == "__main__":
    main(test)
