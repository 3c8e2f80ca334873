"""Client conditional requests are answered 304 from the cache (weak
If-None-Match, If-Modified-Since), without asking the upstream."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main

BODY = os.urandom(50000)
P = "/downloads/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"


def test():
    with Case() as (up, al, tmp):
        up.add(P, BODY, headers=[("ETag", '"abc123"'), ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT"),
                                 ("Content-Type", "application/gzip")])
        eq(curl(al, P).body, BODY, "fill")
        for inm in ['"abc123"', 'W/"abc123"', '"zzz", "abc123"', '*']:
            r = curl(al, P, [f"If-None-Match: {inm}"])
            eq(r.status, 304, f"If-None-Match {inm}")
            eq(r.body, b"", "304 has no body")
            eq(r.header("ETag"), '"abc123"', "304 carries the ETag")
        r = curl(al, P, ['If-None-Match: "other"'])
        eq(r.status, 200, "non-matching If-None-Match")
        eq(r.body, BODY, "full body")
        r = curl(al, P, ["If-Modified-Since: Wed, 15 May 2024 10:00:00 GMT"])
        eq(r.status, 304, "If-Modified-Since after Last-Modified")
        r = curl(al, P, ["If-Modified-Since: Mon, 13 May 2024 10:00:00 GMT"])
        eq(r.status, 200, "If-Modified-Since before Last-Modified")
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
        r = curl(al, P, ['If-None-Match: "other"', "If-Modified-Since: Wed, 15 May 2024 10:00:00 GMT"])
        eq(r.status, 200, "If-None-Match takes precedence")
        eq(up.count(P), 1, "upstream requests")
        # only-if-cached (RFC 9111 5.2.1.7): the cache or 504, never the upstream
        r = curl(al, P, ["Cache-Control: only-if-cached"])
        eq((r.status, r.body), (200, BODY), "only-if-cached, stored")
        r = curl(al, "/downloads/not-here.tar.gz", ["Cache-Control: max-age=0, only-if-cached"])
        eq(r.status, 504, "only-if-cached, not stored")
        eq(up.count("/downloads/not-here.tar.gz"), 0, "only-if-cached never goes upstream")


if __name__ == "__main__":
    main(test)
