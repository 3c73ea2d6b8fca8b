"""git is the oracle for ignore rules.

Hundreds of generated cases, each a small tree with ignore files in it:
the set of files `runyard submit --dry-run` would take must be the set
`git ls-files --others --exclude-per-directory=FILE` lists in the same
tree, and what `runyard ignore check` says decides about a path must be the
file, line and pattern `git check-ignore -v --no-index` names.

Cases are generated from a seed, so a failure is reproducible: the message
prints the seed, the case number and the whole case (tree and ignore
files). RUNYARD_ORACLE_SEED and RUNYARD_ORACLE_CASES change the seed and the
number of cases; RUNYARD_ORACLE_ONLY=N runs case N alone.
"""

import json
import os
import random
import shutil
import subprocess

import pytest

SEED = int(os.environ.get("RUNYARD_ORACLE_SEED", "20261128"))
CASES = int(os.environ.get("RUNYARD_ORACLE_CASES", "400"))
ONLY = os.environ.get("RUNYARD_ORACLE_ONLY")

# Names chosen to meet the syntax: escapes, specials that are literal in a
# name, spaces (trailing too), dots, case, non-ASCII.
COMPONENTS = [
    "a", "b", "ab", "abc", "foo", "bar", "x.py", "y.txt", "z.log", "data", "logs", "build",
    "a.tmp", "keep.tmp", "#hash", "!bang", "sp ace", "trail ", "[x]", "st*r", "q?", "Ab",
    "B", "a.b.c", ".hidden", "node_modules", "__pycache__", "x-1", "\u00e9t\u00e9", "back\\sl",
    "out", "deep",
]

GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
for k in list(GIT_ENV):
    if k.startswith("GIT_") and k not in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL",
                                          "GIT_OPTIONAL_LOCKS"):
        del GIT_ENV[k]


def git(root, *args, check=True):
    return subprocess.run(["git", "-C", str(root)] + list(args), env=GIT_ENV,
                          capture_output=True, check=check)


# -- generation --------------------------------------------------------------------


def gen_tree(rng, depth=0, prefix=""):
    """[(path, kind)] with kind "file", "dir" or "link:TARGET"."""
    out = []
    for name in rng.sample(COMPONENTS, rng.randint(1, 5)):
        path = prefix + name
        if depth < 3 and rng.random() < 0.35:
            out.append((path, "dir"))
            out += gen_tree(rng, depth + 1, path + "/")
        else:
            out.append((path, "file"))
    return out


def add_links(rng, entries):
    files = [p for p, k in entries if k == "file"]
    dirs = [p for p, k in entries if k == "dir"]
    taken = {p for p, _ in entries}
    for _ in range(rng.randint(0, 2)):
        if not files:
            break
        target = rng.choice(files + dirs)
        where = rng.choice([""] + [d + "/" for d in dirs])
        name = where + "lnk%d" % rng.randint(0, 9)
        if name in taken or target.startswith(name + "/"):
            continue
        depth = name.count("/")
        entries.append((name, "link:" + "../" * depth + target))
        taken.add(name)


def escape(rng, s):
    """Escape what would not be literal, sometimes (leaving it is a case too)."""
    if rng.random() < 0.4:
        return s
    out = []
    for i, c in enumerate(s):
        if c in "*?[\\" or (c == " " and i == len(s) - 1) or (i == 0 and c in "#!"):
            out.append("\\")
        out.append(c)
    return "".join(out)


