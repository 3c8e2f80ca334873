"""Client authentication for the reverse proxy (issue 29 item 3).

A route with `auth: true` (or every route, with clients.auth_required)
admits a request only with credentials from clients.users (Basic, hashed by
`airlock passwd`) or clients.api_keys (`Authorization: ApiKey <key>`, stored
as `airlock passwd --api-key` hashes it): that is what Elastic Agent sends
to its download source when agent.download.auth is set (elastic-agent-libs
2238ac8b transport/httpcommon/httpcommon.go HTTPAuthorization.ToMap, put on
every request by headerRoundTripper; elastic-agent 07adab5b artifact/
config.go embeds those settings, download/fetch.go and verify.go use them).

- no or bad credentials: 401 with WWW-Authenticate Basic and ApiKey, and
  nothing reaches the upstream;
- good ones: the object, the upstream never sees the Authorization, the
  access log names the user (or the key's name) and never the secret;
- a route that does not ask, and /_airlock/health, stay open;
- a reload that removes a key refuses it at once."""
import base64, http.client, json, os, signal, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, curl, eq, fail, main, wait_for

P = "/downloads/beats/elastic-agent/elastic-agent-8.13.4-linux-x86_64.tar.gz.sha512"
BODY = b"0123abcd  elastic-agent-8.13.4-linux-x86_64.tar.gz\n"
Q = "/package/apache/1.0.0/"
KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="  # the shape of an Elasticsearch API key


def tool(*args, stdin=""):
    p = subprocess.run([AIRLOCK, *args], input=stdin + "\n", capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, f"airlock {' '.join(args)}: {p.stderr}")
    return p.stdout.strip()


def get(al, path, authz=None):
    """One GET as Elastic Agent's Go client makes it (the Authorization header set up front)."""
    c = http.client.HTTPConnection("127.0.0.1", al.port, timeout=10)
    try:
        c.request("GET", path, headers={"Authorization": authz} if authz else {})
        r = c.getresponse()
        return r.status, r.getheader("Cache-Status") or "", [v for k, v in r.getheaders()
                                                              if k.lower() == "www-authenticate"], r.read()
    finally:
        c.close()


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        up.add(P, BODY, headers=[("ETag", '"s"'), ("Cache-Control", "max-age=600")])
        up.add(Q, b'{"name":"apache"}', headers=[("Content-Type", "application/json")])
        pw_hash = tool("passwd", stdin="agent-s3cret")
        key_hash = tool("passwd", "--api-key", stdin=KEY)
        eq(key_hash.startswith("sha256$") and len(key_hash) == 71, True, f"API key hash {key_hash!r}")
        access = os.path.join(tmp, "access.log")
        clients = (f"clients:\n  users:\n    - {{name: agent, password_hash: \"{pw_hash}\"}}\n"
                   f"  api_keys:\n    - {{name: fleet-agents, key_hash: \"{key_hash}\"}}\n")
        al = Airlock(tmp, up, extra=clients)
        al.stop()
        base = open(al.config).read().replace(
            "  - prefix: /downloads/\n    upstream: https://artifacts.elastic.co\n",
            "  - prefix: /downloads/\n    upstream: https://artifacts.elastic.co\n    auth: true\n", 1).replace(
            "log:\n  level: debug\n", f"log:\n  level: debug\n  access: {access}\n", 1)
        if "auth: true" not in base:
            fail("the test's route was not found in the harness's configuration")
        open(al.config, "w").write(base)
        al.start()
        try:
            # Refused: nothing, a wrong password, a wrong key, a forward-proxy style header.
            for authz, what in ((None, "no credentials"), (basic("agent", "wrong"), "wrong password"),
                                (basic("nobody", "agent-s3cret"), "unknown user"),
                                ("ApiKey " + KEY[:-2], "wrong API key"), ("Bearer " + KEY, "another scheme")):
                st, cs, www, body = get(al, P, authz)
                eq(st, 401, what)
                eq(www, ['Basic realm="airlock", charset="UTF-8"', 'ApiKey realm="airlock"'], f"{what}: challenges")
                if BODY in body:
                    fail(f"{what}: the object leaked into the 401")
            eq(up.count(P), 0, "no refused request reached the upstream")
            # curl -u, as an operator would test it
            r = curl(al, P)
            eq(r.status, 401, "curl without -u")
            r = curl(al, P, extra=("-u", "agent:agent-s3cret"))
            eq((r.status, r.body), (200, BODY), "curl -u agent")
            seen = up.last_headers(P)
            eq("authorization" in seen, False, f"the upstream never sees the credentials: {sorted(seen)}")
            st, cs, www, body = get(al, P, "ApiKey " + KEY)
            eq((st, body), (200, BODY), "API key")
            if not cs.startswith("airlock; hit"):
                fail(f"the API-key request was a hit: {cs}")
            eq(up.count(P), 1, "one upstream fetch")
            # A route that does not ask, and airlock's own health, stay open.
            st, cs, www, body = get(al, Q)
            eq((st, body), (200, b'{"name":"apache"}'), "route without auth")
            eq("authorization" in up.last_headers(Q), False, "nothing added upstream on an open route")
            eq(get(al, "/_airlock/health")[0], 200, "health without credentials")

            # The access log names who, never the secret.
            lines = [json.loads(l) for l in open(access)]
            mine = [l for l in lines if l["url"]["original"] == P]
            users = [(l["http"]["response"]["status_code"], l.get("user", {}).get("name")) for l in mine]
            eq(users[-2:], [(200, "agent"), (200, "fleet-agents")], "access log names the user and the key")
            if any(s == 401 and u for s, u in users):
                fail(f"a refused request named a user: {users}")
            text = open(access).read() + al.logtext()
            for secret in ("agent-s3cret", KEY, KEY[:20], base64.b64encode(b"agent:agent-s3cret").decode()):
                if secret in text:
                    fail("a credential appeared in a log")

            # A reload that drops the key refuses it at once; the password still works.
            open(al.config, "w").write(base.replace(
                f"  api_keys:\n    - {{name: fleet-agents, key_hash: \"{key_hash}\"}}\n", ""))
            al.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in al.logtext(), 10, "the reload")
            eq(get(al, P, "ApiKey " + KEY)[0], 401, "removed API key, right after the reload")
            eq(get(al, P, basic("agent", "agent-s3cret"))[0], 200, "the user still")
        finally:
            al.stop()


if __name__ == "__main__":
    main(test)
