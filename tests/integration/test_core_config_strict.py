"""check-config is as strict as serve (issue 15).

dist/airlock.service runs `airlock check-config` as ExecStartPre, so
whatever it lets through and serve then refuses becomes a restart loop.
Each broken configuration below is refused by both, with the same message,
and the message points at the line of the key that is wrong (for a path:
the key that names it).  Nothing binds a port or opens the cache for
check-config; serve refuses before it listens."""
import os, socket, stat, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Pki, eq, fail, free_port, main

BASE = """listen: ["127.0.0.1:{port}"]
cache:
  path: {d}/cache
routes:
  - {prefix: /, upstream: "https://epr.elastic.co"}
"""


def cases(d, pki):
    garbage = os.path.join(d, "garbage.pem")
    open(garbage, "w").write("not a certificate\n")
    wkey = os.path.join(d, "world.key")
    open(wkey, "w").write(open(pki.key).read())
    os.chmod(wkey, 0o644)
    okey = os.path.join(d, "ok.key")
    open(okey, "w").write(open(pki.key).read())
    os.chmod(okey, 0o600)
    cakey = os.path.join(d, "ca.key")
    open(cakey, "w").write(open(pki.ca_key).read())
    os.chmod(cakey, 0o600)
    otherkey = os.path.join(d, "other.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", otherkey],
                   check=True, capture_output=True, timeout=30)
    os.chmod(otherkey, 0o600)
    afile = os.path.join(d, "a-file")
    open(afile, "w").write("x")
    os.makedirs(os.path.join(d, "logdir"), exist_ok=True)
    tls = lambda cert, key: 'listen: [{address: "127.0.0.1:{port}", tls: {cert: "%s", key: "%s"}}]\n' % (cert, key)
    fwd = lambda cert, key: (f"forward:\n  ca_cert: {cert}\n  ca_key: {key}\n"
                             "  allow:\n    - {host: epr.elastic.co, mode: intercept}\n")
    body = "cache:\n  path: {d}/cache\nroutes:\n  - {prefix: /, upstream: \"https://epr.elastic.co\"}\n"
    # (name, yaml, the key whose line the message names, what the message says)
    return [
        ("listen twice", 'listen: ["127.0.0.1:{port}", "127.0.0.1:{port}"]\n' + body, "listen", "is given twice"),
        ("top-level key twice", BASE + 'listen: ["127.0.0.1:1"]\n', None, "key 'listen' is given twice"),
        ("key twice in a section", BASE.replace("  path:", "  max_size: 1GiB\n  max_size: 2GiB\n  path:"),
         None, "key 'max_size' is given twice"),
        ("key twice in a route", BASE.replace("{prefix: /,", "{prefix: /, prefix: /x,"), None, "key 'prefix' is given twice"),
        ("key twice in upstream.resolve", BASE + 'upstream:\n  resolve:\n    "a:443": "127.0.0.1:1"\n    "a:443": "127.0.0.1:2"\n',
         None, "key 'a:443' is given twice"),
        ("TLS cert missing", tls(d + "/nope.crt", okey) + body, "cert:", "No such file or directory"),
        ("TLS key missing", tls(pki.crt, d + "/nope.key") + body, "key:", "No such file or directory"),
        ("TLS key readable by others", tls(pki.crt, wkey) + body, "key:", "let others read the key"),
        ("TLS cert not a certificate", tls(garbage, okey) + body, "key:", garbage),
        ("TLS key of another certificate", tls(pki.crt, otherkey) + body, "key:", otherkey),
        ("forward CA cert missing", BASE + fwd(d + "/nope-ca.crt", cakey), "ca_cert:", "No such file or directory"),
        ("forward CA key readable by others", BASE + fwd(pki.ca_crt, wkey), "ca_key:", "let others read the key"),
        ("forward CA key of another cert", BASE + fwd(pki.ca_crt, otherkey), "ca_key:", "does not belong"),
        ("access log directory missing", BASE + f"log:\n  access: {d}/no/such/dir/access.log\n", "access:", "does not exist"),
        ("access log is a directory", BASE + f"log:\n  access: {d}/logdir\n", "access:", "is a directory"),
        ("upstream.ca_file missing", BASE + f"upstream:\n  ca_file: {d}/no-ca.pem\n", "ca_file:", "No such file or directory"),
        ("upstream.ca_file not PEM", BASE + f"upstream:\n  ca_file: {garbage}\n", "ca_file:", "no PEM certificate"),
        ("cache.path is a file", BASE.replace("{d}/cache", afile), "path:", "is not a directory"),
        ("cache.path parent missing", BASE.replace("{d}/cache", "{d}/no/such/cache"), "path:", "does not exist"),
        ("unknown key", BASE + "cache_size: 1GiB\n", None, "unknown key 'cache_size'"),
        ("bad duration", BASE + "upstream:\n  connect_timeout: soon\n", None, "is not a duration"),
    ]


def test():
    d = tempfile.mkdtemp(prefix="airlock-strict-")
    pki = Pki(d)
    table = cases(d, pki)
    if len(table) < 15:
        fail("at least 15 broken configurations")
    for name, text, key, says in table:
        port = free_port()
        text = text.replace("{port}", str(port)).replace("{d}", d)
        path = os.path.join(d, "c.yml")
        open(path, "w").write(text)
        c = subprocess.run([AIRLOCK, "check-config", path], capture_output=True, text=True, timeout=20)
        if c.returncode == 0:
            fail(f"{name}: check-config accepted it:\n{text}")
        msg = c.stderr.strip().removeprefix("airlock: configuration error: ")
        if says not in msg:
            fail(f"{name}: check-config says {msg!r}, which should mention {says!r}")
        if key is not None:
            line = next(i for i, l in enumerate(text.splitlines(), 1) if key in l)
            if not msg.startswith(f"{path}:{line}:"):
                fail(f"{name}: the message should point at line {line} ({key}): {msg!r}")
        elif not msg.startswith(f"{path}:") or not msg.split(":")[1].isdigit():
            fail(f"{name}: the message should carry file:line:col: {msg!r}")
        p = subprocess.Popen([AIRLOCK, "serve", "--config", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=d)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            fail(f"{name}: serve started on a configuration check-config refused")
        if p.returncode == 0:
            fail(f"{name}: serve exited 0")
        if msg not in err:
            fail(f"{name}: serve's message differs from check-config's:\n  check-config: {msg}\n  serve: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            fail(f"{name}: something listens on the port after serve refused")
        except OSError:
            pass
    if os.path.exists(os.path.join(d, "cache")):
        fail("check-config or a refused serve created the cache")


if __name__ == "__main__":
    main(test)
