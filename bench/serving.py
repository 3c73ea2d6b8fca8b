#!/usr/bin/python3
"""Scoring through a deployed service, beside the model in-process and beside
the Azure peer's server stack (Flask under gunicorn), in one invocation.

The iris SVC of examples/iris is trained here with Debian's interpreter and
measured three ways, rounds alternating, best round of --reps:

  in-process   model.predict() on the same row in this process (the floor),
               and the same with the JSON decoding and encoding a server does
               (json.loads of {"data": [[...]]}, predict, json.dumps);
  runyard      the no-code service (registered from the file, deployed through
               a private runyardd), POST /score with the faithful Azure headers
               and error handling in place;
  flask        a minimal Flask app with one POST /score route doing the same
               JSON-in, predict, JSON-out, under gunicorn with --workers sync
               workers (the peer's stack: azureml-inference-server-http is a
               Flask app under gunicorn).

Both servers are driven by the same small HTTP/1.1 client over a raw socket
(a prepared request, the answer read up to its Content-Length), so neither
pays for http.client: one client on a kept-alive connection (p50/p99 and
requests/s; gunicorn's sync workers close every connection, so that client
reconnects there, as any client of that stack does), one client opening a
connection per request, and --clients client processes each on its own
kept-alive connection (requests/s over all).

Budget (issue 20): served p50 at most 2x the in-process call with JSON, and
4-client throughput at least half the in-process rate with JSON.

Usage: /usr/bin/python3 bench/serving.py [--requests N] [--clients C] [--reps R]
                                          [--workers W] [--build DIR] [--python PY]
                                          [--gunicorn PATH] [--keep]
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Runyard  # noqa: E402

ROW = [5.9, 3.0, 4.2, 1.5]

FLASK_APP = '''
import json, os
import joblib
import numpy as np
from flask import Flask, Response, request

app = Flask(__name__)
model = joblib.load(os.environ["BENCH_MODEL"])


@app.route("/score", methods=["POST"])
def score():
    rows = json.loads(request.get_data())["data"]
    out = json.dumps(model.predict(np.asarray(rows)).tolist())
    return Response(out, mimetype="application/json")


@app.route("/", methods=["GET"])
def health():
    return "Healthy"
'''


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
            json.dumps(model.predict(np.asarray(rows)).tolist())
        else:
            model.predict(np.asarray([ROW]))
        lat.append(time.perf_counter() - t)
    return n / (time.perf_counter() - t0), lat


class Client:
    """HTTP/1.1 over one socket: send a prepared request, read the status line,
    the headers and Content-Length bytes of body; reconnect when the server
    closes (or when keep is False)."""

    def __init__(self, port, keep):
        self.port = port
        self.keep = keep
        self.sock = None
        self.buf = b""
        body = json.dumps({"data": [ROW]}).encode()
        self.request = (b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                        b"application/json\r\nContent-Length: %d\r\n%s\r\n"
                        % (len(body), b"" if keep else b"Connection: close\r\n")) + body

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def call(self):
        if self.sock is None:
            self._connect()
        self.sock.sendall(self.request)
        buf = self.buf
        while b"\r\n\r\n" not in buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            buf += data
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(buf) < length:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection mid-body")
            buf += data
        body, self.buf = buf[:length], buf[length:]
        if status != 200:
            sys.exit("POST /score answered %d: %s" % (status, body[:200]))
        if close or not self.keep:
            self.close()
        return body

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def served(port, n, keep):
    c = Client(port, keep)
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        c.call()
        lat.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    c.close()
    return n / elapsed, lat


def _client_proc(port, n, start, out):
    c = Client(port, True)
    c.call()  # connected before the clock starts
    start.wait()
    t0 = time.perf_counter()
    for _ in range(n):
        c.call()
    out.put((t0, time.perf_counter()))
    c.close()


def served_concurrent(port, n, clients):
    """Requests/s of `clients` processes, each on its own kept-alive
    connection, from the first start to the last end."""
    ctx = multiprocessing.get_context("fork")
    per = max(1, n // clients)
    start = ctx.Barrier(clients)
    out = ctx.Queue()
    procs = [ctx.Process(target=_client_proc, args=(port, per, start, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    spans = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    return per * clients / (max(e for _, e in spans) - min(s for s, _ in spans))


def wait_port(port, proc, what):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit("%s exited with %d" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("%s did not listen on %d" % (what, port))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="gunicorn's sync workers")
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    p.add_argument("--python", default="/usr/bin/python3")
    p.add_argument("--gunicorn", default=shutil.which("gunicorn") or "/usr/bin/gunicorn")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()

    import joblib

    work = tempfile.mkdtemp(prefix="ry-serving-")
    ry = None
    flask = None
    flask_log = None
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
        ports = {"runyard": svc["port"]}

        if os.access(args.gunicorn, os.X_OK):
            with open(os.path.join(work, "flask_score.py"), "w") as f:
                f.write(FLASK_APP)
            ports["flask"] = free_port()
            flask_log = open(os.path.join(work, "gunicorn.log"), "ab")
            flask = subprocess.Popen(
                [args.gunicorn, "--workers", str(args.workers), "--worker-class", "sync",
                 "--bind", "127.0.0.1:%d" % ports["flask"], "--chdir", work,
                 "--log-level", "warning", "flask_score:app"],
                env=dict(os.environ, BENCH_MODEL=model_path), stdin=subprocess.DEVNULL,
                stdout=flask_log, stderr=flask_log, start_new_session=True)
            wait_port(ports["flask"], flask, "gunicorn")
        else:
            print("no gunicorn at %s (scripts/deps.sh installs it): Flask not measured"
                  % args.gunicorn)

        for port in ports.values():  # warm up every side
            served(port, 300, True)
        in_process(model, 300, True)

        best = {}

        def keep_best(key, rps, lat=None):
            if key not in best or rps > best[key][0]:
                best[key] = (rps, lat)

        n = args.requests
        for _ in range(args.reps):
            keep_best("inproc", *in_process(model, n, False))
            keep_best("inproc_json", *in_process(model, n, True))
            for name, port in ports.items():
                keep_best(name, *served(port, n, True))
                keep_best(name + "_new", *served(port, n // 2, False))
                keep_best(name + "_conc", served_concurrent(port, n, args.clients))

        print("scoring the iris SVC, one row per call; %d calls per round, best of %d; "
              "%d CPUs" % (n, args.reps, os.cpu_count()))
        print("%-66s %10s %10s %10s" % ("", "calls/s", "p50 (us)", "p99 (us)"))
        rows = [("in-process model.predict()", "inproc"),
                ("in-process, with JSON in and out", "inproc_json")]
        labels = {"runyard": "runyard POST /score", "flask":
                  "Flask+gunicorn (%d sync workers) POST /score" % args.workers}
        for name in ports:
            rows += [("%s, kept-alive" % labels[name], name),
                     ("%s, a connection per request" % labels[name], name + "_new"),
                     ("%s, %d clients" % (labels[name], args.clients), name + "_conc")]
        for label, key in rows:
            rps, lat = best[key]
            if lat:
                print("%-66s %10.0f %10.0f %10.0f" % (label, rps, pct(lat, 50) * 1e6,
                                                      pct(lat, 99) * 1e6))
            else:
                print("%-66s %10.0f %10s %10s" % (label, rps, "-", "-"))

        j_rps, j_lat = best["inproc_json"]
        r_rps, r_lat = best["runyard"]
        print()
        p50_ratio = pct(r_lat, 50) / pct(j_lat, 50)
        conc_ratio = best["runyard_conc"][0] / j_rps
        print("runyard / in-process with JSON: p50 latency %.2fx (budget <= 2x: %s), "
              "%d-client throughput %.2fx (budget >= 0.5x: %s)"
              % (p50_ratio, "met" if p50_ratio <= 2 else "NOT met", args.clients, conc_ratio,
                 "met" if conc_ratio >= 0.5 else "NOT met"))
        if "flask" in ports:
            f_rps, f_lat = best["flask"]
            print("runyard / Flask+gunicorn: p50 latency %.2fx, throughput %.2fx kept-alive, "
                  "%.2fx with %d clients"
                  % (pct(r_lat, 50) / pct(f_lat, 50), r_rps / f_rps,
                     best["runyard_conc"][0] / best["flask_conc"][0], args.clients))
    finally:
        if flask is not None:
            flask.terminate()
            try:
                flask.wait(timeout=30)
            except subprocess.TimeoutExpired:
                flask.kill()
                flask.wait()
        if flask_log is not None:
            flask_log.close()
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
