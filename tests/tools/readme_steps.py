#!/usr/bin/env python3
"""README's "What airlock does with a request" maps one to one onto the step
functions (issue 30): every step function of a request (conn.c and the files
it names, `stp_*`) and of a fill (fill.c, `fstp_*`) is named there, the
section names no step function that does not exist, and every member of
enum req_step and enum fetch_step (but the PARK sentinel) has its entry in
its runner's table (a missing one would be a NULL call).

Usage: readme_steps.py [repository root]   (default: two levels up)"""
import os, re, sys

DEF = re.compile(r"^(?:static\s+)?enum\s+(req_step|fetch_step)\s+(f?stp_[a-z0-9_]+)\s*\(", re.M)
ENUM = re.compile(r"enum\s+(req_step|fetch_step)\s*\{(.*?)\};", re.S)
TABLE = re.compile(r"\[\s*(F?STP_[A-Z0-9_]+)\s*\]\s*=\s*(f?stp_[a-z0-9_]+)")


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    defined, members, table, problems = {}, {}, {}, []
    for part in ("proxy/front", "proxy/fetch"):
        for name in sorted(os.listdir(os.path.join(root, part))):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(root, part, name), encoding="utf-8") as f:
                text = f.read()
            for kind, fn in DEF.findall(text):
                defined[fn] = f"{part}/{name}"
            for kind, body in ENUM.findall(text):
                body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
                for m in re.findall(r"\b(F?STP_[A-Z0-9_]+)\b", body):
                    if not m.endswith("_PARK"):
                        members[m] = kind
            for m, fn in TABLE.findall(text):
                table[m] = fn
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    start = readme.index("## What airlock does with a request")
    end = readme.find("\n### ", start)
    named = set(re.findall(r"`(f?stp_[a-z0-9_]+)`", readme[start:end if end > 0 else None]))
    for fn in sorted(set(defined) - named):
        problems.append(f"{fn} ({defined[fn]}) is a step README's 'What airlock does with a request' does not name")
    for fn in sorted(named - set(defined)):
        problems.append(f"README's 'What airlock does with a request' names {fn}, which is no step function")
    for m in sorted(members):
        if m not in table:
            problems.append(f"{m} (enum {members[m]}) has no entry in its runner's table")
        elif table[m] not in defined:
            problems.append(f"{m}'s entry {table[m]} is not a step function")
    print(f"{len(defined)} step functions, {len(members)} steps, {len(named)} named in README")
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
