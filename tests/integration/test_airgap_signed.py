"""Authenticity across the gap (issue 17): the whole chain.

Connected side, with Elastic's OpenPGP key pinned (cache.verify_pgp,
upstream.pgp_keys): `airlock mirror artifacts` fills the cache; an artifact
whose .sha512 matches but whose .asc does not is never admitted (mirror
reports it failed); the cache is exported whole and signed (airlock keygen,
export --sign); the upstream then publishes a new artifact and changes one,
mirror runs again, and a delta (export --since) carries only those, signed
too.
Closed side, with the signer's public key trusted (import.trusted_keys):
- an unsigned bundle, one signed by another key, and one altered after
  signing (a record changed, its digest in the listing and the whole-file
  digest recomputed, as an attacker without the key can) are refused, and the cache is unchanged;
- the delta on a cache that lacks its base is refused, naming the base;
- full then delta gives the same cache (keys, bodies, validators) as one
  full bundle of the later moment, and serves offline;
- without trusted keys, import works and says the origin was not checked."""
import hashlib, json, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, cli, curl, entries, eq, fail, gpg, main, pgp_keyring, pgp_sign, sha512_line

V = "8.13.4"


def artifact(up, name, body, etag, signer, signed_body=None):
    """An artifact with its .sha512 and .asc (signed over signed_body: the body unless tampered)"""
    path = f"/downloads/beats/{name}/{name}-{V}-linux-x86_64.tar.gz"
    up.add(path, body, headers=[("ETag", etag)])
    up.add(path + ".sha512", sha512_line(body, os.path.basename(path)), headers=[("ETag", etag + "-sha")])
    up.add(path + ".asc", pgp_sign(signer, signed_body if signed_body is not None else body),
           headers=[("ETag", etag + "-asc")])
    return path


def mirror(al, *names):
    return subprocess.run([AIRLOCK, "mirror", "artifacts", "--version", V, "--arch", "linux-x86_64", "--format",
                           "tar.gz", "--only", ",".join(names), "--config", al.config],
                          capture_output=True, text=True, timeout=120)


def closed(name, up, trusted=None):
    d = tempfile.mkdtemp(prefix=f"airlock-{name}-")
    al = Airlock(d, up, offline=True)
    al.stop()
    if trusted:
        open(al.config, "a").write(f"import:\n  trusted_keys: [{trusted}]\n")
    return al


def resign_without_key(src, dst):
    """An internally consistent forgery: a stored ETag changed, the listing's digest of that record
    and the whole-file digest recomputed, the old signature kept: only the signature can tell."""
    data = bytearray(open(src, "rb").read())
    siglen = int.from_bytes(data[-66:-64], "little") if data[-67:-66] == b"S" else None
    if siglen != 64:
        fail("expected a 64-byte Ed25519 signature block at the end of a signed bundle")
    t = len(data) - (3 + siglen) - 41
    eq(data[t:t + 1], b"T", "trailer position")
    eq(bytes(data[:8]), b"ALKBNDL3", "a version-3 bundle")
    i = data.find(b'"fb-1"')
    if i < 0:
        fail("the filebeat ETag should be in the bundle")
    # walk header, listing and entries to the record holding the ETag
    pos = 8
    hl = int.from_bytes(data[pos + 1:pos + 5], "little")
    pos += 5 + hl
    eq(data[pos:pos + 1], b"L", "the listing follows the header")
    ll = int.from_bytes(data[pos + 1:pos + 5], "little")
    lstart, listing = pos + 5, json.loads(bytes(data[pos + 5:pos + 5 + ll]))
    pos += 5 + ll
    for e in listing["entries"]:
        rl = int.from_bytes(data[pos + 1:pos + 5], "little")
        if pos + 5 <= i < pos + 5 + rl:
            old = hashlib.sha256(bytes(data[pos + 5:pos + 5 + rl])).hexdigest()
            data[i:i + 6] = b'"fb-X"'
            new = hashlib.sha256(bytes(data[pos + 5:pos + 5 + rl])).hexdigest()
            j = data.find(old.encode(), lstart, lstart + ll)
            if j < 0:
                fail("the record's digest should be in the listing")
            data[j:j + 64] = new.encode()
            break
        pos += 5 + rl + e["size"]
    else:
        fail("no record holds the ETag")
    data[t + 9:t + 41] = hashlib.sha256(bytes(data[:t + 9])).digest()
    open(dst, "wb").write(bytes(data))


