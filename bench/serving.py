#!/usr/bin/python3
"""Scoring through a deployed service against the same model called in-process.

A private runyardd serves the iris model of examples/iris (trained here with
Debian's interpreter, registered from the file, deployed with no code). One
invocation measures, alternating rounds, best round of --reps:

  in-process   model.predict() on the same row, in this process (the floor),
               and predict with the JSON decoding and encoding a server does;
  served       POST /score over HTTP/1.1 from this process: one client on a
               kept-alive connection (latency p50/p99 and requests/s), one
               client opening a connection per request, and --clients
               concurrent kept-alive clients (requests/s).

The ratios printed are served / in-process (latency) and in-process / served
(throughput): how much the web service costs over calling the model directly.

Usage: /usr/bin/python3 bench/serving.py [--requests N] [--clients C] [--reps R]
                                          [--build DIR] [--python PY] [--keep]
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Runyard  # noqa: E402

ROW = [5.9, 3.0, 4.2, 1.5]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs))) - 1))]


def in_process(model, n, with_json):
    import numpy as np
    body = json.dumps({"data": [ROW]})
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        if with_json:
            rows = json.loads(body)["data"]
            out = json.dumps(model.predict(np.asarray(rows)).tolist())
        else:
            model.predict(np.asarray([ROW]))
        lat.append(time.perf_counter() - t)
    return n / (time.perf_counter() - t0), lat


def served(port, n, keep):
    body = json.dumps({"data": [ROW]})
    headers = {"Content-Type": "application/json"}
    lat = []
    conn = None
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/score", body, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit("POST /score answered %d: %s" % (r.status, data[:200]))
        if not keep:
            conn.close()
            conn = None
        lat.append(time.perf_counter() - t)
    if conn is not None:
        conn.close()
    return n / (time.perf_counter() - t0), lat


def served_concurrent(port, n, clients):
    per = max(1, n // clients)
    done = []

    def one():
        done.append(served(port, per, True))

    threads = [threading.Thread(target=one) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * clients / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    p.add_argument("--python", default="/usr/bin/python3")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()

    import joblib

    work = tempfile.mkdtemp(prefix="ry-serving-")
    ry = None
    try:
        subprocess.run([args.python, os.path.join(REPO, "examples", "iris", "train_iris.py")],
                       cwd=work, check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "sdk", "python")))
        model_path = os.path.join(work, "outputs", "model.joblib")
        model = joblib.load(model_path)
        ry = Runyard(args.build, work, 2)
        ry.cli("model", "register", "sklearn-iris", "--file", model_path, "--framework",
               "scikit-learn")
        svc = json.loads(ry.cli("model", "deploy", "sklearn-iris", "--service", "bench",
                                "--python", args.python, "--json").stdout)
        port = svc["port"]
        served(port, 200, True)   # warm up both sides
        in_process(model, 200, True)

        best = {}

        def keep_best(key, rps, lat=None):
            if key not in best or rps > best[key][0]:
                best[key] = (rps, lat)

        n = args.requests
        for _ in range(args.reps):
            keep_best("inproc", *in_process(model, n, False))
            keep_best("inproc_json", *in_process(model, n, True))
            keep_best("served", *served(port, n, True))
            keep_best("served_new", *served(port, n, False))
            keep_best("served_conc", served_concurrent(port, n, args.clients))

        print("scoring the iris SVC, one row per call; %d calls per round, best of %d"
              % (n, args.reps))
        print("%-44s %10s %10s %10s" % ("", "calls/s", "p50 (us)", "p99 (us)"))
        rows = [("in-process model.predict()", "inproc"),
                ("in-process, with JSON in and out", "inproc_json"),
                ("POST /score, kept-alive connection", "served"),
                ("POST /score, a connection per request", "served_new"),
                ("POST /score, %d clients kept alive" % args.clients, "served_conc")]
        for label, key in rows:
            rps, lat = best[key]
            if lat:
                print("%-44s %10.0f %10.0f %10.0f" % (label, rps, pct(lat, 50) * 1e6,
                                                      pct(lat, 99) * 1e6))
            else:
                print("%-44s %10.0f %10s %10s" % (label, rps, "-", "-"))
        base_rps, base_lat = best["inproc"]
        s_rps, s_lat = best["served"]
        print()
        print("served / in-process: p50 latency %.1fx, p99 latency %.1fx, throughput 1/%.1f "
              "(one client); throughput 1/%.1f (%d clients)"
              % (pct(s_lat, 50) / pct(base_lat, 50), pct(s_lat, 99) / pct(base_lat, 99),
                 base_rps / s_rps, base_rps / best["served_conc"][0], args.clients))
        j_rps, j_lat = best["inproc_json"]
        print("served / in-process with JSON: p50 latency %.1fx, throughput 1/%.1f"
              % (pct(s_lat, 50) / pct(j_lat, 50), j_rps / s_rps))
    finally:
        if ry is not None:
            try:
                ry.cli("service", "delete", "bench", check=False)
            finally:
                ry.stop()
        if args.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
