#!/usr/bin/python3
"""Sweep overhead per trial, against baselines in the same invocation.

A trial is a no-op shell script (it starts and exits). Measured, each on the
same number of trials N with two at a time:

  runyard sweep   one `sweep.submit` of N trials (random sampling over one
                  uniform parameter, max_concurrent 2) on a private runyardd
                  (--max-runs 2), timed from the submit to the sweep's end;
                  and the daemon's CPU time (utime+stime from /proc) over it;
  runyard submit  N trivial runs, one `runyard submit` call each, back to
                  back, then waited for (what a shell loop over a grid does);
  optuna memory   Optuna (Debian's python3-optuna), n_jobs=2, each trial
                  running the same script through subprocess, in-memory
                  storage (nothing survives a crash);
  optuna sqlite   the same with Optuna's SQLite storage (crash-safe).

Per-trial figures are wall time / N. Budgets (issue #15): runyard's sweep at
most Optuna's in-memory time per trial; the daemon at most 1 ms of CPU per
trial.

Usage: /usr/bin/python3 bench/sweep.py [--trials N] [--build DIR]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, Runyard

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import ryclient  # noqa: E402

SCRIPT = "#!/bin/sh\nexit 0\n"
TERMINAL = ("Completed", "Failed", "Canceled")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_sweep(ry, src, n):
    c = ryclient.Client(ry.socket)
    c.hello()
    cpu0 = cpu_seconds(ry.proc.pid)
    t0 = time.monotonic()
    res = c.call("sweep.submit", {
        "source": src, "command": ["noop.sh"], "experiment": "bench",
        "metric": "score", "goal": "maximize", "params": {"--x": "uniform(0, 1)"},
        "max_total": n, "max_concurrent": 2, "seed": 1})
    while True:
        show = c.call("sweep.show", {"sweep": res["id"]})
        if show["status"] in TERMINAL:
            break
        # Seldom: each look is a request the daemon's CPU time counts.
        time.sleep(0.1)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(ry.proc.pid) - cpu0
    c.close()
    if show["status"] != "Completed" or show["counts"]["Completed"] != n:
        sys.exit("the sweep ended %s with %r" % (show["status"], show["counts"]))
    return wall, cpu


def bench_submits(ry, src, n):
    cpu0 = cpu_seconds(ry.proc.pid)
    t0 = time.monotonic()
    ids = [ry.submit(src, "noop.sh")["id"] for _ in range(n)]
    for rid in ids:
        ry.cli("wait", rid)
    return time.monotonic() - t0, cpu_seconds(ry.proc.pid) - cpu0


def bench_optuna(script, n, storage):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", storage=storage,
                                sampler=optuna.samplers.RandomSampler(seed=1))

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        subprocess.run([script, "--x", str(x)], stdin=subprocess.DEVNULL, check=True)
        return x

    t0 = time.monotonic()
    study.optimize(objective, n_trials=n, n_jobs=2)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=500, help="trials per measurement (500)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="meson build directory with runyardd and runyard (./build)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    args = ap.parse_args()
    n = args.trials

    workdir = tempfile.mkdtemp(prefix="runyard-bench-sweep-")
    src = os.path.join(workdir, "src")
    os.mkdir(src)
    script = os.path.join(src, "noop.sh")
    with open(script, "w") as f:
        f.write(SCRIPT)
    os.chmod(script, 0o755)

    ry = Runyard(os.path.abspath(args.build), workdir, 2)
    try:
        sw_wall, sw_cpu = bench_sweep(ry, src, n)
        sub_wall, sub_cpu = bench_submits(ry, src, n)
    finally:
        ry.stop()
    try:
        import optuna  # noqa: F401
        have_optuna = True
    except ImportError:
        have_optuna = False
    if have_optuna:
        mem = bench_optuna(script, n, None)
        db = "sqlite:///" + os.path.join(workdir, "optuna.db")
        lite = bench_optuna(script, n, db)

    ms = 1000.0 / n
    print("runyard sweep bench: %d trials of a no-op script, 2 at a time, build %s"
          % (n, args.build))
    print()
    head = "%-34s %14s %16s %14s %14s" % ("", "wall/trial ms", "daemon CPU ms", "vs optuna-mem",
                                         "vs optuna-sql")
    print(head)
    print("-" * len(head))
    rows = [("runyard sweep (crash-safe)", sw_wall, sw_cpu),
            ("runyard submit x N (crash-safe)", sub_wall, sub_cpu)]
    if have_optuna:
        rows += [("optuna, in-memory storage", mem, None), ("optuna, SQLite storage", lite, None)]
    for name, wall, cpu in rows:
        vm = "%13.2fx" % (wall / mem) if have_optuna else "%14s" % "-"
        vs = "%13.2fx" % (wall / lite) if have_optuna else "%14s" % "-"
        print("%-34s %14.2f %16s %s %s" % (name, wall * ms,
                                            "%.3f" % (cpu * ms) if cpu is not None else "-",
                                            vm, vs))
    print("\nsweep / one submit per trial: %.2fx wall, %.2fx daemon CPU"
          % (sw_wall / sub_wall, sw_cpu / sub_cpu if sub_cpu else float("nan")))
    if not have_optuna:
        print("python3-optuna is not installed: its rows are left out (scripts/deps.sh)")
    print("ratios are runyard / baseline: below 1 is better")
    if args.keep:
        print("\nstate kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