def test():
    with Case() as (up, al, tmp):
        keys, other = os.path.join(tmp, "keys"), os.path.join(tmp, "other")
        p = subprocess.run([AIRLOCK, "keygen", keys], capture_output=True, text=True, timeout=30)
        eq(p.returncode, 0, f"keygen: {p.stderr}")
        eq(oct(os.stat(os.path.join(keys, "bundle.key")).st_mode & 0o777), "0o600", "private key mode")
        subprocess.run([AIRLOCK, "keygen", other], capture_output=True, timeout=30, check=True)
        eq(subprocess.run([AIRLOCK, "keygen", keys], capture_output=True, timeout=30).returncode, 1,
           "keygen refuses to overwrite")
        pub = os.path.join(keys, "bundle.pub")

        elastic = pgp_keyring(tmp, "elastic")
        gpgkey = os.path.join(tmp, "GPG-KEY-elastic-agent")
        open(gpgkey, "wb").write(gpg(elastic, "--armor", "--export"))
        al.stop()
        cfg = open(al.config).read().replace("cache:\n", "cache:\n  verify_pgp: [\"https://artifacts.elastic.co/downloads/*.tar.gz\"]\n", 1)
        cfg = cfg.replace("upstream:\n", f"upstream:\n  pgp_keys: [{gpgkey}]\n", 1)
        open(al.config, "w").write(cfg)

        a1 = artifact(up, "filebeat", os.urandom(200000), '"fb-1"', elastic)
        a2 = artifact(up, "metricbeat", os.urandom(150000), '"mb-1"', elastic)
        genuine = os.urandom(120000)
        forged = genuine[:-1] + bytes([genuine[-1] ^ 1])  # flipped: a replaced byte can equal the old one
        bad = artifact(up, "auditbeat", forged, '"ab-1"', elastic, signed_body=genuine)
        up.add("/GPG-KEY-elastic-agent", open(gpgkey, "rb").read(), headers=[("ETag", '"gpg"')])
        p = mirror(al, "filebeat", "metricbeat", "auditbeat")
        if p.returncode == 0 or f"failed: {bad} (" not in p.stdout or "failed 1" not in p.stdout:
            fail(f"mirror: the forged artifact (valid .sha512, bad .asc) is failed, the rest fetched:\n{p.stdout}\n{p.stderr}")
        full1 = os.path.join(tmp, "full1.airlock")
        unsigned = os.path.join(tmp, "unsigned.airlock")
        foreign = os.path.join(tmp, "foreign.airlock")
        out = cli(al.config, "export", full1, "--sign", os.path.join(keys, "bundle.key")).stdout
        if "signed by key" not in out:
            fail(f"export should name the signing key: {out}")
        cli(al.config, "export", unsigned)
        cli(al.config, "export", foreign, "--sign", os.path.join(other, "bundle.key"))
        tampered = os.path.join(tmp, "tampered.airlock")
        resign_without_key(full1, tampered)

        # Connected side, later: a new artifact, and one republished with a new ETag and body.
        a3 = artifact(up, "heartbeat", os.urandom(100000), '"hb-1"', elastic)
        a2_body = os.urandom(160000)
        artifact(up, "metricbeat", a2_body, '"mb-2"', elastic)
        cli_purge = subprocess.run([AIRLOCK, "purge", "https://artifacts.elastic.co" + a2 + "*", "--config", al.config],
                                   capture_output=True, timeout=30)  # the operator refreshes the changed one
        eq(cli_purge.returncode, 0, "purge")
        p = mirror(al, "metricbeat", "heartbeat")
        eq(p.returncode, 0, f"second mirror: {p.stdout}{p.stderr}")
        delta = os.path.join(tmp, "delta.airlock")
        full2 = os.path.join(tmp, "full2.airlock")
        out = cli(al.config, "export", delta, "--since", full1, "--sign", os.path.join(keys, "bundle.key")).stdout
        # new or changed: heartbeat and metricbeat, each with .sha512 and .asc; unchanged: filebeat's
        # three, the auditbeat .sha512 and .asc (stored as files; the forged body never was) and the GPG key
        if "6 new or changed entries carried, 6 unchanged left out" not in out:
            fail(f"delta summary: {out}")
        cli(al.config, "export", full2, "--sign", os.path.join(keys, "bundle.key"))
        if os.path.getsize(delta) >= os.path.getsize(full2):
            fail("the delta should be smaller than a full bundle")

        # Closed side, trusting the signer.
        gap = closed("gap", up, pub)
        for bad, why in ((unsigned, "is not signed"), (foreign, "not among the trusted keys"),
                         (tampered, "does not verify: the bundle was altered after signing")):
            p = cli(gap.config, "import", bad, ok=False)
            if p.returncode == 0 or why not in p.stderr or "the cache was not changed" not in p.stderr:
                fail(f"{os.path.basename(bad)} should be refused ({why}): {p.stdout}{p.stderr}")
            eq(entries(gap.config), [], f"{os.path.basename(bad)}: nothing admitted")
        p = cli(gap.config, "import", delta, ok=False)
        if p.returncode == 0 or "import that base first" not in p.stderr:
            fail(f"a delta without its base is refused: {p.stderr}")
        eq(entries(gap.config), [], "delta without base: nothing admitted")
        out = cli(gap.config, "import", full1).stdout
        if "signature by trusted key" not in out:
            fail(f"the verified signature is reported: {out}")
        out = cli(gap.config, "import", delta).stdout
        if "(incremental)" not in out:
            fail(f"incremental import: {out}")

        # The same cache as one full bundle of the later moment.
        ref = closed("ref", up, pub)
        cli(ref.config, "import", full2)
        eq(entries(gap.config), entries(ref.config), "full + delta == full of the same moment")

        # Served offline, the changed artifact's new body and ETag.
        up.stop()
        gap.start()
        r = curl(gap, a2)
        eq((r.status, r.header("ETag"), r.body == a2_body), (200, '"mb-2"', True), "the changed artifact")
        eq(curl(gap, a3).status, 200, "the new artifact")
        eq(curl(gap, a1).status, 200, "the unchanged artifact, from the base")
        eq(curl(gap, bad).status, 504, "the forged artifact was never admitted, so it is not there offline")
        gap.stop()

        # Without trusted keys: admitted, with a word that the origin was not checked.
        plain = closed("plain", up)
        out = cli(plain.config, "import", unsigned).stdout
        if "origin was not checked" not in out:
            fail(f"import without trusted keys says so: {out}")
        # --trust on the command line works like the config key
        p = cli(closed("cmdline", up).config, "import", foreign, "--trust", pub, ok=False)
        if p.returncode == 0 or "not among the trusted keys" not in p.stderr:
            fail(f"--trust: {p.stderr}")


if __name__ == "__main__":
    main(test)
