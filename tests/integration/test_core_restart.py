"""The cache is real LMDB on disk: it survives a restart of airlock, and a
kill -9 in the middle of a fill leaves no partial object behind."""
import os, signal, sys, subprocess, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, wait_for

BODY = os.urandom(1024 * 1024)
P = "/downloads/elastic-agent/elastic-agent-8.13.4-linux-arm64.tar.gz"
SLOW = "/downloads/fleet-server/fleet-server-8.13.4-linux-x86_64.tar.gz"


def test():
    with Case() as (up, al, tmp):
        up.add(P, BODY, headers=[("ETag", '"e1"')])
        eq(curl(al, P).body, BODY, "fill")
        al.stop()
        al.start()
        r = curl(al, P)
        eq(r.body, BODY, "after restart")
        eq(r.header("ETag"), '"e1"', "ETag after restart")
        eq(up.count(P), 1, "served from disk after restart")

        # kill -9 during a fill: chunks are on disk, but no record points at them.
        up.add(SLOW, os.urandom(600 * 1024), headers=[("ETag", '"s"')], rate=200 * 1024)
        t = threading.Thread(target=lambda: curl(al, SLOW, timeout=10))
        t.start()
        wait_for(lambda: up.count(SLOW) == 1, 5, "the fill to start")
        time.sleep(1.0)
        al.stop(signal.SIGKILL)
        t.join()
        al.start()
        # the complete entry and the .sha512 answer its integrity check stored (a 404 here)
        eq(al.health()["cache"]["entries"], 2, "only the complete entry survives")
        r = curl(al, SLOW)
        eq(r.rc, 0, "refetch after crash")
        eq(up.count(SLOW), 2, "the interrupted fill was not served")


if __name__ == "__main__":
    main(test)
