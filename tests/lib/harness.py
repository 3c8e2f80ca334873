"""Test harness: a fake upstream of our own and a running airlock.

The fake upstream runs inside the test process (threads), plain HTTP and
TLS on 127.0.0.1 with certificates from a CA minted for the test, and
serves fixtures shaped like Elastic's three hosts.  A test says what the
origin replies, drives airlock with real clients (curl, Node), and asserts
on what the client got and what the origin saw (`up.count(path)`).
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import http.server

AIRLOCK = os.environ.get("AIRLOCK_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "airlock")
HOSTS = ["epr.elastic.co", "artifacts.elastic.co", "artifacts.security.elastic.co", "ml-models.elastic.co",
         "kibana-knowledge-base-artifacts.elastic.co", "geoip.elastic.co", "storage.googleapis.com"]


def fail(msg):
    raise AssertionError(msg)


def eq(got, want, what=""):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


class Pki:
    """A throwaway CA and a server certificate for the Elastic host names."""

    def __init__(self, d):
        self.dir = d
        self.ca_key = os.path.join(d, "ca.key")
        self.ca_crt = os.path.join(d, "ca.crt")
        self.key = os.path.join(d, "server.key")
        self.crt = os.path.join(d, "server.crt")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", self.ca_key, "-out", self.ca_crt, "-days", "2",
            "-subj", "/CN=airlock test CA")
        csr = os.path.join(d, "server.csr")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.key, "-out", csr, "-subj", "/CN=epr.elastic.co")
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(
                [f"DNS:{h}" for h in HOSTS] + ["DNS:localhost", "IP:127.0.0.1"]) + "\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key,
            "-CAcreateserial", "-out", self.crt, "-days", "2", "-extfile", ext)


class Fixture:
    def __init__(self, body=b"", status=200, headers=None, delay=0.0, rate=0,
                 close_after=None, honour_conditional=True, chunked=False):
        self.body = body
        self.status = status
        self.headers = list(headers or [])   # [(name, value)], repeats allowed
        self.delay = delay                   # seconds before the head
        self.rate = rate                     # body bytes per second, 0 = at once
        self.close_after = close_after       # close the socket after this many body bytes
        self.honour_conditional = honour_conditional
        self.chunked = chunked               # Transfer-Encoding: chunked, no Content-Length

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


class FakeUpstream:
    """One origin, listening on plain HTTP and TLS; shared fixtures and counters."""

    def __init__(self, pki):
        self.pki = pki
        self.fixtures = {}
        self.counts = {}
        self.requests = []        # (method, path, headers dict)
        self.connections = 0
        self.lock = threading.Lock()
        self.mode = "normal"      # normal | blackhole | badtls | reset
        self.servers = []
        self.open_socks = []
        self.start()

    def add(self, path, body=b"", **kw):
        if isinstance(body, str):
            body = body.encode()
        self.fixtures[path] = Fixture(body, **kw)
        return self.fixtures[path]

    def count(self, path=None):
        with self.lock:
            if path is None:
                return sum(self.counts.values())
            return self.counts.get(path, 0)

    def last_headers(self, path):
        with self.lock:
            for m, p, h in reversed(self.requests):
                if p == path:
                    return h
        return None

    def start(self, port=0, tls_port=0):
        up = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_GET(self, head=False):
                with up.lock:
                    up.counts[self.path] = up.counts.get(self.path, 0) + 1
                    up.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                    mode = up.mode
                if mode == "blackhole":
                    time.sleep(3600)
                    return
                fx = up.fixtures.get(self.path)
                if fx is None:
                    fx = Fixture(b"not found\n", status=404, headers=[("Content-Type", "text/plain")])
                if fx.delay:
                    time.sleep(fx.delay)
                etag = fx.header("ETag")
                inm = self.headers.get("If-None-Match")
                if fx.honour_conditional and etag and inm and etag in [t.strip() for t in inm.split(",")]:
                    self.send_response_only(304)
                    self.send_header("Date", self.date_time_string())
                    for n, v in fx.headers:
                        if n.lower() in ("etag", "cache-control", "expires", "date", "last-modified"):
                            self.send_header(n, v)
                    self.end_headers()
                    return
                self.send_response_only(fx.status)
                has_date = any(n.lower() == "date" for n, _ in fx.headers)
                if not has_date:
                    self.send_header("Date", self.date_time_string())
                for n, v in fx.headers:
                    self.send_header(n, v)
                if fx.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(fx.body)))
                self.end_headers()
                if head:
                    return
                body = fx.body
                if fx.chunked:
                    try:
                        step = max(1, fx.rate // 20) if fx.rate else 1 << 20
                        for i in range(0, len(body), step):
                            part = body[i:i + step]
                            self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                            self.wfile.flush()
                            if fx.rate:
                                time.sleep(len(part) / fx.rate)
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                        self.close_connection = True
                    return
                limit = fx.close_after if fx.close_after is not None else len(body)
                sent = 0
                step = max(1, fx.rate // 20) if fx.rate else len(body) or 1
                try:
                    while sent < limit:
                        n = min(step, limit - sent)
                        self.wfile.write(body[sent:sent + n])
                        self.wfile.flush()
                        sent += n
                        if fx.rate:
                            time.sleep(n / fx.rate)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    self.close_connection = True
                    return
                if fx.close_after is not None:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                s, a = super().get_request()
                with up.lock:
                    up.connections += 1
                    up.open_socks.append(s)
                if up.mode == "reset":
                    s.close()
                    raise OSError("reset")
                return s, a

        class TlsServer(Server):
            def get_request(self):
                s, a = socketserver.TCPServer.get_request(self)
                with up.lock:
                    up.connections += 1
                if up.mode == "reset":
                    s.close()
                    raise OSError("reset")
                if up.mode == "badtls":
                    # Speak something that is not TLS: the handshake fails.
                    try:
                        s.sendall(b"HTTP/1.1 400 not tls\r\n\r\n")
                    except OSError:
                        pass
                    s.close()
                    raise OSError("badtls")
                s.settimeout(30)
                t = up.ctx.wrap_socket(s, server_side=True)   # detaches s: track t
                with up.lock:
                    up.open_socks.append(t)
                return t, a

        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.pki.crt, self.pki.key)
        self.plain = Server(("127.0.0.1", port), Handler)
        self.tls = TlsServer(("127.0.0.1", tls_port), Handler)
        self.port = self.plain.server_address[1]
        self.tls_port = self.tls.server_address[1]
        self.servers = [self.plain, self.tls]
        for s in self.servers:
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def drop_connections(self):
        """Cut every established connection (keep-alive ones included)."""
        with self.lock:
            socks, self.open_socks = self.open_socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_mode(self, mode):
        self.mode = mode
        self.drop_connections()

    def stop(self):
        """Close the listening sockets and cut connections: the port refuses."""
        for s in self.servers:
            s.shutdown()
            s.server_close()
        self.servers = []
        self.drop_connections()

    def restart(self):
        self.start(self.port, self.tls_port)


_DEFAULT_ROUTES = None


def default_routes():
    """The routes section of airlock's embedded default (`airlock default-config`): tests run
    the routes an operator gets, so a default route that is missing or wrong fails a test."""
    global _DEFAULT_ROUTES
    if _DEFAULT_ROUTES is None:
        text = subprocess.run([AIRLOCK, "default-config"], capture_output=True, text=True, timeout=10,
                              check=True).stdout
        _DEFAULT_ROUTES = "routes:\n" + text.split("\nroutes:\n", 1)[1]
        if not _DEFAULT_ROUTES.endswith("\n"):
            _DEFAULT_ROUTES += "\n"
    return _DEFAULT_ROUTES


class Airlock:
    """airlock started on a config written for the test, in its own directory."""

    def __init__(self, tmp, up, extra="", offline=False, workers=2, args=(), upstream_extra="",
                 resolve_extra=None, listen_tls=None, resolve_hosts=True, cache_extra=""):
        self.tmp = tmp
        self.up = up
        self.port = free_port()
        self.cache = os.path.join(tmp, "cache")
        self.config = os.path.join(tmp, "airlock.yml")
        self.log = os.path.join(tmp, "airlock.log")
        self.args = list(args)
        resolve = "\n".join([f'    "{h}:443": "127.0.0.1:{up.tls_port}"' for h in (HOSTS if resolve_hosts else [])] +
                            [f'    "{k}": "{v}"' for k, v in (resolve_extra or {}).items()]) or "    {}"
        listen = f'["127.0.0.1:{self.port}"]'
        if listen_tls:
            cert, key, minv = listen_tls
            listen = f'[{{address: "127.0.0.1:{self.port}", tls: {{cert: "{cert}", key: "{key}", min_version: "{minv}"}}}}]'
        with open(self.config, "w") as f:
            f.write(f"""listen: {listen}
