"""A purge still running when airlock stops: the server waits for it, then
stops cleanly (it touched a freed worker loop).

The purge runs in slices on the store writer and ends by activating an
event on the worker's loop that asked (proxy/front/purge.c).  The server
stopped its workers, freeing their loops, before it stopped the writer;
when the client that asked had gone (so the connection drain did not wait
for it), the writer finished the purge afterwards and activated an event of
a freed loop: a use after free, which the AddressSanitizer build reports
and aborts on.  Now the server waits for purges in flight before it stops
the workers (conn_purge_quiesce, at most 30 s), and says so in the log.
A client waiting for its purge is waited for by the connection drain; a
second SIGTERM skips the drain ("stopping now"), which opened the window.

20,000 entries are seeded (tests/tools/store_seed.c) on a disk whose every
flush takes 20 ms (tests/tools/slowsync.c), so the purge's slices last over
a second; the client sends the POST, then two SIGTERMs come while the purge runs.
airlock must exit with 0, after logging that
it waits and that the purge deleted all 20,000 entries, and a restart on
the same cache finds them gone."""
import os, re, signal, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, seed_store, slow_disk  # noqa: E402

SEED = slow_disk(20, seed=True)

N = 20000


def test():
    with Case(workers=1) as (up, al, tmp):
        al.stop()
        seed_store(SEED, al, N, "https://artifacts.elastic.co/downloads/bulk/obj-")
        al.start()

        s = socket.create_connection(("127.0.0.1", al.port), timeout=10)
        s.sendall(b"POST /_airlock/purge?pattern=*/bulk/* HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.3)  # the writer is on the purge's first slices (79 of them, a 20 ms flush each)
        al.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        al.proc.send_signal(signal.SIGTERM)  # the second: stop now, without the drain
        try:
            rc = al.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            al.proc.kill()
            fail("airlock did not stop within 60 s of SIGTERM with a purge running")
        s.close()
        log = al.logtext(None)
        if "AddressSanitizer" in log or "runtime error" in log:
            fail(f"a sanitizer report at the stop:\n{al.logtext()}")
        eq(rc, 0, f"airlock's exit status after SIGTERM during a purge:\n{al.logtext()}")
        if not re.search(r"waiting for 1 purge\(s\) to finish before stopping", log):
            fail(f"the log says the stop waits for the purge:\n{al.logtext()}")
        m = re.search(r"purge \*/bulk/\*: (\d+) entries deleted", log)
        eq(m and int(m.group(1)), N, "entries the purge deleted before the stop")

        al.start()
        up.add("/downloads/bulk/obj-7", b"fetched again", headers=[("Cache-Control", "max-age=3600")])
        eq(curl(al, "/downloads/bulk/obj-7").body, b"fetched again", "a purged entry is gone after the restart")
        eq(up.count("/downloads/bulk/obj-7"), 1, "the upstream is asked for it once")


if __name__ == "__main__":
    main(test)
