#!/usr/bin/env python3
"""The daemon's layers, checked (docs/architecture.md).

Two checks over daemon/, each failing with the offending lines:

  includes  every `#include "x.h"` of a daemon source names a header of its
            own layer or of a lower one, and the library layers (net, store,
            snapshot) never include the daemon's context (base/context.h);
  calls     (with the daemon library given) every symbol an object file of
            the library uses comes from its own layer or a lower one, and no
            loop of files calling one another is longer than --max-loop.

The includes are read as text; the calls come from `nm` over the built
static library, so a call through a header that lies about its layer, or
a declaration written by hand, is still caught.

usage: layers.py DAEMON_DIR [DAEMON_LIB] [--max-loop N] [--report]
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

# Lowest first. Folders on one line are peers: neither calls the other.
LAYERS = [
    ["base"],
    ["net", "store", "snapshot"],
    ["runs"],
    ["streams"],
    ["registry"],
    ["exec"],
    ["services"],
    ["targets"],
    ["sweeps"],
    ["web"],
    ["ops"],
    ["core"],
]
RANK = {folder: rank for rank, peers in enumerate(LAYERS) for folder in peers}
# Blind to the server: these never see the daemon's context struct.
NO_CONTEXT = {"net", "store", "snapshot"}
CONTEXT_HEADER = "context.h"
# Separate binaries: they use nothing of the daemon's layers.
STANDALONE = {"supervisor"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(root):
    """(folder, path relative to root) of every .c/.h in a layer folder."""
    out = []
    for folder in sorted(os.listdir(root)):
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith((".c", ".h")):
                out.append((folder, os.path.join(folder, name)))
    return out


def may_use(user, used):
    if user == used:
        return True
    if user in STANDALONE or used in STANDALONE:
        return False
    if user not in RANK or used not in RANK:
        return False
    return RANK[used] < RANK[user]


def check_includes(root):
    files = sources(root)
    owner = {}
    problems = []
    for folder, rel in files:
        if folder not in RANK and folder not in STANDALONE:
            problems.append("%s: folder %r is not a layer (add it to tests/layers.py and "
                            "docs/architecture.md)" % (rel, folder))
        name = os.path.basename(rel)
        if name.endswith(".h"):
            if name in owner:
                problems.append("%s: header name also used by %s (includes are bare)" %
                                (rel, owner[name]))
            owner[name] = rel
    for folder, rel in files:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                header = os.path.basename(m.group(1))
                target = owner.get(header)
                if target is None:
                    continue  # proto/ or a system header: anyone may use it
                used = target.split(os.sep)[0]
                if header == CONTEXT_HEADER and folder in NO_CONTEXT:
                    problems.append("%s:%d: includes the daemon context %s (%s/ must not "
                                    "see it)" % (rel, lineno, target, folder))
                elif not may_use(folder, used):
                    problems.append("%s:%d: includes %s, of layer %s/, above %s/" %
                                    (rel, lineno, target, used, folder))
    return problems


def object_symbols(lib):
    """{object name: (defined symbols, undefined symbols)} from nm."""
    out = subprocess.run(["nm", "-A", lib], check=True, capture_output=True, text=True).stdout
    objs = defaultdict(lambda: (set(), set()))
    for line in out.splitlines():
        # lib.a:member.o:ADDR TYPE NAME, or lib.a:member.o:         U NAME
        head, _, rest = line.rpartition(":")
        parts = rest.split()
        if len(parts) < 2:
            continue
        kind, sym = parts[-2], parts[-1]
        member = os.path.basename(head.split(":")[-1])
        if kind == "U":
            objs[member][1].add(sym)
        elif kind.isupper():
            objs[member][0].add(sym)
    return objs


def strongly_connected(graph):
    """Tarjan's algorithm; the components, each a sorted list."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def check_calls(root, lib, max_loop, report):
    # meson names an object after its source's path: exec/exec.c -> exec_exec.c.o
    by_object = {rel.replace(os.sep, "_") + ".o": rel
                 for _, rel in sources(root) if rel.endswith(".c")}
    objs = object_symbols(lib)
    definer = {}
    for member, (defined, _) in objs.items():
        for sym in defined:
            definer[sym] = member
    graph = defaultdict(set)
    problems = []
    edges = 0
    for member, (_, undefined) in sorted(objs.items()):
        src = by_object.get(member, member)
        graph[src]
        for sym in sorted(undefined):
            other = definer.get(sym)
            if other is None or other == member:
                continue
            dst = by_object.get(other, other)
            if dst not in graph[src]:
                edges += 1
            graph[src].add(dst)
            user, used = src.split(os.sep)[0], dst.split(os.sep)[0]
            if not may_use(user, used):
                problems.append("%s calls %s (%s) of layer %s/, above %s/" %
                                (src, sym, dst, used, user))
    comps = strongly_connected(graph)
    largest = max(comps, key=len) if comps else []
    if len(largest) > max_loop:
        problems.append("%d files call one another in a loop (at most %d): %s" %
                        (len(largest), max_loop, " ".join(largest)))
    if report:
        print("call graph: %d files, %d edges, largest loop %d file(s)%s" %
              (len(graph), edges, len(largest),
               (": " + " ".join(largest)) if len(largest) > 1 else ""))
    return problems


# Every folder is on the include path, so a header named like a system one
# (limits.h, time.h) would be taken for it by every #include <...> of the
# daemon: refuse the name.
SYSTEM_INCLUDE = ["/usr/include", "/usr/include/x86_64-linux-gnu"]


def check_header_names(root):
    problems = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".h") and any(os.path.exists(os.path.join(d, f))
                                        for d in SYSTEM_INCLUDE):
                problems.append("%s: named like the system header <%s>; it would shadow it"
                                % (os.path.relpath(os.path.join(dirpath, f), root), f))
    return problems


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    max_loop = 2
    if "--max-loop" in argv:
        max_loop = int(argv[argv.index("--max-loop") + 1])
        args.remove(str(max_loop))
    report = "--report" in argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    root = args[0]
    problems = check_includes(root) + check_header_names(root)
    if len(args) > 1:
        problems += check_calls(root, args[1], max_loop, report)
    for p in problems:
        print(p)
    print("layers: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
