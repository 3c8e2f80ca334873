"""HTTPS listeners: served with the operator's certificate, TLS 1.1 refused
when min_version is 1.2 (the default) and accepted when it is 1.0; a key
others can read is refused at start; AIRLOCK_* environment overrides."""
import os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import AIRLOCK, Airlock, Case, eq, fail, main

P = "/downloads/beats/filebeat/filebeat-8.13.4-linux-x86_64.tar.gz.sha512"


def s_client(port, *flags):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                        "-cipher", "DEFAULT@SECLEVEL=0", *flags], input=b"Q\n", capture_output=True, timeout=20)
    # a completed handshake: exit 0 and a negotiated cipher
    return p.returncode == 0 and b"Cipher is (NONE)" not in p.stdout and b"Protocol" in p.stdout


def test():
    with Case() as (up, al0, tmp):
        al0.stop()
        key = os.path.join(tmp, "listen.key")
        shutil.copy(up.pki.key, key)
        os.chmod(key, 0o600)
        up.add(P, b"abc  filebeat\n", headers=[("ETag", '"s"')])
        al = Airlock(tmp, up, listen_tls=(up.pki.crt, key, "1.2"))
        try:
            p = subprocess.run(["curl", "-sS", "--noproxy", "*", "--cacert", up.pki.ca_crt, "-o", "-",
                                f"https://localhost:{al.port}{P}"], capture_output=True, timeout=20)
            eq((p.returncode, p.stdout), (0, b"abc  filebeat\n"), f"HTTPS GET: {p.stderr}")
            eq(s_client(al.port, "-tls1_2"), True, "TLS 1.2 accepted")
            eq(s_client(al.port, "-tls1_1"), False, "TLS 1.1 refused with min_version 1.2")
            if "listening on https://127.0.0.1" not in al.logtext():
                fail("the log should say the listener is https")
        finally:
            al.stop()
        al = Airlock(tmp, up, listen_tls=(up.pki.crt, key, "1.0"))
        try:
            eq(s_client(al.port, "-tls1_1"), True, "TLS 1.1 accepted with min_version 1.0")
        finally:
            al.stop()
        os.chmod(key, 0o644)
        p = subprocess.run([AIRLOCK, "serve", "--config", al.config], capture_output=True, text=True, timeout=20)
        eq(p.returncode, 1, "a world-readable key stops airlock at start")
        if "let others read the key" not in p.stderr:
            fail(f"the refusal should say why: {p.stderr}")
        # Environment overrides (like the registry's EPR_*)
        env = dict(os.environ, AIRLOCK_ADDRESS="127.0.0.1:9999", AIRLOCK_TLS_MIN_VERSION="1.5")
        p = subprocess.run([AIRLOCK, "check-config"], capture_output=True, text=True, timeout=20, env=env)
        if p.returncode != 2 or "AIRLOCK_TLS_MIN_VERSION: '1.5'" not in p.stderr:
            fail(f"a bad AIRLOCK_TLS_MIN_VERSION is refused: {p.stderr}")
        env = dict(os.environ, AIRLOCK_ADDRESS="127.0.0.1:9999", AIRLOCK_TLS_CERT=up.pki.crt)
        p = subprocess.run([AIRLOCK, "check-config"], capture_output=True, text=True, timeout=20, env=env)
        if p.returncode != 2 or "AIRLOCK_TLS_KEY" not in p.stderr:
            fail(f"a certificate without a key is refused: {p.stderr}")


if __name__ == "__main__":
    main(test)
