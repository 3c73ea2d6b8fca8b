#!/usr/bin/python3
"""The web view's budgets (docs/web.md) on a large history.

A private runyardd gets --runs runs (100,000; written straight into its
SQLite store by the history bench's fill, bench/tracking.py) and one real
run that logs --points points (10,000,000) of one series through the SDK,
so the series and its rollups are stored by the daemon's own ingest. Then,
in one invocation, each figure beside the baseline it is compared with:

  - the first runs page (GET /api/runs), against GET /api/session, the floor
    of one authenticated request on the same keep-alive connection;
  - a chart of the 10,000,000-point series, against a chart of a 100-point
    series of the same run, and the points it puts on the wire;
  - in headless Chromium (bench/web-page.mjs): the runs page's first paint
    and its first table row, against the paint of a one-line page;
  - a live log line: how long after a run printed it the run page shows it;
  - the static assets the page loads, gzipped.

Times are wall time on the client over loopback (so they hold the server's
time and a little more), min / median / max of --reps requests. MLflow's
documented limits are printed beside them as the peer figures (MLflow is not
installed here).

Usage: /usr/bin/python3 bench/web.py [--runs 100000] [--points 10000000]
                                     [--reps 20] [--build DIR] [--keep]
"""

import argparse
import gzip
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Runyard, median  # noqa: E402
from tracking import fill_history  # noqa: E402

LOGGER = r'''
import sys, runyard
run = runyard.get_run()
n = int(sys.argv[1])
for i in range(100):
    run.log("short", i * 0.5)
for i in range(n):
    # A slow ramp with one spike in the middle: the chart must keep it.
    run.log("loss", 1e6 if i == n // 2 else (i % 1000) / 1000.0)
'''

TICKER = r'''
import sys, time
for i in range(int(sys.argv[1])):
    print("tick %.3f" % time.time(), flush=True)
    time.sleep(0.25)
'''

BUDGETS = {"runs": 50.0, "chart": 50.0, "paint": 300.0, "points": 2000, "live": 1000.0,
           "assets": 100 * 1024}

PEERS = [
    "MLflow (documented limits; not installed here):",
    "  search_runs: max_results 1,000 by default, at most 50,000 per request",
    "  get-history: all of a metric's points, at most 25,000 per page, not downsampled",
    "  the UI's runs table broke at 1,701 runs (mlflow#627); a 320-point chart"
    " read 25,000 rows (mlflow#24169)",
]


class Client:
    """One keep-alive HTTP connection with the token's cookie."""

    def __init__(self, hostport, token):
        host, port = hostport.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.headers = {"Host": hostport, "Authorization": "Bearer " + token}

    def get(self, path):
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit("GET %s: %d %s" % (path, r.status, body[:200]))
        return body

    def timed(self, path, reps):
        self.get(path)  # warm: the page cache, the prepared statements
        out = []
        for _ in range(reps):
            t = time.perf_counter()
            body = self.get(path)
            out.append((time.perf_counter() - t) * 1e3)
        return out, json.loads(body)


def spread(xs):
    return "%8.2f %8.2f %8.2f" % (min(xs), median(xs), max(xs))


def assets_gzipped():
    """What index.html loads, each file gzipped as a server would send it."""
    files = [os.path.join(REPO, "web", f) for f in sorted(os.listdir(os.path.join(REPO, "web")))
             if f.endswith((".html", ".js", ".css"))]
    vendor = os.path.join(REPO, "node_modules", "uplot", "dist")
    files += [os.path.join(vendor, "uPlot.iife.min.js"), os.path.join(vendor, "uPlot.min.css")]
    raw = gz = 0
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        raw += len(data)
        gz += len(gzip.compress(data, 9))
    return len(files), raw, gz