workers: {workers}
cache:
  path: {self.cache}
  max_size: 256MiB
{cache_extra}upstream:
  ca_file: {up.pki.ca_crt}
  connect_timeout: 2s
  first_byte_timeout: 2s
  idle_timeout: 5s
  probe_interval: 500ms
  probe_max_interval: 1s
  offline: {"true" if offline else "false"}
{upstream_extra}  resolve:
{resolve}
log:
  level: debug
{default_routes()}{extra}""")
        self.proc = None
        self.start()

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            fail("airlock is already running: a second one would share its port (SO_REUSEPORT) and outlive the test")
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen([AIRLOCK, "serve", "--config", self.config] + self.args,
                                     stdout=self.logf, stderr=self.logf, cwd=self.tmp)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"airlock exited with {self.proc.returncode}:\n{self.logtext()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        fail("airlock did not start listening")

    def stop(self, sig=signal.SIGTERM, strict=True):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if strict:
                    fail("airlock did not stop within 10s of SIGTERM")
        self.logf.close()

    def logtext(self, tail=6000):
        """The log's last tail characters (for failure messages), or all of it with tail=None
        (for a test that reads lines: a cut tail starts mid-line)."""
        try:
            with open(self.log) as f:
                text = f.read()
            return text if tail is None else text[-tail:]
        except OSError:
            return ""

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def health(self):
        r = curl(self, "/_airlock/health")
        return json.loads(r.body)


class Response:
    def __init__(self, status, headers, body, rc=0, stderr=""):
        self.status = status
        self.headers = headers      # [(name, value)] in order, as received
        self.body = body
        self.rc = rc
        self.stderr = stderr

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def raw_header_lines(self, name):
        return [f"{n}: {v}" for n, v in self.headers if n.lower() == name.lower()]


def parse_head(raw):
    lines = raw.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        n, _, v = ln.decode("latin-1").partition(":")
        headers.append((n, v.strip()))
    return status, headers


def curl(al, path, headers=(), method=None, timeout=20, extra=()):
    """GET (or method) through airlock with the real curl; returns the last response."""
    d = tempfile.mkdtemp()
    hfile, bfile = os.path.join(d, "h"), os.path.join(d, "b")
    cmd = ["curl", "-sS", "--noproxy", "*", "-o", bfile, "-D", hfile, "--max-time", str(timeout)]
    for h in headers:
        cmd += ["-H", h]
    if method == "HEAD":
        cmd += ["-I"]
    elif method:
        cmd += ["-X", method]
    cmd += list(extra)
    cmd.append(al.url(path) if not path.startswith("http") else path)
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
    raw = open(hfile, "rb").read() if os.path.exists(hfile) else b""
    body = open(bfile, "rb").read() if os.path.exists(bfile) else b""
    shutil.rmtree(d, ignore_errors=True)
    heads = [h for h in raw.split(b"\r\n\r\n") if h.startswith(b"HTTP/")]
    if not heads:
        return Response(0, [], body, p.returncode, p.stderr.decode())
    status, hdrs = parse_head(heads[-1])
    return Response(status, hdrs, body, p.returncode, p.stderr.decode())


def raw_request(al, data, timeout=5):
    """Send raw bytes, return everything airlock answers until it closes or times out."""
    s = socket.create_connection(("127.0.0.1", al.port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    s.close()
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail(f"timed out after {timeout}s waiting for {what}")


class ResponseReader:
    """Content-Length responses read off a stream: a subclass's more() appends what arrives to
    self.buf (and fails on an early close)."""
    buf = b""

    def response(self, pause=0.0):
        """one Content-Length response: (status, headers text, body); pause after the head"""
        while b"\r\n\r\n" not in self.buf:
            self.more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        n = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:"))
        if pause:
            time.sleep(pause)  # the client stops reading: airlock's socket fills up
        while len(self.buf) < n:
            self.more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return lines[0][9:12], "\r\n".join(lines[1:]), body


def slow_disk(ms, seed=False):
    """airlock (and the clients, which never flush) on a disk whose every flush sleeps ms
    (tests/tools/slowsync.c, preloaded; ASan is told the preload comes first).  With seed, also
    the path of tests/tools/store_seed.c.  Both come from ctest's environment."""
    so, tool = os.environ.get("SLOWSYNC_SO"), os.environ.get("STORE_SEED")
    if not so or (seed and not tool):
        print("FAIL SLOWSYNC_SO" + (" or STORE_SEED" if seed else "") + " is not set (the test runs under ctest)")
        sys.exit(1)
    os.environ["LD_PRELOAD"] = so
    os.environ["SLOWSYNC_MS"] = str(ms)
    os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return tool


