"""The status page, loaded in headless Chromium: the DOM shows each
upstream's state, the cache's use against its limit and recent requests; a
screenshot is kept as a test artefact (build/test-artifacts/status.png)."""
import os, re, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main

P = "/downloads/beats/osquerybeat/osquerybeat-8.13.4-linux-x86_64.tar.gz"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium(url, *extra):
    profile = tempfile.mkdtemp(prefix="airlock-chromium-")
    p = subprocess.run(["chromium", *FLAGS, f"--user-data-dir={profile}", *extra, url],
                       capture_output=True, text=True, timeout=60)
    return p


def test():
    with Case() as (up, al, tmp):
        up.add(P, os.urandom(70000), headers=[("ETag", '"o"')])
        curl(al, P)
        curl(al, P)
        up.stop()
        curl(al, "/package/never-cached/1.0.0/")  # the registry upstream goes offline
        url = al.url("/_airlock/status")
        p = chromium(url, "--dump-dom")
        dom = p.stdout
        if "<title>airlock status</title>" not in dom:
            fail(f"chromium did not render the page: rc={p.returncode} {p.stderr[-500:]}")
        rows = re.findall(r'<tr class="upstream (online|offline)"><td class="name">([^<]+)</td>', dom)
        states = {name: state for state, name in rows}
        eq(states.get("https://artifacts.elastic.co"), "online", "artifact registry row")
        eq(states.get("https://epr.elastic.co"), "offline", "package registry row")
        # the artifact and the .sha512 answer its integrity check stored
        eq(re.search(r'<span id="cache-entries">(\d+)</span>', dom).group(1), "2", "cache entries in the DOM")
        eq(re.search(r'<span id="cache-max">(\d+)</span>', dom).group(1), str(256 * 1024 * 1024), "cache limit in the DOM")
        if P not in dom or ">hit<" not in dom or ">miss<" not in dom:
            fail("recent requests should list the artifact with its hit and miss")
        if "http://" in dom.split("<body>")[0].replace(url, "") or "<script" in dom or 'src="http' in dom:
            fail("the page must not load external assets or scripts")
        art = os.path.join(os.path.dirname(os.environ.get("AIRLOCK_BIN", "build/airlock")), "test-artifacts")
        os.makedirs(art, exist_ok=True)
        shot = os.path.join(art, "status.png")
        if os.path.exists(shot):
            os.remove(shot)
        chromium(url, f"--screenshot={shot}", "--window-size=1200,900")
        if not os.path.exists(shot) or os.path.getsize(shot) < 5000:
            fail("no screenshot was taken")
        with open(shot, "rb") as f:
            eq(f.read(8), b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG")


if __name__ == "__main__":
    main(test)
