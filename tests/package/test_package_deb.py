"""The Debian package as an operator gets it: built with dpkg-buildpackage from a copy of this
tree, lintian-clean, installed with `apt-get install ./airlock_*.deb` into a fresh Debian 12 root
made by mmdebstrap, run there the packaged way, upgraded, removed and purged.

Label `package` (not in the integration run): it builds the package (~30 s), and mmdebstrap
fetches Debian 12 from deb.debian.org the first time (~2 min; the .debs are kept in
$AIRLOCK_PKG_CACHE, default ~/.cache/airlock-package-test, so a rerun only reads the package
lists).  Needs root (mmdebstrap's root mode, chroot, unshare), which CI has.

The root gets airlock's dependencies from mmdebstrap (read from the built package's Depends and
Recommends) plus systemd and man-db (so `systemd-analyze verify` runs inside it against what is
installed there, the unit's man:airlock(1) included); airlock itself arrives with apt, which would fetch anything the list missed.
"""
import json, os, pwd, shutil, signal, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import eq, fail, free_port, wait_for

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.environ.get("AIRLOCK_PKG_CACHE", os.path.expanduser("~/.cache/airlock-package-test"))
MIRROR = os.environ.get("AIRLOCK_PKG_MIRROR", "http://deb.debian.org/debian")
BOUND = 540  # seconds; ctest's TIMEOUT is 600


def run(cmd, what, timeout=300, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        fail(f"{what}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def in_root(root, cmd, what, timeout=120):
    """cmd inside root, with its own /proc, in a private mount namespace (nothing to unmount)."""
    return run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c",
                'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', root] + cmd, what, timeout)


def copy_tree(dst):
    """This tree as committed plus changes not yet committed, without build output."""
    if os.path.isdir(os.path.join(SRC, ".git")) or os.path.isfile(os.path.join(SRC, ".git")):
        files = run(["git", "-C", SRC, "ls-files", "-co", "--exclude-standard", "-z"], "git ls-files")
        names = [f for f in files.split("\0") if f and os.path.lexists(os.path.join(SRC, f))]
        os.makedirs(dst)
        subprocess.run(["tar", "-C", SRC, "-cf", "-", "--null", "-T", "-"], input="\0".join(names),
                       stdout=open(dst + ".tar", "wb"), text=True, check=True)
        run(["tar", "-C", dst, "-xf", dst + ".tar"], "untar")
    else:
        shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("build*", "obj-*", ".git"))


def deps_of(deb):
    """Package names from the .deb's Depends and Recommends (first alternative, no versions)."""
    names = []
    for field in ("Depends", "Recommends"):
        value = run(["dpkg-deb", "-f", deb, field], "dpkg-deb -f").strip()
        for dep in filter(None, (d.strip() for d in value.split(","))):
            names.append(dep.split("|")[0].split("(")[0].strip())
    return names


def snapshot(root):
    """Every path in root with its owner, except what package managers keep for themselves."""
    skip = ("proc", "dev", "sys", "run", "tmp", "var/cache", "var/lib/apt", "var/lib/dpkg", "var/log/apt",
            "var/log/dpkg.log", "var/log/alternatives.log", "etc/ld.so.cache")
    out = {}
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        if rel != "." and rel.startswith(skip):
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(top, n)
            r = os.path.relpath(p, root)
            if r.startswith(skip):
                continue
            st = os.lstat(p)
            out[r] = (st.st_uid, st.st_gid, st.st_mode)
    return out