def seed_store(tool, al, n, prefix):
    """n small entries under prefix (URLs prefix0 .. prefixN-1) written straight into al's cache,
    with airlock stopped (tests/tools/store_seed.c: 20,000 in under a second), not on the slow disk."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    out = subprocess.run([tool, al.cache, str(n), prefix], env=env, capture_output=True, text=True, timeout=120)
    eq((out.returncode, out.stdout), (0, f"seeded {n}\n"), f"seeding: {out.stderr}")


# What the sanitizer builds (.ci/test: ASan+UBSan, halt on error) print into airlock's log before it
# aborts or, for leaks, exits: without this a report showed only as a client's failure, or not at all
# when it came at the stop.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ")


def sanitizer_check(log):
    for mark in SANITIZER_MARKS:
        i = log.find(mark)
        if i >= 0:
            start = log.rfind("\n", 0, max(0, i - 200)) + 1
            fail(f"a sanitizer report in airlock's log:\n{log[start:start + 4000]}")


class Case:
    """with Case() as (up, al, tmp): ...  -- a fake upstream and airlock, torn down after."""

    def __init__(self, **kw):
        self.kw = kw

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="airlock-test-")
        self.pki = Pki(self.tmp)
        self.up = FakeUpstream(self.pki)
        self.al = Airlock(self.tmp, self.up, **self.kw)
        return self.up, self.al, self.tmp

    def __exit__(self, et, ev, tb):
        self.al.stop(strict=et is None)  # do not hide the failure already under way
        if et is not None:
            sys.stderr.write("---- airlock log (tail) ----\n" + self.al.logtext() + "\n")
        else:
            sanitizer_check(self.al.logtext(None))
        self.up.stop() if self.up.servers else None
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


_HIT_LOOP = r"""
import http.client, json, os, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
out = []
while not os.path.exists(sys.argv[4]):
    t = time.time()
    c.request("GET", sys.argv[2])
    r = c.getresponse()
    b = r.read()
    out.append((t, time.time() - t, r.status, len(b)))
    time.sleep(float(sys.argv[3]))