def give_every_run_an_accuracy(db, runs):
    """A last "acc" value for each run, so the table can be sorted by it."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA synchronous = OFF")
    first = c.execute("SELECT coalesce(max(id), 0) FROM metrics").fetchone()[0] + 1
    c.executemany("INSERT INTO metrics(id, run_seq, name, kind, count, numeric, min, max, "
                  "last_step, last_ts, last_num) VALUES(?, ?, 'acc', 'scalar', 1, 1, ?, ?, 0, 0, ?)",
                  ((first + s, s, v, v, v) for s, v in
                   ((s, ((s * 2654435761) % 100003) / 100003.0) for s in range(1, runs + 1))))
    c.commit()
    c.close()


def wait_points(ry, run_id, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ms = json.loads(ry.cli("metrics", run_id, "--json").stdout)
        series = ms.get("metrics", ms) if isinstance(ms, dict) else ms
        for m in series:
            if m.get("name") == "loss" and m.get("count") == n:
                return
        time.sleep(0.5)
    sys.exit("run %s: the daemon did not store %d points in %d s" % (run_id, n, timeout))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100000)
    ap.add_argument("--points", type=int, default=10000000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    for f in (os.path.join(REPO, "node_modules", "playwright-core"),
              os.path.join(REPO, "node_modules", "uplot")):
        if not os.path.isdir(f):
            sys.exit("%s is missing: run bash scripts/web-setup.sh" % f)

    workdir = tempfile.mkdtemp(prefix="runyard-bench-web-")
    ry = Runyard(build, workdir, 2)
    ry.stop()  # the schema is made; fill it while no daemon holds it
    t0 = time.monotonic()
    db = os.path.join(ry.state, "runyard.db")
    fill_history(db, args.runs, 0)
    give_every_run_an_accuracy(db, args.runs)
    fill = time.monotonic() - t0
    env = dict(os.environ, RUNYARD_WEB_DIR=os.path.join(REPO, "web"),
               RUNYARD_VENDOR_DIR=os.path.join(REPO, "node_modules", "uplot", "dist"))
    os.environ.update(env)
    ry = Runyard(build, workdir, 2, extra=["--http", "127.0.0.1:0"])
    try:
        with open(os.path.join(ry.state, "web.url")) as f:
            url = f.read().strip().split("?")[0].rstrip("/")
        with open(os.path.join(ry.state, "web.token")) as f:
            token = f.read().strip()
        hostport = url.split("://", 1)[1]

        src = os.path.join(workdir, "src")
        os.makedirs(src)
        with open(os.path.join(src, "logger.py"), "w") as f:
            f.write(LOGGER)
        with open(os.path.join(src, "ticker.py"), "w") as f:
            f.write(TICKER)
        t0 = time.monotonic()
        big = ry.submit(src, "logger.py", str(args.points), wait=True, python="/usr/bin/python3")
        if big.get("status") != "Completed":
            sys.exit("the logging run ended %s" % big.get("status"))
        wait_points(ry, big["id"], args.points, 600)
        ingest = time.monotonic() - t0

        c = Client(hostport, token)
        floor, _ = c.timed("/api/session", args.reps)
        page, body = c.timed("/api/runs?limit=50", args.reps)
        assert len(body["runs"]) == 50, body
        by_acc, body = c.timed("/api/runs?limit=50&sort=metric:acc", args.reps)
        assert len(body["runs"]) == 50, body
        deep = "/api/runs?limit=50&sort=metric:acc&before=" + body["next"]
        for _ in range(200):  # 10,000 runs further down
            deep = "/api/runs?limit=50&sort=metric:acc&before=" + json.loads(c.get(deep))["next"]
        by_acc_deep, _ = c.timed(deep, args.reps)
        chart, body = c.timed("/api/runs/%s/metrics/loss?points=1000" % big["id"], args.reps)
        wire = len(body["points"])
        assert body["count"] == args.points and max(p[1] for p in body["points"]) == 1e6, \
            "the spike is lost"
        short, _ = c.timed("/api/runs/%s/metrics/short?points=1000" % big["id"], args.reps)
        chart2k, body2k = c.timed("/api/runs/%s/metrics/loss?points=2000" % big["id"], args.reps)

        live = ry.submit(src, "ticker.py", "80", python="/usr/bin/python3")
        page_js = os.path.join(REPO, "bench", "web-page.mjs")
        p = subprocess.run(["node", page_js, url, token, live["id"], str(min(args.reps, 10))],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
        if p.returncode != 0:
            sys.exit("bench/web-page.mjs failed: %s" % p.stderr[-2000:])
        b = json.loads(p.stdout.strip().splitlines()[-1])
        ry.cli("cancel", live["id"], check=False)
    finally:
        ry.stop()

    nfiles, raw, gz = assets_gzipped()
    print("runyard web bench: %d runs (filled in %.1f s), one series of %d points stored by the "
          "daemon's ingest in %.1f s (%.0f points/s), build %s"
          % (args.runs, fill, args.points, ingest, args.points / ingest, build))
    print()
    print("%-58s %8s %8s %8s   %s" % ("ms (client wall time, loopback)", "min", "median", "max",
                                       "ratio to baseline (median) / budget"))
    print("%-58s %s   baseline" % ("GET /api/session (the floor of a request)", spread(floor)))
    print("%-58s %s   %.1f× / %s %s ms" % ("GET /api/runs?limit=50 (first runs page)", spread(page),
          median(page) / median(floor), "meets" if max(page) <= BUDGETS["runs"] else "OVER",
          BUDGETS["runs"]))
    for name, xs in (("GET /api/runs?limit=50&sort=metric:acc", by_acc),
                     ("the same, 10,000 runs further down (keyset)", by_acc_deep)):
        print("%-58s %s   %.1f× / %s %s ms" % (name, spread(xs), median(xs) / median(floor),
              "meets" if max(xs) <= BUDGETS["runs"] else "OVER", BUDGETS["runs"]))
    print("%-58s %s   baseline" % ("chart of a 100-point series", spread(short)))
    print("%-58s %s   %.1f× / %s %s ms, %d points on the wire" % (
        "chart of the %d-point series, points=1000" % args.points, spread(chart),
        median(chart) / median(short), "meets" if max(chart) <= BUDGETS["chart"] else "OVER",
        BUDGETS["chart"], wire))
    print("%-58s %s   %.1f× / %s %s ms, %d points on the wire" % (
        "chart of the %d-point series, points=2000" % args.points, spread(chart2k),
        median(chart2k) / median(short), "meets" if max(chart2k) <= BUDGETS["chart"] else "OVER",
        BUDGETS["chart"], len(body2k["points"])))
    print("%-58s %s   baseline" % ("chromium: first paint of a one-line page", spread(b["floor"])))
    print("%-58s %s   %.1f× / %s %s ms" % ("chromium: first paint of the runs page", spread(b["paint"]),
          median(b["paint"]) / median(b["floor"]),
          "meets" if max(b["paint"]) <= BUDGETS["paint"] else "OVER", BUDGETS["paint"]))
    print("%-58s %s   %.1f× (no budget: after two API answers)" % (
        "chromium: the runs page's first table row", spread(b["row"]),
        median(b["row"]) / median(b["floor"])))
    if b["live"]:
        print("%-58s %s   %s %s ms (%d lines)" % (
            "live log line: printed -> shown on the run page", spread(b["live"]),
            "meets" if max(b["live"]) <= BUDGETS["live"] else "OVER", BUDGETS["live"],
            len(b["live"])))
    else:
        print("live log line: no line was timed")
    print("%-58s %8d KB gzipped (%d KB raw, %d files)   %s 100 KB" % (
        "static assets of the page", gz // 1024, raw // 1024, nfiles,
        "meets" if gz <= BUDGETS["assets"] else "OVER"))
    print()
    for line in PEERS:
        print(line)
    if args.keep:
        print("state kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