def wild(rng, comp):
    """A component with some characters turned into wildcards."""
    if not comp or rng.random() < 0.45:
        return escape(rng, comp)
    r = rng.random()
    i = rng.randrange(len(comp))
    if r < 0.25:
        return escape(rng, comp[:i]) + "?" + escape(rng, comp[i + 1:])
    if r < 0.5:
        j = rng.randint(i, len(comp))
        # "**" inside a component is a plain "*" to git, except right after
        # a literal prefix (see ignore.c).
        star = "**" if rng.random() < 0.3 else "*"
        return escape(rng, comp[:i]) + star + escape(rng, comp[j:])
    if r < 0.65:
        return "*" + escape(rng, comp[i:])
    c = comp[i]
    cls = rng.choice(["[%s]" % c, "[%sxyz]" % c, "[!%s]" % c, "[^q]", "[a-f]", "[A-Z]",
                      "[[:alpha:]]", "[[:digit:][:punct:]]", "[]a]", "[", "[!]-]"])
    return escape(rng, comp[:i]) + cls + escape(rng, comp[i + 1:])


def gen_pattern(rng, paths):
    r = rng.random()
    if r < 0.04:
        return "# a comment"
    if r < 0.07:
        return ""
    if r < 0.09:
        return rng.choice(["*", "**", "/", "!", "*/", "**/*", "\\", "*.*"])
    src = rng.choice(paths) if paths and rng.random() < 0.75 else rng.choice(COMPONENTS)
    parts = src.split("/")
    start = rng.randrange(len(parts))
    parts = parts[start:]
    comps = [wild(rng, c) for c in parts]
    m = rng.random()
    if m < 0.35:
        pat = comps[-1]
    elif m < 0.55:
        pat = "/".join(comps)
    elif m < 0.7:
        pat = "/" + "/".join(comps)
    elif m < 0.8:
        pat = "**/" + comps[-1]
    elif m < 0.9:
        pat = "/".join(comps[:max(1, len(comps) - 1)]) + "/**"
    else:
        k = rng.randrange(len(comps))
        pat = "/".join(comps[:k] + ["**"] + comps[k:])
    if rng.random() < 0.2:
        pat += "/"
    if rng.random() < 0.25:
        pat = "!" + pat
    if rng.random() < 0.06:
        pat += rng.choice([" ", "  ", "\\ ", " \\ "])
    return pat


def gen_case(rng):
    entries = gen_tree(rng)
    if rng.random() < 0.3:
        add_links(rng, entries)
    kind = ".amlignore" if rng.random() < 0.33 else ".gitignore"
    paths = [p for p, _ in entries]
    dirs = [""] + [p for p, k in entries if k == "dir"]
    files = {}
    for d in dirs:
        if d and rng.random() > 0.35:
            continue
        lines = [gen_pattern(rng, [p[len(d) + 1:] if d else p for p in paths
                                   if not d or p.startswith(d + "/")])
                 for _ in range(rng.randint(1, 7))]
        eol = "\r\n" if rng.random() < 0.1 else "\n"
        text = eol.join(lines) + (eol if rng.random() < 0.85 else "")
        if rng.random() < 0.05:
            text = "\ufeff" + text
        prefix = d + "/" if d else ""
        files[prefix + kind] = text
        if kind == ".amlignore" and rng.random() < 0.5:
            # The other kind, which must not be read.
            files[prefix + ".gitignore"] = "*\n"
    return {"entries": entries, "kind": kind, "ignore_files": files}


def build_case(root, case):
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for path, kind in case["entries"]:
        p = root / path
        if kind == "dir":
            p.mkdir(exist_ok=True)
        elif kind == "file":
            p.write_bytes(b"x")
        else:
            os.symlink(kind[5:], p)
    for path, text in case["ignore_files"].items():
        (root / path).write_bytes(text.encode())
    git(root, "init", "-q")


def describe(seed, n, case, extra):
    lines = ["oracle case %d (RUNYARD_ORACLE_SEED=%d RUNYARD_ORACLE_ONLY=%d):" % (n, seed, n),
             "  tree:"]
    for path, kind in case["entries"]:
        lines.append("    %-10s %r" % (kind, path))
    for path, text in sorted(case["ignore_files"].items()):
        lines.append("  %r:" % path)
        for i, line in enumerate(text.split("\n"), 1):
            lines.append("    %3d %r" % (i, line))
    return "\n".join(lines + extra)


# -- the two sides ------------------------------------------------------------------


