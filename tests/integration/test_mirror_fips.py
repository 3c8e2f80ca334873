"""FIPS agent builds go through the air-gap toolkit (issue 27, part 4).

elastic-agent's artifact.New (internal/pkg/agent/application/upgrade/artifact/
artifact.go at 137f0ac949c97977dbf01bd430acef33e297a71e) names a FIPS build
elastic-agent-fips-<version>-<os>-<arch>.tar.gz in beats/elastic-agent/, and
dev-tools/packaging/packages.yml (at 0138a771de33e9b41ce7930567fcb8593c01fcfc,
settings.fips) builds FIPS for linux x86_64 and arm64 only.

- `mirror artifacts --only elastic-agent-fips` fetches both linux tarballs with
  their .sha512 and .asc (and the GPG key), nothing else;
- `airlock status` counts them as a mirrored Elastic Agent version;
- a signed export imported on the air-gapped side serves them to the agent
  (Go net/http, as the agent downloads) with zero upstream contact;
- `--only` with a name mirror does not know fails, listing the known names
  (it used to be ignored and the run exited 0)."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, AirGap, Case, cli, eq, fail, go_client, main, sha512_line

V = "9.1.0"


def test():
    with Case() as (up, al, tmp):
        al.stop()
        files = {}
        for a in ("linux-x86_64", "linux-arm64"):
            f = f"elastic-agent-fips-{V}-{a}.tar.gz"
            body = os.urandom(120 * 1024)
            path = f"/downloads/beats/elastic-agent/{f}"
            for p, b in ((path, body), (path + ".sha512", sha512_line(body, f)), (path + ".asc", b"asc " + a.encode())):
                up.add(p, b, headers=[("ETag", '"%s"' % os.path.basename(p))])
                files[p] = b
        up.add("/GPG-KEY-elastic-agent", b"key", headers=[("ETag", '"gpg"')])
        # the non-FIPS build is there too: --only elastic-agent-fips must not fetch it
        plain = f"/downloads/beats/elastic-agent/elastic-agent-{V}-linux-x86_64.tar.gz"
        up.add(plain, b"plain")

        p = cli(al.config, "mirror", "artifacts", "--version", V, "--only", "elastic-agent-fips")
        if "fetched 7, already present 0, missing 0, failed 0" not in p.stdout:
            fail(f"mirror --only elastic-agent-fips: {p.stdout}\n{p.stderr}")
        eq(up.count(plain), 0, "the non-FIPS build was not asked for")
        for path in files:
            eq(up.count(path), 1, f"{path} fetched once")
        p = cli(al.config, "status")
        if f"mirrored Elastic Agent versions: {V}" not in p.stdout:
            fail(f"status counts the FIPS build as a mirrored agent version:\n{p.stdout}")

        # An unknown name is an error that lists the known ones; nothing is fetched.
        before = up.count()
        p = cli(al.config, "mirror", "artifacts", "--version", V, "--only", "elastic-agent-fisp", ok=False)
        eq(p.returncode, 2, f"unknown --only name: {p.stdout}{p.stderr}")
        for want in ("unknown name 'elastic-agent-fisp'", "elastic-agent-fips", "fleet-server", "endpoint-security"):
            if want not in p.stderr:
                fail(f"the error should name {want!r}: {p.stderr}")
        eq(up.count(), before, "nothing fetched on a bad --only")

        ag = AirGap(al, up)
        with ag as gap:
            for path, body in files.items():
                r = go_client(gap.url(path))
                eq((r["status"], r["len"]), (200, len(body)), f"offline {path}: {r}")
                eq(r["etag"], '"%s"' % os.path.basename(path), f"offline ETag {path}")
            gap_status = cli(gap.config, "status").stdout
            if f"mirrored Elastic Agent versions: {V}" not in gap_status:
                fail(f"air-gapped status: {gap_status}")
            ag.untouched()


if __name__ == "__main__":
    main(test)
