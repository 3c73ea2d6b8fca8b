#!/usr/bin/python3
"""Snapshots: the first snapshot of a large tree against tar over the same
files, and an unchanged resubmit against the first snapshot, in one
invocation.

The tree (built in a temporary directory, removed at the end): 20,000 files,
about 500 MB, laid out like a project that trains models: source and docs
(many small files), data and assets (fewer, larger), and what a realistic
.amlignore leaves out: node_modules/, a .venv/, __pycache__/ and *.pyc,
logs/, outputs/, checkpoints/*.ckpt. Every file's content is distinct, so
content addressing cannot skip any.

Figures:
  tar -cf - | cat       reads and archives every file runyard takes (the
                        list is runyard's dry run): the baseline;
  tar -cf /dev/null     the same, as the design states it; GNU tar notices
                        /dev/null and does not read file contents then, so it
                        is shown but is no baseline;
  tar -cf FILE, fsync   the same files written to an archive on the state
                        directory's file system and synced: what a snapshot
                        also does (its blobs are durable before the submit is
                        answered), for context;
  first snapshot        `runyard submit` of the tree into an empty store:
                        walk, ignore rules, hash, store, fsync;
  unchanged resubmit    the same submit again: the stat cache answers, nothing
                        is read; also with one file changed.
Budgets (docs/performance.md): first snapshot at most 1.5x tar, unchanged
resubmit at most 0.1x the first snapshot.

The runs created are kept queued behind a blocker run (--max-runs 1), so no
materialising competes with the measurements.

Usage: /usr/bin/python3 bench/snapshot.py [--build DIR] [--files N] [--mb M]
                                          [--repeat K] [--keep]
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO, Runyard

AMLIGNORE = """\
# Python
__pycache__/
*.py[cod]
.venv/
# JavaScript tooling for the docs site
node_modules/
# what runs leave behind
logs/
outputs/
checkpoints/
*.ckpt
# editors and systems
.DS_Store
*.swp
*.tmp
"""

# (directory, share of the files, mean size in KB, taken?)
LAYOUT = [
    ("src", 0.60, 5, True),
    ("docs", 0.03, 10, True),
    ("assets", 0.08, 50, True),
    ("data", 0.04, 480, True),
    ("node_modules", 0.15, 4, False),
    ("src/__pycache__", 0.06, 10, False),
    (".venv/lib", 0.025, 40, False),
    ("logs", 0.01, 100, False),
    ("outputs", 0.004, 60, False),
    ("checkpoints", 0.001, 2500, False),
]


def human(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return "%.1f %s" % (n, unit) if unit != "B" else "%d B" % n
        n /= 1000.0


def build_tree(root, nfiles, target_mb, rng):
    """Write the tree; returns (files, bytes) written."""
    pool = os.urandom(8 << 20)
    weight = sum(share * kb for _, share, kb, _ in LAYOUT)
    scale = target_mb * 1000.0 / (nfiles * weight)
    written = files = 0
    os.makedirs(root)
    with open(os.path.join(root, ".amlignore"), "w") as f:
        f.write(AMLIGNORE)
    files += 1
    for d, share, kb, _ in LAYOUT:
        count = max(1, round(nfiles * share))
        mean = kb * 1000 * scale
        for i in range(count):
            sub = os.path.join(root, d, "pkg%02d" % (i % 37)) if count > 400 else \
                os.path.join(root, d)
            os.makedirs(sub, exist_ok=True)
            ext = {"src": ".py", "docs": ".md", "assets": ".png", "data": ".parquet",
                   "node_modules": ".js", "src/__pycache__": ".pyc", ".venv/lib": ".so",
                   "logs": ".log", "outputs": ".json", "checkpoints": ".ckpt"}[d]
            size = max(16, int(rng.expovariate(1.0 / mean)))
            head = ("%s/%d\n" % (d, i)).encode()
            off = rng.randrange(len(pool) - min(size, len(pool) - 1))
            body = pool[off:off + size - len(head)]
            while len(head) + len(body) < size:  # larger than the pool
                body += pool[:size - len(head) - len(body)]
            with open(os.path.join(sub, "f%05d%s" % (i, ext)), "wb") as f:
                f.write(head + body)
            files += 1
            written += size
    return files, written


def timed(argv, **kw):
    t0 = time.monotonic()
    subprocess.run(argv, check=True, **kw)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--mb", type=float, default=500)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each repeatable figure")
    ap.add_argument("--workdir", help="where to build the tree (default: a temporary "
                    "directory under $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="leave the work directory")
    args = ap.parse_args()
    if not shutil.which("tar"):
        sys.exit("tar is not installed")

    work = tempfile.mkdtemp(prefix="runyard-bench-snapshot-", dir=args.workdir)
    daemons = []  # (runyard, [blocker run, measured runs...], go file)
    try:
        src = os.path.join(work, "project")
        t0 = time.monotonic()
        files, written = build_tree(src, args.files, args.mb, random.Random(7))
        os.sync()  # no writeback of the new tree during the measurements
        print("tree: %d files, %s, built in %.1f s (%s)" % (files, human(written),
                                                            time.monotonic() - t0, src))

        blocker = os.path.join(work, "blocker")
        os.makedirs(blocker)
        with open(os.path.join(blocker, "wait.sh"), "w") as f:
            f.write("#!/bin/sh\nwhile [ ! -e \"$1\" ]; do sleep 0.05; done\n")
        os.chmod(os.path.join(blocker, "wait.sh"), 0o755)

        def start_daemon():
            """A daemon with an empty store, its one slot held by a blocker
            run, so that no run it queues is materialised meanwhile."""
            d = os.path.join(work, "daemon%d" % len(daemons))
            os.makedirs(d)
            ry = Runyard(args.build, d, max_runs=1)
            go = os.path.join(d, "go")
            daemons.append((ry, [ry.submit(blocker, "./wait.sh", go)["id"]], go))
            return ry

        ry = start_daemon()
        limits = ["--max-snapshot-mb", "100000", "--max-snapshot-files", "10000000"]

        # What runyard takes, for tar.
        dry = json.loads(ry.cli("submit", "--dry-run", "--json", "--source", src,
                                *limits).stdout)
        taken = [e["path"] for e in dry["entries"] if e["type"] == "file"]
        listfile = os.path.join(work, "files.list")
        with open(listfile, "wb") as f:
            for p in taken:
                f.write(p.encode() + b"\0")
        print("taken: %d files, %s (.amlignore leaves out %d files, %s)" % (
            dry["files"], human(dry["bytes"]), files - dry["files"],
            human(written - dry["bytes"])))

        tar = ["tar", "-C", src, "--null", "-T", listfile, "-cf"]
        timed(tar + ["-"], stdout=subprocess.DEVNULL)  # warm the page cache
        tar_read = statistics.median(
            timed(["sh", "-c", 'tar -C "$1" --null -T "$2" -cf - | cat > /dev/null', "-",
                   src, listfile]) for _ in range(args.repeat))
        tar_null = statistics.median(timed(tar + ["/dev/null"]) for _ in range(args.repeat))
        archive = os.path.join(work, "baseline.tar")
        tar_sync = []
        for _ in range(args.repeat):
            tar_sync.append(timed(["sh", "-c", 'tar -C "$1" --null -T "$2" -cf "$3" && sync -f "$3"',
                                   "-", src, listfile, archive]))
            os.unlink(archive)
        tar_sync = statistics.median(tar_sync)

        def submit(ry):
            t = time.monotonic()
            r = json.loads(ry.cli("submit", "--json", "--source", src, *limits, "--",
                                  "true").stdout)
            t = time.monotonic() - t
            daemons[-1][1].append(r["id"])
            return t, r

        # Each first snapshot into an empty store: a daemon each.
        firsts = []
        for i in range(args.repeat):
            if i:
                ry = start_daemon()
            t, r1 = submit(ry)
            assert r1["files"] == dry["files"], (r1["files"], dry["files"])
            firsts.append(t)
        first = statistics.median(firsts)
        again = []
        for _ in range(args.repeat):
            t, r = submit(ry)
            assert r["snapshot"] == r1["snapshot"] and r["read_files"] == 0, r
            again.append(t)
        resubmit = statistics.median(again)
        changed = []
        for i in range(args.repeat):
            with open(os.path.join(src, taken[i * 97 % len(taken)]), "ab") as f:
                f.write(b"changed %d\n" % i)
            time.sleep(0.2)  # past the stat cache's racy window
            t, r = submit(ry)
            assert r["read_files"] == 1, r
            changed.append(t)
        one_changed = statistics.median(changed)

        print()
        print("%-36s %9s   %s" % ("", "time", "ratio"))
        print("%-36s %8.3fs   baseline" % ("tar -cf - | cat (reads all)", tar_read))
        print("%-36s %8.3fs   %.2fx  (GNU tar skips file data for /dev/null)" % (
            "tar -cf /dev/null", tar_null, tar_null / tar_read))
        print("%-36s %8.3fs   %.2fx  (writes and syncs what it reads, as a snapshot does)" % (
            "tar -cf FILE && sync", tar_sync, tar_sync / tar_read))
        print("%-36s %8.3fs   %.2fx tar   (budget 1.5x; %.2fx tar to a synced file)" % (
            "runyard first snapshot", first, first / tar_read, first / tar_sync))
        print("%-36s %8.3fs   %.3fx first snapshot   (budget 0.1x)" % (
            "runyard unchanged resubmit", resubmit, resubmit / first))
        print("%-36s %8.3fs   %.3fx first snapshot" % (
            "runyard resubmit, one file changed", one_changed, one_changed / first))
        print()
        print("(medians of %d runs each; every first snapshot into an empty store of its own; "
              "%d CPUs)" % (args.repeat, os.cpu_count()))
    finally:
        for ry, queued, go in daemons:
            # Nothing is left running in the work directory: the measured
            # runs are canceled while still queued, then the blocker ends.
            for run in queued[1:]:
                ry.cli("cancel", run, check=False)
            with open(go, "w"):
                pass
            ry.cli("wait", queued[0], "--timeout", "60", check=False)
            ry.stop()
        if args.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
