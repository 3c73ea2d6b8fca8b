#!/usr/bin/python3
"""Preparing with a cached environment, against spawning its interpreter directly.

A venv environment (Debian's /usr/bin/python3 with its site-packages, no
requirements) is created and built once by a first run. Then N runs of a
one-line program are submitted one at a time; for each, Preparing lasts
from the run's Preparing timestamp to its Scaling timestamp (materialising
the snapshot and finding the cached build: no build). The baseline is the
cost of spawning the environment's interpreter directly
(`python -c pass`, spawn and reap). Printed: medians and p95s, and the
ratio of the median Preparing time to the median spawn.

Usage: /usr/bin/python3 bench/envs.py [--runs N] [--build DIR] [--keep]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Runyard, median, p95, parse_ts  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="runyard-bench-envs-")
    src = os.path.join(work, "src")
    os.makedirs(src)
    with open(os.path.join(src, "hello.py"), "w") as f:
        f.write("print('hello')\n")
    reqs = os.path.join(work, "requirements.txt")
    open(reqs, "w").close()
    ry = Runyard(a.build, work, 1)
    try:
        ry.cli("env", "create", "bench", "--pip-requirements", reqs, "--python",
               "/usr/bin/python3", "--system-site-packages", "--var", "PIP_NO_INDEX=1")
        res = ry.cli("submit", "--json", "--wait", "--source", src, "--environment", "bench",
                     "--", "hello.py")
        first = json.loads(res.stdout)
        if first["status"] != "Completed":
            sys.exit("the first run (which builds) did not complete: %s" % first.get("error"))
        python = first["python"]
        prep = []
        for _ in range(a.runs):
            res = ry.cli("submit", "--json", "--wait", "--source", src, "--environment",
                         "bench", "--", "hello.py")
            run = json.loads(res.stdout)
            t = run["transitions"]
            prep.append(parse_ts(t["Scaling"]) - parse_ts(t["Preparing"]))
        spawn = []
        for _ in range(a.runs):
            t0 = time.monotonic()
            subprocess.run([python, "-c", "pass"], check=True)
            spawn.append(time.monotonic() - t0)
    finally:
        ry.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("state kept in %s" % work)
    print("Preparing, cached environment (%d runs): median %.1f ms, p95 %.1f ms"
          % (a.runs, median(prep) * 1e3, p95(prep) * 1e3))
    print("spawning its interpreter directly:       median %.1f ms, p95 %.1f ms"
          % (median(spawn) * 1e3, p95(spawn) * 1e3))
    print("ratio (Preparing / spawn): %.2f" % (median(prep) / median(spawn)))


if __name__ == "__main__":
    main()
