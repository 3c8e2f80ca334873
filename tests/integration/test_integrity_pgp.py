"""Elastic's own signatures checked before admission (issue 17).

Elastic signs every agent/beat artifact (URL.asc, an OpenPGP detached
signature, key at /GPG-KEY-elastic-agent) and every package archive
(URL.sig).  With cache.verify_pgp and upstream.pgp_keys (the pinned key),
airlock admits a matching object only when its signature verifies with a
pinned key.  Keys and signatures are made here by gpg, as Elastic's are.

- a good artifact (valid .sha512, valid .asc) and a good package archive
  (.sig) are admitted, and hits afterwards;
- a tampered artifact whose .sha512 matches the tampered body but whose
  .asc was made over the original, one signed by an unpinned key, and one
  with no signature published are never admitted: the client sees the
  transfer abort, the next request fetches again, the log and
  airlock_integrity_refused_total say so, and mirror reports them failed.

Sources: elastic-agent internal/pkg/agent/application/upgrade/artifact/
download/http/verifier.go, Verifier.Verify: the .sha512 first
(download.VerifySHA512Hash), then verifyAsc fetches <artifact>.asc next to
the package (composeURI adds ".asc") and checks it with the PGP key.
Kibana x-pack/plugins/fleet/server/services/epm/registry/index.ts,
getPackageArchiveSignatureOrUndefined: a package's signature is the
registry's signature_path (the archive's path + ".sig" under /epr/)."""
import os, signal, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, curl, eq, fail, gpg, main, pgp_keyring, pgp_sign, sha512_line, wait_for

V = "8.13.4"