print(json.dumps(out))
"""


class HitSampler:
    """A keep-alive client in a process of its own (so that the test's threads, the fake
    upstream's among them, cannot delay it) asking airlock for path every interval
    seconds until stop(), which returns [(start time, seconds taken, status, body bytes)]."""

    def __init__(self, al, path, interval):
        self.stop_file = os.path.join(al.tmp, f"hits-{time.time_ns()}.stop")
        self.proc = subprocess.Popen([sys.executable, "-c", _HIT_LOOP, str(al.port), path, str(interval),
                                      self.stop_file], stdout=subprocess.PIPE, text=True)

    def stop(self):
        open(self.stop_file, "w").close()
        return json.loads(self.proc.communicate(timeout=30)[0])


def sha512_line(data, name):
    return f"{hashlib.sha512(data).hexdigest()}  {name}\n".encode()


def main(fn):
    """Run one test function with a time bound; print a closing line."""
    def alarm(*a):
        raise AssertionError("test exceeded its 100s bound")
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(100)
    t0 = time.time()
    try:
        fn()
    except AssertionError as e:
        print(f"FAIL {fn.__module__}: {e}")
        sys.exit(1)
    print(f"ok ({time.time() - t0:.2f}s)")


class RawUpstream:
    """A plain-HTTP origin that answers each path with canned raw bytes, for
    responses no well-behaved server would send.  responses[path] is bytes,
    or a callable(socket) that does the sending itself."""

    def __init__(self):
        self.responses = {}
        self.counts = {}
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                b = c.recv(4096)
                if not b:
                    return
                data += b
            path = data.split(b" ")[1].decode()
            with self.lock:
                self.counts[path] = self.counts.get(path, 0) + 1
            r = self.responses.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            if callable(r):
                r(c)
            else:
                c.sendall(r)
                time.sleep(0.2)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.running = False
        self.sock.close()


GO_CLIENT = os.path.join(os.path.dirname(os.path.abspath(AIRLOCK)), "go-client")


def _go_build(src, out):
    """Build one Go program (standard library only, offline) into out, once per build directory."""
    import fcntl
    with open(out + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            env = dict(os.environ, GOCACHE=GO_CLIENT + ".cache", GOPATH=GO_CLIENT + ".path",
                       GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0")
            p = subprocess.run(["go", "build", "-o", out + ".tmp", src], capture_output=True,
                               text=True, timeout=300, env=env)
            if p.returncode != 0:
                fail(f"building {os.path.basename(src)}: {p.stderr}")
            os.replace(out + ".tmp", out)


def go_fleet_cmd(n, mode, *args, timeout="30s"):
    """The command line of tests/go/fleet/fleet.go (built if needed): n Elastic Agents at once
    on Go's net/http, each with its own client and each request bounded by timeout; it prints
    one JSON summary."""
    out = os.path.join(os.path.dirname(GO_CLIENT), "go-fleet")
    _go_build(os.path.join(os.path.dirname(__file__), "..", "go", "fleet", "fleet.go"), out)
    return [out, "-n", str(n), "-timeout", timeout, mode] + [str(a) for a in args]


def go_client(url, proxy=None, cacert=None, etag=None, timeout=40):
    """One GET with Go's net/http (tests/go/client.go, built once per build
    directory), as elastic-agent, fleet-server and Endpoint make it.
    Returns the dict it prints: status, status_text, etag, sha256, len, err."""
    cmd, env = go_client_cmd(url, proxy, cacert, etag)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return json.loads(p.stdout)


def go_client_cmd(url, proxy=None, cacert=None, etag=None, extra=()):
    """The Go client's command line and environment (building it if needed), for a
    test that drives it itself (-hold, -rcvbuf)."""
    _go_build(os.path.join(os.path.dirname(__file__), "..", "go", "client.go"), GO_CLIENT)
    cmd = [GO_CLIENT]
    if proxy:
        cmd += ["-proxy", proxy]
    if cacert:
        cmd += ["-cacert", cacert]
    if etag:
        cmd += ["-etag", etag]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return cmd + list(extra) + [url], env


def forward_section(tmp, hosts, users=None):
    """A `forward:` section: airlock's CA made with `airlock ca init` in tmp/ca, the hosts
    intercepted, and proxy users {name: password} hashed with `airlock passwd`.
    Returns (yaml text, CA directory)."""
    ca = os.path.join(tmp, "ca")
    subprocess.run([AIRLOCK, "ca", "init", ca], check=True, capture_output=True, timeout=30)
    text = f"forward:\n  ca_cert: {ca}/ca.crt\n  ca_key: {ca}/ca.key\n  allow:\n"
    text += "".join(f"    - {{host: {h}, mode: intercept}}\n" for h in hosts)
    if users:
        text += "  users:\n"
        for name, pw in users.items():
            h = subprocess.run([AIRLOCK, "passwd"], input=pw + "\n", capture_output=True, text=True,
                               timeout=10).stdout.strip()
            text += f'    - {{name: {name}, password_hash: "{h}"}}\n'
    return text, ca


def gpg(home, *args):
    """gpg in its own home directory, no agent prompts; returns stdout (bytes)."""
    p = subprocess.run(["gpg", "--batch", "--homedir", home, "--passphrase", "", "--pinentry-mode", "loopback", *args],
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        fail(f"gpg {' '.join(args)}: {p.stderr.decode()}")
    return p.stdout


def pgp_keyring(tmp, name):
    """A new Ed25519 signing key in tmp/name (a gpg home), as Elastic's release key signs."""
    home = os.path.join(tmp, name)
    os.makedirs(home, mode=0o700)
    gpg(home, "--quick-gen-key", f"{name} <{name}@example.org>", "ed25519", "sign", "never")
    return home


