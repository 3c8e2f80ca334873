"""Helpers shared by the package tests: building the .deb from a copy of this tree, running
commands in a root file system (chroot in a private mount namespace), airlock's processes there."""
import json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import fail, wait_for

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Debian 12 as a local apt repository, downloaded by .ci/deps (.ci/debian-cache): the tests'
# roots are made from it alone and reach no mirror.
REPO = os.path.join(os.environ.get("AIRLOCK_CI_CACHE", "/var/cache/airlock-ci"), "debian12")
MIRROR = f"deb [trusted=yes] file://{REPO} ./"
# Makes the repository's directory visible inside the root while mmdebstrap's hooks run apt there.
AUTOMOUNT = "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount"


def repo_packages():
    """The package names in the cached repository; fails, telling the operator what to run, without it."""
    index = os.path.join(REPO, "Packages")
    if not os.path.isfile(index):
        fail(f"no Debian 12 cache at {REPO}: run .ci/deps (as root) first; "
             "the package tests download nothing themselves")
    return {l.split(":", 1)[1].strip() for l in open(index) if l.startswith("Package:")}


def in_repo(names, available):
    """Fails naming the packages the cached repository lacks (a dependency new since the list)."""
    missing = sorted(set(names) - available)
    if missing:
        fail(f"{', '.join(missing)} not in the Debian cache {REPO}: "
             "add them to tests/package/debian12.list and run .ci/deps")


def deps_of(deb, recommends=True):
    """Package names from the .deb's Depends and Recommends (first alternative, no versions)."""
    names = []
    for field in ("Depends", "Recommends") if recommends else ("Depends",):
        value = run(["dpkg-deb", "-f", deb, field], "dpkg-deb -f").strip()
        for dep in filter(None, (d.strip() for d in value.split(","))):
            names.append(dep.split("|")[0].split("(")[0].strip())
    return names


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


def build_deb(tmp):
    """dpkg-buildpackage -us -uc -b on a copy of this tree in tmp/src: (src, version, path of the .deb).
    The build an operator or a distribution runs; its own check step runs the unit tests."""
    src = os.path.join(tmp, "src")
    copy_tree(src)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], "dpkg-buildpackage", timeout=400, cwd=src,
        env=dict(os.environ, DEB_BUILD_OPTIONS="parallel=%d" % os.cpu_count()))
    version = run(["dpkg-parsechangelog", "-S", "Version"], "version", cwd=src).strip()
    arch = run(["dpkg", "--print-architecture"], "arch").strip()
    return src, version, os.path.join(tmp, f"airlock_{version}_{arch}.deb")


def main(name, test, bound):
    """Run test(tmp) as root within bound seconds, in a temporary directory removed after."""
    def alarm(*a):
        raise AssertionError(f"test exceeded its {bound}s bound")
    if os.geteuid() != 0:
        print(f"FAIL {name}: needs root (mmdebstrap --mode=root, chroot, unshare)")
        sys.exit(1)
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(bound)
    tmp = tempfile.mkdtemp(prefix="airlock-pkg-")
    t0 = time.time()
    try:
        test(tmp)
    except AssertionError as e:
        print(f"FAIL {name}: {e}")
        sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok ({time.time() - t0:.2f}s)")
