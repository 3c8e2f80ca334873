"""The status page, loaded in headless Chromium: the DOM shows each
upstream's state, the cache's use against its limit in human units (exact
bytes in a title), the hit ratio of the last minutes, what is mirrored
(agent versions, the Endpoint manifest's version and age, package count:
read off the worker's loop, so the test waits for the first reading) and
recent requests in true order across workers.  At 1366x768 (playwright-core
driving Debian's chromium) the four summary cards are visible without
scrolling; the browser's favicon request never reaches the registry route.
A screenshot is kept as a test artefact (build/test-artifacts/status.png)."""
import io, json, os, re, subprocess, sys, tempfile, zipfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Case, curl, eq, fail, main, wait_for
import node_clients

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
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("manifest.json", json.dumps({"manifest_version": "1.0.1622", "artifacts": {}}))
        M = "/downloads/endpoint/manifest/artifacts-8.13.4.zip"
        up.add(M, buf.getvalue(), headers=[("ETag", '"m"'), ("Last-Modified", "Tue, 14 May 2024 10:00:00 GMT")])
        up.add("/package/nginx/1.20.0/", b'{"name":"nginx","version":"1.20.0"}', headers=[("Cache-Control", "max-age=600")])
        curl(al, P)
        curl(al, P)
        curl(al, M)
        curl(al, "/package/nginx/1.20.0/")
        for i in range(8):  # spread over both workers: the page must still list them in true order
            curl(al, P)
        up.stop()
        curl(al, "/package/never-cached/1.0.0/")  # the registry upstream goes offline
        url = al.url("/_airlock/status")
        # what the cache holds is read off the worker's loop, once the page is asked for: wait for that reading
        wait_for(lambda: 'class="manifest-version">1.0.1622<' in curl(al, "/_airlock/status").body.decode(), 30,
                 "the Mirrored card read from the cache")
        p = chromium(url, "--dump-dom")
        dom = p.stdout
        if "<title>airlock status</title>" not in dom:
            fail(f"chromium did not render the page: rc={p.returncode} {p.stderr[-500:]}")
        rows = re.findall(r'<tr class="upstream (online|offline)"><td class="name">([^<]+)</td>', dom)
        states = {name: state for state, name in rows}
        eq(states.get("https://artifacts.elastic.co"), "online", "artifact registry row")
        eq(states.get("https://epr.elastic.co"), "offline", "package registry row")
        # the artifact, the .sha512 answer its integrity check stored, the manifest, the package document
        eq(re.search(r'<span id="cache-entries">(\d+)</span>', dom).group(1), "4", "cache entries in the DOM")
        eq(re.search(r'<span id="cache-max" data-bytes="(\d+)" title="(\d+) bytes">([^<]+)</span>', dom).groups(),
           (str(256 << 20), str(256 << 20), "256.0 MiB"), "cache limit in human units, exact bytes in the title")
        if P not in dom or ">hit<" not in dom or ">miss<" not in dom:
            fail("recent requests should list the artifact with its hit and miss")
        # (the inline icon's SVG namespace is a name, not something fetched)
        head = dom.split("<body>")[0].replace(url, "").replace("http://www.w3.org/2000/svg", "")
        if "http://" in head or "<script" in dom or 'src="http' in dom:
            fail("the page must not load external assets or scripts")
        art = os.path.join(os.path.dirname(os.environ.get("AIRLOCK_BIN", "build/airlock")), "test-artifacts")
        os.makedirs(art, exist_ok=True)
        shot = os.path.join(art, "status.png")
        if os.path.exists(shot):
            os.remove(shot)
        p = node_clients.run("status_page.js", [url, shot], {}, timeout=90)
        if p.returncode != 0:
            fail(f"playwright: {p.stderr[-2000:]}")
        page = json.loads(p.stdout)
        for card, box in page["boxes"].items():
            if box is None or box["bottom"] > 768 or box["right"] > 1366:
                fail(f"the {card} card is not visible without scrolling at 1366x768: {box}")
        if not re.fullmatch(r"\d+\.\d (KiB|MiB)", page["cacheBytes"]["text"]) or \
                not re.fullmatch(r"\d+ bytes", page["cacheBytes"]["title"]):
            fail(f"cache use in human units with exact bytes in the title: {page['cacheBytes']}")
        eq(page["cacheMax"]["text"], "256.0 MiB", "cache limit")
        if not re.fullmatch(r"\d+%", page["hitRatio"]["text"] or ""):
            fail(f"hit ratio of the last minutes: {page['hitRatio']}")
        if not re.fullmatch(r"\d+ s", page["uptime"]["text"]):
            fail(f"uptime in human units: {page['uptime']}")
        eq(page["manifestVersions"], ["1.0.1622"], "the Endpoint manifest's version")
        eq(page["packages"]["text"], "1", "package documents")
        offline = [u for u in page["upstreams"] if "offline" in u["cls"]]
        if not offline or not re.fullmatch(r"\d+ s", offline[0]["cells"][2]) or "UTC" not in offline[0]["titles"][2]:
            fail(f"an uplink's state age in human units, the exact time in a title: {page['upstreams']}")
        t = page["recent"]
        if len(t) < 12 or t != sorted(t, reverse=True) or len(set(t)) != len(t):
            fail(f"recent requests newest first, by sub-second time across workers: {t}")
        if not (page["icon"] or "").startswith("data:image/svg"):
            fail(f"the page carries its own icon: {page['icon']}")
        if any("favicon" in r for r in page["requests"]) or up.count("/favicon.ico") != 0:
            fail(f"the favicon request must not reach the registry: {page['requests']}")
        with open(shot, "rb") as f:
            eq(f.read(8), b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG")


if __name__ == "__main__":
    main(test)
