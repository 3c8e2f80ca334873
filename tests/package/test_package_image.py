"""The OCI image as a container runtime runs it: dist/image/build makes the oci-archive from the
package built from this tree; the test then reads the archive as `podman load` would (index.json,
the manifest named localhost/airlock:VERSION, its configuration and layers), unpacks the root file
system and starts it the way the image's configuration says (entrypoint and cmd, user, working
directory, environment, a fresh volume at /var/lib/airlock seeded from the image), under
unshare/chroot with the host's loopback, since these machines cannot start containers.

- on the image's own configuration, /_airlock/health answers and the process runs as airlock;
- with a configuration mounted over /etc/airlock/airlock.yml routing to a fake upstream on
  127.0.0.1, a miss is fetched once and fills the cache in the volume (on the host side);
- a restart on the same volume answers it as a hit, and the upstream is not asked again.

Label `package`; the package build (~30 s) and mmdebstrap dominate.  The image's Debian comes
from the repository .ci/deps downloaded once (/var/cache/airlock-ci/debian12, .ci/debian-cache),
given to dist/image/build as its mirror: the test reaches no mirror, and without that cache it
fails at once saying to run .ci/deps.
The only overrides of the image's configuration are those `podman run -e/-v` makes: the
listener's address (AIRLOCK_ADDRESS, loopback and a free port instead of 0.0.0.0:8080) and,
for the fill, the mounted configuration file.
"""
import json, os, shutil, subprocess, sys, tarfile, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import FakeUpstream, Pki, eq, fail, free_port, wait_for
from pkg import (MIRROR, SRC, airlock_pids, answers, build_deb, deps_of, health, in_repo, main, repo_packages,
                 run, stop)

BOUND = 540