def artifact(up, name, body, asc, sha_of=None):
    path = f"/downloads/beats/{name}/{name}-{V}-linux-x86_64.tar.gz"
    up.add(path, body, headers=[("ETag", f'"{name}"')])
    up.add(path + ".sha512", sha512_line(sha_of if sha_of is not None else body, os.path.basename(path)))
    if asc is not None:
        up.add(path + ".asc", asc, headers=[("ETag", f'"{name}-asc"')])
    return path


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        elastic, other = pgp_keyring(tmp, "elastic"), pgp_keyring(tmp, "other")
        pub = os.path.join(tmp, "GPG-KEY-elastic-agent")
        open(pub, "wb").write(gpg(elastic, "--armor", "--export"))

        good = os.urandom(300000)
        ok = artifact(up, "filebeat", good, pgp_sign(elastic, good))
        original = os.urandom(200000)
        tampered_body = original[:-1] + bytes([original[-1] ^ 1])
        tampered = artifact(up, "metricbeat", tampered_body, pgp_sign(elastic, original), sha_of=tampered_body)
        foreign_body = os.urandom(100000)
        foreign = artifact(up, "heartbeat", foreign_body, pgp_sign(other, foreign_body))
        unsigned = artifact(up, "auditbeat", os.urandom(50000), None)
        pkg = os.urandom(40000)
        up.add("/epr/nginx/nginx-1.20.0.zip", pkg, headers=[("ETag", '"zip"')])
        up.add("/epr/nginx/nginx-1.20.0.zip.sig", pgp_sign(elastic, pkg))

        al = Airlock(tmp, up, upstream_extra=f"  pgp_keys: [{pub}]\n")
        al.stop()
        cfg = open(al.config).read().replace("cache:\n", "cache:\n  verify_pgp:\n"
                                             "    - \"https://artifacts.elastic.co/downloads/*.tar.gz\"\n"
                                             "    - \"https://epr.elastic.co/epr/*.zip\"\n", 1)
        open(al.config, "w").write(cfg)
        p = subprocess.run([AIRLOCK, "check-config", al.config], capture_output=True, text=True, timeout=20)
        eq(p.returncode, 0, f"check-config: {p.stderr}")
        al.start()
        try:
            for path, body in ((ok, good), ("/epr/nginx/nginx-1.20.0.zip", pkg)):
                r = curl(al, path)
                eq((r.status, r.rc, r.body == body), (200, 0, True), f"{path}: admitted")
                r = curl(al, path)
                if not r.header("Cache-Status").startswith("airlock; hit"):
                    fail(f"{path}: a hit after admission: {r.header('Cache-Status')}")
                eq(up.count(path), 1, f"{path}: fetched once")
            for path, why in ((tampered, "the OpenPGP signature does not verify"),
                              (foreign, "signed by a key that is not pinned"),
                              (unsigned, "no signature published")):
                for attempt in (1, 2):
                    r = curl(al, path)
                    if r.rc == 0 and r.status == 200:
                        fail(f"{path}: delivered as complete although its signature fails ({why})")
                eq(up.count(path), 2, f"{path}: never stored, fetched again")
                # each refusal under its own name and its own reason (fill.c pgp_verdict,
                # cache/pgp.c al_pgp_verify_object), once per attempt
                mine = [l for l in al.logtext().splitlines() if f"{path}: OpenPGP check failed: " in l]
                eq(len(mine), 2, f"{path}: each refusal logged")
                for l in mine:
                    if why not in l.split("OpenPGP check failed: ", 1)[1]:
                        fail(f"{path}: refused for another reason than {why!r}: {l}")
            m = curl(al, "/_airlock/metrics").body.decode()
            line = [l for l in m.splitlines() if l.startswith("airlock_integrity_refused_total ")]
            eq(line, ["airlock_integrity_refused_total 6"], "refusals counted")
        finally:
            al.stop()

        # mirror names them as failed and exits non-zero
        p = subprocess.run([AIRLOCK, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format",
                            "tar.gz", "--only", "filebeat,metricbeat,heartbeat,auditbeat", "--config", al.config],
                           capture_output=True, text=True, timeout=90)
        if p.returncode == 0 or "failed 3" not in p.stdout:
            fail(f"mirror should fail the three unsigned-or-badly-signed artifacts:\n{p.stdout}\n{p.stderr}")
        for path in (tampered, foreign, unsigned):
            if f"failed: {path} (" not in p.stdout:
                fail(f"mirror should name {path}:\n{p.stdout}")

        # verify_pgp and the pinned key added by a reload (SIGHUP) apply to the next fill; before
        # this they were read only at start, and the reloaded rule admitted everything unchecked
        plain = Airlock(tmp, up)
        try:
            late_body = os.urandom(120000)
            # the last byte flipped: replacing it with b"x" left the body as signed once in 256 runs
            late_tampered = late_body[:-1] + bytes([late_body[-1] ^ 1])
            late = artifact(up, "packetbeat", late_tampered, pgp_sign(elastic, late_body), sha_of=late_tampered)
            cfg = open(plain.config).read()
            open(plain.config, "w").write(cfg.replace(
                "cache:\n", "cache:\n  verify_pgp: [\"https://artifacts.elastic.co/downloads/*.tar.gz\"]\n", 1)
                .replace("upstream:\n", f"upstream:\n  pgp_keys: [{pub}]\n", 1))
            plain.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in plain.logtext(), 5, "the reload")
            r = curl(plain, late)
            if r.rc == 0 and r.status == 200:
                fail(f"{late}: a signature that fails is refused after a reload that asks for it")
            if f"{late}: OpenPGP check failed" not in plain.logtext():
                fail("the refusal after the reload is logged")
        finally:
            plain.stop()

        # a key file that is not an OpenPGP key is a configuration error
        open(pub, "w").write("not a key\n")
        p = subprocess.run([AIRLOCK, "check-config", al.config], capture_output=True, text=True, timeout=20)
        if p.returncode == 0 or "upstream.pgp_keys" not in p.stderr:
            fail(f"check-config should refuse a bad pinned key: {p.stderr}")


if __name__ == "__main__":
    main(test)
