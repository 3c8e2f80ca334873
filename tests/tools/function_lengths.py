#!/usr/bin/env python3
"""No function on the request path is longer than about 80 lines (issue 30).
Reads every proxy/front/*.c and proxy/fetch/*.c, finds each function
definition (the house style puts a definition's braces alone in column 0),
prints the longest ones and fails naming every function over the limit.

A function's length is its lines from the first line of its signature to its
closing brace, both included: what a reader has to hold at once.

Usage: function_lengths.py [repository root] [--limit N] [--all]
(root defaults to two levels up; --all lists every function, longest first)"""
import argparse, os, re, sys

PARTS = ("proxy/front", "proxy/fetch")
LIMIT = 80
NAME = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(")


def functions(path):
    """[(name, first line, length)] for the definitions in one C file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i] != "{":
            i += 1
            continue
        # the signature: the lines above the brace back to a blank line, a
        # comment's end, a preprocessor line or the end of the previous thing
        start = i
        while start > 0:
            above = lines[start - 1]
            if (above.strip() == "" or above.rstrip().endswith(("*/", ";", "}")) or above.startswith("#")
                    or above.lstrip().startswith(("//", "*", "/*"))):
                break
            start -= 1
        sig = " ".join(lines[start:i])
        m = NAME.search(sig)
        end = i + 1
        while end < len(lines) and not lines[end].startswith("}"):
            end += 1
        if m and "=" not in sig.split("(")[0]:
            out.append((m.group(1), start + 1, end - start + 1))
        i = end + 1
    return out


def main(argv):
    ap = argparse.ArgumentParser(description="functions over the limit on proxy/'s request path")
    ap.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--limit", type=int, default=LIMIT)
    ap.add_argument("--all", action="store_true", help="list every function, longest first")
    a = ap.parse_args(argv[1:])
    root, limit = a.root, a.limit
    found = []
    for part in PARTS:
        d = os.path.join(root, part)
        for name in sorted(os.listdir(d)):
            if name.endswith(".c"):
                for fn, line, n in functions(os.path.join(d, name)):
                    found.append((n, f"{part}/{name}:{line}", fn))
    found.sort(key=lambda t: (-t[0], t[1]))
    over = [t for t in found if t[0] > limit]
    shown = found if a.all else found[:10]
    print(f"{len(found)} functions in {', '.join(PARTS)}; the longest:")
    for n, where, fn in shown:
        print(f"  {n:4d}  {fn}  ({where})")
    if over:
        print(f"FAIL: {len(over)} function(s) over {limit} lines on the request path:")
        for n, where, fn in over:
            print(f"  {fn} ({where}): {n} lines")
        return 1
    print(f"ok: none over {limit} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