def airlock_pids(root):
    """The airlock processes whose root directory is root."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root") == root and open(f"/proc/{pid}/comm").read().strip() == "airlock":
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def serve(root, port):
    """`airlock serve` with the packaged configuration as the airlock user, as the unit runs it.
    AIRLOCK_ADDRESS moves the listener off the packaged 127.0.0.1:8080, which may be taken here."""
    env = dict(os.environ, AIRLOCK_ADDRESS=f"127.0.0.1:{port}")
    return subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM", "sh", "-c",
         'mount -t proc proc "$0/proc" && exec chroot "$0" setpriv --reuid=airlock --regid=airlock '
         '--init-groups /usr/bin/airlock serve --config /etc/airlock/airlock.yml', root],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def stop(proc, root):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        out = proc.communicate(timeout=40)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=10)[0]
    wait_for(lambda: not airlock_pids(root), 10, "airlock to exit")
    return out


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_airlock/health", timeout=5) as r:
        return r.status, json.loads(r.read())


def answers(port):
    try:
        return health(port)[0] == 200
    except OSError:
        return False


def test(tmp):
    src = os.path.join(tmp, "src")
    copy_tree(src)
    # The build an operator or a distribution runs; its own check step runs the unit tests.
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], "dpkg-buildpackage", timeout=400, cwd=src,
        env=dict(os.environ, DEB_BUILD_OPTIONS="parallel=%d" % os.cpu_count()))
    version = run(["dpkg-parsechangelog", "-S", "Version"], "version", cwd=src).strip()
    deb = os.path.join(tmp, f"airlock_{version}_amd64.deb")
    changes = os.path.join(tmp, f"airlock_{version}_amd64.changes")
    # lintian, pedantic and info tags included, silent (its overrides: debian/airlock.lintian-overrides).
    lint = subprocess.run(["lintian", "--pedantic", "--display-info", "--fail-on", "error,warning,info,pedantic",
                           changes], capture_output=True, text=True, timeout=200)
    tags = [l for l in lint.stdout.splitlines() if l.strip()]
    eq((lint.returncode, tags), (0, []), "lintian")

    # A fresh Debian 12 root with the package's dependencies, from Debian's mirror (cached .debs).
    root = os.path.join(tmp, "root")
    os.makedirs(CACHE, exist_ok=True)
    include = ",".join(["systemd", "man-db"] + deps_of(deb))  # verify looks up Documentation=man:
    run(["mmdebstrap", "--variant=apt", "--mode=root", f"--include={include}",
         "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
         f"--setup-hook=sync-in {CACHE} /var/cache/apt/archives/",
         f"--customize-hook=sync-out /var/cache/apt/archives {CACHE}",
         "--skip=download/empty", "--skip=essential/unlink", "bookworm", root, MIRROR], "mmdebstrap", timeout=400)
    before = snapshot(root)

    shutil.copy(deb, os.path.join(root, "tmp"))
    in_root(root, ["apt-get", "install", "-y", f"/tmp/{os.path.basename(deb)}"], "apt-get install ./airlock.deb")
    installed = run(["chroot", root, "dpkg-query", "-W", "-f", "${Status} ${Version}", "airlock"], "dpkg-query")
    eq(installed, f"install ok installed {version}", "installed")
    conffiles = open(os.path.join(root, "var/lib/dpkg/info/airlock.conffiles")).read().split()
    eq(conffiles, ["/etc/airlock/airlock.yml", "/etc/logrotate.d/airlock"], "conffiles")
    user = run(["chroot", root, "getent", "passwd", "airlock"], "getent").strip().split(":")
    eq((user[5], user[6]), ("/var/lib/airlock", "/usr/sbin/nologin"), "airlock user's home and shell")
    uid, gid = int(user[2]), int(user[3])
    for d in ("var/lib/airlock", "var/log/airlock"):
        st = os.stat(os.path.join(root, d))
        eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)), (uid, gid, "0o750"), d)
    for f in ("usr/bin/airlock", "usr/share/man/man1/airlock.1.gz", "etc/logrotate.d/airlock",
              "lib/systemd/system/airlock.service", "usr/share/doc/airlock/README.md",
              "etc/systemd/system/multi-user.target.wants/airlock.service"):
        if not os.path.lexists(os.path.join(root, f)):
            fail(f"the package did not install /{f}")
    man = in_root(root, ["sh", "-c", "zcat /usr/share/man/man1/airlock.1.gz"], "man page")
    for key in ("cache.max_size", "upstream.offline", "listen", "log.access"):
        if f".B {key}\n" not in man:
            fail(f"the man page does not describe {key}")

    out = in_root(root, ["airlock", "check-config", "/etc/airlock/airlock.yml"], "check-config")
    eq(out.strip(), "/etc/airlock/airlock.yml: ok (4 routes, 1 listeners)", "check-config")
    # The unit as installed, with the systemd installed in the root.
    out = in_root(root, ["systemd-analyze", "verify", "airlock.service"], "systemd-analyze verify")
    eq(out.strip(), "", "systemd-analyze verify")
    in_root(root, ["logrotate", "--debug", "/etc/logrotate.d/airlock"], "logrotate --debug")

    port = free_port()
    proc = serve(root, port)
    try:
        wait_for(lambda: answers(port) or proc.poll() is not None, 30, "health")
        status, body = health(port)
        eq((status, body["status"], body["version"]), (200, "ok", version), "/_airlock/health")
        pids = airlock_pids(root)
        eq(len(pids), 1, "airlock processes in the root")
        ids = {l.split(":")[0]: l.split()[1:3] for l in open(f"/proc/{pids[0]}/status") if l[:4] in ("Uid:", "Gid:")}
        eq((ids["Uid"], ids["Gid"]), ([str(uid)] * 2, [str(gid)] * 2), "airlock's real and effective ids")
    finally:
        log = stop(proc, root)
    data = os.path.join(root, "var/lib/airlock/cache/data.mdb")
    if not os.path.exists(data):
        fail(f"no cache at /var/lib/airlock/cache\n{log}")
    eq(os.stat(data).st_uid, uid, "the cache's owner")

    # Upgrade (the same package as a later version): the operator's edit and the cache stay.
    conf = os.path.join(root, "etc/airlock/airlock.yml")
    edited = open(conf).read().replace("name: airlock ", "name: site-a  ")
    open(conf, "w").write(edited)
    cache_bytes = open(data, "rb").read()
    newer = os.path.join(tmp, "newer")
    run(["dpkg-deb", "-R", deb, newer], "dpkg-deb -R")
    ctl = os.path.join(newer, "DEBIAN", "control")
    text = open(ctl).read()
    open(ctl, "w").write(text.replace(f"Version: {version}\n", f"Version: {version}+t1\n"))
    newdeb = os.path.join(root, "tmp", f"airlock_{version}+t1_amd64.deb")
    run(["dpkg-deb", "-b", newer, newdeb], "dpkg-deb -b")
    in_root(root, ["apt-get", "install", "-y", "-o", "Dpkg::Options::=--force-confdef", "-o",
                   "Dpkg::Options::=--force-confold", f"/tmp/{os.path.basename(newdeb)}"], "upgrade")
    eq(run(["chroot", root, "dpkg-query", "-W", "-f", "${Version}", "airlock"], "q"), f"{version}+t1", "upgraded")
    eq(open(conf).read(), edited, "the operator's configuration after the upgrade")
    eq(open(data, "rb").read() == cache_bytes, True, "the cache after the upgrade")

    # Remove keeps configuration and cache; purge takes them, and leaves the root as it was.
    in_root(root, ["dpkg", "--remove", "airlock"], "dpkg --remove")
    for f in ("etc/airlock/airlock.yml", "var/lib/airlock/cache/data.mdb", "var/log/airlock"):
        if not os.path.exists(os.path.join(root, f)):
            fail(f"dpkg --remove took /{f}")
    in_root(root, ["dpkg", "--purge", "airlock"], "dpkg --purge")
    os.unlink(newdeb)
    os.unlink(os.path.join(root, "tmp", os.path.basename(deb)))
    after = snapshot(root)
    # The airlock user and group stay, as Debian leaves system users (a reused id would own
    # what is left): the account files differ, nothing else may.
    accounts = {"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow",
                "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid", "etc/subgid"}
    added = sorted(set(after) - set(before) - accounts)
    changed = sorted(p for p in set(after) & set(before) if after[p] != before[p] and p not in accounts)
    eq((added, changed), ([], []), "paths left or changed after dpkg --purge")


def main():
    def alarm(*a):
        raise AssertionError(f"test exceeded its {BOUND}s bound")
    if os.geteuid() != 0:
        print("FAIL: needs root (mmdebstrap --mode=root, chroot, unshare)")
        sys.exit(1)
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(BOUND)
    tmp = tempfile.mkdtemp(prefix="airlock-pkg-")
    t0 = time.time()
    try:
        test(tmp)
    except AssertionError as e:
        print(f"FAIL test_package_deb: {e}")
        sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok ({time.time() - t0:.2f}s)")


if __name__ == "__main__":
    main()
