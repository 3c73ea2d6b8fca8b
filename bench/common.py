"""What the benchmarks share: a private runyardd driven through the real CLI,
and small statistics helpers."""

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def median(xs):
    return statistics.median(xs)


def p95(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.95 * len(xs)) - 1)]


class Runyard:
    def __init__(self, build, workdir, max_runs, extra=()):
        self.cli_path = os.path.join(build, "cli", "runyard")
        self.daemon_path = os.path.join(build, "daemon", "runyardd")
        for p in (self.cli_path, self.daemon_path):
            if not os.access(p, os.X_OK):
                sys.exit("%s is not built (see --build)" % p)
        self.state = os.path.join(workdir, "state")
        self.socket = os.path.join(workdir, "runyard.sock")
        self.log = open(os.path.join(workdir, "runyardd.log"), "ab")
        self.proc = subprocess.Popen(
            [self.daemon_path, "--state-dir", self.state, "--socket", self.socket,
             "--max-runs", str(max_runs)] + list(extra),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while self.cli("daemon", "status", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("runyardd did not start; see %s" % self.log.name)
            time.sleep(0.05)

    def cli(self, *args, check=True):
        p = subprocess.run([self.cli_path, "--socket", self.socket] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and p.returncode != 0:
            sys.exit("runyard %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def submit(self, src, *command, wait=False, python=None):
        args = ["submit", "--json", "--source", src]
        if wait:
            args.append("--wait")
        if python:
            args += ["--python", python]
        return json.loads(self.cli(*(args + ["--"] + list(command or ["one.sh"]))).stdout)

    def show(self, run_id):
        return json.loads(self.cli("show", run_id, "--json").stdout)

    def first_line_ts(self, run_id):
        lines = json.loads(self.cli("logs", run_id, "--json").stdout)
        if not lines:
            sys.exit("run %s stored no output" % run_id)
        return parse_ts(lines[0]["ts"])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
