"""Offline, an integration's detail page finds every registry file it reads
(issue 27, part 5).

Fleet's Integrations UI (elastic/kibana, x-pack/platform/plugins/shared/fleet/
public/applications/integrations/, read at 1f564c50 and 027ff216) reads,
for a package that is not installed, through Kibana's file route (the
server's getFile: ${registryUrl}/package/<name>/<version>/<relPath>):
- sections/epm/screens/detail/hooks/use_change_log.ts useChangelog:
  /package/<name>/<version>/changelog.yml (details' "View Changelog", settings);
- overview/details.tsx NoticeModal and LicenseModal: the document's notice
  and licensePath;
- overview/overview.tsx: a policy template's own readme before the package's;
- overview/readme.tsx handleImageUri: every README image whose destination is
  not http(s)://, through hooks/use_links.tsx toRelativeImage:
  /package/<name>/<version> + new URL(uri, 'http://example.com').pathname;
- icons and screenshots (toPackageImage), the policy templates' too.
Connected side: `airlock mirror packages`; then a signed export, an import on
the air-gapped side, and every one of those files is a 200 with the mirrored
bytes, with zero upstream contact.  Before this change changelog.yml, the
template readme and the README images were not mirrored: 504 offline."""
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AirGap, Case, cli, curl, eq, fail, main

V = "8.13.4"
N, PV = "nginx", "1.20.0"
BASE = f"/package/{N}/{PV}"

README = f"""# Nginx

![Overview dashboard](../img/nginx-overview.png)

The access log: ![access](./img/access%20log.png "Access").
An external badge: ![badge](https://img.shields.io/badge/x.svg) (the browser fetches it).

```
![not rendered](img/in-code.png)
```

![Logs][logs]

[logs]: <../img/logs view.png>
"""
TEMPLATE_README = "# Nginx logs\n\n![Template](../img/template-only.png)\n"


def test():
    with Case() as (up, al, tmp):
        al.stop()
        files = {}

        def put(path, body, ctype="application/octet-stream"):
            body = body if isinstance(body, bytes) else body.encode()
            up.add(path, body, headers=[("Content-Type", ctype), ("Cache-Control", "max-age=600")])
            files[path] = body

        doc = {
            "name": N, "version": PV, "title": "Nginx", "type": "integration", "release": "ga",
            "format_version": "3.0.0", "categories": ["web"], "conditions": {"kibana": {"version": "^8.13.0"}},
            "download": f"/epr/{N}/{N}-{PV}.zip", "path": BASE,
            "readme": f"{BASE}/docs/README.md", "notice": f"{BASE}/NOTICE.txt", "licensePath": f"{BASE}/LICENSE.txt",
            "source": {"license": "Elastic-2.0"},
            "icons": [{"src": "/img/logo.svg", "path": f"{BASE}/img/logo.svg"}],
            "screenshots": [{"src": "/img/nginx-overview.png", "title": "Overview"}],
            "policy_templates": [{"name": "nginx", "title": "Nginx logs", "readme": f"{BASE}/docs/nginx.md",
                                  "screenshots": [{"src": "/img/template-shot.png", "title": "T"}]}],
        }
        put(f"{BASE}/", json.dumps(doc), "application/json")
        put(f"/epr/{N}/{N}-{PV}.zip", b"PK" + os.urandom(5000), "application/zip")
        put(f"{BASE}/docs/README.md", README, "text/markdown")
        put(f"{BASE}/docs/nginx.md", TEMPLATE_README, "text/markdown")
        put(f"{BASE}/NOTICE.txt", "Elastic Nginx integration\nCopyright Elasticsearch B.V.\n", "text/plain")
        put(f"{BASE}/LICENSE.txt", "Elastic License 2.0\n", "text/plain")
        put(f"{BASE}/changelog.yml", '- version: "1.20.0"\n  changes:\n    - description: Fix.\n', "text/yaml")
        put(f"{BASE}/img/logo.svg", "<svg/>", "image/svg+xml")
        put(f"{BASE}/img/nginx-overview.png", os.urandom(3000), "image/png")  # a screenshot and a README image
        put(f"{BASE}/img/access%20log.png", os.urandom(2000), "image/png")
        put(f"{BASE}/img/logs%20view.png", os.urandom(2000), "image/png")
        put(f"{BASE}/img/template-only.png", os.urandom(2000), "image/png")
        put(f"{BASE}/img/template-shot.png", os.urandom(2000), "image/png")
        up.add(f"{BASE}/img/in-code.png", b"never asked for")
        up.add(f"/search?kibana.version={V}&prerelease=false", json.dumps([{k: doc[k] for k in ("name", "version", "path")}]),
               headers=[("Content-Type", "application/json")])
        for q in (f"/categories?kibana.version={V}&prerelease=false&include_policy_templates=true",
                  f"/categories?kibana.version={V}&prerelease=false"):
            up.add(q, '[{"id":"web","title":"Web","count":1}]', headers=[("Content-Type", "application/json")])

        p = cli(al.config, "mirror", "packages", "--kibana-version", V)
        if "missing 0, failed 0" not in p.stdout:
            fail(f"mirror packages: {p.stdout}\n{p.stderr}")
        # ui: logo, screenshot, template screenshot, template readme, readme, notice, licence, changelog (8);
        # README images not already there: access log, logs view, template-only (3)
        if "package files for Kibana's Integrations pages (icons, screenshots, docs): 11" not in p.stdout:
            fail(f"every file the detail page reads:\n{p.stdout}")
        eq(up.count(f"{BASE}/img/in-code.png"), 0, "an image in a code block is not rendered, not fetched")
        eq(up.count(f"{BASE}/img/nginx-overview.png"), 1, "a README image that is also a screenshot: fetched once")

        ag = AirGap(al, up)
        with ag as gap:
            for path, body in files.items():
                r = curl(gap, path)
                eq(r.status, 200, f"offline {path}: {r.header('Cache-Status')}")
                eq(r.body, body, f"offline body {path}")
            ag.untouched()


if __name__ == "__main__":
    main(test)
