#!/usr/bin/env python3
"""No two parts of proxy/ (front, fetch, runtime, cli) may include each other
in a loop (issue 30).  Reads every proxy/<part>/*.{c,h}, draws the graph of
parts from its '#include "proxy/<part>/..."' lines, prints it, and fails when
the graph has a cycle, naming the files on each edge of it.

Usage: include_cycles.py [repository root]   (default: two levels up)"""
import os, re, sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"proxy/([a-z_]+)/([^"]+)"', re.M)


def graph(root):
    """{part: {part it includes: [(file, header), ...]}} over proxy/<part>/ files."""
    proxy = os.path.join(root, "proxy")
    edges = {}
    for part in sorted(os.listdir(proxy)):
        d = os.path.join(proxy, part)
        if not os.path.isdir(d):
            continue
        edges.setdefault(part, {})
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for to, header in INCLUDE.findall(f.read()):
                    if to != part:
                        edges[part].setdefault(to, []).append((f"{part}/{name}", f"{to}/{header}"))
    return edges


def cycles(edges):
    """Strongly connected components of more than one part (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    edges = graph(root)
    for a in sorted(edges):
        print(f"{a} -> {', '.join(sorted(edges[a])) or '(nothing)'}")
    bad = cycles(edges)
    for comp in bad:
        print(f"FAIL: proxy/ parts include each other in a loop: {' <-> '.join(comp)}")
        for a in comp:
            for b in comp:
                for f, h in edges[a].get(b, []):
                    print(f"  {f} includes {h}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
