#!/usr/bin/env python3
"""Bytes a split import reads from its parts (issue 28): before and after the part digests moved
into the one admitting read.

Fills a cache through the test harness's fake upstream with BEATS Beats of MIB MiB each, exports it
signed with --split PART (MiB), then imports the parts into a fresh cache once with each binary,
under strace: the bytes read(2)/pread64(2) returned on the part files' descriptors are summed.
"before" checked every part's SHA-256 against the index first, then read the parts again as the
bundle; "after" checks sizes up front and each part's digest as the bundle is read.  Build the base
binary apart, e.g.:
  mkdir -p build-base/src && git archive cff9cdc | tar -x -C build-base/src &&
  cmake -S build-base/src -B build-base/b && cmake --build build-base/b --target airlock
A program, not a test.  Everything listens on 127.0.0.1.

  AIRLOCK_OLD=build-base/b/airlock AIRLOCK_NEW=build/airlock python3 bench/split_import_reads.py
"""
import os, re, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
from harness import Airlock, Case, cli, mirrored_beats

BEATS = int(os.environ.get("BEATS", "4"))
MIB = int(os.environ.get("MIB", "16"))
PART = int(os.environ.get("PART", "16"))
OLD, NEW = os.environ.get("AIRLOCK_OLD"), os.environ.get("AIRLOCK_NEW", "build/airlock")


def part_reads(binary, cfg, first, trace):
    subprocess.run(["strace", "-f", "-qq", "-s", "0", "-e", "trace=openat,read,pread64,close", "-o", trace,
                    binary, "import", first, "--config", cfg], check=True, capture_output=True, timeout=600)
    fds, total = {}, 0
    for line in open(trace):
        m = re.match(r'(\d+)\s+openat\(\w+, "([^"]+)".*= (\d+)$', line)
        if m:
            fds[(m[1], m[3])] = re.search(r"\.\d{3}$", m[2]) is not None
            continue
        m = re.match(r'(\d+)\s+close\((\d+)\)', line)
        if m:
            fds.pop((m[1], m[2]), None)
            continue
        m = re.match(r'(\d+)\s+(?:read|pread64)\((\d+),.*= (\d+)$', line)
        if m and fds.get((m[1], m[2])):
            total += int(m[3])
    return total


def main():
    with Case() as (up, al, tmp):
        al.stop()
        mirrored_beats(up, al.config, "8.13.4", ("filebeat", "metricbeat", "auditbeat", "heartbeat", "packetbeat")[:BEATS], MIB << 20)
        b = os.path.join(tmp, "media", "stack.airlock")
        os.mkdir(os.path.dirname(b))
        cli(al.config, "export", b, "--split", f"{PART}MiB")
        size = sum(os.path.getsize(os.path.join(tmp, "media", n)) for n in os.listdir(os.path.dirname(b))
                   if not n.endswith(".index"))
        nparts = len(os.listdir(os.path.dirname(b))) - 1
        print(f"split bundle: {size / 1e6:.1f} MB in {nparts} parts of at most {PART} MiB")
        for name, binary in (("before", OLD), ("after", NEW)):
            if not binary:
                continue
            d = tempfile.mkdtemp(prefix="airlock-bench-")
            try:
                gap = Airlock(d, up, offline=True)
                gap.stop()
                got = part_reads(os.path.abspath(binary), gap.config, b + ".001", os.path.join(d, "trace"))
                print(f"{name:7s} {binary}: import read {got / 1e6:.1f} MB of the parts ({got / size:.2f}x the bundle)")
            finally:
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