def pgp_sign(home, body):
    """An armored detached signature of body, as Elastic publishes URL.asc."""
    d = tempfile.mkdtemp()
    f = os.path.join(d, "body")
    with open(f, "wb") as fh:
        fh.write(body)
    gpg(home, "--armor", "--detach-sign", "--output", f + ".asc", f)
    with open(f + ".asc", "rb") as fh:
        sig = fh.read()
    shutil.rmtree(d, ignore_errors=True)
    return sig


def cli(cfg, *args, ok=True, env=None, timeout=120):
    """`airlock ARGS --config CFG` (CFG a config file, or an Airlock: its config), with env's variables added
    to the environment; fails the test on a non-zero exit unless ok=False."""
    config = getattr(cfg, "config", cfg)
    p = subprocess.run([AIRLOCK, *args, "--config", config], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **env) if env else None)
    if ok and p.returncode != 0:
        fail(f"airlock {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def bad_plan(cfg, tmp, text, want):
    """`airlock mirror --plan` of a plan file holding text: refused with exit 2 and want in its error (a want that
    starts with ':' follows the file's path: file:line:column)."""
    bad = os.path.join(tmp, "bad.yml")
    open(bad, "w").write(text)
    p = cli(cfg, "mirror", "--plan", bad, ok=False)
    eq(p.returncode, 2, f"a bad plan {text!r}: {p.stderr}")
    if want not in p.stderr or (want.startswith(":") and bad + want not in p.stderr):
        fail(f"plan {text!r}: want {want!r} in {p.stderr!r}")


def entries(cfg, cols=(0, 1, 4, 5)):
    """Every cached entry as `airlock ls` lists it, sorted, each the tuple of its columns cols: by default
    (status, size, etag, url), what two caches holding the same must agree on (2 is the age, 3 pinned)."""
    lines = cli(cfg, "ls").stdout.strip().splitlines()[:-1]
    return sorted(tuple(l.split()[i] for i in cols) for l in lines)


def beat_artifact(up, name, body, etag, version):
    """Publish a Beat's linux-x86_64 tar.gz on up with ETag etag, and its .sha512 (ETag etag + "-sha");
    returns its URL at artifacts.elastic.co."""
    path = f"/downloads/beats/{name}/{name}-{version}-linux-x86_64.tar.gz"
    up.add(path, body, headers=[("ETag", etag)])
    up.add(path + ".sha512", sha512_line(body, os.path.basename(path)), headers=[("ETag", etag + "-sha")])
    return "https://artifacts.elastic.co" + path


def mirrored_beats(up, cfg, version, names, size):
    """Publish each Beat of names (linux-x86_64 tar.gz of size random bytes, ETag "NAME", its .sha512 ETag
    "NAME-s") on up and `airlock mirror artifacts --only` them into cfg's cache; returns {name: body}."""
    bodies = {}
    for name in names:
        body = os.urandom(size)
        path = f"/downloads/beats/{name}/{name}-{version}-linux-x86_64.tar.gz"
        up.add(path, body, headers=[("ETag", f'"{name}"')])
        up.add(path + ".sha512", sha512_line(body, os.path.basename(path)), headers=[("ETag", f'"{name}-s"')])
        bodies[name] = body
    cli(cfg, "mirror", "artifacts", "--version", version, "--arch", "linux-x86_64", "--format", "tar.gz",
        "--only", ",".join(names))
    return bodies


# The LD_PRELOAD hook (tests/lib/bundle_hook.c) the import tests stop or kill `airlock import` with.
BUNDLE_HOOK = os.environ.get("AL_BUNDLE_HOOK") or os.path.join(os.path.dirname(os.path.abspath(AIRLOCK)), "tests",
                                                              "libal_bundle_hook.so")


def hooked(bundle, at, passno, action, log):
    """The environment that makes the hook take action when import's read of bundle passes offset at on
    pass passno, logging to log."""
    return {"LD_PRELOAD": BUNDLE_HOOK, "AL_HOOK_FILE": bundle, "AL_HOOK_AT": str(at), "AL_HOOK_PASS": str(passno),
            "AL_HOOK_ACTION": action, "AL_HOOK_LOG": log, "ASAN_OPTIONS": "verify_asan_link_order=0:" +
            os.environ.get("ASAN_OPTIONS", "")}


class AirGap:
    """with AirGap(al, up) as gap: the whole air-gap path from a connected cache: a key pair
    (airlock keygen), a signed export of al's cache, an import with --trust into a fresh cache,
    and an airlock on it forced offline (upstream.offline: true), started.  The test then
    drives its client against gap and checks up.count()/up.connections did not move."""

    def __init__(self, al, up, **kw):
        self.al, self.up, self.kw = al, up, kw

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="airlock-gap-")
        keys = os.path.join(self.tmp, "keys")
        subprocess.run([AIRLOCK, "keygen", keys], capture_output=True, timeout=30, check=True)
        bundle = os.path.join(self.tmp, "mirror.airlock")
        out = cli(self.al.config, "export", bundle, "--sign", os.path.join(keys, "bundle.key")).stdout
        if "exported" not in out:
            fail(f"export: {out}")
        self.gap = Airlock(self.tmp, self.up, offline=True, **self.kw)
        self.gap.stop()
        out = cli(self.gap.config, "import", bundle, "--trust", os.path.join(keys, "bundle.pub")).stdout
        if "rejected 0" not in out:
            fail(f"import: {out}")
        self.gap.start()
        self.count, self.conns = self.up.count(), self.up.connections
        return self.gap

    def __exit__(self, et, ev, tb):
        self.gap.stop(strict=et is None)
        if et is not None:
            sys.stderr.write("---- air-gapped airlock log (tail) ----\n" + self.gap.logtext() + "\n")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def untouched(self):
        """The upstream saw nothing since the import."""
        eq(self.up.count(), self.count, "zero upstream requests on the air-gapped side")
        eq(self.up.connections, self.conns, "zero upstream connections on the air-gapped side")
