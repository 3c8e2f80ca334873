"""A broken configuration fails at start with file, line, column and what is wrong."""
import os, sys, subprocess, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, eq, fail, main

CASES = [
    ("cache:\n  path: /tmp/x\n  max_sise: 1GiB\n", ":3:3: unknown key 'max_sise' in 'cache'"),
    ("listen: [\"127.0.0.1:8080\"]\nupstream:\n  connect_timeout: soon\n", ":3:20: upstream.connect_timeout: 'soon' is not a duration"),
    ("cache:\n  max_size: lots\n", ":2:13: cache.max_size: 'lots' is not a size"),
    ("routes:\n  - prefix: downloads\n    upstream: https://x\n", ":2:13: routes: prefix 'downloads' must start with /"),
    ("routes:\n  - prefix: /\n    upstream: ftp://x\n", ":3:15: routes: upstream 'ftp://x' must be http(s)://host[:port]"),
    ("routes:\n  - prefix: /m/\n    upstream: https://x\n    strip_prefix: maybe\n",
     ":4:19: routes: strip_prefix 'maybe' is not true or false"),
    ("listen: [\"nowhere\"]\n", ":1:10: listen: 'nowhere' is not address:port"),
    ("cache: [1, 2\n", ":2:1: did not find expected ',' or ']'"),
    ("bogus: 1\n", ":1:1: unknown key 'bogus'"),
]


def test():
    d = tempfile.mkdtemp()
    for i, (text, want) in enumerate(CASES):
        path = os.path.join(d, f"c{i}.yml")
        with open(path, "w") as f:
            f.write(text)
        for cmd in (["check-config", path], ["serve", "--config", path]):
            p = subprocess.run([AIRLOCK] + cmd, capture_output=True, text=True, timeout=10)
            eq(p.returncode, 2, f"exit code of {cmd[0]} on case {i}")
            if path + want not in p.stderr:
                fail(f"case {i}: stderr {p.stderr.strip()!r} should contain {path + want!r}")
    p = subprocess.run([AIRLOCK, "check-config"], capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, "the embedded default is valid")
    good = os.path.join(d, "good.yml")
    with open(good, "w") as f:
        f.write("listen: [\"127.0.0.1:9999\"]\ncache:\n  max_size: 1GiB\n  rules:\n    - {match: \"*.json\", ttl: 10m}\n"
                "routes:\n  - {prefix: /, upstream: \"https://epr.elastic.co\"}\n")
    p = subprocess.run([AIRLOCK, "check-config", good], capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, f"a valid file: {p.stderr}")
    # The example shipped for operators loads, and every key of `airlock help` appears in it.
    example = os.path.join(os.path.dirname(__file__), "..", "..", "dist", "airlock.yml")
    text = open(example).read()
    # As installed: dist/airlock.service's StateDirectory=airlock creates /var/lib/airlock before
    # ExecStartPre runs check-config; here a directory of the test stands in for it.
    state = os.path.join(d, "var-lib-airlock")
    os.makedirs(state)
    installed = os.path.join(d, "installed.yml")
    open(installed, "w").write(text.replace("/var/lib/airlock/", state + "/"))
    p = subprocess.run([AIRLOCK, "check-config", installed], capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, f"dist/airlock.yml: {p.stderr}")
    helptext = subprocess.run([AIRLOCK, "help"], capture_output=True, text=True, timeout=10).stdout
    for key in [l.split()[0] for l in helptext.split("Configuration keys")[1].splitlines()[1:]
                if l.startswith("  ") and l[2] != " "]:
        leaf = key.split(".")[-1]
        if leaf + ":" not in text:
            fail(f"dist/airlock.yml does not mention {key}")
    # The freshness rules it lists are exactly the defaults `airlock help` prints, in order.
    import re
    listed = re.findall(r'^    - \{match: "([^"]+)"(, immutable: true)?\}', text.split("  rules:")[1].split("\n  # - ")[0], re.M)
    defaults = re.findall(r"^ {33}(\S+)(  immutable)?$", helptext.split("Defaults:")[1], re.M)
    eq([(m, bool(i)) for m, i in listed], [(m, bool(i)) for m, i in defaults], "dist/airlock.yml rules vs the defaults")
    # Its routes are exactly the default routes `airlock help` prints, in order.
    routes = re.findall(r"^  - prefix: (\S+).*\n    upstream: (\S+)", text.split("\nroutes:\n")[1].split("\n\n")[0], re.M)
    helped = re.findall(r"^ {33}(/\S*) +(https?://\S+)", helptext.split("default routes:")[1].split("cache.rules")[0], re.M)
    eq(routes, helped, "dist/airlock.yml routes vs the default routes")


if __name__ == "__main__":
    main(test)
