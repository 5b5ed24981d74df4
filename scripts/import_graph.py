#!/usr/bin/env python3
"""Draw the import graph of src/ and report its circles.

Each .rs file is a node. An edge a -> b is drawn when file a names a path
`crate::x::y…` (in a `use` or inline) or `super::…` that resolves to file b:
the longest prefix of the path that is a module file (src/x/y.rs,
src/x/y/mod.rs, src/x.rs, src/x/mod.rs). Paths into a module's own
children (`self::`, `mod x;`) are not edges, and a parent's `pub use` of its
children counts only where a path names the parent itself.

Prints the strongly connected components with more than one file (the
circles) and exits 1 if there are any. `--dot` prints the graph in DOT.
`--layers` also checks that no file outside src/lab/ names crate::lab.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
ROOT = os.path.normpath(ROOT)


def module_path(path):
    """src/a/b.rs -> ['a', 'b']; src/a/mod.rs -> ['a']; src/lib.rs -> []."""
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return rel


def files():
    out = []
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                out.append(os.path.join(dirpath, n))
    return sorted(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def expand_uses(text):
    """Yield every path a file names: `crate::a::{b, c::d}` gives a::b and a::c::d."""
    for m in re.finditer(r"\b(crate|super)((?:::\s*(?:\w+|\{))+)", text):
        start = m.start()
        # Take the whole path, braces included, by bracket matching.
        i = m.end()
        path = text[start:i]
        if path.endswith("{"):
            depth = 1
            while i < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            path = text[start:i]
        yield from flatten(re.sub(r"\s+", "", path))


def flatten(path):
    if "{" not in path:
        yield path
        return
    head, rest = path.split("{", 1)
    body = rest[:-1]
    depth, part, parts = 0, "", []
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        part += ch
    parts.append(part)
    for p in parts:
        if p in ("", "self"):
            yield head.rstrip(":")
        else:
            yield from flatten(head + p)


def resolve(segments, by_module):
    for n in range(len(segments), 0, -1):
        key = tuple(segments[:n])
        if key in by_module:
            return by_module[key]
    return None


def main():
    all_files = files()
    by_module = {tuple(module_path(f)): f for f in all_files}
    edges = {f: set() for f in all_files}
    for f in all_files:
        me = module_path(f)
        text = strip_comments(open(f, encoding="utf-8").read())
        for path in expand_uses(text):
            segs = [s for s in path.split("::") if s]
            if segs[0] == "crate":
                segs = segs[1:]
            else:
                base = me[:] if os.path.basename(f) == "mod.rs" else me[:-1]
                while segs and segs[0] == "super":
                    segs = segs[1:]
                    base = base[:-1]
                segs = base + segs
            target = resolve(segs, by_module)
            if target and target != f:
                # A module naming its own descendants is structure, not a dependency.
                t = module_path(target)
                if t[: len(me)] == me and len(t) > len(me):
                    continue
                edges[f].add(target)

    rel = lambda p: os.path.relpath(p, os.path.dirname(ROOT))
    if "--dot" in sys.argv:
        print("digraph src {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{rel(a)}" -> "{rel(b)}";')
        print("}")
        return 0

    # Tarjan's strongly connected components.
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
            sccs.append(comp)

    for v in all_files:
        if v not in index:
            visit(v)
    circles = [sorted(c) for c in sccs if len(c) > 1]
    n_edges = sum(len(e) for e in edges.values())
    print(f"{len(all_files)} files, {n_edges} import edges, {len(circles)} circle(s)")
    for c in circles:
        print(f"circle of {len(c)} files:")
        for f in c:
            inside = sorted(rel(t) for t in edges[f] if t in c)
            print(f"  {rel(f)} -> {', '.join(inside)}")
    bad = 0
    if "--layers" in sys.argv:
        lab = os.path.join(ROOT, "lab")
        for f in all_files:
            if f.startswith(lab + os.sep) or f == os.path.join(ROOT, "lib.rs"):
                continue
            for t in edges[f]:
                if t.startswith(lab + os.sep) or t == lab + ".rs":
                    print(f"layer: core file {rel(f)} imports lab file {rel(t)}")
                    bad += 1
    return 1 if circles or bad else 0


if __name__ == "__main__":
    sys.exit(main())
