#!/usr/bin/python3
"""What run.log() costs a training loop, against the same loop without it.

One run on a private runyardd times, inside the run and in one invocation,
a Python loop of N (100,000) iterations of a small training step (a
stochastic gradient step on a linear model with --weights weights, pure
Python), bare and with one run.log() per iteration, alternating, best of
--reps. It also times the same loops with an empty body, which gives the
cost of one run.log() call on its own. Then it checks that every point
logged was stored (runyard metrics), and prints the ratio.

Usage: /usr/bin/python3 bench/tracking.py [--calls N] [--weights W] [--reps R]
                                            [--build DIR] [--python PY]
       /usr/bin/python3 bench/tracking.py --history [--runs 100000] [--points 10000000]

--history fills a daemon's store with many runs and metric points (directly
with SQLite, in the daemon's schema) and times listing and querying them
through the CLI.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from latency import Runyard  # noqa: E402  (the private daemon of the latency bench)

LOOP = r'''
import json, sys, time
import runyard

run = runyard.get_run()
n, nw, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

# A tiny data set and a linear model: each step is one SGD update.
data = [([((i * 7 + j * 13) % 17) / 17.0 for j in range(nw)], (i % 5) / 5.0) for i in range(256)]
weights = [0.0] * nw
lr = 0.01


def step(i):
    xs, y = data[i & 255]
    pred = 0.0
    for w, x in zip(weights, xs):
        pred += w * x
    err = pred - y
    g = lr * err
    for j in range(nw):
        weights[j] -= g * xs[j]
    return err * err


def bare():
    t = time.perf_counter()
    for i in range(n):
        step(i)
    return time.perf_counter() - t


def logged(name):
    log = run.log
    t = time.perf_counter()
    for i in range(n):
        loss = step(i)
        log(name, loss)
    return time.perf_counter() - t


def empty():
    t = time.perf_counter()
    for i in range(n):
        pass
    return time.perf_counter() - t


def empty_logged(name):
    log = run.log
    t = time.perf_counter()
    for i in range(n):
        log(name, i)
    return time.perf_counter() - t


res = {"bare": [], "logged": [], "empty": [], "empty_logged": []}
for r in range(reps):
    res["bare"].append(bare())
    res["logged"].append(logged("loss_%d" % r))
    res["empty"].append(empty())
    res["empty_logged"].append(empty_logged("calls_%d" % r))
t = time.perf_counter()
run.flush()
res["final_flush"] = time.perf_counter() - t
print("BENCH " + json.dumps(res))
'''


def bench_loop(args):
    workdir = tempfile.mkdtemp(prefix="runyard-bench-tracking-")
    src = os.path.join(workdir, "src")
    os.mkdir(src)
    with open(os.path.join(src, "loop.py"), "w") as f:
        f.write(LOOP)
    ry = Runyard(os.path.abspath(args.build), workdir, 2)
    try:
        t0 = time.monotonic()
        run = json.loads(ry.cli("submit", "--json", "--source", src, "--python", args.python,
                                "--wait", "--", "loop.py", str(args.calls), str(args.weights),
                                str(args.reps)).stdout)
        wall = time.monotonic() - t0
        if run["status"] != "Completed":
            sys.exit("the bench run ended %s: %s" % (run["status"], run.get("error")))
        lines = json.loads(ry.cli("logs", run["id"], "--json").stdout)
        res = next(json.loads(l["text"][6:]) for l in lines if l["text"].startswith("BENCH "))
        summary = json.loads(ry.cli("metrics", run["id"], "--json").stdout)["metrics"]
    finally:
        ry.stop()
    counts = {m["name"]: m["count"] for m in summary}
    want = {"%s_%d" % (k, r): args.calls for r in range(args.reps) for k in ("loss", "calls")}
    stored = sum(counts.values())
    logged = sum(want.values())

    bare, with_log = min(res["bare"]), min(res["logged"])
    empty, empty_log = min(res["empty"]), min(res["empty_logged"])
    print("runyard tracking bench: %d run.log() calls per loop, best of %d, %s, build %s"
          % (args.calls, args.reps, args.python, args.build))
    print()
    print("%-46s %10s %12s %8s" % ("", "bare (s)", "run.log (s)", "ratio"))
    print("%-46s %10.3f %12.3f %7.2fx" % (
        "training loop (SGD step, %d weights)" % args.weights, bare, with_log, with_log / bare))
    print("%-46s %10.3f %12.3f %7.2fx" % ("empty loop", empty, empty_log, empty_log / empty))
    print()
    print("cost of one run.log() call: %.2f us (empty loop); a training step here: %.2f us"
          % ((empty_log - empty) / args.calls * 1e6, bare / args.calls * 1e6))
    print("final flush: %.1f ms; submit to Completed: %.2f s" % (res["final_flush"] * 1e3, wall))
    print("points stored: %d of %d logged%s" % (
        stored, logged, "" if counts == want else "  MISMATCH: %r" % counts))
    if args.keep:
        print("state kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if counts == want else 1


def fill_history(db, runs, points):
    """runs runs (one experiment each of 100), points points over 4 series of
    some runs, the newest run holding the longest series."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA synchronous = OFF")
    c.execute("BEGIN")
    now = time.time()
    c.executemany("INSERT INTO experiments(id, name, created_at) VALUES(?, ?, ?)",
                  [(e, "exp%d" % e, now) for e in range(1, runs // 100 + 2)])
    c.executemany(
        "INSERT INTO runs(seq, id, experiment_id, status, command, argv, python, source, "
        "snapshot, created_at, started_at, ended_at, token) "
        "VALUES(?, ?, ?, 'Completed', '[\"t.py\"]', '[\"t.py\"]', 'python3', '/src', 'ab', ?, ?, ?, ?)",
        ((s, "exp%d_%d_%08x" % (s // 100 + 1, s, s), s // 100 + 1, now - runs + s,
          now - runs + s + 1, now - runs + s + 2, "%032x" % s) for s in range(1, runs + 1)))
    # Four series per run with points; the newest run gets a quarter of them.
    big = points // 4
    per_run = 1000
    with_points = (points - big) // (4 * per_run)
    sid = 0
    series = []
    for s in list(range(runs - with_points, runs)) + [runs]:
        n = per_run if s != runs else big // 4
        for name in ("loss", "accuracy", "lr", "grad_norm"):
            sid += 1
            series.append((sid, s, name, n))
    c.executemany("INSERT INTO metrics(id, run_seq, name, kind, count, numeric, min, max, "
                  "last_step, last_ts, last_num) VALUES(?, ?, ?, 'scalar', ?, ?, 0, 1, ?, ?, 0.5)",
                  ((i, s, name, n, n, n - 1, now) for i, s, name, n in series))
    total = 0
    for i, s, name, n in series:
        c.executemany("INSERT INTO metric_points(metric_id, idx, step, ts, num) "
                      "VALUES(?, ?, ?, ?, ?)",
                      ((i, k, k, now + k * 1e-3, (k % 1000) / 1000.0) for k in range(n)))
        total += n
    c.execute("COMMIT")
    c.close()
    return total


def bench_history(args):
    workdir = tempfile.mkdtemp(prefix="runyard-bench-history-")
    ry = Runyard(os.path.abspath(args.build), workdir, 2)
    ry.stop()  # the schema is made; fill it while no daemon holds it
    db = os.path.join(ry.state, "runyard.db")
    t0 = time.monotonic()
    total = fill_history(db, args.runs, args.points)
    fill = time.monotonic() - t0
    ry = Runyard(os.path.abspath(args.build), workdir, 2)

    def timed(*cli, reps=5):
        best = None
        for _ in range(reps):
            t = time.monotonic()
            ry.cli(*cli)
            d = time.monotonic() - t
            best = d if best is None else min(best, d)
        return best * 1e3

    t_true = timed("daemon", "status")  # the floor: one CLI call and one round trip
    rows = [
        ("daemon status (the floor of a CLI call)", t_true),
        ("runs --limit 100", timed("runs", "--limit", "100", "--json")),
        ("runs --experiment NAME (one of %d)" % (args.runs // 100 + 1),
         timed("runs", "--experiment", "exp%d" % (args.runs // 200 + 1), "--json")),
        ("show (a run in the middle)", timed("show", str(args.runs // 2), "--json")),
        ("metrics RUN (4 series of %d points)" % (args.points // 16),
         timed("metrics", str(args.runs), "--json")),
        ("compare two runs", timed("compare", str(args.runs - 1), str(args.runs), "--json")),
    ]
    # One page of points through the protocol, not the whole series.
    import socket
    import struct

    def rpc(op, a):
        s = socket.socket(socket.AF_UNIX)
        s.connect(ry.socket)

        def call(i, op, a):
            p = json.dumps({"id": i, "op": op, "args": a}).encode()
            s.sendall(b"RYD1" + struct.pack(">I", len(p)) + p)
            h = b""
            while len(h) < 8:
                h += s.recv(8 - len(h))
            n = struct.unpack(">I", h[4:])[0]
            b = b""
            while len(b) < n:
                b += s.recv(n - len(b))
            return json.loads(b)
        call(1, "hello", {"proto": 1})
        best = None
        for _ in range(5):
            t = time.monotonic()
            r = call(2, op, a)
            d = time.monotonic() - t
            best = d if best is None else min(best, d)
        s.close()
        assert r["ok"], r
        return best * 1e3

    rows.append(("run.metrics RUN with spark=24 (what a terminal shows)",
                 rpc("run.metrics", {"run": args.runs, "spark": 24})))
    rows.append(("run.metrics RUN NAME: 10,000 of its %d points (socket)" % (args.points // 16),
                 rpc("run.metrics", {"run": args.runs, "name": "loss",
                                     "after": args.points // 32, "limit": 10000})))
    ry.stop()
    print("runyard history bench: %d runs, %d metric points (filled in %.0f s), build %s"
          % (args.runs, total, fill, args.build))
    print()
    for name, ms in rows:
        print("%-62s %8.1f ms" % (name, ms))
    if args.keep:
        print("state kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100000, help="run.log() calls per loop")
    ap.add_argument("--weights", type=int, default=8, help="weights of the model a step updates")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (the best counts)")
    ap.add_argument("--python", default="/usr/bin/python3", help="the run's interpreter")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="meson build directory with runyardd and runyard (./build)")
    ap.add_argument("--history", action="store_true", help="time queries over a large history")
    ap.add_argument("--runs", type=int, default=100000, help="--history: runs")
    ap.add_argument("--points", type=int, default=10000000, help="--history: metric points")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    args = ap.parse_args()
    sys.exit(bench_history(args) if args.history else bench_loop(args))


if __name__ == "__main__":
    main()
