"""Offline package registry: with the registry unreachable (forced offline),
/search and /categories with query strings never cached as such are computed
from the cached /package/<name>/<version>/ documents, the way the registry
answers; checked against lists written by hand from the registry's rules,
through the reverse route and through the forward proxy with a Kibana-like
Node client."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, curl, eq, fail, main
import node_clients

DOCS = [
    {"name": "nginx", "version": "1.19.0", "title": "Nginx", "type": "integration", "format_version": "2.7.0",
     "categories": ["web", "observability"], "conditions": {"kibana": {"version": "^8.8.0"}},
     "download": "/epr/nginx/nginx-1.19.0.zip", "description": "Nginx logs"},
    {"name": "nginx", "version": "1.20.0", "title": "Nginx", "type": "integration", "format_version": "3.0.0",
     "categories": ["web", "observability"], "conditions": {"kibana": {"version": "^8.13.0"}},
     "download": "/epr/nginx/nginx-1.20.0.zip", "description": "Nginx logs"},
    {"name": "future", "version": "2.0.0", "title": "Only for 9.x", "type": "integration", "format_version": "3.1.0",
     "categories": ["web"], "conditions": {"kibana": {"version": "^9.0.0"}}},
    {"name": "shiny", "version": "0.3.0-preview1", "title": "Prerelease", "type": "integration", "format_version": "3.0.0",
     "categories": ["security"], "conditions": {"kibana": {"version": "^8.10.0"}}},
    {"name": "endpoint", "version": "8.13.0", "title": "Elastic Defend", "type": "integration", "format_version": "3.0.0",
     "categories": ["security"], "conditions": {"kibana": {"version": "^8.13.0"}, "elastic": {"capabilities": ["security"]}},
     "policy_templates": [{"name": "endpoint", "categories": ["edr_xdr"]}]},
]

# Kibana's query shapes, and what the registry's rules give for these documents (by hand).
CASES = [
    ("/search?category=&prerelease=false&kibana.version=8.13.4&capabilities=apm,observability,security&spec.min=1.0&spec.max=3.2",
     ["endpoint@8.13.0", "nginx@1.20.0"]),
    ("/search?category=&prerelease=false&kibana.version=8.13.4&capabilities=apm,observability&spec.min=1.0&spec.max=3.2",
     ["nginx@1.20.0"]),
    ("/search?package=nginx&prerelease=false&kibana.version=8.13.4", ["nginx@1.20.0"]),
    ("/search?package=nginx&prerelease=false&kibana.version=8.9.1", ["nginx@1.19.0"]),
    ("/search?prerelease=true&kibana.version=8.13.4", ["endpoint@8.13.0", "nginx@1.20.0", "shiny@0.3.0-preview1"]),
    ("/search?prerelease=false&kibana.version=9.1.0", ["future@2.0.0"]),
    # Packages.Less (packages/packages.go): by name, then by semver
    ("/search?package=nginx&all=true&prerelease=false", ["nginx@1.19.0", "nginx@1.20.0"]),
    ("/search?package=unknown&prerelease=false&kibana.version=8.13.4", []),
    ("/search?category=security&prerelease=false&kibana.version=8.13.4", ["endpoint@8.13.0"]),
]
CATEGORIES = "/categories?prerelease=false&include_policy_templates=true&kibana.version=8.13.4"
# categories.go getCategories with include_policy_templates: endpoint's own category counts again for
# its template, the template's edr_xdr counts for the template and once for the package; titles and
# parents from categories/categories.yml (getCategoriesOutput; web is observability's since #970).
WANT_CATEGORIES = [
    {"id": "edr_xdr", "title": "EDR/XDR", "count": 2, "parent_id": "security", "parent_title": "Security"},
    {"id": "observability", "title": "Observability", "count": 1},
    {"id": "security", "title": "Security", "count": 2},
    {"id": "web", "title": "Web Server", "count": 1, "parent_id": "observability", "parent_title": "Observability"}]


def listing(body):
    return [f"{p['name']}@{p['version']}" for p in json.loads(body)]


def test():
    with Case() as (up, al, tmp):
        for d in DOCS:
            path = f"/package/{d['name']}/{d['version']}/"
            up.add(path, json.dumps(d), headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=600")])
            eq(curl(al, path).status, 200, f"cache {path}")
        # one exact answer is cached online: it wins over computing
        exact = "/search?kibana.version=8.13.4"
        up.add(exact, b'[{"name":"from-upstream","version":"9.9.9"}]', headers=[("Cache-Control", "max-age=600")])
        curl(al, exact)
        al.stop()

        off = Airlock(tmp, up, offline=True)
        try:
            for q, want in CASES:
                r = curl(off, q, ["User-Agent: Kibana/8.13.4 node-fetch"])
                eq(r.status, 200, q)
                eq(listing(r.body), want, q)
                eq(r.header("Content-Type"), "application/json; charset=utf-8", f"{q} Content-Type")
                if "computed from 5 cached package documents" not in (r.header("Cache-Status") or ""):
                    fail(f"{q}: Cache-Status should say computed: {r.header('Cache-Status')!r}")
            item = json.loads(curl(off, CASES[2][0]).body)[0]
            for k in ("name", "title", "version", "description", "type", "download", "path", "conditions", "categories"):
                if k not in item:
                    fail(f"/search entries carry {k}: {item}")
            eq(item["path"], "/package/nginx/1.20.0", "path as the registry writes it")
            r = curl(off, CATEGORIES)
            eq(json.loads(r.body), WANT_CATEGORIES, "categories with policy templates")
            r = curl(off, exact)
            eq(listing(r.body), ["from-upstream@9.9.9"], "an exact cached answer is served as it is")
            r = curl(off, "/search?kibana.version=banana")
            eq((r.status, r.body), (400, b"invalid Kibana version 'banana': invalid semantic version\n"),
               "bad kibana.version: the registry's 400 (search.go newSearchFilterFromQuery, http.Error; "
               "Masterminds/semver v3.5.0's message)")
            r = curl(off, "/search?prerelease=foo")
            eq((r.status, r.body), (400, b"invalid 'prerelease' query param: 'foo'\n"), "bad prerelease")
            eq(curl(off, "/package/nginx/9.9.9/").status, 504, "uncached package document: 504 offline")
        finally:
            off.stop()

        # Kibana through the forward proxy (registry: true on the intercepted host).
        ca = os.path.join(tmp, "ca")
        subprocess.run([AIRLOCK, "ca", "init", ca], check=True, capture_output=True, timeout=30)
        fwd = Airlock(tmp, up, offline=True, extra=f"""forward:
  ca_cert: {ca}/ca.crt
  ca_key: {ca}/ca.key
  allow:
    - {{host: epr.elastic.co, mode: intercept, registry: true}}
""")
        try:
            urls = ["https://epr.elastic.co" + CASES[0][0], "https://epr.elastic.co" + CATEGORIES]
            p = node_clients.run("kibana_fetch.js", [f"http://127.0.0.1:{fwd.port}", *urls],
                                 {"NODE_EXTRA_CA_CERTS": f"{ca}/ca.crt"})
            if p.returncode != 0:
                fail(f"node client: {p.stderr}")
            lines = [json.loads(x) for x in p.stdout.splitlines()]
            eq(listing(lines[0]["body"]), CASES[0][1], "Kibana's /search through the forward proxy")
            eq(json.loads(lines[1]["body"]), WANT_CATEGORIES, "Kibana's /categories through the forward proxy")
        finally:
            fwd.stop()


if __name__ == "__main__":
    main(test)