def load(archive, name, dst):
    """The image named name in an oci-archive: (its configuration, its root file system)."""
    layout = os.path.join(dst, "layout")
    os.makedirs(layout)
    run(["tar", "-C", layout, "-xf", archive], "untar the archive")
    eq(json.load(open(os.path.join(layout, "oci-layout")))["imageLayoutVersion"], "1.0.0", "oci-layout")
    blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
    refs = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m
            for m in json.load(open(os.path.join(layout, "index.json")))["manifests"]}
    if name not in refs:
        fail(f"no image named {name} in the archive: {list(refs)}")
    manifest = json.load(open(blob(refs[name]["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    rootfs = os.path.join(dst, "rootfs")
    os.makedirs(rootfs)
    for layer in manifest["layers"]:
        eq(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip", "layer type")
        with tarfile.open(blob(layer["digest"])) as t:
            if any(os.path.basename(m.name).startswith(".wh.") for m in t.getmembers()):
                fail("whiteouts in a layer: this loader applies none")
        run(["tar", "-C", rootfs, "--numeric-owner", "-xpzf", blob(layer["digest"])], "unpack a layer")
    return config, rootfs


def passwd(rootfs, user):
    for line in open(os.path.join(rootfs, "etc/passwd")):
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    fail(f"no user {user} in the image")


# Mounts as a runtime makes them, in a private mount namespace: /proc, a /dev with the usual
# nodes, the volume, and the mounted files; then the image's user, working directory and
# environment, and exec of entrypoint + cmd.
RUNTIME = r'''
set -e
R=$1 UID_=$2 GID_=$3 WD=$4 VOLSPEC=$5 FILESPEC=$6
shift 6
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=755,nosuid dev "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
mount -t tmpfs -o mode=1777 tmp "$R/tmp"
for spec in $VOLSPEC $FILESPEC; do mount --bind "${spec%%=*}" "$R${spec#*=}"; done
exec chroot "$R" setpriv --reuid="$UID_" --regid="$GID_" --clear-groups \
  sh -c 'cd "$0" && exec env -i "$@"' "$WD" "$@"
'''


def start(config, rootfs, volume, port, files=()):
    c = config["config"]
    uid, gid = passwd(rootfs, c["User"])
    env = [e for e in c["Env"] if not e.startswith("AIRLOCK_ADDRESS=")] + [f"AIRLOCK_ADDRESS=127.0.0.1:{port}"]
    vols = " ".join(f"{volume}={v}" for v in c["Volumes"])
    fspec = " ".join(f"{src}={dst}" for src, dst in files)
    return subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM", "sh", "-c",
         RUNTIME, "runtime", rootfs, str(uid), str(gid), c["WorkingDir"], vols, fspec]
        + env + c["Entrypoint"] + c["Cmd"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Cache-Status"), r.read()


def serving(proc, rootfs, port):
    wait_for(lambda: answers(port) or proc.poll() is not None, 30, "health")
    if proc.poll() is not None:
        fail(f"airlock exited: {proc.communicate()[0]}")
    return health(port)


def test(tmp):
    available = repo_packages()  # before anything slow: no cache, no test
    src, version, deb = build_deb(tmp)
    in_repo(["curl"] + deps_of(deb, recommends=False), available)
    archive = os.path.join(tmp, f"airlock-{version}.oci.tar")
    run([os.path.join(src, "dist", "image", "build"), deb, archive], "dist/image/build", timeout=400,
        env=dict(os.environ, AIRLOCK_PKG_MIRROR=MIRROR, AIRLOCK_PKG_CACHE=""))
    config, rootfs = load(archive, f"localhost/airlock:{version}", tmp)
    c = config["config"]
    eq((c["Entrypoint"], c["Cmd"], c["User"], c["WorkingDir"], list(c["Volumes"]), list(c["ExposedPorts"])),
       (["/usr/bin/airlock", "serve"], ["--config", "/etc/airlock/airlock.yml"], "airlock", "/var/lib/airlock",
        ["/var/lib/airlock"], ["8080/tcp"]), "the image's configuration")
    if "AIRLOCK_ADDRESS=0.0.0.0:8080" not in c["Env"]:
        fail(f"the image does not listen on 0.0.0.0:8080: {c['Env']}")
    uid, gid = passwd(rootfs, "airlock")
    if not os.access(os.path.join(rootfs, "usr/bin/curl"), os.X_OK):
        fail("no curl in the image for the health check")

    # A new named volume starts as a copy of what the image holds at its path.
    volume = os.path.join(tmp, "volume")
    shutil.copytree(os.path.join(rootfs, "var/lib/airlock"), volume, symlinks=True)
    os.chown(volume, *os.stat(os.path.join(rootfs, "var/lib/airlock"))[4:6])

    # 1. The image's own configuration: health answers, as the airlock user.
    port = free_port()
    proc = start(config, rootfs, volume, port)
    try:
        status, body = serving(proc, rootfs, port)
        eq((status, body["status"], body["version"]), (200, "ok", version), "/_airlock/health")
        pids = airlock_pids(rootfs)
        eq(len(pids), 1, "airlock processes in the image's root")
        ids = {l.split(":")[0]: l.split()[1:3] for l in open(f"/proc/{pids[0]}/status") if l[:4] in ("Uid:", "Gid:")}
        eq((ids["Uid"], ids["Gid"]), ([str(uid)] * 2, [str(gid)] * 2), "airlock's ids")
    finally:
        log = stop(proc, rootfs)
    if not os.path.exists(os.path.join(volume, "cache", "data.mdb")):
        fail(f"the cache is not in the volume\n{log}")

    # 2. A mounted configuration routing to a fake upstream: a miss fills the cache in the volume.
    pki = Pki(tmp)
    up = FakeUpstream(pki)
    try:
        body = os.urandom(20_000)  # one chunk: its bytes lie together in data.mdb
        up.add("/epr/nginx/nginx-1.20.0.zip", body, headers=[("Content-Type", "application/zip"),
                                                              ("Cache-Control", "max-age=3600")])
        conf = os.path.join(tmp, "airlock.yml")
        open(conf, "w").write(
            "cache:\n  path: /var/lib/airlock/cache\n"
            f"routes:\n  - prefix: /\n    upstream: http://127.0.0.1:{up.port}\n")
        before = os.path.getsize(os.path.join(volume, "cache", "data.mdb"))
        proc = start(config, rootfs, volume, port, files=[(conf, "/etc/airlock/airlock.yml")])
        try:
            serving(proc, rootfs, port)
            status, cs, got = get(port, "/epr/nginx/nginx-1.20.0.zip")
            eq((status, got == body, up.count("/epr/nginx/nginx-1.20.0.zip")), (200, True, 1), "a miss")
            if "fwd=miss" not in (cs or ""):
                fail(f"Cache-Status of the first request: {cs}")
        finally:
            log = stop(proc, rootfs)
        data = os.path.join(volume, "cache", "data.mdb")
        if body not in open(data, "rb").read():
            fail(f"the body is not in the volume's cache ({before} -> {os.path.getsize(data)} bytes)\n{log}")

        # 3. Restarted on the same volume: a hit, the upstream not asked again.
        proc = start(config, rootfs, volume, port, files=[(conf, "/etc/airlock/airlock.yml")])
        try:
            serving(proc, rootfs, port)
            status, cs, got = get(port, "/epr/nginx/nginx-1.20.0.zip")
            eq((status, got == body, up.count("/epr/nginx/nginx-1.20.0.zip")), (200, True, 1), "after a restart")
            if not (cs or "").startswith("airlock; hit"):
                fail(f"Cache-Status after the restart: {cs}")
        finally:
            stop(proc, rootfs)
    finally:
        up.stop()


if __name__ == "__main__":
    main("test_package_image", test, BOUND)
