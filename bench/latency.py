#!/usr/bin/python3
"""Latency and throughput of trivial runs, against baselines in the same invocation.

A trivial run is a shell script that prints one line. Against a private
runyardd (--max-runs = number of CPUs), each run is submitted by one
`runyard submit` call, as a user would:

  latency     runs one at a time; for each, the time from just before the
              submit is spawned to (1) the timestamp runyard stored for the
              run's first output line and (2) the moment `submit --wait`
              returns with the run finished;
  throughput  all runs submitted back to back, then waited for: wall time
              until every run is terminal.

Baselines: the same script spawned directly (time to its first output line;
spawn+reap one after another), and, when task-spooler is installed, the
same jobs through `tsp` (tsp -f for latency; submit all, then tsp -w each,
for throughput).

Usage: /usr/bin/python3 bench/latency.py [--runs N] [--build DIR]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, Runyard, median, p95

SCRIPT = "#!/bin/sh\necho one line\n"


def bench_runyard(ry, src, n):
    first, finished = [], []
    for _ in range(n):
        t0 = time.time()
        run = ry.submit(src, wait=True)
        t1 = time.time()
        if run["status"] != "Completed":
            sys.exit("run %s ended %s" % (run["id"], run["status"]))
        finished.append(t1 - t0)
        first.append(ry.first_line_ts(run["id"]) - t0)

    t0 = time.monotonic()
    ids = [ry.submit(src)["id"] for _ in range(n)]
    for rid in ids:
        ry.cli("wait", rid)
    wall = time.monotonic() - t0
    return first, finished, wall


def bench_direct(script, n):
    first, finished = [], []
    for _ in range(n):
        t0 = time.time()
        p = subprocess.Popen([script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        p.stdout.readline()
        t1 = time.time()
        p.stdout.read()
        p.wait()
        t2 = time.time()
        first.append(t1 - t0)
        finished.append(t2 - t0)
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run([script], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    return first, finished, wall


def bench_tsp(tsp, script, workdir, n, slots):
    env = dict(os.environ, TS_SOCKET=os.path.join(workdir, "tsp.sock"), TMPDIR=workdir,
               TS_MAXFINISHED=str(4 * n + 10))

    def run(*args):
        p = subprocess.run([tsp] + list(args), env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            sys.exit("tsp %s failed: %s" % (" ".join(args), p.stderr))
        return p.stdout.strip()

    run("-S", str(slots))
    finished = []
    for _ in range(n):
        t0 = time.time()
        run("-f", script)
        finished.append(time.time() - t0)
    t0 = time.monotonic()
    ids = [run(script) for _ in range(n)]
    for jid in ids:
        run("-w", jid)
    wall = time.monotonic() - t0
    run("-K")
    return finished, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per measurement (200)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="meson build directory with runyardd and runyard (./build)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    args = ap.parse_args()
    n = args.runs
    slots = os.cpu_count() or 1

    workdir = tempfile.mkdtemp(prefix="runyard-bench-")
    src = os.path.join(workdir, "src")
    os.mkdir(src)
    script = os.path.join(src, "one.sh")
    with open(script, "w") as f:
        f.write(SCRIPT)
    os.chmod(script, 0o755)

    ry = Runyard(os.path.abspath(args.build), workdir, slots)
    try:
        ry_first, ry_fin, ry_wall = bench_runyard(ry, src, n)
    finally:
        ry.stop()
    d_first, d_fin, d_wall = bench_direct(script, n)
    tsp = shutil.which("tsp")
    if tsp:
        t_fin, t_wall = bench_tsp(tsp, script, workdir, n, slots)

    ms = 1000.0
    rows = [
        ("submit -> first output, median (ms)", median(ry_first) * ms, median(d_first) * ms, None),
        ("submit -> first output, p95 (ms)", p95(ry_first) * ms, p95(d_first) * ms, None),
        ("submit -> finished, median (ms)", median(ry_fin) * ms, median(d_fin) * ms,
         median(t_fin) * ms if tsp else None),
        ("submit -> finished, p95 (ms)", p95(ry_fin) * ms, p95(d_fin) * ms,
         p95(t_fin) * ms if tsp else None),
        ("%d runs back to back, wall (s)" % n, ry_wall, d_wall, t_wall if tsp else None),
        ("throughput (runs/s)", n / ry_wall, n / d_wall, n / t_wall if tsp else None),
    ]
    print("runyard latency bench: %d trivial runs, %d CPUs, --max-runs %d, build %s"
          % (n, slots, slots, args.build))
    print("direct = the script spawned with subprocess; tsp = task-spooler with %d slots%s"
          % (slots, "" if tsp else " (not installed)"))
    print()
    head = "%-38s %10s %10s %10s %15s %12s" % ("", "runyard", "direct", "tsp",
                                                "runyard/direct", "runyard/tsp")
    print(head)
    print("-" * len(head))

    def fmt(x):
        return "%10.2f" % x if x is not None else "%10s" % "-"

    for name, r, d, t in rows:
        print("%-38s %s %s %s %14.2fx %11s" % (
            name, fmt(r), fmt(d), fmt(t), r / d, ("%.2fx" % (r / t)) if t else "-"))

    print("\nratios are runyard / baseline: below 1 is better for times, above 1 for throughput")
    if args.keep:
        print("\nstate kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
