"""A thousand Elastic Agents upgrading at once, then a thousand Endpoint-like
manifest polls: the sizes sites have.

The agents are tests/go/fleet/fleet.go: Go's net/http as elastic-agent is,
each agent its own http.Client and Transport (one connection each, kept alive
for its own three requests, never shared), doing what elastic-agent's HTTP
upgrade source does (v9.5.2, abae0c4393b11bd6d50e37e935ea4125ff2baae0:
internal/pkg/agent/application/upgrade/artifact/download/http/downloader.go
Downloader.Download: the package, then its .sha512; http/verifier.go
Verifier.Verify: the package against the .sha512 line, then the .asc).

Asserted:
- every agent got 200 for all three files, a package byte-identical to the
  source that matches the .sha512 line, and the same .asc;
- the upstream saw exactly one request per file: the 999 agents that came in
  while the first fill ran joined it (the fill is paced to last ~2 s so they
  do), and airlock's own .sha512 check fetched the .sha512 that the agents got;
- airlock's anonymous memory stayed under 256 MB with 1000 connections on a
  1 MiB body: bodies are sent from the cache, so what grows with clients is
  per-connection state and socket-side buffers (tens of KiB each, ~64 MB at
  most for 1000), while a copy of the body per client would be 1000 MiB;
- no error or warning line in airlock's log (accept failures are warnings);
- a second wave of 1000 manifest polls with If-None-Match gets 304 from the
  cache (fresh by max-age) with no upstream request at all.

The package is 1 MiB, not the real ~400 MiB: 1000 agents move 1 GB through
airlock over loopback and hash it with SHA-512 in the Go client, which is
what a 2-core CI machine does in well under a minute; 4 MiB would be 4 GB.
The size does not change what is tested (one fill, 1000 readers of it).

airlock is started with the open-files soft limit Debian gives a login
(1024), hard limit unchanged: 1000 clients plus the cache and upstream need
more, and airlock raises its own soft limit to what max_connections (2000
here) needs.
No timing assertion: the times are printed, not checked."""
import hashlib, json, os, resource, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, eq, fail, go_fleet_cmd, main, sha512_line

N = 1000
NAME = "elastic-agent-9.5.2-linux-x86_64.tar.gz"
BASE = "/downloads/beats/elastic-agent"
PKG = f"{BASE}/{NAME}"
MANIFEST = "/downloads/endpoint/manifest/artifacts-9.5.2.zip"
ANON_BOUND_MB = 256
MAX_CONNECTIONS = 2000


def anon_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


def fleet(*args):
    # each request is bounded at 30 s (an agent then counts an error): the summary comes in time
    try:
        p = subprocess.run(go_fleet_cmd(N, *args, timeout="30s"), capture_output=True, text=True, timeout=45,
                           env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")})
    except subprocess.TimeoutExpired:
        fail(f"the Go fleet ({args[0]}) gave no summary within 45 s")
    if p.returncode != 0 or not p.stdout.strip():
        fail(f"the Go fleet exited {p.returncode}: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def no_complaints(al, when):
    bad = [ln for ln in al.logtext(tail=None).splitlines() if ln.split(" ", 2)[1:2] in (["error"], ["warn"])]
    if bad:
        fail(f"after {when}: {len(bad)} error/warning lines in airlock's log, first: {bad[:3]}")


def test():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # max_connections as an operator sizes it for this fleet: airlock needs it + 256 files and
    # says so at start when the hard limit is lower (which would fail the no-warning check)
    if hard != resource.RLIM_INFINITY and hard < MAX_CONNECTIONS + 256:
        print(f"the open-files hard limit is {hard}: 1000 clients need more; skipped")
        sys.exit(77)
    # airlock (and the fleet, whose Go runtime raises its own soft limit) inherit this
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    # as in test_memory_bound: under AddressSanitizer keep the quarantine of freed memory small
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
    body = os.urandom(1024 * 1024)
    asc = b"-----BEGIN PGP SIGNATURE-----\n\nfleet\n-----END PGP SIGNATURE-----\n"
    with Case(extra=f"max_connections: {MAX_CONNECTIONS}\n") as (up, al, tmp):
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        lim = open_files_limit(al.proc.pid)
        if lim != "unlimited" and int(lim) < MAX_CONNECTIONS + 256:
            fail(f"airlock, started with 1024 open files, runs with {lim}: max_connections {MAX_CONNECTIONS} "
                 f"needs {MAX_CONNECTIONS + 256}")
        # ~2 s to fill, so the fleet arrives while it runs
        up.add(PKG, body, headers=[("ETag", '"pkg"'), ("Content-Type", "application/gzip")], rate=512 * 1024)
        up.add(PKG + ".sha512", sha512_line(body, NAME), headers=[("ETag", '"sha"')])
        up.add(PKG + ".asc", asc, headers=[("ETag", '"asc"')])
        up.add(MANIFEST, b"PK manifest " * 200, headers=[("ETag", '"m-1"'), ("Cache-Control", "max-age=600"),
                                                          ("Content-Type", "application/zip")])
        peak = [anon_mb(al.proc.pid)]
        base = peak[0]
        done = threading.Event()

        fds = [0]

        def sample():
            while not done.wait(0.05):
                peak[0] = max(peak[0], anon_mb(al.proc.pid))
                try:
                    fds[0] = max(fds[0], len(os.listdir(f"/proc/{al.proc.pid}/fd")))
                except OSError:
                    pass
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            s = fleet("upgrade", al.url(BASE), NAME)
        finally:
            done.set()
            sampler.join(5)
        print("upgrade wave:", json.dumps(s))
        print(f"anonymous memory: {base:.1f} MB before, {peak[0]:.1f} MB at most during the wave; "
              f"{fds[0]} open files at most, limit {open_files_limit(al.proc.pid)}")
        eq((up.count(PKG), up.count(PKG + ".sha512"), up.count(PKG + ".asc")), (1, 1, 1),
           "upstream requests per file for 1000 agents")
        no_complaints(al, "the upgrade wave")
        eq((s["errors"], s["first_errors"]), (0, []), "agents' transport errors")
        eq(s["status"], {"package": {"200": N}, "sha512": {"200": N}, "asc": {"200": N}}, "statuses")
        eq(s["sha_mismatch"], 0, "packages that do not match their .sha512 line")
        eq(s["verified"], N, "agents that verified the package and got the .asc")
        eq(s["body_bytes"], N * len(body), "package bytes received")
        eq(s["asc_sha256"], {hashlib.sha256(asc).hexdigest(): N}, ".asc bodies")
        if peak[0] - base > ANON_BOUND_MB:
            fail(f"anonymous memory grew by {peak[0] - base:.1f} MB for {N} clients of a 1 MiB body")

        # the manifest in the cache, then 1000 Endpoints polling with the ETag they hold
        p = fleet("poll", al.url(MANIFEST), "")
        eq(p["status"], {"poll": {"200": N}}, "first manifest fetch")
        eq(up.count(MANIFEST), 1, "upstream requests for the manifest")
        before = up.count()
        p = fleet("poll", al.url(MANIFEST), '"m-1"')
        print("poll wave:", json.dumps(p))
        eq((p["errors"], p["first_errors"]), (0, []), "pollers' transport errors")
        eq(p["status"], {"poll": {"304": N}}, "manifest polls with If-None-Match")
        eq(p["body_bytes"], 0, "bytes in 304 answers")
        eq(up.count() - before, 0, "upstream requests during the poll wave")
        no_complaints(al, "the poll wave")


if __name__ == "__main__":
    main(test)
