#!/usr/bin/python3
"""Log ingestion: a run printing 1,000,000 lines, against the same program
writing to a file, in one invocation.

Two writers: a Python loop (unbuffered, as runyard runs Python) and `seq`
(a fast C writer, the worst case for the supervisor). For each, the
baseline is the program with stdout redirected to a file; the runyard
figure is submit to Completed, every line stored (checked). Budget: at most
1.25x.

Usage: /usr/bin/python3 bench/logs.py [--lines N] [--build DIR] [--repeat K]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO, Runyard

PY = "/usr/bin/python3"
WRITER = """import sys
w = sys.stdout.write
for i in range(int(sys.argv[1])):
    w("line %d of the run's output\\n" % i)
"""


def direct(argv, out, env):
    t0 = time.monotonic()
    with open(out, "wb") as f:
        subprocess.run(argv, stdout=f, stdin=subprocess.DEVNULL, env=env, check=True)
    return time.monotonic() - t0


def through_runyard(ry, src, command, lines, python=None):
    t0 = time.monotonic()
    run = ry.submit(src, *command, wait=True, python=python)
    wall = time.monotonic() - t0
    if run["status"] != "Completed":
        sys.exit("run %s ended %s" % (run["id"], run["status"]))
    stored = ry.show(run["id"])["log_lines"]
    if stored != lines:
        sys.exit("run %s stored %d lines of %d" % (run["id"], stored, lines))
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="runyard-bench-logs-")
    try:
        src = os.path.join(work, "src")
        os.mkdir(src)
        with open(os.path.join(src, "writer.py"), "w") as f:
            f.write(WRITER)
        ry = Runyard(args.build, work, max_runs=1)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        out = os.path.join(work, "out.txt")
        n = str(args.lines)
        cases = [
            ("python, unbuffered", [PY, os.path.join(src, "writer.py"), n],
             ["writer.py", n], PY),
            ("seq (C)", ["seq", "1", n], ["seq", "1", n], None),
        ]
        rows = []
        try:
            for name, argv, command, python in cases:
                base, ours = [], []
                for _ in range(args.repeat):
                    base.append(direct(argv, out, env))
                    ours.append(through_runyard(ry, src, command, args.lines, python))
                rows.append((name, statistics.median(base), statistics.median(ours)))
        finally:
            ry.stop()
        print("log ingestion: %d lines per run, median of %d, build %s"
              % (args.lines, args.repeat, args.build))
        print("%-22s %12s %12s %8s" % ("writer", "to file (s)", "runyard (s)", "ratio"))
        for name, base, ours in rows:
            print("%-22s %12.3f %12.3f %7.2fx" % (name, base, ours, ours / base))
        print("every line stored: yes (checked per run); budget: ratio <= 1.25")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