def git_taken(root, kind):
    out = git(root, "ls-files", "--others", "-z", "--exclude-per-directory=" + kind).stdout
    return {p.decode() for p in out.split(b"\0") if p}


def runyard_taken(daemon, root):
    res = daemon.cli("submit", "--dry-run", "--json", "--source", root,
                     "--max-snapshot-files", "1000000", check=False)
    assert res.rc == 0, res
    doc = json.loads(res.stdout)
    assert not doc["truncated"]
    return {e["path"] for e in doc["entries"] if e["type"] in ("file", "symlink")}


def git_explain(root, case, paths):
    """{path: (source, line, pattern) or None} from git check-ignore -v -n.

    check-ignore reads .gitignore files only: for an .amlignore case it runs
    on a copy of the tree in which the .amlignore files are the .gitignore
    files, and the names it reports are mapped back."""
    kind = case["kind"]
    if kind != ".gitignore":
        mirror = root.parent / (root.name + "-as-git")
        build_case(mirror, dict(case, ignore_files={
            p[:-len(kind)] + ".gitignore": t for p, t in case["ignore_files"].items()
            if p.endswith(kind)}))
        root = mirror
    res = subprocess.run(["git", "-C", str(root), "check-ignore", "-v", "-n", "-z", "--stdin",
                          "--no-index"], env=GIT_ENV, capture_output=True,
                         input=b"".join(p.encode() + b"\0" for p in paths))
    assert res.returncode in (0, 1), res.stderr
    fields = res.stdout.split(b"\0")
    out = {}
    for i in range(0, len(fields) - 3, 4):
        src, line, pat, path = (f.decode() for f in fields[i:i + 4])
        if src.endswith(".gitignore"):
            src = src[:-len(".gitignore")] + kind
        out[path] = (src, int(line), pat) if src else None
    return out


def runyard_explain(daemon, root, paths):
    res = daemon.rpc("ignore.check", {"source": str(root), "paths": paths})
    out = {}
    for r in res["results"]:
        out[r["path"]] = (r["source"], r["line"], r["pattern"]) if "source" in r else None
    return out


def test_git_is_the_oracle(daemon, tmp_path):
    rng = random.Random(SEED)
    failures = []
    some_excluded = some_taken = 0
    numbers = range(CASES) if ONLY is None else [int(ONLY)]
    cases = []
    for n in range(max(numbers) + 1):
        cases.append(gen_case(rng))  # always generated in order: case N is case N
    for n in numbers:
        case = cases[n]
        root = tmp_path / "case"
        build_case(root, case)
        want = git_taken(root, case["kind"])
        got = runyard_taken(daemon, root)
        on_disk = sum(1 for _, k in case["entries"] if k != "dir") + len(case["ignore_files"])
        some_excluded += len(want) < on_disk
        some_taken += len(want) > 0
        extra = []
        if want != got:
            extra += ["  taken by runyard only: %r" % sorted(got - want),
                      "  taken by git only:     %r" % sorted(want - got)]
        # Explanations for a sample of paths (files and directories).
        sample = [p for p, k in case["entries"]]
        rng2 = random.Random(SEED * 1000 + n)
        sample = rng2.sample(sample, min(len(sample), 6))
        if sample:
            ge = git_explain(root, case, sample)
            re_ = runyard_explain(daemon, root, sample)
            for p in sample:
                if ge.get(p) != re_.get(p):
                    extra.append("  explanation of %r: git %r, runyard %r" % (p, ge.get(p),
                                                                            re_.get(p)))
        if extra:
            failures.append(describe(SEED, n, case, extra))
            if len(failures) >= 5:
                break
    assert not failures, "runyard and git disagree:\n\n" + "\n\n".join(failures)
    if ONLY is None:
        # The cases must exercise both outcomes, or agreeing proves little.
        assert some_excluded > CASES // 3 and some_taken > CASES // 3, (some_excluded,
                                                                          some_taken)
