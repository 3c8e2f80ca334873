"""The Debian package as an operator gets it: built with dpkg-buildpackage from a copy of this
tree, lintian-clean, installed with `apt-get install ./airlock_*.deb` into a fresh Debian 12 root
made by mmdebstrap, run there the packaged way, upgraded, removed and purged.

Label `package` (not in the integration run): it builds the package (~30 s) and makes the root
(~45 s).  The root comes from the Debian 12 repository .ci/deps downloaded once
(/var/cache/airlock-ci/debian12, see .ci/debian-cache): the test reaches no mirror, and without
that cache it fails at once saying to run .ci/deps.  Needs root (mmdebstrap's root mode, chroot,
unshare), which CI has.

The root gets airlock's dependencies from mmdebstrap (read from the built package's Depends and
Recommends; each must be in the cache, or the test names it) plus systemd and man-db (so
`systemd-analyze verify` runs inside it against what is installed there, the unit's
man:airlock(1) included); airlock itself arrives with apt, its dependencies already there.
"""
import os, shutil, signal, subprocess, sys
import yaml
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import eq, fail, free_port, wait_for
from pkg import (AUTOMOUNT, MIRROR, airlock_pids, answers, build_deb, deps_of, health, in_repo, in_root, main,
                 repo_packages, run, stop)

BOUND = 540  # seconds; ctest's TIMEOUT is 600


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


def serve(root, port):
    """`airlock serve` with the packaged configuration as the airlock user, as the unit runs it.
    AIRLOCK_ADDRESS moves the listener off the packaged 127.0.0.1:8080, which may be taken here."""
    env = dict(os.environ, AIRLOCK_ADDRESS=f"127.0.0.1:{port}")
    return subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM", "sh", "-c",
         'mount -t proc proc "$0/proc" && exec chroot "$0" setpriv --reuid=airlock --regid=airlock '
         '--init-groups /usr/bin/airlock serve --config /etc/airlock/airlock.yml', root],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test(tmp):
    available = repo_packages()  # before anything slow: no cache, no test
    src, version, deb = build_deb(tmp)
    changes = deb[:-len(".deb")] + ".changes"
    # lintian, pedantic and info tags included, silent (its overrides: debian/airlock.lintian-overrides).
    lint = subprocess.run(["lintian", "--pedantic", "--display-info", "--fail-on", "error,warning,info,pedantic",
                           changes], capture_output=True, text=True, timeout=200)
    tags = [l for l in lint.stdout.splitlines() if l.strip()]
    eq((lint.returncode, tags), (0, []), "lintian")

    # A fresh Debian 12 root with the package's dependencies, from the cached repository alone.
    root = os.path.join(tmp, "root")
    include = ["systemd", "man-db"] + deps_of(deb)  # verify looks up Documentation=man:
    in_repo(include, available)
    run(["mmdebstrap", "--variant=apt", "--mode=root", f"--include={','.join(include)}", AUTOMOUNT,
         "--skip=essential/unlink", "bookworm", root, MIRROR], "mmdebstrap", timeout=400)
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
    # as many routes as the packaged file lists (dist/airlock.yml's: the default routes grow with the hosts)
    with open(os.path.join(root, "etc/airlock/airlock.yml")) as f:
        nroutes = len(yaml.safe_load(f)["routes"])
    eq(out.strip(), f"/etc/airlock/airlock.yml: ok ({nroutes} routes, 1 listeners)", "check-config")
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


if __name__ == "__main__":
    main("test_package_deb", test, BOUND)
