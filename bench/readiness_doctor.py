#!/usr/bin/env python3
"""Readiness at catalogue scale: CPU time and peak RSS of `airlock doctor --stack V --kibana V` over a cache
of NAMES x VERSIONS package documents (bench/registry_index.py's fill and documents), for two binaries,
alternating ROUNDS times on the same cache; the JSON answers of both are compared.

  AIRLOCK_OLD=build/airlock.base AIRLOCK_NEW=build/airlock NAMES=2000 python3 bench/readiness_doctor.py
("before" is the base commit's binary: build it there and copy build/airlock to build/airlock.base.)
BENCH_DIR keeps the filled cache for another run.  A program, not a test; everything on 127.0.0.1.
"""
import json, os, shutil, statistics, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import harness  # noqa: E402
import registry_index as ri  # noqa: E402
from harness import Airlock, FakeUpstream, Pki  # noqa: E402

OLD = os.path.abspath(os.environ.get("AIRLOCK_OLD") or os.path.join(HERE, "..", "build", "airlock.base"))
NEW = os.path.abspath(os.environ.get("AIRLOCK_NEW") or os.path.join(HERE, "..", "build", "airlock"))
ROUNDS = int(os.environ.get("ROUNDS", 3))
STACK = os.environ.get("STACK", "8.13.4")


def run(binary, config):
    # os.wait4 on the child gives its own rusage (user+sys CPU, max RSS), not the machine's
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        out = os.open(config + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(fd, 2)
        try:
            os.execv(binary, [binary, "doctor", "--stack", STACK, "--kibana", STACK, "--json", "--config", config])
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    with open(config + ".out") as f:
        answer = json.load(f)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, answer, os.waitstatus_to_exitcode(status)


def main():
    keep = os.environ.get("BENCH_DIR")
    tmp = keep or tempfile.mkdtemp(prefix="airlock-bench-readiness-")
    os.makedirs(tmp, exist_ok=True)
    up = FakeUpstream(Pki(tmp))
    try:
        harness.AIRLOCK = NEW
        al = Airlock(tmp, up, workers=2)
        if not os.path.exists(os.path.join(tmp, "filled")):
            ri.fill(up, al)
            open(os.path.join(tmp, "filled"), "w").close()
        al.stop()
        res = {"before": [], "after": []}
        answers = {}
        for _ in range(ROUNDS):
            for label, binary in (("before", OLD), ("after", NEW)):
                cpu, rss, answer, rc = run(binary, al.config)
                answers[label] = answer
                res[label].append((cpu, rss))
                print(f"  {label:6s} CPU {cpu:6.2f} s  max RSS {rss:7.1f} MiB  exit {rc}  packages "
                      f"{len(answer['packages'])}  checked {answer['checked']}", flush=True)
    finally:
        up.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{ri.NAMES * ri.VERSIONS} cached package versions ({ri.NAMES} names x {ri.VERSIONS}), "
          f"doctor --stack {STACK} --kibana {STACK}, {ROUNDS} alternating rounds (median)")
    print("| | before | after |\n|---|---|---|")
    print(f"| CPU (user+sys) | {statistics.median(c for c, _ in res['before']):.2f} s "
          f"| {statistics.median(c for c, _ in res['after']):.2f} s |")
    print(f"| max RSS | {statistics.median(r for _, r in res['before']):.0f} MiB "
          f"| {statistics.median(r for _, r in res['after']):.0f} MiB |")
    print(f"| same answer | {'yes' if answers['before'] == answers['after'] else 'NO'} | |")


if __name__ == "__main__":
    main()
