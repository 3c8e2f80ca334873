"""The community's HTTP cache test suite (http-cache-tests 0.4.5, the suite behind cache-tests.fyi)
run against airlock as a reverse proxy, on loopback.

The suite's own server answers behind airlock; its configuration and state requests go to it
directly and every test request goes through airlock (tests/cache-tests/suite.mjs says why).
The bar comes from the peers' published results shipped in the package (results/index.mjs,
the entries of type rev-proxy: nginx, Squid, Traffic Server, httpd, Varnish, nuster): every
required test that at least three of them pass must pass here.  "Pass" is the suite's own
result (all its assertions held); a test whose verdict is "dependency failed" only because an
optional or check test it depends on is not met (airlock does not store a 500, so
status-500-stale cannot show more than that it is not reused) still passes on its own
assertions and counts.

The differences airlock keeps by design are listed below with the failure each one must
show, and in the README ("The community's cache tests"); a listed test that starts passing,
or fails some other way, fails this test, so the list cannot go stale."""
import json, os, re, shutil, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, fail, free_port, main

SUITE = os.path.join(os.path.dirname(__file__), "..", "cache-tests")
PEERS_NEEDED = 3

# test id -> (why airlock differs, what the suite then reports)
DIFFERENCES = {
    "other-authorization": (
        "client credentials are not forwarded: the upstream never sees Authorization, so a "
        "stored response was never made for a user and is served to every client",
        r"^Response 2 comes from cache$"),
    "conditional-etag-vary-headers": (
        "client headers are not forwarded, so a response that varies on one (Vary: Abc) is "
        "not stored and the second request is not conditional (the suite's server answers "
        "999, which airlock turns into 502)",
        r"^Response 2 status is 502, not 200$"),
    "headers-store-Content-Length": (
        "a body longer than its Content-Length is refused as untrustworthy framing, not cut",
        r"status is 502, not 200|no complete answer|Premature close"),
    "304-etag-update-response-Content-Length": (
        "a body longer than its Content-Length is refused as untrustworthy framing, not cut",
        r"status is 502, not 200|no complete answer|Premature close"),
    "headers-store-Transfer-Encoding": (
        "a response in a transfer coding airlock does not know is refused, not read to the close",
        r"status is 502, not 200|no complete answer|Premature close"),
    "invalidate-POST": ("only GET and HEAD are served; other methods get 405",
                        r"^Response 2 status is 405, not 200$"),
    "invalidate-PUT": ("only GET and HEAD are served; other methods get 405",
                       r"^Response 2 status is 405, not 200$"),
    "invalidate-DELETE": ("only GET and HEAD are served; other methods get 405",
                          r"^Response 2 status is 405, not 200$"),
}


def node(*args, out=subprocess.PIPE):
    return subprocess.Popen(["node", "--no-warnings", os.path.join(SUITE, "suite.mjs"), *args],
                            cwd=SUITE, stdout=out, stderr=subprocess.STDOUT if out != subprocess.PIPE
                            else subprocess.PIPE, text=True)


def test():
    if not os.path.exists(os.path.join(SUITE, "node_modules", "http-cache-tests", "results", "index.mjs")):
        fail("http-cache-tests is not installed in tests/cache-tests/node_modules: run bash .ci/deps")
    tmp = tempfile.mkdtemp(prefix="airlock-cachetests-")
    server = al = None
    try:
        # its log goes to a file: the server warns on stdout as it goes, and a pipe nobody reads fills
        slog = os.path.join(tmp, "server.log")
        server = node("serve", out=open(slog, "w"))
        m = None
        for _ in range(200):
            m = re.search(r"^listening (\d+)$", open(slog).read(), re.M)
            if m or server.poll() is not None:
                break
            time.sleep(0.05)
        if not m:
            fail(f"the suite's server did not start: {open(slog).read()[-2000:]}")
        sport = int(m.group(1))
        port = free_port()
        conf = os.path.join(tmp, "airlock.yml")
        with open(conf, "w") as f:
            f.write(f"""listen: ["127.0.0.1:{port}"]
workers: 2
cache:
  path: {tmp}/cache
  max_size: 64MiB
upstream:
  connect_timeout: 2s
  first_byte_timeout: 5s
  probe_interval: 200ms
  probe_max_interval: 1s
log:
  level: info
routes:
  - prefix: /
    upstream: http://127.0.0.1:{sport}
""")
        logf = open(os.path.join(tmp, "airlock.log"), "w")
        al = subprocess.Popen([AIRLOCK, "serve", "--config", conf], stdout=logf, stderr=logf, cwd=tmp)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if al.poll() is not None:
                    fail(f"airlock exited: {open(os.path.join(tmp, 'airlock.log')).read()[-2000:]}")
                time.sleep(0.05)
        t0 = time.time()
        client = node("run", f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sport}")
        out, err = client.communicate(timeout=85)
        if client.returncode != 0 or not out.strip():
            fail(f"the suite's client failed ({client.returncode}): {err[-3000:]}")
        res = json.loads(out)
        took = time.time() - t0
    finally:
        for p in (al, server):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    peers = [p["name"] for p in res["peers"] if p["type"] == "rev-proxy"]
    if len(peers) < PEERS_NEEDED:
        fail(f"the package lists {len(peers)} reverse-proxy peers, fewer than {PEERS_NEEDED}")
    tests = res["tests"]
    untested = [t["id"] for t in tests if t["verdict"] == "-"]
    if untested:
        fail(f"{len(untested)} tests have no result, e.g. {untested[:5]}")
    required = [t for t in tests if t["kind"] == "required"]
    judged = [t for t in required if t["verdict"] in ("✅", "⛔️")]
    bar = [t for t in required if sum(t["peers"][p] for p in peers) >= PEERS_NEEDED]

    def own_pass(t):
        # the suite's result is true: a pass, or a dependency-failed verdict with its own checks held
        return t["verdict"] == "✅" or (t["verdict"] == "⚪️" and t["detail"] == "")

    passed = [t for t in bar if own_pass(t)]
    dep_only = [t["id"] for t in passed if t["verdict"] != "✅"]
    problems, kept = [], []
    for t in bar:
        if own_pass(t):
            if t["id"] in DIFFERENCES:
                problems.append(f"{t['id']} now passes: take it off the list of differences (and the README)")
            continue
        if t["id"] not in DIFFERENCES:
            problems.append(f"{t['id']} ({sum(t['peers'][p] for p in peers)} peers pass it): "
                            f"{t['verdict']} {t['detail']}")
        elif not re.search(DIFFERENCES[t["id"]][1], t["detail"]):
            problems.append(f"{t['id']} fails otherwise than its listed difference: {t['detail']}")
        else:
            kept.append(t["id"])
    for i in DIFFERENCES:
        if i not in [t["id"] for t in bar]:
            problems.append(f"{i} is listed as a difference but is not in the bar any more")
    print(f"cache-tests: {len(tests)} tests run in {took:.1f}s against peers {', '.join(peers)}")
    print(f"required: {len(required)}; judged {len(judged)}, passed {sum(t['verdict'] == '✅' for t in judged)}")
    print(f"bar (required, passed by >= {PEERS_NEEDED} peers): {len(bar)}; passed {len(passed)} "
          f"({len(dep_only)} of them with an optional dependency not met), "
          f"differences by design {len(kept)}: {', '.join(kept)}")
    if problems:
        fail("required tests that the peers pass and airlock does not:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main(test)
