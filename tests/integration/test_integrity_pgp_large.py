"""A large signed artifact's OpenPGP check does not hold up the worker's other clients.

Agents upgrade by fetching the agent package (hundreds of MB), its .sha512
and its .asc (elastic-agent internal/pkg/agent/application/upgrade/artifact/
download/http/verifier.go, Verifier.Verify: download.VerifySHA512Hash, then
verifyAsc on <artifact>.asc).  With cache.verify_pgp airlock checks the .asc
against the whole body before admitting it, which means hashing every byte
again: about 0.7 ms per MB here.  While that ran on the worker's loop, every
client of the worker waited for it (a 256 MiB body: one hit took 169 ms, the
length of the check).  The check now runs on a thread of its own.

One worker, so the hits and the fill share it.  A client asks for a cached
2 KB document every 2 ms (in a process of its own, so this process's
threads serving the fake upstream do not delay it) while a 256 MiB signed
artifact is fetched, checked and admitted.  airlock logs when the check
ended and how long it took; the worker logs each hit as it finishes it.
Hits the worker finished while the check ran prove the check was not on
its loop: a loop busy hashing finishes nothing, however loaded the machine
(a busier machine only makes the check, and the window, longer).  No bound
on how long a hit may take, and none on how fast the check may be.  The
artifact is then a hit with the same bytes, and the ETag is the upstream's."""
import datetime, hashlib, os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, HitSampler, curl, eq, fail, gpg, main, pgp_keyring, pgp_sign, sha512_line

MB = 256


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        elastic = pgp_keyring(tmp, "elastic")
        pub = os.path.join(tmp, "GPG-KEY-elastic-agent")
        open(pub, "wb").write(gpg(elastic, "--armor", "--export"))
        body = os.urandom(MB << 20)
        path = "/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz"
        up.add(path, body, headers=[("ETag", '"agent-8.13.4"')])
        up.add(path + ".sha512", sha512_line(body, os.path.basename(path)))
        up.add(path + ".asc", pgp_sign(elastic, body))
        up.add("/downloads/small.txt", b"x" * 2000, headers=[("Cache-Control", "max-age=3600")])

        al = Airlock(tmp, up, workers=1, upstream_extra=f"  pgp_keys: [{pub}]\n")
        al.stop()
        cfg = open(al.config).read().replace("max_size: 256MiB", "max_size: 1GiB", 1).replace(
            "cache:\n", "cache:\n  verify_pgp: [\"https://artifacts.elastic.co/downloads/*.tar.gz\"]\n", 1)
        open(al.config, "w").write(cfg)
        al.start()
        try:
            for _ in range(2):
                curl(al, "/downloads/small.txt")
            hits = HitSampler(al, "/downloads/small.txt", 0.002)
            time.sleep(0.2)
            out = os.path.join(tmp, "agent.tar.gz")
            t0 = time.time()
            p = subprocess.run(["curl", "-s", "-o", out, "-w", "%{http_code}", "-D", "-",
                                f"http://127.0.0.1:{al.port}{path}"], capture_output=True, text=True, timeout=60)
            t1 = time.time()
            samples = hits.stop()
            eq(p.stdout.strip().endswith("200"), True, f"the artifact: {p.stdout[-200:]}")
            with open(out, "rb") as f:
                eq(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(body).hexdigest(), "the artifact's bytes")

            def stamp(line):  # the log's own clock: "2026-12-06T04:37:55.789Z level [sub] ..."
                return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
            log = al.logtext(tail=None).splitlines()
            done = [l for l in log if "OpenPGP signature verified with a pinned key" in l]
            eq(len(done), 1, "the check and its length are logged once")
            check_ms = int(re.search(r"\(\d+ bytes in (\d+) ms\)", done[0]).group(1))
            end = stamp(done[0])
            start = end - check_ms / 1000
            # strictly inside the check, with a millisecond of the log's rounding on each side
            inside = [l for l in log if "[access]" in l and '"GET /downloads/small.txt"' in l and
                      start + 0.002 < stamp(l) < end - 0.002]
            if any(s[2] != 200 or s[3] != 2000 for s in samples):
                fail(f"every hit is whole: {[s for s in samples if s[2] != 200 or s[3] != 2000][:3]}")
            during = [s for s in samples if t0 <= s[0] <= t1]
            worst = max((s[1] for s in during), default=0) * 1000
            print(f"check {check_ms} ms; {len(inside)} hits finished by the worker while it ran; "
                  f"{len(during)} hits during the transfer, worst {worst:.1f} ms")
            if not inside:
                fail(f"the worker finished no hit during the {check_ms} ms OpenPGP check: the check held its loop")

            r = curl(al, path, timeout=60)
            eq((r.status, r.header("ETag"), r.body == body), (200, '"agent-8.13.4"', True), "admitted as it came")
            if not r.header("Cache-Status").startswith("airlock; hit"):
                fail(f"a hit after admission: {r.header('Cache-Status')}")
            eq(up.count(path), 1, "fetched once")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
